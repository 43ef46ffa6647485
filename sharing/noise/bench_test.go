package noise_test

import (
	"math/big"
	"testing"

	"github.com/mpsi-dev/mpsi/sharing/noise"
)

// Cost of one exact sample from crypto/rand, at a count's scale (σ = 4)
// and at a sum's (σ = 40 000, a sum of values bounded by 10 000).
func BenchmarkGaussian(b *testing.B) {
	for _, tc := range []struct {
		name   string
		sigma2 *big.Rat
	}{{"sigma=4", big.NewRat(16, 1)}, {"sigma=40000", big.NewRat(1_600_000_000, 1)}} {
		b.Run(tc.name, func(b *testing.B) {
			s := noise.New(nil)
			for b.Loop() {
				if _, err := s.Gaussian(tc.sigma2); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
