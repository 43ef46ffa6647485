package recordkey

import (
	"bytes"
	"crypto/rand"
	"crypto/sha512"
	"testing"

	"github.com/cloudflare/circl/group"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/identity"
	"github.com/stretchr/testify/require"
)

func encode(t testing.TB, f identity.Fields) []byte {
	t.Helper()
	b, err := identity.Encode(f)
	require.NoError(t, err)
	return b
}

var alice = identity.Fields{Given: "Alice42", Family: "Liddell7", BirthDate: "1852-05-04", NationalID: "999-11-2222"}
var bob = identity.Fields{Given: "Bob9", Family: "Builder3", BirthDate: "1999-04-01", NationalID: "999-33-4444"}

func evaluator(t testing.TB, name string) *Evaluator {
	t.Helper()
	e, err := GenerateEvaluator(name)
	require.NoError(t, err)
	return e
}

// oblivious runs the terminal side against e and returns the key.
func oblivious(t testing.TB, e *Evaluator, f identity.Fields) *Key {
	t.Helper()
	q, blinded, err := NewQuery(e.Hospital(), e.PublicKey(), encode(t, f))
	require.NoError(t, err)
	ev, proof, err := e.Evaluate(blinded)
	require.NoError(t, err)
	k, err := q.Finalize(ev, proof)
	require.NoError(t, err)
	return k
}

func TestObliviousMatchesRelay(t *testing.T) {
	e := evaluator(t, "hospital-a")
	direct, err := e.Derive(encode(t, alice))
	require.NoError(t, err)
	typed := identity.Fields{Given: " ALICE42", Family: "liddell7", BirthDate: "1852-05-04", NationalID: "999112222"}
	got := oblivious(t, e, typed)
	if !got.Equal(direct) || got.Index() != direct.Index() {
		t.Fatal("terminal's key differs from the relay's for the same (normalised) identity")
	}
	ct, err := Seal(direct, []byte("records"))
	require.NoError(t, err)
	pt, err := Open(got, ct)
	require.NoError(t, err)
	require.Equal(t, []byte("records"), pt)
}

func TestWrongIdentityUseless(t *testing.T) {
	e := evaluator(t, "hospital-a")
	right, err := e.Derive(encode(t, alice))
	require.NoError(t, err)
	ct, err := Seal(right, []byte("alice's records"))
	require.NoError(t, err)
	wrongs := []identity.Fields{
		bob,
		{Given: alice.Given, Family: alice.Family, BirthDate: "1852-05-05", NationalID: alice.NationalID},
		{Given: alice.Given, Family: alice.Family, BirthDate: alice.BirthDate, NationalID: "999-11-2223"},
	}
	for i, w := range wrongs {
		k := oblivious(t, e, w)
		if k.Equal(right) || k.Index() == right.Index() {
			t.Fatalf("wrong identity %d derives the right key or index", i)
		}
		_, err := Open(k, ct)
		require.ErrorIs(t, err, ErrDecrypt, "wrong identity %d", i)
	}
}

func TestHospitalsHaveIndependentKeys(t *testing.T) {
	a, b := evaluator(t, "hospital-a"), evaluator(t, "hospital-b")
	ka, err := a.Derive(encode(t, alice))
	require.NoError(t, err)
	kb, err := b.Derive(encode(t, alice))
	require.NoError(t, err)
	require.NotEqual(t, ka.Index(), kb.Index())
	ct, err := Seal(ka, []byte("x"))
	require.NoError(t, err)
	_, err = Open(kb, ct)
	require.ErrorIs(t, err, ErrDecrypt)
	// The same relay key under another hospital's name is another key too
	// (the name is the HKDF salt and in the associated data).
	renamed := &Key{hospital: "hospital-b", y: ka.y}
	_, err = Open(renamed, ct)
	require.ErrorIs(t, err, ErrDecrypt)
}

// TestProofBindsRelayKey: a relay answering with a key other than the one
// the terminal pinned is caught.
func TestProofBindsRelayKey(t *testing.T) {
	pinned, other := evaluator(t, "hospital-a"), evaluator(t, "hospital-a")
	q, blinded, err := NewQuery("hospital-a", pinned.PublicKey(), encode(t, alice))
	require.NoError(t, err)
	ev, proof, err := other.Evaluate(blinded)
	require.NoError(t, err)
	_, err = q.Finalize(ev, proof)
	require.ErrorIs(t, err, ErrProof)

	// A correct answer with a proof from another query is caught too.
	q1, b1, err := NewQuery("hospital-a", pinned.PublicKey(), encode(t, alice))
	require.NoError(t, err)
	_, b2, err := NewQuery("hospital-a", pinned.PublicKey(), encode(t, bob))
	require.NoError(t, err)
	ev1, _, err := pinned.Evaluate(b1)
	require.NoError(t, err)
	_, proof2, err := pinned.Evaluate(b2)
	require.NoError(t, err)
	_, err = q1.Finalize(ev1, proof2)
	require.ErrorIs(t, err, ErrProof)
}

