package upload

import (
	"container/heap"
	"context"
	"log/slog"
	"sync"
	"time"
)

// scheduler is the bounded pool of concurrent stream transfers with a
// priority queue of waiting transfers (seed document [0090]-[0091]).
//
// Waiting transfers are ordered by priority (the urgency, raised after a
// preemption), then by size (smaller first), then by arrival. When a
// transfer of priority at least high waits and every slot is held by
// transfers below high, the lowest of those is preempted: its lease's
// preempted channel is closed, its priority is raised by boost, and it is
// put back in the queue at once as a detached entry that keeps its place.
// The preempted client attaches to that entry when it reconnects; if the
// entry reaches a slot before the client is back, the slot is reserved for
// it for grace, then given up.
//
// It is safe for concurrent use. The only goroutines it starts are the
// reservation timers, which stop by themselves.
type scheduler struct {
	capacity, high, boost int
	grace                 time.Duration
	log                   *slog.Logger
	m                     *Metrics

	mu         sync.Mutex
	seq        uint64              // guarded by mu
	running    map[*lease]struct{} // guarded by mu
	reserved   map[*job]*lease     // slots held for preempted jobs; guarded by mu
	queued     map[*job]*waiter    // guarded by mu
	waiting    waitHeap            // guarded by mu
	preempting int                 // leases preempted but not yet released; guarded by mu
}

type lease struct {
	j         *job
	seq       uint64        // grant order
	preempted chan struct{} // closed on preemption
	done      bool          // preempted; guarded by scheduler.mu
	timer     *time.Timer   // reservation expiry; guarded by scheduler.mu
}

type waiter struct {
	j        *job
	prio     int
	size     uint64
	seq      uint64
	index    int
	detached bool // re-queued after preemption, no client attached yet
	granted  *lease
	ready    chan struct{}
}

func newScheduler(capacity, high, boost int, grace time.Duration, log *slog.Logger, m *Metrics) *scheduler {
	return &scheduler{capacity: capacity, high: high, boost: boost, grace: grace, log: log, m: m,
		running: map[*lease]struct{}{}, reserved: map[*job]*lease{}, queued: map[*job]*waiter{}}
}

// acquire waits for a slot for j. The caller must release the lease.
func (s *scheduler) acquire(ctx context.Context, j *job) (*lease, error) {
	s.mu.Lock()
	if l, ok := s.reserved[j]; ok {
		delete(s.reserved, j)
		l.timer.Stop()
		s.mu.Unlock()
		s.log.Info("transfer resumed in its reserved slot", j.attrs())
		return l, nil
	}
	w, ok := s.queued[j]
	if ok && w.detached {
		w.detached = false
		s.log.Info("transfer reattached to its queue entry", j.attrs(), slog.Int("priority", w.prio))
	} else {
		s.seq++
		w = &waiter{j: j, prio: j.prio, size: j.req.TotalSize(), seq: s.seq, ready: make(chan struct{})}
		heap.Push(&s.waiting, w)
		s.queued[j] = w
		s.m.QueueDepth.Add(1)
		s.log.Info("transfer queued", j.attrs(), slog.Int("priority", w.prio), slog.Int("waiting", len(s.waiting)), slog.Int("running", len(s.running)))
		s.dispatchLocked()
		s.preemptLocked()
	}
	s.mu.Unlock()

	select {
	case <-w.ready:
		return w.granted, nil
	case <-ctx.Done():
		s.mu.Lock()
		if w.granted != nil {
			s.mu.Unlock()
			s.release(w.granted)
			return nil, ctx.Err()
		}
		heap.Remove(&s.waiting, w.index)
		delete(s.queued, j)
		s.m.QueueDepth.Add(-1)
		s.mu.Unlock()
		return nil, ctx.Err()
	}
}

// release gives the slot of l back and grants waiting transfers.
func (s *scheduler) release(l *lease) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(l)
}

func (s *scheduler) releaseLocked(l *lease) {
	if _, ok := s.running[l]; !ok {
		return
	}
	delete(s.running, l)
	s.m.ActiveTransfers.Add(-1)
	if l.done {
		s.preempting--
	}
	s.log.Info("transfer released", l.j.attrs())
	s.dispatchLocked()
	s.preemptLocked()
}

