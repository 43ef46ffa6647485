package psi

import (
	"crypto/rand"
	"testing"

	"github.com/cloudflare/circl/group"
	"github.com/stretchr/testify/require"
)

// The gtank hot path agrees with circl's group.Ristretto255, the reference,
// on hash-to-group and on scalar multiplication of random inputs.
func TestAgreesWithCircl(t *testing.T) {
	g := group.Ristretto255
	k := dhKeyFromSeed("ref")
	s := g.NewScalar()
	require.NoError(t, s.UnmarshalBinary(k.s.Bytes()))
	dst, err := hashDST("ref-session")
	require.NoError(t, err)
	for i := 0; i < 64; i++ {
		key := make([]byte, i*3)
		_, _ = rand.Read(key)
		p, err := HashToGroup("ref-session", key)
		require.NoError(t, err)
		want, err := g.HashToElement(key, dst).MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, want, p[:], "hash-to-group differs from circl")

		out := make([]Point, 1)
		require.NoError(t, k.HashAndBlind("ref-session", [][]byte{key}, out, 1))
		e := g.NewElement()
		require.NoError(t, e.UnmarshalBinary(p[:]))
		want, err = e.Mul(e, s).MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, want, out[0][:], "scalar multiplication differs from circl")

		// Random points from circl decode and are accepted.
		r, _ := g.RandomElement(rand.Reader).MarshalBinary()
		var rp Point
		copy(rp[:], r)
		require.NoError(t, CheckPoint(&rp))
	}
}
