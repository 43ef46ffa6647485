// Package psi holds the cryptographic core of mpsi's private set intersection:
// the two ways of turning a party's normalised identifier keys into tokens
// that can be compared across parties without revealing the identifiers.
//
// Identifier normalisation and the key encoding live in [github.com/mpsi-dev/mpsi/psi/ident];
// the coordinator's n-way join of token lists lives in
// [github.com/mpsi-dev/mpsi/psi/join]; the session spec, the aggregate vector
// layout and the released Result live in [github.com/mpsi-dev/mpsi/psi/session].
//
// # dh mode (default)
//
// Each party i holds a secret scalar k_i ([DHKey]). It hashes every key x to
// ristretto255 with a domain-separation tag that contains the session id
// (so tokens never link across sessions), raises each point to k_i and sends
// the list into a ring. Every other party raises every element of that list
// to its own scalar, preserving the order:
//
//	party 1: H(x) -> H(x)^k1 ──▶ party 2: ^k2 ──▶ party 3: ^k3 ──▶ coordinator
//	party 2: H(y) -> H(y)^k2 ──▶ party 3: ^k3 ──▶ party 1: ^k1 ──▶ coordinator
//
// After n-1 hops the coordinator holds T = H(x)^(k1·k2·…·kn) for every element
// of every list, aligned with the owner's shuffled positions. Equal
// identifiers give equal tokens; the coordinator cannot test a guessed
// identifier without every party's scalar.
//
// The ring runs in one of two groups ([RingKey], chosen by the spec's
// match.group): ristretto255 throughout ([DHKey]), or x25519 ([X25519Key]):
// the same hash to ristretto255, then the Montgomery u-coordinate of an
// Edwards representative and an X25519 (circl's assembly ladder) at every
// hop, about twice as fast per hop. Tokens are then u-coordinates of points
// of Curve25519's prime-order subgroup; doc/DESIGN.md §5.1 has the argument
// and [CheckU] the checks on received values.
//
// # keyed mode (fast)
//
// The parties agree a 32-byte group key without the coordinator: each one
// draws a [KeyContribution], seals it to every other party, and the key is
// SHA-256 over the label, the session id and all contributions in sorted
// order ([GroupKey]). Tokens are HMAC-SHA256(group key, session id ‖ key).
// Anyone who holds the group key and obtains another party's tokens can test
// guessed identifiers, so this mode trusts the coordinator not to collude.
//
// # Security model
//
// Semi-honest parties and coordinator. Secret: the DH scalars, the group key
// and key contributions, the identifier keys. Public: set sizes, the token
// lists (pseudorandom to anyone without the secrets), the intersection size.
//
// # Constant time
//
// Scalar multiplication and hash-to-group are constant-time library code:
// gtank/ristretto255 on the hot path with circl as the reference; in the
// x25519 group, go-ristretto's Elligator map, filippo.io/edwards25519's
// BytesMontgomery and circl's X25519 ladder. HMAC-SHA256 is the standard library's. Decoding
// of points received from the network is not constant time; those points are
// public.
package psi
