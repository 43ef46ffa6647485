package protocol

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/mpsi-dev/mpsi/internal/envelope"
	"github.com/mpsi-dev/mpsi/psi"
	"github.com/mpsi-dev/mpsi/psi/ident"
	"github.com/mpsi-dev/mpsi/psi/session"
	"github.com/mpsi-dev/mpsi/sharing"
	"github.com/mpsi-dev/mpsi/sharing/mhe"
)

// PartyConfig configures a [Party]. Session, Name, Signer, Roots and
// Coordinator are required.
type PartyConfig struct {
	// Session is the id of the session to take part in.
	Session string
	// Name is the party's name (its certificate's common name).
	Name string
	// Signer is the party's certificate key; it signs the party's session
	// HPKE key.
	Signer crypto.Signer
	// Roots is the CA every participant's certificate must chain to; the
	// roster's certificates are checked against it.
	Roots *x509.CertPool
	// Coordinator returns the coordinator's certificate (from the
	// transport's handshake), against which the tally's and the Result's
	// signatures are checked.
	Coordinator func() *x509.Certificate
	// CoordinatorName is the coordinator's certificate name, pinned by the
	// party: the coordinator's certificate must carry it, and no spec may
	// list it as a party.
	CoordinatorName string
	// Workers bounds the goroutines of token work; 0 means GOMAXPROCS.
	Workers int
}

// PartyState is where a [Party] machine is.
type PartyState uint8

// Party states, in order.
const (
	// StateHello: Hello sent, waiting for the Welcome.
	StateHello PartyState = iota
	// StateOffered: the spec is offered; the driver checks its policy,
	// loads the records and calls Accept (or Abort).
	StateOffered
	// StateReady: Ready sent, waiting for the roster.
	StateReady
	// StateRunning: token rounds and aggregation.
	StateRunning
	// StateDone: the Result is received and verified.
	StateDone
	// StateAborted: the session ended without a Result.
	StateAborted
)

var stateNames = [...]string{"hello", "offered", "ready", "running", "done", "aborted"}

// String names the state.
func (s PartyState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("PartyState(%d)", uint8(s))
}

// Party is one data holder's side of a session as a state machine without
// I/O: the driver delivers the coordinator's messages ([Party.Receive]),
// lets it do its local work a piece at a time ([Party.Step]), and carries
// out the [Event]s it drains with [Party.Events]. It checks every message
// against what it already knows (the session, the spec it accepted, the
// roster, the rounds' order and sizes) and aborts, naming the check, when
// one fails. It is not safe for concurrent use.
type Party struct {
	cfg    PartyConfig
	state  PartyState
	events []Event

	spec     *session.Spec
	index    int
	n        int
	maxBatch int
	specHash []byte
	h        *Holder
	key      *envelope.SessionKey
	roster   []RosterEntry
	tally    *Tally

	ringOut []byte // key authenticating our ring batches to the next party
	ringIn  []byte // key of the previous party's ring batches

	seeds       []sharing.Seed
	haveSeed    []bool
	contribs    []psi.KeyContribution
	haveContrib []bool
	// dh, per match key: the next position of the own list to send (-1
	// when sent) and the positions credited back by the coordinator.
	ownNext []int
	ownDone []uint64
	ownKey  int // dh: the key whose own list the next Step sends (round robin)
	// keyed: the token list of each key while it is being sent, the key
	// being sent and its next token; tokNext is -1 before the tokens exist
	// and once all are sent.
	tokens    [][]byte
	tokKey    int
	tokNext   int
	hopsDone  map[[2]int]uint64 // dh: (owner, key) -> positions hopped
	positions []uint32
	posTotal  uint64
	mask      sharing.Vector

	enc    *partyEnc
	obl    *partyObl
	result *session.Result
}

// NewParty starts a party's side of session cfg.Session: it sends the
// Hello.
func NewParty(cfg PartyConfig) (*Party, error) {
	if cfg.Session == "" || cfg.Name == "" || cfg.Signer == nil || cfg.Roots == nil || cfg.Coordinator == nil || cfg.CoordinatorName == "" {
		return nil, errors.New("protocol: PartyConfig needs Session, Name, Signer, Roots, Coordinator and CoordinatorName")
	}
	if cfg.Name == cfg.CoordinatorName {
		return nil, fmt.Errorf("protocol: party %q has the coordinator's name", cfg.Name)
	}
	p := &Party{cfg: cfg, tokNext: -1}
	p.emit(Send{To: -1, Msg: &Hello{Header: Header{Session: cfg.Session, From: FromUnassigned}}})
	return p, nil
}

// State returns the machine's state.
func (p *Party) State() PartyState { return p.state }

// Spec returns the spec offered by the Welcome (nil before).
func (p *Party) Spec() *session.Spec { return p.spec }

// Index returns the party's index in the spec (valid from StateOffered).
func (p *Party) Index() int { return p.index }

// Result returns the party's own Result once the session is done: the
// released Result, with the party's members under reveal: membership.
func (p *Party) Result() *session.Result { return p.result }

// SetSize returns the number of records the party declared (0 before
// Accept).
func (p *Party) SetSize() int {
	if p.h == nil {
		return 0
	}
	return p.h.SetSize()
}

// Events returns the events since the last call, in order, and forgets
// them.
func (p *Party) Events() []Event {
	ev := p.events
	p.events = nil
	return ev
}

