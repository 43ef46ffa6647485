package protocol

import (
	"context"
	"fmt"
	"slices"

	"github.com/mpsi-dev/mpsi/psi"
	"github.com/mpsi-dev/mpsi/psi/clk"
	"github.com/mpsi-dev/mpsi/psi/join"
	"github.com/mpsi-dev/mpsi/psi/link"
	"github.com/mpsi-dev/mpsi/psi/session"
	"github.com/mpsi-dev/mpsi/sharing"
)

// Engine is the coordinator's state for one session, without I/O: it takes
// declared set sizes, token lists, and masked shares, and produces the join,
// the masks and the released Result. It never sees an identifier, a group
// key or one party's unmasked vector. It is not safe for concurrent use.
type Engine struct {
	spec   *session.Spec
	layout *session.Layout
	n      int

	sizes  []int
	keys   int              // match keys
	tokens [][][]join.Token // [key][party]
	added  [][]int          // [key][party]: tokens received through AddTokens
	spill  *join.Spiller    // nil: in-memory join (always, with several keys)
	have   [][]bool         // [key][party]: list complete
	join   *join.Result
	// linkage holds, with several keys, the groups each key completed and
	// the ambiguous components (psi/link).
	linkage *link.Result
	// clks holds, in mode clk, each party's CLKs back to back (instead of
	// tokens), and clkStats the linker's statistics.
	clks     [][]byte
	clkStats *clk.LinkStats
	masks    []sharing.Vector
	shares   []sharing.Vector
	result   *session.Result
	// encStarted: the encrypted-aggregation state was handed out (once).
	encStarted bool
}

// NewEngine starts the state for a validated spec.
func NewEngine(spec *session.Spec) (*Engine, error) {
	l, err := session.NewLayout(spec)
	if err != nil {
		return nil, err
	}
	n := len(spec.Parties)
	keys := max(1, len(spec.MatchKeys())) // mode clk: one list of CLKs
	e := &Engine{spec: spec, layout: l, n: n, keys: keys, sizes: make([]int, n), tokens: make([][][]join.Token, keys),
		added: make([][]int, keys), have: make([][]bool, keys), shares: make([]sharing.Vector, n)}
	for k := range keys {
		e.tokens[k], e.added[k], e.have[k] = make([][]join.Token, n), make([]int, n), make([]bool, n)
	}
	for i := range e.sizes {
		e.sizes[i] = -1
	}
	return e, nil
}

// Layout returns the session's aggregate vector layout.
func (e *Engine) Layout() *session.Layout { return e.layout }

// RingTarget is the party that performs hop h (1..n−1) on the list owned by
// party owner: lists travel owner+1, owner+2, … (mod n).
func RingTarget(n, owner, hop int) int { return (owner + hop) % n }

func (e *Engine) party(i int) error {
	if i < 0 || i >= e.n {
		return fmt.Errorf("%w: no party %d", ErrBadMessage, i)
	}
	return nil
}

// Declare records party i's set size.
func (e *Engine) Declare(i, size int) error {
	if err := e.party(i); err != nil {
		return err
	}
	if e.sizes[i] >= 0 {
		return fmt.Errorf("%w: party %s declared twice", ErrWrongRound, e.spec.Parties[i])
	}
	if size < 0 || size > e.spec.MaxSetSize {
		return fmt.Errorf("%w: party %s declares %d records, max_set_size is %d", ErrBadMessage, e.spec.Parties[i], size, e.spec.MaxSetSize)
	}
	e.sizes[i] = size
	return nil
}

// Size returns party i's declared set size, or -1.
func (e *Engine) Size(i int) int { return e.sizes[i] }

// Keys is the number of match keys: each party sends one token list per
// key.
func (e *Engine) Keys() int { return e.keys }

// SetTokens records the final token list of party i for the first match
// key (aligned with its shuffled positions); its length must equal the
// declared size.
func (e *Engine) SetTokens(i int, toks []join.Token) error {
	return e.SetKeyTokens(0, i, toks)
}

