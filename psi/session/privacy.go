package session

import (
	"fmt"
	"math"
	"math/big"
)

// MechanismDiscreteGaussian names the noise of a session with privacy: each
// party adds its own discrete Gaussian sample to every slot of its
// contribution.
const MechanismDiscreteGaussian = "distributed_discrete_gaussian"

// Privacy asks for differential privacy of the released aggregates
// against the addition or removal of one patient: each party adds discrete
// Gaussian noise to its contribution (aggregation masked), so that the
// coordinator and the Result only ever see noised totals. The guarantee is
// (Epsilon, Delta)-DP for the whole aggregate vector, and it holds as long
// as one party adds its noise honestly: every party adds the full noise
// (the sum of the n parties' noise has n times the variance of one).
// |I| and the pairwise counts are not noised.
type Privacy struct {
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta"`
}

// Limits of a privacy request.
const (
	MaxEpsilon = 10.0
	MaxDelta   = 1e-3
)

func (s *Spec) validatePrivacy() error {
	p := s.Privacy
	if p == nil {
		return nil
	}
	switch {
	case !(p.Epsilon > 0 && p.Epsilon <= MaxEpsilon):
		return specErr("privacy.epsilon", "must be in (0, %v], is %v", MaxEpsilon, p.Epsilon)
	case !(p.Delta > 0 && p.Delta <= MaxDelta):
		return specErr("privacy.delta", "must be in (0, %v], is %v", MaxDelta, p.Delta)
	case len(s.Aggregates) == 0:
		return specErr("privacy", "no aggregates to protect")
	}
	return nil
}

// NoisePlan is the calibrated noise of a session with privacy.
type NoisePlan struct {
	// Rho is the zero-concentrated DP parameter of the whole vector:
	// ρ-zCDP implies (ρ + 2√(ρ·ln(1/δ)), δ)-DP (Bun and Steinke 2016), and
	// ρ is the largest that gives the spec's (ε, δ).
	Rho float64
	// Sigma2 is σ_j², the parameter of the discrete Gaussian each party
	// adds to slot j (in [Layout] order).
	Sigma2 []*big.Rat
	// Sensitivity is Δ_j: how much one patient can change slot j's total
	// (the per-record bound times the parties that contribute).
	Sensitivity []uint64
}

// RhoFor returns the largest ρ such that ρ-zCDP gives (ε, δ)-DP, that is
// ρ + 2√(ρ·ln(1/δ)) ≤ ε (Bun and Steinke 2016, Proposition 1.3). zCDP
// composes by adding ρ's, which is how a budget of several sessions is kept.
func RhoFor(eps, delta float64) float64 {
	l := math.Log(1 / delta)
	r := math.Sqrt(l+eps) - math.Sqrt(l)
	return r * r * (1 - 1e-9) // round down: less ρ is more noise
}

// EpsilonFor is the ε that ρ-zCDP gives at δ.
func EpsilonFor(rho, delta float64) float64 {
	return rho + 2*math.Sqrt(rho*math.Log(1/delta))
}

// NoisePlan calibrates the noise of a spec with privacy (nil without): one
// patient changes slot j by at most Δ_j, and the discrete Gaussian with
// parameter σ² on a slot of sensitivity Δ is (Δ²/2σ²)-zCDP (Canonne, Kamath
// and Steinke 2020); the L slots compose by adding their ρ's. Each slot
// gets ρ/L: σ_j² = L·Δ_j²/(2ρ), rounded up. This treats every slot as
// changing by its maximum at once, which over-counts (a patient falls in one
// histogram bin) and is safe.
func (l *Layout) NoisePlan() *NoisePlan { return l.spec.noisePlan() }

// NoiseTail is how many standard deviations a party's noise is clipped at
// in aggregation encrypted, whose parameters need a bound on every
// encrypted value: a discrete Gaussian exceeds 12σ with probability below
// 10^-31, far inside δ.
const NoiseTail = 12

// NoiseBounds returns, per slot, the bound NoiseTail·σ_j (rounded up) at
// which aggregation encrypted clips a party's noise, or nil without
// privacy.
func (s *Spec) NoiseBounds() []uint64 {
	plan := s.noisePlan()
	if plan == nil {
		return nil
	}
	out := make([]uint64, len(plan.Sigma2))
	for j, s2 := range plan.Sigma2 {
		f, _ := s2.Float64()
		out[j] = uint64(math.Ceil(NoiseTail * math.Sqrt(f)))
	}
	return out
}

// NoiseRows is the number of extra rows a party encrypts in aggregation
// encrypted to carry its noise: 1 with privacy, else 0. The coordinator's
// indicator always counts that row.
func (s *Spec) NoiseRows() int {
	if s.Privacy != nil && s.Aggregation == AggregationEncrypted {
		return 1
	}
	return 0
}

