package mhe_test

import (
	"encoding/binary"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/sharing/mhe"
)

// smallLiteral is a fast parameter set for codec tests and fuzzing only:
// N = 2^12, one 59-bit ciphertext prime, one 50-bit key-switching prime
// (logQP 109, exactly the 128-bit bound), T = 65537, σ = 2^10. It passes
// NewParams; it is not a production profile.
func smallLiteral() mhe.ParamsLiteral {
	return mhe.ParamsLiteral{
		LogN: 12, LogQ: []int{59}, LogP: []int{50}, PlaintextModulus: 65537, LogSmudgingSigma: 10,
		Parties: 3, Threshold: 2, Components: 4, MaxRecords: 100, MaxAbs: []uint64{100, 100, 1, 1},
	}
}

// codecCase is one message type: a valid encoding and a fresh message to
// decode into.
type codecCase struct {
	name  string
	valid []byte
	fresh func() binaryMessage
}

// codecCases runs a small session and returns a valid encoding of every
// message type.
func codecCases(t testing.TB, lit mhe.ParamsLiteral) []codecCase {
	t.Helper()
	s := newSession(t, lit)
	p := s.params
	enc := func(m binaryMessage) []byte {
		b, err := m.MarshalBinary()
		require.NoError(t, err)
		return b
	}
	party := s.parties[0]
	ckg, err := party.GenCKGShare()
	require.NoError(t, err)
	gkg, err := party.GenGaloisShares()
	require.NoError(t, err)

	// A fresh threshold share (the session's parties have used theirs).
	q, err := mhe.NewParty(p, s.id, 1)
	require.NoError(t, err)
	thr, err := q.GenThresholdShares()
	require.NoError(t, err)

	r := newTestRand(3)
	cts := make([]*mhe.CiphertextMsg, 0, 3)
	inds := make([][]bool, 3)
	for i, pt := range s.parties {
		rows := make([][]uint64, 10)
		for k := range rows {
			rows[k] = make([]uint64, p.Components())
			rows[k][0] = uint64(r.IntN(100))
		}
		inds[i] = randomIndicator(r, 10)
		out, err := pt.EncryptContributions(s.cpk, rows)
		require.NoError(t, err)
		cts = append(cts, out...)
	}
	agg, err := s.coord.Evaluate(cts, inds)
	require.NoError(t, err)
	active := []mhe.PartyID{0, 2}
	req, err := agg.PCKSRequest(active)
	require.NoError(t, err)
	_, rkey, err := mhe.NewRecipient(p, s.id)
	require.NoError(t, err)
	var shares []*mhe.PCKSShareMsg
	for _, a := range active {
		sh, err := s.parties[a].GenPCKSShare(req, rkey)
		require.NoError(t, err)
		shares = append(shares, sh)
	}
	res, err := agg.KeySwitch(active, shares)
	require.NoError(t, err)

	return []codecCase{
		{"CKGShare", enc(ckg), func() binaryMessage { return p.NewCKGShareMsg() }},
		{"PublicKey", enc(s.cpk), func() binaryMessage { return p.NewPublicKeyMsg() }},
		{"GaloisShares", enc(gkg), func() binaryMessage { return p.NewGaloisSharesMsg() }},
		{"ThresholdShare", enc(thr[0]), func() binaryMessage { return p.NewThresholdShareMsg() }},
		{"Ciphertext", enc(cts[0]), func() binaryMessage { return p.NewCiphertextMsg() }},
		{"PCKSRequest", enc(req), func() binaryMessage { return p.NewPCKSRequestMsg() }},
		{"RecipientKey", enc(rkey), func() binaryMessage { return p.NewRecipientKeyMsg() }},
		{"PCKSShare", enc(shares[0]), func() binaryMessage { return p.NewPCKSShareMsg() }},
		{"Result", enc(res), func() binaryMessage { return p.NewResultMsg() }},
	}
}

