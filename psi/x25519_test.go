package psi

import (
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/big"
	"testing"

	"filippo.io/edwards25519"
	goristretto "github.com/bwesterb/go-ristretto"
	goedwards "github.com/bwesterb/go-ristretto/edwards25519"
	"github.com/cloudflare/circl/dh/x25519"
	"github.com/cloudflare/circl/expander"
	"github.com/stretchr/testify/require"
)

// x25519KeyFromSeed derives an X25519 secret deterministically (SHA-256 of
// the seed). Tests only.
func x25519KeyFromSeed(seed string) *X25519Key {
	return &X25519Key{k: sha256.Sum256([]byte(seed))}
}

func x25519KeyFromHex(t testing.TB, s string) *X25519Key {
	p := mustHex(t, s)
	return &X25519Key{k: x25519.Key(p)}
}

// RFC 7748 §5.2: the two single-multiplication vectors and the iterated
// vector (1 and 1000 iterations), and the §6.1 Diffie-Hellman vectors, through X25519Key.Blind. The second
// vector's u has the top bit set, which RFC 7748 masks; Blind refuses it as
// non-canonical and agrees with the RFC once the bit is cleared.
func TestX25519RFC7748Vectors(t *testing.T) {
	vectors := []struct{ scalar, u, out string }{
		{"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
			"e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
			"c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
		{"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
			"e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
			"95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
		// RFC 7748 §6.1: Alice's and Bob's public keys and their shared secret.
		{"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
			"0900000000000000000000000000000000000000000000000000000000000000",
			"8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"},
		{"5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
			"0900000000000000000000000000000000000000000000000000000000000000",
			"de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"},
		{"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
			"de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
			"4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"},
	}
	for i, v := range vectors {
		k := x25519KeyFromHex(t, v.scalar)
		in := mustHex(t, v.u)
		out := make([]Point, 1)
		if in[31]&0x80 != 0 {
			err := k.Blind([]Point{in}, out, 1)
			require.ErrorIs(t, err, ErrInvalidPoint, "vector %d: top bit set must be refused", i)
			in[31] &= 0x7f
		}
		require.NoError(t, k.Blind([]Point{in}, out, 1), "vector %d", i)
		require.Equal(t, v.out, hex.EncodeToString(out[0][:]), "vector %d", i)
	}

	// Iterated: k, u = X25519(k, u), k, starting from k = u = 9.
	var k, u Point
	k[0], u[0] = 9, 9
	want := map[int]string{
		1:    "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079",
		1000: "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51",
	}
	out := make([]Point, 1)
	for it := 1; it <= 1000; it++ {
		require.NoError(t, (&X25519Key{k: x25519.Key(k)}).Blind([]Point{u}, out, 1))
		u, k = k, out[0]
		if w, ok := want[it]; ok {
			require.Equal(t, w, hex.EncodeToString(k[:]), "after %d iterations", it)
		}
	}
}

// fieldP is 2^255 - 19.
var fieldP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))

func uFromInt(x *big.Int) Point {
	var p Point
	b := x.Bytes()
	for i := range b {
		p[i] = b[len(b)-1-i]
	}
	return p
}

// Non-canonical encodings and low-order points of the curve and its twist
// are refused with the index of the first bad element; an honest token
// passes.
func TestX25519RejectsInvalidU(t *testing.T) {
	k := x25519KeyFromSeed("k")
	goodOut := make([]Point, 1)
	require.NoError(t, k.HashAndBlind("s", [][]byte{[]byte("x")}, goodOut, 1))
	good := goodOut[0]
	pm1 := new(big.Int).Sub(fieldP, big.NewInt(1))
	cases := []struct {
		name string
		u    Point
	}{
		{"zero", Point{}},
		{"one (order 4)", uFromInt(big.NewInt(1))},
		{"p-1 (order 4)", uFromInt(pm1)},
		// RFC 7748 §7 / circl's table: the points of order 8.
		{"order 8 #1", mustHex(t, "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")},
		{"order 8 #2", mustHex(t, "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157")},
		{"p (= 0)", uFromInt(fieldP)},
		{"p+1 (= 1)", uFromInt(new(big.Int).Add(fieldP, big.NewInt(1)))},
		{"2^255-1", uFromInt(new(big.Int).Add(fieldP, big.NewInt(18)))},
		{"good with top bit", func() Point { p := good; p[31] |= 0x80; return p }()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := []Point{good, good, tc.u, good}
			out := make([]Point, len(in))
			err := k.Blind(in, out, 2)
			require.ErrorIs(t, err, ErrInvalidPoint)
			var pe *PointError
			require.True(t, errors.As(err, &pe))
			require.Equal(t, 2, pe.Index)
		})
	}
	require.NoError(t, CheckU(&good))
	// p-1 and 1 are canonical: the low order is found from the zero output.
	p := uFromInt(pm1)
	require.NoError(t, CheckU(&p))
}

