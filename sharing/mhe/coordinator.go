package mhe

import (
	"fmt"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	lmhe "github.com/tuneinsight/lattigo/v5/mhe"
	"github.com/tuneinsight/lattigo/v5/schemes/bgv"
)

// Coordinator is the coordinator's side of the encrypted aggregation. It
// aggregates key shares into the collective public key and Galois keys,
// evaluates the aggregate, and combines PCKS shares. It never holds a
// secret-key share: its state is public keys, evaluation keys, common
// reference polynomials and ciphertexts. A Coordinator is not safe for
// concurrent use.
type Coordinator struct {
	params  *Params
	session SessionID
	cpk     *rlwe.PublicKey
	eval    *bgv.Evaluator // holds only the Galois (evaluation) keys
}

// NewCoordinator returns the coordinator of the session.
func NewCoordinator(params *Params, session SessionID) (*Coordinator, error) {
	if params == nil {
		return nil, fmt.Errorf("%w: nil params", ErrInvalidArgument)
	}
	return &Coordinator{params: params, session: session}, nil
}

// checkSenders verifies that froms names every party exactly once.
func (c *Coordinator) checkSenders(round string, froms []PartyID) error {
	n := c.params.Parties()
	if len(froms) != n {
		return fmt.Errorf("mhe: %s: %w: %d messages, want %d", round, ErrMissingParty, len(froms), n)
	}
	seen := make([]bool, n)
	for _, f := range froms {
		if int(f) >= n {
			return &PeerError{Party: f, Round: round, Err: fmt.Errorf("%w: sender out of range", ErrMalformedMessage)}
		}
		if seen[f] {
			return &PeerError{Party: f, Round: round, Err: ErrDuplicateSender}
		}
		seen[f] = true
	}
	return nil
}

// AggregateCKG checks that in holds one CKG share from every party of the
// session and returns the collective public key, to be sent to every party.
// It may be called once.
func (c *Coordinator) AggregateCKG(in []*CKGShareMsg) (*PublicKeyMsg, error) {
	if c.cpk != nil {
		return nil, fmt.Errorf("%w: public key already aggregated", ErrWrongState)
	}
	froms := make([]PartyID, len(in))
	for i, m := range in {
		if m == nil {
			return nil, &PeerError{Party: PartyID(i), Round: "ckg", Err: fmt.Errorf("%w: nil message", ErrMalformedMessage)}
		}
		if err := c.params.checkMsg(m.params, m.Session, c.session, qpRows(m.Share.Value, c.params)); err != nil {
			return nil, &PeerError{Party: m.From, Round: "ckg", Err: err}
		}
		froms[i] = m.From
	}
	if err := c.checkSenders("ckg", froms); err != nil {
		return nil, err
	}
	ckg := lmhe.NewPublicKeyGenProtocol(c.params.bgv)
	crp, err := ckgCRP(c.params, c.session)
	if err != nil {
		return nil, err
	}
	agg := ckg.AllocateShare()
	ckg.AggregateShares(in[0].Share, in[1].Share, &agg)
	for _, m := range in[2:] {
		ckg.AggregateShares(agg, m.Share, &agg)
	}
	out := c.params.NewPublicKeyMsg()
	out.Session = c.session
	ckg.GenPublicKey(agg, crp, out.Key)
	c.cpk = out.Key
	return out, nil
}

// AggregateGalois checks that in holds the Galois-key shares of every party
// and builds the Galois keys Trace needs. It may be called once.
func (c *Coordinator) AggregateGalois(in []*GaloisSharesMsg) error {
	if c.eval != nil {
		return fmt.Errorf("%w: Galois keys already aggregated", ErrWrongState)
	}
	froms := make([]PartyID, len(in))
	for i, m := range in {
		if m == nil {
			return &PeerError{Party: PartyID(i), Round: "gkg", Err: fmt.Errorf("%w: nil message", ErrMalformedMessage)}
		}
		if m.params == nil || m.params.id != c.params.id {
			return &PeerError{Party: m.From, Round: "gkg", Err: fmt.Errorf("%w: message allocated for other parameters", ErrInvalidArgument)}
		}
		if m.Session != c.session {
			return &PeerError{Party: m.From, Round: "gkg", Err: ErrWrongSession}
		}
		if _, err := m.layout(); err != nil {
			return &PeerError{Party: m.From, Round: "gkg", Err: err}
		}
		for i, g := range c.params.galEls {
			if m.Shares[i].GaloisElement != g {
				return &PeerError{Party: m.From, Round: "gkg", Err: fmt.Errorf("%w: unexpected Galois element", ErrMalformedMessage)}
			}
		}
		froms[i] = m.From
	}
	if err := c.checkSenders("gkg", froms); err != nil {
		return err
	}
	gkg := lmhe.NewGaloisKeyGenProtocol(c.params.bgv)
	gks := make([]*rlwe.GaloisKey, len(c.params.galEls))
	for i, g := range c.params.galEls {
		crp, err := gkgCRP(gkg, c.session, g)
		if err != nil {
			return err
		}
		agg := gkg.AllocateShare()
		if err := gkg.AggregateShares(in[0].Shares[i], in[1].Shares[i], &agg); err != nil {
			return fmt.Errorf("mhe: gkg: %v", err)
		}
		for _, m := range in[2:] {
			if err := gkg.AggregateShares(agg, m.Shares[i], &agg); err != nil {
				return fmt.Errorf("mhe: gkg: %v", err)
			}
		}
		gks[i] = rlwe.NewGaloisKey(c.params.bgv)
		if err := gkg.GenGaloisKey(agg, crp, gks[i]); err != nil {
			return fmt.Errorf("mhe: gkg: %v", err)
		}
	}
	c.eval = bgv.NewEvaluator(c.params.bgv, rlwe.NewMemEvaluationKeySet(nil, gks...))
	return nil
}