// TestBadEncodings: every message rejects truncation, extension, a wrong
// version or type, a sender out of range and a coefficient ≥ q_i, with
// ErrMalformedMessage and no panic; a valid encoding round-trips.
// Truncations: every length up to the first coefficients, then every 997th,
// then the last 64 (the length is checked first, so this covers every code
// path).
func TestBadEncodings(t *testing.T) {
	for _, lit := range []mhe.ParamsLiteral{smallLiteral(), testLiteral(mhe.ProfileB(), 3, 2, 50)} {
		for _, tc := range codecCases(t, lit) {
			t.Run("logN="+strconv.Itoa(lit.LogN)+"/"+tc.name, func(t *testing.T) {
				into := tc.fresh()
				bad := func(b []byte, what string) {
					t.Helper()
					err := into.UnmarshalBinary(b)
					require.ErrorIs(t, err, mhe.ErrMalformedMessage, what)
				}
				m := tc.fresh()
				require.NoError(t, m.UnmarshalBinary(tc.valid))
				again, err := m.MarshalBinary()
				require.NoError(t, err)
				require.Equal(t, tc.valid, again)

				n := len(tc.valid)
				first := 36 + 64 + 64 // header, longest fixed fields, 8 coefficients
				for l := 0; l < n; l++ {
					if l <= first || l%997 == 0 || l >= n-64 {
						bad(tc.valid[:l], "truncated")
					}
				}
				bad(append(append([]byte(nil), tc.valid...), 0), "extended by one byte")
				bad(append(append([]byte(nil), tc.valid...), make([]byte, 8)...), "extended by one coefficient")

				b := append([]byte(nil), tc.valid...)
				b[0]++
				bad(b, "version")
				b = append([]byte(nil), tc.valid...)
				b[1] ^= 0x40
				bad(b, "type")
				b = append([]byte(nil), tc.valid...)
				binary.BigEndian.PutUint16(b[34:], uint16(lit.Parties))
				bad(b, "sender out of range")
				b = append([]byte(nil), tc.valid...)
				binary.LittleEndian.PutUint64(b[n-8:], ^uint64(0))
				bad(b, "coefficient ≥ q")
			})
		}
	}
}

// fuzzUnmarshal is the body of every FuzzUnmarshal target: decoding arbitrary
// bytes never panics, fails only with ErrMalformedMessage, and an accepted
// input re-encodes to identical bytes.
func fuzzUnmarshal(f *testing.F, name string) {
	var tc codecCase
	for _, c := range codecCases(f, smallLiteral()) {
		if c.name == name {
			tc = c
		}
	}
	f.Add(tc.valid)
	f.Add(tc.valid[:len(tc.valid)-1])
	f.Add(tc.valid[:len(tc.valid)/2])
	f.Add(append(append([]byte(nil), tc.valid...), 0))
	f.Add([]byte{})
	f.Add(tc.valid[:40])
	f.Fuzz(func(t *testing.T, data []byte) {
		m := tc.fresh()
		if err := m.UnmarshalBinary(data); err != nil {
			require.ErrorIs(t, err, mhe.ErrMalformedMessage)
			return
		}
		b, err := m.MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, data, b)
	})
}

func FuzzUnmarshalCKGShare(f *testing.F)       { fuzzUnmarshal(f, "CKGShare") }
func FuzzUnmarshalPublicKey(f *testing.F)      { fuzzUnmarshal(f, "PublicKey") }
func FuzzUnmarshalGaloisShares(f *testing.F)   { fuzzUnmarshal(f, "GaloisShares") }
func FuzzUnmarshalThresholdShare(f *testing.F) { fuzzUnmarshal(f, "ThresholdShare") }
func FuzzUnmarshalCiphertext(f *testing.F)     { fuzzUnmarshal(f, "Ciphertext") }
func FuzzUnmarshalPCKSRequest(f *testing.F)    { fuzzUnmarshal(f, "PCKSRequest") }
func FuzzUnmarshalRecipientKey(f *testing.F)   { fuzzUnmarshal(f, "RecipientKey") }
func FuzzUnmarshalPCKSShare(f *testing.F)      { fuzzUnmarshal(f, "PCKSShare") }
func FuzzUnmarshalResult(f *testing.F)         { fuzzUnmarshal(f, "Result") }
