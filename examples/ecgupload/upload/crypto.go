package upload

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem"
)

// Domain-separation labels for every hash, HPKE info and AEAD associated
// data in the protocol.
const (
	labelSuite   = "mpsi/ecgupload/v1/suite"
	labelKey     = "mpsi/ecgupload/v1/data-key"
	labelRequest = "mpsi/ecgupload/v1/request"
	labelChunk   = "mpsi/ecgupload/v1/chunk"
)

// Sizes of protocol values.
const (
	// PublicKeySize is the size of an X25519 public key.
	PublicKeySize = 32
	// EncSize is the size of an HPKE X25519 encapsulation.
	EncSize = 32
	// DataKeySize is the size of the per-upload symmetric data key.
	DataKeySize = 32
	// JobIDSize is the size of a job id (the request nonce).
	JobIDSize = 16
	// DigestSize is the size of a SHA-256 digest.
	DigestSize = sha256.Size
	// Overhead is the AEAD tag size of both suites.
	Overhead = 16
)

const kemID = hpke.KEM_X25519_HKDF_SHA256
const kdfID = hpke.KDF_HKDF_SHA256

// A Suite is a symmetric AEAD suite for the data key.
type Suite uint16

// The available suites, in the order SelectSuite indexes them.
const (
	SuiteAES256GCM        = Suite(hpke.AEAD_AES256GCM)
	SuiteChaCha20Poly1305 = Suite(hpke.AEAD_ChaCha20Poly1305)
)

// Suites returns the available suites in selection order.
func Suites() []Suite { return []Suite{SuiteAES256GCM, SuiteChaCha20Poly1305} }

// String returns the suite's name.
func (s Suite) String() string {
	switch s {
	case SuiteAES256GCM:
		return "AES-256-GCM"
	case SuiteChaCha20Poly1305:
		return "ChaCha20-Poly1305"
	}
	return fmt.Sprintf("Suite(%#04x)", uint16(s))
}

func (s Suite) valid() bool { return s == SuiteAES256GCM || s == SuiteChaCha20Poly1305 }

// SelectSuite picks the data-key suite from the server's public key: the sum
// of the bytes of SHA-256(label || pk) modulo the number of suites. This
// follows claim 3 of the seed document (which sums the digits of an MD5
// digest). The choice is public and deterministic, so it carries no security
// weight: both suites are secure AEADs, an observer can compute the choice
// too, and client and server each derive it from the server's key, so no
// party can steer it.
func SelectSuite(pk []byte) Suite {
	h := sha256.New()
	h.Write([]byte(labelSuite))
	h.Write(pk)
	sum := 0
	for _, b := range h.Sum(nil) {
		sum += int(b)
	}
	all := Suites()
	return all[sum%len(all)]
}

func hpkeSuite(s Suite) hpke.Suite { return hpke.NewSuite(kemID, kdfID, hpke.AEAD(s)) }

func keyInfo(epoch uint64, s Suite) []byte {
	b := make([]byte, 0, len(labelKey)+10)
	b = append(b, labelKey...)
	b = binary.BigEndian.AppendUint64(b, epoch)
	return binary.BigEndian.AppendUint16(b, uint16(s))
}

// keyPair is one epoch's X25519 key pair. The private key never leaves the
// server process.
type keyPair struct {
	epoch uint64
	pub   []byte
	priv  kem.PrivateKey
	suite Suite
}

func generateKeyPair(epoch uint64) (*keyPair, error) {
	pk, sk, err := kemID.Scheme().GenerateKeyPair()
	if err != nil {
		return nil, fmt.Errorf("upload: generating key pair: %w", err)
	}
	pub, err := pk.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("upload: encoding public key: %w", err)
	}
	return &keyPair{epoch: epoch, pub: pub, priv: sk, suite: SelectSuite(pub)}, nil
}