func (p *Party) emit(e Event) { p.events = append(p.events, e) }

func (p *Party) header() Header { return Header{Session: p.cfg.Session, From: Sender(p.index)} }

func (p *Party) send(m Message) { p.emit(Send{To: -1, Msg: m}) }

func (p *Party) over() bool { return p.state == StateDone || p.state == StateAborted }

// Abort ends the session from the party's side (its policy refused the
// spec, its records did not load, its driver gave up): it tells the
// coordinator, with a code and a reason that must not hold record values.
func (p *Party) Abort(code Code, reason string) {
	if p.over() {
		return
	}
	p.stopWork()
	p.state = StateAborted
	from := FromUnassigned
	if p.spec != nil {
		from = Sender(p.index)
	}
	p.send(&Abort{Header: Header{Session: p.cfg.Session, From: from}, Code: code, Reason: truncate(reason, MaxReasonSize-4)})
	p.emit(Aborted{Code: code, Reason: reason})
}

// fail aborts on err and returns it.
func (p *Party) fail(err error) error {
	var ae *AbortError
	if errors.As(err, &ae) && ae.Code != CodePartyAborted {
		// The coordinator ended the session: nothing to tell it.
		p.stopWork()
		p.state = StateAborted
		p.emit(Aborted{Code: ae.Code, Reason: ae.Reason})
		return err
	}
	r := Redact(CodeUnspecified, p.cfg.Name, err) // issue 12: no record value in the Abort
	p.Abort(r.Code, r.Public)
	return r
}

func (p *Party) stopWork() {
	if p.enc != nil && p.enc.stop != nil {
		p.enc.stop()
		p.enc.stop, p.enc.next = nil, nil
	}
	for _, t := range p.tokens {
		clear(t)
	}
	p.tokens = nil
}

// ownPending reports whether some of the party's own lists (dh) or tokens
// (keyed) are still to be sent.
func (p *Party) ownPending() bool {
	return slices.ContainsFunc(p.ownNext, func(x int) bool { return x >= 0 }) || p.tokNext >= 0 || p.tokens != nil
}

// Receive takes one message from the coordinator. A message that fails a
// check aborts the session (the coordinator is told why) and the error is
// returned; an Abort from the coordinator returns an [*AbortError].
func (p *Party) Receive(m Message) error {
	if p.over() {
		return fmt.Errorf("%w: party %s", ErrSessionOver, p.cfg.Name)
	}
	if err := p.receive(m); err != nil {
		return p.fail(err)
	}
	return nil
}

func (p *Party) receive(m Message) error {
	if m == nil {
		return fmt.Errorf("%w: empty message", ErrBadMessage)
	}
	h := m.Head()
	if h.Session != p.cfg.Session || h.From != FromCoordinator {
		return fmt.Errorf("%w: %s names session %q and sender %s", ErrBadMessage, m.Type(), truncate(h.Session, 64), h.From)
	}
	if a, ok := m.(*Abort); ok {
		return &AbortError{Code: a.Code, Reason: a.Reason}
	}
	switch p.state {
	case StateHello:
		w, ok := m.(*Welcome)
		if !ok {
			return fmt.Errorf("%w: expected Welcome, got %s", ErrWrongRound, m.Type())
		}
		return p.onWelcome(w)
	case StateReady:
		r, ok := m.(*Roster)
		if !ok {
			return fmt.Errorf("%w: expected the roster, got %s", ErrWrongRound, m.Type())
		}
		return p.onRoster(r)
	case StateRunning:
		switch x := m.(type) {
		case *Envelope:
			return p.onEnvelope(x)
		case *Batch:
			return p.onBatch(x)
		case *MaskDeal:
			return p.onMask(x)
		case *MheChunk:
			return p.onMhe(x)
		case *Result:
			return p.onResult(x)
		case *Tally:
			if err := p.onTally(x); err != nil {
				return err
			}
			if p.spec.Aggregation == session.AggregationOblivious {
				return p.startOblivious()
			}
			return nil
		case *Attestation:
			return p.onAttestation(x)
		case *Credit:
			return p.onCredit(x)
		}
	}
	return fmt.Errorf("%w: %s in state %s", ErrWrongRound, m.Type(), p.state)
}

func (p *Party) onWelcome(w *Welcome) error {
	spec, err := session.ParseSpec(w.Spec)
	if err != nil {
		return fmt.Errorf("coordinator's spec: %w", err)
	}
	if spec.ID != p.cfg.Session || spec.PartyIndex(p.cfg.Name) != int(w.Index) {
		return fmt.Errorf("%w: coordinator sent a spec for session %q with us at index %d", envelope.ErrRoster, spec.ID, w.Index)
	}
	if w.MaxBatch == 0 || w.MaxBatch > MaxBatchLimit {
		return fmt.Errorf("%w: coordinator's batch limit %d is out of range", ErrBadMessage, w.MaxBatch)
	}
	if spec.PartyIndex(p.cfg.CoordinatorName) >= 0 {
		return fmt.Errorf("%w: the spec lists the coordinator %q as a party", envelope.ErrRoster, p.cfg.CoordinatorName)
	}
	if cert := p.cfg.Coordinator(); cert == nil || cert.Subject.CommonName != p.cfg.CoordinatorName {
		got := "no certificate"
		if cert != nil {
			got = fmt.Sprintf("a certificate named %q", cert.Subject.CommonName)
		}
		return fmt.Errorf("%w: the coordinator presented %s, pinned name %q", envelope.ErrRoster, got, p.cfg.CoordinatorName)
	}
	p.spec, p.index, p.n, p.maxBatch = spec, int(w.Index), len(spec.Parties), int(w.MaxBatch)
	p.specHash = SpecHash(w.Spec)
	p.state = StateOffered
	return nil
}

