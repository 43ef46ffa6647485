package sharing

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// SeedSize is the size in bytes of a [Seed].
const SeedSize = 32

// A Seed is the secret input of [Expand]: party i draws one seed s_ij per
// other party j and sends it, sealed, to j. Seeds are secret; never log
// them or put them in errors, and compare them with crypto/subtle.
type Seed [SeedSize]byte

// NewSeed returns a uniformly random seed from crypto/rand.
func NewSeed() (Seed, error) {
	var s Seed
	if _, err := rand.Read(s[:]); err != nil {
		// Unreachable since Go 1.24 (crypto/rand.Read never fails).
		return Seed{}, fmt.Errorf("sharing: reading randomness: %w", err)
	}
	return s, nil
}

// Sizes of the key material derived per expansion.
const (
	expandKeySize = 32            // AES-256 key
	expandIVSize  = aes.BlockSize // initial counter block
)

// Expand returns the key vector PRG(seed, context) of the given length.
//
// The construction: okm = HKDF-SHA256(secret = seed, salt = empty,
// info = "mpsi/sharing/v1/expand" ‖ context, 48 bytes); key = okm[0:32],
// iv = okm[32:48]; the output is the AES-256-CTR keystream (crypto/cipher's
// big-endian 128-bit counter starting at iv) read as consecutive 8-byte
// little-endian words. The first length words of a longer expansion equal a
// shorter one.
//
// context provides domain separation and must be encoded injectively by the
// caller, for example as fixed-size fields (session id ‖ round ‖ sender ‖
// recipient), so that distinct (session, round, sender, recipient) tuples
// give distinct contexts. Expand is deterministic in (seed, context, length).
//
// Expand panics if length < 0 or length > [MaxLen]; lengths are session
// parameters, checked when the session is set up, not network input. The
// seed and the result are secret.
func Expand(seed Seed, context []byte, length int) Vector {
	if length < 0 || length > MaxLen {
		panic(fmt.Sprintf("sharing: Expand: length %d outside [0, %d]", length, MaxLen))
	}
	okm, err := hkdf.Key(sha256.New, seed[:], nil, labelExpand+string(context), expandKeySize+expandIVSize)
	if err != nil {
		// Unreachable: 48 bytes is far below HKDF-SHA256's 8160-byte limit.
		panic("sharing: Expand: " + err.Error())
	}
	block, err := aes.NewCipher(okm[:expandKeySize])
	if err != nil {
		panic("sharing: Expand: " + err.Error()) // unreachable: the key is 32 bytes
	}
	stream := cipher.NewCTR(block, okm[expandKeySize:])
	clear(okm)
	return expandStream(stream, length)
}

// Stream is [Expand] read a block at a time, for expansions too long to
// hold (a key word per record and slot of a 10-million-record party): the
// words it yields, in order, are those of Expand(seed, context, ·). It is
// secret; not safe for concurrent use.
type Stream struct {
	s   cipher.Stream
	buf []byte
}

// NewStream starts the expansion PRG(seed, context).
func NewStream(seed Seed, context []byte) *Stream {
	okm, err := hkdf.Key(sha256.New, seed[:], nil, labelExpand+string(context), expandKeySize+expandIVSize)
	if err != nil {
		panic("sharing: NewStream: " + err.Error()) // unreachable, as in Expand
	}
	block, err := aes.NewCipher(okm[:expandKeySize])
	if err != nil {
		panic("sharing: NewStream: " + err.Error()) // unreachable: the key is 32 bytes
	}
	st := &Stream{s: cipher.NewCTR(block, okm[expandKeySize:])}
	clear(okm)
	return st
}

// Next fills dst with the next len(dst) words of the expansion.
func (st *Stream) Next(dst Vector) {
	n := wordSize * len(dst)
	if cap(st.buf) < n {
		st.buf = make([]byte, n)
	}
	b := st.buf[:n]
	clear(b)
	st.s.XORKeyStream(b, b)
	for k := range dst {
		dst[k] = binary.LittleEndian.Uint64(b[wordSize*k:])
	}
	clear(b)
}

// expandBufSize is the keystream chunk size, in bytes, used by expandStream.
const expandBufSize = 16 << 10

// expandStream returns length words of keystream from s, read as 8-byte
// little-endian words.
func expandStream(s cipher.Stream, length int) Vector {
	v := make(Vector, length)
	n := min(expandBufSize, wordSize*length)
	buf := make([]byte, 2*n)
	zero, buf := buf[:n:n], buf[n:] // zero stays all-zero: keystream = 0 ⊕ keystream
	for off := 0; off < length; off += len(buf) / wordSize {
		m := min(len(buf)/wordSize, length-off)
		b := buf[:m*wordSize]
		s.XORKeyStream(b, zero[:len(b)])
		for k := range m {
			v[off+k] = binary.LittleEndian.Uint64(b[wordSize*k:])
		}
	}
	clear(buf)
	return v
}