// SetKeyTokens is [Engine.SetTokens] for match key k.
func (e *Engine) SetKeyTokens(k, i int, toks []join.Token) error {
	if err := e.party(i); err != nil {
		return err
	}
	if k < 0 || k >= e.keys {
		return fmt.Errorf("%w: no match key %d", ErrBadMessage, k)
	}
	if e.sizes[i] < 0 || e.have[k][i] || e.added[k][i] > 0 || e.spill != nil || e.join != nil {
		return fmt.Errorf("%w: tokens of party %s", ErrWrongRound, e.spec.Parties[i])
	}
	if len(toks) != e.sizes[i] {
		return fmt.Errorf("%w: party %s has %d tokens, declared %d", ErrBadMessage, e.spec.Parties[i], len(toks), e.sizes[i])
	}
	e.tokens[k][i], e.have[k][i] = toks, true
	return nil
}

// Spill makes the join keep the token lists on disk rather than in memory,
// within opt.Budget bytes ([join.Spiller]; Pairwise is set from the spec):
// tokens then arrive through [Engine.AddTokens] and go straight to the spill
// file. Call it once every party has declared its set size and before any
// token; [Engine.Close] removes the spill files.
func (e *Engine) Spill(opt join.SpillOptions) error {
	if e.spill != nil || e.join != nil {
		return fmt.Errorf("%w: spilling join already set up or joined", ErrWrongRound)
	}
	if e.keys > 1 {
		return fmt.Errorf("%w: %d match keys are linked in memory", ErrNoSpill, e.keys)
	}
	for i, s := range e.sizes {
		if s < 0 {
			return fmt.Errorf("%w: party %s has not declared its set size", ErrWrongRound, e.spec.Parties[i])
		}
		if e.added[0][i] > 0 || e.have[0][i] {
			return fmt.Errorf("%w: tokens already received", ErrWrongRound)
		}
	}
	opt.Pairwise = e.spec.Reveals(session.RevealPairwise)
	sp, err := join.NewSpiller(e.sizes, opt)
	if err != nil {
		return fmt.Errorf("protocol: join budget: %w", err)
	}
	e.spill = sp
	return nil
}

// AddTokens takes the next batch of party i's final tokens, starting at
// position first: batches must be contiguous, and the list is complete when
// it reaches the declared size (an empty batch completes an empty list).
// With [Engine.Spill] the tokens go to disk; otherwise they are kept.
func (e *Engine) AddTokens(i int, first uint64, batch []join.Token) error {
	return e.AddKeyTokens(0, i, first, batch)
}

// AddKeyTokens is [Engine.AddTokens] for match key k.
func (e *Engine) AddKeyTokens(k, i int, first uint64, batch []join.Token) error {
	if err := e.party(i); err != nil {
		return err
	}
	if k < 0 || k >= e.keys {
		return fmt.Errorf("%w: no match key %d", ErrBadMessage, k)
	}
	if e.sizes[i] < 0 || e.have[k][i] || e.join != nil {
		return fmt.Errorf("%w: tokens of party %s", ErrWrongRound, e.spec.Parties[i])
	}
	if first != uint64(e.added[k][i]) || e.added[k][i]+len(batch) > e.sizes[i] {
		return fmt.Errorf("%w: party %s: tokens %d..%d of %d (key %d), expected from %d", ErrBadMessage, e.spec.Parties[i], first, first+uint64(len(batch)), e.sizes[i], k, e.added[k][i])
	}
	if e.spill != nil {
		if err := e.spill.Add(i, first, batch); err != nil {
			return fmt.Errorf("protocol: spilling tokens of party %s: %w", e.spec.Parties[i], err)
		}
	} else {
		if e.tokens[k][i] == nil {
			e.tokens[k][i] = make([]join.Token, 0, len(batch))
		}
		e.tokens[k][i] = append(e.tokens[k][i], batch...)
	}
	e.added[k][i] += len(batch)
	e.have[k][i] = e.added[k][i] == e.sizes[i]
	return nil
}

