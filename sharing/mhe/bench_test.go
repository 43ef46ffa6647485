package mhe_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/sharing/mhe"
)

var benchProfiles = []struct {
	name string
	lit  func() mhe.ParamsLiteral
}{{"A", mhe.ProfileA}, {"B", mhe.ProfileB}}

const benchRecords = 10_000

// benchLiteral: L = 3 components (value, value², count), as in the notes'
// cost tables, 3 parties.
func benchLiteral(profile mhe.ParamsLiteral, n, t int) mhe.ParamsLiteral {
	lit := profile
	lit.Parties, lit.Threshold, lit.Components, lit.MaxRecords = n, t, 3, benchRecords
	lit.MaxAbs = []uint64{1 << 16, 1 << 32, 1}
	return lit
}

func benchContribs(m int) [][]uint64 {
	r := newTestRand(1)
	out := make([][]uint64, m)
	for i := range out {
		v := r.Uint64N(1 << 16)
		out[i] = []uint64{v, v * v, 1}
	}
	return out
}

// BenchmarkEncryptContributions: one party encrypts 10k positions (encode +
// public-key encryption of ⌈10k/B⌉ ciphertexts, plus marshalling).
func BenchmarkEncryptContributions(b *testing.B) {
	for _, pr := range benchProfiles {
		b.Run(fmt.Sprintf("profile=%s/L=3/m=%d", pr.name, benchRecords), func(b *testing.B) {
			s := newSession(b, benchLiteral(pr.lit(), 3, 0))
			rows := benchContribs(benchRecords)
			b.ReportAllocs()
			var bytes, count int
			for b.Loop() {
				out, err := s.parties[0].EncryptContributions(s.cpk, rows)
				require.NoError(b, err)
				bytes, count = 0, len(out)
				for _, m := range out {
					enc, err := m.MarshalBinary()
					require.NoError(b, err)
					bytes += len(enc)
				}
			}
			b.ReportMetric(float64(count), "cts/op")
			b.ReportMetric(float64(bytes), "upload-B/op")
		})
	}
}

// BenchmarkEvaluate: the coordinator decodes every party's ciphertexts
// (3 parties × 10k positions), multiplies by the indicators, sums, and runs
// Trace (and Rescale in Profile A).
func BenchmarkEvaluate(b *testing.B) {
	for _, pr := range benchProfiles {
		b.Run(fmt.Sprintf("profile=%s/L=3/parties=3/m=%d", pr.name, benchRecords), func(b *testing.B) {
			s := newSession(b, benchLiteral(pr.lit(), 3, 0))
			rows := benchContribs(benchRecords)
			r := newTestRand(2)
			var wire [][]byte
			inds := make([][]bool, 3)
			for i, p := range s.parties {
				out, err := p.EncryptContributions(s.cpk, rows)
				require.NoError(b, err)
				for _, m := range out {
					enc, err := m.MarshalBinary()
					require.NoError(b, err)
					wire = append(wire, enc)
				}
				inds[i] = randomIndicator(r, benchRecords)
			}
			msg := s.params.NewCiphertextMsg()
			b.ReportAllocs()
			for b.Loop() {
				acc, err := s.coord.NewAccumulator(inds)
				require.NoError(b, err)
				for _, enc := range wire {
					require.NoError(b, msg.UnmarshalBinary(enc))
					require.NoError(b, acc.Add(msg))
				}
				_, err = acc.Finalize()
				require.NoError(b, err)
			}
			b.ReportMetric(float64(len(wire)), "cts/op")
		})
	}
}

// BenchmarkPartySetup: one party's key-generation shares (CKG and all
// Galois keys), encoded.
func BenchmarkPartySetup(b *testing.B) {
	for _, pr := range benchProfiles {
		b.Run("profile="+pr.name+"/L=3", func(b *testing.B) {
			params, err := mhe.NewParams(benchLiteral(pr.lit(), 3, 0))
			require.NoError(b, err)
			id, err := mhe.NewSessionID(params, "bench")
			require.NoError(b, err)
			p, err := mhe.NewParty(params, id, 0)
			require.NoError(b, err)
			var bytes int
			for b.Loop() {
				c, err := p.GenCKGShare()
				require.NoError(b, err)
				g, err := p.GenGaloisShares()
				require.NoError(b, err)
				cb, _ := c.MarshalBinary()
				gb, _ := g.MarshalBinary()
				bytes = len(cb) + len(gb)
			}
			b.ReportMetric(float64(bytes), "upload-B/op")
		})
	}
}

// BenchmarkPCKSShare: one active party's output share in a 2-of-3 session.
func BenchmarkPCKSShare(b *testing.B) {
	for _, pr := range benchProfiles {
		b.Run("profile="+pr.name+"/t=2/n=3", func(b *testing.B) {
			s := newSession(b, benchLiteral(pr.lit(), 3, 2))
			var cts []*mhe.CiphertextMsg
			inds := make([][]bool, 3)
			for i, p := range s.parties {
				out, err := p.EncryptContributions(s.cpk, benchContribs(10))
				require.NoError(b, err)
				cts = append(cts, out...)
				inds[i] = make([]bool, 10)
			}
			agg, err := s.coord.Evaluate(cts, inds)
			require.NoError(b, err)
			req, err := agg.PCKSRequest([]mhe.PartyID{0, 1})
			require.NoError(b, err)
			_, rkey, err := mhe.NewRecipient(s.params, s.id)
			require.NoError(b, err)
			for b.Loop() {
				_, err := s.parties[0].GenPCKSShare(req, rkey)
				require.NoError(b, err)
			}
		})
	}
}
