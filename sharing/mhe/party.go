package mhe

import (
	"fmt"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	lmhe "github.com/tuneinsight/lattigo/v5/mhe"
	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/ring/ringqp"
	"github.com/tuneinsight/lattigo/v5/schemes/bgv"
)

// PartyKeys is a party's secret key material: its RLWE secret key share
// sk_i (the collective key is Σ sk_i) and, with a threshold, its aggregated
// Shamir share of Σ sk_i. It is SECRET, is never serialised, and exists only
// inside a [Party].
type PartyKeys struct {
	sk  *rlwe.SecretKey
	tsk *lmhe.ShamirSecretShare // nil until AggregateThresholdShares (threshold mode only)
}

// Party is one data holder's side of the encrypted aggregation. Create it
// with [NewParty]; it holds [PartyKeys]. A Party is not safe for concurrent
// use.
type Party struct {
	params  *Params
	session SessionID
	id      PartyID
	keys    PartyKeys

	// Threshold setup state: the Shamir polynomial lives only between
	// GenThresholdShares and AggregateThresholdShares.
	shamir        *lmhe.ShamirPolynomial
	ownShare      *lmhe.ShamirSecretShare
	thresholdSent bool

	cpk *rlwe.PublicKey // verified collective public key
}

// NewParty returns party id of the session with a fresh secret key sampled
// by lattigo's key generator (seeded from crypto/rand).
func NewParty(params *Params, session SessionID, id PartyID) (*Party, error) {
	if params == nil {
		return nil, fmt.Errorf("%w: nil params", ErrInvalidArgument)
	}
	if int(id) >= params.Parties() {
		return nil, fmt.Errorf("%w: party id %d, want < %d", ErrInvalidArgument, id, params.Parties())
	}
	sk := rlwe.NewKeyGenerator(params.bgv).GenSecretKeyNew()
	return &Party{params: params, session: session, id: id, keys: PartyKeys{sk: sk}}, nil
}

// ID returns the party's id.
func (p *Party) ID() PartyID { return p.id }

func ckgCRP(params *Params, session SessionID) (lmhe.PublicKeyGenCRP, error) {
	crs, err := newCRS(session, crsCKG, 0)
	if err != nil {
		return lmhe.PublicKeyGenCRP{}, err
	}
	return lmhe.NewPublicKeyGenProtocol(params.bgv).SampleCRP(crs), nil
}

func gkgCRP(gkg lmhe.GaloisKeyGenProtocol, session SessionID, galEl uint64) (lmhe.GaloisKeyGenCRP, error) {
	crs, err := newCRS(session, crsGKG, galEl)
	if err != nil {
		return lmhe.GaloisKeyGenCRP{}, err
	}
	return gkg.SampleCRP(crs), nil
}

// GenCKGShare returns the party's share of the collective public key
// (round "ckg"), computed from sk_i and the CKG common reference polynomial
// derived from the session id.
func (p *Party) GenCKGShare() (*CKGShareMsg, error) {
	ckg := lmhe.NewPublicKeyGenProtocol(p.params.bgv)
	crp, err := ckgCRP(p.params, p.session)
	if err != nil {
		return nil, err
	}
	m := p.params.NewCKGShareMsg()
	m.Session, m.From = p.session, p.id
	ckg.GenShare(p.keys.sk, crp, &m.Share)
	return m, nil
}

// GenGaloisShares returns the party's shares of the Galois keys the
// coordinator needs for Trace (round "gkg"), one per element of
// [Params.GaloisElements], each from its own common reference polynomial.
func (p *Party) GenGaloisShares() (*GaloisSharesMsg, error) {
	gkg := lmhe.NewGaloisKeyGenProtocol(p.params.bgv)
	m := p.params.NewGaloisSharesMsg()
	m.Session, m.From = p.session, p.id
	for i, g := range p.params.galEls {
		crp, err := gkgCRP(gkg, p.session, g)
		if err != nil {
			return nil, err
		}
		if err := gkg.GenShare(p.keys.sk, g, crp, &m.Shares[i]); err != nil {
			return nil, fmt.Errorf("mhe: gkg: %v", err)
		}
	}
	return m, nil
}

