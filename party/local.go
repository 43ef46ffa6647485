package party

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/mpsi-dev/mpsi/coordinator"
	"github.com/mpsi-dev/mpsi/psi"
	"github.com/mpsi-dev/mpsi/psi/join"
	"github.com/mpsi-dev/mpsi/psi/session"
	"github.com/mpsi-dev/mpsi/sharing"
)

// Input is one party's records for [RunLocal].
type Input struct {
	Name    string
	Records *Records
}

// Outcome is what a session releases: the coordinator's Result, and each
// party's own Result (the same, plus its members with reveal: membership).
type Outcome struct {
	Result  *session.Result
	Parties map[string]*session.Result
}

// RunLocal runs a whole session in one process: every party and the
// coordinator, through the same rounds the network layer carries (dh ring
// or keyed tokens, join, masked aggregation with coordinator-dealt
// zero-sum masks and pairwise seeds — or, with aggregation encrypted,
// multiparty BGV (see [EncryptedParty]) — release). inputs must name every party
// of the spec once. It stops between rounds when ctx is done.
func RunLocal(ctx context.Context, spec *session.Spec, inputs []Input, cfg Config) (*Outcome, error) {
	n := len(spec.Parties)
	if len(inputs) != n {
		return nil, fmt.Errorf("party: RunLocal: %d inputs for %d parties", len(inputs), n)
	}
	parties := make([]*Party, n)
	for _, in := range inputs {
		i := spec.PartyIndex(in.Name)
		if i < 0 || parties[i] != nil {
			return nil, fmt.Errorf("party: RunLocal: input %q is not a party or given twice", in.Name)
		}
		p, err := New(spec, in.Name, in.Records, cfg)
		if err != nil {
			return nil, err
		}
		parties[i] = p
	}
	eng, err := coordinator.NewEngine(spec)
	if err != nil {
		return nil, err
	}
	// Join: declare set sizes.
	for i, p := range parties {
		if err := eng.Declare(i, p.SetSize()); err != nil {
			return nil, err
		}
	}
	// Tokens.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t := time.Now()
	switch spec.Match.Mode {
	case session.ModeDH:
		lists := make([][]psi.Point, n)
		for i, p := range parties {
			if lists[i], err = p.StartRing(); err != nil {
				return nil, err
			}
		}
		t = cfg.phase("tokens", t)
		for hop := 1; hop < n; hop++ {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			for owner := range lists {
				if lists[owner], err = parties[coordinator.RingTarget(n, owner, hop)].Hop(lists[owner]); err != nil {
					return nil, err
				}
			}
		}
		t = cfg.phase("ring", t)
		for i, l := range lists {
			toks := make([]join.Token, len(l))
			for k := range l {
				toks[k] = join.Token(l[k])
			}
			lists[i] = nil // one list at a time held twice
			if err := eng.SetTokens(i, toks); err != nil {
				return nil, err
			}
		}
	case session.ModeKeyed:
		contribs := make([]psi.KeyContribution, n)
		for i, p := range parties {
			contribs[i] = p.KeyContribution()
		}
		for i, p := range parties {
			toks, err := p.KeyedTokens(slices.Clone(contribs))
			if err != nil {
				return nil, err
			}
			if err := eng.SetTokens(i, toks); err != nil {
				return nil, err
			}
		}
		t = cfg.phase("tokens", t)
	default:
		return nil, fmt.Errorf("party: unknown match mode %q", spec.Match.Mode)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	jr, err := eng.Join(ctx, cfg.Workers)
	if err != nil {
		return nil, err
	}
	t = cfg.phase("join", t)
	if spec.Aggregation == session.AggregationEncrypted {
		// Step 4 without positions for the parties: see runEncrypted.
		return runEncrypted(ctx, parties, eng, cfg, t)
	}
	masks, err := eng.Masks()
	if err != nil {
		return nil, err
	}
	// Masked aggregation: seeds s_ij go from i to j (sealed, over the network).
	for i, p := range parties {
		incoming := make([]sharing.Seed, n)
		for j, q := range parties {
			if j == i {
				continue
			}
			if incoming[j], err = q.Seed(i); err != nil {
				return nil, err
			}
		}
		z, err := p.Share(jr.Positions[i], masks[i], incoming)
		if err != nil {
			return nil, err
		}
		if err := eng.AddShare(i, z); err != nil {
			return nil, err
		}
	}
	t = cfg.phase("aggregation", t)
	res, err := eng.Release()
	if err != nil {
		return nil, err
	}
	cfg.phase("release", t)
	out := &Outcome{Result: res, Parties: map[string]*session.Result{}}
	for i, p := range parties {
		r, err := p.OwnResult(res, jr.Positions[i])
		if err != nil {
			return nil, err
		}
		out.Parties[p.name] = r
	}
	return out, nil
}

// OwnResult is the party's copy of the released Result: with reveal:
// membership it adds the record_ids of the party's shared rows.
func (p *Party) OwnResult(res *session.Result, positions []uint32) (*session.Result, error) {
	r := *res
	if p.spec.Reveals(session.RevealMembership) {
		m, err := p.Members(positions)
		if err != nil {
			return nil, err
		}
		if m == nil {
			m = []string{}
		}
		r.Members = m
	}
	return &r, nil
}