// Accept takes part with the party's loaded records once the driver has
// checked the offered spec against its policy: it draws the session's
// secrets and sends the Ready (set size, signed session key).
func (p *Party) Accept(recs Records) error {
	if p.state != StateOffered {
		return fmt.Errorf("%w: Accept in state %s", ErrWrongRound, p.state)
	}
	err := func() error {
		h, err := NewHolder(p.spec, p.cfg.Name, recs, p.cfg.Workers)
		if err != nil {
			return err
		}
		key, err := envelope.GenerateSessionKey()
		if err != nil {
			return err
		}
		sig, err := envelope.SignReady(p.cfg.Signer, envelope.ReadyStatement{Session: p.spec.ID, Name: p.cfg.Name,
			HPKEKey: key.Public(), SetSize: uint64(h.SetSize()), SpecHash: p.specHash})
		if err != nil {
			return err
		}
		p.h, p.key = h, key
		p.send(&Ready{Header: p.header(), SetSize: uint64(h.SetSize()), HPKEKey: key.Public(), Signature: sig, Normalization: ident.NormalizationVersion()})
		p.state = StateReady
		return nil
	}()
	if err != nil {
		r := Redact(CodeInput, p.cfg.Name, err) // issue 12: no record value in the Abort
		p.Abort(r.Code, r.Public)
		return r
	}
	return nil
}

func (p *Party) onRoster(r *Roster) error {
	if len(r.Entries) != p.n {
		return fmt.Errorf("%w: %d entries for %d parties", envelope.ErrRoster, len(r.Entries), p.n)
	}
	for j, e := range r.Entries {
		if e.Name != p.spec.Parties[j] {
			return fmt.Errorf("%w: entry %d names %q", envelope.ErrRoster, j, truncate(e.Name, 64))
		}
		if e.SetSize > uint64(p.spec.MaxSetSize) {
			return fmt.Errorf("%w: %s declares %d records, max_set_size is %d", envelope.ErrRoster, e.Name, e.SetSize, p.spec.MaxSetSize)
		}
		// The signature covers the key, the declared size and the spec the
		// party accepted: a size the coordinator changed, or a peer shown
		// another spec, does not verify.
		st := envelope.ReadyStatement{Session: p.spec.ID, Name: e.Name, HPKEKey: e.HPKEKey, SetSize: e.SetSize, SpecHash: p.specHash}
		if err := envelope.VerifyReady(p.cfg.Roots, e.Certificate, st, e.Signature); err != nil {
			return err
		}
	}
	own := r.Entries[p.index]
	if string(own.HPKEKey) != string(p.key.Public()) {
		return fmt.Errorf("%w: our own key was replaced", envelope.ErrRoster)
	}
	if own.SetSize != uint64(p.h.SetSize()) {
		return fmt.Errorf("%w: our own set size is listed as %d, we declared %d", envelope.ErrRoster, own.SetSize, p.h.SetSize())
	}
	p.roster = r.Entries
	p.state = StateRunning
	p.emit(Info{Msg: "roster verified", Args: []any{"parties", p.spec.Parties}})
	return p.startRounds()
}

// startRounds sends the envelopes of the token round and sets up the
// party's own list (dh) and, with aggregation encrypted, the keys.
func (p *Party) startRounds() error {
	keyed := p.spec.GroupKeyed()
	masked := p.spec.Aggregation != session.AggregationEncrypted
	p.seeds, p.haveSeed = make([]sharing.Seed, p.n), make([]bool, p.n)
	p.contribs, p.haveContrib = make([]psi.KeyContribution, p.n), make([]bool, p.n)
	for j := range p.haveSeed {
		p.haveSeed[j] = !masked || j == p.index
	}
	p.contribs[p.index], p.haveContrib[p.index] = p.h.KeyContribution(), true
	p.hopsDone = map[[2]int]uint64{}
	for j := range p.n {
		if j == p.index {
			continue
		}
		if masked {
			s, err := p.h.Seed(j)
			if err != nil {
				return err
			}
			if err := p.seal(EnvelopeMaskSeed, j, s[:]); err != nil {
				return err
			}
		}
		if keyed {
			kc := p.h.KeyContribution()
			if err := p.seal(EnvelopeKeyContribution, j, kc[:]); err != nil {
				return err
			}
		}
	}
	keys := p.h.Keys()
	p.ownNext, p.ownDone = make([]int, keys), make([]uint64, keys)
	for k := range p.ownNext {
		p.ownNext[k] = -1
	}
	if !keyed {
		// The key that authenticates our ring batches to the next party.
		p.ringOut = make([]byte, 32)
		if _, err := rand.Read(p.ringOut); err != nil {
			return err
		}
		if err := p.seal(EnvelopeRingKey, (p.index+1)%p.n, p.ringOut); err != nil {
			return err
		}
		clear(p.ownNext) // the own lists go out a batch per Step
	}
	if EncryptsAggregates(p.spec) {
		return p.startEncrypted()
	}
	return nil
}