// AddCLKs takes the next batch of party i's CLKs in mode clk (data holds
// whole CLKs back to back, from position first on); like AddTokens,
// batches are contiguous and an empty one completes an empty list. CLKs
// are checked (length, padding bits) at the join.
func (e *Engine) AddCLKs(i int, first uint64, data []byte) error {
	if err := e.party(i); err != nil {
		return err
	}
	sc := e.spec.CLKSchema()
	if sc == nil {
		return fmt.Errorf("%w: CLKs in mode %s", ErrBadMessage, e.spec.Match.Mode)
	}
	if e.clks == nil {
		e.clks = make([][]byte, e.n)
	}
	cnt := len(data) / sc.Bytes()
	if e.sizes[i] < 0 || e.have[0][i] || e.join != nil {
		return fmt.Errorf("%w: CLKs of party %s", ErrWrongRound, e.spec.Parties[i])
	}
	if len(data)%sc.Bytes() != 0 || first != uint64(e.added[0][i]) || e.added[0][i]+cnt > e.sizes[i] {
		return fmt.Errorf("%w: party %s: CLKs %d..%d of %d, expected from %d", ErrBadMessage, e.spec.Parties[i], first, first+uint64(cnt), e.sizes[i], e.added[0][i])
	}
	e.clks[i] = append(e.clks[i], data...)
	e.added[0][i] += cnt
	e.have[0][i] = e.added[0][i] == e.sizes[i]
	return nil
}

// Close removes the spill files, if any. The engine cannot join afterwards.
func (e *Engine) Close() error {
	if e.spill == nil {
		return nil
	}
	err := e.spill.Close()
	e.spill = nil
	return err
}

// Join intersects the token lists once all are in, and drops them. With
// [Engine.Spill] it joins one partition at a time from disk and removes the
// spill files; it stops between partitions when ctx is done.
func (e *Engine) Join(ctx context.Context, workers int) (*join.Result, error) {
	if e.join != nil {
		return e.join, nil
	}
	for k := range e.have {
		for i, ok := range e.have[k] {
			if !ok {
				return nil, fmt.Errorf("%w: tokens of party %s missing", ErrWrongRound, e.spec.Parties[i])
			}
		}
	}
	var r *join.Result
	var err error
	switch {
	case e.spec.Match.Mode == session.ModeCLK:
		r, err = e.linkCLKs(ctx)
	case e.keys > 1:
		var lr *link.Result
		lr, err = link.Group(e.tokens, link.Options{Pairwise: e.spec.Reveals(session.RevealPairwise)})
		if err == nil {
			e.linkage = lr
			r = &join.Result{Intersection: lr.Complete, Pairwise: lr.Pairwise, Positions: lr.Positions}
		}
	case e.spill != nil:
		r, err = e.spill.Join(ctx)
		if cerr := e.Close(); err == nil {
			err = cerr
		}
	default:
		r, err = join.Join(e.tokens[0], join.Options{Pairwise: e.spec.Reveals(session.RevealPairwise), Workers: workers})
	}
	if err != nil {
		return nil, fmt.Errorf("protocol: join: %w", err)
	}
	if r.Pairwise == nil {
		r.Pairwise = make([][]int, e.n)
		for i := range r.Pairwise {
			r.Pairwise[i] = make([]int, e.n)
			r.Pairwise[i][i] = e.sizes[i]
		}
	}
	e.join = r
	for k := range e.tokens {
		clear(e.tokens[k])
	}
	return r, nil
}

