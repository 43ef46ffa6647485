package mhe_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/sharing/mhe"
)

func TestCheckSecurity(t *testing.T) {
	for _, tc := range []struct {
		logN    int
		logQP   float64
		wantErr error
	}{
		{12, 109, nil},
		{12, 109.01, mhe.ErrInsecureParams},
		{13, 180, nil},
		{13, 218, nil},
		{13, 218.5, mhe.ErrInsecureParams},
		{13, 240, mhe.ErrInsecureParams},
		{14, 240, nil},
		{14, 438, nil},
		{14, 439, mhe.ErrInsecureParams},
		{15, 881, nil},
		{9, 10, mhe.ErrInsecureParams},   // not in the table
		{16, 100, mhe.ErrInsecureParams}, // not in the table
	} {
		t.Run(fmt.Sprintf("logN=%d/logQP=%g", tc.logN, tc.logQP), func(t *testing.T) {
			err := mhe.CheckSecurity(tc.logN, tc.logQP)
			if tc.wantErr == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.wantErr)
			}
		})
	}
}

func TestNewParams(t *testing.T) {
	T := mhe.DefaultPlaintextModulus
	base := func(profile mhe.ParamsLiteral) mhe.ParamsLiteral { return testLiteral(profile, 3, 0, 1000) }
	for _, tc := range []struct {
		name    string
		edit    func(*mhe.ParamsLiteral)
		wantErr error
		wantMsg string // substring of the error naming the violated bound
	}{
		{name: "profileA", edit: func(l *mhe.ParamsLiteral) { *l = base(mhe.ProfileA()) }},
		{name: "profileB", edit: func(l *mhe.ParamsLiteral) {}},
		{name: "profileB/16 parties/t=9", edit: func(l *mhe.ParamsLiteral) { l.Parties, l.Threshold = 16, 9 }},
		{name: "one party", edit: func(l *mhe.ParamsLiteral) { l.Parties = 1 }, wantErr: mhe.ErrInvalidParams, wantMsg: "parties = 1"},
		{name: "threshold 1", edit: func(l *mhe.ParamsLiteral) { l.Threshold = 1 }, wantErr: mhe.ErrInvalidParams, wantMsg: "threshold = 1"},
		{name: "threshold > n", edit: func(l *mhe.ParamsLiteral) { l.Threshold = 4 }, wantErr: mhe.ErrInvalidParams, wantMsg: "threshold = 4"},
		{name: "no components", edit: func(l *mhe.ParamsLiteral) { l.Components, l.MaxAbs = 0, nil }, wantErr: mhe.ErrInvalidParams, wantMsg: "components = 0"},
		{name: "max_abs length", edit: func(l *mhe.ParamsLiteral) { l.MaxAbs = l.MaxAbs[:2] }, wantErr: mhe.ErrInvalidParams, wantMsg: "len(max_abs)"},
		{name: "no records", edit: func(l *mhe.ParamsLiteral) { l.MaxRecords = 0 }, wantErr: mhe.ErrInvalidParams, wantMsg: "max_records = 0"},
		{name: "insecure logN=13 with 240 bits", edit: func(l *mhe.ParamsLiteral) { l.LogQ = []int{60, 60, 60} }, wantErr: mhe.ErrInsecureParams, wantMsg: "logQP = 240.00 > 218"},
		{name: "logN not in table", edit: func(l *mhe.ParamsLiteral) { l.LogN = 16 }, wantErr: mhe.ErrInsecureParams, wantMsg: "logN = 16"},
		{name: "61-bit prime", edit: func(l *mhe.ParamsLiteral) { l.LogQ = []int{61, 60} }, wantErr: mhe.ErrInvalidParams, wantMsg: "prime size 61"},
		{name: "T not prime", edit: func(l *mhe.ParamsLiteral) { l.PlaintextModulus = T + 2 }, wantErr: mhe.ErrInvalidParams, wantMsg: "not a prime"},
		{name: "T above q0", edit: func(l *mhe.ParamsLiteral) { l.PlaintextModulus = 1<<61 - 1 }, wantErr: mhe.ErrInvalidParams},
		{name: "rescale with one prime", edit: func(l *mhe.ParamsLiteral) { l.LogQ, l.Rescale = []int{60}, true }, wantErr: mhe.ErrInvalidParams, wantMsg: "rescale"},
		{
			name:    "bounds: sums of squares of 2^40 over 2^20 records",
			edit:    func(l *mhe.ParamsLiteral) { l.Parties, l.MaxRecords = 16, 1<<20 },
			wantErr: mhe.ErrBoundsTooLarge, wantMsg: "component 1",
		},
		{
			name: "bounds: largest fitting aggregate", // 2·2·1·a = T−1 < T
			edit: func(l *mhe.ParamsLiteral) {
				l.Parties, l.MaxRecords, l.Components, l.MaxAbs = 2, 1, 1, []uint64{(T - 1) / 4}
			},
		},
		{
			name: "bounds: smallest failing aggregate", // 2·2·1·(a+1) = T+3 ≥ T
			edit: func(l *mhe.ParamsLiteral) {
				l.Parties, l.MaxRecords, l.Components, l.MaxAbs = 2, 1, 1, []uint64{(T-1)/4 + 1}
			},
			wantErr: mhe.ErrBoundsTooLarge, wantMsg: "component 0",
		},
		{name: "smudging above the limit", edit: func(l *mhe.ParamsLiteral) { l.LogSmudgingSigma = 57 }, wantErr: mhe.ErrInvalidParams, wantMsg: "log_smudging_sigma = 57"},
		{
			name:    "smudging breaks correctness with 64 parties",
			edit:    func(l *mhe.ParamsLiteral) { l.LogSmudgingSigma, l.Parties, l.MaxRecords = 56, 64, 10 },
			wantErr: mhe.ErrInvalidParams, wantMsg: "64·6σ",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lit := base(mhe.ProfileB())
			tc.edit(&lit)
			p, err := mhe.NewParams(lit)
			if tc.wantErr == nil {
				require.NoError(t, err)
				require.NoError(t, mhe.CheckSecurity(lit.LogN, p.LogQP()))
				return
			}
			require.ErrorIs(t, err, tc.wantErr)
			require.Nil(t, p)
			if tc.wantMsg != "" {
				require.Contains(t, err.Error(), tc.wantMsg)
			}
			t.Log(err)
		})
	}
}

