// Package noise samples integer noise for differential privacy exactly:
// Bernoulli(exp(−γ)), the discrete Laplace and the discrete Gaussian
// distributions, for rational parameters, with the algorithms of Canonne,
// Kamath and Steinke, "The Discrete Gaussian for Differential Privacy"
// (NeurIPS 2020), Algorithms 1–3. Every step is integer or rational
// arithmetic (math/big) on uniform integers drawn from an [io.Reader]
// (crypto/rand by default): there is no floating point, so no rounding
// artefacts or floating-point side channels (Mironov 2012) in the
// distribution. The running time does depend on the randomness and on the
// output (rejection sampling); the output is what is released, but a
// caller who needs to hide it from a timing observer must not expose the
// sampling time.
//
// Sessions with privacy use it for their distributed noise: each party adds
// its own discrete Gaussian sample to every slot of its contribution, with
// the σ² that psi/session's Layout.NoisePlan calibrates; calibration is not
// in this package.
package noise

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
)

// ErrParameter reports a distribution parameter out of range (a negative
// γ, a non-positive scale or variance).
var ErrParameter = errors.New("noise: parameter out of range")

// Sampler draws exact samples from a source of uniform bytes. It is not
// safe for concurrent use unless its source is.
type Sampler struct {
	src io.Reader
}

// New returns a Sampler reading src; nil means crypto/rand.Reader. Tests
// may pass a seeded stream for determinism; real noise must come from
// crypto/rand.
func New(src io.Reader) *Sampler {
	if src == nil {
		src = rand.Reader
	}
	return &Sampler{src: src}
}

var (
	one = big.NewRat(1, 1)
)

// uniform returns a uniform integer in [0, n), n > 0.
func (s *Sampler) uniform(n *big.Int) (*big.Int, error) {
	u, err := rand.Int(s.src, n)
	if err != nil {
		return nil, fmt.Errorf("noise: randomness: %w", err)
	}
	return u, nil
}

// Bernoulli returns true with probability p, a rational in [0, 1].
func (s *Sampler) Bernoulli(p *big.Rat) (bool, error) {
	if p.Sign() < 0 || p.Cmp(one) > 0 {
		return false, fmt.Errorf("%w: Bernoulli(%s)", ErrParameter, p.RatString())
	}
	u, err := s.uniform(p.Denom())
	if err != nil {
		return false, err
	}
	return u.Cmp(p.Num()) < 0, nil
}

// BernoulliExp returns true with probability exp(−γ), γ ≥ 0 rational
// (Algorithm 1).
func (s *Sampler) BernoulliExp(gamma *big.Rat) (bool, error) {
	if gamma.Sign() < 0 {
		return false, fmt.Errorf("%w: BernoulliExp(%s)", ErrParameter, gamma.RatString())
	}
	if gamma.Cmp(one) <= 0 {
		// K ← 1; while Bernoulli(γ/K) do K ← K+1; return K odd.
		k := int64(1)
		for {
			a, err := s.Bernoulli(new(big.Rat).Quo(gamma, big.NewRat(k, 1)))
			if err != nil {
				return false, err
			}
			if !a {
				return k%2 == 1, nil
			}
			k++
		}
	}
	// exp(−γ) = exp(−1)^⌊γ⌋ · exp(−(γ − ⌊γ⌋)).
	whole := new(big.Int).Quo(gamma.Num(), gamma.Denom())
	for i := new(big.Int); i.Cmp(whole) < 0; i.Add(i, big.NewInt(1)) {
		b, err := s.BernoulliExp(one)
		if err != nil || !b {
			return false, err
		}
	}
	return s.BernoulliExp(new(big.Rat).Sub(gamma, new(big.Rat).SetInt(whole)))
}

// Laplace returns a sample of the discrete Laplace distribution with scale
// t ≥ 1, P(x) ∝ exp(−|x|/t) (Algorithm 2 with s = 1).
func (s *Sampler) Laplace(t int64) (int64, error) {
	if t < 1 {
		return 0, fmt.Errorf("%w: Laplace scale %d", ErrParameter, t)
	}
	bt := big.NewInt(t)
	for {
		u, err := s.uniform(bt)
		if err != nil {
			return 0, err
		}
		d, err := s.BernoulliExp(new(big.Rat).SetFrac(u, bt))
		if err != nil {
			return 0, err
		}
		if !d {
			continue
		}
		var v int64
		for {
			a, err := s.BernoulliExp(one)
			if err != nil {
				return 0, err
			}
			if !a {
				break
			}
			v++
		}
		x := u.Int64() + t*v
		neg, err := s.Bernoulli(big.NewRat(1, 2))
		if err != nil {
			return 0, err
		}
		if neg && x == 0 {
			continue
		}
		if neg {
			return -x, nil
		}
		return x, nil
	}
}

// Gaussian returns a sample of the discrete Gaussian distribution with
// parameter σ² > 0 (rational), P(x) ∝ exp(−x²/(2σ²)) on the integers
// (Algorithm 3). Its variance is at most σ² (and within exp(−2π²σ²)·σ²-ish
// of it for σ ≥ 1).
func (s *Sampler) Gaussian(sigma2 *big.Rat) (int64, error) {
	if sigma2.Sign() <= 0 {
		return 0, fmt.Errorf("%w: Gaussian σ² = %s", ErrParameter, sigma2.RatString())
	}
	// t = ⌊σ⌋ + 1, with ⌊σ⌋ = ⌊√⌊σ²⌋⌋ computed on integers.
	floor2 := new(big.Int).Quo(sigma2.Num(), sigma2.Denom())
	t := new(big.Int).Sqrt(floor2)
	t.Add(t, big.NewInt(1))
	if !t.IsInt64() {
		return 0, fmt.Errorf("%w: Gaussian σ² = %s is too large", ErrParameter, sigma2.RatString())
	}
	ti := t.Int64()
	shift := new(big.Rat).Quo(sigma2, new(big.Rat).SetInt(t)) // σ²/t
	twoS2 := new(big.Rat).Mul(sigma2, big.NewRat(2, 1))
	for {
		y, err := s.Laplace(ti)
		if err != nil {
			return 0, err
		}
		ay := y
		if ay < 0 {
			ay = -ay
		}
		d := new(big.Rat).Sub(big.NewRat(ay, 1), shift)
		gamma := new(big.Rat).Quo(new(big.Rat).Mul(d, d), twoS2)
		c, err := s.BernoulliExp(gamma)
		if err != nil {
			return 0, err
		}
		if c {
			return y, nil
		}
	}
}
