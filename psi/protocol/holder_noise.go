package protocol

import (
	"fmt"

	"github.com/mpsi-dev/mpsi/sharing"
	"github.com/mpsi-dev/mpsi/sharing/noise"
)

// addNoise adds, with privacy in the spec, the party's own discrete
// Gaussian noise (crypto/rand, exact sampling) to its contribution x before
// it is masked, so that the coordinator only ever sees noised totals.
func (p *Holder) addNoise(x sharing.Vector) error {
	if p.spec.Privacy == nil {
		return nil
	}
	if p.noise == nil {
		p.noise = noise.New(nil)
	}
	v, err := p.layout.NoiseVector(p.noise.Gaussian)
	if err != nil {
		return fmt.Errorf("protocol: drawing noise: %w", err)
	}
	if len(v) != len(x) {
		return fmt.Errorf("protocol: noise has %d slots, contribution %d", len(v), len(x))
	}
	for j := range x {
		x[j] += v[j]
	}
	return nil
}
