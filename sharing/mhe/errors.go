package mhe

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidParams reports a [ParamsLiteral] that cannot be turned into
	// [Params]: a field out of range, a parameter set lattigo rejects, or a
	// smudging distribution that does not fit the modulus. It signals a
	// configuration error; fix the literal, do not retry.
	ErrInvalidParams = errors.New("mhe: invalid parameters")

	// ErrInsecureParams reports a ring degree and modulus that do not reach
	// 128-bit security under the HE standard's table (see [CheckSecurity]).
	// Fix the literal; never override.
	ErrInsecureParams = errors.New("mhe: parameters below 128-bit security")

	// ErrBoundsTooLarge reports declared bounds (parties, records, per-component
	// absolute values) whose largest possible aggregate does not fit below
	// half the plaintext modulus, so the decrypted totals could wrap. Lower
	// the bounds, split the aggregate, or choose a larger plaintext modulus.
	ErrBoundsTooLarge = errors.New("mhe: declared bounds exceed the plaintext modulus")

	// ErrMalformedMessage reports an encoded message or share that is not
	// canonical for the session's parameters: wrong length, wrong type or
	// version, a coefficient outside [0, q_i), an unexpected Galois element,
	// or a field out of range. Check with errors.Is and reject the sender's
	// message; do not retry.
	ErrMalformedMessage = errors.New("mhe: malformed message")

	// ErrWrongSession reports a message that names another session (or
	// other parameters). Reject the message.
	ErrWrongSession = errors.New("mhe: message from another session")

	// ErrDuplicateSender reports two messages from the same sender in a round
	// that expects one per party. Reject the round's input.
	ErrDuplicateSender = errors.New("mhe: duplicate sender")

	// ErrMissingParty reports a round that lacks a message from an expected
	// party (or too few active parties for the threshold). With a threshold,
	// retry the output round with another active set.
	ErrMissingParty = errors.New("mhe: missing party")

	// ErrInvalidArgument reports a caller error: an input of the wrong
	// length, a contribution outside its declared bound, an indicator whose
	// length does not match, a party id out of range.
	ErrInvalidArgument = errors.New("mhe: invalid argument")

	// ErrWrongState reports a call out of protocol order (for example
	// encrypting before the collective public key is known) or a single-use
	// state used twice. It signals a caller bug or a replayed message.
	ErrWrongState = errors.New("mhe: call out of order or state reused")

	// ErrDecryption reports a result that did not decrypt to a well-formed
	// aggregate: some coefficient outside the L aggregate positions is not
	// 0. With honest participants this means the noise overflowed
	// (parameters too tight) or the result was switched to another
	// recipient's key; otherwise a participant deviated. Release nothing.
	ErrDecryption = errors.New("mhe: result did not decrypt to a well-formed aggregate")
)

// A PeerError reports a message from another participant that failed
// validation. Party is the sender named by the message (or its position in
// the input when the message is too malformed to name one).
type PeerError struct {
	Party PartyID
	Round string
	Err   error // wraps one of the Err* sentinels
}

// Error implements error.
func (e *PeerError) Error() string {
	return fmt.Sprintf("mhe: %s: party %d: %v", e.Round, e.Party, e.Err)
}

// Unwrap returns the sentinel the error wraps.
func (e *PeerError) Unwrap() error { return e.Err }