// onCurve reports whether u is the u-coordinate of a point of Curve25519
// (u^3 + A·u^2 + u a square mod p) rather than of its twist. Test oracle
// on math/big.
func onCurve(u *big.Int) bool {
	r := new(big.Int).Mul(u, u)
	r.Mul(r, u)
	r.Add(r, new(big.Int).Mul(big.NewInt(486662), new(big.Int).Mul(u, u)))
	r.Add(r, u)
	r.Mod(r, fieldP)
	return r.Sign() == 0 || big.Jacobi(r, fieldP) == 1
}

func intFromU(p *Point) *big.Int {
	b := make([]byte, 32)
	for i := range b {
		b[i] = p[31-i]
	}
	return new(big.Int).SetBytes(b)
}

// A u of the quadratic twist (of large order) is multiplied like any other:
// the result is canonical, non-zero and again on the twist, so it can never
// equal an honest token (which is on the curve). Honest tokens are on the
// curve.
func TestX25519TwistInput(t *testing.T) {
	k := x25519KeyFromSeed("twist")
	var twist *big.Int
	for u := int64(2); twist == nil; u++ {
		if !onCurve(big.NewInt(u)) {
			twist = big.NewInt(u)
		}
	}
	in := []Point{uFromInt(twist)}
	out := make([]Point, 1)
	require.NoError(t, k.Blind(in, out, 1))
	require.NoError(t, CheckU(&out[0]))
	require.False(t, onCurve(intFromU(&out[0])), "twist input must stay on the twist")

	tok := make([]Point, 8)
	require.NoError(t, k.HashAndBlind("s", keys(8, "c"), tok, 1))
	for i := range tok {
		require.True(t, onCurve(intFromU(&tok[i])), "honest token %d off the curve", i)
	}
}

// fromGoRistretto carries a go-ristretto extended point into
// filippo.io/edwards25519 (test helper around edwardsFromRistretto).
func fromGoRistretto(t testing.TB, p *goristretto.Point) *edwards25519.Point {
	var e edwards25519.Point
	require.NoError(t, edwardsFromRistretto(&e, p))
	return &e
}

// The x25519 suite's tokens agree with an independent computation through
// filippo.io/edwards25519 for the same scalars: decode the ristretto255
// hash (HashToGroup, the ristretto suite's gtank path), add a 4-torsion
// point to its representative, project to the prime-order subgroup
// (8^-1 · 8 · P), multiply by each party's clamped scalar reduced mod ℓ
// (SetBytesWithClamping) and take BytesMontgomery. Hop order does not
// matter, and every party's ring gives the same token for the same key.
func TestX25519AgreesWithEdwards(t *testing.T) {
	const session = "x-ref"
	parties := []*X25519Key{x25519KeyFromSeed("a"), x25519KeyFromSeed("b"), x25519KeyFromSeed("c")}
	ks := keys(16, "p")
	ks = append(ks, []byte(""))

	var eight, inv8 edwards25519.Scalar
	var eightBytes [32]byte
	eightBytes[0] = 8
	_, err := eight.SetCanonicalBytes(eightBytes[:])
	require.NoError(t, err)
	inv8.Invert(&eight)
	var torsion goedwards.ExtendedPoint
	torsion.SetTorsion1()
	tp := fromGoRistretto(t, (*goristretto.Point)(&torsion))

	// want[i] via filippo.
	want := make([]Point, len(ks))
	for i, key := range ks {
		enc, err := HashToGroup(session, key)
		require.NoError(t, err)
		var rp goristretto.Point
		buf := [32]byte(enc)
		require.True(t, rp.SetBytes(&buf))
		q := fromGoRistretto(t, &rp)
		q.Add(q, tp) // another representative of the same ristretto element
		q.MultByCofactor(q)
		q.ScalarMult(&inv8, q)
		for _, p := range parties {
			var s edwards25519.Scalar
			_, err := s.SetBytesWithClamping(p.k[:])
			require.NoError(t, err)
			q.ScalarMult(&s, q)
		}
		copy(want[i][:], q.BytesMontgomery())
	}

	// Every party as owner, hops in ring order.
	for owner := range parties {
		got := make([]Point, len(ks))
		require.NoError(t, parties[owner].HashAndBlind(session, ks, got, 2))
		for h := 1; h < len(parties); h++ {
			require.NoError(t, parties[(owner+h)%len(parties)].Blind(got, got, 2))
		}
		require.Equal(t, want, got, "owner %d", owner)
	}
}