func TestQuerySingleUse(t *testing.T) {
	e := evaluator(t, "hospital-a")
	q, blinded, err := NewQuery(e.Hospital(), e.PublicKey(), encode(t, alice))
	require.NoError(t, err)
	ev, proof, err := e.Evaluate(blinded)
	require.NoError(t, err)
	_, err = q.Finalize(ev, proof)
	require.NoError(t, err)
	_, err = q.Finalize(ev, proof)
	require.ErrorIs(t, err, ErrStateConsumed)
}

func TestBlindingHidesIdentity(t *testing.T) {
	e := evaluator(t, "hospital-a")
	_, b1, err := NewQuery(e.Hospital(), e.PublicKey(), encode(t, alice))
	require.NoError(t, err)
	_, b2, err := NewQuery(e.Hospital(), e.PublicKey(), encode(t, alice))
	require.NoError(t, err)
	if bytes.Equal(b1[0], b2[0]) {
		t.Fatal("two queries for the same identity send the same blinded element")
	}
}

func elem(t testing.TB, e group.Element) []byte {
	b, err := e.MarshalBinaryCompress()
	require.NoError(t, err)
	return b
}

func TestEvaluateRejectsMalformed(t *testing.T) {
	e := evaluator(t, "hospital-a")
	g := suite().Group()
	good := elem(t, g.RandomElement(rand.Reader))
	identityEl := elem(t, g.Identity())
	tests := []struct {
		name string
		in   [][]byte
	}{
		{"none", nil},
		{"too many", [][]byte{good, good, good, good, good}},
		{"short", [][]byte{good[:31]}},
		{"long", [][]byte{append(bytes.Clone(good), 0)}},
		{"identity", [][]byte{identityEl}},
		{"not a point", [][]byte{bytes.Repeat([]byte{0xff}, 32)}},
		{"second bad", [][]byte{good, make([]byte, 31)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, proof, err := e.Evaluate(tc.in)
			require.ErrorIs(t, err, ErrMalformed)
			require.Nil(t, ev)
			require.Nil(t, proof)
		})
	}
}

func TestFinalizeRejectsMalformed(t *testing.T) {
	e := evaluator(t, "hospital-a")
	g := suite().Group()
	tests := []struct {
		name   string
		mutate func(ev [][]byte, proof []byte) ([][]byte, []byte)
		want   error
	}{
		{"no elements", func(ev [][]byte, p []byte) ([][]byte, []byte) { return nil, p }, ErrMalformed},
		{"two elements", func(ev [][]byte, p []byte) ([][]byte, []byte) { return [][]byte{ev[0], ev[0]}, p }, ErrMalformed},
		{"identity element", func(ev [][]byte, p []byte) ([][]byte, []byte) { return [][]byte{elem(t, g.Identity())}, p }, ErrMalformed},
		{"short proof", func(ev [][]byte, p []byte) ([][]byte, []byte) { return ev, p[:63] }, ErrMalformed},
		{"long proof", func(ev [][]byte, p []byte) ([][]byte, []byte) { return ev, append(bytes.Clone(p), 0) }, ErrMalformed},
		{"non-canonical scalar", func(ev [][]byte, p []byte) ([][]byte, []byte) { return ev, bytes.Repeat([]byte{0xff}, 64) }, ErrMalformed},
		{"flipped proof bit", func(ev [][]byte, p []byte) ([][]byte, []byte) {
			p = bytes.Clone(p)
			p[0] ^= 1
			return ev, p
		}, ErrProof},
		{"other element", func(ev [][]byte, p []byte) ([][]byte, []byte) {
			return [][]byte{elem(t, g.RandomElement(rand.Reader))}, p
		}, ErrProof},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, blinded, err := NewQuery(e.Hospital(), e.PublicKey(), encode(t, alice))
			require.NoError(t, err)
			ev, proof, err := e.Evaluate(blinded)
			require.NoError(t, err)
			ev, proof = tc.mutate(ev, proof)
			k, err := q.Finalize(ev, proof)
			require.ErrorIs(t, err, tc.want)
			require.Nil(t, k)
		})
	}
}

