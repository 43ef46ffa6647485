package sharing

import "errors"

var (
	// ErrLengthMismatch reports vectors of different lengths where equal
	// lengths are required. When a vector came from another party or the
	// coordinator, treat this as a malformed message: check with errors.Is
	// and reject the sender's message.
	ErrLengthMismatch = errors.New("sharing: length mismatch")

	// ErrMalformedVector reports an encoded vector that is not canonical:
	// truncated, extended, or with a word count that disagrees with its
	// length. Check with errors.Is and reject the message; do not retry.
	ErrMalformedVector = errors.New("sharing: malformed vector")

	// ErrTooLong reports an encoded vector whose word count exceeds the
	// maximum the caller allows. Check with errors.Is and reject the
	// message; it is distinct from ErrMalformedVector so a server can report
	// a resource limit.
	ErrTooLong = errors.New("sharing: vector too long")

	// ErrInvalidArgument reports a parameter outside the documented range
	// (for example fewer than two parties, a negative length, or an empty
	// list to sum). It signals a caller bug or a bad session parameter.
	ErrInvalidArgument = errors.New("sharing: invalid argument")
)