// The go-ristretto hash path of the x25519 suite is the same RFC 9380
// hash_to_ristretto255 as the ristretto suite's gtank path.
func TestX25519HashIsRistrettoHash(t *testing.T) {
	dst, err := hashDST("h")
	require.NoError(t, err)
	for _, key := range keys(32, "h") {
		want, err := HashToGroup("h", key)
		require.NoError(t, err)
		b := expander.NewExpanderMD(crypto.SHA512, dst).Expand(key, 64)
		var buf [32]byte
		var p0, p1 goristretto.Point
		copy(buf[:], b[:32])
		p0.SetElligator(&buf)
		copy(buf[:], b[32:])
		p1.SetElligator(&buf)
		p0.Add(&p0, &p1)
		require.Equal(t, want[:], p0.Bytes())
	}
}

// Known answers pin the x25519 suite's tokens (same hash tag as the
// ristretto suite), produced by this implementation when it was added.
func TestX25519KnownAnswers(t *testing.T) {
	k := x25519KeyFromSeed("mpsi-kat")
	in := [][]byte{[]byte(""), []byte("abc"), []byte("hospital-a/patient-1")}
	out := make([]Point, len(in))
	require.NoError(t, k.HashAndBlind("kat-session", in, out, 1))
	var got []string
	for _, p := range out {
		got = append(got, hex.EncodeToString(p[:]))
	}
	require.Equal(t, x25519KAT, got)
}

func TestGenerateRingKey(t *testing.T) {
	for _, g := range []string{GroupRistretto255, GroupX25519} {
		k1, err := GenerateRingKey(g)
		require.NoError(t, err)
		k2, err := GenerateRingKey(g)
		require.NoError(t, err)
		a, b := make([]Point, 2), make([]Point, 2)
		require.NoError(t, k1.HashAndBlind("s", keys(2, "g"), a, 1))
		require.NoError(t, k2.HashAndBlind("s", keys(2, "g"), b, 1))
		require.NoError(t, k2.Blind(a, a, 1))
		require.NoError(t, k1.Blind(b, b, 1))
		require.Equal(t, a, b, g)
	}
	_, err := GenerateRingKey("p256")
	require.Error(t, err)
}

func FuzzCheckU(f *testing.F) {
	f.Add(make([]byte, 32))
	f.Add(hexBytes(f, "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"))
	f.Add(hexBytes(f, "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"))
	f.Add(hexBytes(f, "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) != PointSize {
			return
		}
		var p Point
		copy(p[:], b)
		x := intFromU(&p)
		canonical := x.Cmp(fieldP) < 0 && x.Sign() != 0
		err := CheckU(&p)
		require.Equal(t, canonical, err == nil, "CheckU(%x) = %v", b, err)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidPoint)
			return
		}
		// An accepted u either fails the hop as low order or gives a
		// canonical non-zero u.
		out := make([]Point, 1)
		if err := x25519KeyFromSeed("f").Blind([]Point{p}, out, 1); err != nil {
			require.ErrorIs(t, err, ErrInvalidPoint)
			return
		}
		require.NoError(t, CheckU(&out[0]))
	})
}

func hexBytes(t testing.TB, s string) []byte {
	p := mustHex(t, s)
	return p[:]
}
