package protocol

import (
	"fmt"
	"slices"

	"github.com/mpsi-dev/mpsi/psi/session"
	"github.com/mpsi-dev/mpsi/sharing/mhe"
)

// EncryptedParams returns the parameters and the session id of aggregation
// encrypted (doc/DESIGN.md §4, "Encrypted aggregation") for a validated spec whose
// largest declared set size is maxRecords. Every participant derives them
// from the same public inputs: the spec and the declared set sizes.
//
// The session part of the parameters is: the spec's parties and threshold,
// one component per slot of the aggregate vector ([session.Layout]), the
// largest |contribution| of one record per slot
// ([session.Spec.ContributionBounds]), and max(1, maxRecords) positions per
// party. The homomorphic-encryption part is [mhe.ProfileA] (N = 2^14, the
// recommended profile) or, if A refuses the session, [mhe.ProfileB];
// [mhe.NewParams] checks 128-bit security and that every declared bound
// fits the plaintext modulus. If neither profile accepts the session it
// returns Profile A's error, which names the violated bound (for example
// [mhe.ErrBoundsTooLarge] and the component). A spec with an empty
// aggregate vector has nothing to encrypt and is refused.
func EncryptedParams(spec *session.Spec, maxRecords int) (*mhe.Params, mhe.SessionID, error) {
	if spec.Aggregation != session.AggregationEncrypted {
		return nil, mhe.SessionID{}, fmt.Errorf("protocol: session %s uses aggregation %q, not %q", spec.ID, spec.Aggregation, session.AggregationEncrypted)
	}
	bounds := spec.ContributionBounds()
	if noise := spec.NoiseBounds(); noise != nil && len(noise) == len(bounds) {
		// With privacy every party encrypts one more row, its noise,
		// clipped at NoiseTail·σ: every encrypted value stays within the
		// larger bound.
		for j := range bounds {
			bounds[j] = max(bounds[j], noise[j])
		}
	}
	maxRecords += spec.NoiseRows()
	if len(bounds) == 0 {
		return nil, mhe.SessionID{}, fmt.Errorf("protocol: session %s declares no aggregates to encrypt", spec.ID)
	}
	n := len(spec.Parties)
	threshold := spec.Threshold
	if threshold == n {
		threshold = 0 // n-of-n: no Shamir sharing
	}
	var firstErr error
	for _, profile := range []mhe.ParamsLiteral{mhe.ProfileA(), mhe.ProfileB()} {
		lit := profile
		lit.Parties, lit.Threshold = n, threshold
		lit.Components, lit.MaxRecords, lit.MaxAbs = len(bounds), max(1, maxRecords), bounds
		params, err := mhe.NewParams(lit)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		id, err := mhe.NewSessionID(params, spec.ID)
		if err != nil {
			return nil, mhe.SessionID{}, err
		}
		return params, id, nil
	}
	return nil, mhe.SessionID{}, fmt.Errorf("protocol: session %s: aggregation %q: %w", spec.ID, session.AggregationEncrypted, firstErr)
}

// Encrypted is the coordinator's state for step 4 of a session with
// aggregation encrypted, replacing the masks and masked shares of the
// masked mode; the rest of the session (declare, tokens, join, release)
// stays with the [Engine] that started it. In order:
//
//  1. [Encrypted.AggregateKeys]: the parties' shares of the collective public
//     key and of the Galois keys; the public key goes back to every party.
//     (With a threshold t < n the parties then exchange Shamir shares of
//     their keys, sealed to each other and only relayed by the coordinator.)
//  2. [Encrypted.AddCiphertext], after the join: each party's contribution
//     ciphertexts, multiplied by that party's 0/1 indicator of its positions
//     in the intersection, which only the coordinator knows, and summed.
//  3. [Encrypted.PCKSRequest] for t active parties, then
//     [Encrypted.KeySwitch] with their shares: the aggregate under the
//     recipient's key. If an active party vanishes, request again with
//     another set.
//  4. The recipient decrypts; [Engine.ReleaseDecrypted] releases the totals.
//
// Encrypted holds only public material: the parameters, the collective
// public key, the Galois keys, the indicators and ciphertexts. It never
// holds a secret-key share, a Shamir share or the recipient's key, and it
// never sends a party its positions. It is not safe for concurrent use.
type Encrypted struct {
	e       *Engine
	params  *mhe.Params
	session mhe.SessionID
	coord   *mhe.Coordinator
	keyed   bool
	acc     *mhe.Accumulator
	agg     *mhe.Aggregate
	active  []mhe.PartyID // of the last PCKS request
}