// TestLayout pins the coefficient layout: K blocks (a power of two ≥ L,
// never 2), B = N/K positions per ciphertext, log2(N/K) Galois keys (plus
// the conjugation key for K = 1).
func TestLayout(t *testing.T) {
	for _, tc := range []struct {
		profile           mhe.ParamsLiteral
		name              string
		components, wantB int
		wantKeys          int
	}{
		{mhe.ProfileA(), "A", 3, 4096, 12},
		{mhe.ProfileA(), "A", 5, 2048, 11},
		{mhe.ProfileB(), "B", 3, 2048, 11},
		{mhe.ProfileB(), "B", 5, 1024, 10},
		{mhe.ProfileB(), "B", 2, 2048, 11},
		{mhe.ProfileB(), "B", 1, 8192, 13},
	} {
		t.Run(fmt.Sprintf("profile=%s/L=%d", tc.name, tc.components), func(t *testing.T) {
			lit := tc.profile
			lit.Parties, lit.Components, lit.MaxRecords = 2, tc.components, 10
			lit.MaxAbs = make([]uint64, tc.components)
			p, err := mhe.NewParams(lit)
			require.NoError(t, err)
			require.Equal(t, tc.wantB, p.PositionsPerCiphertext())
			require.Len(t, p.GaloisElements(), tc.wantKeys)
			for _, g := range p.GaloisElements() {
				require.NotEqual(t, uint64(1), g, "identity Galois element")
			}
			require.Equal(t, 1, p.CiphertextCount(0))
			require.Equal(t, 1, p.CiphertextCount(tc.wantB))
			require.Equal(t, 2, p.CiphertextCount(tc.wantB+1))
		})
	}
}

// TestComponentCounts runs the protocol end to end for aggregate lengths that
// hit every Trace case (K = 1, the K = 2 → 4 substitution, K = 4, 8, 16).
func TestComponentCounts(t *testing.T) {
	for _, L := range []int{1, 2, 3, 4, 8, 9} {
		t.Run(fmt.Sprintf("profile=B/L=%d", L), func(t *testing.T) {
			r := newTestRand(uint64(L))
			lit := mhe.ProfileB()
			lit.Parties, lit.Components, lit.MaxRecords = 2, L, 40
			lit.MaxAbs = make([]uint64, L)
			for j := range lit.MaxAbs {
				lit.MaxAbs[j] = 1 << 30
			}
			s := newSession(t, lit)
			want := make([]uint64, L)
			var cts []*mhe.CiphertextMsg
			inds := make([][]bool, 2)
			for i, p := range s.parties {
				rows := make([][]uint64, 40)
				inds[i] = randomIndicator(r, 40)
				for pos := range rows {
					rows[pos] = make([]uint64, L)
					for j := range rows[pos] {
						rows[pos][j] = uint64(r.Int64N(1<<31) - (1<<30 - 1))
						if inds[i][pos] {
							want[j] += rows[pos][j]
						}
					}
				}
				out, err := p.EncryptContributions(s.cpk, rows)
				require.NoError(t, err)
				cts = append(cts, out...)
			}
			agg, err := s.coord.Evaluate(cts, inds)
			require.NoError(t, err)
			rec, rkey, err := mhe.NewRecipient(s.params, s.id)
			require.NoError(t, err)
			req, err := agg.PCKSRequest(allParties(2))
			require.NoError(t, err)
			var shares []*mhe.PCKSShareMsg
			for _, p := range s.parties {
				sh, err := p.GenPCKSShare(req, rkey)
				require.NoError(t, err)
				shares = append(shares, sh)
			}
			res, err := agg.KeySwitch(allParties(2), shares)
			require.NoError(t, err)
			got, err := rec.Decrypt(res)
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}
}
