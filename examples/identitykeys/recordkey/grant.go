package recordkey

import (
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem"
	"golang.org/x/crypto/cryptobyte"
)

// MaxGrantKeys bounds the hospitals in one grant.
const MaxGrantKeys = 16

// ErrGrant reports a sealed grant that does not open: it was not sealed by
// the claimed sender to this recipient, or it was altered. Discard it.
var ErrGrant = errors.New("recordkey: grant does not open")

// GrantIDSize is the size of a grant id.
const GrantIDSize = 16

// GrantID names a grant the cloud holds and checks.
type GrantID [GrantIDSize]byte

// Read is one bundle a grant opens: the read key and the id of the grant the
// cloud checks before it serves the ciphertext.
type Read struct {
	Key *ReadKey
	ID  GrantID
}

// A Grant hands a doctor read keys, one per hospital, and the ids of the
// grants the cloud holds for them. It is secret: with the cloud's permission
// it reads the patient's records. Send it only sealed ([SealGrant]).
type Grant struct {
	Reads []Read
}

// MarshalBinary encodes g canonically.
func (g *Grant) MarshalBinary() ([]byte, error) {
	if len(g.Reads) == 0 || len(g.Reads) > MaxGrantKeys {
		return nil, fmt.Errorf("recordkey: grant with %d keys, want 1 to %d", len(g.Reads), MaxGrantKeys)
	}
	var b cryptobyte.Builder
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(labelGrantEncoding)) })
	b.AddUint8(uint8(len(g.Reads)))
	for _, r := range g.Reads {
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(r.Key.hospital)) })
		b.AddBytes(r.Key.index[:])
		b.AddBytes(r.Key.key[:])
		b.AddBytes(r.ID[:])
	}
	return b.Bytes()
}

// ParseGrant decodes a grant encoded by [Grant.MarshalBinary]. It rejects,
// with [ErrMalformed], a wrong label, a count of 0 or above [MaxGrantKeys],
// invalid or repeated hospitals, short keys and trailing bytes.
func ParseGrant(data []byte) (*Grant, error) {
	s := cryptobyte.String(data)
	var label cryptobyte.String
	var n uint8
	if !s.ReadUint8LengthPrefixed(&label) || string(label) != labelGrantEncoding || !s.ReadUint8(&n) {
		return nil, fmt.Errorf("recordkey: grant: %w: bad header", ErrMalformed)
	}
	if n == 0 || n > MaxGrantKeys {
		return nil, fmt.Errorf("recordkey: grant: %w: %d keys", ErrMalformed, n)
	}
	g := &Grant{Reads: make([]Read, 0, n)}
	seen := make(map[string]bool, n)
	for i := range int(n) {
		var h cryptobyte.String
		r := &ReadKey{}
		var id GrantID
		if !s.ReadUint8LengthPrefixed(&h) || !s.CopyBytes(r.index[:]) || !s.CopyBytes(r.key[:]) || !s.CopyBytes(id[:]) {
			return nil, fmt.Errorf("recordkey: grant: %w: key %d truncated", ErrMalformed, i)
		}
		if err := CheckHospital(string(h)); err != nil {
			return nil, fmt.Errorf("recordkey: grant: %w: key %d: %v", ErrMalformed, i, err)
		}
		if seen[string(h)] {
			return nil, fmt.Errorf("recordkey: grant: %w: hospital %q repeated", ErrMalformed, string(h))
		}
		seen[string(h)] = true
		r.hospital = string(h)
		g.Reads = append(g.Reads, Read{Key: r, ID: id})
	}
	if !s.Empty() {
		return nil, fmt.Errorf("recordkey: grant: %w: %d trailing bytes", ErrMalformed, len(s))
	}
	return g, nil
}

// hpkeSuite is X25519, HKDF-SHA256, ChaCha20-Poly1305.
func hpkeSuite() hpke.Suite {
	return hpke.NewSuite(hpke.KEM_X25519_HKDF_SHA256, hpke.KDF_HKDF_SHA256, hpke.AEAD_ChaCha20Poly1305)
}

// TerminalKeySize is the size of an encoded terminal public key.
const TerminalKeySize = 32

