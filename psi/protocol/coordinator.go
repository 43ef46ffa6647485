package protocol

import (
	"context"
	"crypto"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/mpsi-dev/mpsi/internal/envelope"
	"github.com/mpsi-dev/mpsi/psi/join"
	"github.com/mpsi-dev/mpsi/psi/session"
	"github.com/mpsi-dev/mpsi/sharing"
	"github.com/mpsi-dev/mpsi/sharing/mhe"
)

// CoordinatorConfig configures a [Coordinator]. Signer and Name are
// required.
type CoordinatorConfig struct {
	// Signer signs the tally and the released Result (the coordinator's
	// certificate key).
	Signer crypto.Signer
	// Name is the coordinator's certificate name; a spec that lists it as a
	// party is refused (the parties refuse it too).
	Name string
	// MaxBatch bounds the elements of one Batch; zero means
	// DefaultMaxBatch.
	MaxBatch int
	// Workers bounds the goroutines of the join; zero means GOMAXPROCS.
	Workers int
	// JoinBudget, if positive, bounds the memory of the join in bytes: the
	// tokens go to spill files in SpillDir as they arrive ([join.Spiller]).
	JoinBudget int64
	// SpillDir is where spill files are made; empty means os.TempDir().
	SpillDir string
}

// Coordinator is the coordinator's side of one session as a state machine
// without I/O: the driver reports parties attaching ([Coordinator.Attach]),
// their messages ([Coordinator.Receive]), their streams ending
// ([Coordinator.Gone]) and deadlines ([Coordinator.Expire]), and carries
// out the [Event]s it then drains with [Coordinator.Events]: messages to
// send, rounds entered, audit facts, the release or the abort. Every
// round-order decision and the dropout policy live here; the gRPC server
// and the in-process runner only carry messages.
//
// It sees what the coordinator may see (set sizes, token lists, the
// intersection and pairwise counts, masked shares or ciphertexts, the
// released totals) and never an identifier, a group key, a seed or a
// secret-key share. It is not safe for concurrent use.
type Coordinator struct {
	spec *session.Spec
	cfg  CoordinatorConfig
	eng  *Engine
	n    int

	round    Round
	events   []Event
	attached []bool
	certs    [][]byte
	ready    []*Ready
	rostered bool
	envSeen  map[[3]uint32]bool
	streams  map[[3]uint32]*listState // (owner, hop done, match key) -> progress
	tokBuf   []join.Token
	keys     int    // match keys: each party has one list per key
	tokDone  []bool // by list: owner·keys + key
	dealt    bool   // token round over: masks dealt, or (encrypted) joined
	enc      *coordEnc
	obl      *coordObl
}

// listState tracks one streamed list.
type listState struct {
	next  uint64
	total uint64
}

