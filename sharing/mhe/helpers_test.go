package mhe_test

import (
	"encoding"
	"encoding/binary"
	"fmt"
	mathrand "math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/sharing/mhe"
)

// newTestRand returns a deterministic, NON-cryptographic generator for test
// inputs only (contributions, indicators, active sets), so failures are
// reproducible. All key material comes from the package (crypto/rand).
func newTestRand(seed uint64) *mathrand.Rand {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return mathrand.New(mathrand.NewChaCha8(s))
}

// testComponents is the contribution layout used by the tests: value,
// value², a histogram-bin indicator, a count_if indicator, and the
// contribution indicator (count). Values may be negative (two's complement).
const testComponents = 5

func testLiteral(profile mhe.ParamsLiteral, n, t, maxRecords int) mhe.ParamsLiteral {
	lit := profile
	lit.Parties, lit.Threshold, lit.Components, lit.MaxRecords = n, t, testComponents, maxRecords
	lit.MaxAbs = []uint64{1 << 20, 1 << 40, 1, 1, 1}
	return lit
}

// randomContribs returns m contribution vectors with |v| < 2^20.
func randomContribs(r *mathrand.Rand, m int) [][]uint64 {
	out := make([][]uint64, m)
	for p := range out {
		v := r.Int64N(1<<21) - (1<<20 - 1)
		bin, cond := uint64(0), uint64(0)
		if v >= 0 && v < 1<<19 {
			bin = 1
		}
		if v%3 == 0 {
			cond = 1
		}
		out[p] = []uint64{uint64(v), uint64(v * v), bin, cond, 1}
	}
	return out
}

func randomIndicator(r *mathrand.Rand, m int) []bool {
	out := make([]bool, m)
	for i := range out {
		out[i] = r.IntN(2) == 0
	}
	return out
}

// plainAggregate is the reference: Σ_i Σ_{p ∈ I} c_p in Z_2^64.
func plainAggregate(contribs [][][]uint64, inds [][]bool) []uint64 {
	out := make([]uint64, testComponents)
	for i := range contribs {
		for p, c := range contribs[i] {
			if inds[i][p] {
				for j := range out {
					out[j] += c[j]
				}
			}
		}
	}
	return out
}

type binaryMessage interface {
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

// wire sends m through its encoding into fresh, as a transport would.
func wire[M binaryMessage](t testing.TB, m M, fresh M) M {
	t.Helper()
	b, err := m.MarshalBinary()
	require.NoError(t, err)
	require.NoError(t, fresh.UnmarshalBinary(b))
	b2, err := fresh.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, b, b2, "re-encoding differs")
	return fresh
}

// session is one in-process run of the protocol, every message through its
// wire encoding.
type session struct {
	params  *mhe.Params
	id      mhe.SessionID
	parties []*mhe.Party
	coord   *mhe.Coordinator
	cpk     *mhe.PublicKeyMsg
}

// newSession runs the key rounds: CKG, Galois keys, and with a threshold the
// Shamir share exchange.
func newSession(t testing.TB, lit mhe.ParamsLiteral) *session {
	t.Helper()
	params, err := mhe.NewParams(lit)
	require.NoError(t, err)
	id, err := mhe.NewSessionID(params, fmt.Sprintf("test-%d-%d", lit.Parties, lit.Threshold))
	require.NoError(t, err)
	s := &session{params: params, id: id}
	n := params.Parties()
	s.coord, err = mhe.NewCoordinator(params, id)
	require.NoError(t, err)

	ckg := make([]*mhe.CKGShareMsg, n)
	gkg := make([]*mhe.GaloisSharesMsg, n)
	for i := 0; i < n; i++ {
		p, err := mhe.NewParty(params, id, mhe.PartyID(i))
		require.NoError(t, err)
		s.parties = append(s.parties, p)
		c, err := p.GenCKGShare()
		require.NoError(t, err)
		ckg[i] = wire(t, c, params.NewCKGShareMsg())
		g, err := p.GenGaloisShares()
		require.NoError(t, err)
		gkg[i] = wire(t, g, params.NewGaloisSharesMsg())
	}
	cpk, err := s.coord.AggregateCKG(ckg)
	require.NoError(t, err)
	s.cpk = wire(t, cpk, params.NewPublicKeyMsg())
	require.NoError(t, s.coord.AggregateGalois(gkg))

	if params.IsThreshold() {
		inbox := make([][]*mhe.ThresholdShareMsg, n)
		for _, p := range s.parties {
			out, err := p.GenThresholdShares()
			require.NoError(t, err)
			for _, m := range out {
				inbox[m.To] = append(inbox[m.To], wire(t, m, params.NewThresholdShareMsg()))
			}
		}
		for i, p := range s.parties {
			require.NoError(t, p.AggregateThresholdShares(inbox[i]))
		}
	}
	return s
}

// aggregate runs contribution, evaluation and output for the given inputs,
// with the PCKS round run by the parties in active, and returns the
// recipient's decryption.
func (s *session) aggregate(t testing.TB, contribs [][][]uint64, inds [][]bool, active []mhe.PartyID) ([]uint64, error) {
	t.Helper()
	params := s.params
	var cts []*mhe.CiphertextMsg
	for i, p := range s.parties {
		out, err := p.EncryptContributions(s.cpk, contribs[i])
		require.NoError(t, err)
		require.Len(t, out, params.CiphertextCount(len(contribs[i])))
		for _, m := range out {
			cts = append(cts, wire(t, m, params.NewCiphertextMsg()))
		}
	}
	agg, err := s.coord.Evaluate(cts, inds)
	require.NoError(t, err)

	rec, rkey, err := mhe.NewRecipient(params, s.id)
	require.NoError(t, err)
	rkey = wire(t, rkey, params.NewRecipientKeyMsg())

	req, err := agg.PCKSRequest(active)
	require.NoError(t, err)
	req = wire(t, req, params.NewPCKSRequestMsg())
	var shares []*mhe.PCKSShareMsg
	for _, a := range active {
		sh, err := s.parties[a].GenPCKSShare(req, rkey)
		require.NoError(t, err)
		shares = append(shares, wire(t, sh, params.NewPCKSShareMsg()))
	}
	res, err := agg.KeySwitch(active, shares)
	require.NoError(t, err)
	res = wire(t, res, params.NewResultMsg())
	return rec.Decrypt(res)
}

func allParties(n int) []mhe.PartyID {
	out := make([]mhe.PartyID, n)
	for i := range out {
		out[i] = mhe.PartyID(i)
	}
	return out
}
