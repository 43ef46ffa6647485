package coordinator

import (
	"context"
	"errors"
	"fmt"
	"slices"

	mpsiv1 "github.com/mpsi-dev/mpsi/api/mpsi/v1"
	"github.com/mpsi-dev/mpsi/internal/mhewire"
	"github.com/mpsi-dev/mpsi/psi/session"
	"github.com/mpsi-dev/mpsi/sharing/mhe"
)

// encState is a live session's aggregation-encrypted state (DESIGN §4,
// "Encrypted aggregation"; doc/PROTOCOL.md), owned by the session
// goroutine. The rounds over the network, after the roster:
//
//  1. keys: every party sends its CKG share and its Galois-key shares (as
//     MheChunks) and, with a threshold t < n, one bulk envelope to every
//     other party with its Shamir share, which the coordinator relays
//     unopened. Meanwhile the token round and the join run as in masked
//     mode, except that no positions and no masks are ever sent.
//  2. ciphertexts: once the keys are complete and the intersection is
//     computed, the coordinator sends the collective public key to every
//     party; each encrypts the contributions of all its records in its
//     shuffled order and sends the ciphertexts, which the coordinator
//     weights with the party's 0/1 indicator and sums as they arrive.
//  3. key switch: when every party's ciphertexts are in (or, under the
//     dropout rule leave_out, the party is gone and left out), the
//     coordinator evaluates the aggregate and asks t live parties (the
//     first in spec order) to switch it to the recipient's key — a key pair
//     the coordinator holds for the release step, unrelated to the
//     collective key. If an active party vanishes, it asks another set.
//  4. release: it decrypts the L totals and releases them exactly as in
//     masked mode (reveal list, min_cell). When no aggregate would be
//     released (none revealed, I empty or below min_cell), steps 3–4 decrypt
//     nothing.
//
// Dropouts: before the public key is sent, or at any time in an n-of-n
// session, a vanished party aborts the session. With t < n, a party that
// vanishes after all its ciphertexts are in is not missed as long as t
// parties remain; one that vanishes before is left out (rule leave_out) or
// aborts the session (rule abort, the default).
type encState struct {
	x     *Encrypted
	sizes mhewire.Sizes
	asm   []*mhewire.Assembler

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

// startEncrypted sets up the encrypted rounds once the roster is out (the
// declared set sizes fix the parameters).
func (l *live) startEncrypted() error {
	x, err := l.eng.StartEncrypted()
	if err != nil {
		return err
	}
	sizes, err := mhewire.SizesOf(x.Params())
	if err != nil {
		return err
	}
	es := &encState{x: x, sizes: sizes, asm: make([]*mhewire.Assembler, l.n),
		ckg: make([]*mhe.CKGShareMsg, l.n), gkg: make([]*mhe.GaloisSharesMsg, l.n),
		cts: make([]uint32, l.n), want: make([]uint32, l.n), gone: make([]bool, l.n)}
	for i := range es.asm {
		es.want[i] = uint32(x.Params().CiphertextCount(l.eng.Size(i)))
		es.asm[i] = mhewire.NewAssembler(sizes, func(k mpsiv1.MheKind, idx uint32) error { return l.acceptMhe(i, k, idx) })
	}
	l.enc = es
	l.srv.log.Info("encrypted aggregation", "session", l.spec.ID, "N", x.Params().N(), "threshold", x.Params().Threshold(),
		"ciphertext_bytes", sizes[mpsiv1.MheKind_MHE_KIND_CIPHERTEXT], "galois_bytes", sizes[mpsiv1.MheKind_MHE_KIND_GALOIS_SHARES])
	return nil
}

// acceptMhe says whether party i may start sending a message of kind k and
// index idx now.
func (l *live) acceptMhe(i int, k mpsiv1.MheKind, idx uint32) error {
	es := l.enc
	switch k {
	case mpsiv1.MheKind_MHE_KIND_CKG_SHARE:
		if es.ckg[i] != nil || es.pkSent || idx != 0 {
			return errors.New("public-key share not expected")
		}
	case mpsiv1.MheKind_MHE_KIND_GALOIS_SHARES:
		if es.gkg[i] != nil || es.pkSent || idx != 0 {
			return errors.New("Galois-key shares not expected")
		}
	case mpsiv1.MheKind_MHE_KIND_CIPHERTEXT:
		if !es.pkSent || idx != es.cts[i] || idx >= es.want[i] {
			return fmt.Errorf("ciphertext %d not expected (public key sent: %v, %d of %d received)", idx, es.pkSent, es.cts[i], es.want[i])
		}
	case mpsiv1.MheKind_MHE_KIND_PCKS_SHARE:
		if idx >= 1 && idx < es.attempt {
			return nil // answers an earlier request, sent before the new one arrived: dropped
		}
		if es.attempt == 0 || idx != es.attempt || !slices.Contains(es.active, i) || es.shares[i] != nil {
			return fmt.Errorf("key-switch share for request %d not expected", idx)
		}
	default:
		return fmt.Errorf("%v is not sent by parties", k)
	}
	return nil
}

// onMhe takes one chunk of an encrypted-aggregation message from party i.
func (l *live) onMhe(ctx context.Context, i int, c *mpsiv1.MheChunk) (bool, error) {
	es := l.enc
	if es == nil {
		return false, fmt.Errorf("%w: encrypted-aggregation message in a %s session (or before the roster)", ErrBadMessage, l.spec.Aggregation)
	}
	b, done, err := es.asm[i].Add(c)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	if !done {
		return false, nil
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
	switch c.GetKind() {
	case mpsiv1.MheKind_MHE_KIND_CKG_SHARE:
		m := p.NewCKGShareMsg()
		if err := check("public-key share", m.From, m.UnmarshalBinary(b)); err != nil {
			return false, err
		}
		es.ckg[i] = m
		return l.maybePublicKey(ctx)
	case mpsiv1.MheKind_MHE_KIND_GALOIS_SHARES:
		m := p.NewGaloisSharesMsg()
		if err := check("Galois-key shares", m.From, m.UnmarshalBinary(b)); err != nil {
			return false, err
		}
		es.gkg[i] = m
		return l.maybePublicKey(ctx)
	case mpsiv1.MheKind_MHE_KIND_CIPHERTEXT:
		m := p.NewCiphertextMsg()
		if err := check("ciphertext", m.From, m.UnmarshalBinary(b)); err != nil {
			return false, err
		}
		if m.Index != c.GetIndex() {
			return false, fmt.Errorf("%w: ciphertext %d sent as number %d", ErrBadMessage, m.Index, c.GetIndex())
		}
		if err := es.x.AddCiphertext(i, m); err != nil {
			return false, fmt.Errorf("%w: %w", ErrBadMessage, err)
		}
		es.cts[i]++
		if es.cts[i] == es.want[i] {
			_ = l.srv.cfg.Store.Append(ctx, "party.ciphertexts", l.spec.ID, l.spec.Parties[i], fmt.Sprintf("ciphertexts=%d", es.cts[i]))
		}
		return l.maybeKeySwitch(ctx)
	case mpsiv1.MheKind_MHE_KIND_PCKS_SHARE:
		if c.GetIndex() != es.attempt {
			return false, nil // an earlier request's share (see acceptMhe)
		}
		m := p.NewPCKSShareMsg()
		if err := check("key-switch share", m.From, m.UnmarshalBinary(b)); err != nil {
			return false, err
		}
		if es.shares == nil {
			es.shares = map[int]*mhe.PCKSShareMsg{}
		}
		es.shares[i] = m
		if len(es.shares) < len(es.active) {
			return false, nil
		}
		shares := make([]*mhe.PCKSShareMsg, 0, len(es.active))
		for _, a := range es.active {
			shares = append(shares, es.shares[a])
		}
		res, err := es.x.KeySwitch(shares)
		if err != nil {
			return false, fmt.Errorf("%w: %w", ErrBadMessage, err)
		}
		sum, err := es.recipient.Decrypt(res)
		if err != nil {
			return false, fmt.Errorf("decrypting the aggregate: %w", err)
		}
		return l.releaseEncrypted(ctx, sum)
	}
	return false, fmt.Errorf("%w: %v", ErrBadMessage, c.GetKind())
}

// thresholdSharesRelayed reports whether every party's Shamir shares (one
// envelope to every other party) have been relayed, or no threshold is set.
func (l *live) thresholdSharesRelayed() bool {
	for from := 0; from < l.n; from++ {
		if l.owesEnvelopes(from, mpsiv1.Round_ROUND_THRESHOLD_SHARE) {
			return false
		}
	}
	return true
}

// maybePublicKey makes the collective keys and sends the public key once
// every party's key material is in and the intersection is computed.
func (l *live) maybePublicKey(ctx context.Context) (bool, error) {
	es := l.enc
	if es.pkSent || l.eng.join == nil || !l.thresholdSharesRelayed() {
		return false, nil
	}
	for i := range es.ckg {
		if es.ckg[i] == nil || es.gkg[i] == nil {
			return false, nil
		}
	}
	pk, err := es.x.AggregateKeys(es.ckg, es.gkg)
	if err != nil {
		return false, err
	}
	es.ckg, es.gkg = nil, nil
	b, err := pk.MarshalBinary()
	if err != nil {
		return false, err
	}
	for _, ch := range mhewire.Split(mpsiv1.MheKind_MHE_KIND_PUBLIC_KEY, 0, b) {
		l.broadcast(&mpsiv1.CoordinatorMessage{Msg: &mpsiv1.CoordinatorMessage_Mhe{Mhe: ch}})
	}
	es.pkSent = true
	l.setRound("ciphertexts")
	return l.maybeKeySwitch(ctx)
}

// maybeKeySwitch starts the key switch once every party's ciphertexts are
// in or the party is left out; when no aggregate is released it releases
// at once without decrypting anything.
func (l *live) maybeKeySwitch(ctx context.Context) (bool, error) {
	es := l.enc
	if !es.pkSent || es.attempt > 0 {
		return false, nil
	}
	for i := range es.cts {
		if es.cts[i] < es.want[i] && !slices.Contains(es.leftOut, i) {
			return false, nil
		}
	}
	if !l.eng.AggregatesReleased() {
		return l.releaseEncrypted(ctx, make([]uint64, l.eng.Layout().Len()))
	}
	rec, rk, err := mhe.NewRecipient(es.x.Params(), es.x.Session())
	if err != nil {
		return false, err
	}
	if es.rk, err = rk.MarshalBinary(); err != nil {
		return false, err
	}
	es.recipient = rec
	l.setRound("key-switch")
	return false, l.requestKeySwitch()
}

// requestKeySwitch asks the first t live parties (spec order) for their
// key-switch shares.
func (l *live) requestKeySwitch() error {
	es := l.enc
	t := es.x.Params().Threshold()
	var active []int
	for i := 0; i < l.n && len(active) < t; i++ {
		if !es.gone[i] {
			active = append(active, i)
		}
	}
	if len(active) < t {
		return fmt.Errorf("only %d parties remain and the key switch needs %d", len(active), t)
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
	for _, a := range active {
		c := l.conn(a)
		for _, ch := range mhewire.Split(mpsiv1.MheKind_MHE_KIND_RECIPIENT_KEY, es.attempt, es.rk) {
			c.send(&mpsiv1.CoordinatorMessage{Msg: &mpsiv1.CoordinatorMessage_Mhe{Mhe: ch}})
		}
		for _, ch := range mhewire.Split(mpsiv1.MheKind_MHE_KIND_PCKS_REQUEST, es.attempt, b) {
			c.send(&mpsiv1.CoordinatorMessage{Msg: &mpsiv1.CoordinatorMessage_Mhe{Mhe: ch}})
		}
	}
	names := make([]string, len(active))
	for k, a := range active {
		names[k] = l.spec.Parties[a]
	}
	l.srv.log.Info("key switch requested", "session", l.spec.ID, "attempt", es.attempt, "active", names)
	return nil
}

// releaseEncrypted releases the Result from the decrypted totals.
func (l *live) releaseEncrypted(ctx context.Context, sum []uint64) (bool, error) {
	res, err := l.eng.ReleaseDecrypted(sum, l.enc.leftOut)
	if err != nil {
		return false, err
	}
	return true, l.publish(ctx, res)
}

// onGoneEncrypted decides what a vanished party means for a session with
// aggregation encrypted and a threshold, once the public key is out (before
// that, and in every other session, a vanished party aborts). It returns a
// non-empty abort reason when the session cannot go on.
func (l *live) onGoneEncrypted(ctx context.Context, i int, reason string) (finished bool, abortReason string) {
	es := l.enc
	if es.gone[i] {
		return false, ""
	}
	es.gone[i] = true
	if c := l.conn(i); c != nil {
		c.close()
	}
	name := l.spec.Parties[i]
	complete := es.cts[i] == es.want[i]
	if !complete {
		if l.spec.Dropout != session.DropoutLeaveOut {
			return false, fmt.Sprintf("%s before all its ciphertexts were in (dropout rule %s)", reason, l.spec.Dropout)
		}
		if err := es.x.Drop(i); err != nil {
			return false, fmt.Sprintf("%s: %v", reason, err)
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
		return false, fmt.Sprintf("%s; only %d parties remain and the key switch needs %d", reason, live, t)
	}
	l.srv.log.Warn("party gone, session goes on", "session", l.spec.ID, "party", name, "contributions_count", complete, "remaining", live)
	_ = l.srv.cfg.Store.Append(ctx, "party.gone", l.spec.ID, name, fmt.Sprintf("left_out=%v remaining=%d", !complete, live))
	var err error
	if es.attempt > 0 && slices.Contains(es.active, i) && es.shares[i] == nil {
		err = l.requestKeySwitch()
	} else {
		finished, err = l.maybeKeySwitch(ctx)
	}
	if err != nil {
		return false, fmt.Sprintf("after %s: %v", reason, err)
	}
	return finished, ""
}