// NewCoordinator starts a session for a validated spec, in [RoundSetup].
func NewCoordinator(spec *session.Spec, cfg CoordinatorConfig) (*Coordinator, error) {
	if cfg.Signer == nil || cfg.Name == "" {
		return nil, errors.New("protocol: CoordinatorConfig.Signer and Name are required")
	}
	if spec.PartyIndex(cfg.Name) >= 0 {
		return nil, fmt.Errorf("%w: parties: the coordinator %q cannot be a party of its own session", session.ErrInvalidSpec, cfg.Name)
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxBatch > MaxBatchLimit {
		return nil, fmt.Errorf("protocol: batch limit %d over %d", cfg.MaxBatch, MaxBatchLimit)
	}
	eng, err := NewEngine(spec)
	if err != nil {
		return nil, err
	}
	n := len(spec.Parties)
	return &Coordinator{spec: spec, cfg: cfg, eng: eng, n: n,
		attached: make([]bool, n), certs: make([][]byte, n), ready: make([]*Ready, n),
		envSeen: map[[3]uint32]bool{}, streams: map[[3]uint32]*listState{}, keys: eng.Keys(), tokDone: make([]bool, n*eng.Keys())}, nil
}

// Spec returns the session's spec.
func (c *Coordinator) Spec() *session.Spec { return c.spec }

// Round returns the current round.
func (c *Coordinator) Round() Round { return c.round }

// Over reports whether the session is released or aborted.
func (c *Coordinator) Over() bool { return c.round == RoundReleased || c.round == RoundAborted }

// Events returns the events since the last call, in order, and forgets
// them.
func (c *Coordinator) Events() []Event {
	ev := c.events
	c.events = nil
	return ev
}

// Close releases the session's resources (spill files). Call it once the
// session is over.
func (c *Coordinator) Close() error { return c.eng.Close() }

func (c *Coordinator) emit(e Event) { c.events = append(c.events, e) }

func (c *Coordinator) header() Header { return Header{Session: c.spec.ID, From: FromCoordinator} }

func (c *Coordinator) send(to int, m Message) { c.emit(Send{To: to, Msg: m}) }

func (c *Coordinator) broadcast(m Message) {
	for i := range c.n {
		if c.attached[i] && (c.enc == nil || !c.enc.gone[i]) {
			c.send(i, m)
		}
	}
}

func (c *Coordinator) setRound(r Round) {
	c.round = r
	c.emit(RoundEntered{Round: r})
}

// Attach reports that party i connected, authenticated by the transport
// with certificate cert (DER), which the roster will carry. The machine
// answers with the Welcome.
func (c *Coordinator) Attach(i int, cert []byte) error {
	if c.Over() {
		return fmt.Errorf("%w: session %s", ErrSessionOver, c.spec.ID)
	}
	if i < 0 || i >= c.n {
		return fmt.Errorf("%w: no party %d", ErrBadMessage, i)
	}
	if c.attached[i] {
		return fmt.Errorf("%w: party %s is already connected", ErrWrongRound, c.spec.Parties[i])
	}
	if len(cert) == 0 || len(cert) > MaxCertificateSize {
		return fmt.Errorf("%w: certificate of %d bytes", ErrBadMessage, len(cert))
	}
	c.attached[i], c.certs[i] = true, cert
	c.send(i, &Welcome{Header: c.header(), Spec: c.spec.Canonical(), Index: uint32(i), MaxBatch: uint32(c.cfg.MaxBatch)})
	return nil
}

// Receive takes message m from party i (the transport has authenticated
// the stream as party i's). A message that fails a check aborts the
// session, naming the party and the check; the error is returned too.
func (c *Coordinator) Receive(ctx context.Context, i int, m Message) error {
	if c.Over() {
		return fmt.Errorf("%w: session %s", ErrSessionOver, c.spec.ID)
	}
	if i < 0 || i >= c.n || !c.attached[i] {
		return fmt.Errorf("%w: message from unattached party %d", ErrBadMessage, i)
	}
	if a, ok := m.(*Abort); ok && a.Session == c.spec.ID && a.From == Sender(i) {
		// The party ended the session: its code and reason go to everyone.
		code := a.Code
		if code == CodeUnspecified {
			code = CodePartyAborted
		}
		c.abort(code, fmt.Sprintf("party %s aborted: %s", c.spec.Parties[i], truncate(a.Reason, 200)))
		return &AbortError{Code: code, Reason: a.Reason}
	}
	err := c.receive(ctx, i, m)
	if err != nil && !c.Over() {
		code := CodeOf(err)
		if code == CodeInternal || code == CodeShutdown {
			// Not the party's fault: the coordinator failed (its disk, its
			// spill files, a shutdown) while handling the party's message.
			c.abort(code, fmt.Sprintf("coordinator failed handling party %s's message: %v", c.spec.Parties[i], err))
		} else {
			c.abort(code, fmt.Sprintf("party %s: %v", c.spec.Parties[i], err))
		}
	}
	return err
}

func (c *Coordinator) receive(ctx context.Context, i int, m Message) error {
	if m == nil {
		return fmt.Errorf("%w: empty message", ErrBadMessage)
	}
	h := m.Head()
	if h.Session != c.spec.ID {
		return fmt.Errorf("%w: %s names session %q", ErrBadMessage, m.Type(), truncate(h.Session, 64))
	}
	if h.From != Sender(i) {
		return fmt.Errorf("%w: %s on party %d's stream names sender %s", ErrBadMessage, m.Type(), i, h.From)
	}
	if c.enc != nil && c.enc.gone[i] {
		return nil // a party declared gone: its late messages are dropped
	}
	switch x := m.(type) {
	case *Ready:
		return c.onReady(ctx, i, x)
	case *Envelope:
		return c.onEnvelope(ctx, i, x)
	case *Batch:
		if x.Kind == BatchUpload {
			return c.onUpload(i, x)
		}
		return c.onBatch(ctx, i, x)
	case *Attestation:
		return c.onAttestation(i, x)
	case *Share:
		return c.onShare(i, x)
	case *MheChunk:
		return c.onMhe(ctx, i, x)
	case *Hello:
		return fmt.Errorf("%w: Hello sent twice", ErrWrongRound)
	default:
		return fmt.Errorf("%w: %s is not sent by parties", ErrBadMessage, m.Type())
	}
}

// Refuse reports a frame from party i that the transport could not decode
// (err wraps [ErrMalformed]): the session aborts, naming the party and the
// check.
func (c *Coordinator) Refuse(i int, err error) {
	if c.Over() || i < 0 || i >= c.n {
		return
	}
	c.abort(CodeOf(err), fmt.Sprintf("party %s: undecodable message: %v", c.spec.Parties[i], err))
}

// Gone reports that party i's stream ended (reason says how). Before the
// encrypted aggregation's public key, and in every session without a
// threshold below n, that aborts the session; afterwards the dropout rule
// decides.
func (c *Coordinator) Gone(ctx context.Context, i int, reason string) {
	if c.Over() || i < 0 || i >= c.n {
		return
	}
	reason = fmt.Sprintf("party %s %s", c.spec.Parties[i], reason)
	if c.enc == nil || !c.enc.pkSent || c.spec.Threshold >= c.n {
		c.abort(CodeDisconnected, reason)
		return
	}
	if code, why := c.goneEncrypted(ctx, i, reason); why != "" {
		c.abort(code, why)
	}
}

// Expire reports that the session made no progress within the driver's
// deadline: it aborts, naming the round and whom it waits for.
func (c *Coordinator) Expire(what string) {
	if c.Over() {
		return
	}
	c.abort(CodeTimeout, fmt.Sprintf("deadline exceeded in round %s after %s (waiting for %v)", c.round, what, c.WaitingFor()))
}

// Abort ends the session for a reason of the driver's (shutdown, a store
// failure). It is a no-op once the session is over, except that a Result
// released but not yet stored may still be aborted (the driver failed to
// store it).
func (c *Coordinator) Abort(code Code, reason string) {
	if c.round == RoundAborted {
		return
	}
	c.abort(code, reason)
}

func (c *Coordinator) abort(code Code, reason string) {
	at := c.round
	c.round = RoundAborted
	c.emit(Aborted{Code: code, Reason: reason, Round: at})
	for i := range c.n {
		if c.attached[i] {
			c.send(i, &Abort{Header: c.header(), Code: code, Reason: truncate(reason, MaxReasonSize-4)})
		}
	}
}

// WaitingFor names the parties the current round waits for.
func (c *Coordinator) WaitingFor() []string {
	var w []string
	for i, p := range c.spec.Parties {
		owes := false
		switch c.round {
		case RoundSetup:
			owes = c.ready[i] == nil
		case RoundTokens:
			owes = c.owesTokens(i)
		case RoundShares:
			owes = c.eng.shares[i] == nil
		case RoundKeys:
			owes = c.enc.ckg[i] == nil || c.enc.gkg[i] == nil || c.owesEnvelopes(i, EnvelopeThresholdShare)
		case RoundCiphertexts:
			owes = c.enc.cts[i] < c.enc.want[i] && !c.enc.gone[i]
		case RoundKeySwitch:
			owes = slices.Contains(c.enc.active, i) && c.enc.shares[i] == nil
		case RoundUploads:
			o := c.obl
			owes = o.next[i] < uint64(c.eng.Size(i)) || o.att[i] == nil || o.U[i] == nil
		}
		if owes {
			w = append(w, p)
		}
	}
	return w
}

// owesTokens reports whether party i has not yet sent something the token
// round is waiting for: its envelopes to every other party, or the next hop
// of a list (dh) or its own token list (keyed).
func (c *Coordinator) owesTokens(i int) bool {
	keyed := c.spec.GroupKeyed()
	if c.enc == nil && c.needsSeeds() && c.owesEnvelopes(i, EnvelopeMaskSeed) {
		return true
	}
	if !keyed && !c.envSeen[[3]uint32{uint32(EnvelopeRingKey), uint32(i), uint32((i + 1) % c.n)}] {
		return true
	}
	if keyed && c.owesEnvelopes(i, EnvelopeKeyContribution) {
		return true
	}
	hops := c.n
	if keyed {
		hops = 1
	}
	for list := range c.tokDone {
		if c.tokDone[list] {
			continue
		}
		owner, key := list/c.keys, list%c.keys
		for hop := range hops {
			st := c.streams[[3]uint32{uint32(owner), uint32(hop), uint32(key)}]
			if st == nil || st.next < st.total {
				if RingTarget(c.n, owner, hop) == i {
					return true
				}
				break
			}
		}
	}
	return false
}

// owesEnvelopes reports whether party i has not yet sent its envelope of
// round r to every other party (only rounds the session uses).
func (c *Coordinator) owesEnvelopes(i int, r EnvelopeRound) bool {
	if r == EnvelopeThresholdShare && (c.enc == nil || !c.enc.x.Params().IsThreshold()) {
		return false
	}
	for to := range c.n {
		if to != i && !c.envSeen[[3]uint32{uint32(r), uint32(i), uint32(to)}] {
			return true
		}
	}
	return false
}

func (c *Coordinator) onReady(ctx context.Context, i int, r *Ready) error {
	if c.ready[i] != nil || c.rostered {
		return fmt.Errorf("%w: Ready sent twice", ErrWrongRound)
	}
	if r.SetSize > uint64(c.spec.MaxSetSize) {
		return fmt.Errorf("%w: set size %d exceeds max_set_size %d", ErrBadMessage, r.SetSize, c.spec.MaxSetSize)
	}
	if err := c.eng.Declare(i, int(r.SetSize)); err != nil {
		return err
	}
	c.ready[i] = r
	c.emit(Audit{Kind: "party.ready", Party: c.spec.Parties[i], Detail: fmt.Sprintf("set_size=%d normalization=%q", r.SetSize, r.Normalization)})
	for _, x := range c.ready {
		if x == nil {
			return nil
		}
	}
	for j, x := range c.ready {
		if x.Normalization != c.ready[0].Normalization {
			return fmt.Errorf("%w: parties normalise identifiers differently (%s: %q, %s: %q); equal identifiers could fail to match — upgrade to the same mpsi version",
				ErrBadMessage, c.spec.Parties[0], c.ready[0].Normalization, c.spec.Parties[j], x.Normalization)
		}
	}
	roster := &Roster{Header: c.header()}
	for j, x := range c.ready {
		roster.Entries = append(roster.Entries, RosterEntry{Name: c.spec.Parties[j], SetSize: x.SetSize,
			HPKEKey: x.HPKEKey, Signature: x.Signature, Certificate: c.certs[j]})
	}
	c.rostered = true
	if c.cfg.JoinBudget > 0 && c.keys > 1 {
		c.emit(Info{Msg: fmt.Sprintf("%d match keys: the join is in memory (the join budget applies to one key)", c.keys)})
	} else if c.cfg.JoinBudget > 0 {
		if err := c.eng.Spill(join.SpillOptions{Budget: c.cfg.JoinBudget, Dir: c.cfg.SpillDir, Workers: c.cfg.Workers}); err != nil {
			return err
		}
	}
	if EncryptsAggregates(c.spec) {
		if err := c.startEncrypted(); err != nil {
			return err
		}
	}
	c.broadcast(roster)
	c.setRound(RoundTokens)
	// Empty lists complete at once.
	for j := range c.tokDone {
		if c.eng.Size(j/c.keys) == 0 {
			if err := c.finishTokens(j); err != nil {
				return err
			}
		}
	}
	return c.maybeJoin(ctx)
}

// EncryptsAggregates reports whether a session runs the encrypted rounds:
// aggregation encrypted, with aggregates declared and revealed. Both
// machines decide it from the spec alone.
func EncryptsAggregates(spec *session.Spec) bool {
	return spec.Aggregation == session.AggregationEncrypted && len(spec.ContributionBounds()) > 0 && spec.Reveals(session.RevealAggregates)
}

// masked reports whether the session runs the masked aggregation rounds
// (seeds, positions, masks, shares).
func (c *Coordinator) masked() bool { return c.spec.Aggregation == session.AggregationMasked }

// needsSeeds reports whether the parties exchange pairwise mask seeds
// (masked and oblivious aggregation).
func (c *Coordinator) needsSeeds() bool { return c.spec.Aggregation != session.AggregationEncrypted }

func (c *Coordinator) onEnvelope(ctx context.Context, i int, e *Envelope) error {
	if !c.rostered {
		return fmt.Errorf("%w: envelope before the roster", ErrWrongRound)
	}
	switch e.Round {
	case EnvelopeMaskSeed:
		if !c.needsSeeds() {
			return fmt.Errorf("%w: mask seed with aggregation %s", ErrBadMessage, c.spec.Aggregation)
		}
		if len(e.Ciphertext) > envelope.MaxEnvelopeSealed {
			return fmt.Errorf("%w: envelope lengths", ErrBadMessage)
		}
	case EnvelopeThresholdShare:
		if c.enc == nil || !c.enc.x.Params().IsThreshold() || c.enc.pkSent {
			return fmt.Errorf("%w: threshold share outside a threshold session's key round", ErrBadMessage)
		}
	case EnvelopeKeyContribution:
		if !c.spec.GroupKeyed() {
			return fmt.Errorf("%w: key contribution in %s mode", ErrBadMessage, c.spec.Match.Mode)
		}
	case EnvelopeRingKey:
		if c.spec.Match.Mode != session.ModeDH || e.To != uint32((i+1)%c.n) {
			return fmt.Errorf("%w: ring key from %d to %d (only to the next party, in dh mode)", ErrBadMessage, i, e.To)
		}
	default:
		return fmt.Errorf("%w: envelope for unknown round %d", ErrBadMessage, e.Round)
	}
	if e.FromParty != uint32(i) || int(e.To) >= c.n || e.To == uint32(i) {
		return fmt.Errorf("%w: envelope from %d to %d on party %d's stream", ErrBadMessage, e.FromParty, e.To, i)
	}
	k := [3]uint32{uint32(e.Round), uint32(i), e.To}
	if c.envSeen[k] {
		return fmt.Errorf("%w: envelope replayed", ErrWrongRound)
	}
	c.envSeen[k] = true
	fwd := *e
	fwd.Header = c.header()
	c.send(int(e.To), &fwd)
	if e.Round == EnvelopeThresholdShare {
		return c.maybePublicKey()
	}
	return nil
}

func (c *Coordinator) onBatch(ctx context.Context, i int, b *Batch) error {
	if !c.rostered || c.dealt {
		return fmt.Errorf("%w: batch outside the token round", ErrWrongRound)
	}
	owner, hop := int(b.Owner), int(b.Hop)
	if owner >= c.n {
		return fmt.Errorf("%w: batch for unknown owner %d", ErrBadMessage, owner)
	}
	switch b.Kind {
	case BatchRing:
		if c.spec.Match.Mode != session.ModeDH {
			return fmt.Errorf("%w: ring batch in %s mode", ErrBadMessage, c.spec.Match.Mode)
		}
		if hop >= c.n || (hop == 0 && owner != i) || (hop > 0 && RingTarget(c.n, owner, hop) != i) {
			return fmt.Errorf("%w: ring batch (owner %d, hop %d) not for this party", ErrBadMessage, owner, hop)
		}
	case BatchTokens:
		if !c.spec.GroupKeyed() || owner != i || hop != 0 {
			return fmt.Errorf("%w: token batch not allowed here", ErrBadMessage)
		}
	default:
		return fmt.Errorf("%w: batch kind %s from a party", ErrBadMessage, b.Kind)
	}
	want := elementSize(c.spec)
	if len(b.Data)%want != 0 || len(b.Data)/want > c.cfg.MaxBatch || len(b.Data) == 0 {
		return fmt.Errorf("%w: batch of %d bytes (limit %d elements of %d bytes)", ErrBadMessage, len(b.Data), c.cfg.MaxBatch, want)
	}
	size := uint64(c.eng.Size(owner))
	if b.Total != size {
		return fmt.Errorf("%w: batch total %d, declared size %d", ErrBadMessage, b.Total, size)
	}
	mk := int(b.Key)
	if mk >= c.keys {
		return fmt.Errorf("%w: batch for match key %d, the spec has %d", ErrBadMessage, mk, c.keys)
	}
	key := [3]uint32{uint32(owner), uint32(hop), uint32(mk)}
	st := c.streams[key]
	if st == nil {
		st = &listState{total: size}
		c.streams[key] = st
	}
	cnt := uint64(len(b.Data) / want)
	if b.Offset != st.next || st.next+cnt > st.total {
		return fmt.Errorf("%w: batch at offset %d, expected %d of %d", ErrBadMessage, b.Offset, st.next, st.total)
	}
	if hop > 0 {
		if in := c.streams[[3]uint32{uint32(owner), uint32(hop - 1), uint32(mk)}]; in == nil || st.next+cnt > in.next {
			return fmt.Errorf("%w: ring batch (owner %d, hop %d) ahead of its input", ErrWrongRound, owner, hop)
		}
	}
	st.next += cnt
	final := b.Kind == BatchTokens || hop == c.n-1
	if !final {
		next := RingTarget(c.n, owner, hop+1)
		c.send(next, &Batch{Header: c.header(), Kind: BatchRing, Owner: uint32(owner), Hop: uint32(hop + 1), Key: b.Key, Offset: b.Offset, Total: size, Data: b.Data, MAC: b.MAC})
		return nil
	}
	if b.Kind == BatchRing {
		// The owner may put the next batch of its list into the ring.
		c.send(owner, &Credit{Header: c.header(), Key: b.Key, Done: st.next})
	}
	if c.spec.Match.Mode == session.ModeCLK {
		if err := c.eng.AddCLKs(owner, b.Offset, b.Data); err != nil {
			return err
		}
	} else {
		c.tokBuf = c.tokBuf[:0]
		for k := 0; k < len(b.Data); k += want {
			c.tokBuf = append(c.tokBuf, join.Token(b.Data[k:k+want]))
		}
		if err := c.eng.AddKeyTokens(mk, owner, b.Offset, c.tokBuf); err != nil {
			return err
		}
	}
	if st.next == st.total {
		if err := c.finishTokens(owner*c.keys + mk); err != nil {
			return err
		}
		return c.maybeJoin(ctx)
	}
	return nil
}

// finishTokens marks list (owner·keys + key) complete.
func (c *Coordinator) finishTokens(list int) error {
	if c.tokDone[list] {
		return nil
	}
	c.tokDone[list] = true
	owner, key := list/c.keys, list%c.keys
	if c.eng.Size(owner) == 0 {
		if c.spec.Match.Mode == session.ModeCLK {
			return c.eng.AddCLKs(owner, 0, nil)
		}
		return c.eng.AddKeyTokens(key, owner, 0, nil) // completes the empty list
	}
	return nil
}

// maybeJoin joins once every list is in, then deals positions and masks
// (masked aggregation) or moves to the keys (encrypted), or releases at
// once (aggregation encrypted with nothing to encrypt).
func (c *Coordinator) maybeJoin(ctx context.Context) error {
	if !c.rostered || slices.Contains(c.tokDone, false) {
		return nil
	}
	c.setRound(RoundJoin)
	jr, err := c.eng.Join(ctx, c.cfg.Workers)
	if err != nil {
		return err
	}
	c.emit(Info{Msg: "intersection computed"})
	c.dealt = true
	if err := c.sendTally(jr); err != nil {
		return err
	}
	if c.spec.Aggregation == session.AggregationOblivious {
		if !c.eng.AggregatesReleased() {
			// Nothing derived from the sum is released: nothing is
			// uploaded or unmasked (the parties decide the same from the
			// signed tally).
			return c.releaseDecrypted(make([]uint64, c.eng.Layout().Len()))
		}
		return c.startOblivious()
	}
	if !c.masked() {
		if c.enc == nil {
			// Nothing to encrypt: release the counts, as the in-process
			// runner always did.
			return c.releaseDecrypted(make([]uint64, c.eng.Layout().Len()))
		}
		c.setRound(RoundKeys)
		return c.maybePublicKey()
	}
	masks, err := c.eng.Masks()
	if err != nil {
		return err
	}
	for i := range c.n {
		pos := jr.Positions[i]
		for off := 0; off < len(pos); off += c.cfg.MaxBatch {
			end := min(off+c.cfg.MaxBatch, len(pos))
			data := make([]byte, 0, 4*(end-off))
			for _, p := range pos[off:end] {
				data = binary.LittleEndian.AppendUint32(data, p)
			}
			c.send(i, &Batch{Header: c.header(), Kind: BatchPositions, Owner: uint32(i), Offset: uint64(off), Total: uint64(len(pos)), Data: data})
		}
		mb, err := masks[i].MarshalBinary()
		if err != nil {
			return err
		}
		c.send(i, &MaskDeal{Header: c.header(), Mask: mb})
	}
	c.setRound(RoundShares)
	return nil
}

// sendTally signs and broadcasts the join's counts before any aggregation
// step: |I| and, when revealed, the pairwise matrix.
func (c *Coordinator) sendTally(jr *join.Result) error {
	t := &Tally{Header: c.header(), Intersection: uint64(jr.Intersection)}
	if c.spec.Reveals(session.RevealPairwise) {
		for i := range c.n {
			for j := range c.n {
				t.Pairwise = append(t.Pairwise, uint64(jr.Pairwise[i][j]))
			}
		}
	}
	sig, err := envelope.SignTally(c.cfg.Signer, c.spec.ID, tallyBytes(t.Intersection, t.Pairwise))
	if err != nil {
		return err
	}
	t.Signature = sig
	c.broadcast(t)
	return nil
}

func (c *Coordinator) onShare(i int, sh *Share) error {
	if c.obl != nil {
		return c.onUnmask(i, sh)
	}
	if !c.dealt || !c.masked() {
		return fmt.Errorf("%w: share before masks were dealt, or with aggregation encrypted", ErrWrongRound)
	}
	z, err := sharing.UnmarshalVector(sh.Vector, c.eng.Layout().Len())
	if err != nil {
		return fmt.Errorf("%w: share: %w", ErrBadMessage, err)
	}
	if err := c.eng.AddShare(i, z); err != nil {
		return err
	}
	if slices.ContainsFunc(c.eng.shares, func(s sharing.Vector) bool { return s == nil }) {
		return nil
	}
	res, err := c.eng.Release()
	if err != nil {
		return err
	}
	return c.publish(res)
}

// publish signs the released Result and sends it to every party.
func (c *Coordinator) publish(res *session.Result) error {
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	sig, err := envelope.SignResult(c.cfg.Signer, c.spec.ID, b)
	if err != nil {
		return err
	}
	c.round = RoundReleased
	c.emit(Released{Result: res, JSON: b, Signature: sig})
	c.emit(RoundEntered{Round: RoundReleased})
	c.broadcast(&Result{Header: c.header(), JSON: b, Signature: sig})
	return nil
}

// coordEnc is the coordinator's aggregation-encrypted state (see
// doc/PROTOCOL.md): after the roster every party sends its key shares
// (and, with t < n, Shamir shares sealed to every other party, relayed
// unopened); once the keys are complete and the join is done the
// collective public key goes out; ciphertexts are weighted by each party's
// 0/1 indicator as they arrive; once all are in (or their senders left out)
// t live parties switch the total to the release key, which the coordinator
// holds; it decrypts the L totals and releases them exactly as in masked
// mode.
type coordEnc struct {
	x     *Encrypted
	sizes Sizes
	asm   []*Assembler

	ckg    []*mhe.CKGShareMsg
	gkg    []*mhe.GaloisSharesMsg
	pkSent bool
	cts    []uint32 // ciphertexts received per party
	want   []uint32 // ciphertexts expected per party

	gone    []bool
	leftOut []int

	recipient *mhe.Recipient
	rk        []byte
	attempt   uint32 // number of the current key-switch request, from 1
	active    []int
	shares    map[int]*mhe.PCKSShareMsg
}

// startEncrypted sets up the encrypted rounds once every set size is
// declared (the sizes fix the parameters).
func (c *Coordinator) startEncrypted() error {
	x, err := c.eng.StartEncrypted()
	if err != nil {
		return err
	}
	sizes, err := SizesOf(x.Params())
	if err != nil {
		return err
	}
	es := &coordEnc{x: x, sizes: sizes, asm: make([]*Assembler, c.n),
		ckg: make([]*mhe.CKGShareMsg, c.n), gkg: make([]*mhe.GaloisSharesMsg, c.n),
		cts: make([]uint32, c.n), want: make([]uint32, c.n), gone: make([]bool, c.n)}
	for i := range es.asm {
		es.want[i] = uint32(x.Params().CiphertextCount(c.eng.Size(i) + c.spec.NoiseRows()))
		es.asm[i] = NewAssembler(sizes, func(k MheKind, idx uint32) error { return c.acceptMhe(i, k, idx) })
	}
	c.enc = es
	c.emit(Info{Msg: "encrypted aggregation", Args: []any{"N", x.Params().N(), "threshold", x.Params().Threshold(),
		"ciphertext_bytes", sizes[MheCiphertext], "galois_bytes", sizes[MheGaloisShares]}})
	return nil
}

// acceptMhe says whether party i may start sending a message of kind k and
// index idx now.
func (c *Coordinator) acceptMhe(i int, k MheKind, idx uint32) error {
	es := c.enc
	switch k {
	case MheCKGShare:
		if es.ckg[i] != nil || es.pkSent || idx != 0 {
			return errors.New("public-key share not expected")
		}
	case MheGaloisShares:
		if es.gkg[i] != nil || es.pkSent || idx != 0 {
			return errors.New("Galois-key shares not expected")
		}
	case MheCiphertext:
		if !es.pkSent || idx != es.cts[i] || idx >= es.want[i] {
			return fmt.Errorf("ciphertext %d not expected (public key sent: %v, %d of %d received)", idx, es.pkSent, es.cts[i], es.want[i])
		}
	case MhePCKSShare:
		if idx >= 1 && idx < es.attempt {
			return nil // answers an earlier request, sent before the new one arrived: dropped
		}
		if es.attempt == 0 || idx != es.attempt || !slices.Contains(es.active, i) || es.shares[i] != nil {
			return fmt.Errorf("key-switch share for request %d not expected", idx)
		}
	default:
		return fmt.Errorf("%s is not sent by parties", k)
	}
	return nil
}

// onMhe takes one chunk of an encrypted-aggregation message from party i.
func (c *Coordinator) onMhe(ctx context.Context, i int, ch *MheChunk) error {
	es := c.enc
	if es == nil {
		return fmt.Errorf("%w: encrypted-aggregation message in a session without encrypted rounds (or before the roster)", ErrBadMessage)
	}
	b, done, err := es.asm[i].Add(ch)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	if !done {
		return nil
	}
	p := es.x.Params()
	check := func(what string, from mhe.PartyID, err error) error {
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrBadMessage, what, err)
		}
		if int(from) != i {
			return fmt.Errorf("%w: %s names party %d as its sender", ErrBadMessage, what, from)
		}
		return nil
	}
	switch ch.Kind {
	case MheCKGShare:
		m := p.NewCKGShareMsg()
		if err := check("public-key share", m.From, m.UnmarshalBinary(b)); err != nil {
			return err
		}
		es.ckg[i] = m
		return c.maybePublicKey()
	case MheGaloisShares:
		m := p.NewGaloisSharesMsg()
		if err := check("Galois-key shares", m.From, m.UnmarshalBinary(b)); err != nil {
			return err
		}
		es.gkg[i] = m
		return c.maybePublicKey()
	case MheCiphertext:
		m := p.NewCiphertextMsg()
		if err := check("ciphertext", m.From, m.UnmarshalBinary(b)); err != nil {
			return err
		}
		if m.Index != ch.Index {
			return fmt.Errorf("%w: ciphertext %d sent as number %d", ErrBadMessage, m.Index, ch.Index)
		}
		if err := es.x.AddCiphertext(i, m); err != nil {
			return fmt.Errorf("%w: %w", ErrBadMessage, err)
		}
		es.cts[i]++
		if es.cts[i] == es.want[i] {
			c.emit(Audit{Kind: "party.ciphertexts", Party: c.spec.Parties[i], Detail: fmt.Sprintf("ciphertexts=%d", es.cts[i])})
		}
		return c.maybeKeySwitch()
	case MhePCKSShare:
		if ch.Index != es.attempt {
			return nil // an earlier request's share (see acceptMhe)
		}
		m := p.NewPCKSShareMsg()
		if err := check("key-switch share", m.From, m.UnmarshalBinary(b)); err != nil {
			return err
		}
		if es.shares == nil {
			es.shares = map[int]*mhe.PCKSShareMsg{}
		}
		es.shares[i] = m
		if len(es.shares) < len(es.active) {
			return nil
		}
		shares := make([]*mhe.PCKSShareMsg, 0, len(es.active))
		for _, a := range es.active {
			shares = append(shares, es.shares[a])
		}
		res, err := es.x.KeySwitch(shares)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadMessage, err)
		}
		sum, err := es.recipient.Decrypt(res)
		if err != nil {
			return fmt.Errorf("decrypting the aggregate: %w", err)
		}
		return c.releaseDecrypted(sum)
	}
	return fmt.Errorf("%w: %s", ErrBadMessage, ch.Kind)
}

