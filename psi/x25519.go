package psi

import (
	"crypto"
	"crypto/rand"
	"crypto/subtle"
	"fmt"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
	goristretto "github.com/bwesterb/go-ristretto"
	goedwards "github.com/bwesterb/go-ristretto/edwards25519"
	"github.com/cloudflare/circl/dh/x25519"
	"github.com/cloudflare/circl/expander"
)

// Group names for the dh ring, as written in a session spec's match.group.
const (
	// GroupRistretto255 runs every hop in ristretto255 ([DHKey]).
	GroupRistretto255 = "ristretto255"
	// GroupX25519 hashes to ristretto255, maps the point to its Curve25519
	// Montgomery u-coordinate and runs every hop as an X25519 scalar
	// multiplication ([X25519Key]). doc/DESIGN.md §5.1 holds the argument.
	GroupX25519 = "x25519"
)

// RingKey is a party's secret for the dh token ring in one group: [DHKey]
// (ristretto255) or [X25519Key]. Both are safe for concurrent use.
type RingKey interface {
	// HashAndBlind sets out[i] to key i hashed into the group and raised to
	// the party's scalar: the first step of the ring for a party's own list.
	HashAndBlind(session string, keys [][]byte, out []Point, workers int) error
	// Blind raises every element of in to the party's scalar into out (in
	// and out may be the same slice): one hop. A bad element fails the
	// batch with a *PointError wrapping [ErrInvalidPoint].
	Blind(in, out []Point, workers int) error
}

// GenerateRingKey draws a fresh secret for the named group.
func GenerateRingKey(group string) (RingKey, error) {
	switch group {
	case GroupRistretto255:
		return GenerateDHKey()
	case GroupX25519:
		return GenerateX25519Key()
	default:
		return nil, fmt.Errorf("psi: %q is not a dh group (%s or %s)", group, GroupRistretto255, GroupX25519)
	}
}

// X25519Key is a party's secret for the x25519 dh suite: 32 bytes from
// crypto/rand, clamped by circl's X25519 on every use (bits 0–2 and 255
// cleared, bit 254 set), so the effective scalar is 8·k' with
// 2^251 ≤ k' < 2^252. It is never zero modulo the group order ℓ, and it kills
// the 8-torsion of any input. Tokens are u-coordinates: 32 bytes, RFC 7748
// little-endian, always canonical (u < 2^255−19).
type X25519Key struct {
	k x25519.Key
}

// GenerateX25519Key draws a fresh X25519 secret from crypto/rand.
func GenerateX25519Key() (*X25519Key, error) {
	k := &X25519Key{}
	if _, err := rand.Read(k.k[:]); err != nil {
		return nil, fmt.Errorf("psi: drawing an x25519 secret: %w", err)
	}
	return k, nil
}

// HashAndBlind sets out[i] = X25519(k, u(H(keys[i]))) where H is the same
// RFC 9380 hash_to_ristretto255 as [HashToGroup] and u is the Montgomery
// u-coordinate of an Edwards representative of H (filippo.io/edwards25519's
// BytesMontgomery); the clamped scalar clears the representative's torsion.
func (k *X25519Key) HashAndBlind(session string, keys [][]byte, out []Point, workers int) error {
	if len(out) != len(keys) {
		return fmt.Errorf("psi: HashAndBlind: %d keys but %d outputs", len(keys), len(out))
	}
	dst, err := hashDST(session)
	if err != nil {
		return err
	}
	return parallel(len(keys), workers, func(lo, hi int) error {
		x := expander.NewExpanderMD(crypto.SHA512, dst)
		var u x25519.Key
		for i := lo; i < hi; i++ {
			if err := hashToMontgomery(&u, x, keys[i]); err != nil {
				return err
			}
			if !x25519.Shared((*x25519.Key)(&out[i]), &k.k, &u) || isZero(&out[i]) {
				// Only a hash to the identity (probability ~2^-252) lands here.
				return &PointError{Index: i, Err: fmt.Errorf("%w: hashed to a low-order point", ErrInvalidPoint)}
			}
		}
		return nil
	})
}