func (p *Party) seal(round EnvelopeRound, to int, msg []byte) error {
	seal := p.key.Seal
	if round == EnvelopeThresholdShare {
		seal = p.key.SealBulk
	}
	enc, ct, err := seal(p.roster[to].HPKEKey, p.spec.ID, uint32(round), uint32(p.index), uint32(to), msg)
	if err != nil {
		return err
	}
	p.send(&Envelope{Header: p.header(), Round: round, FromParty: uint32(p.index), To: uint32(to), Enc: enc, Ciphertext: ct})
	return nil
}

// Step does one piece of the party's pending local work (a batch of its
// own dh list or of its keyed tokens, one ciphertext) and reports whether
// it did any. The driver calls it between messages, so that the party's
// own work interleaves with the hops others ask of it.
func (p *Party) Step() (bool, error) {
	if p.state != StateRunning {
		return false, nil
	}
	did, err := p.step()
	if err != nil {
		return true, p.fail(err)
	}
	return did, nil
}

func (p *Party) step() (bool, error) {
	switch {
	case p.ownKeyReady() >= 0:
		// The keys' rings run side by side: one batch of each key's own
		// list in turn, each within its own window.
		k := p.ownKeyReady()
		p.ownKey = (k + 1) % len(p.ownNext)
		total := p.h.SetSize()
		end := min(p.ownNext[k]+p.maxBatch, total)
		out := make([]psi.Point, end-p.ownNext[k])
		if err := p.h.StartRingBatchKey(k, p.ownNext[k], out); err != nil {
			return true, err
		}
		if len(out) > 0 {
			data := pointsBytes(out)
			p.send(&Batch{Header: p.header(), Kind: BatchRing, Owner: uint32(p.index), Key: uint8(k), Offset: uint64(p.ownNext[k]), Total: uint64(total), Data: data,
				MAC: RingMACKey(p.ringOut, p.spec.ID, uint8(k), uint32(p.index), 0, uint64(p.ownNext[k]), uint64(total), data)})
		}
		p.emit(Progress{Phase: p.listPhase("own list", k), Done: end, Total: total})
		p.ownNext[k] = end
		if end == total {
			p.ownNext[k] = -1
		}
		return true, nil
	case p.tokNext >= 0:
		es := elementSize(p.spec)
		toks := p.tokens[p.tokKey]
		total := len(toks) / es
		end := min(p.tokNext+p.maxBatch, total)
		p.send(&Batch{Header: p.header(), Kind: BatchTokens, Owner: uint32(p.index), Key: uint8(p.tokKey), Offset: uint64(p.tokNext), Total: uint64(total),
			Data: slices.Clone(toks[p.tokNext*es : end*es])})
		p.tokNext = end
		if end == total {
			clear(toks)
			p.tokens[p.tokKey] = nil
			p.tokKey, p.tokNext = p.tokKey+1, 0
			if p.tokKey == len(p.tokens) {
				p.tokNext, p.tokens = -1, nil
				p.emit(Progress{Phase: "tokens", Done: 1, Total: 1})
			}
		}
		return true, nil
	case p.enc != nil && p.enc.next != nil:
		return true, p.encryptStep()
	case p.obl != nil && p.obl.uploadNext >= 0:
		return true, p.uploadStep()
	}
	return false, nil
}

func (p *Party) onEnvelope(e *Envelope) error {
	from := int(e.FromParty)
	if from >= p.n || from == p.index || int(e.To) != p.index {
		return fmt.Errorf("%w: envelope from %d to %d misrouted", ErrBadMessage, from, e.To)
	}
	open := p.key.Open
	if e.Round == EnvelopeThresholdShare {
		open = p.key.OpenBulk
	}
	pt, err := open(p.roster[from].HPKEKey, p.spec.ID, uint32(e.Round), e.FromParty, e.To, e.Enc, e.Ciphertext)
	if err != nil {
		return fmt.Errorf("envelope from %s: %w", p.spec.Parties[from], err)
	}
	switch e.Round {
	case EnvelopeThresholdShare:
		return p.onThresholdShare(from, pt)
	case EnvelopeRingKey:
		if p.spec.Match.Mode != session.ModeDH || from != (p.index+p.n-1)%p.n || p.ringIn != nil || len(pt) != 32 {
			return fmt.Errorf("%w: ring key from %s not expected or malformed", ErrWrongRound, p.spec.Parties[from])
		}
		p.ringIn = pt
	case EnvelopeMaskSeed:
		if p.haveSeed[from] || len(pt) != sharing.SeedSize {
			return fmt.Errorf("%w: mask seed from %s not expected or malformed", ErrWrongRound, p.spec.Parties[from])
		}
		copy(p.seeds[from][:], pt)
		p.haveSeed[from] = true
	case EnvelopeKeyContribution:
		if !p.spec.GroupKeyed() || p.haveContrib[from] || len(pt) != psi.KeySize {
			return fmt.Errorf("%w: key contribution from %s not expected or malformed", ErrWrongRound, p.spec.Parties[from])
		}
		copy(p.contribs[from][:], pt)
		p.haveContrib[from] = true
		if !slices.Contains(p.haveContrib, false) {
			data, err := p.h.keyedTokenBytes(p.contribs)
			if err != nil {
				return err
			}
			p.tokens, p.tokKey, p.tokNext = data, 0, 0
			if len(data[0]) == 0 {
				// An empty list: one empty batch is never sent; the
				// coordinator completes empty lists itself.
				p.tokens, p.tokNext = nil, -1
			}
		}
	default:
		return fmt.Errorf("%w: envelope for unknown round %d", ErrBadMessage, e.Round)
	}
	return nil
}

