package recordkey

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
)

// Bundle ciphertext layout: version byte, 12-byte nonce, AES-256-GCM
// ciphertext of (4-byte big-endian length, plaintext, zero padding to a
// multiple of PadBlock).
const (
	sealVersion = 1
	nonceSize   = 12
	tagSize     = 16
	// PadBlock is the granularity bundle plaintexts are padded to, so that
	// ciphertext sizes reveal only a coarse record count.
	PadBlock = 512
	// MaxBundle bounds a bundle plaintext in bytes.
	MaxBundle = 1 << 20
	// Overhead is the smallest ciphertext size: an empty bundle padded to one block.
	Overhead = 1 + nonceSize + tagSize
)

func aead(r *ReadKey) cipher.AEAD {
	block, err := aes.NewCipher(r.key[:])
	if err != nil {
		panic("recordkey: aes: " + err.Error()) // key size is fixed
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic("recordkey: gcm: " + err.Error())
	}
	return g
}

func bundleAAD(r *ReadKey) []byte {
	aad := make([]byte, 0, len(labelBundleAAD)+1+len(r.hospital)+IndexSize)
	aad = append(aad, labelBundleAAD...)
	aad = append(aad, byte(len(r.hospital)))
	aad = append(aad, r.hospital...)
	return append(aad, r.index[:]...)
}

// Seal encrypts a bundle plaintext under k with a fresh random nonce, bound
// to k's hospital and index.
func Seal(k *Key, plaintext []byte) ([]byte, error) {
	if len(plaintext) > MaxBundle {
		return nil, fmt.Errorf("recordkey: bundle is %d bytes, limit %d", len(plaintext), MaxBundle)
	}
	padded := make([]byte, (4+len(plaintext)+PadBlock-1)/PadBlock*PadBlock)
	binary.BigEndian.PutUint32(padded, uint32(len(plaintext)))
	copy(padded[4:], plaintext)
	out := make([]byte, 1+nonceSize, Overhead+len(padded))
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("recordkey: drawing nonce: %w", err)
	}
	r := k.ReadKey()
	return aead(r).Seal(out, out[1:], padded, bundleAAD(r)), nil
}

// Open decrypts a ciphertext made by [Seal]. Anything that does not
// authenticate under k, including malformed input, returns an error wrapping
// [ErrDecrypt] (or [ErrMalformed] when the framing is wrong before any
// decryption).
func Open(k *Key, ciphertext []byte) ([]byte, error) {
	return OpenRead(k.ReadKey(), ciphertext)
}

// OpenRead is [Open] with a [ReadKey], as a doctor holds it.
func OpenRead(r *ReadKey, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < Overhead+PadBlock || (len(ciphertext)-Overhead)%PadBlock != 0 {
		return nil, fmt.Errorf("recordkey: bundle: %w: %d bytes", ErrMalformed, len(ciphertext))
	}
	if len(ciphertext) > Overhead+MaxBundle+PadBlock {
		return nil, fmt.Errorf("recordkey: bundle: %w: %d bytes exceeds the limit", ErrMalformed, len(ciphertext))
	}
	if ciphertext[0] != sealVersion {
		return nil, fmt.Errorf("recordkey: bundle: %w: version %d", ErrMalformed, ciphertext[0])
	}
	padded, err := aead(r).Open(nil, ciphertext[1:1+nonceSize], ciphertext[1+nonceSize:], bundleAAD(r))
	if err != nil {
		return nil, ErrDecrypt
	}
	n := binary.BigEndian.Uint32(padded)
	if uint64(n) > uint64(len(padded)-4) {
		return nil, fmt.Errorf("recordkey: bundle: %w: length %d beyond padding", ErrMalformed, n)
	}
	for _, b := range padded[4+n:] {
		if b != 0 {
			return nil, fmt.Errorf("recordkey: bundle: %w: non-zero padding", ErrMalformed)
		}
	}
	return padded[4 : 4+n : 4+n], nil
}
