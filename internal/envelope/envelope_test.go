package envelope

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/internal/devcert"
)

func TestSealOpen(t *testing.T) {
	k, err := GenerateSessionKey()
	require.NoError(t, err)
	msg := []byte("0123456789abcdef0123456789abcdef")
	enc, ct, err := Seal(k.Public(), "s1", 4, 0, 1, msg)
	require.NoError(t, err)
	got, err := k.Open("s1", 4, 0, 1, enc, ct)
	require.NoError(t, err)
	require.Equal(t, msg, got)

	other, err := GenerateSessionKey()
	require.NoError(t, err)
	flip := func(b []byte, i int) []byte { c := append([]byte(nil), b...); c[i] ^= 1; return c }
	cases := []struct {
		name          string
		key           *SessionKey
		session       string
		round, fr, to uint32
		enc, ct       []byte
	}{
		{"other session", k, "s2", 4, 0, 1, enc, ct},
		{"other round (replayed into key round)", k, "s1", 2, 0, 1, enc, ct},
		{"re-addressed sender", k, "s1", 4, 2, 1, enc, ct},
		{"re-addressed recipient", k, "s1", 4, 0, 2, enc, ct},
		{"wrong recipient key", other, "s1", 4, 0, 1, enc, ct},
		{"flipped enc", k, "s1", 4, 0, 1, flip(enc, 3), ct},
		{"flipped ciphertext", k, "s1", 4, 0, 1, enc, flip(ct, 5)},
		{"flipped tag", k, "s1", 4, 0, 1, enc, flip(ct, len(ct)-1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.key.Open(tc.session, tc.round, tc.fr, tc.to, tc.enc, tc.ct)
			require.ErrorIs(t, err, ErrEnvelope)
		})
	}
	// Every truncation and extension of enc and ciphertext is refused.
	for i := 0; i < len(enc); i++ {
		_, err := k.Open("s1", 4, 0, 1, enc[:i], ct)
		require.ErrorIs(t, err, ErrEnvelope)
	}
	_, err = k.Open("s1", 4, 0, 1, append(append([]byte(nil), enc...), 0), ct)
	require.ErrorIs(t, err, ErrEnvelope)
	for i := 0; i < len(ct); i++ {
		_, err := k.Open("s1", 4, 0, 1, enc, ct[:i])
		require.ErrorIs(t, err, ErrEnvelope)
	}
	_, err = k.Open("s1", 4, 0, 1, enc, append(append([]byte(nil), ct...), 0))
	require.ErrorIs(t, err, ErrEnvelope)
	// Oversized payloads are refused before sealing.
	_, _, err = Seal(k.Public(), "s1", 4, 0, 1, make([]byte, MaxEnvelopePlain+1))
	require.Error(t, err)
	_, _, err = Seal([]byte("short"), "s1", 4, 0, 1, msg)
	require.Error(t, err)
}

// Bulk envelopes carry up to MaxBulkPlain bytes; a bulk envelope is not a
// small one (Open refuses its length) and the limits are enforced both ways.
func TestSealOpenBulk(t *testing.T) {
	k, err := GenerateSessionKey()
	require.NoError(t, err)
	msg := make([]byte, 600_000)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	enc, ct, err := SealBulk(k.Public(), "s1", 6, 1, 0, msg)
	require.NoError(t, err)
	got, err := k.OpenBulk("s1", 6, 1, 0, enc, ct)
	require.NoError(t, err)
	require.Equal(t, msg, got)
	_, err = k.Open("s1", 6, 1, 0, enc, ct)
	require.ErrorIs(t, err, ErrEnvelope, "too long for a small envelope")
	_, err = k.OpenBulk("s1", 6, 0, 1, enc, ct)
	require.ErrorIs(t, err, ErrEnvelope, "re-addressed")
	_, err = k.OpenBulk("s1", 6, 1, 0, enc, ct[:len(ct)-1])
	require.ErrorIs(t, err, ErrEnvelope, "truncated")
	_, _, err = SealBulk(k.Public(), "s1", 6, 1, 0, make([]byte, MaxBulkPlain+1))
	require.Error(t, err)
	_, err = k.OpenBulk("s1", 6, 1, 0, enc, make([]byte, MaxBulkSealed+1))
	require.ErrorIs(t, err, ErrEnvelope, "oversized")
}