// maybePublicKey makes the collective keys and sends the public key once
// every party's key material is in and the intersection is computed.
func (c *Coordinator) maybePublicKey() error {
	es := c.enc
	if es.pkSent || c.eng.join == nil {
		return nil
	}
	for from := range c.n {
		if c.owesEnvelopes(from, EnvelopeThresholdShare) {
			return nil
		}
	}
	for i := range es.ckg {
		if es.ckg[i] == nil || es.gkg[i] == nil {
			return nil
		}
	}
	pk, err := es.x.AggregateKeys(es.ckg, es.gkg)
	if err != nil {
		return err
	}
	es.ckg, es.gkg = nil, nil
	b, err := pk.MarshalBinary()
	if err != nil {
		return err
	}
	for _, ch := range Split(c.header(), MhePublicKey, 0, b) {
		c.broadcast(ch)
	}
	es.pkSent = true
	c.setRound(RoundCiphertexts)
	return c.maybeKeySwitch()
}

// maybeKeySwitch starts the key switch once every party's ciphertexts are
// in or the party is left out; when no aggregate is released it releases
// at once without decrypting anything.
func (c *Coordinator) maybeKeySwitch() error {
	es := c.enc
	if !es.pkSent || es.attempt > 0 {
		return nil
	}
	for i := range es.cts {
		if es.cts[i] < es.want[i] && !slices.Contains(es.leftOut, i) {
			return nil
		}
	}
	if !c.eng.AggregatesReleased() {
		return c.releaseDecrypted(make([]uint64, c.eng.Layout().Len()))
	}
	rec, rk, err := mhe.NewRecipient(es.x.Params(), es.x.Session())
	if err != nil {
		return err
	}
	if es.rk, err = rk.MarshalBinary(); err != nil {
		return err
	}
	es.recipient = rec
	c.setRound(RoundKeySwitch)
	return c.requestKeySwitch()
}

