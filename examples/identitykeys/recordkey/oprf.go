package recordkey

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"unicode"

	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/oprf"
	"github.com/cloudflare/circl/zk/dleq"
)

// Sizes of the values this package exchanges.
const (
	ElementSize   = 32 // a ristretto255 element (blinded or evaluated)
	PublicKeySize = 32 // an OPRF public key
	ProofSize     = 64 // a DLEQ proof: two scalars
	OutputSize    = 64 // an OPRF output y (SHA-512)
	IndexSize     = 32 // a bundle's cloud index
	keySize       = 32 // AES-256
	// MaxBatch is the most identities one evaluation request may carry.
	MaxBatch = 4
	// MaxHospitalLen bounds a hospital name in bytes.
	MaxHospitalLen = 64
)

// suite is the OPRF suite used throughout: ristretto255 with SHA-512.
func suite() oprf.Suite { return oprf.SuiteRistretto255 }

// Errors callers branch on. Check with errors.Is.
var (
	// ErrMalformed reports a message that fails to decode: wrong lengths or
	// counts, non-canonical or identity elements, trailing bytes. Reject the
	// message; do not retry it.
	ErrMalformed = errors.New("recordkey: malformed message")
	// ErrProof reports an evaluation whose proof does not verify against the
	// relay's published key: the relay used another key or the answer was
	// tampered with. Do not use the answer; report the relay.
	ErrProof = errors.New("recordkey: evaluation proof does not verify against the relay's public key")
	// ErrDecrypt reports a ciphertext that does not open under the key: the
	// key belongs to someone else, or the ciphertext was altered.
	ErrDecrypt = errors.New("recordkey: ciphertext does not open under this key")
	// ErrStateConsumed reports a second Finalize on the same Query.
	ErrStateConsumed = errors.New("recordkey: query already finalized")
	// ErrHospital reports an empty, over-long or non-printable hospital name.
	ErrHospital = errors.New("recordkey: invalid hospital name")
)

// CheckHospital reports whether name is usable as a hospital name: 1 to
// [MaxHospitalLen] bytes of printable ASCII without spaces.
func CheckHospital(name string) error {
	if name == "" || len(name) > MaxHospitalLen {
		return fmt.Errorf("%w: length %d", ErrHospital, len(name))
	}
	for _, r := range name {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' {
			return fmt.Errorf("%w: %q", ErrHospital, name)
		}
	}
	return nil
}

// Index is a bundle's public address at the cloud.
type Index [IndexSize]byte

// Key is a patient's secret key material at one hospital: the OPRF output y
// from which the index and the record key are derived. It is safe for
// concurrent use (it is immutable).
type Key struct {
	hospital string
	y        [OutputSize]byte
}

// Hospital returns the hospital whose OPRF produced k.
func (k *Key) Hospital() string { return k.hospital }

// Index returns the cloud index of k's bundle.
func (k *Key) Index() Index {
	var ix Index
	copy(ix[:], k.derive(LabelIndex, IndexSize))
	return ix
}

// Equal reports, in constant time for keys of equal hospital, whether k and o
// are the same key.
func (k *Key) Equal(o *Key) bool {
	return k.hospital == o.hospital && subtle.ConstantTimeCompare(k.y[:], o.y[:]) == 1
}

func (k *Key) derive(label string, n int) []byte {
	out, err := hkdf.Key(sha256.New, k.y[:], []byte(k.hospital), label, n)
	if err != nil {
		panic("recordkey: hkdf: " + err.Error()) // only for n too large: a programmer error
	}
	return out
}

func newKey(hospital string, y []byte) (*Key, error) {
	if len(y) != OutputSize {
		return nil, fmt.Errorf("recordkey: oprf output is %d bytes, want %d", len(y), OutputSize)
	}
	k := &Key{hospital: hospital}
	copy(k.y[:], y)
	return k, nil
}