// GenThresholdShares starts the t-of-n setup (round "threshold"): it draws
// a Shamir polynomial of degree t−1 with constant term sk_i (lattigo's
// Thresholdizer) and returns one share for every other party, evaluated at
// that party's point id+1. The messages are SECRET and must be sealed to
// their recipients. It may be called once, and only with a threshold t < n.
func (p *Party) GenThresholdShares() ([]*ThresholdShareMsg, error) {
	if !p.params.IsThreshold() {
		return nil, fmt.Errorf("%w: parameters have no threshold", ErrWrongState)
	}
	if p.thresholdSent {
		return nil, fmt.Errorf("%w: threshold shares already generated", ErrWrongState)
	}
	thr := lmhe.NewThresholdizer(p.params.bgv)
	poly, err := thr.GenShamirPolynomial(p.params.Threshold(), p.keys.sk)
	if err != nil {
		return nil, fmt.Errorf("mhe: threshold: %v", err)
	}
	p.thresholdSent = true
	own := thr.AllocateThresholdSecretShare()
	thr.GenShamirSecretShare(lmhe.ShamirPublicPoint(point(p.id)), poly, &own)
	p.ownShare = &own
	out := make([]*ThresholdShareMsg, 0, p.params.Parties()-1)
	for j := 0; j < p.params.Parties(); j++ {
		if PartyID(j) == p.id {
			continue
		}
		m := p.params.NewThresholdShareMsg()
		m.Session, m.From, m.To = p.session, p.id, PartyID(j)
		thr.GenShamirSecretShare(lmhe.ShamirPublicPoint(point(PartyID(j))), poly, &m.Share)
		out = append(out, m)
	}
	for _, c := range poly.Value {
		zeroQP(c)
	}
	return out, nil
}

// AggregateThresholdShares completes the t-of-n setup: it checks that in
// holds exactly one share from every other party, addressed to p, and sums
// them with p's own share into p's Shamir share of the collective secret
// key. It may be called once, after GenThresholdShares.
func (p *Party) AggregateThresholdShares(in []*ThresholdShareMsg) error {
	if !p.thresholdSent || p.ownShare == nil {
		return fmt.Errorf("%w: generate threshold shares first (or already aggregated)", ErrWrongState)
	}
	n := p.params.Parties()
	if len(in) != n-1 {
		return fmt.Errorf("%w: %d threshold shares, want %d", ErrMissingParty, len(in), n-1)
	}
	seen := make([]bool, n)
	for i, m := range in {
		if m == nil {
			return &PeerError{Party: PartyID(i), Round: "threshold", Err: fmt.Errorf("%w: nil message", ErrMalformedMessage)}
		}
		if err := p.params.checkMsg(m.params, m.Session, p.session, qpRows(m.Share.Poly, p.params)); err != nil {
			return &PeerError{Party: m.From, Round: "threshold", Err: err}
		}
		if int(m.From) >= n || m.From == p.id || m.To != p.id {
			return &PeerError{Party: m.From, Round: "threshold", Err: fmt.Errorf("%w: share from %d to %d", ErrMalformedMessage, m.From, m.To)}
		}
		if seen[m.From] {
			return &PeerError{Party: m.From, Round: "threshold", Err: ErrDuplicateSender}
		}
		seen[m.From] = true
	}
	thr := lmhe.NewThresholdizer(p.params.bgv)
	acc := thr.AllocateThresholdSecretShare()
	acc.Copy(p.ownShare.Poly)
	for _, m := range in {
		if err := thr.AggregateShares(acc, m.Share, &acc); err != nil {
			return fmt.Errorf("mhe: threshold: %v", err)
		}
	}
	zeroQP(p.ownShare.Poly)
	p.ownShare = nil
	p.keys.tsk = &acc
	return nil
}

// verifyPublicKey checks a collective public key from the coordinator: the
// session, the shape, and that its second polynomial is the CKG common
// reference polynomial of this session.
func (p *Party) verifyPublicKey(cpk *PublicKeyMsg) error {
	if cpk == nil {
		return fmt.Errorf("%w: nil public key", ErrInvalidArgument)
	}
	if p.cpk != nil && cpk.Key == p.cpk {
		return nil
	}
	ps, err := pkRows(cpk.Key, p.params)
	if err != nil {
		return err
	}
	if err := p.params.checkMsg(cpk.params, cpk.Session, p.session, ps); err != nil {
		return err
	}
	crp, err := ckgCRP(p.params, p.session)
	if err != nil {
		return err
	}
	if !cpk.Key.Value[1].Equal(&crp.Value) {
		return fmt.Errorf("%w: public key does not match this session's common reference polynomial", ErrMalformedMessage)
	}
	p.cpk = cpk.Key
	return nil
}

