package protocol

import (
	"fmt"

	"github.com/mpsi-dev/mpsi/internal/envelope"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// onTally checks the coordinator's signed statement of the join's counts
// against what the party knows (the roster's declared sizes) and keeps it:
// the positions, the decision to contribute and the Result are checked
// against it.
func (p *Party) onTally(t *Tally) error {
	if p.tally != nil {
		return fmt.Errorf("%w: tally sent twice", ErrWrongRound)
	}
	if p.ownPending() {
		return fmt.Errorf("%w: tally before our own list was sent", ErrWrongRound)
	}
	cert := p.cfg.Coordinator()
	if cert == nil {
		return fmt.Errorf("%w: no coordinator certificate to check the tally against", envelope.ErrRoster)
	}
	if err := envelope.VerifyTally(cert, p.spec.ID, tallyBytes(t.Intersection, t.Pairwise), t.Signature); err != nil {
		return err
	}
	smallest := p.roster[0].SetSize
	for _, e := range p.roster {
		smallest = min(smallest, e.SetSize)
	}
	if t.Intersection > smallest {
		return fmt.Errorf("%w: tally |I| = %d exceeds the smallest declared set (%d)", ErrBadMessage, t.Intersection, smallest)
	}
	want := 0
	if p.spec.Reveals(session.RevealPairwise) {
		want = p.n * p.n
	}
	if len(t.Pairwise) != want {
		return fmt.Errorf("%w: tally has %d pairwise cells, the spec needs %d", ErrBadMessage, len(t.Pairwise), want)
	}
	for i := 0; i < p.n && want > 0; i++ {
		for j := 0; j < p.n; j++ {
			v := t.Pairwise[i*p.n+j]
			switch {
			case i == j && v != p.roster[i].SetSize:
				return fmt.Errorf("%w: tally lists %s's own count as %d, it declared %d", ErrBadMessage, p.spec.Parties[i], v, p.roster[i].SetSize)
			case v != t.Pairwise[j*p.n+i]:
				return fmt.Errorf("%w: tally's pairwise matrix is not symmetric at (%d, %d)", ErrBadMessage, i, j)
			case v < t.Intersection || v > min(p.roster[i].SetSize, p.roster[j].SetSize):
				return fmt.Errorf("%w: tally's pairwise count (%d, %d) = %d is impossible", ErrBadMessage, i, j, v)
			}
		}
	}
	p.tally = t
	return nil
}

// tallyReleasesAggregates reports whether, by the signed tally, the
// release will show any aggregate: they are revealed and declared, and I
// is not empty nor below min_cell.
func (p *Party) tallyReleasesAggregates() bool {
	return p.tally != nil && p.spec.Reveals(session.RevealAggregates) && len(p.spec.Aggregates) > 0 &&
		p.tally.Intersection > 0 && p.tally.Intersection >= uint64(p.spec.MinCell)
}

// checkResultAgainstTally requires the Result's counts to be the ones the
// coordinator signed before the aggregation step.
func (p *Party) checkResultAgainstTally(r *session.Result) error {
	if p.tally == nil {
		return fmt.Errorf("%w: result before the coordinator's signed tally", ErrWrongRound)
	}
	if r.Session != p.spec.ID {
		return fmt.Errorf("%w: result of session %q", ErrBadMessage, truncate(r.Session, 64))
	}
	if r.Intersection != nil && uint64(*r.Intersection) != p.tally.Intersection {
		return fmt.Errorf("%w: result says |I| = %d, the signed tally %d", ErrBadMessage, *r.Intersection, p.tally.Intersection)
	}
	if r.Pairwise != nil && len(p.tally.Pairwise) > 0 {
		if len(r.Pairwise) != p.n {
			return fmt.Errorf("%w: result's pairwise matrix has %d rows", ErrBadMessage, len(r.Pairwise))
		}
		for i, row := range r.Pairwise {
			if len(row) != p.n {
				return fmt.Errorf("%w: result's pairwise row %d has %d cells", ErrBadMessage, i, len(row))
			}
			for j, v := range row {
				if v != nil && uint64(*v) != p.tally.Pairwise[i*p.n+j] {
					return fmt.Errorf("%w: result's pairwise count (%d, %d) differs from the signed tally", ErrBadMessage, i, j)
				}
			}
		}
	}
	if lk := r.Linkage; lk != nil {
		// The groups each key completed sum to |I|.
		if len(lk.Keys) != len(p.spec.MatchKeys()) {
			return fmt.Errorf("%w: result's linkage has %d key counts, the spec %d keys", ErrBadMessage, len(lk.Keys), len(p.spec.MatchKeys()))
		}
		var sum uint64
		for _, c := range lk.Keys {
			if c != nil {
				if *c < 0 {
					return fmt.Errorf("%w: result's linkage has a negative count", ErrBadMessage)
				}
				sum += uint64(*c)
			}
		}
		if !lk.Suppressed && sum != p.tally.Intersection {
			return fmt.Errorf("%w: result's linkage key counts sum to %d, the signed tally says |I| = %d", ErrBadMessage, sum, p.tally.Intersection)
		}
	}
	return nil
}
