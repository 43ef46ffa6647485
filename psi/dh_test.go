package psi

import (
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func keys(n int, prefix string) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte(fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}

// The ring is order-independent: H(x)^(k1 k2 k3) whatever order the hops run in.
func TestDHRingCommutes(t *testing.T) {
	k1, k2, k3 := dhKeyFromSeed("1"), dhKeyFromSeed("2"), dhKeyFromSeed("3")
	in := keys(50, "patient")
	a := make([]Point, len(in))
	b := make([]Point, len(in))
	require.NoError(t, k1.HashAndBlind("s1", in, a, 0))
	require.NoError(t, k2.Blind(a, a, 2))
	require.NoError(t, k3.Blind(a, a, 1))
	require.NoError(t, k3.HashAndBlind("s1", in, b, 1))
	require.NoError(t, k1.Blind(b, b, 3))
	require.NoError(t, k2.Blind(b, b, 0))
	require.Equal(t, a, b)
	seen := map[Point]bool{}
	for _, p := range a {
		require.False(t, seen[p], "distinct keys gave equal tokens")
		seen[p] = true
	}
}

// The same identifier gives unrelated tokens in two sessions.
func TestDHSessionSeparation(t *testing.T) {
	k := dhKeyFromSeed("k")
	in := keys(20, "x")
	a := make([]Point, len(in))
	b := make([]Point, len(in))
	require.NoError(t, k.HashAndBlind("cohort-1", in, a, 0))
	require.NoError(t, k.HashAndBlind("cohort-2", in, b, 0))
	for i := range a {
		require.NotEqual(t, a[i], b[i])
	}
	ha, err := HashToGroup("cohort-1", in[0])
	require.NoError(t, err)
	hb, err := HashToGroup("cohort-2", in[0])
	require.NoError(t, err)
	require.NotEqual(t, ha, hb)
}

func TestDHInvalidSession(t *testing.T) {
	k := dhKeyFromSeed("k")
	out := make([]Point, 1)
	require.ErrorIs(t, k.HashAndBlind("", keys(1, "x"), out, 0), ErrInvalidSession)
	long := make([]byte, MaxSessionIDSize+1)
	require.ErrorIs(t, k.HashAndBlind(string(long), keys(1, "x"), out, 0), ErrInvalidSession)
	require.Error(t, k.HashAndBlind("s", keys(2, "x"), out, 0))
}

func mustHex(t testing.TB, s string) Point {
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	var p Point
	copy(p[:], b)
	return p
}

// Invalid encodings from RFC 9496 §A.2 and constructed ones are refused,
// with the index of the first bad element.
func TestDHRejectsInvalidPoints(t *testing.T) {
	good, err := HashToGroup("s", []byte("x"))
	require.NoError(t, err)
	var identity Point
	var nonCanonical Point // 2^255 - 1: s >= p
	for i := range nonCanonical {
		nonCanonical[i] = 0xff
	}
	nonCanonical[31] = 0x7f
	negative := good
	negative[0] |= 1 // s odd, i.e. negative
	cases := []struct {
		name string
		p    Point
	}{
		{"identity", identity},
		{"s>=p", nonCanonical},
		{"negative s", negative},
		{"high bit", func() Point { p := good; p[31] |= 0x80; return p }()},
		// RFC 9496 A.2: non-canonical field encodings.
		{"rfc9496 a.2 #1", mustHex(t, "00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")},
		{"rfc9496 a.2 #2", mustHex(t, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")},
		{"rfc9496 a.2 #3", mustHex(t, "f3ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")},
		{"rfc9496 a.2 #4", mustHex(t, "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")},
		// RFC 9496 A.2: negative field elements.
		{"rfc9496 a.2 neg #1", mustHex(t, "0100000000000000000000000000000000000000000000000000000000000000")},
		{"rfc9496 a.2 neg #2", mustHex(t, "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")},
		// RFC 9496 A.2: non-square x^2.
		{"rfc9496 a.2 nonsquare", mustHex(t, "26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371")},
	}
	k := dhKeyFromSeed("k")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := []Point{good, good, tc.p, good}
			out := make([]Point, len(in))
			err := k.Blind(in, out, 2)
			require.ErrorIs(t, err, ErrInvalidPoint)
			var pe *PointError
			require.True(t, errors.As(err, &pe))
			require.Equal(t, 2, pe.Index)
			require.ErrorIs(t, CheckPoint(&tc.p), ErrInvalidPoint)
		})
	}
	require.NoError(t, CheckPoint(&good))
}

// Known-answer vectors pin the hash-to-group tag and the encoding. They were
// produced by this implementation at the commit that added them; a change
// means tokens no longer match across versions and needs a written reason.
func TestDHKnownAnswers(t *testing.T) {
	k := dhKeyFromSeed("mpsi-kat")
	in := [][]byte{[]byte(""), []byte("abc"), []byte("hospital-a/patient-1")}
	out := make([]Point, len(in))
	require.NoError(t, k.HashAndBlind("kat-session", in, out, 1))
	var got []string
	for _, p := range out {
		got = append(got, hex.EncodeToString(p[:]))
	}
	require.Equal(t, dhKAT, got)
}

func FuzzCheckPoint(f *testing.F) {
	good, _ := HashToGroup("s", []byte("seed"))
	f.Add(good[:])
	f.Add(make([]byte, 32))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) != PointSize {
			return
		}
		var p Point
		copy(p[:], b)
		err := CheckPoint(&p)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidPoint)
			return
		}
		// An accepted point re-encodes to the same bytes and survives a hop.
		k := dhKeyFromSeed("f")
		out := make([]Point, 1)
		require.NoError(t, k.Blind([]Point{p}, out, 1))
		require.NoError(t, CheckPoint(&out[0]))
	})
}