// StartEncrypted starts step 4 in aggregation encrypted once every party has
// declared its set size: the parameters follow from the spec and the
// largest declared size ([EncryptedParams]). Call it once per session.
func (e *Engine) StartEncrypted() (*Encrypted, error) {
	if e.spec.Aggregation != session.AggregationEncrypted {
		return nil, fmt.Errorf("%w: session %s uses aggregation %q", ErrWrongRound, e.spec.ID, e.spec.Aggregation)
	}
	if e.encStarted {
		return nil, fmt.Errorf("%w: encrypted aggregation already started", ErrWrongRound)
	}
	largest := 0
	for i, s := range e.sizes {
		if s < 0 {
			return nil, fmt.Errorf("%w: party %s has not declared its set size", ErrWrongRound, e.spec.Parties[i])
		}
		largest = max(largest, s)
	}
	params, id, err := EncryptedParams(e.spec, largest)
	if err != nil {
		return nil, err
	}
	c, err := mhe.NewCoordinator(params, id)
	if err != nil {
		return nil, err
	}
	e.encStarted = true
	return &Encrypted{e: e, params: params, session: id, coord: c}, nil
}

// Params returns the session's encryption parameters.
func (x *Encrypted) Params() *mhe.Params { return x.params }

// Session returns the encryption session id, bound into every message.
func (x *Encrypted) Session() mhe.SessionID { return x.session }

// AggregateKeys combines one collective-public-key share and one set of
// Galois-key shares from every party into the collective public key, which
// it returns for every party, and the Galois keys, which it keeps for
// Trace. It may be called once.
func (x *Encrypted) AggregateKeys(ckg []*mhe.CKGShareMsg, gkg []*mhe.GaloisSharesMsg) (*mhe.PublicKeyMsg, error) {
	if x.keyed {
		return nil, fmt.Errorf("%w: keys already aggregated", ErrWrongRound)
	}
	pk, err := x.coord.AggregateCKG(ckg)
	if err != nil {
		return nil, fmt.Errorf("protocol: collective public key: %w", err)
	}
	if err := x.coord.AggregateGalois(gkg); err != nil {
		return nil, fmt.Errorf("protocol: Galois keys: %w", err)
	}
	x.keyed = true
	return pk, nil
}

// indicators returns, per party, whether each of its shuffled positions is
// in the intersection.
func (e *Engine) indicators() [][]bool {
	out := make([][]bool, e.n)
	extra := e.spec.NoiseRows()
	for i := range out {
		out[i] = make([]bool, e.sizes[i]+extra)
		for _, pos := range e.join.Positions[i] {
			out[i][pos] = true
		}
		for k := range extra {
			out[i][e.sizes[i]+k] = true // the party's noise row always counts
		}
	}
	return out
}

// AddCiphertext adds one of party i's contribution ciphertexts (its sender
// must be party i), weighted by party i's indicator. It needs the keys and
// the join. A duplicate, a ciphertext of another session or a chunk count
// that does not match the party's declared size is refused (wrapping
// [mhe.ErrDuplicateSender], [mhe.ErrWrongSession] or
// [mhe.ErrMalformedMessage]).
func (x *Encrypted) AddCiphertext(i int, m *mhe.CiphertextMsg) error {
	if err := x.e.party(i); err != nil {
		return err
	}
	if !x.keyed || x.e.join == nil || x.agg != nil {
		return fmt.Errorf("%w: ciphertext of party %s", ErrWrongRound, x.e.spec.Parties[i])
	}
	if m == nil || m.From != mhe.PartyID(i) {
		return fmt.Errorf("%w: ciphertext of party %s names another sender", ErrBadMessage, x.e.spec.Parties[i])
	}
	acc, err := x.accumulator()
	if err != nil {
		return err
	}
	if err := acc.Add(m); err != nil {
		return fmt.Errorf("protocol: ciphertext of party %s: %w", x.e.spec.Parties[i], err)
	}
	return nil
}

// PCKSRequest asks the parties in active (spec indices; exactly t of them)
// to switch the aggregate to the recipient's key. The first call finalizes
// the aggregate, which needs every ciphertext of every party; a later call
// replaces the active set (after an active party vanished). The request
// carries only the c1 part of the re-randomised aggregate.
func (x *Encrypted) PCKSRequest(active []int) (*mhe.PCKSRequestMsg, error) {
	if x.agg == nil {
		if x.acc == nil {
			return nil, fmt.Errorf("%w: key switch before any ciphertext", ErrWrongRound)
		}
		agg, err := x.acc.Finalize()
		if err != nil {
			return nil, fmt.Errorf("protocol: evaluating the aggregate: %w", err)
		}
		x.agg, x.acc = agg, nil
	}
	ids := make([]mhe.PartyID, len(active))
	for k, i := range active {
		if err := x.e.party(i); err != nil {
			return nil, err
		}
		ids[k] = mhe.PartyID(i)
	}
	slices.Sort(ids)
	req, err := x.agg.PCKSRequest(ids)
	if err != nil {
		return nil, fmt.Errorf("protocol: key switch: %w", err)
	}
	x.active = ids
	return req, nil
}