// Accumulator sums indicator-weighted contribution ciphertexts as they
// arrive, so the coordinator holds one accumulator ciphertext rather than all
// inputs. Create it with [Coordinator.NewAccumulator]. It is not safe for
// concurrent use.
type Accumulator struct {
	c          *Coordinator
	indicators [][]bool
	counts     []int
	seen       [][]bool
	left       []int              // ciphertexts still expected per party
	part       []*rlwe.Ciphertext // per-party partial sums until complete
	dropped    []bool
	acc        *rlwe.Ciphertext
	eval       *bgv.Evaluator
	ecd        *bgv.Encoder
	pt         *rlwe.Plaintext
	vals       []uint64
	done       bool
}

// NewAccumulator starts an aggregation. indicators[i][pos] says whether
// position pos of party i's shuffled order is in the intersection; there is
// one indicator per party and len(indicators[i]) must equal party i's record
// count m_i (≤ MaxRecords), which fixes how many ciphertexts it must send.
// The indicators are copied.
func (c *Coordinator) NewAccumulator(indicators [][]bool) (*Accumulator, error) {
	if c.eval == nil || c.cpk == nil {
		return nil, fmt.Errorf("%w: aggregate the public and Galois keys first", ErrWrongState)
	}
	n := c.params.Parties()
	if len(indicators) != n {
		return nil, fmt.Errorf("%w: %d indicators, want one per party (%d)", ErrInvalidArgument, len(indicators), n)
	}
	a := &Accumulator{c: c, indicators: make([][]bool, n), counts: make([]int, n), seen: make([][]bool, n),
		left: make([]int, n), part: make([]*rlwe.Ciphertext, n), dropped: make([]bool, n)}
	for i, ind := range indicators {
		if len(ind) > c.params.MaxRecords() {
			return nil, fmt.Errorf("%w: indicator of party %d has %d positions, more than max_records = %d", ErrInvalidArgument, i, len(ind), c.params.MaxRecords())
		}
		a.indicators[i] = append([]bool(nil), ind...)
		a.counts[i] = c.params.CiphertextCount(len(ind))
		a.seen[i] = make([]bool, a.counts[i])
		a.left[i] = a.counts[i]
	}
	bp := c.params.bgv
	a.acc = c.params.newCiphertext(bp.MaxLevel(), bp.DefaultScale())
	a.eval = c.eval.ShallowCopy()
	a.ecd = bgv.NewEncoder(bp)
	a.pt = bgv.NewPlaintext(bp, bp.MaxLevel())
	a.pt.IsBatched = false
	a.vals = make([]uint64, bp.N())
	return a, nil
}

