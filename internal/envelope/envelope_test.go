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
	snd := mustKey(t)
	k, err := GenerateSessionKey()
	require.NoError(t, err)
	msg := []byte("0123456789abcdef0123456789abcdef")
	enc, ct, err := snd.Seal(k.Public(), "s1", 4, 0, 1, msg)
	require.NoError(t, err)
	got, err := k.Open(snd.Public(), "s1", 4, 0, 1, enc, ct)
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
			_, err := tc.key.Open(snd.Public(), tc.session, tc.round, tc.fr, tc.to, tc.enc, tc.ct)
			require.ErrorIs(t, err, ErrEnvelope)
		})
	}
	// Every truncation and extension of enc and ciphertext is refused.
	for i := 0; i < len(enc); i++ {
		_, err := k.Open(snd.Public(), "s1", 4, 0, 1, enc[:i], ct)
		require.ErrorIs(t, err, ErrEnvelope)
	}
	_, err = k.Open(snd.Public(), "s1", 4, 0, 1, append(append([]byte(nil), enc...), 0), ct)
	require.ErrorIs(t, err, ErrEnvelope)
	for i := 0; i < len(ct); i++ {
		_, err := k.Open(snd.Public(), "s1", 4, 0, 1, enc, ct[:i])
		require.ErrorIs(t, err, ErrEnvelope)
	}
	_, err = k.Open(snd.Public(), "s1", 4, 0, 1, enc, append(append([]byte(nil), ct...), 0))
	require.ErrorIs(t, err, ErrEnvelope)
	// Oversized payloads are refused before sealing.
	_, _, err = snd.Seal(k.Public(), "s1", 4, 0, 1, make([]byte, MaxEnvelopePlain+1))
	require.Error(t, err)
	_, _, err = snd.Seal([]byte("short"), "s1", 4, 0, 1, msg)
	require.Error(t, err)
}

