package noise_test

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/sharing/noise"
)

// seeded is a deterministic source for the statistical tests only (a
// seeded ChaCha8 stream); real noise comes from crypto/rand.
func seeded(seed byte) *noise.Sampler {
	var s [32]byte
	s[0] = seed
	return noise.New(rand.NewChaCha8(s))
}

const draws = 12000

// within asserts |got − want| ≤ 5 standard errors.
func within(t *testing.T, got, want, stderr float64, what string) {
	t.Helper()
	require.LessOrEqual(t, math.Abs(got-want), 5*stderr, "%s: got %v, want %v ± %v", what, got, want, 5*stderr)
}

func TestBernoulliExp(t *testing.T) {
	s := seeded(1)
	for _, g := range []*big.Rat{big.NewRat(0, 1), big.NewRat(1, 2), big.NewRat(1, 1), big.NewRat(5, 2), big.NewRat(7, 3)} {
		hits := 0
		for range draws {
			b, err := s.BernoulliExp(g)
			require.NoError(t, err)
			if b {
				hits++
			}
		}
		gf, _ := g.Float64()
		p := math.Exp(-gf)
		within(t, float64(hits)/draws, p, math.Sqrt(p*(1-p)/draws)+1e-12, "exp(−"+g.RatString()+")")
	}
}

func TestLaplaceMoments(t *testing.T) {
	s := seeded(2)
	const scale = 3
	var sum, sq float64
	for range draws {
		x, err := s.Laplace(scale)
		require.NoError(t, err)
		sum += float64(x)
		sq += float64(x) * float64(x)
	}
	q := math.Exp(-1.0 / scale)
	variance := 2 * q / ((1 - q) * (1 - q))
	within(t, sum/draws, 0, math.Sqrt(variance/draws), "mean")
	// The fourth moment of a discrete Laplace is below 25·variance² here.
	within(t, sq/draws, variance, math.Sqrt(25*variance*variance/draws), "variance")
}

// The discrete Gaussian's probabilities and variance match the exact
// distribution, for integer and fractional σ², and the sum of three shares
// of σ²/3 has variance σ² (what distributed noise relies on).
func TestGaussianDistribution(t *testing.T) {
	for _, tc := range []struct {
		sigma2 *big.Rat
		shares int
	}{{big.NewRat(4, 1), 1}, {big.NewRat(1, 2), 1}, {big.NewRat(9, 4), 1}, {big.NewRat(12, 1), 3}} {
		t.Run(tc.sigma2.RatString()+"/"+string(rune('0'+tc.shares)), func(t *testing.T) {
			s := seeded(byte(3 + tc.shares))
			share := new(big.Rat).Quo(tc.sigma2, big.NewRat(int64(tc.shares), 1))
			counts := map[int64]int{}
			var sq float64
			for range draws {
				var x int64
				for range tc.shares {
					y, err := s.Gaussian(share)
					require.NoError(t, err)
					x += y
				}
				counts[x]++
				sq += float64(x) * float64(x)
			}
			s2, _ := tc.sigma2.Float64()
			sh, _ := share.Float64()
			// Exact pmf and variance of one share; the sum's variance is
			// the shares' sum.
			var z, v float64
			for k := -200.0; k <= 200; k++ {
				w := math.Exp(-k * k / (2 * sh))
				z += w
				v += k * k * w
			}
			v = v / z * float64(tc.shares)
			within(t, sq/draws, v, math.Sqrt(3*v*v/draws), "variance")
			require.InDelta(t, s2, v, 0.05*s2+0.01, "the variance is close to σ²")
			if tc.shares == 1 {
				for k := int64(-3); k <= 3; k++ {
					p := math.Exp(-float64(k*k)/(2*s2)) / z
					within(t, float64(counts[k])/draws, p, math.Sqrt(p*(1-p)/draws), "P(X = k)")
				}
			}
		})
	}
}

func TestParameters(t *testing.T) {
	s := noise.New(nil) // crypto/rand
	_, err := s.Gaussian(big.NewRat(0, 1))
	require.ErrorIs(t, err, noise.ErrParameter)
	_, err = s.Laplace(0)
	require.ErrorIs(t, err, noise.ErrParameter)
	_, err = s.BernoulliExp(big.NewRat(-1, 2))
	require.ErrorIs(t, err, noise.ErrParameter)
	_, err = s.Bernoulli(big.NewRat(3, 2))
	require.ErrorIs(t, err, noise.ErrParameter)
	x, err := s.Gaussian(big.NewRat(1_000_000, 1))
	require.NoError(t, err)
	require.Less(t, x*x, int64(50*1_000_000), "a draw from crypto/rand within 7σ")
}