// Blind sets out[i] = X25519(k, in[i]) for every i: one hop of the x25519
// ring. in and out may be the same slice. Every input must be a canonical
// u-coordinate (top bit clear, u < 2^255−19; RFC 7748 would silently mask
// and reduce) whose product with the clamped scalar is not the identity (a
// low-order point of the curve or its twist); otherwise Blind returns a
// *PointError wrapping [ErrInvalidPoint] naming the first bad index, and
// out is unspecified. Points of the quadratic twist of other orders are
// multiplied like any other: see doc/DESIGN.md §5.1 for why that reveals
// nothing of the scalar.
func (k *X25519Key) Blind(in, out []Point, workers int) error {
	if len(out) != len(in) {
		return fmt.Errorf("psi: Blind: %d inputs but %d outputs", len(in), len(out))
	}
	return parallel(len(in), workers, func(lo, hi int) error {
		for i := lo; i < hi; i++ {
			if err := checkU(&in[i]); err != nil {
				return &PointError{Index: i, Err: err}
			}
			if !x25519.Shared((*x25519.Key)(&out[i]), &k.k, (*x25519.Key)(&in[i])) || isZero(&out[i]) {
				return &PointError{Index: i, Err: fmt.Errorf("%w: low-order u-coordinate", ErrInvalidPoint)}
			}
		}
		return nil
	})
}

// CheckU reports whether u is a canonical RFC 7748 u-coordinate (top bit
// clear and below 2^255−19) and not 0, which is of low order on both the
// curve and its twist. The other low-order inputs are caught by
// [X25519Key.Blind] from its zero output.
func CheckU(u *Point) error { return checkU(u) }

func checkU(u *Point) error {
	if u[31]&0x80 != 0 {
		return fmt.Errorf("%w: u-coordinate has the top bit set", ErrInvalidPoint)
	}
	// u ≥ p = 2^255−19 iff bytes 31..1 are 7f ff … ff and byte 0 ≥ 0xed
	// (little-endian). A byte comparison, not field arithmetic.
	high := u[31] == 0x7f
	for j := 30; high && j >= 1; j-- {
		high = u[j] == 0xff
	}
	if high && u[0] >= 0xed {
		return fmt.Errorf("%w: u-coordinate not reduced modulo 2^255-19", ErrInvalidPoint)
	}
	if isZero(u) {
		return fmt.Errorf("%w: u-coordinate 0 (low order)", ErrInvalidPoint)
	}
	return nil
}

// isZero reports whether p is all zeros (public data: tokens).
func isZero(p *Point) bool {
	var z Point
	return subtle.ConstantTimeCompare(p[:], z[:]) == 1
}

// hashToMontgomery sets u to the Montgomery u-coordinate of an Edwards
// representative of hash_to_ristretto255(key): two ristretto255 Elligator
// maps added (go-ristretto, as circl's group.Ristretto255 does), the
// representative carried into filippo.io/edwards25519 through its canonical
// coordinate encodings, and BytesMontgomery.
func hashToMontgomery(u *x25519.Key, x expander.Expander, key []byte) error {
	b := x.Expand(key, 64)
	var buf [32]byte
	var p0, p1 goristretto.Point
	copy(buf[:], b[:32])
	p0.SetElligator(&buf)
	copy(buf[:], b[32:])
	p1.SetElligator(&buf)
	p0.Add(&p0, &p1)
	var e edwards25519.Point
	if err := edwardsFromRistretto(&e, &p0); err != nil {
		return err
	}
	copy(u[:], e.BytesMontgomery())
	return nil
}

// edwardsFromRistretto sets e to go-ristretto's Edwards representative of p,
// carried over from its extended coordinates. No
// arithmetic: each coordinate goes through its canonical 32-byte encoding,
// and SetExtendedCoordinates checks the point is on the curve.
func edwardsFromRistretto(e *edwards25519.Point, p *goristretto.Point) error {
	ep := (*goedwards.ExtendedPoint)(p)
	var c [4]field.Element
	var buf [32]byte
	for j, fe := range []*goedwards.FieldElement{&ep.X, &ep.Y, &ep.Z, &ep.T} {
		fe.BytesInto(&buf)
		if _, err := c[j].SetBytes(buf[:]); err != nil {
			return fmt.Errorf("psi: ristretto coordinate: %w", err)
		}
	}
	if _, err := e.SetExtendedCoordinates(&c[0], &c[1], &c[2], &c[3]); err != nil {
		return fmt.Errorf("psi: ristretto representative: %w", err)
	}
	return nil
}