func (p *Party) onBatch(b *Batch) error {
	switch b.Kind {
	case BatchRing:
		if p.spec.Match.Mode != session.ModeDH {
			return fmt.Errorf("%w: ring batch in keyed mode", ErrBadMessage)
		}
		owner, hop, key := int(b.Owner), int(b.Hop), int(b.Key)
		if owner >= p.n || hop < 1 || hop >= p.n || RingTarget(p.n, owner, hop) != p.index || key >= p.h.Keys() {
			return fmt.Errorf("%w: ring batch (owner %d, hop %d, key %d) is not ours", ErrBadMessage, owner, hop, key)
		}
		list := [2]int{owner, key}
		if len(b.Data)%psi.PointSize != 0 || len(b.Data) == 0 || len(b.Data)/psi.PointSize > p.maxBatch {
			return fmt.Errorf("%w: malformed ring batch", ErrBadMessage)
		}
		// Exactly the declared size of each list, each position once, in
		// order.
		if b.Total != p.roster[owner].SetSize || b.Offset != p.hopsDone[list] || b.Offset+uint64(len(b.Data)/psi.PointSize) > b.Total {
			return fmt.Errorf("%w: ring batch of %s (key %d) at [%d, %d) of %d: we have done %d of its %d declared records",
				ErrBadMessage, p.spec.Parties[owner], key, b.Offset, b.Offset+uint64(len(b.Data)/psi.PointSize), b.Total, p.hopsDone[list], p.roster[owner].SetSize)
		}
		// Made by the previous party, unaltered, for this place in the list.
		if p.ringIn == nil {
			return fmt.Errorf("%w: ring batch before the previous party's ring key", ErrWrongRound)
		}
		if !hmac.Equal(b.MAC, RingMACKey(p.ringIn, p.spec.ID, b.Key, uint32(owner), uint32(hop-1), b.Offset, b.Total, b.Data)) {
			return fmt.Errorf("%w: ring batch (list of %s, hop %d, offset %d) is not authenticated by %s", ErrRingAuth,
				p.spec.Parties[owner], hop, b.Offset, p.spec.Parties[(p.index+p.n-1)%p.n])
		}
		pts := make([]psi.Point, len(b.Data)/psi.PointSize)
		for k := range pts {
			copy(pts[k][:], b.Data[k*psi.PointSize:])
		}
		if _, err := p.h.Hop(pts); err != nil {
			// Name who produced the bad elements: the owner (hop 1) or the
			// party that did the previous hop.
			from := p.spec.Parties[(owner+hop-1)%p.n]
			return fmt.Errorf("list of %s as sent by %s: %w", p.spec.Parties[owner], from, err)
		}
		p.hopsDone[list] += uint64(len(pts))
		p.emit(Progress{Phase: p.listPhase("hop on "+p.spec.Parties[owner], key), Done: int(p.hopsDone[list]), Total: int(b.Total)})
		out := pointsBytes(pts)
		p.send(&Batch{Header: p.header(), Kind: BatchRing, Owner: uint32(owner), Hop: uint32(hop), Key: b.Key, Offset: b.Offset, Total: b.Total, Data: out,
			MAC: RingMACKey(p.ringOut, p.spec.ID, b.Key, uint32(owner), uint32(hop), b.Offset, b.Total, out)})
		return nil
	case BatchIndicator:
		if p.spec.Aggregation != session.AggregationOblivious {
			return fmt.Errorf("%w: indicator sent with aggregation %s", ErrBadMessage, p.spec.Aggregation)
		}
		return p.onIndicator(b)
	case BatchPositions:
		if p.spec.Aggregation != session.AggregationMasked {
			return fmt.Errorf("%w: positions sent with aggregation %s: a party never learns its positions in this mode", ErrBadMessage, p.spec.Aggregation)
		}
		if p.tally == nil {
			return fmt.Errorf("%w: positions before the coordinator's signed tally", ErrWrongRound)
		}
		if b.Total != p.tally.Intersection {
			return fmt.Errorf("%w: %d positions announced, the signed tally says |I| = %d", ErrPositions, b.Total, p.tally.Intersection)
		}
		if p.mask != nil || len(b.Data)%4 != 0 || b.Owner != uint32(p.index) || b.Offset != uint64(len(p.positions)) ||
			b.Total > uint64(p.h.SetSize()) || b.Offset+uint64(len(b.Data)/4) > b.Total {
			return fmt.Errorf("%w: malformed positions batch", ErrPositions)
		}
		p.posTotal = b.Total
		for k := 0; k < len(b.Data); k += 4 {
			p.positions = append(p.positions, binary.LittleEndian.Uint32(b.Data[k:]))
		}
		return nil
	}
	return fmt.Errorf("%w: unexpected batch kind %s", ErrBadMessage, b.Kind)
}

