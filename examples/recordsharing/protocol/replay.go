package protocol

import (
	"fmt"
	"sync"
	"time"
)

// Defaults for a ReplayGuard.
const (
	DefaultWindow    = 2 * time.Minute
	DefaultMaxNonces = 1 << 16
)

// ReplayGuard refuses requests whose timestamp is outside a validity window
// around the verifier's clock and nonces already seen within that window. A
// nonce is remembered until its request would be stale anyway, so the cache
// is bounded by the request rate times twice the window, and by a hard limit
// past which new requests are refused (never forgotten early, which would let
// a replay through). It is safe for concurrent use.
type ReplayGuard struct {
	window time.Duration
	max    int

	mu   sync.Mutex
	seen map[Nonce]int64 // guarded by mu; nonce -> Unix nanoseconds after which it may be forgotten
}

// NewReplayGuard returns a guard with the given window and cache limit; zero
// values select DefaultWindow and DefaultMaxNonces.
func NewReplayGuard(window time.Duration, maxNonces int) *ReplayGuard {
	if window <= 0 {
		window = DefaultWindow
	}
	if maxNonces <= 0 {
		maxNonces = DefaultMaxNonces
	}
	return &ReplayGuard{window: window, max: maxNonces, seen: make(map[Nonce]int64)}
}

// Check accepts (t, n) once: it fails with ErrStale if t is more than the
// window away from now, with ErrReplay if n was accepted before, and with
// ErrBusy if the cache is full. Call it only after the signatures covering t
// and n have been verified, so that forgeries cannot fill the cache.
func (g *ReplayGuard) Check(now time.Time, t int64, n Nonce) error {
	ts := time.Unix(0, t)
	if ts.Before(now.Add(-g.window)) || ts.After(now.Add(g.window)) {
		return fmt.Errorf("%w: %s from now", ErrStale, ts.Sub(now).Round(time.Millisecond))
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.seen[n]; ok {
		return ErrReplay
	}
	if len(g.seen) >= g.max {
		cut := now.UnixNano()
		for k, exp := range g.seen {
			if exp < cut {
				delete(g.seen, k)
			}
		}
		if len(g.seen) >= g.max {
			return ErrBusy
		}
	}
	g.seen[n] = ts.Add(2 * g.window).UnixNano()
	return nil
}