// Add multiplies one contribution ciphertext by its party's 0/1 indicator
// plaintext Σ_s ind_s X^s (coefficients 0/1, so the noise grows only
// additively) and adds it to the party's partial sum; once every ciphertext
// of the party is in, the partial sum joins the aggregate (see
// [Accumulator.Drop]). It rejects a message from another session, a chunk
// count that disagrees with the party's indicator, a chunk already added and
// a party that was dropped.
func (a *Accumulator) Add(m *CiphertextMsg) error {
	if a.done {
		return fmt.Errorf("%w: accumulator already finalized", ErrWrongState)
	}
	if m == nil {
		return fmt.Errorf("%w: nil message", ErrInvalidArgument)
	}
	pr := a.c.params
	ps, err := ctRows(m.Ct, pr.bgv.MaxLevel(), pr)
	if err != nil {
		return &PeerError{Party: m.From, Round: "contribute", Err: err}
	}
	if err := pr.checkMsg(m.params, m.Session, a.c.session, ps); err != nil {
		return &PeerError{Party: m.From, Round: "contribute", Err: err}
	}
	i := int(m.From)
	if i >= pr.Parties() {
		return &PeerError{Party: m.From, Round: "contribute", Err: fmt.Errorf("%w: sender out of range", ErrMalformedMessage)}
	}
	if int(m.Count) != a.counts[i] || m.Index >= m.Count {
		return &PeerError{Party: m.From, Round: "contribute", Err: fmt.Errorf("%w: ciphertext %d of %d, want %d ciphertexts", ErrMalformedMessage, m.Index, m.Count, a.counts[i])}
	}
	if a.seen[i][m.Index] {
		return &PeerError{Party: m.From, Round: "contribute", Err: fmt.Errorf("%w: ciphertext %d", ErrDuplicateSender, m.Index)}
	}
	if a.dropped[i] {
		return &PeerError{Party: m.From, Round: "contribute", Err: fmt.Errorf("%w: party was left out", ErrWrongState)}
	}

	// Use the agreed metadata, whatever the message carries.
	ct := pr.newCiphertext(pr.bgv.MaxLevel(), pr.bgv.DefaultScale())
	ct.Value[0], ct.Value[1] = m.Ct.Value[0], m.Ct.Value[1]

	B := pr.b
	ind := a.indicators[i]
	clear(a.vals)
	for s := 0; s < B; s++ {
		pos := int(m.Index)*B + s
		if pos >= len(ind) {
			break
		}
		if ind[pos] {
			a.vals[s] = 1
		}
	}
	if err := a.ecd.Encode(a.vals, a.pt); err != nil {
		return fmt.Errorf("mhe: encode indicator: %v", err)
	}
	if a.part[i] == nil {
		a.part[i] = pr.newCiphertext(pr.bgv.MaxLevel(), pr.bgv.DefaultScale())
	}
	if err := a.eval.MulThenAdd(ct, a.pt, a.part[i]); err != nil {
		return fmt.Errorf("mhe: evaluate: %v", err)
	}
	a.seen[i][m.Index] = true
	a.left[i]--
	if a.left[i] == 0 {
		if err := a.eval.Add(a.acc, a.part[i], a.acc); err != nil {
			return fmt.Errorf("mhe: evaluate: %v", err)
		}
		a.part[i] = nil
	}
	return nil
}

// Complete reports whether every ciphertext of party i has been added: its
// contributions count in the aggregate from then on.
func (a *Accumulator) Complete(i PartyID) bool {
	return int(i) < len(a.left) && !a.dropped[i] && a.left[i] == 0
}

// Drop leaves party i out of the aggregate: the ciphertexts it has sent so
// far are discarded (they were kept apart from the others' until the party
// was complete) and [Accumulator.Finalize] no longer waits for it. A party
// that is already complete cannot be dropped (its contributions count).
// This is the dropout rule "leave out" of a threshold session: the party
// vanished before sending all its ciphertexts.
func (a *Accumulator) Drop(i PartyID) error {
	if a.done {
		return fmt.Errorf("%w: accumulator already finalized", ErrWrongState)
	}
	if int(i) >= len(a.left) {
		return fmt.Errorf("%w: party %d out of range", ErrInvalidArgument, i)
	}
	if a.left[i] == 0 && !a.dropped[i] {
		return fmt.Errorf("%w: party %d is complete; its contributions count", ErrWrongState, i)
	}
	a.dropped[i], a.part[i] = true, nil
	return nil
}

// Finalize checks that every ciphertext of every party was added, keeps only
// the L aggregate coefficients with Trace (every other coefficient becomes
// 0), in profiles with Rescale drops the top prime, and re-randomises the
// result with a fresh encryption of zero under the collective key, so that
// its c1 (sent to the parties for PCKS) is pseudorandom to them. The
// accumulator cannot be used afterwards.
func (a *Accumulator) Finalize() (*Aggregate, error) {
	if a.done {
		return nil, fmt.Errorf("%w: accumulator already finalized", ErrWrongState)
	}
	for i, s := range a.seen {
		if a.dropped[i] {
			continue
		}
		for k, ok := range s {
			if !ok {
				return nil, &PeerError{Party: PartyID(i), Round: "contribute", Err: fmt.Errorf("%w: ciphertext %d of %d not received", ErrMissingParty, k, len(s))}
			}
		}
	}
	a.done = true
	pr := a.c.params
	if err := a.eval.Trace(a.acc, pr.traceLogN, a.acc); err != nil {
		return nil, fmt.Errorf("mhe: trace: %v", err)
	}
	if pr.lit.Rescale {
		if err := a.eval.Rescale(a.acc, a.acc); err != nil {
			return nil, fmt.Errorf("mhe: rescale: %v", err)
		}
	}
	if a.acc.Level() != pr.resultLevel || a.acc.Scale.Cmp(pr.resultScale) != 0 {
		return nil, fmt.Errorf("mhe: internal error: aggregate at level %d with an unexpected scale", a.acc.Level())
	}
	// Re-randomise: add a fresh encryption of zero under the collective key.
	// Without it, c1 of the aggregate is a public function of the parties'
	// own c1s and the indicators (for example 0 when I is empty), and the
	// PCKS request would tell the parties about I.
	zero := pr.newCiphertext(pr.resultLevel, pr.resultScale)
	if err := rlwe.NewEncryptor(pr.bgv, a.c.cpk).EncryptZero(zero); err != nil {
		return nil, fmt.Errorf("mhe: re-randomise: %v", err)
	}
	if err := a.eval.Add(a.acc, zero, a.acc); err != nil {
		return nil, fmt.Errorf("mhe: re-randomise: %v", err)
	}
	return &Aggregate{params: pr, session: a.c.session, ct: a.acc}, nil
}

