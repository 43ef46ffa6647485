package upload

import (
	"container/heap"
	"context"
	"log/slog"
	"sync"
	"time"
)

// scheduler is the pool of concurrent stream transfers with a priority
// queue of waiting transfers (seed document claims 6 and 10, [0090]-[0091]).
//
// Waiting transfers are ordered by priority (the urgency the server
// assigned from the client's role, raised after a preemption), then by
// estimated time remaining (shortest first), then by arrival. The estimate
// is the bytes still missing divided by the expected throughput: the job's
// own measured throughput once it has sent chunks, else its client's
// measured throughput from earlier transfers, else the rate expected for
// the network the client reports (LinkType.ExpectedRate). So a client on a
// poor network waits behind one on a good network with the same urgency
// and size, and a nearly finished transfer goes before a fresh one.
//
// The pool resizes from load: it starts at its largest size; while the
// measured throughput of the running transfers exceeds the ingest budget it
// shrinks by one (down to min; running transfers finish, none is cut), and
// while transfers wait and the load is below 70 % of the budget it grows
// back by one, at most once per resizeEvery.
//
// When a transfer of priority at least high waits and every slot is held
// by transfers below high, the lowest of those is preempted (the longest
// estimated time remaining among equal priorities): its lease's preempted
// channel is closed, its priority is raised by boost, and it is put back in
// the queue at once as a detached entry that keeps its place.
// The preempted client attaches to that entry when it reconnects; if the
// entry reaches a slot before the client is back, the slot is reserved for
// it for grace, then given up.
//
// It is safe for concurrent use. The only goroutines it starts are the
// reservation timers, which stop by themselves.
type scheduler struct {
	maxCap, minCap, high, boost int
	budget                      float64
	grace                       time.Duration
	log                         *slog.Logger
	m                           *Metrics

	mu         sync.Mutex
	capacity   int                 // current pool size; guarded by mu
	lastResize time.Time           // guarded by mu
	clientRate map[string]float64  // measured bytes/s per client id; guarded by mu
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
	eta      time.Duration // estimated time remaining when queued
	seq      uint64
	index    int
	detached bool // re-queued after preemption, no client attached yet
	granted  *lease
	ready    chan struct{}
}

// schedConfig configures a scheduler.
type schedConfig struct {
	capacity, min int     // largest and smallest pool size
	budget        float64 // ingest budget, bytes per second
	high, boost   int
	grace         time.Duration
}

// resizeEvery is the shortest time between two pool resizes.
const resizeEvery = 500 * time.Millisecond

func newScheduler(c schedConfig, log *slog.Logger, m *Metrics) *scheduler {
	if c.min <= 0 || c.min > c.capacity {
		c.min = c.capacity
	}
	if c.budget <= 0 {
		c.budget = DefaultIngestBudget
	}
	m.PoolSize.Store(int64(c.capacity))
	return &scheduler{maxCap: c.capacity, minCap: c.min, capacity: c.capacity, budget: c.budget,
		high: c.high, boost: c.boost, grace: c.grace, log: log, m: m, clientRate: map[string]float64{},
		running: map[*lease]struct{}{}, reserved: map[*job]*lease{}, queued: map[*job]*waiter{}}
}

// expectedRateLocked is the throughput expected of j, bytes per second.
func (s *scheduler) expectedRateLocked(j *job) float64 {
	if j.rate > 0 {
		return j.rate
	}
	if r := s.clientRate[j.req.ClientID]; r > 0 {
		return r
	}
	return j.link.ExpectedRate()
}

// etaLocked estimates how long j still needs.
func (s *scheduler) etaLocked(j *job) time.Duration {
	rem := j.remaining.Load()
	if rem <= 0 {
		rem = int64(j.req.TotalSize())
	}
	return time.Duration(float64(rem) / s.expectedRateLocked(j) * float64(time.Second))
}

// report records the network a job's client reports.
func (s *scheduler) report(j *job, l LinkType) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j.link = l
}

// observe records that n bytes of j arrived d after the previous ones, and
// resizes the pool if the load calls for it.
func (s *scheduler) observe(j *job, n int, d time.Duration, now time.Time) {
	if d <= 0 {
		d = time.Microsecond
	}
	r := float64(n) / d.Seconds()
	s.mu.Lock()
	defer s.mu.Unlock()
	j.rate = ewma(j.rate, r)
	s.clientRate[j.req.ClientID] = ewma(s.clientRate[j.req.ClientID], r)
	s.resizeLocked(now)
}

// ewma smooths rate samples; the first sample is taken as is.
func ewma(old, sample float64) float64 {
	if old <= 0 {
		return sample
	}
	return 0.7*old + 0.3*sample
}

// resizeLocked shrinks or grows the pool from the measured load.
func (s *scheduler) resizeLocked(now time.Time) {
	if s.minCap == s.maxCap || now.Sub(s.lastResize) < resizeEvery {
		return
	}
	load := 0.0
	for l := range s.running {
		load += s.expectedRateLocked(l.j)
	}
	switch {
	case load > s.budget && s.capacity > s.minCap:
		s.capacity--
	case load < 0.7*s.budget && len(s.waiting) > 0 && s.capacity < s.maxCap:
		s.capacity++
	default:
		return
	}
	s.lastResize = now
	s.m.PoolSize.Store(int64(s.capacity))
	s.log.Info("pool resized", slog.Int("size", s.capacity), slog.Float64("load_mb_s", load/1e6), slog.Float64("budget_mb_s", s.budget/1e6),
		slog.Int("running", len(s.running)), slog.Int("waiting", len(s.waiting)))
	s.dispatchLocked()
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
		w = &waiter{j: j, prio: j.prio, eta: s.etaLocked(j), seq: s.seq, ready: make(chan struct{})}
		heap.Push(&s.waiting, w)
		s.queued[j] = w
		s.m.QueueDepth.Add(1)
		s.log.Info("transfer queued", j.attrs(), slog.Int("priority", w.prio), slog.Duration("eta", w.eta.Round(time.Millisecond)),
			slog.String("link", j.link.String()), slog.Int("waiting", len(s.waiting)), slog.Int("running", len(s.running)))
		s.dispatchLocked()
		s.resizeLocked(time.Now())
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
	var victimETA time.Duration
	for l := range s.running {
		if l.done || s.reserved[l.j] == l {
			continue // already leaving, or a short-lived reservation
		}
		if l.j.prio >= s.high {
			return // a high-priority transfer holds the pool: no preemption
		}
		// The lowest priority goes first; among equals the one with the
		// longest estimated time remaining, and then the most recently
		// granted (it has made the least progress).
		eta := s.etaLocked(l.j)
		if victim == nil || l.j.prio < victim.j.prio ||
			(l.j.prio == victim.j.prio && eta > victimETA) ||
			(l.j.prio == victim.j.prio && eta == victimETA && l.seq > victim.seq) {
			victim, victimETA = l, eta
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
	w := &waiter{j: j, prio: j.prio, eta: s.etaLocked(j), seq: s.seq, detached: true, ready: make(chan struct{})}
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
	if x.eta != y.eta {
		return x.eta < y.eta
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
