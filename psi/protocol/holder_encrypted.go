package protocol

import (
	"fmt"

	"github.com/mpsi-dev/mpsi/sharing"
	"github.com/mpsi-dev/mpsi/sharing/mhe"
)

// EncryptedHolder is a party's side of step 4 with aggregation encrypted
// (doc/DESIGN.md §4, "Encrypted aggregation"): its share of the collective secret
// key (inside an [mhe.Party]) and the contribution vector of EVERY one of its
// records, in its secret shuffled order, shared or not. It never receives
// or holds intersection positions: no method takes them, and the
// coordinator applies the 0/1 indicators to the ciphertexts. The party
// therefore learns nothing about which of its records are shared, and its
// Result holds no members (the spec refuses reveal: membership in this
// mode).
//
// Its rounds, in order: [EncryptedHolder.GenCKGShare] and
// [EncryptedHolder.GenGaloisShares] (to the coordinator); with a threshold
// t < n, [EncryptedHolder.GenThresholdShares] (each sealed to its addressee)
// and [EncryptedHolder.AggregateThresholdShares]; then
// [EncryptedHolder.EncryptContributions] under the collective public key;
// then, if the party is in the active set, [EncryptedHolder.GenPCKSShare].
//
// The key share and the contributions are secret. An EncryptedHolder is not
// safe for concurrent use.
type EncryptedHolder struct {
	name     string
	params   *mhe.Params
	mp       *mhe.Party
	contribs [][]uint64 // SECRET; nil once encrypted
}

// Encrypted starts the holder's side of aggregation encrypted, once the set
// sizes are declared: maxRecords is the largest declared set size, from
// which the party derives the parameters itself
// ([EncryptedParams]). It computes the contribution vector of
// every record in the shuffled order ([session.Layout.Contribute]) and draws
// a fresh secret-key share.
func (p *Holder) Encrypted(maxRecords int) (*EncryptedHolder, error) {
	if maxRecords < p.SetSize() {
		return nil, fmt.Errorf("protocol: largest declared set size %d is below the party's own %d", maxRecords, p.SetSize())
	}
	params, id, err := EncryptedParams(p.spec, maxRecords)
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
			return nil, newRecordError(p.recs.ID(ri), err)
		}
		contribs[pos] = c
	}
	if p.spec.NoiseRows() > 0 {
		// Privacy: one more row, the party's noise, which the coordinator's
		// indicator always counts; clipped at NoiseTail·σ so that it fits
		// the parameters (beyond that the discrete Gaussian has mass below
		// 10^-31).
		e := make(sharing.Vector, L)
		if err := p.addNoise(e); err != nil {
			return nil, err
		}
		bounds := p.spec.NoiseBounds()
		for j, v := range e {
			b := int64(bounds[j])
			e[j] = uint64(min(max(int64(v), -b), b))
		}
		contribs = append(contribs, e)
	}
	return &EncryptedHolder{name: p.name, params: params, mp: mp, contribs: contribs}, nil
}

// Params returns the session's encryption parameters.
func (e *EncryptedHolder) Params() *mhe.Params { return e.params }

// GenCKGShare returns the party's share of the collective public key.
func (e *EncryptedHolder) GenCKGShare() (*mhe.CKGShareMsg, error) { return e.mp.GenCKGShare() }

// GenGaloisShares returns the party's shares of the Galois keys the
// coordinator needs for Trace.
func (e *EncryptedHolder) GenGaloisShares() (*mhe.GaloisSharesMsg, error) {
	return e.mp.GenGaloisShares()
}

// GenThresholdShares returns the party's Shamir shares of its key share,
// one for every other party; each is SECRET and must be sealed to its
// addressee. Only with a threshold t < n.
func (e *EncryptedHolder) GenThresholdShares() ([]*mhe.ThresholdShareMsg, error) {
	return e.mp.GenThresholdShares()
}

// AggregateThresholdShares completes the t-of-n setup with the shares
// addressed to the party by every other party.
func (e *EncryptedHolder) AggregateThresholdShares(in []*mhe.ThresholdShareMsg) error {
	return e.mp.AggregateThresholdShares(in)
}

// EncryptContributions encrypts the party's contributions, position by
// position in its shuffled order and packed into polynomial coefficients,
// under the collective public key pk (which the party checks against the
// session's common reference string). It runs once; the plaintext
// contributions are dropped afterwards.
func (e *EncryptedHolder) EncryptContributions(pk *mhe.PublicKeyMsg) ([]*mhe.CiphertextMsg, error) {
	var cts []*mhe.CiphertextMsg
	err := e.EncryptContributionsFunc(pk, func(m *mhe.CiphertextMsg) error {
		cts = append(cts, m)
		return nil
	})
	return cts, err
}

// EncryptContributionsFunc is [EncryptedHolder.EncryptContributions] handing
// each ciphertext to emit as soon as it is made (see
// [mhe.Party.EncryptContributionsFunc]); the network client sends them one
// by one rather than holding them all.
func (e *EncryptedHolder) EncryptContributionsFunc(pk *mhe.PublicKeyMsg, emit func(*mhe.CiphertextMsg) error) error {
	if e.contribs == nil {
		return ErrStateConsumed
	}
	err := e.mp.EncryptContributionsFunc(pk, e.contribs, emit)
	for _, c := range e.contribs {
		clear(c)
	}
	e.contribs = nil
	if err != nil {
		return fmt.Errorf("protocol: %s: encrypting contributions: %w", e.name, err)
	}
	return nil
}

// GenPCKSShare returns the party's share of the switch of the aggregate to
// the recipient's key rk, with smudging noise, for a request naming the
// party in its active set.
func (e *EncryptedHolder) GenPCKSShare(req *mhe.PCKSRequestMsg, rk *mhe.RecipientKeyMsg) (*mhe.PCKSShareMsg, error) {
	return e.mp.GenPCKSShare(req, rk)
}
