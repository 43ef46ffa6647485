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
	return &Grant{Reads: []Read{{Key: ka.ReadKey(), ID: GrantID{1}}, {Key: kb.ReadKey(), ID: GrantID{2}}}}
}

func TestGrantRoundTrip(t *testing.T) {
	g := testGrant(t)
	b, err := g.MarshalBinary()
	require.NoError(t, err)
	got, err := ParseGrant(b)
	require.NoError(t, err)
	require.Len(t, got.Reads, 2)
	for i := range g.Reads {
		require.True(t, got.Reads[i].Key.Equal(g.Reads[i].Key))
		require.Equal(t, g.Reads[i].ID, got.Reads[i].ID)
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
	dup := &Grant{Reads: []Read{g.Reads[0], g.Reads[0]}}
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
	require.True(t, got.Reads[0].Key.Equal(g.Reads[0].Key) && got.Reads[1].Key.Equal(g.Reads[1].Key))

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

// TestReadKey: a read key opens the bundle but carries no access key, and
// the credential changes the key completely.
func TestReadKey(t *testing.T) {
	ev := evaluator(t, "hospital-a")
	c1, err := NewCredential()
	require.NoError(t, err)
	c2, err := NewCredential()
	require.NoError(t, err)
	k1, err := ev.Derive(Input(encode(t, alice), c1))
	require.NoError(t, err)
	k2, err := ev.Derive(Input(encode(t, alice), c2))
	require.NoError(t, err)
	kNone, err := ev.Derive(encode(t, alice))
	require.NoError(t, err)
	require.NotEqual(t, k1.Index(), k2.Index(), "another credential, another index")
	require.NotEqual(t, k1.Index(), kNone.Index(), "the identity alone gives another index")
	ct, err := Seal(k1, []byte("conditions"))
	require.NoError(t, err)
	pt, err := OpenRead(k1.ReadKey(), ct)
	require.NoError(t, err)
	require.Equal(t, "conditions", string(pt))
	for _, k := range []*Key{k2, kNone} {
		_, err := Open(k, ct)
		require.ErrorIs(t, err, ErrDecrypt)
	}
	require.NotEqual(t, k1.AccessPublicKey(), k2.AccessPublicKey())
	// The read key's encoding in a grant holds index and record key only:
	// the access key's seed is not among its bytes.
	b, err := (&Grant{Reads: []Read{{Key: k1.ReadKey()}}}).MarshalBinary()
	require.NoError(t, err)
	require.False(t, bytes.Contains(b, k1.AccessKey().Seed()))
	require.False(t, bytes.Contains(b, k1.y[:16]))
}
