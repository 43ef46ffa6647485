package mhe

import (
	"fmt"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/schemes/bgv"
)

// Recipient receives the released aggregate. It holds its own RLWE key pair
// (unrelated to the parties' collective key). It is not safe for concurrent
// use.
type Recipient struct {
	params  *Params
	session SessionID
	sk      *rlwe.SecretKey
}

// NewRecipient returns a recipient with a fresh key pair (sampled by
// lattigo's key generator, seeded from crypto/rand) and the message carrying
// its public key to the parties.
func NewRecipient(params *Params, session SessionID) (*Recipient, *RecipientKeyMsg, error) {
	if params == nil {
		return nil, nil, fmt.Errorf("%w: nil params", ErrInvalidArgument)
	}
	sk, pk := rlwe.NewKeyGenerator(params.bgv).GenKeyPairNew()
	m := params.NewRecipientKeyMsg()
	m.Session, m.Key = session, pk
	return &Recipient{params: params, session: session, sk: sk}, m, nil
}

// Decrypt decrypts the aggregate and returns its L components, each the
// centred lift of the total modulo T into (−T/2, T/2), as a two's-complement
// uint64 (the Z_2^64 convention of package sharing; convert with int64 for
// signed totals). The declared bounds guarantee the lift is the exact total.
// It returns an error wrapping [ErrDecryption] if any other coefficient is
// non-zero.
func (r *Recipient) Decrypt(m *ResultMsg) ([]uint64, error) {
	pr := r.params
	if m == nil {
		return nil, fmt.Errorf("%w: nil result", ErrInvalidArgument)
	}
	ps, err := ctRows(m.Ct, pr.resultLevel, pr)
	if err != nil {
		return nil, err
	}
	if err := pr.checkMsg(m.params, m.Session, r.session, ps); err != nil {
		return nil, err
	}
	ct := pr.newCiphertext(pr.resultLevel, pr.resultScale)
	ct.Value[0], ct.Value[1] = m.Ct.Value[0], m.Ct.Value[1]
	pt := bgv.NewDecryptor(pr.bgv, r.sk).DecryptNew(ct)
	pt.IsBatched = false
	vals := make([]int64, pr.N())
	if err := bgv.NewEncoder(pr.bgv).Decode(pt, vals); err != nil {
		return nil, fmt.Errorf("mhe: decode: %v", err)
	}
	out := make([]uint64, pr.Components())
	for i, v := range vals {
		if i%pr.b == 0 && i/pr.b < len(out) {
			out[i/pr.b] = uint64(v)
			continue
		}
		if v != 0 {
			return nil, ErrDecryption
		}
	}
	return out, nil
}
