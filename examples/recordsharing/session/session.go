package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem"

	"github.com/mpsi-dev/mpsi/examples/recordsharing/protocol"
)

// KeySize is the size of the session key.
const KeySize = 32

// NonceSize is the size of an AEAD nonce.
const NonceSize = 12

const (
	labelHPKEInfo = "mpsi/examples/recordsharing/v1/session-key"
	labelAAD      = "mpsi/examples/recordsharing/v1/session-payload"
)

// Directions, bound into the associated data.
const (
	toAccess byte = 1
	toApp    byte = 2
)

// Errors.
var (
	// ErrConsumed reports a second use of an Initiator.
	ErrConsumed = errors.New("session: temporary key already used")
	// ErrOpen reports a payload or grant that does not decrypt: forged,
	// altered, reflected or for another session.
	ErrOpen = errors.New("session: cannot open sealed payload")
)

func suite() hpke.Suite {
	return hpke.NewSuite(hpke.KEM_X25519_HKDF_SHA256, hpke.KDF_HKDF_SHA256, hpke.AEAD_AES256GCM)
}

// Initiator is the app's side of a key agreement: a temporary key pair used
// once. It is not safe for concurrent use.
type Initiator struct {
	pub  []byte
	priv kem.PrivateKey // nil once used
}

// NewInitiator makes a temporary X25519 key pair.
func NewInitiator() (*Initiator, error) {
	pk, sk, err := hpke.KEM_X25519_HKDF_SHA256.Scheme().GenerateKeyPair() // reads crypto/rand
	if err != nil {
		return nil, fmt.Errorf("session: generating temporary key: %w", err)
	}
	pub, err := pk.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("session: encoding temporary key: %w", err)
	}
	return &Initiator{pub: pub, priv: sk}, nil
}

// PublicKey returns the temporary public key to send to the access layer.
func (in *Initiator) PublicKey() []byte { return append([]byte(nil), in.pub...) }

// Finish opens the session key in g, which the caller has already checked to
// be signed by the access layer, and destroys the temporary private key
// whatever the outcome. A second call fails with ErrConsumed.
func (in *Initiator) Finish(g *protocol.SessionGrant) (*Session, error) {
	if in.priv == nil {
		return nil, ErrConsumed
	}
	sk := in.priv
	in.priv = nil // destroyed after this use
	if string(g.Ephemeral) != string(in.pub) {
		return nil, fmt.Errorf("%w: grant is for another temporary key", ErrOpen)
	}
	r, err := suite().NewReceiver(sk, info(g.Session))
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	op, err := r.Setup(g.Enc)
	if err != nil {
		return nil, fmt.Errorf("%w: grant: %v", ErrOpen, err)
	}
	key, err := op.Open(g.SealedKey, g.Ephemeral)
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("%w: grant", ErrOpen)
	}
	return newSession(g.Session, key, toAccess, toApp)
}

// Grant is the access layer's side: it draws a session key and seals it to
// the app's temporary public key. It returns the session and the grant to
// sign and send back.
func Grant(ephemeral []byte, id protocol.SessionID, now time.Time) (*Session, *protocol.SessionGrant, error) {
	s := suite()
	pk, err := hpke.KEM_X25519_HKDF_SHA256.Scheme().UnmarshalBinaryPublicKey(ephemeral)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: temporary public key: %v", protocol.ErrMalformed, err)
	}
	snd, err := s.NewSender(pk, info(id))
	if err != nil {
		return nil, nil, fmt.Errorf("session: %w", err)
	}
	enc, sealer, err := snd.Setup(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("session: encapsulating: %w", err)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, nil, fmt.Errorf("session: drawing key: %w", err)
	}
	sealed, err := sealer.Seal(key, ephemeral)
	if err != nil {
		return nil, nil, fmt.Errorf("session: sealing key: %w", err)
	}
	sess, err := newSession(id, key, toApp, toAccess)
	if err != nil {
		return nil, nil, err
	}
	g := &protocol.SessionGrant{
		Session:   id,
		Ephemeral: append([]byte(nil), ephemeral...),
		Enc:       enc,
		SealedKey: sealed,
		Time:      now.UnixNano(),
	}
	return sess, g, nil
}

func info(id protocol.SessionID) []byte {
	return append([]byte(labelHPKEInfo), id[:]...)
}

// Session seals and opens payloads in one direction each. It is safe for
// concurrent use.
type Session struct {
	id         protocol.SessionID
	aead       cipher.AEAD
	send, recv byte
}

func newSession(id protocol.SessionID, key []byte, send, recv byte) (*Session, error) {
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	return &Session{id: id, aead: aead, send: send, recv: recv}, nil
}

// ID returns the session identifier.
func (s *Session) ID() protocol.SessionID { return s.id }

func (s *Session) aad(dir byte) []byte {
	a := append([]byte(labelAAD), s.id[:]...)
	return append(a, dir)
}

// Seal encrypts plaintext towards the peer and returns a fresh random nonce
// and the ciphertext.
func (s *Session) Seal(plaintext []byte) (nonce, ciphertext []byte, err error) {
	nonce = make([]byte, NonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, fmt.Errorf("session: drawing nonce: %w", err)
	}
	return nonce, s.aead.Seal(nil, nonce, plaintext, s.aad(s.send)), nil
}

// Open decrypts a payload from the peer. Anything that does not
// authenticate fails with ErrOpen.
func (s *Session) Open(nonce, ciphertext []byte) ([]byte, error) {
	if len(nonce) != NonceSize {
		return nil, fmt.Errorf("%w: nonce is %d bytes", ErrOpen, len(nonce))
	}
	pt, err := s.aead.Open(nil, nonce, ciphertext, s.aad(s.recv))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}