// Evaluator is a hospital relay's OPRF: it holds the private key, which
// never leaves the relay. It is safe for concurrent use.
type Evaluator struct {
	hospital string
	srv      oprf.VerifiableServer
	pub      []byte
}

// GenerateEvaluator draws a fresh OPRF key for hospital from crypto/rand.
func GenerateEvaluator(hospital string) (*Evaluator, error) {
	if err := CheckHospital(hospital); err != nil {
		return nil, err
	}
	sk, err := oprf.GenerateKey(suite(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("recordkey: generating oprf key: %w", err)
	}
	pub, err := sk.Public().MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("recordkey: encoding oprf public key: %w", err)
	}
	return &Evaluator{hospital: hospital, srv: oprf.NewVerifiableServer(suite(), sk), pub: pub}, nil
}

// Hospital returns the hospital the evaluator belongs to.
func (e *Evaluator) Hospital() string { return e.hospital }

// PublicKey returns a copy of the encoded OPRF public key, which terminals
// pin to verify evaluations.
func (e *Evaluator) PublicKey() []byte { return bytes.Clone(e.pub) }

// Derive computes the key of an identity encoding directly (the relay's side,
// for records in its own database).
func (e *Evaluator) Derive(identityEncoding []byte) (*Key, error) {
	y, err := e.srv.FullEvaluate(identityEncoding)
	if err != nil {
		return nil, fmt.Errorf("recordkey: evaluating: %w", err)
	}
	return newKey(e.hospital, y)
}

// Evaluate answers a terminal's blinded request: 1 to [MaxBatch] encoded
// elements. It returns the evaluated elements and a DLEQ proof that they were
// computed with the key behind [Evaluator.PublicKey]. Malformed input
// returns an error wrapping [ErrMalformed] and is never evaluated.
func (e *Evaluator) Evaluate(blinded [][]byte) (evaluated [][]byte, proof []byte, err error) {
	elems, err := decodeElements(blinded)
	if err != nil {
		return nil, nil, fmt.Errorf("recordkey: evaluation request: %w", err)
	}
	ev, err := e.srv.Evaluate(&oprf.EvaluationRequest{Elements: elems})
	if err != nil {
		return nil, nil, fmt.Errorf("recordkey: evaluating: %w", err)
	}
	evaluated, err = encodeElements(ev.Elements)
	if err != nil {
		return nil, nil, err
	}
	proof, err = ev.Proof.MarshalBinary()
	if err != nil {
		return nil, nil, fmt.Errorf("recordkey: encoding proof: %w", err)
	}
	return evaluated, proof, nil
}

// Query is a terminal's pending OPRF query to one hospital. It is secret
// (it holds the blind), single-use and not safe for concurrent use.
type Query struct {
	hospital string
	client   oprf.VerifiableClient
	fin      *oprf.FinalizeData
	req      *oprf.EvaluationRequest
}

// ParsePublicKey decodes an OPRF public key, rejecting the identity element
// and wrong lengths with [ErrMalformed].
func ParsePublicKey(b []byte) (*oprf.PublicKey, error) {
	if len(b) != PublicKeySize {
		return nil, fmt.Errorf("%w: public key is %d bytes, want %d", ErrMalformed, len(b), PublicKeySize)
	}
	pk := new(oprf.PublicKey)
	if err := pk.UnmarshalBinary(suite(), b); err != nil {
		return nil, fmt.Errorf("%w: public key: %v", ErrMalformed, err)
	}
	re, err := pk.MarshalBinary()
	if err != nil || !bytes.Equal(re, b) {
		return nil, fmt.Errorf("%w: public key is not canonical", ErrMalformed)
	}
	return pk, nil
}