// KeySwitch combines the key-switch shares of the last request's active
// set, one from each, into the aggregate under the recipient's key. A
// missing share wraps [mhe.ErrMissingParty]: request again with another
// active set.
func (x *Encrypted) KeySwitch(shares []*mhe.PCKSShareMsg) (*mhe.ResultMsg, error) {
	if x.agg == nil || x.active == nil {
		return nil, fmt.Errorf("%w: key-switch shares before the request", ErrWrongRound)
	}
	res, err := x.agg.KeySwitch(x.active, shares)
	if err != nil {
		return nil, fmt.Errorf("protocol: key switch: %w", err)
	}
	return res, nil
}

// ReleaseDecrypted releases the Result of an aggregation encrypted (or
// oblivious) session from the decrypted (unmasked) aggregate vector sum (the L totals in Z_2^64, as
// [mhe.Recipient.Decrypt] returns them) and the join's counts, applying the
// reveal list and min_cell exactly as [Engine.Release] does in masked mode.
// leftOut lists the parties (spec indices) left out of the aggregate under
// the dropout rule leave_out; the Result names them, and an aggregate all of
// whose contributing parties were left out is released as unavailable
// ([session.Layout.ReleaseWithout]). Afterwards Release
// returns the same Result.
func (e *Engine) ReleaseDecrypted(sum []uint64, leftOut []int) (*session.Result, error) {
	if e.result != nil {
		return nil, fmt.Errorf("%w: result already released", ErrWrongRound)
	}
	if e.spec.Aggregation == session.AggregationMasked || e.join == nil {
		return nil, fmt.Errorf("%w: release of a computed sum in %s aggregation", ErrWrongRound, e.spec.Aggregation)
	}
	if len(sum) != e.layout.Len() {
		return nil, fmt.Errorf("%w: decrypted aggregate has length %d, want %d", ErrBadMessage, len(sum), e.layout.Len())
	}
	var names []string
	for _, i := range leftOut {
		if err := e.party(i); err != nil {
			return nil, err
		}
		names = append(names, e.spec.Parties[i])
	}
	if len(names) > 0 && e.spec.Dropout != session.DropoutLeaveOut {
		return nil, fmt.Errorf("%w: parties left out under dropout rule %q", ErrWrongRound, e.spec.Dropout)
	}
	// An aggregate whose every contributing party was left out is
	// unavailable: its slots hold zero, not its value.
	r, err := e.layout.ReleaseWithout(e.join.Intersection, e.join.Pairwise, sum, leftOut)
	if err != nil {
		return nil, err
	}
	e.releaseLinkage(r)
	r.LeftOut = names
	e.result = r
	return r, nil
}

// AggregatesReleased reports whether the release will show any aggregate
// derived from the decrypted sum: the spec reveals aggregates, declares
// some, I is not empty and min_cell does not suppress it. It needs the join. When it is
// false, aggregation encrypted decrypts nothing ([Engine.ReleaseDecrypted]
// with a zero vector).
func (e *Engine) AggregatesReleased() bool {
	if e.join == nil || !e.spec.Reveals(session.RevealAggregates) || e.layout.Len() == 0 {
		return false
	}
	// With I empty every total is 0: nothing to decrypt either.
	return e.join.Intersection > 0 && e.join.Intersection >= e.spec.MinCell
}

// Drop leaves party i out of the encrypted aggregate (dropout rule
// leave_out): it vanished before all its ciphertexts were in.
func (x *Encrypted) Drop(i int) error {
	if err := x.e.party(i); err != nil {
		return err
	}
	if x.e.spec.Dropout != session.DropoutLeaveOut {
		return fmt.Errorf("%w: dropout rule is %q", ErrWrongRound, x.e.spec.Dropout)
	}
	if x.agg != nil {
		return fmt.Errorf("%w: the aggregate is already evaluated", ErrWrongRound)
	}
	acc, err := x.accumulator()
	if err != nil {
		return err
	}
	return acc.Drop(mhe.PartyID(i))
}

// accumulator returns the accumulator, made on first use once the keys and
// the join are done.
func (x *Encrypted) accumulator() (*mhe.Accumulator, error) {
	if x.acc == nil {
		if !x.keyed || x.e.join == nil || x.agg != nil {
			return nil, fmt.Errorf("%w: ciphertexts before the keys and the join, or after the evaluation", ErrWrongRound)
		}
		acc, err := x.coord.NewAccumulator(x.e.indicators())
		if err != nil {
			return nil, err
		}
		x.acc = acc
	}
	return x.acc, nil
}