func TestParsePublicKey(t *testing.T) {
	e := evaluator(t, "hospital-a")
	_, err := ParsePublicKey(e.PublicKey())
	require.NoError(t, err)
	for name, b := range map[string][]byte{
		"identity":    make([]byte, 32),
		"short":       e.PublicKey()[:31],
		"not a point": bytes.Repeat([]byte{0xff}, 32),
	} {
		_, err := ParsePublicKey(b)
		require.ErrorIs(t, err, ErrMalformed, name)
	}
}

func TestSealOpen(t *testing.T) {
	e := evaluator(t, "hospital-a")
	k, err := e.Derive(encode(t, alice))
	require.NoError(t, err)
	for _, n := range []int{0, 1, PadBlock - 5, PadBlock - 4, PadBlock - 3, 5000} {
		pt := bytes.Repeat([]byte{'r'}, n)
		ct, err := Seal(k, pt)
		require.NoError(t, err)
		if (len(ct)-Overhead)%PadBlock != 0 || len(ct) < Overhead+PadBlock {
			t.Fatalf("Seal(%d bytes) = %d bytes, not padded to %d", n, len(ct), PadBlock)
		}
		if n < PadBlock-4 && len(ct) != Overhead+PadBlock {
			t.Fatalf("Seal(%d bytes) = %d bytes, want one block", n, len(ct))
		}
		got, err := Open(k, ct)
		require.NoError(t, err)
		require.Equal(t, pt, got)
	}
}

func TestOpenRejectsTampering(t *testing.T) {
	e := evaluator(t, "hospital-a")
	k, err := e.Derive(encode(t, alice))
	require.NoError(t, err)
	ct, err := Seal(k, []byte("alice's records"))
	require.NoError(t, err)
	for i := range ct {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x80
		if _, err := Open(k, bad); err == nil {
			t.Fatalf("Open accepted a ciphertext with byte %d flipped", i)
		}
	}
	for n := range len(ct) {
		if _, err := Open(k, ct[:n]); err == nil {
			t.Fatalf("Open accepted a ciphertext truncated to %d bytes", n)
		}
	}
	if _, err := Open(k, append(bytes.Clone(ct), 0)); err == nil {
		t.Fatal("Open accepted an extended ciphertext")
	}
}

// TestCiphertextsUselessWithoutOPRF: keys that skip the OPRF — hashing the
// identity with the same HKDF labels, as a cloud guessing offline would —
// neither find the index nor open the bundle.
func TestCiphertextsUselessWithoutOPRF(t *testing.T) {
	e := evaluator(t, "hospital-a")
	enc := encode(t, alice)
	k, err := e.Derive(enc)
	require.NoError(t, err)
	ct, err := Seal(k, []byte("alice's records"))
	require.NoError(t, err)
	h := sha512.Sum512(enc)
	var random [OutputSize]byte
	_, _ = rand.Read(random[:])
	candidates := map[string]*Key{
		"hash of identity":    {hospital: "hospital-a", y: h},
		"identity as key":     {hospital: "hospital-a", y: [OutputSize]byte(append(bytes.Clone(enc), make([]byte, OutputSize)...)[:OutputSize])},
		"random":              {hospital: "hospital-a", y: random},
		"other hospital oprf": oblivious(t, evaluator(t, "hospital-a"), alice),
	}
	for name, c := range candidates {
		if c.Index() == k.Index() {
			t.Errorf("%s: finds the index", name)
		}
		_, err := Open(c, ct)
		require.ErrorIs(t, err, ErrDecrypt, name)
	}
	for _, s := range [][]byte{[]byte("Alice42"), []byte("alice42"), []byte("liddell7"), []byte("1852-05-04"), []byte("999112222"), enc} {
		require.False(t, bytes.Contains(ct, s), "ciphertext contains %q", s)
	}
}

func TestCheckHospital(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"hospital-a", true}, {"", false}, {"has space", false}, {"ünïcode", false},
		{string(bytes.Repeat([]byte("h"), MaxHospitalLen)), true},
		{string(bytes.Repeat([]byte("h"), MaxHospitalLen+1)), false},
		{"ctl\x01", false},
	} {
		err := CheckHospital(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("CheckHospital(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