// NewQuery blinds identityEncoding for hospital, whose pinned OPRF public key
// is publicKey. It returns the query state and the blinded elements to send.
func NewQuery(hospital string, publicKey, identityEncoding []byte) (*Query, [][]byte, error) {
	if err := CheckHospital(hospital); err != nil {
		return nil, nil, err
	}
	pk, err := ParsePublicKey(publicKey)
	if err != nil {
		return nil, nil, err
	}
	c := oprf.NewVerifiableClient(suite(), pk)
	fin, req, err := c.Blind([][]byte{identityEncoding})
	if err != nil {
		return nil, nil, fmt.Errorf("recordkey: blinding: %w", err)
	}
	blinded, err := encodeElements(req.Elements)
	if err != nil {
		return nil, nil, err
	}
	return &Query{hospital: hospital, client: c, fin: fin, req: req}, blinded, nil
}

// Finalize checks the relay's answer and unblinds it into the patient's
// [Key]. An answer that does not decode wraps [ErrMalformed]; one whose proof
// fails wraps [ErrProof]. A second call returns [ErrStateConsumed]; a failed
// call consumes the query too, so a fresh blind is used for a retry.
func (q *Query) Finalize(evaluated [][]byte, proof []byte) (*Key, error) {
	if q.fin == nil {
		return nil, ErrStateConsumed
	}
	fin := q.fin
	q.fin = nil
	elems, err := decodeElements(evaluated)
	if err != nil {
		return nil, fmt.Errorf("recordkey: evaluation: %w", err)
	}
	if len(elems) != len(q.req.Elements) {
		return nil, fmt.Errorf("recordkey: evaluation: %w: %d elements, want %d", ErrMalformed, len(elems), len(q.req.Elements))
	}
	if len(proof) != ProofSize {
		return nil, fmt.Errorf("recordkey: evaluation: %w: proof is %d bytes, want %d", ErrMalformed, len(proof), ProofSize)
	}
	pr := new(dleq.Proof)
	if err := pr.UnmarshalBinary(suite().Group(), proof); err != nil {
		return nil, fmt.Errorf("recordkey: evaluation: %w: proof: %v", ErrMalformed, err)
	}
	out, err := q.client.Finalize(fin, &oprf.Evaluation{Elements: elems, Proof: pr})
	if errors.Is(err, oprf.ErrInvalidProof) {
		return nil, fmt.Errorf("recordkey: hospital %q: %w", q.hospital, ErrProof)
	}
	if err != nil {
		return nil, fmt.Errorf("recordkey: finalizing: %w", err)
	}
	return newKey(q.hospital, out[0])
}

// decodeElements decodes 1 to MaxBatch ristretto255 elements, rejecting
// non-canonical encodings and the identity.
func decodeElements(in [][]byte) ([]group.Element, error) {
	if len(in) == 0 || len(in) > MaxBatch {
		return nil, fmt.Errorf("%w: %d elements, want 1 to %d", ErrMalformed, len(in), MaxBatch)
	}
	g := suite().Group()
	out := make([]group.Element, len(in))
	for i, b := range in {
		if len(b) != ElementSize {
			return nil, fmt.Errorf("%w: element %d is %d bytes, want %d", ErrMalformed, i, len(b), ElementSize)
		}
		el := g.NewElement()
		if err := el.UnmarshalBinary(b); err != nil {
			return nil, fmt.Errorf("%w: element %d does not decode", ErrMalformed, i)
		}
		if el.IsIdentity() {
			return nil, fmt.Errorf("%w: element %d is the identity", ErrMalformed, i)
		}
		re, err := el.MarshalBinaryCompress()
		if err != nil || !bytes.Equal(re, b) {
			return nil, fmt.Errorf("%w: element %d is not canonical", ErrMalformed, i)
		}
		out[i] = el
	}
	return out, nil
}

func encodeElements(in []group.Element) ([][]byte, error) {
	out := make([][]byte, len(in))
	for i, el := range in {
		b, err := el.MarshalBinaryCompress()
		if err != nil {
			return nil, fmt.Errorf("recordkey: encoding element: %w", err)
		}
		out[i] = b
	}
	return out, nil
}