// encapsulateKey draws a fresh data key and seals it to the server's public
// key pub under epoch. It returns the encapsulation, the sealed key and the
// data key's AEAD.
func encapsulateKey(epoch uint64, pub []byte) (enc, sealedKey []byte, aead cipher.AEAD, s Suite, err error) {
	if len(pub) != PublicKeySize {
		return nil, nil, nil, 0, fmt.Errorf("%w: public key of %d bytes", ErrMalformed, len(pub))
	}
	pk, err := kemID.Scheme().UnmarshalBinaryPublicKey(pub)
	if err != nil {
		return nil, nil, nil, 0, fmt.Errorf("%w: public key: %v", ErrMalformed, err)
	}
	s = SelectSuite(pub)
	sender, err := hpkeSuite(s).NewSender(pk, keyInfo(epoch, s))
	if err != nil {
		return nil, nil, nil, 0, fmt.Errorf("upload: hpke sender: %w", err)
	}
	enc, sealer, err := sender.Setup(rand.Reader)
	if err != nil {
		return nil, nil, nil, 0, fmt.Errorf("upload: hpke setup: %w", err)
	}
	key := make([]byte, DataKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, nil, nil, 0, err
	}
	sealedKey, err = sealer.Seal(key, nil)
	if err != nil {
		return nil, nil, nil, 0, fmt.Errorf("upload: sealing data key: %w", err)
	}
	aead, err = hpke.AEAD(s).New(key)
	clear(key)
	if err != nil {
		return nil, nil, nil, 0, fmt.Errorf("upload: data key cipher: %w", err)
	}
	return enc, sealedKey, aead, s, nil
}

// newAEAD returns the AEAD of suite s under key.
func newAEAD(s Suite, key []byte) (cipher.AEAD, error) {
	if !s.valid() {
		return nil, fmt.Errorf("%w: suite %v", ErrMalformed, s)
	}
	a, err := hpke.AEAD(s).New(key)
	if err != nil {
		return nil, fmt.Errorf("upload: data key cipher: %w", err)
	}
	return a, nil
}

// openKey recovers the data key from enc and sealedKey with kp and returns
// its AEAD and the key itself (for a stream job to seal at rest); the
// caller clears the key.
func (kp *keyPair) openKey(enc, sealedKey []byte) (cipher.AEAD, []byte, error) {
	if len(enc) != EncSize || len(sealedKey) != DataKeySize+Overhead {
		return nil, nil, fmt.Errorf("%w: handshake sizes enc=%d key=%d", ErrMalformed, len(enc), len(sealedKey))
	}
	recv, err := hpkeSuite(kp.suite).NewReceiver(kp.priv, keyInfo(kp.epoch, kp.suite))
	if err != nil {
		return nil, nil, fmt.Errorf("upload: hpke receiver: %w", err)
	}
	opener, err := recv.Setup(enc)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: encapsulation: %v", ErrDecrypt, err)
	}
	key, err := opener.Open(sealedKey, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: data key", ErrDecrypt)
	}
	aead, err := newAEAD(kp.suite, key)
	if err != nil {
		clear(key)
		return nil, nil, err
	}
	return aead, key, nil
}

// Nonce purposes. Each data key is fresh per upload, so a counter nonce per
// purpose never repeats under one key (a resent chunk is the same plaintext
// under the same nonce and yields the same ciphertext).
const (
	purposeRequest = 1
	purposeChunk   = 2
)

func nonce(purpose byte, index uint64) []byte {
	n := make([]byte, 12)
	n[0] = purpose
	binary.BigEndian.PutUint64(n[4:], index)
	return n
}

func requestAD(epoch uint64, enc []byte) []byte {
	b := append([]byte(labelRequest), 0)
	b = binary.BigEndian.AppendUint64(b, epoch)
	return append(b, enc...)
}

// chunkAD binds a chunk to its job, its index, the chunk count and the total
// size, so that reordering, duplication across jobs and truncation are
// detected by the AEAD.
func chunkAD(jobID [JobIDSize]byte, index, count uint32, total uint64) []byte {
	b := append([]byte(labelChunk), 0)
	b = append(b, jobID[:]...)
	b = binary.BigEndian.AppendUint32(b, index)
	b = binary.BigEndian.AppendUint32(b, count)
	return binary.BigEndian.AppendUint64(b, total)
}

func sealChunk(aead cipher.AEAD, dst []byte, jobID [JobIDSize]byte, index, count uint32, total uint64, pt []byte) []byte {
	return aead.Seal(dst, nonce(purposeChunk, uint64(index)), pt, chunkAD(jobID, index, count, total))
}

func openChunk(aead cipher.AEAD, dst []byte, jobID [JobIDSize]byte, index, count uint32, total uint64, ct []byte) ([]byte, error) {
	pt, err := aead.Open(dst, nonce(purposeChunk, uint64(index)), ct, chunkAD(jobID, index, count, total))
	if err != nil {
		return nil, fmt.Errorf("%w: chunk %d", ErrDecrypt, index)
	}
	return pt, nil
}
