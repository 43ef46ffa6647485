package party

import (
	"context"
	"fmt"
	"time"

	"github.com/mpsi-dev/mpsi/coordinator"
	"github.com/mpsi-dev/mpsi/psi/session"
	"github.com/mpsi-dev/mpsi/sharing/mhe"
)

// EncryptedParty is a party's side of step 4 with aggregation encrypted
// (DESIGN §4, "Encrypted aggregation"): its share of the collective secret
// key (inside an [mhe.Party]) and the contribution vector of EVERY one of its
// records, in its secret shuffled order, shared or not. It never receives
// or holds intersection positions: no method takes them, and the
// coordinator applies the 0/1 indicators to the ciphertexts. The party
// therefore learns nothing about which of its records are shared, and its
// Result holds no members (the spec refuses reveal: membership in this
// mode).
//
// Its rounds, in order: [EncryptedParty.GenCKGShare] and
// [EncryptedParty.GenGaloisShares] (to the coordinator); with a threshold
// t < n, [EncryptedParty.GenThresholdShares] (each sealed to its addressee)
// and [EncryptedParty.AggregateThresholdShares]; then
// [EncryptedParty.EncryptContributions] under the collective public key;
// then, if the party is in the active set, [EncryptedParty.GenPCKSShare].
//
// The key share and the contributions are secret. An EncryptedParty is not
// safe for concurrent use.
type EncryptedParty struct {
	name     string
	params   *mhe.Params
	mp       *mhe.Party
	contribs [][]uint64 // SECRET; nil once encrypted
}

// Encrypted starts the party's side of aggregation encrypted, once the set
// sizes are declared: maxRecords is the largest declared set size, from
// which the party derives the parameters itself
// ([coordinator.EncryptedParams]). It computes the contribution vector of
// every record in the shuffled order ([session.Layout.Contribute]) and draws
// a fresh secret-key share.
func (p *Party) Encrypted(maxRecords int) (*EncryptedParty, error) {
	if maxRecords < p.SetSize() {
		return nil, fmt.Errorf("party: largest declared set size %d is below the party's own %d", maxRecords, p.SetSize())
	}
	params, id, err := coordinator.EncryptedParams(p.spec, maxRecords)
	if err != nil {
		return nil, err
	}
	mp, err := mhe.NewParty(params, id, mhe.PartyID(p.index))
	if err != nil {
		return nil, err
	}
	L := p.layout.Len()
	slab := make([]uint64, L*len(p.perm))
	contribs := make([][]uint64, len(p.perm))
	for pos, r := range p.perm {
		ri := int(r)
		c := slab[pos*L : (pos+1)*L : (pos+1)*L]
		get := func(field string) string { return p.recs.Value(ri, field) }
		if err := p.layout.Contribute(p.index, get, c); err != nil {
			return nil, fmt.Errorf("party: record %s: %w", p.recs.ID(ri), err)
		}
		contribs[pos] = c
	}
	return &EncryptedParty{name: p.name, params: params, mp: mp, contribs: contribs}, nil
}

// Params returns the session's encryption parameters.
func (e *EncryptedParty) Params() *mhe.Params { return e.params }

// GenCKGShare returns the party's share of the collective public key.
func (e *EncryptedParty) GenCKGShare() (*mhe.CKGShareMsg, error) { return e.mp.GenCKGShare() }

// GenGaloisShares returns the party's shares of the Galois keys the
// coordinator needs for Trace.
func (e *EncryptedParty) GenGaloisShares() (*mhe.GaloisSharesMsg, error) {
	return e.mp.GenGaloisShares()
}

// GenThresholdShares returns the party's Shamir shares of its key share,
// one for every other party; each is SECRET and must be sealed to its
// addressee. Only with a threshold t < n.
func (e *EncryptedParty) GenThresholdShares() ([]*mhe.ThresholdShareMsg, error) {
	return e.mp.GenThresholdShares()
}

// AggregateThresholdShares completes the t-of-n setup with the shares
// addressed to the party by every other party.
func (e *EncryptedParty) AggregateThresholdShares(in []*mhe.ThresholdShareMsg) error {
	return e.mp.AggregateThresholdShares(in)
}

// EncryptContributions encrypts the party's contributions, position by
// position in its shuffled order and packed into polynomial coefficients,
// under the collective public key pk (which the party checks against the
// session's common reference string). It runs once; the plaintext
// contributions are dropped afterwards.
func (e *EncryptedParty) EncryptContributions(pk *mhe.PublicKeyMsg) ([]*mhe.CiphertextMsg, error) {
	var cts []*mhe.CiphertextMsg
	err := e.EncryptContributionsFunc(pk, func(m *mhe.CiphertextMsg) error {
		cts = append(cts, m)
		return nil
	})
	return cts, err
}

// EncryptContributionsFunc is [EncryptedParty.EncryptContributions] handing
// each ciphertext to emit as soon as it is made (see
// [mhe.Party.EncryptContributionsFunc]); the network client sends them one
// by one rather than holding them all.
func (e *EncryptedParty) EncryptContributionsFunc(pk *mhe.PublicKeyMsg, emit func(*mhe.CiphertextMsg) error) error {
	if e.contribs == nil {
		return ErrStateConsumed
	}
	err := e.mp.EncryptContributionsFunc(pk, e.contribs, emit)
	for _, c := range e.contribs {
		clear(c)
	}
	e.contribs = nil
	if err != nil {
		return fmt.Errorf("party: %s: encrypting contributions: %w", e.name, err)
	}
	return nil
}