func TestSessionKeySignatures(t *testing.T) {
	ca, err := devcert.NewCA("ca")
	require.NoError(t, err)
	leaf, err := ca.Issue("hospital-a")
	require.NoError(t, err)
	cert, err := leaf.TLSCertificate()
	require.NoError(t, err)
	signer := cert.PrivateKey.(crypto.Signer)
	k, err := GenerateSessionKey()
	require.NoError(t, err)
	sig, err := SignSessionKey(signer, "s", "hospital-a", k.Public())
	require.NoError(t, err)
	der := cert.Certificate[0]
	require.NoError(t, VerifySessionKey(ca.Pool(), der, "s", "hospital-a", k.Public(), sig))

	rogueCA, err := devcert.NewCA("rogue")
	require.NoError(t, err)
	other, err := GenerateSessionKey()
	require.NoError(t, err)
	for name, err := range map[string]error{
		"other session":       VerifySessionKey(ca.Pool(), der, "s2", "hospital-a", k.Public(), sig),
		"other name":          VerifySessionKey(ca.Pool(), der, "s", "hospital-b", k.Public(), sig),
		"substituted key":     VerifySessionKey(ca.Pool(), der, "s", "hospital-a", other.Public(), sig),
		"untrusted CA":        VerifySessionKey(rogueCA.Pool(), der, "s", "hospital-a", k.Public(), sig),
		"garbage certificate": VerifySessionKey(ca.Pool(), []byte{1, 2, 3}, "s", "hospital-a", k.Public(), sig),
		"truncated signature": VerifySessionKey(ca.Pool(), der, "s", "hospital-a", k.Public(), sig[:len(sig)-1]),
	} {
		require.ErrorIs(t, err, ErrRoster, name)
	}

	// Result signatures.
	res := []byte(`{"session":"s","intersection":3}`)
	rs, err := SignResult(signer, "s", res)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	require.NoError(t, VerifyResult(c, "s", res, rs))
	require.Error(t, VerifyResult(c, "s", []byte(`{"session":"s","intersection":4}`), rs))
	require.Error(t, VerifyResult(c, "t", res, rs))
	// A result signature is not a session-key signature, and vice versa.
	require.Error(t, VerifySessionKey(ca.Pool(), der, "s", labelResultSig, res, sig))
}

func FuzzOpen(f *testing.F) {
	k, err := GenerateSessionKey()
	require.NoError(f, err)
	enc, ct, err := Seal(k.Public(), "s", 4, 0, 1, make([]byte, 32))
	require.NoError(f, err)
	f.Add(enc, ct, uint32(4), uint32(0), uint32(1))
	f.Add([]byte{}, []byte{}, uint32(0), uint32(0), uint32(0))
	f.Fuzz(func(t *testing.T, enc, ct []byte, round, from, to uint32) {
		pt, err := k.Open("s", round, from, to, enc, ct)
		if err != nil {
			require.ErrorIs(t, err, ErrEnvelope)
			require.Nil(t, pt)
		}
	})
}

// An envelope opens only for its session, round, sender, recipient and key,
// and any change to its bytes is refused.
func TestEnvelopeBinding(t *testing.T) {
	t.Parallel()
	b, err := GenerateSessionKey()
	require.NoError(t, err)
	other, err := GenerateSessionKey()
	require.NoError(t, err)
	const sid = "cohort-7"
	msg := bytes.Repeat([]byte{0x5a}, 32)
	enc, ct, err := Seal(b.Public(), sid, 4, 0, 1, msg)
	require.NoError(t, err)
	pt, err := b.Open(sid, 4, 0, 1, enc, ct)
	require.NoError(t, err)
	require.Equal(t, msg, pt)

	flip := func(x []byte, i int) []byte { y := slices.Clone(x); y[i] ^= 0x80; return y }
	for _, tc := range []struct {
		name            string
		key             *SessionKey
		session         string
		round, from, to uint32
		enc, ct         []byte
	}{
		{"other session", b, "cohort-8", 4, 0, 1, enc, ct},
		{"session prefix", b, "cohort-", 4, 0, 1, enc, ct},
		{"other round", b, sid, 2, 0, 1, enc, ct},
		{"round 0", b, sid, 0, 0, 1, enc, ct},
		{"other sender", b, sid, 4, 2, 1, enc, ct},
		{"other recipient", b, sid, 4, 0, 2, enc, ct},
		{"swapped from/to", b, sid, 4, 1, 0, enc, ct},
		{"other recipient key", other, sid, 4, 0, 1, enc, ct},
		{"enc modified", b, sid, 4, 0, 1, flip(enc, 0), ct},
		{"enc last byte", b, sid, 4, 0, 1, flip(enc, 31), ct},
		{"ciphertext modified", b, sid, 4, 0, 1, enc, flip(ct, 0)},
		{"tag modified", b, sid, 4, 0, 1, enc, flip(ct, len(ct)-1)},
		{"ciphertext extended", b, sid, 4, 0, 1, enc, append(slices.Clone(ct), 0)},
		{"enc and ct swapped", b, sid, 4, 0, 1, ct[:32], enc},
		{"empty", b, sid, 4, 0, 1, nil, nil},
		{"oversized ciphertext", b, sid, 4, 0, 1, enc, make([]byte, MaxEnvelopeSealed+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pt, err := tc.key.Open(tc.session, tc.round, tc.from, tc.to, tc.enc, tc.ct)
			require.ErrorIs(t, err, ErrEnvelope)
			require.Nil(t, pt)
		})
	}
	t.Run("every truncation", func(t *testing.T) {
		for i := 0; i < len(enc); i++ {
			_, err := b.Open(sid, 4, 0, 1, enc[:i], ct)
			require.ErrorIs(t, err, ErrEnvelope, "enc[:%d]", i)
		}
		for i := 0; i < len(ct); i++ {
			_, err := b.Open(sid, 4, 0, 1, enc, ct[:i])
			require.ErrorIs(t, err, ErrEnvelope, "ct[:%d]", i)
		}
	})
	t.Run("every bit", func(t *testing.T) {
		for i := 0; i < 8*len(ct); i++ {
			y := slices.Clone(ct)
			y[i/8] ^= 1 << (i % 8)
			_, err := b.Open(sid, 4, 0, 1, enc, y)
			require.ErrorIs(t, err, ErrEnvelope, "ct bit %d", i)
		}
	})
}
