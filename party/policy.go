package party

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/mpsi-dev/mpsi/psi/session"
)

// ErrPolicy reports a session spec that the party's local policy refuses.
var ErrPolicy = errors.New("party: spec refused by local policy")

// Policy is a hospital's local rule set, checked against every spec before
// anything is computed or sent. Empty lists allow everything.
type Policy struct {
	// AllowedFields are the logical fields the hospital agrees to use
	// (for matching or aggregates).
	AllowedFields []string `json:"allowed_fields,omitempty"`
	// MinMinCell is the smallest min_cell the hospital accepts.
	MinMinCell int `json:"min_min_cell,omitempty"`
	// AllowedParties are the parties the hospital agrees to compute with.
	AllowedParties []string `json:"allowed_parties,omitempty"`
	// AllowedReveal restricts the reveal list (e.g. forbid membership).
	AllowedReveal []string `json:"allowed_reveal,omitempty"`
	// PrivacyBudget, if set, is the differential-privacy budget of each
	// dataset with each set of partners: sessions that reveal aggregates
	// must ask for privacy (noise), and what they spend is charged, before
	// any data leaves, to the hospital's own ledger (package party/ledger),
	// which refuses a session that would exceed the budget.
	PrivacyBudget *Budget `json:"privacy_budget,omitempty"`
}

// Budget is a total (Epsilon, Delta)-DP allowance. Sessions are charged
// in zero-concentrated DP (ρ, which adds up exactly across sessions): the
// budget holds ρ = [session.RhoFor](Epsilon, Delta).
type Budget struct {
	Epsilon float64 `json:"epsilon"`
	Delta   float64 `json:"delta"`
}

// Rho is the budget in zCDP.
func (b Budget) Rho() float64 { return session.RhoFor(b.Epsilon, b.Delta) }

// LoadPolicy reads a policy file; unknown keys are refused.
func LoadPolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("party: reading policy: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p Policy
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return &p, nil
}

// Check refuses a spec that breaks the policy, naming the rule.
func (p *Policy) Check(s *session.Spec) error {
	if p == nil {
		return nil
	}
	if s.MinCell < p.MinMinCell {
		return fmt.Errorf("%w: min_cell %d is below the policy minimum %d", ErrPolicy, s.MinCell, p.MinMinCell)
	}
	if len(p.AllowedParties) > 0 {
		for _, q := range s.Parties {
			if !slices.Contains(p.AllowedParties, q) {
				return fmt.Errorf("%w: party %q is not in allowed_parties", ErrPolicy, q)
			}
		}
	}
	if len(p.AllowedFields) > 0 {
		used := s.MatchFieldNames()
		for _, a := range s.Aggregates {
			if a.Field != "" {
				used = append(used, a.Field)
			}
		}
		for _, f := range used {
			if !slices.Contains(p.AllowedFields, f) {
				return fmt.Errorf("%w: field %q is not in allowed_fields", ErrPolicy, f)
			}
		}
	}
	if len(p.AllowedReveal) > 0 {
		for _, r := range s.Reveal {
			if !slices.Contains(p.AllowedReveal, r) {
				return fmt.Errorf("%w: reveal %q is not in allowed_reveal", ErrPolicy, r)
			}
		}
	}
	if b := p.PrivacyBudget; b != nil {
		if !(b.Epsilon > 0) || !(b.Delta > 0 && b.Delta < 1) {
			return fmt.Errorf("%w: privacy_budget needs epsilon > 0 and delta in (0, 1)", ErrPolicy)
		}
		if s.Reveals(session.RevealAggregates) && s.Privacy == nil {
			return fmt.Errorf("%w: the spec reveals aggregates without privacy (noise), and the policy sets a privacy_budget", ErrPolicy)
		}
		if s.Privacy != nil && s.Privacy.Delta > b.Delta {
			return fmt.Errorf("%w: privacy.delta %v is above the budget's %v", ErrPolicy, s.Privacy.Delta, b.Delta)
		}
	}
	return nil
}