// TerminalKey is a terminal's long-term HPKE key pair (X25519), used to seal
// and authenticate grants end to end through the cloud. It is safe for
// concurrent use.
type TerminalKey struct {
	priv kem.PrivateKey
	pub  []byte
}

// GenerateTerminalKey draws a key pair from crypto/rand.
func GenerateTerminalKey() (*TerminalKey, error) {
	pk, sk, err := hpke.KEM_X25519_HKDF_SHA256.Scheme().GenerateKeyPair()
	if err != nil {
		return nil, fmt.Errorf("recordkey: generating terminal key: %w", err)
	}
	pub, err := pk.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("recordkey: encoding terminal key: %w", err)
	}
	return &TerminalKey{priv: sk, pub: pub}, nil
}

// PublicKey returns a copy of the encoded public key.
func (t *TerminalKey) PublicKey() []byte { return append([]byte(nil), t.pub...) }

func parseTerminalKey(b []byte) (kem.PublicKey, error) {
	if len(b) != TerminalKeySize {
		return nil, fmt.Errorf("%w: terminal key is %d bytes, want %d", ErrMalformed, len(b), TerminalKeySize)
	}
	pk, err := hpke.KEM_X25519_HKDF_SHA256.Scheme().UnmarshalBinaryPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: terminal key: %v", ErrMalformed, err)
	}
	return pk, nil
}

func grantAAD(from, to string) []byte {
	var b cryptobyte.Builder
	b.AddBytes([]byte(labelGrant))
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(from)) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(to)) })
	return b.BytesOrPanic()
}

// SealGrant seals g from the terminal named from (key sender) to the
// terminal named to (public key recipient) with HPKE in authenticated mode,
// binding both names. Only the recipient can open it, and it opens only
// with the sender's public key.
func SealGrant(sender *TerminalKey, from, to string, recipient []byte, g *Grant) ([]byte, error) {
	if len(from) > 255 || len(to) > 255 {
		return nil, errors.New("recordkey: terminal name longer than 255 bytes")
	}
	pkR, err := parseTerminalKey(recipient)
	if err != nil {
		return nil, fmt.Errorf("recordkey: sealing grant: %w", err)
	}
	pt, err := g.MarshalBinary()
	if err != nil {
		return nil, err
	}
	s, err := hpkeSuite().NewSender(pkR, []byte(labelGrant))
	if err != nil {
		return nil, fmt.Errorf("recordkey: sealing grant: %w", err)
	}
	enc, sealer, err := s.SetupAuth(rand.Reader, sender.priv)
	if err != nil {
		return nil, fmt.Errorf("recordkey: sealing grant: %w", err)
	}
	ct, err := sealer.Seal(pt, grantAAD(from, to))
	if err != nil {
		return nil, fmt.Errorf("recordkey: sealing grant: %w", err)
	}
	return append(enc, ct...), nil
}

// OpenGrant opens a grant sealed by [SealGrant] from the terminal named
// from, whose public key is sender, to the terminal named to, holding
// recipient. Wrong lengths wrap [ErrMalformed]; anything that does not
// authenticate returns [ErrGrant].
func OpenGrant(recipient *TerminalKey, from, to string, sender []byte, sealed []byte) (*Grant, error) {
	if len(from) > 255 || len(to) > 255 {
		return nil, fmt.Errorf("recordkey: opening grant: %w: terminal name too long", ErrMalformed)
	}
	pkS, err := parseTerminalKey(sender)
	if err != nil {
		return nil, fmt.Errorf("recordkey: opening grant: %w", err)
	}
	encSize := int(hpke.KEM_X25519_HKDF_SHA256.Scheme().CiphertextSize())
	if len(sealed) < encSize+16 || len(sealed) > encSize+16+2048 {
		return nil, fmt.Errorf("recordkey: opening grant: %w: %d bytes", ErrMalformed, len(sealed))
	}
	r, err := hpkeSuite().NewReceiver(recipient.priv, []byte(labelGrant))
	if err != nil {
		return nil, fmt.Errorf("recordkey: opening grant: %w", err)
	}
	opener, err := r.SetupAuth(sealed[:encSize], pkS)
	if err != nil {
		return nil, ErrGrant
	}
	pt, err := opener.Open(sealed[encSize:], grantAAD(from, to))
	if err != nil {
		return nil, ErrGrant
	}
	return ParseGrant(pt)
}