// requestKeySwitch asks the first t live parties (spec order) for their
// key-switch shares.
func (c *Coordinator) requestKeySwitch() error {
	es := c.enc
	t := es.x.Params().Threshold()
	var active []int
	for i := 0; i < c.n && len(active) < t; i++ {
		if !es.gone[i] {
			active = append(active, i)
		}
	}
	if len(active) < t {
		return &AbortError{Code: CodeTooFewParties, Reason: fmt.Sprintf("only %d parties remain and the key switch needs %d", len(active), t)}
	}
	req, err := es.x.PCKSRequest(active)
	if err != nil {
		return err
	}
	b, err := req.MarshalBinary()
	if err != nil {
		return err
	}
	es.attempt++
	es.active, es.shares = active, nil
	names := make([]string, len(active))
	for k, a := range active {
		for _, ch := range Split(c.header(), MheRecipientKey, es.attempt, es.rk) {
			c.send(a, ch)
		}
		for _, ch := range Split(c.header(), MhePCKSRequest, es.attempt, b) {
			c.send(a, ch)
		}
		names[k] = c.spec.Parties[a]
	}
	c.emit(Info{Msg: "key switch requested", Args: []any{"attempt", es.attempt, "active", names}})
	return nil
}

// releaseDecrypted releases the Result from the decrypted totals.
func (c *Coordinator) releaseDecrypted(sum []uint64) error {
	var leftOut []int
	if c.enc != nil {
		leftOut = c.enc.leftOut
	}
	res, err := c.eng.ReleaseDecrypted(sum, leftOut)
	if err != nil {
		return err
	}
	return c.publish(res)
}