// GenPCKSShare returns the party's share of the switch of the aggregate to
// the recipient's key rk, with smudging noise, for a request naming the
// party in its active set.
func (e *EncryptedParty) GenPCKSShare(req *mhe.PCKSRequestMsg, rk *mhe.RecipientKeyMsg) (*mhe.PCKSShareMsg, error) {
	return e.mp.GenPCKSShare(req, rk)
}

// runEncrypted is step 4 and the release of [RunLocal] with aggregation
// encrypted, after the join. The parties get no positions: each encrypts
// all its records' contributions and the coordinator weights them with the
// indicators. The recipient of the result is a key pair held by the runner
// itself, standing for the release step (the researcher who receives the
// aggregates): it decrypts the L totals and hands them to the coordinator's
// release, which applies the reveal list and min_cell. This gives the
// release step what the coordinator sees in masked mode (Σ x_i), no more.
// With a threshold t < n, only parties 0..t−1 (spec order) take part in the
// key switch; the others are gone once their ciphertexts are sent.
//
// When the aggregates are not revealed (or none are declared) nothing is
// encrypted or decrypted: the release gets a zero vector, which it ignores.
func runEncrypted(ctx context.Context, parties []*Party, eng *coordinator.Engine, cfg Config, t time.Time) (*Outcome, error) {
	spec := eng.Layout().Spec()
	sum := make([]uint64, eng.Layout().Len())
	if spec.Reveals(session.RevealAggregates) && len(sum) > 0 {
		var err error
		if sum, err = encryptedAggregate(ctx, parties, eng); err != nil {
			return nil, err
		}
	}
	t = cfg.phase("aggregation", t)
	res, err := eng.ReleaseDecrypted(sum, nil)
	if err != nil {
		return nil, err
	}
	cfg.phase("release", t)
	out := &Outcome{Result: res, Parties: map[string]*session.Result{}}
	for _, p := range parties {
		r := *res
		out.Parties[p.name] = &r
	}
	return out, nil
}

// encryptedAggregate runs the encrypted rounds in process and returns the
// recipient's decryption of the aggregate.
func encryptedAggregate(ctx context.Context, parties []*Party, eng *coordinator.Engine) ([]uint64, error) {
	n := len(parties)
	x, err := eng.StartEncrypted()
	if err != nil {
		return nil, err
	}
	largest := 0
	for i := range parties {
		largest = max(largest, eng.Size(i))
	}
	eps := make([]*EncryptedParty, n)
	for i, p := range parties {
		if eps[i], err = p.Encrypted(largest); err != nil {
			return nil, err
		}
	}
	// Keys: collective public key and Galois keys.
	ckg := make([]*mhe.CKGShareMsg, n)
	gkg := make([]*mhe.GaloisSharesMsg, n)
	for i, ep := range eps {
		if ckg[i], err = ep.GenCKGShare(); err != nil {
			return nil, err
		}
		if gkg[i], err = ep.GenGaloisShares(); err != nil {
			return nil, err
		}
	}
	pk, err := x.AggregateKeys(ckg, gkg)
	if err != nil {
		return nil, err
	}
	if x.Params().IsThreshold() {
		// Shamir shares go from party to party, sealed, over the network.
		inbox := make([][]*mhe.ThresholdShareMsg, n)
		for _, ep := range eps {
			out, err := ep.GenThresholdShares()
			if err != nil {
				return nil, err
			}
			for _, m := range out {
				inbox[m.To] = append(inbox[m.To], m)
			}
		}
		for i, ep := range eps {
			if err := ep.AggregateThresholdShares(inbox[i]); err != nil {
				return nil, err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Contributions, weighted by the coordinator's indicators.
	for i, ep := range eps {
		cts, err := ep.EncryptContributions(pk)
		if err != nil {
			return nil, err
		}
		for _, m := range cts {
			if err := x.AddCiphertext(i, m); err != nil {
				return nil, err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !eng.AggregatesReleased() {
		// I is empty or below min_cell: nothing derived from the sum is
		// released, so nothing is decrypted.
		return make([]uint64, eng.Layout().Len()), nil
	}
	// Key switch by t parties to the recipient's key; the recipient decrypts.
	recipient, rk, err := mhe.NewRecipient(x.Params(), x.Session())
	if err != nil {
		return nil, err
	}
	active := make([]int, x.Params().Threshold())
	for k := range active {
		active[k] = k
	}
	req, err := x.PCKSRequest(active)
	if err != nil {
		return nil, err
	}
	shares := make([]*mhe.PCKSShareMsg, len(active))
	for k, i := range active {
		if shares[k], err = eps[i].GenPCKSShare(req, rk); err != nil {
			return nil, err
		}
	}
	res, err := x.KeySwitch(shares)
	if err != nil {
		return nil, err
	}
	sum, err := recipient.Decrypt(res)
	if err != nil {
		return nil, fmt.Errorf("party: decrypting the aggregate: %w", err)
	}
	return sum, nil
}
