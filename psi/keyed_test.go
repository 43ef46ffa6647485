package psi

import (
	"crypto/hmac"
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGroupKeyOrderIndependent(t *testing.T) {
	c := make([]KeyContribution, 4)
	for i := range c {
		var err error
		c[i], err = GenerateKeyContribution()
		require.NoError(t, err)
	}
	g1, err := DeriveGroupKey("s", c)
	require.NoError(t, err)
	g2, err := DeriveGroupKey("s", []KeyContribution{c[3], c[1], c[0], c[2]})
	require.NoError(t, err)
	require.True(t, hmac.Equal(g1.k[:], g2.k[:]))
	g3, err := DeriveGroupKey("other", c)
	require.NoError(t, err)
	require.False(t, hmac.Equal(g1.k[:], g3.k[:]))
	g4, err := DeriveGroupKey("s", c[:3])
	require.NoError(t, err)
	require.False(t, hmac.Equal(g1.k[:], g4.k[:]))
}

func TestGroupKeyRefusals(t *testing.T) {
	c, _ := GenerateKeyContribution()
	d, _ := GenerateKeyContribution()
	_, err := DeriveGroupKey("s", []KeyContribution{c})
	require.ErrorIs(t, err, ErrContributions)
	_, err = DeriveGroupKey("s", []KeyContribution{c, d, c})
	require.ErrorIs(t, err, ErrContributions)
	_, err = DeriveGroupKey("", []KeyContribution{c, d})
	require.ErrorIs(t, err, ErrInvalidSession)
}

func TestKeyedTokens(t *testing.T) {
	var c1, c2 KeyContribution
	c1[0], c2[0] = 1, 2
	g, err := DeriveGroupKey("sess", []KeyContribution{c1, c2})
	require.NoError(t, err)
	in := keys(100, "p")
	out := make([][TokenSize]byte, len(in))
	require.NoError(t, g.KeyedTokens("sess", in, out, 3))
	// Independent computation with the standard library.
	m := hmac.New(sha256.New, g.k[:])
	m.Write([]byte(labelKeyedToken))
	m.Write([]byte{4})
	m.Write([]byte("sess"))
	m.Write(in[7])
	require.Equal(t, m.Sum(nil), out[7][:])

	other := make([][TokenSize]byte, len(in))
	require.NoError(t, g.KeyedTokens("sess2", in, other, 1))
	for i := range out {
		require.NotEqual(t, out[i], other[i], "tokens must not link across sessions")
	}
	require.Error(t, g.KeyedTokens("sess", in, out[:1], 1))
}