func (p *Party) onMask(md *MaskDeal) error {
	if p.spec.Aggregation != session.AggregationMasked {
		return fmt.Errorf("%w: mask dealt with aggregation %s", ErrBadMessage, p.spec.Aggregation)
	}
	if p.mask != nil {
		return fmt.Errorf("%w: mask dealt twice", ErrWrongRound)
	}
	if p.ownPending() {
		return fmt.Errorf("%w: mask dealt before our own list was sent", ErrWrongRound)
	}
	if p.tally == nil {
		return fmt.Errorf("%w: mask before the coordinator's signed tally", ErrWrongRound)
	}
	if uint64(len(p.positions)) != p.tally.Intersection {
		return fmt.Errorf("%w: mask dealt after %d of the %d positions the signed tally announces", ErrPositions, len(p.positions), p.tally.Intersection)
	}
	mask, err := sharing.UnmarshalVector(md.Mask, sharing.MaxLen)
	if err != nil {
		return fmt.Errorf("%w: mask: %w", ErrBadMessage, err)
	}
	if slices.Contains(p.haveSeed, false) {
		return fmt.Errorf("%w: masks dealt before every mask seed arrived", ErrWrongRound)
	}
	p.mask = mask
	p.emit(Progress{Phase: "aggregate", Done: 0, Total: 1})
	positions := p.positions
	if !p.tallyReleasesAggregates() {
		// Below min_cell nothing derived from the sum is released: the
		// party contributes nothing (its masks still cancel), so that a
		// coordinator that announced a tiny I learns nothing from the sum.
		positions = nil
	}
	z, err := p.h.Share(positions, mask, p.seeds)
	if err != nil {
		return err
	}
	zb, err := z.MarshalBinary()
	if err != nil {
		return err
	}
	p.send(&Share{Header: p.header(), Vector: zb})
	p.emit(Info{Msg: "masked share sent"})
	return nil
}

func (p *Party) onResult(r *Result) error {
	encrypted := EncryptsAggregates(p.spec)
	oblivious := p.spec.Aggregation == session.AggregationOblivious
	switch {
	case p.spec.Aggregation == session.AggregationMasked && p.mask == nil,
		oblivious && (p.obl == nil || (p.tallyReleasesAggregates() && (!p.obl.unmasked || p.obl.uploadNext >= 0))),
		encrypted && (!p.enc.pk || p.enc.next != nil),
		p.ownPending():
		return fmt.Errorf("%w: result before our share or ciphertexts", ErrWrongRound)
	}
	cert := p.cfg.Coordinator()
	if cert == nil {
		return errors.New("no coordinator certificate to check the result against")
	}
	if err := envelope.VerifyResult(cert, p.spec.ID, r.JSON, r.Signature); err != nil {
		return err
	}
	var res session.Result
	if err := json.Unmarshal(r.JSON, &res); err != nil {
		return fmt.Errorf("%w: result: %w", ErrBadMessage, err)
	}
	if err := p.checkResultAgainstTally(&res); err != nil {
		return err
	}
	own, err := p.h.OwnResult(&res, p.positions)
	if err != nil {
		return err
	}
	p.result = own
	p.state = StateDone
	p.emit(Released{Result: own, JSON: r.JSON, Signature: r.Signature})
	return nil
}

func pointsBytes(p []psi.Point) []byte {
	b := make([]byte, 0, len(p)*psi.PointSize)
	for i := range p {
		b = append(b, p[i][:]...)
	}
	return b
}

// partyEnc is the party's side of aggregation encrypted.
type partyEnc struct {
	eh    *EncryptedHolder
	asm   *Assembler
	inbox []*mhe.ThresholdShareMsg
	have  []bool // Shamir share received from each party
	ready bool   // threshold setup complete (or no threshold)
	pk    bool   // public key received
	rk    *mhe.RecipientKeyMsg
	rkIdx uint32
	asked uint32 // last key-switch request answered

	// The bounded key switch: one ciphertext (the first request's c1) and
	// one recipient key per session; a re-request must leave out a party of
	// the previous active set (the dropout it answers), never bring one
	// back, and there are at most n − t of them.
	c1Hash, rkHash []byte
	lastActive     []mhe.PartyID
	excluded       map[mhe.PartyID]bool
	reRequests     int

	// The ciphertexts, one per Step (a coroutine over the encryption).
	next  func() (*mhe.CiphertextMsg, bool)
	stop  func()
	err   error
	sent  int
	total int
}