// goneEncrypted decides what a vanished party means for a session with
// aggregation encrypted and a threshold, once the public key is out. It
// returns a non-empty abort reason when the session cannot go on.
func (c *Coordinator) goneEncrypted(_ context.Context, i int, reason string) (Code, string) {
	es := c.enc
	if es.gone[i] {
		return 0, ""
	}
	es.gone[i] = true
	c.emit(Disconnect{Party: i})
	name := c.spec.Parties[i]
	complete := es.cts[i] == es.want[i]
	if !complete {
		if c.spec.Dropout != session.DropoutLeaveOut {
			return CodeDisconnected, fmt.Sprintf("%s before all its ciphertexts were in (dropout rule %s)", reason, c.spec.Dropout)
		}
		if err := es.x.Drop(i); err != nil {
			return CodeOf(err), fmt.Sprintf("%s: %v", reason, err)
		}
		es.leftOut = append(es.leftOut, i)
		slices.Sort(es.leftOut)
	}
	live := 0
	for _, g := range es.gone {
		if !g {
			live++
		}
	}
	t := es.x.Params().Threshold()
	if live < t {
		return CodeTooFewParties, fmt.Sprintf("%s; only %d parties remain and the key switch needs %d", reason, live, t)
	}
	c.emit(Info{Msg: "party gone, session goes on", Args: []any{"party", name, "contributions_count", complete, "remaining", live}})
	c.emit(Audit{Kind: "party.gone", Party: name, Detail: fmt.Sprintf("left_out=%v remaining=%d", !complete, live)})
	var err error
	if es.attempt > 0 && slices.Contains(es.active, i) && es.shares[i] == nil {
		err = c.requestKeySwitch()
	} else {
		err = c.maybeKeySwitch()
	}
	if err != nil {
		return CodeOf(err), fmt.Sprintf("after %s: %v", reason, err)
	}
	return 0, ""
}
