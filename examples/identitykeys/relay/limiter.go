package relay

import (
	"sync"
	"time"
)

// Limiter is a token bucket per terminal: each terminal may evaluate Burst
// identities at once and earns one more every Every. It is safe for
// concurrent use.
type Limiter struct {
	burst int
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex         // guards buckets
	buckets map[string]*bucket // by terminal name
}

type bucket struct {
	tokens int
	last   time.Time
}

// NewLimiter returns a limiter; now, if nil, is time.Now. burst must be at
// least 1 and every positive, or NewLimiter panics (a programmer error).
func NewLimiter(burst int, every time.Duration, now func() time.Time) *Limiter {
	if burst < 1 || every <= 0 {
		panic("relay: NewLimiter: burst must be >= 1 and every > 0")
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{burst: burst, every: every, now: now, buckets: map[string]*bucket{}}
}

// Allow takes n tokens from terminal's bucket and reports whether there were
// that many; if not, it takes none.
func (l *Limiter) Allow(terminal string, n int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[terminal]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[terminal] = b
	}
	if earned := int(now.Sub(b.last) / l.every); earned > 0 {
		b.tokens = min(l.burst, b.tokens+earned)
		b.last = b.last.Add(time.Duration(earned) * l.every)
		if b.tokens == l.burst {
			b.last = now
		}
	}
	if n < 1 || b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}