// EncryptContributions encrypts the party's contributions under the
// collective public key cpk (round "contribute"). contribs[pos] is the
// contribution vector (length L) of the record at position pos of the
// party's shuffled order; each value is read as a two's-complement int64 and
// must satisfy |c_j| ≤ MaxAbs[j]; len(contribs) ≤ MaxRecords (0 is allowed
// and yields one encryption of zero). Positions are packed B per ciphertext
// into coefficients: component j of position s sits at coefficient
// (j·B − s) mod N, negated when the index wraps, so that multiplying by the
// indicator Σ_s ind_s X^s puts Σ_s ind_s c_{s,j} at coefficient j·B. It
// returns ⌈len(contribs)/B⌉ ciphertexts (at least one).
func (p *Party) EncryptContributions(cpk *PublicKeyMsg, contribs [][]uint64) ([]*CiphertextMsg, error) {
	var out []*CiphertextMsg
	err := p.EncryptContributionsFunc(cpk, contribs, func(m *CiphertextMsg) error {
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// EncryptContributionsFunc is [Party.EncryptContributions] handing each
// ciphertext to emit as soon as it is made, in index order, so that the
// party never holds all of them (about 800 bytes per record in Profile A).
// It stops at emit's first error and returns it. The inputs are all checked
// before the first ciphertext is emitted.
func (p *Party) EncryptContributionsFunc(cpk *PublicKeyMsg, contribs [][]uint64, emit func(*CiphertextMsg) error) error {
	if err := p.verifyPublicKey(cpk); err != nil {
		return err
	}
	pr := p.params
	L, T := pr.Components(), pr.lit.PlaintextModulus
	if len(contribs) > pr.MaxRecords() {
		return fmt.Errorf("%w: %d records, more than max_records = %d", ErrInvalidArgument, len(contribs), pr.MaxRecords())
	}
	for pos, row := range contribs {
		if len(row) != L {
			return fmt.Errorf("%w: contribution %d has length %d, want %d", ErrInvalidArgument, pos, len(row), L)
		}
		for j, u := range row {
			if absInt64(u) > pr.lit.MaxAbs[j] {
				return fmt.Errorf("%w: contribution %d, component %d exceeds max_abs[%d] = %d", ErrInvalidArgument, pos, j, j, pr.lit.MaxAbs[j])
			}
		}
	}

	N, B := pr.N(), pr.b
	count := pr.CiphertextCount(len(contribs))
	ecd := bgv.NewEncoder(pr.bgv)
	enc := bgv.NewEncryptor(pr.bgv, cpk.Key)
	pt := bgv.NewPlaintext(pr.bgv, pr.bgv.MaxLevel())
	pt.IsBatched = false
	vals := make([]uint64, N)
	for c := 0; c < count; c++ {
		clear(vals)
		for s := 0; s < B; s++ {
			pos := c*B + s
			if pos >= len(contribs) {
				break
			}
			for j, u := range contribs[pos] {
				v := modT(u, T)
				idx := j*B - s
				if idx < 0 {
					// X^{-s} = −X^{N−s}
					idx += N
					if v != 0 {
						v = T - v
					}
				}
				vals[idx] = v
			}
		}
		if err := ecd.Encode(vals, pt); err != nil {
			return fmt.Errorf("mhe: encode: %v", err)
		}
		m := &CiphertextMsg{Session: p.session, From: p.id, Index: uint32(c), Count: uint32(count), params: pr}
		m.Ct = pr.newCiphertext(pr.bgv.MaxLevel(), pr.bgv.DefaultScale())
		if err := enc.Encrypt(pt, m.Ct); err != nil {
			return fmt.Errorf("mhe: encrypt: %v", err)
		}
		if err := emit(m); err != nil {
			clear(vals)
			return err
		}
	}
	clear(vals)
	return nil
}

// GenPCKSShare returns the party's share of the public-key switch of the
// aggregate to the recipient's key (round "pcks"), with smudging noise of
// standard deviation 2^LogSmudgingSigma. req.Active must list exactly t
// parties including p; with a threshold, p first turns its Shamir share into
// an additive share for that active set (lattigo's Combiner), so every
// active party must use the identical list. A party may be asked again with
// another active set if one drops out.
func (p *Party) GenPCKSShare(req *PCKSRequestMsg, rpk *RecipientKeyMsg) (*PCKSShareMsg, error) {
	pr := p.params
	if req == nil || rpk == nil {
		return nil, fmt.Errorf("%w: nil request or recipient key", ErrInvalidArgument)
	}
	if err := pr.checkMsg(req.params, req.Session, p.session, []rows{polyRows(req.C1, pr.bgv.Q()[:pr.resultLevel+1])}); err != nil {
		return nil, err
	}
	rps, err := pkRows(rpk.Key, pr)
	if err != nil {
		return nil, err
	}
	if err := pr.checkMsg(rpk.params, rpk.Session, p.session, rps); err != nil {
		return nil, err
	}
	if err := pr.checkActive(req.Active); err != nil {
		return nil, err
	}
	member := false
	for _, a := range req.Active {
		member = member || a == p.id
	}
	if !member {
		return nil, fmt.Errorf("%w: party %d is not in the active set", ErrInvalidArgument, p.id)
	}

	sk := p.keys.sk
	if pr.IsThreshold() {
		if p.keys.tsk == nil {
			return nil, fmt.Errorf("%w: threshold setup not completed", ErrWrongState)
		}
		all := make([]lmhe.ShamirPublicPoint, pr.Parties())
		for j := range all {
			all[j] = lmhe.ShamirPublicPoint(point(PartyID(j)))
		}
		active := make([]lmhe.ShamirPublicPoint, len(req.Active))
		for i, a := range req.Active {
			active[i] = lmhe.ShamirPublicPoint(point(a))
		}
		own := lmhe.ShamirPublicPoint(point(p.id))
		cmb := lmhe.NewCombiner(*pr.bgv.GetRLWEParameters(), own, all, pr.Threshold())
		sk = rlwe.NewSecretKey(pr.bgv)
		if err := cmb.GenAdditiveShare(active, own, *p.keys.tsk, sk); err != nil {
			return nil, fmt.Errorf("mhe: combine: %v", err)
		}
		defer zeroQP(sk.Value)
	}

	pcks, err := lmhe.NewPublicKeySwitchProtocol(pr.bgv, pr.smudging)
	if err != nil {
		return nil, fmt.Errorf("mhe: pcks: %v", err)
	}
	ct := pr.newCiphertext(pr.resultLevel, pr.resultScale)
	ct.Value[1] = req.C1
	m := pr.NewPCKSShareMsg()
	m.Session, m.From = p.session, p.id
	pcks.GenShare(sk, rpk.Key, ct, &m.Share)
	return m, nil
}

// checkMsg verifies that a message was allocated for the same parameters,
// names the expected session, and has the prescribed shape.
func (p *Params) checkMsg(mp *Params, got, want SessionID, ps []rows) error {
	if mp == nil || mp.id != p.id {
		return fmt.Errorf("%w: message allocated for other parameters", ErrInvalidArgument)
	}
	if got != want {
		return ErrWrongSession
	}
	return checkShape(ps, p.N())
}

// absInt64 returns |int64(u)| as a uint64 (2^63 for the minimum int64).
func absInt64(u uint64) uint64 {
	if int64(u) < 0 {
		return -u
	}
	return u
}

// modT reduces the two's-complement value u modulo T. Callers have checked
// |u| < T/2.
func modT(u, T uint64) uint64 {
	if int64(u) < 0 {
		a := (-u) % T
		if a == 0 {
			return 0
		}
		return T - a
	}
	return u % T
}

// zeroQP overwrites a polynomial's coefficients (best effort: Go may have
// copied them).
func zeroQP(p ringqp.Poly) {
	zeroPoly(p.Q)
	zeroPoly(p.P)
}

func zeroPoly(p ring.Poly) {
	for _, r := range p.Coeffs {
		clear(r)
	}
}
