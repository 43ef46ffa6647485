package recordkey

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func testGrant(t testing.TB) *Grant {
	a, b := evaluator(t, "hospital-a"), evaluator(t, "hospital-b")
	ka, err := a.Derive(encode(t, alice))
	require.NoError(t, err)
	kb, err := b.Derive(encode(t, alice))
	require.NoError(t, err)
	return &Grant{Keys: []*Key{ka, kb}}
}

func TestGrantRoundTrip(t *testing.T) {
	g := testGrant(t)
	b, err := g.MarshalBinary()
	require.NoError(t, err)
	got, err := ParseGrant(b)
	require.NoError(t, err)
	require.Len(t, got.Keys, 2)
	for i := range g.Keys {
		require.True(t, got.Keys[i].Equal(g.Keys[i]))
	}
	for n := range len(b) {
		_, err := ParseGrant(b[:n])
		require.ErrorIs(t, err, ErrMalformed, "truncated to %d", n)
	}
	_, err = ParseGrant(append(bytes.Clone(b), 0))
	require.ErrorIs(t, err, ErrMalformed)
}

func TestParseGrantRejects(t *testing.T) {
	g := testGrant(t)
	dup := &Grant{Keys: []*Key{g.Keys[0], g.Keys[0]}}
	// MarshalBinary does not check duplicates; ParseGrant must.
	dupBytes, err := dup.MarshalBinary()
	require.NoError(t, err)
	good, err := g.MarshalBinary()
	require.NoError(t, err)
	zero := bytes.Clone(good)
	zero[1+len(labelGrantEncoding)] = 0
	many := bytes.Clone(good)
	many[1+len(labelGrantEncoding)] = MaxGrantKeys + 1
	badLabel := bytes.Clone(good)
	badLabel[1] ^= 1
	badHospital := bytes.Clone(good)
	badHospital[1+len(labelGrantEncoding)+2] = ' '
	for name, b := range map[string][]byte{
		"duplicate hospital": dupBytes, "zero keys": zero, "too many keys": many,
		"bad label": badLabel, "bad hospital": badHospital, "empty": nil,
	} {
		_, err := ParseGrant(b)
		require.ErrorIs(t, err, ErrMalformed, name)
	}
	_, err = (&Grant{}).MarshalBinary()
	require.Error(t, err)
}

func TestSealGrant(t *testing.T) {
	g := testGrant(t)
	patient, err := GenerateTerminalKey()
	require.NoError(t, err)
	doctor, err := GenerateTerminalKey()
	require.NoError(t, err)
	other, err := GenerateTerminalKey()
	require.NoError(t, err)
	sealed, err := SealGrant(patient, "patient", "dr-lee", doctor.PublicKey(), g)
	require.NoError(t, err)
	got, err := OpenGrant(doctor, "patient", "dr-lee", patient.PublicKey(), sealed)
	require.NoError(t, err)
	require.True(t, got.Keys[0].Equal(g.Keys[0]) && got.Keys[1].Equal(g.Keys[1]))

	tests := []struct {
		name      string
		recipient *TerminalKey
		from, to  string
		sender    []byte
		sealed    []byte
		want      error
	}{
		{"wrong recipient", other, "patient", "dr-lee", patient.PublicKey(), sealed, ErrGrant},
		{"wrong sender key", doctor, "patient", "dr-lee", other.PublicKey(), sealed, ErrGrant},
		{"relabelled sender", doctor, "mallory", "dr-lee", patient.PublicKey(), sealed, ErrGrant},
		{"redirected", doctor, "patient", "dr-okafor", patient.PublicKey(), sealed, ErrGrant},
		{"flipped byte", doctor, "patient", "dr-lee", patient.PublicKey(), flip(sealed, len(sealed)-1), ErrGrant},
		{"flipped enc", doctor, "patient", "dr-lee", patient.PublicKey(), flip(sealed, 0), ErrGrant},
		{"truncated", doctor, "patient", "dr-lee", patient.PublicKey(), sealed[:40], ErrMalformed},
		{"short sender key", doctor, "patient", "dr-lee", patient.PublicKey()[:31], sealed, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := OpenGrant(tc.recipient, tc.from, tc.to, tc.sender, tc.sealed)
			require.ErrorIs(t, err, tc.want)
			require.Nil(t, g)
		})
	}
}

func flip(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i] ^= 1
	return b
}
