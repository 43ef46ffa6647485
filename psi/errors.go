package psi

import "errors"

var (
	// ErrInvalidPoint reports an element that is not the canonical encoding
	// of a ristretto255 point, or is the identity; in the x25519 group, a
	// non-canonical or low-order u-coordinate. The message it arrived in
	// must be rejected.
	ErrInvalidPoint = errors.New("psi: invalid group element")
	// ErrInvalidSession reports an empty or over-long session id.
	ErrInvalidSession = errors.New("psi: invalid session id")
	// ErrContributions reports a wrong number of key contributions or a
	// duplicate among them.
	ErrContributions = errors.New("psi: invalid key contributions")
)
