package upload

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func schedJob(name string, prio int, size uint64) *job {
	return &job{prio: prio, req: &Request{Record: name, Files: []FileInfo{{Name: name, Size: size}}}}
}

// TestSchedulerQueueOrder drives the scheduler without a network: waiting
// transfers are granted by priority, then size, then arrival.
func TestSchedulerQueueOrder(t *testing.T) {
	m := &Metrics{}
	s := newScheduler(schedConfig{capacity: 1, high: 5, boost: 2, grace: time.Second}, slog.New(slog.DiscardHandler), m)
	ctx := t.Context()
	first, err := s.acquire(ctx, schedJob("first", 0, 10))
	require.NoError(t, err)

	jobs := []*job{
		schedJob("b-prio2-big", 2, 100),
		schedJob("c-prio2-small", 2, 50),
		schedJob("d-prio3-huge", 3, 500),
		schedJob("e-prio2-small-later", 2, 50),
		schedJob("f-prio0", 0, 1),
	}
	granted := make(chan *lease, len(jobs))
	for i, j := range jobs {
		go func() {
			l, err := s.acquire(ctx, j)
			if err == nil {
				granted <- l
			}
		}()
		require.Eventually(t, func() bool { return m.QueueDepth.Load() == int64(i+1) }, 5*time.Second, time.Millisecond)
	}
	var order []string
	s.release(first)
	for range jobs {
		l := <-granted
		order = append(order, l.j.req.Record)
		s.release(l)
	}
	require.Equal(t, []string{"d-prio3-huge", "c-prio2-small", "e-prio2-small-later", "b-prio2-big", "f-prio0"}, order)
	require.Zero(t, m.Preemptions.Load(), "no waiting job reached the high priority")
}

func TestSchedulerPreemption(t *testing.T) {
	tests := []struct {
		name        string
		running     []int // priorities of the jobs holding the pool
		waiting     int   // priority of the arriving job
		wantVictim  int   // index into running, or -1
		wantRaiseTo int
	}{
		{"low holders, high arrival", []int{1, 0}, 7, 1, 2},
		{"one high holder blocks preemption", []int{1, 6}, 7, -1, 0},
		{"arrival below high", []int{1, 0}, 4, -1, 0},
		{"arrival at the threshold, tie goes to the latest grant", []int{3, 3}, 5, 1, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &Metrics{}
			s := newScheduler(schedConfig{capacity: len(tc.running), high: 5, boost: 2, grace: time.Second}, slog.New(slog.DiscardHandler), m)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var leases []*lease
			for i, p := range tc.running {
				l, err := s.acquire(ctx, schedJob(string(rune('a'+i)), p, 10))
				require.NoError(t, err)
				leases = append(leases, l)
			}
			arrived := schedJob("z", tc.waiting, 10)
			done := make(chan *lease, 1)
			go func() {
				l, err := s.acquire(ctx, arrived)
				if err == nil {
					done <- l
				}
			}()
			require.Eventually(t, func() bool { _, q, _ := s.state(arrived); return q }, 5*time.Second, time.Millisecond)
			for i, l := range leases {
				select {
				case <-l.preempted:
					if i != tc.wantVictim {
						t.Fatalf("lease %d preempted, want %d", i, tc.wantVictim)
					}
				default:
					if i == tc.wantVictim {
						t.Fatalf("lease %d not preempted", i)
					}
				}
			}
			if tc.wantVictim < 0 {
				require.Zero(t, m.Preemptions.Load())
				return
			}
			// The victim is back in the queue at once with its raised
			// priority, before its holder has even let go.
			_, queued, prio := s.state(leases[tc.wantVictim].j)
			require.True(t, queued, "preempted job not re-queued")
			require.Equal(t, tc.wantRaiseTo, prio)
			require.EqualValues(t, 2, m.QueueDepth.Load())
			s.release(leases[tc.wantVictim])
			select {
			case l := <-done:
				require.Equal(t, arrived, l.j)
			case <-time.After(5 * time.Second):
				t.Fatal("the arriving job did not get the freed slot")
			}
		})
	}
}

// TestSchedulerReservation checks that a preempted job whose turn comes
// before its client is back gets a reserved slot, and that the reservation
// expires after the grace period if the client never returns.
func TestSchedulerReservation(t *testing.T) {
	for _, comesBack := range []bool{true, false} {
		t.Run(map[bool]string{true: "client returns", false: "client gone"}[comesBack], func(t *testing.T) {
			m := &Metrics{}
			s := newScheduler(schedConfig{capacity: 1, high: 5, boost: 2, grace: 200 * time.Millisecond}, slog.New(slog.DiscardHandler), m)
			ctx := t.Context()
			low := schedJob("low", 1, 10)
			l, err := s.acquire(ctx, low)
			require.NoError(t, err)
			high := schedJob("high", 9, 10)
			got := make(chan *lease, 1)
			go func() {
				hl, err := s.acquire(ctx, high)
				if err == nil {
					got <- hl
				}
			}()
			require.Eventually(t, func() bool { return m.Preemptions.Load() == 1 }, 5*time.Second, time.Millisecond)
			s.release(l) // the preempted handler lets go
			hl := <-got
			s.release(hl) // high is done before low's client is back: low's slot is reserved
			active, _, _ := s.state(low)
			require.True(t, active, "slot not reserved for the preempted job")
			other := schedJob("other", 1, 1)
			otherGot := make(chan *lease, 1)
			go func() {
				ol, err := s.acquire(ctx, other)
				if err == nil {
					otherGot <- ol
				}
			}()
			if comesBack {
				rl, err := s.acquire(ctx, low)
				require.NoError(t, err)
				select {
				case <-otherGot:
					t.Fatal("another job took the reserved slot")
				case <-time.After(300 * time.Millisecond): // past the grace period
				}
				s.release(rl)
			}
			select {
			case ol := <-otherGot:
				s.release(ol)
			case <-time.After(5 * time.Second):
				t.Fatal("the slot was never given up")
			}
			require.Zero(t, m.ActiveTransfers.Load())
			require.Zero(t, m.QueueDepth.Load())
		})
	}
}
