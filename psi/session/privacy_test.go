package session_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/psi/session"
	"github.com/mpsi-dev/mpsi/sharing/noise"
)

func privacySpec(t testing.TB, extra string) (*session.Spec, error) {
	t.Helper()
	return session.ParseSpec(fmt.Appendf(nil, `{"id":"dp","parties":["a","b","c"],
"fields":{"n":"name","visits":"number"},"match":{"fields":["n"]},"reveal":["cardinality","aggregates"],
"aggregates":[{"name":"shared","kind":"count"},{"name":"visits","kind":"sum","field":"visits","min":0,"max":10}]%s}`, extra))
}

func TestPrivacySpec(t *testing.T) {
	for _, tc := range []struct{ extra, want string }{
		{`,"privacy":{"epsilon":0,"delta":1e-6}`, "privacy.epsilon"},
		{`,"privacy":{"epsilon":11,"delta":1e-6}`, "privacy.epsilon"},
		{`,"privacy":{"epsilon":1,"delta":0.01}`, "privacy.delta"},
		{`,"privacy":{"epsilon":1}`, "privacy.delta"},
		{`,"privacy":{"epsilon":1,"delta":1e-6,"mechanism":"laplace"}`, "mechanism"},
	} {
		_, err := privacySpec(t, tc.extra)
		require.ErrorIs(t, err, session.ErrInvalidSpec, tc.extra)
		require.ErrorContains(t, err, tc.want)
	}
	s, err := privacySpec(t, `,"privacy":{"epsilon":1,"delta":1e-6}`)
	require.NoError(t, err)
	require.Contains(t, string(s.Canonical()), `"privacy":{"epsilon":1,"delta":0.000001}`)
}

// The calibration: ρ gives back the spec's ε at δ; σ_j² = L·Δ_j²/(2ρ), with
// Δ the per-record bound times the contributing parties.
func TestNoisePlan(t *testing.T) {
	s, err := privacySpec(t, `,"privacy":{"epsilon":1,"delta":1e-6}`)
	require.NoError(t, err)
	l, err := session.NewLayout(s)
	require.NoError(t, err)
	plan := l.NoisePlan()
	eps := plan.Rho + 2*math.Sqrt(plan.Rho*math.Log(1e6))
	require.InDelta(t, 1.0, eps, 1e-6)
	require.LessOrEqual(t, eps, 1.0)
	require.Equal(t, []uint64{1, 30, 3}, plan.Sensitivity, "count once; visits ≤ 10 from 3 parties; their count")
	for j, d := range plan.Sensitivity {
		s2, _ := plan.Sigma2[j].Float64()
		want := 3 * float64(d*d) / (2 * plan.Rho)
		require.GreaterOrEqual(t, s2, want)
		require.InDelta(t, want, s2, 1+1e-6*want)
	}
	var zcdp float64
	for j, d := range plan.Sensitivity {
		s2, _ := plan.Sigma2[j].Float64()
		zcdp += float64(d*d) / (2 * s2)
	}
	require.LessOrEqual(t, zcdp, plan.Rho, "the slots' ρ add up to at most the budget")
}

// Over many seeded runs, the noise of three parties summed has variance
// 3·σ_j² on every slot, mean 0: what the Result states.
func TestNoiseVariance(t *testing.T) {
	s, err := privacySpec(t, `,"privacy":{"epsilon":2,"delta":1e-5}`)
	require.NoError(t, err)
	l, err := session.NewLayout(s)
	require.NoError(t, err)
	var seed [32]byte
	seed[0] = 12
	smp := noise.New(rand.NewChaCha8(seed)) // test determinism only
	const runs = 3000
	sum := make([]float64, l.Len())
	sq := make([]float64, l.Len())
	for range runs {
		tot := make([]int64, l.Len())
		for range 3 {
			v, err := l.NoiseVector(smp.Gaussian)
			require.NoError(t, err)
			for j, x := range v {
				tot[j] += int64(x)
			}
		}
		for j, x := range tot {
			sum[j] += float64(x)
			sq[j] += float64(x) * float64(x)
		}
	}
	plan := l.NoisePlan()
	for j := range sum {
		s2, _ := plan.Sigma2[j].Float64()
		want := 3 * s2
		mean, variance := sum[j]/runs, sq[j]/runs
		require.InDelta(t, 0, mean, 5*math.Sqrt(want/runs), "slot %d mean", j)
		require.InDelta(t, want, variance, 5*want*math.Sqrt(2.0/runs), "slot %d variance", j)
	}
}

// The Result states the mechanism, its parameters and each aggregate's
// share; a count the noise took below zero is released as zero.
func TestReleaseStatesPrivacy(t *testing.T) {
	s, err := privacySpec(t, `,"privacy":{"epsilon":1,"delta":1e-6}`)
	require.NoError(t, err)
	l, err := session.NewLayout(s)
	require.NoError(t, err)
	neg := uint64(1<<64 - 5) // −5 as a Z_2^64 word
	r, err := l.Release(40, [][]int{{50, 40, 40}, {40, 50, 40}, {40, 40, 50}}, []uint64{neg, 123, 40})
	require.NoError(t, err)
	require.NotNil(t, r.Privacy)
	require.Equal(t, session.MechanismDiscreteGaussian, r.Privacy.Mechanism)
	require.Equal(t, 3, r.Privacy.Parties)
	require.Len(t, r.Privacy.Aggregates["visits"].Sigma2, 2)
	require.InDelta(t, r.Privacy.Rho*2/3, r.Privacy.Aggregates["visits"].Rho, 1e-12)
	shared, _ := r.Aggregates.Get("shared")
	require.True(t, shared.Value == nil || shared.Value.String() == "0", "clamped at zero or suppressed")
}

// One party's noise for the cohort spec (10 slots), from crypto/rand.
func BenchmarkNoiseVector(b *testing.B) {
	s, err := session.LoadSpec("testdata/cohort.json")
	require.NoError(b, err)
	s.Privacy = &session.Privacy{Epsilon: 1, Delta: 1e-6}
	l, err := session.NewLayout(s)
	require.NoError(b, err)
	smp := noise.New(nil)
	for b.Loop() {
		if _, err := l.NoiseVector(smp.Gaussian); err != nil {
			b.Fatal(err)
		}
	}
}
