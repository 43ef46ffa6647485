package clk

import (
	"encoding"
	"encoding/binary"
	"fmt"

	"golang.org/x/crypto/blake2b"
)

// saltedBlake computes keyed BLAKE2b-512 with a salt (the BLAKE2 parameter
// block's 16-byte salt field), which clkhash's blakeHash uses and
// golang.org/x/crypto/blake2b does not expose.
//
// No hashing is done here: x/crypto's compression function does all of it.
// What this type builds is the state x/crypto's own keyed constructor
// builds (RFC 7693 §2.5 and §3.3: h = IV xor parameter block, the key
// padded to one block as the first block), with the salt words of the
// parameter block set as well (BLAKE2 specification §2.8, parameter-block
// bytes 32..47). It then hands that state to the digest through its
// documented encoding.BinaryUnmarshaler. The RFC 7693 keyed test vector and
// the clkhash vectors (Python's hashlib.blake2b with salt) check it.
type saltedBlake struct {
	state []byte // marshalled digest state, salt zero
}

// blake2bMarshalLayout is x/crypto/blake2b's marshalled state:
// "b2b" | h[8] (big endian) | c[2] | size | block[128] | offset.
const (
	b2bMagicLen  = 3
	b2bHOff      = b2bMagicLen
	b2bSizeOff   = b2bHOff + 8*8 + 2*8
	b2bBlockOff  = b2bSizeOff + 1
	b2bOffsetOff = b2bBlockOff + blake2b.BlockSize
	b2bStateLen  = b2bOffsetOff + 1
)

func newSaltedBlake(key []byte) (*saltedBlake, error) {
	if len(key) == 0 || len(key) > blake2b.Size {
		return nil, fmt.Errorf("clk: blake2b key of %d bytes", len(key))
	}
	d, _ := blake2b.New512(nil)
	st, err := d.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil || len(st) != b2bStateLen || st[b2bSizeOff] != blake2b.Size {
		return nil, fmt.Errorf("clk: unexpected blake2b state layout (x/crypto changed?): %v", err)
	}
	// The unkeyed state has h[0] = IV[0] ^ (64 | 0<<8 | 1<<16 | 1<<24);
	// add the key length to the parameter block.
	h0 := binary.BigEndian.Uint64(st[b2bHOff:])
	binary.BigEndian.PutUint64(st[b2bHOff:], h0^uint64(len(key))<<8)
	copy(st[b2bBlockOff:b2bBlockOff+blake2b.BlockSize], make([]byte, blake2b.BlockSize))
	copy(st[b2bBlockOff:], key)
	st[b2bOffsetOff] = blake2b.BlockSize
	return &saltedBlake{state: st}, nil
}

// sum writes BLAKE2b-512(key, salt, msg) into out. salt has at most 16 bytes
// (shorter salts are zero-padded, as hashlib does).
func (b *saltedBlake) sum(out *[blake2b.Size]byte, salt, msg []byte, scratch []byte) []byte {
	st := append(scratch[:0], b.state...)
	var s [16]byte
	copy(s[:], salt)
	h4 := binary.BigEndian.Uint64(st[b2bHOff+4*8:])
	h5 := binary.BigEndian.Uint64(st[b2bHOff+5*8:])
	binary.BigEndian.PutUint64(st[b2bHOff+4*8:], h4^binary.LittleEndian.Uint64(s[0:8]))
	binary.BigEndian.PutUint64(st[b2bHOff+5*8:], h5^binary.LittleEndian.Uint64(s[8:16]))
	d, _ := blake2b.New512(nil)
	if err := d.(encoding.BinaryUnmarshaler).UnmarshalBinary(st); err != nil {
		panic("clk: blake2b state rejected: " + err.Error()) // layout checked in newSaltedBlake
	}
	d.Write(msg)
	d.Sum(out[:0])
	return st
}
