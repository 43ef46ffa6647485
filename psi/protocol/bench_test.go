package protocol

import (
	"testing"

	"github.com/mpsi-dev/mpsi/psi"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// BenchmarkRingBatch compares, on one batch of DefaultMaxBatch points, the
// checks a party adds against a malicious coordinator (verifying the
// incoming batch's MAC and computing the outgoing one) with the hop itself
// (one scalar multiplication per point). Run both in one invocation and
// compare: go test -run '^$' -bench RingBatch ./psi/protocol/
func BenchmarkRingBatch(b *testing.B) {
	spec := testSpec(b, "bench", session.ModeDH, session.AggregationMasked, "")
	h, err := NewHolder(spec, "hospital-a", people(0, DefaultMaxBatch), 1)
	if err != nil {
		b.Fatal(err)
	}
	pts, err := h.StartRing()
	if err != nil {
		b.Fatal(err)
	}
	data := pointsBytes(pts)
	key := make([]byte, 32)
	b.Run("hop", func(b *testing.B) {
		buf := make([]psi.Point, len(pts))
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			copy(buf, pts)
			if _, err := h.Hop(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mac-checks", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			_ = RingMAC(key, spec.ID, 1, 1, 0, 1<<20, data) // verify incoming
			_ = RingMAC(key, spec.ID, 1, 2, 0, 1<<20, data) // authenticate outgoing
		}
	})
}
