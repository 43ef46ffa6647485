package mhe

import (
	"encoding/binary"
	"fmt"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	lmhe "github.com/tuneinsight/lattigo/v5/mhe"
	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/schemes/bgv"
)

// Messages. Each message type is allocated by a Params method (for example
// [Params.NewCiphertextMsg]) because its encoded length and the ranges of its
// coefficients depend on the parameters; UnmarshalBinary on a message that
// was not allocated that way returns an error wrapping [ErrInvalidArgument].
// UnmarshalBinary checks the exact length, the header, every fixed field and
// every coefficient before anything reaches lattigo; on error the message
// must be discarded. No message holds a secret except [ThresholdShareMsg],
// which must travel sealed to its recipient.

// CKGShareMsg is a party's share of the collective public key (lattigo's
// PublicKeyGenShare), sent to the coordinator.
type CKGShareMsg struct {
	Session SessionID
	From    PartyID
	Share   lmhe.PublicKeyGenShare

	params *Params
}

// NewCKGShareMsg allocates an empty CKGShareMsg for p.
func (p *Params) NewCKGShareMsg() *CKGShareMsg {
	return &CKGShareMsg{Share: lmhe.PublicKeyGenShare{Value: p.bgv.RingQP().NewPoly()}, params: p}
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (m *CKGShareMsg) MarshalBinary() ([]byte, error) {
	return marshalMsg(m.params, typeCKGShare, m.Session, m.From, nil, qpRows(m.Share.Value, m.params))
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler; see the Messages
// section of the package documentation for the checks.
func (m *CKGShareMsg) UnmarshalBinary(b []byte) error {
	var err error
	m.Session, m.From, _, err = unmarshalMsg(m.params, b, typeCKGShare, 0, qpRows(m.Share.Value, m.params))
	return err
}

// PublicKeyMsg carries the collective public key from the coordinator to the
// parties. Its second polynomial is the CKG common reference polynomial,
// which every party re-derives and compares.
type PublicKeyMsg struct {
	Session SessionID
	Key     *rlwe.PublicKey

	params *Params
}

// NewPublicKeyMsg allocates an empty PublicKeyMsg for p.
func (p *Params) NewPublicKeyMsg() *PublicKeyMsg {
	return &PublicKeyMsg{Key: rlwe.NewPublicKey(p.bgv), params: p}
}

func pkRows(pk *rlwe.PublicKey, params *Params) ([]rows, error) {
	if pk == nil || len(pk.Value) != 2 {
		return nil, fmt.Errorf("%w: public key is not a pair of polynomials", ErrInvalidArgument)
	}
	return vectorQPRows(pk.Value, params), nil
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (m *PublicKeyMsg) MarshalBinary() ([]byte, error) {
	ps, err := pkRows(m.Key, m.params)
	if err != nil {
		return nil, err
	}
	return marshalMsg(m.params, typePublicKey, m.Session, 0, nil, ps)
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (m *PublicKeyMsg) UnmarshalBinary(b []byte) error {
	ps, err := pkRows(m.Key, m.params)
	if err != nil {
		return err
	}
	var from PartyID
	if m.Session, from, _, err = unmarshalMsg(m.params, b, typePublicKey, 0, ps); err != nil {
		return err
	}
	if from != 0 {
		return fmt.Errorf("%w: sender field %d, want 0", ErrMalformedMessage, from)
	}
	return nil
}

// GaloisSharesMsg carries a party's shares of the collective Galois keys
// (lattigo's GaloisKeyGenShare), one per element of
// [Params.GaloisElements], in that order.
type GaloisSharesMsg struct {
	Session SessionID
	From    PartyID
	Shares  []lmhe.GaloisKeyGenShare

	params *Params
}

// NewGaloisSharesMsg allocates an empty GaloisSharesMsg for p.
func (p *Params) NewGaloisSharesMsg() *GaloisSharesMsg {
	m := &GaloisSharesMsg{params: p, Shares: make([]lmhe.GaloisKeyGenShare, len(p.galEls))}
	for i, g := range p.galEls {
		m.Shares[i] = lmhe.GaloisKeyGenShare{
			GaloisElement:         g,
			EvaluationKeyGenShare: lmhe.EvaluationKeyGenShare{GadgetCiphertext: *rlwe.NewGadgetCiphertext(p.bgv, 0, p.bgv.MaxLevelQ(), p.bgv.MaxLevelP(), 0)},
		}
	}
	return m
}

// layout returns the residue tables of m, checking that its shape is the one
// the parameters prescribe.
func (m *GaloisSharesMsg) layout() ([]rows, error) {
	if m.params == nil {
		return nil, fmt.Errorf("%w: message has no parameters (allocate it with Params)", ErrInvalidArgument)
	}
	if len(m.Shares) != len(m.params.galEls) {
		return nil, fmt.Errorf("%w: %d Galois shares, want %d", ErrInvalidArgument, len(m.Shares), len(m.params.galEls))
	}
	dims := m.params.galDims
	ps := make([]rows, 0, 2*len(m.Shares)*len(dims))
	for _, sh := range m.Shares {
		gc := sh.GadgetCiphertext
		if gc.BaseTwoDecomposition != 0 || len(gc.Value) != len(dims) {
			return nil, fmt.Errorf("%w: Galois share has the wrong decomposition", ErrInvalidArgument)
		}
		for i := range gc.Value {
			if len(gc.Value[i]) != dims[i] {
				return nil, fmt.Errorf("%w: Galois share has the wrong decomposition", ErrInvalidArgument)
			}
			for j := range gc.Value[i] {
				if len(gc.Value[i][j]) != 1 {
					return nil, fmt.Errorf("%w: Galois share has the wrong degree", ErrInvalidArgument)
				}
				ps = append(ps, vectorQPRows(gc.Value[i][j], m.params)...)
			}
		}
	}
	return ps, nil
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (m *GaloisSharesMsg) MarshalBinary() ([]byte, error) {
	ps, err := m.layout()
	if err != nil {
		return nil, err
	}
	var fixed []byte
	for _, sh := range m.Shares {
		fixed = binary.BigEndian.AppendUint64(fixed, sh.GaloisElement)
	}
	return marshalMsg(m.params, typeGaloisShares, m.Session, m.From, fixed, ps)
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler. The Galois elements
// must be exactly [Params.GaloisElements], in order.
func (m *GaloisSharesMsg) UnmarshalBinary(b []byte) error {
	ps, err := m.layout()
	if err != nil {
		return err
	}
	var fixed []byte
	if m.Session, m.From, fixed, err = unmarshalMsg(m.params, b, typeGaloisShares, 8*len(m.Shares), ps); err != nil {
		return err
	}
	for i, g := range m.params.galEls {
		if got := binary.BigEndian.Uint64(fixed[8*i:]); got != g {
			return fmt.Errorf("%w: Galois element %d is %d, want %d", ErrMalformedMessage, i, got, g)
		}
		m.Shares[i].GaloisElement = g
	}
	return nil
}

// ThresholdShareMsg carries the Shamir share (lattigo's ShamirSecretShare)
// that party From's Thresholdizer polynomial evaluates to at party To's
// point. It is SECRET: the caller must seal it to To (e.g. HPKE through the
// coordinator, bound to session, round, sender and recipient). The
// coordinator must never hold it in the clear.
type ThresholdShareMsg struct {
	Session SessionID
	From    PartyID
	To      PartyID
	Share   lmhe.ShamirSecretShare

	params *Params
}

// NewThresholdShareMsg allocates an empty ThresholdShareMsg for p.
func (p *Params) NewThresholdShareMsg() *ThresholdShareMsg {
	return &ThresholdShareMsg{Share: lmhe.ShamirSecretShare{Poly: p.bgv.RingQP().NewPoly()}, params: p}
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (m *ThresholdShareMsg) MarshalBinary() ([]byte, error) {
	if m.params == nil {
		return nil, fmt.Errorf("%w: message has no parameters (allocate it with Params)", ErrInvalidArgument)
	}
	return marshalMsg(m.params, typeThresholdShare, m.Session, m.From, binary.BigEndian.AppendUint16(nil, uint16(m.To)), qpRows(m.Share.Poly, m.params))
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler. To must be a valid
// party other than From.
func (m *ThresholdShareMsg) UnmarshalBinary(b []byte) error {
	if m.params == nil {
		return fmt.Errorf("%w: message has no parameters (allocate it with Params)", ErrInvalidArgument)
	}
	var err error
	var fixed []byte
	if m.Session, m.From, fixed, err = unmarshalMsg(m.params, b, typeThresholdShare, 2, qpRows(m.Share.Poly, m.params)); err != nil {
		return err
	}
	m.To = PartyID(binary.BigEndian.Uint16(fixed))
	if int(m.To) >= m.params.Parties() || m.To == m.From {
		return fmt.Errorf("%w: recipient %d invalid for sender %d", ErrMalformedMessage, m.To, m.From)
	}
	return nil
}

// CiphertextMsg carries one of a party's contribution ciphertexts: chunk
// Index of Count, holding positions Index·B … Index·B+B−1 of the party's
// shuffled order, encrypted under the collective public key.
type CiphertextMsg struct {
	Session SessionID
	From    PartyID
	Index   uint32
	Count   uint32
	Ct      *rlwe.Ciphertext

	params *Params
}

// newCiphertext returns a fresh coefficient-packed ciphertext at level with the
// metadata both ends agree on (scale as given, NTT domain, not batched).
func (p *Params) newCiphertext(level int, scale rlwe.Scale) *rlwe.Ciphertext {
	ct := bgv.NewCiphertext(p.bgv, 1, level)
	ct.IsBatched = false
	ct.Scale = scale
	return ct
}

// resetCiphertext returns ct with the agreed metadata for level and scale,
// reusing its polynomials when their shape is right and allocating a new
// ciphertext otherwise.
func (p *Params) resetCiphertext(ct *rlwe.Ciphertext, level int, scale rlwe.Scale) *rlwe.Ciphertext {
	fresh := p.newCiphertext(0, scale) // metadata template (cheap: level 0)
	if ct == nil || len(ct.Value) != 2 {
		return p.newCiphertext(level, scale)
	}
	if ps, err := ctRows(ct, level, p); err != nil || checkShape(ps, p.N()) != nil {
		return p.newCiphertext(level, scale)
	}
	ct.MetaData = fresh.MetaData
	return ct
}

func ctRows(ct *rlwe.Ciphertext, level int, params *Params) ([]rows, error) {
	if ct == nil || ct.MetaData == nil || len(ct.Value) != 2 {
		return nil, fmt.Errorf("%w: ciphertext is not of degree 1", ErrInvalidArgument)
	}
	q := params.bgv.Q()[:level+1]
	return []rows{polyRows(ct.Value[0], q), polyRows(ct.Value[1], q)}, nil
}

// NewCiphertextMsg allocates an empty CiphertextMsg for p.
func (p *Params) NewCiphertextMsg() *CiphertextMsg {
	return &CiphertextMsg{Ct: p.newCiphertext(p.bgv.MaxLevel(), p.bgv.DefaultScale()), params: p}
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (m *CiphertextMsg) MarshalBinary() ([]byte, error) {
	if m.params == nil {
		return nil, fmt.Errorf("%w: message has no parameters (allocate it with Params)", ErrInvalidArgument)
	}
	ps, err := ctRows(m.Ct, m.params.bgv.MaxLevel(), m.params)
	if err != nil {
		return nil, err
	}
	fixed := binary.BigEndian.AppendUint32(nil, m.Index)
	fixed = binary.BigEndian.AppendUint32(fixed, m.Count)
	return marshalMsg(m.params, typeCiphertext, m.Session, m.From, fixed, ps)
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler. It requires Index <
// Count ≤ ⌈MaxRecords/B⌉ and resets the ciphertext's metadata to the agreed
// one (level max, scale 1, NTT, coefficient packing).
func (m *CiphertextMsg) UnmarshalBinary(b []byte) error {
	if m.params == nil {
		return fmt.Errorf("%w: message has no parameters (allocate it with Params)", ErrInvalidArgument)
	}
	m.Ct = m.params.resetCiphertext(m.Ct, m.params.bgv.MaxLevel(), m.params.bgv.DefaultScale())
	ps, _ := ctRows(m.Ct, m.params.bgv.MaxLevel(), m.params)
	var err error
	var fixed []byte
	if m.Session, m.From, fixed, err = unmarshalMsg(m.params, b, typeCiphertext, 8, ps); err != nil {
		return err
	}
	m.Index = binary.BigEndian.Uint32(fixed)
	m.Count = binary.BigEndian.Uint32(fixed[4:])
	if m.Count == 0 || int64(m.Count) > int64(m.params.maxCiphertexts()) || m.Index >= m.Count {
		return fmt.Errorf("%w: ciphertext %d of %d (at most %d)", ErrMalformedMessage, m.Index, m.Count, m.params.maxCiphertexts())
	}
	return nil
}

// PCKSRequestMsg asks the t parties in Active to produce PCKS shares for the
// aggregate. It carries only the aggregate's second polynomial c1, which is
// all PCKS needs: parties never see c0, so no coalition of parties alone can
// decrypt the aggregate before it is switched to the recipient.
type PCKSRequestMsg struct {
	Session SessionID
	Active  []PartyID // exactly t distinct parties, strictly increasing
	C1      ring.Poly // at level [Params.ResultLevel], NTT domain

	params *Params
}

// NewPCKSRequestMsg allocates an empty PCKSRequestMsg for p.
func (p *Params) NewPCKSRequestMsg() *PCKSRequestMsg {
	return &PCKSRequestMsg{C1: p.bgv.RingQ().AtLevel(p.resultLevel).NewPoly(), params: p, Active: make([]PartyID, p.PCKSParties())}
}

// checkActive verifies that active is a strictly increasing list of exactly
// t valid party ids.
func (p *Params) checkActive(active []PartyID) error {
	if len(active) != p.PCKSParties() {
		return fmt.Errorf("%w: %d active parties, want exactly t = %d", ErrMissingParty, len(active), p.PCKSParties())
	}
	for i, a := range active {
		if int(a) >= p.Parties() {
			return fmt.Errorf("%w: active party %d, want < %d", ErrInvalidArgument, a, p.Parties())
		}
		if i > 0 && a <= active[i-1] {
			return fmt.Errorf("%w: active parties must be strictly increasing", ErrInvalidArgument)
		}
	}
	return nil
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (m *PCKSRequestMsg) MarshalBinary() ([]byte, error) {
	if m.params == nil {
		return nil, fmt.Errorf("%w: message has no parameters (allocate it with Params)", ErrInvalidArgument)
	}
	if err := m.params.checkActive(m.Active); err != nil {
		return nil, err
	}
	var fixed []byte
	for _, a := range m.Active {
		fixed = binary.BigEndian.AppendUint16(fixed, uint16(a))
	}
	return marshalMsg(m.params, typePCKSRequest, m.Session, 0, fixed, []rows{polyRows(m.C1, m.params.bgv.Q()[:m.params.resultLevel+1])})
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (m *PCKSRequestMsg) UnmarshalBinary(b []byte) error {
	if m.params == nil {
		return fmt.Errorf("%w: message has no parameters (allocate it with Params)", ErrInvalidArgument)
	}
	t := m.params.PCKSParties()
	s, from, fixed, err := unmarshalMsg(m.params, b, typePCKSRequest, 2*t, []rows{polyRows(m.C1, m.params.bgv.Q()[:m.params.resultLevel+1])})
	if err != nil {
		return err
	}
	if from != 0 {
		return fmt.Errorf("%w: sender field %d, want 0", ErrMalformedMessage, from)
	}
	m.Session = s
	m.Active = make([]PartyID, t)
	for i := range m.Active {
		m.Active[i] = PartyID(binary.BigEndian.Uint16(fixed[2*i:]))
	}
	if err := m.params.checkActive(m.Active); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedMessage, err)
	}
	return nil
}

// RecipientKeyMsg carries the recipient's public key, to which the parties
// switch the aggregate.
type RecipientKeyMsg struct {
	Session SessionID
	Key     *rlwe.PublicKey

	params *Params
}

// NewRecipientKeyMsg allocates an empty RecipientKeyMsg for p.
func (p *Params) NewRecipientKeyMsg() *RecipientKeyMsg {
	return &RecipientKeyMsg{Key: rlwe.NewPublicKey(p.bgv), params: p}
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (m *RecipientKeyMsg) MarshalBinary() ([]byte, error) {
	ps, err := pkRows(m.Key, m.params)
	if err != nil {
		return nil, err
	}
	return marshalMsg(m.params, typeRecipientKey, m.Session, 0, nil, ps)
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (m *RecipientKeyMsg) UnmarshalBinary(b []byte) error {
	ps, err := pkRows(m.Key, m.params)
	if err != nil {
		return err
	}
	var from PartyID
	if m.Session, from, _, err = unmarshalMsg(m.params, b, typeRecipientKey, 0, ps); err != nil {
		return err
	}
	if from != 0 {
		return fmt.Errorf("%w: sender field %d, want 0", ErrMalformedMessage, from)
	}
	return nil
}

// PCKSShareMsg is an active party's share of the public-key switch
// (lattigo's PublicKeySwitchShare) of the aggregate to the recipient's key,
// with smudging noise.
type PCKSShareMsg struct {
	Session SessionID
	From    PartyID
	Share   lmhe.PublicKeySwitchShare

	params *Params
}

// NewPCKSShareMsg allocates an empty PCKSShareMsg for p.
func (p *Params) NewPCKSShareMsg() *PCKSShareMsg {
	return &PCKSShareMsg{Share: lmhe.PublicKeySwitchShare{Element: *rlwe.NewElement(p.bgv, 1, p.resultLevel)}, params: p}
}

func (m *PCKSShareMsg) layout() ([]rows, error) {
	if m.params == nil {
		return nil, fmt.Errorf("%w: message has no parameters (allocate it with Params)", ErrInvalidArgument)
	}
	if len(m.Share.Value) != 2 {
		return nil, fmt.Errorf("%w: PCKS share is not of degree 1", ErrInvalidArgument)
	}
	q := m.params.bgv.Q()[:m.params.resultLevel+1]
	return []rows{polyRows(m.Share.Value[0], q), polyRows(m.Share.Value[1], q)}, nil
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (m *PCKSShareMsg) MarshalBinary() ([]byte, error) {
	ps, err := m.layout()
	if err != nil {
		return nil, err
	}
	return marshalMsg(m.params, typePCKSShare, m.Session, m.From, nil, ps)
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (m *PCKSShareMsg) UnmarshalBinary(b []byte) error {
	ps, err := m.layout()
	if err != nil {
		return err
	}
	m.Session, m.From, _, err = unmarshalMsg(m.params, b, typePCKSShare, 0, ps)
	return err
}

// ResultMsg carries the aggregate, switched to the recipient's key, from the
// coordinator to the recipient.
type ResultMsg struct {
	Session SessionID
	Ct      *rlwe.Ciphertext

	params *Params
}

// NewResultMsg allocates an empty ResultMsg for p.
func (p *Params) NewResultMsg() *ResultMsg {
	return &ResultMsg{Ct: p.newCiphertext(p.resultLevel, p.resultScale), params: p}
}

// MarshalBinary implements encoding.BinaryMarshaler.
func (m *ResultMsg) MarshalBinary() ([]byte, error) {
	if m.params == nil {
		return nil, fmt.Errorf("%w: message has no parameters (allocate it with Params)", ErrInvalidArgument)
	}
	ps, err := ctRows(m.Ct, m.params.resultLevel, m.params)
	if err != nil {
		return nil, err
	}
	return marshalMsg(m.params, typeResult, m.Session, 0, nil, ps)
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler. It resets the
// ciphertext's metadata to the agreed one for the aggregate.
func (m *ResultMsg) UnmarshalBinary(b []byte) error {
	if m.params == nil {
		return fmt.Errorf("%w: message has no parameters (allocate it with Params)", ErrInvalidArgument)
	}
	m.Ct = m.params.resetCiphertext(m.Ct, m.params.resultLevel, m.params.resultScale)
	ps, _ := ctRows(m.Ct, m.params.resultLevel, m.params)
	var err error
	var from PartyID
	if m.Session, from, _, err = unmarshalMsg(m.params, b, typeResult, 0, ps); err != nil {
		return err
	}
	if from != 0 {
		return fmt.Errorf("%w: sender field %d, want 0", ErrMalformedMessage, from)
	}
	return nil
}
