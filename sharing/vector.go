package sharing

import (
	"encoding/binary"
	"fmt"
)

// MaxLen is the largest vector length, in words, that this package creates
// or decodes: 2^26 words (512 MiB). Protocol parameters should use far less.
const MaxLen = 1 << 26

// headerSize is the size of the word-count prefix of an encoded [Vector].
const headerSize = 4

// wordSize is the size of one encoded word.
const wordSize = 8

// A Vector is an element of (Z_2^64)^L, for L = len(v). All arithmetic wraps
// around modulo 2^64.
//
// A Vector holding a mask, key or input is secret; see the package
// documentation. Methods that modify a Vector in place are not safe for
// concurrent use with any other use of the same Vector; read-only methods
// may run concurrently.
type Vector []uint64

// EncodedLen returns the length in bytes of the encoding of a vector of
// length words: 4 + 8·length.
func EncodedLen(length int) int { return headerSize + wordSize*length }

// Add sets v to v + w, element-wise modulo 2^64. It returns an error wrapping
// [ErrLengthMismatch], and leaves v unchanged, if len(w) != len(v).
func (v Vector) Add(w Vector) error {
	if len(w) != len(v) {
		return fmt.Errorf("%w: adding %d words to %d", ErrLengthMismatch, len(w), len(v))
	}
	for i := range v {
		v[i] += w[i]
	}
	return nil
}

// Sub sets v to v − w, element-wise modulo 2^64. It returns an error wrapping
// [ErrLengthMismatch], and leaves v unchanged, if len(w) != len(v).
func (v Vector) Sub(w Vector) error {
	if len(w) != len(v) {
		return fmt.Errorf("%w: subtracting %d words from %d", ErrLengthMismatch, len(w), len(v))
	}
	for i := range v {
		v[i] -= w[i]
	}
	return nil
}

// Equal reports whether v and w have the same length and the same words.
// The time it takes depends on the lengths only, not on the contents, so it
// may be used on secret vectors.
func (v Vector) Equal(w Vector) bool {
	if len(v) != len(w) {
		return false
	}
	var acc uint64
	for i := range v {
		acc |= v[i] ^ w[i]
	}
	return acc == 0
}

// Clone returns a copy of v that shares no memory with it. Clone of a nil
// Vector is nil; Clone of an empty non-nil Vector is empty and non-nil.
func (v Vector) Clone() Vector {
	if v == nil {
		return nil
	}
	c := make(Vector, len(v))
	copy(c, v)
	return c
}

// AppendBinary appends the canonical encoding of v to b (see the package
// documentation) and returns the extended slice. It implements
// [encoding.BinaryAppender]. It returns an error wrapping [ErrTooLong] if
// len(v) > [MaxLen].
func (v Vector) AppendBinary(b []byte) ([]byte, error) {
	if len(v) > MaxLen {
		return nil, fmt.Errorf("%w: %d words, maximum %d", ErrTooLong, len(v), MaxLen)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, x)
	}
	return b, nil
}

// MarshalBinary returns the canonical encoding of v: a 4-byte little-endian
// word count followed by the words, each 8 bytes little-endian. It
// implements [encoding.BinaryMarshaler]. It returns an error wrapping
// [ErrTooLong] if len(v) > [MaxLen].
func (v Vector) MarshalBinary() ([]byte, error) {
	if len(v) > MaxLen {
		return nil, fmt.Errorf("%w: %d words, maximum %d", ErrTooLong, len(v), MaxLen)
	}
	return v.AppendBinary(make([]byte, 0, EncodedLen(len(v))))
}

// UnmarshalBinary sets *v to the vector encoded in data, accepting at most
// [MaxLen] words. It implements [encoding.BinaryUnmarshaler]; see
// [UnmarshalVector] for the errors. On error *v is left unchanged. Callers
// that know the expected length should prefer [UnmarshalVector] with that
// length as the maximum, and must still check len(*v).
func (v *Vector) UnmarshalBinary(data []byte) error {
	w, err := UnmarshalVector(data, MaxLen)
	if err != nil {
		return err
	}
	*v = w
	return nil
}

// UnmarshalVector decodes a vector of at most maxLen words from data, which
// may come from an untrusted peer. It returns an error wrapping
// [ErrTooLong] if the encoded word count exceeds maxLen (or [MaxLen]), and
// one wrapping [ErrMalformedVector] if data is not exactly 4+8c bytes for
// its word count c. Both checks happen before any allocation, and the result
// never exceeds len(data) bytes. On error the returned Vector is nil. The
// result is never nil on success (an encoded empty vector decodes to an
// empty non-nil Vector). A negative maxLen is treated as 0.
func UnmarshalVector(data []byte, maxLen int) (Vector, error) {
	if len(data) < headerSize {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrMalformedVector, len(data), headerSize)
	}
	c := uint64(binary.LittleEndian.Uint32(data))
	limit := uint64(min(max(maxLen, 0), MaxLen))
	if c > limit {
		return nil, fmt.Errorf("%w: %d words, maximum %d", ErrTooLong, c, limit)
	}
	body := data[headerSize:]
	// c ≤ MaxLen, so c·8 cannot overflow.
	if want := c * wordSize; uint64(len(body)) != want {
		return nil, fmt.Errorf("%w: %d words need %d bytes, have %d", ErrMalformedVector, c, want, len(body))
	}
	w := make(Vector, int(c)) // c ≤ MaxLen fits in an int on every platform
	for i := range w {
		w[i] = binary.LittleEndian.Uint64(body[wordSize*i:])
	}
	return w, nil
}