// Bulk envelopes carry up to MaxBulkPlain bytes; a bulk envelope is not a
// small one (Open refuses its length) and the limits are enforced both ways.
func TestSealOpenBulk(t *testing.T) {
	snd := mustKey(t)
	k, err := GenerateSessionKey()
	require.NoError(t, err)
	msg := make([]byte, 600_000)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	enc, ct, err := snd.SealBulk(k.Public(), "s1", 6, 1, 0, msg)
	require.NoError(t, err)
	got, err := k.OpenBulk(snd.Public(), "s1", 6, 1, 0, enc, ct)
	require.NoError(t, err)
	require.Equal(t, msg, got)
	_, err = k.Open(snd.Public(), "s1", 6, 1, 0, enc, ct)
	require.ErrorIs(t, err, ErrEnvelope, "too long for a small envelope")
	_, err = k.OpenBulk(snd.Public(), "s1", 6, 0, 1, enc, ct)
	require.ErrorIs(t, err, ErrEnvelope, "re-addressed")
	_, err = k.OpenBulk(snd.Public(), "s1", 6, 1, 0, enc, ct[:len(ct)-1])
	require.ErrorIs(t, err, ErrEnvelope, "truncated")
	_, _, err = snd.SealBulk(k.Public(), "s1", 6, 1, 0, make([]byte, MaxBulkPlain+1))
	require.Error(t, err)
	_, err = k.OpenBulk(snd.Public(), "s1", 6, 1, 0, enc, make([]byte, MaxBulkSealed+1))
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
	st := ReadyStatement{Session: "s", Name: "hospital-a", HPKEKey: k.Public(), SetSize: 24, SpecHash: []byte("spec-hash")}
	sig, err := SignReady(signer, st)
	require.NoError(t, err)
	der := cert.Certificate[0]
	require.NoError(t, VerifyReady(ca.Pool(), der, st, sig))

	rogueCA, err := devcert.NewCA("rogue")
	require.NoError(t, err)
	other, err := GenerateSessionKey()
	require.NoError(t, err)
	with := func(edit func(*ReadyStatement)) ReadyStatement { c := st; edit(&c); return c }
	for name, err := range map[string]error{
		"other session":       VerifyReady(ca.Pool(), der, with(func(r *ReadyStatement) { r.Session = "s2" }), sig),
		"other name":          VerifyReady(ca.Pool(), der, with(func(r *ReadyStatement) { r.Name = "hospital-b" }), sig),
		"substituted key":     VerifyReady(ca.Pool(), der, with(func(r *ReadyStatement) { r.HPKEKey = other.Public() }), sig),
		"changed set size":    VerifyReady(ca.Pool(), der, with(func(r *ReadyStatement) { r.SetSize = 25 }), sig),
		"another spec":        VerifyReady(ca.Pool(), der, with(func(r *ReadyStatement) { r.SpecHash = []byte("other-spec") }), sig),
		"untrusted CA":        VerifyReady(rogueCA.Pool(), der, st, sig),
		"garbage certificate": VerifyReady(ca.Pool(), []byte{1, 2, 3}, st, sig),
		"truncated signature": VerifyReady(ca.Pool(), der, st, sig[:len(sig)-1]),
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
	// A result signature is not a Ready signature, nor a tally signature.
	require.Error(t, VerifyReady(ca.Pool(), der, ReadyStatement{Session: "s", Name: labelResultSig, HPKEKey: res}, rs))
	require.Error(t, VerifyTally(c, "s", res, rs))
	ts, err := SignTally(signer, "s", []byte{0, 0, 0, 3})
	require.NoError(t, err)
	require.NoError(t, VerifyTally(c, "s", []byte{0, 0, 0, 3}, ts))
	require.Error(t, VerifyTally(c, "s", []byte{0, 0, 0, 4}, ts))
}

func FuzzOpen(f *testing.F) {
	snd := mustKey(f)
	k, err := GenerateSessionKey()
	require.NoError(f, err)
	enc, ct, err := snd.Seal(k.Public(), "s", 4, 0, 1, make([]byte, 32))
	require.NoError(f, err)
	f.Add(enc, ct, uint32(4), uint32(0), uint32(1))
	f.Add([]byte{}, []byte{}, uint32(0), uint32(0), uint32(0))
	f.Fuzz(func(t *testing.T, enc, ct []byte, round, from, to uint32) {
		pt, err := k.Open(snd.Public(), "s", round, from, to, enc, ct)
		if err != nil {
			require.ErrorIs(t, err, ErrEnvelope)
			require.Nil(t, pt)
		}
	})
}

// An envelope opens only for its session, round, sender, recipient and key,
// and any change to its bytes is refused.
func TestEnvelopeBinding(t *testing.T) {
	snd := mustKey(t)
	t.Parallel()
	b, err := GenerateSessionKey()
	require.NoError(t, err)
	other, err := GenerateSessionKey()
	require.NoError(t, err)
	const sid = "cohort-7"
	msg := bytes.Repeat([]byte{0x5a}, 32)
	enc, ct, err := snd.Seal(b.Public(), sid, 4, 0, 1, msg)
	require.NoError(t, err)
	pt, err := b.Open(snd.Public(), sid, 4, 0, 1, enc, ct)
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
			pt, err := tc.key.Open(snd.Public(), tc.session, tc.round, tc.from, tc.to, tc.enc, tc.ct)
			require.ErrorIs(t, err, ErrEnvelope)
			require.Nil(t, pt)
		})
	}
	t.Run("every truncation", func(t *testing.T) {
		for i := 0; i < len(enc); i++ {
			_, err := b.Open(snd.Public(), sid, 4, 0, 1, enc[:i], ct)
			require.ErrorIs(t, err, ErrEnvelope, "enc[:%d]", i)
		}
		for i := 0; i < len(ct); i++ {
			_, err := b.Open(snd.Public(), sid, 4, 0, 1, enc, ct[:i])
			require.ErrorIs(t, err, ErrEnvelope, "ct[:%d]", i)
		}
	})
	t.Run("every bit", func(t *testing.T) {
		for i := 0; i < 8*len(ct); i++ {
			y := slices.Clone(ct)
			y[i/8] ^= 1 << (i % 8)
			_, err := b.Open(snd.Public(), sid, 4, 0, 1, enc, y)
			require.ErrorIs(t, err, ErrEnvelope, "ct bit %d", i)
		}
	})
}

func mustKey(t testing.TB) *SessionKey {
	k, err := GenerateSessionKey()
	require.NoError(t, err)
	return k
}

// Envelopes authenticate their sender: one sealed with another key (the
// coordinator's, say) does not open as coming from the claimed sender.
func TestEnvelopeAuthenticatesSender(t *testing.T) {
	snd, rcv, forger := mustKey(t), mustKey(t), mustKey(t)
	enc, ct, err := forger.Seal(rcv.Public(), "s", 4, 0, 1, make([]byte, 32))
	require.NoError(t, err)
	_, err = rcv.Open(snd.Public(), "s", 4, 0, 1, enc, ct)
	require.ErrorIs(t, err, ErrEnvelope)
	// Opened with the forger's own key it does open: the check is the key.
	_, err = rcv.Open(forger.Public(), "s", 4, 0, 1, enc, ct)
	require.NoError(t, err)
	_, err = rcv.Open([]byte("short"), "s", 4, 0, 1, enc, ct)
	require.ErrorIs(t, err, ErrEnvelope)
}