func (s *scheduler) dispatchLocked() {
	for len(s.running) < s.capacity && len(s.waiting) > 0 {
		w := heap.Pop(&s.waiting).(*waiter)
		delete(s.queued, w.j)
		s.seq++
		l := &lease{j: w.j, seq: s.seq, preempted: make(chan struct{})}
		s.running[l] = struct{}{}
		w.granted = l
		s.m.QueueDepth.Add(-1)
		s.m.ActiveTransfers.Add(1)
		s.m.TransfersGranted.Add(1)
		s.log.Info("transfer granted", w.j.attrs(), slog.Int("priority", w.prio), slog.Int("waiting", len(s.waiting)), slog.Bool("reserved", w.detached))
		close(w.ready)
		if w.detached {
			// The preempted client has not come back yet: hold the slot.
			s.reserved[w.j] = l
			l.timer = time.AfterFunc(s.grace, func() { s.expire(l) })
		}
	}
}

// expire gives up a reservation whose client did not come back in time.
func (s *scheduler) expire(l *lease) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reserved[l.j] != l {
		return
	}
	delete(s.reserved, l.j)
	s.log.Info("reserved slot expired", l.j.attrs())
	s.releaseLocked(l)
}

func (s *scheduler) preemptLocked() {
	if len(s.waiting) == 0 || len(s.running) < s.capacity {
		return
	}
	top := s.waiting[0]
	if top.prio < s.high {
		return
	}
	highWaiting := 0
	for _, w := range s.waiting {
		if w.prio >= s.high && !w.detached {
			highWaiting++
		}
	}
	if highWaiting <= s.preempting {
		return // enough slots are already being freed
	}
	var victim *lease
	for l := range s.running {
		if l.done || s.reserved[l.j] == l {
			continue // already leaving, or a short-lived reservation
		}
		if l.j.prio >= s.high {
			return // a high-priority transfer holds the pool: no preemption
		}
		// The lowest priority goes first; among equals the largest, and
		// then the most recently granted (it has made the least progress).
		if victim == nil || l.j.prio < victim.j.prio ||
			(l.j.prio == victim.j.prio && l.j.req.TotalSize() > victim.j.req.TotalSize()) ||
			(l.j.prio == victim.j.prio && l.j.req.TotalSize() == victim.j.req.TotalSize() && l.seq > victim.seq) {
			victim = l
		}
	}
	if victim == nil {
		return
	}
	victim.done = true
	s.preempting++
	j := victim.j
	j.prio += s.boost
	s.m.Preemptions.Add(1)
	s.log.Info("transfer preempted", j.attrs(), slog.String("for", top.j.name()), slog.Int("new_priority", j.prio))
	close(victim.preempted)
	// Re-queue the job at once with its raised priority; its client
	// attaches to this entry when it comes back.
	s.seq++
	w := &waiter{j: j, prio: j.prio, size: j.req.TotalSize(), seq: s.seq, detached: true, ready: make(chan struct{})}
	heap.Push(&s.waiting, w)
	s.queued[j] = w
	s.m.QueueDepth.Add(1)
	s.log.Info("transfer re-queued", j.attrs(), slog.Int("priority", w.prio), slog.Int("waiting", len(s.waiting)))
}

// state reports whether j holds a slot (or one is reserved for it) or
// waits for one.
func (s *scheduler) state(j *job) (active, queued bool, prio int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for l := range s.running {
		if l.j == j && !l.done {
			active = true
		}
	}
	_, queued = s.queued[j]
	return active, queued, j.prio
}

type waitHeap []*waiter

func (h waitHeap) Len() int { return len(h) }

func (h waitHeap) Less(a, b int) bool {
	x, y := h[a], h[b]
	if x.prio != y.prio {
		return x.prio > y.prio
	}
	if x.size != y.size {
		return x.size < y.size
	}
	return x.seq < y.seq
}

func (h waitHeap) Swap(a, b int) {
	h[a], h[b] = h[b], h[a]
	h[a].index, h[b].index = a, b
}

func (h *waitHeap) Push(x any) {
	w := x.(*waiter)
	w.index = len(*h)
	*h = append(*h, w)
}

func (h *waitHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	w.index = -1
	return w
}
