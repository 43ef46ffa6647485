package protocol

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/psi/session"
)

// The ring's traffic is bounded without ever blocking a hop: each party
// keeps at most RingWindow batches of its own list in flight, so no queue
// of the coordinator ever holds more than n·RingWindow ring batches, and the
// session still completes (a hop is never held back, so the ring cannot
// deadlock) — here with one party much slower than the others to send its
// list (it steps only every fourth time the others do).
func TestRingWindowBoundsQueues(t *testing.T) {
	spec := testSpec(t, "window", session.ModeDH, session.AggregationMasked, "")
	const m = 200 // 25 batches of 8 per list
	recs := []Records{people(0, m), people(50, 50+m), people(60, 60+m)}
	maxQueued, maxInFlight := 0, uint64(0)
	tn := newTestNet(t, spec, recs, -1, func(tn *testNet) {
		tn.observe = func() {
			for i, q := range tn.toParty {
				ring := 0
				for _, msg := range q {
					if b, ok := msg.(*Batch); ok && b.Kind == BatchRing {
						ring++
					}
				}
				maxQueued = max(maxQueued, ring)
				if p := tn.parties[i]; p != nil {
					for k, next := range p.ownNext {
						if next >= 0 {
							maxInFlight = max(maxInFlight, uint64(next)-p.ownDone[k])
						}
					}
				}
			}
		}
		tn.slow = map[int]int{2: 4}
	})
	require.NotNil(t, tn.released, "errs %v aborted %+v", tn.errs, tn.aborted)
	require.LessOrEqual(t, maxInFlight, uint64(RingWindow*8), "own-list positions in flight")
	require.LessOrEqual(t, maxQueued, len(spec.Parties)*RingWindow, "ring batches queued for one party")
	require.Positive(t, maxQueued)
}
