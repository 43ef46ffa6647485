package mhe

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/tuneinsight/lattigo/v5/utils/sampling"
)

// SessionIDSize is the size in bytes of a [SessionID].
const SessionIDSize = 32

// MaxSessionNameSize bounds the session name passed to [NewSessionID].
const MaxSessionNameSize = 128

// A SessionID binds every message and every common reference string to one
// session and one parameter set. Build it with [NewSessionID].
type SessionID [SessionIDSize]byte

// NewSessionID derives the session id of the named session under params:
// SHA-256(label ‖ params fingerprint ‖ len(name) ‖ name). Every participant
// must derive it from the same name and parameters; messages under another
// id are rejected with [ErrWrongSession].
func NewSessionID(params *Params, name string) (SessionID, error) {
	if params == nil {
		return SessionID{}, fmt.Errorf("%w: nil params", ErrInvalidArgument)
	}
	if name == "" || len(name) > MaxSessionNameSize {
		return SessionID{}, fmt.Errorf("%w: session name length %d, want 1..%d", ErrInvalidArgument, len(name), MaxSessionNameSize)
	}
	h := sha256.New()
	h.Write([]byte(labelSession))
	h.Write(params.id[:])
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(len(name))))
	h.Write([]byte(name))
	var s SessionID
	h.Sum(s[:0])
	return s, nil
}

// A PartyID identifies a party: 0..n-1. Its Shamir public point is id+1, so
// point 0 (which would hand out the party's secret key) is never used.
type PartyID uint16

// newCRS returns a fresh common-reference-string PRNG for one protocol
// instance, keyed by SHA-256(label ‖ session ‖ len(instance) ‖ instance ‖
// galEl). Every party derives the same stream, and no two instances share
// one, so call order cannot desynchronise the CRPs (notes/lattigo.md §4.5).
func newCRS(session SessionID, instance string, galEl uint64) (*sampling.KeyedPRNG, error) {
	h := sha256.New()
	h.Write([]byte(labelCRS))
	h.Write(session[:])
	h.Write([]byte{byte(len(instance))})
	h.Write([]byte(instance))
	h.Write(binary.BigEndian.AppendUint64(nil, galEl))
	prng, err := sampling.NewKeyedPRNG(h.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("mhe: crs: %w", err)
	}
	return prng, nil
}
