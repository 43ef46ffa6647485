package noise_test

import (
	"fmt"
	"math/big"

	"github.com/mpsi-dev/mpsi/sharing/noise"
)

// A party's share of discrete Gaussian noise with σ² = 2.25 for one slot,
// drawn from crypto/rand.
func ExampleSampler_Gaussian() {
	s := noise.New(nil)
	x, err := s.Gaussian(big.NewRat(9, 4))
	if err != nil {
		panic(err)
	}
	fmt.Println(x > -30 && x < 30)
	// Output: true
}