// linkCLKs links the parties' CLKs (psi/clk): candidate pairs at the
// spec's Dice threshold, grouped one record per party; the complete groups
// are the intersection.
func (e *Engine) linkCLKs(ctx context.Context) (*join.Result, error) {
	sc := e.spec.CLKSchema()
	sets := make([]*clk.Set, e.n)
	for i := range sets {
		s, err := clk.DecodeSet(sc.Bits, e.clks[i])
		if err != nil {
			return nil, fmt.Errorf("%w: CLKs of party %s: %w", ErrBadMessage, e.spec.Parties[i], err)
		}
		sets[i] = s
	}
	lr, err := clk.Link(ctx, sets, clk.LinkOptions{Threshold: e.spec.Match.Threshold})
	if err != nil {
		return nil, err
	}
	e.clks, e.clkStats = nil, &lr.Stats
	r := &join.Result{Positions: make([][]uint32, e.n), Pairwise: make([][]int, e.n)}
	for i := range r.Pairwise {
		r.Pairwise[i] = make([]int, e.n)
		r.Pairwise[i][i] = e.sizes[i]
	}
	for _, g := range lr.Groups {
		for a := range g {
			for b := a + 1; b < len(g); b++ {
				r.Pairwise[g[a].Party][g[b].Party]++
				r.Pairwise[g[b].Party][g[a].Party]++
			}
		}
		if len(g) == e.n {
			r.Intersection++
			for _, m := range g {
				r.Positions[m.Party] = append(r.Positions[m.Party], uint32(m.Index))
			}
		}
	}
	for i := range r.Positions {
		slices.Sort(r.Positions[i])
		if r.Positions[i] == nil {
			r.Positions[i] = []uint32{}
		}
	}
	if !e.spec.Reveals(session.RevealPairwise) {
		r.Pairwise = nil // as join.Join without Pairwise; filled in below
	}
	return r, nil
}

// releaseLinkage adds the linkage counts to a Result of a session with
// several match keys.
func (e *Engine) releaseLinkage(r *session.Result) {
	if e.linkage != nil {
		e.layout.ReleaseLinkage(r, e.linkage.Completed, e.linkage.Ambiguous)
	}
}

// Masks deals the zero-sum masks r_1..r_n once, after the join; masks[i]
// goes to party i only.
func (e *Engine) Masks() ([]sharing.Vector, error) {
	if e.join == nil {
		return nil, fmt.Errorf("%w: masks before the join", ErrWrongRound)
	}
	if e.spec.Aggregation != session.AggregationMasked {
		// Dealing masks would lead parties to compute on their positions.
		return nil, fmt.Errorf("%w: no masks in %s aggregation", ErrWrongRound, e.spec.Aggregation)
	}
	if e.masks == nil {
		m, err := sharing.ZeroSumMasks(e.n, e.layout.Len())
		if err != nil {
			return nil, err
		}
		e.masks = m
	}
	return e.masks, nil
}

// AddShare records party i's masked share z_i.
func (e *Engine) AddShare(i int, z sharing.Vector) error {
	if err := e.party(i); err != nil {
		return err
	}
	if e.masks == nil || e.shares[i] != nil {
		return fmt.Errorf("%w: share of party %s", ErrWrongRound, e.spec.Parties[i])
	}
	if len(z) != e.layout.Len() {
		return fmt.Errorf("%w: share of party %s has length %d, want %d", ErrBadMessage, e.spec.Parties[i], len(z), e.layout.Len())
	}
	e.shares[i] = z
	return nil
}

// Release sums the shares, which must all be in, and releases the Result.
// A result missing any party's share is never released.
func (e *Engine) Release() (*session.Result, error) {
	if e.result != nil {
		return e.result, nil
	}
	for i, z := range e.shares {
		if z == nil {
			return nil, fmt.Errorf("%w: share of party %s missing", ErrWrongRound, e.spec.Parties[i])
		}
	}
	sum, err := sharing.Sum(e.shares)
	if err != nil {
		return nil, err
	}
	r, err := e.layout.Release(e.join.Intersection, e.join.Pairwise, sum)
	if err != nil {
		return nil, err
	}
	e.releaseLinkage(r)
	e.result = r
	e.masks = nil
	return r, nil
}

// elementSize is the size of one element of a party's token list: a token
// (32 bytes), or in mode clk one CLK of the schema's length.
func elementSize(spec *session.Spec) int {
	if sc := spec.CLKSchema(); sc != nil {
		return sc.Bytes()
	}
	return psi.TokenSize
}