// startEncrypted derives the parameters from the roster, draws the key
// share and sends the key material: CKG share, Galois shares and, with a
// threshold, one sealed Shamir share to every other party.
func (p *Party) startEncrypted() error {
	largest := 0
	for _, e := range p.roster {
		largest = max(largest, int(e.SetSize))
	}
	eh, err := p.h.Encrypted(largest)
	if err != nil {
		return err
	}
	params := eh.Params()
	sizes, err := SizesOf(params)
	if err != nil {
		return err
	}
	pe := &partyEnc{eh: eh, have: make([]bool, p.n), ready: !params.IsThreshold()}
	pe.asm = NewAssembler(sizes, func(k MheKind, idx uint32) error {
		switch k {
		case MhePublicKey:
			if pe.pk || idx != 0 {
				return errors.New("public key sent twice")
			}
		case MheRecipientKey, MhePCKSRequest:
			if !pe.pk || pe.next != nil || idx <= pe.asked {
				return fmt.Errorf("%s %d out of order", k, idx)
			}
		default:
			return fmt.Errorf("%s is not sent by the coordinator", k)
		}
		return nil
	})
	p.enc = pe
	ckg, err := eh.GenCKGShare()
	if err != nil {
		return err
	}
	if err := p.sendMhe(MheCKGShare, 0, ckg); err != nil {
		return err
	}
	gkg, err := eh.GenGaloisShares()
	if err != nil {
		return err
	}
	if err := p.sendMhe(MheGaloisShares, 0, gkg); err != nil {
		return err
	}
	if params.IsThreshold() {
		shares, err := eh.GenThresholdShares()
		if err != nil {
			return err
		}
		for _, s := range shares {
			b, err := s.MarshalBinary() // SECRET: sealed to its addressee
			if err != nil {
				return err
			}
			err = p.seal(EnvelopeThresholdShare, int(s.To), b)
			clear(b)
			if err != nil {
				return err
			}
		}
	}
	p.emit(Info{Msg: "encryption keys sent", Args: []any{"N", params.N(), "threshold", params.Threshold()}})
	p.emit(StageReached{Stage: StageKeysSent})
	return nil
}

// onThresholdShare takes another party's opened Shamir share.
func (p *Party) onThresholdShare(from int, pt []byte) error {
	pe := p.enc
	if pe == nil || pe.ready || pe.have[from] {
		clear(pt)
		return fmt.Errorf("%w: threshold share from %s not expected", ErrWrongRound, p.spec.Parties[from])
	}
	m := pe.eh.Params().NewThresholdShareMsg()
	err := m.UnmarshalBinary(pt)
	clear(pt)
	if err != nil {
		return fmt.Errorf("threshold share from %s: %w", p.spec.Parties[from], err)
	}
	if int(m.From) != from || int(m.To) != p.index {
		return fmt.Errorf("%w: threshold share from %s is addressed from %d to %d", ErrBadMessage, p.spec.Parties[from], m.From, m.To)
	}
	pe.have[from] = true
	pe.inbox = append(pe.inbox, m)
	if len(pe.inbox) < p.n-1 {
		return nil
	}
	if err := pe.eh.AggregateThresholdShares(pe.inbox); err != nil {
		return err
	}
	pe.inbox, pe.ready = nil, true
	return nil
}

// onMhe takes a chunk from the coordinator; complete messages are acted
// on: the public key (encryption starts, a ciphertext per Step), the
// recipient's key, and key-switch requests.
func (p *Party) onMhe(ch *MheChunk) error {
	pe := p.enc
	if pe == nil {
		return fmt.Errorf("%w: encrypted-aggregation message in a session without encrypted rounds", ErrBadMessage)
	}
	b, done, err := pe.asm.Add(ch)
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	if !done {
		return nil
	}
	params := pe.eh.Params()
	switch ch.Kind {
	case MhePublicKey:
		if !pe.ready {
			return fmt.Errorf("%w: public key before every threshold share arrived", ErrWrongRound)
		}
		if p.ownPending() {
			return fmt.Errorf("%w: public key before our own list was sent", ErrWrongRound)
		}
		pk := params.NewPublicKeyMsg()
		if err := pk.UnmarshalBinary(b); err != nil {
			return fmt.Errorf("collective public key: %w", err)
		}
		pe.pk = true
		p.emit(Progress{Phase: "aggregate", Done: 0, Total: 1})
		p.emit(StageReached{Stage: StagePublicKey})
		pe.total = params.CiphertextCount(p.h.SetSize() + p.spec.NoiseRows())
		seq := func(yield func(*mhe.CiphertextMsg) bool) {
			pe.err = pe.eh.EncryptContributionsFunc(pk, func(ct *mhe.CiphertextMsg) error {
				if !yield(ct) {
					return errStopped
				}
				return nil
			})
		}
		pe.next, pe.stop = iter.Pull(seq)
		if pe.total == 0 {
			return p.finishEncryption()
		}
	case MheRecipientKey:
		rk := params.NewRecipientKeyMsg()
		if err := rk.UnmarshalBinary(b); err != nil {
			return fmt.Errorf("recipient key: %w", err)
		}
		h := SpecHash(b)
		if pe.rkHash != nil && !hmac.Equal(h, pe.rkHash) {
			return fmt.Errorf("%w: request %d names another release key than the first", ErrKeySwitch, ch.Index)
		}
		pe.rk, pe.rkIdx, pe.rkHash = rk, ch.Index, h
	case MhePCKSRequest:
		if pe.rk == nil || pe.rkIdx != ch.Index {
			return fmt.Errorf("%w: key-switch request without the recipient's key", ErrWrongRound)
		}
		req := params.NewPCKSRequestMsg()
		if err := req.UnmarshalBinary(b); err != nil {
			return fmt.Errorf("key-switch request: %w", err)
		}
		if err := p.checkKeySwitch(req); err != nil {
			return err
		}
		pe.asked = ch.Index
		p.emit(StageReached{Stage: StageKeySwitch})
		share, err := pe.eh.GenPCKSShare(req, pe.rk)
		if err != nil {
			return err
		}
		if err := p.sendMhe(MhePCKSShare, ch.Index, share); err != nil {
			return err
		}
		p.emit(Info{Msg: "key-switch share sent", Args: []any{"request", ch.Index}})
	}
	return nil
}

