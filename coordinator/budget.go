package coordinator

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/mpsi-dev/mpsi/psi/session"
)

// PrivacyBudget is the coordinator's own view of each hospital's privacy
// budget (issue 12): a session is refused at creation if it reveals
// aggregates without privacy, or if, for any of its parties, the sessions
// with privacy already registered with the same partners plus this one
// would spend more than ρ = [session.RhoFor](Epsilon, Delta). It refuses
// early and saves the hospitals a session they would refuse; it is
// advisory: each hospital's own ledger (package party/ledger) is the one
// that cannot be bypassed. Every registered session counts, whatever its
// outcome (a hospital charges at admission). Safe for concurrent use.
type PrivacyBudget struct {
	Epsilon float64
	Delta   float64

	mu sync.Mutex // serialises check-and-create
}

// admit checks spec against the budget and, if it fits, returns with the
// budget locked: the caller registers the session and then calls unlock.
// The error wraps [ErrForbidden].
func (b *PrivacyBudget) admit(ctx context.Context, s *Server, spec *session.Spec) (unlock func(), err error) {
	if b == nil {
		return func() {}, nil
	}
	if !spec.Reveals(session.RevealAggregates) {
		return func() {}, nil
	}
	if spec.Privacy == nil {
		return nil, fmt.Errorf("%w: the coordinator keeps a privacy budget: a session that reveals aggregates needs privacy (noise)", ErrForbidden)
	}
	layout, err := session.NewLayout(spec)
	if err != nil {
		return nil, err
	}
	need, budget := layout.NoisePlan().Rho, session.RhoFor(b.Epsilon, b.Delta)
	b.mu.Lock()
	defer func() {
		if err != nil {
			b.mu.Unlock()
		}
	}()
	stored, err := s.cfg.Store.Sessions(ctx)
	if err != nil {
		return nil, err
	}
	spent := map[string]float64{} // party + "\x00" + its partners
	key := func(sp *session.Spec, p string) string {
		others := slices.DeleteFunc(slices.Clone(sp.Parties), func(q string) bool { return q == p })
		slices.Sort(others)
		return p + "\x00" + strings.Join(others, ",")
	}
	for _, ss := range stored {
		sp, err := session.ParseSpec(ss.Spec)
		if err != nil || sp.Privacy == nil || !sp.Reveals(session.RevealAggregates) {
			continue
		}
		l, err := session.NewLayout(sp)
		if err != nil {
			continue
		}
		for _, p := range sp.Parties {
			spent[key(sp, p)] += l.NoisePlan().Rho
		}
	}
	for _, p := range spec.Parties {
		if got := spent[key(spec, p)]; got+need > budget {
			return nil, fmt.Errorf("%w: privacy budget exceeded for %s with its partners: spent ρ = %.4g, session needs %.4g, budget %.4g",
				ErrForbidden, p, got, need, budget)
		}
	}
	return b.mu.Unlock, nil
}