// Evaluate is NewAccumulator, Add for every message and Finalize: it
// multiplies each party's ciphertexts by that party's indicator, sums across
// ciphertexts and parties, and keeps the aggregate coefficients with Trace.
func (c *Coordinator) Evaluate(cts []*CiphertextMsg, indicators [][]bool) (*Aggregate, error) {
	a, err := c.NewAccumulator(indicators)
	if err != nil {
		return nil, err
	}
	for _, m := range cts {
		if err := a.Add(m); err != nil {
			return nil, err
		}
	}
	return a.Finalize()
}

// Aggregate is the evaluated aggregate held by the coordinator, encrypted
// under the collective key. It is not safe for concurrent use.
type Aggregate struct {
	params  *Params
	session SessionID
	ct      *rlwe.Ciphertext
}

// PCKSRequest returns the request for the t parties in active (strictly
// increasing ids) to switch the aggregate to the recipient's key. It holds
// only c1. If an active party drops out, call it again with another set.
func (g *Aggregate) PCKSRequest(active []PartyID) (*PCKSRequestMsg, error) {
	if err := g.params.checkActive(active); err != nil {
		return nil, err
	}
	m := g.params.NewPCKSRequestMsg()
	m.Session = g.session
	m.Active = append([]PartyID(nil), active...)
	m.C1.Copy(g.ct.Value[1])
	return m, nil
}

// KeySwitch checks that shares holds exactly one PCKS share from every party
// of active (the set of the request they answered), sums them and returns the
// aggregate under the recipient's key.
func (g *Aggregate) KeySwitch(active []PartyID, shares []*PCKSShareMsg) (*ResultMsg, error) {
	pr := g.params
	if err := pr.checkActive(active); err != nil {
		return nil, err
	}
	if len(shares) != len(active) {
		return nil, fmt.Errorf("mhe: pcks: %w: %d shares, want %d", ErrMissingParty, len(shares), len(active))
	}
	want := make(map[PartyID]bool, len(active))
	for _, a := range active {
		want[a] = true
	}
	for i, m := range shares {
		if m == nil {
			return nil, &PeerError{Party: PartyID(i), Round: "pcks", Err: fmt.Errorf("%w: nil message", ErrMalformedMessage)}
		}
		ps, err := m.layout()
		if err != nil {
			return nil, &PeerError{Party: m.From, Round: "pcks", Err: err}
		}
		if err := pr.checkMsg(m.params, m.Session, g.session, ps); err != nil {
			return nil, &PeerError{Party: m.From, Round: "pcks", Err: err}
		}
		if !want[m.From] {
			return nil, &PeerError{Party: m.From, Round: "pcks", Err: fmt.Errorf("%w: share from a party outside the active set or duplicated", ErrDuplicateSender)}
		}
		delete(want, m.From)
	}
	pcks, err := lmhe.NewPublicKeySwitchProtocol(pr.bgv, pr.smudging)
	if err != nil {
		return nil, fmt.Errorf("mhe: pcks: %v", err)
	}
	agg := pcks.AllocateShare(pr.resultLevel)
	if err := pcks.AggregateShares(shares[0].Share, shares[1].Share, &agg); err != nil {
		return nil, fmt.Errorf("mhe: pcks: %v", err)
	}
	for _, m := range shares[2:] {
		if err := pcks.AggregateShares(agg, m.Share, &agg); err != nil {
			return nil, fmt.Errorf("mhe: pcks: %v", err)
		}
	}
	out := pr.NewResultMsg()
	out.Session = g.session
	pcks.KeySwitch(g.ct, agg, out.Ct)
	return out, nil
}