func (s *Spec) noisePlan() *NoisePlan {
	p := s.Privacy
	if p == nil {
		return nil
	}
	plan := &NoisePlan{Rho: RhoFor(p.Epsilon, p.Delta)}
	bounds := s.slotBounds()
	L := float64(len(bounds))
	for _, b := range bounds {
		a := &s.Aggregates[b.agg]
		nf := uint64(len(a.From))
		if a.Kind == KindCount && a.Field == "" {
			nf = 1
		}
		d := b.bound * nf
		plan.Sensitivity = append(plan.Sensitivity, d)
		s2 := L * float64(d) * float64(d) / (2 * plan.Rho) * (1 + 1e-9)
		r := new(big.Rat)
		if s2 < math.MaxInt64/2 {
			r.SetInt64(int64(math.Ceil(s2)))
		} else {
			r.SetFloat64(math.Ceil(s2))
		}
		plan.Sigma2 = append(plan.Sigma2, r)
	}
	return plan
}

// PrivacyRelease states, in a Result, the noise the aggregates carry.
type PrivacyRelease struct {
	Mechanism string  `json:"mechanism"`
	Epsilon   float64 `json:"epsilon"`
	Delta     float64 `json:"delta"`
	Rho       float64 `json:"rho"`
	// Parties is the number of parties that each added noise of the
	// stated σ² to every slot.
	Parties    int                       `json:"parties"`
	Aggregates map[string]AggregateNoise `json:"aggregates"`
}

// AggregateNoise is one aggregate's share of the budget and its noise.
type AggregateNoise struct {
	// Rho is the aggregate's share of ρ (its slots' ρ/L each), and Epsilon
	// what that share alone gives at the session's δ (the aggregates
	// together give the session's ε, not the sum of these).
	Rho     float64 `json:"rho"`
	Epsilon float64 `json:"epsilon"`
	// Sigma2 is σ² of each party's noise on each of the aggregate's slots
	// (sum or value, sum of squares, count; or each bin).
	Sigma2 []string `json:"sigma2"`
}

func (l *Layout) privacyRelease() (*PrivacyRelease, error) {
	plan := l.NoisePlan()
	if plan == nil {
		return nil, nil
	}
	p := l.spec.Privacy
	out := &PrivacyRelease{Mechanism: MechanismDiscreteGaussian, Epsilon: p.Epsilon, Delta: p.Delta, Rho: plan.Rho,
		Parties: len(l.spec.Parties), Aggregates: map[string]AggregateNoise{}}
	L := float64(len(plan.Sigma2))
	for _, al := range l.aggs {
		if al.off+al.slots > len(plan.Sigma2) {
			return nil, fmt.Errorf("session: noise plan has %d slots, layout %d", len(plan.Sigma2), l.n)
		}
		rho := plan.Rho * float64(al.slots) / L
		an := AggregateNoise{Rho: rho, Epsilon: EpsilonFor(rho, p.Delta)}
		for _, s := range plan.Sigma2[al.off : al.off+al.slots] {
			an.Sigma2 = append(an.Sigma2, s.RatString())
		}
		out.Aggregates[al.a.Name] = an
	}
	return out, nil
}

// clampCounts returns a copy of a noised sum with every count slot (counts,
// contribution counts, bins) that the noise took below zero set to zero: a
// post-processing, which costs no privacy.
func (l *Layout) clampCounts(sum []uint64) []uint64 {
	out := append([]uint64(nil), sum...)
	for _, al := range l.aggs {
		var counts []int
		switch al.a.Kind {
		case KindCount, KindCountIf:
			counts = []int{0}
		case KindSum, KindMean:
			counts = []int{1}
		case KindVariance:
			counts = []int{2}
		case KindHistogram:
			for k := range al.slots {
				counts = append(counts, k)
			}
		}
		for _, k := range counts {
			if int64(out[al.off+k]) < 0 {
				out[al.off+k] = 0
			}
		}
	}
	return out
}

// NoiseVector draws one party's noise for a session with privacy: a
// discrete Gaussian sample with σ_j² on every slot j, as Z_2^64 words (two's
// complement), from draw (a sharing/noise Sampler's Gaussian, reading
// crypto/rand).
func (l *Layout) NoiseVector(draw func(sigma2 *big.Rat) (int64, error)) ([]uint64, error) {
	plan := l.NoisePlan()
	if plan == nil {
		return nil, nil
	}
	v := make([]uint64, len(plan.Sigma2))
	for j, s2 := range plan.Sigma2 {
		x, err := draw(s2)
		if err != nil {
			return nil, err
		}
		v[j] = uint64(x)
	}
	return v, nil
}
