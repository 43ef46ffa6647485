package sharing

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
)

// ZeroSumMasks returns n uniformly random vectors of the given length whose
// sum is the zero vector: the coordinator's masks r_1..r_n. Any n−1 of them
// are independent and uniform; the last is determined by them. Randomness
// comes from crypto/rand.
//
// It returns an error wrapping [ErrInvalidArgument] if n < 2, length < 0 or
// length > [MaxLen]. The masks are secret: r_i goes to party i only.
func ZeroSumMasks(n, length int) ([]Vector, error) {
	if n < 2 {
		return nil, fmt.Errorf("%w: %d parties, need at least 2", ErrInvalidArgument, n)
	}
	if length < 0 || length > MaxLen {
		return nil, fmt.Errorf("%w: length %d outside [0, %d]", ErrInvalidArgument, length, MaxLen)
	}
	masks := make([]Vector, n)
	last := make(Vector, length)
	for i := range n - 1 {
		r, err := randomVector(length)
		if err != nil {
			return nil, err
		}
		masks[i] = r
		for k := range last {
			last[k] -= r[k]
		}
	}
	masks[n-1] = last
	return masks, nil
}

// randomVector returns a uniformly random vector from crypto/rand.
func randomVector(length int) (Vector, error) {
	v := make(Vector, length)
	var buf [4096]byte
	for off := 0; off < length; off += len(buf) / wordSize {
		m := min(len(buf)/wordSize, length-off)
		b := buf[:m*wordSize]
		if _, err := rand.Read(b); err != nil {
			// Unreachable since Go 1.24 (crypto/rand.Read never fails).
			return nil, fmt.Errorf("sharing: reading randomness: %w", err)
		}
		for k := range m {
			v[off+k] = binary.LittleEndian.Uint64(b[wordSize*k:])
		}
	}
	clear(buf[:])
	return v, nil
}

// SelfKey returns party i's own key k_ii = r_i − Σ_{j≠i} k_ij, where mask is
// r_i and outgoing holds the keys k_ij expanded from the seeds party i sends
// (in any order). By construction k_ii + Σ_{j≠i} k_ij = r_i.
//
// It returns an error wrapping [ErrLengthMismatch] if any outgoing key's
// length differs from len(mask); the check happens before any arithmetic.
// The result is a fresh vector and is secret; the inputs are not modified.
func SelfKey(mask Vector, outgoing []Vector) (Vector, error) {
	for j, k := range outgoing {
		if len(k) != len(mask) {
			return nil, fmt.Errorf("%w: outgoing key %d has %d words, mask has %d", ErrLengthMismatch, j, len(k), len(mask))
		}
	}
	kii := mask.Clone()
	if kii == nil {
		kii = Vector{}
	}
	for _, k := range outgoing {
		for t := range kii {
			kii[t] -= k[t]
		}
	}
	return kii, nil
}

// Blind returns party i's submission z_i = x + selfKey + Σ incoming, where x
// is the party's input x_i, selfKey is k_ii from [SelfKey], and incoming
// holds the keys k_ji expanded from the seeds party i received (in any
// order).
//
// It returns an error wrapping [ErrLengthMismatch] if selfKey or any incoming
// key differs in length from x; the check happens before any arithmetic, so
// a malformed incoming key cannot produce a partial result. The result is a
// fresh vector that is sent to the coordinator; the inputs are not modified.
func Blind(x, selfKey Vector, incoming []Vector) (Vector, error) {
	if len(selfKey) != len(x) {
		return nil, fmt.Errorf("%w: self key has %d words, input has %d", ErrLengthMismatch, len(selfKey), len(x))
	}
	for j, k := range incoming {
		if len(k) != len(x) {
			return nil, fmt.Errorf("%w: incoming key %d has %d words, input has %d", ErrLengthMismatch, j, len(k), len(x))
		}
	}
	z := make(Vector, len(x))
	for t := range z {
		z[t] = x[t] + selfKey[t]
	}
	for _, k := range incoming {
		for t := range z {
			z[t] += k[t]
		}
	}
	return z, nil
}

// Sum returns Σ vs, the coordinator's aggregate of the submissions z_i
// (which equals Σ x_i when every party followed the protocol).
//
// It returns an error wrapping [ErrInvalidArgument] if vs is empty, and one
// wrapping [ErrLengthMismatch] if the vectors differ in length (for example a
// malformed submission). The result is a fresh vector; the inputs are not
// modified.
func Sum(vs []Vector) (Vector, error) {
	if len(vs) == 0 {
		return nil, fmt.Errorf("%w: no vectors to sum", ErrInvalidArgument)
	}
	length := len(vs[0])
	for i, v := range vs {
		if len(v) != length {
			return nil, fmt.Errorf("%w: vector %d has %d words, vector 0 has %d", ErrLengthMismatch, i, len(v), length)
		}
	}
	s := make(Vector, length)
	for _, v := range vs {
		for t := range s {
			s[t] += v[t]
		}
	}
	return s, nil
}