var errStopped = errors.New("protocol: encryption stopped")

// encryptStep makes and sends the next ciphertext; after the last one it
// closes the encryption at once (the coordinator's next message may be the
// key-switch request).
func (p *Party) encryptStep() error {
	pe := p.enc
	if pe.sent < pe.total {
		ct, ok := pe.next()
		if !ok {
			return p.finishEncryption()
		}
		if err := p.sendMhe(MheCiphertext, ct.Index, ct); err != nil {
			return err
		}
		pe.sent++
		p.emit(Progress{Phase: "ciphertexts", Done: pe.sent, Total: pe.total})
	}
	if pe.sent == pe.total {
		return p.finishEncryption()
	}
	return nil
}

// finishEncryption ends the encryption coroutine and checks that it made
// every ciphertext.
func (p *Party) finishEncryption() error {
	pe := p.enc
	if _, more := pe.next(); more {
		pe.err = fmt.Errorf("protocol: more than %d ciphertexts made", pe.total)
	}
	pe.stop()
	pe.next, pe.stop = nil, nil
	if pe.err != nil {
		return pe.err
	}
	if pe.sent != pe.total {
		return fmt.Errorf("protocol: %d of %d ciphertexts made", pe.sent, pe.total)
	}
	p.emit(Info{Msg: "ciphertexts sent", Args: []any{"ciphertexts", pe.sent}})
	p.emit(StageReached{Stage: StageCiphertextsSent})
	return nil
}

// sendMhe sends one encoded message in chunks.
func (p *Party) sendMhe(kind MheKind, index uint32, m interface{ MarshalBinary() ([]byte, error) }) error {
	b, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	for _, ch := range Split(p.header(), kind, index, b) {
		p.send(ch)
	}
	return nil
}

// checkKeySwitch bounds what the coordinator can have decrypted: nothing
// when the signed tally says nothing is released, one ciphertext per
// session (the first request's), and re-requests only as dropouts
// require.
func (p *Party) checkKeySwitch(req *mhe.PCKSRequestMsg) error {
	pe := p.enc
	if !p.tallyReleasesAggregates() {
		return fmt.Errorf("%w: asked to decrypt while the signed tally releases no aggregate", ErrKeySwitch)
	}
	if !slices.Contains(req.Active, mhe.PartyID(p.index)) {
		return fmt.Errorf("%w: the request's active set does not name us", ErrKeySwitch)
	}
	c1, err := req.C1.MarshalBinary()
	if err != nil {
		return err
	}
	h := SpecHash(c1)
	if pe.c1Hash == nil {
		pe.c1Hash, pe.lastActive, pe.excluded = h, slices.Clone(req.Active), map[mhe.PartyID]bool{}
		return nil
	}
	if !hmac.Equal(h, pe.c1Hash) {
		return fmt.Errorf("%w: a second request for another ciphertext", ErrKeySwitch)
	}
	t := pe.eh.Params().Threshold()
	if pe.reRequests >= p.n-t {
		return fmt.Errorf("%w: more than n − t = %d re-requests", ErrKeySwitch, p.n-t)
	}
	dropped := false
	for _, a := range pe.lastActive {
		if !slices.Contains(req.Active, a) && !pe.excluded[a] {
			pe.excluded[a], dropped = true, true
		}
	}
	for _, a := range req.Active {
		if pe.excluded[a] {
			return fmt.Errorf("%w: re-request brings back party %d, which had dropped out", ErrKeySwitch, a)
		}
	}
	if !dropped {
		return fmt.Errorf("%w: re-request without a dropout from the previous active set", ErrKeySwitch)
	}
	pe.reRequests++
	pe.lastActive = slices.Clone(req.Active)
	return nil
}

// onCredit advances the window of the party's own dh list in flight.
func (p *Party) onCredit(c *Credit) error {
	k := int(c.Key)
	if p.spec.Match.Mode != session.ModeDH || k >= len(p.ownNext) {
		return fmt.Errorf("%w: credit for key %d of our list", ErrBadMessage, k)
	}
	sent := uint64(p.h.SetSize())
	if p.ownNext[k] >= 0 {
		sent = uint64(p.ownNext[k])
	}
	if c.Done < p.ownDone[k] || c.Done > sent {
		return fmt.Errorf("%w: credit for %d positions of our list (key %d; sent %d, credited %d)", ErrBadMessage, c.Done, k, sent, p.ownDone[k])
	}
	p.ownDone[k] = c.Done
	return nil
}

// ownKeyReady returns the next key, in round-robin order from p.ownKey,
// whose own dh list has a batch to send within its window, or -1.
func (p *Party) ownKeyReady() int {
	for x := range p.ownNext {
		k := (p.ownKey + x) % len(p.ownNext)
		if p.ownNext[k] >= 0 && uint64(p.ownNext[k]) < p.ownDone[k]+uint64(RingWindow*p.maxBatch) {
			return k
		}
	}
	return -1
}

// listPhase names a list in progress events: phase, with the key when the
// session has several.
func (p *Party) listPhase(phase string, key int) string {
	if p.h.Keys() == 1 {
		return phase
	}
	return fmt.Sprintf("%s, key %d", phase, key+1)
}
