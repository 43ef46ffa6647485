// Package envelope seals party-to-party payloads with HPKE (RFC 9180,
// circl) bound to (session, round, sender, recipient), and signs and
// verifies session keys and released Results with TLS identity keys, so
// that the coordinator can relay payloads it cannot read or alter.
package envelope

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem"
)

// The HPKE suite for party-to-party envelopes: DHKEM(X25519, HKDF-SHA256),
// HKDF-SHA256, ChaCha20-Poly1305 (RFC 9180).
var envelopeSuite = hpke.NewSuite(hpke.KEM_X25519_HKDF_SHA256, hpke.KDF_HKDF_SHA256, hpke.AEAD_ChaCha20Poly1305)

// Domain-separation labels.
const (
	labelEnvelopeInfo = "mpsi/v1/envelope"
	labelHPKEKeySig   = "mpsi/v1/ready"
)

// Envelope size limits: X25519 enc and a 32-byte payload plus the tag.
const (
	EncSize           = 32
	MaxEnvelopePlain  = 64
	MaxEnvelopeSealed = MaxEnvelopePlain + 16
	// MaxBulkPlain bounds a bulk envelope ([SealBulk]): a secret share of
	// an encryption key (aggregation encrypted's threshold round).
	MaxBulkPlain  = 8 << 20
	MaxBulkSealed = MaxBulkPlain + 16
)

// ErrEnvelope reports an envelope that does not open: forged, corrupted,
// replayed into another round, or re-addressed to another party.
var ErrEnvelope = errors.New("envelope: does not open")

// ErrRoster reports a roster entry whose certificate or signature over its
// session key does not check out.
var ErrRoster = errors.New("envelope: invalid roster")

// SessionKey is a party's HPKE key pair for one session. The private half
// never leaves the party.
type SessionKey struct {
	sk kem.PrivateKey
	pk []byte
}

// GenerateSessionKey draws a fresh X25519 key pair.
func GenerateSessionKey() (*SessionKey, error) {
	pk, sk, err := hpke.KEM_X25519_HKDF_SHA256.Scheme().GenerateKeyPair()
	if err != nil {
		return nil, fmt.Errorf("envelope: session key: %w", err)
	}
	b, err := pk.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return &SessionKey{sk: sk, pk: b}, nil
}

// Public returns the encoded public key.
func (k *SessionKey) Public() []byte { return k.pk }

// envelopeAD binds an envelope to (session, round, sender, recipient).
func envelopeAD(session string, round, from, to uint32) []byte {
	b := make([]byte, 0, 16+len(session))
	b = binary.BigEndian.AppendUint32(b, uint32(len(session)))
	b = append(b, session...)
	b = binary.BigEndian.AppendUint32(b, round)
	b = binary.BigEndian.AppendUint32(b, from)
	b = binary.BigEndian.AppendUint32(b, to)
	return b
}

// Seal encrypts msg (at most [MaxEnvelopePlain] bytes) to the recipient's
// session public key, bound to (session, round, from, to), in HPKE's auth
// mode with the sender's session key: only the holder of the sender's
// private key can make an envelope that opens as coming from it (the
// coordinator, which relays envelopes, cannot forge one).
func (k *SessionKey) Seal(recipientPK []byte, session string, round, from, to uint32, msg []byte) (enc, ct []byte, err error) {
	return k.seal(MaxEnvelopePlain, recipientPK, session, round, from, to, msg)
}

// SealBulk is [SessionKey.Seal] for payloads of up to [MaxBulkPlain] bytes;
// open it with [SessionKey.OpenBulk].
func (k *SessionKey) SealBulk(recipientPK []byte, session string, round, from, to uint32, msg []byte) (enc, ct []byte, err error) {
	return k.seal(MaxBulkPlain, recipientPK, session, round, from, to, msg)
}

func (k *SessionKey) seal(limit int, recipientPK []byte, session string, round, from, to uint32, msg []byte) (enc, ct []byte, err error) {
	if len(msg) > limit {
		return nil, nil, fmt.Errorf("envelope: envelope payload of %d bytes is too large", len(msg))
	}
	pk, err := hpke.KEM_X25519_HKDF_SHA256.Scheme().UnmarshalBinaryPublicKey(recipientPK)
	if err != nil {
		return nil, nil, fmt.Errorf("envelope: recipient key: %w", err)
	}
	s, err := envelopeSuite.NewSender(pk, []byte(labelEnvelopeInfo))
	if err != nil {
		return nil, nil, err
	}
	enc, sealer, err := s.SetupAuth(rand.Reader, k.sk)
	if err != nil {
		return nil, nil, err
	}
	ct, err = sealer.Seal(msg, envelopeAD(session, round, from, to))
	return enc, ct, err
}

// Open decrypts an envelope addressed to this key from the party whose
// session public key is senderPK. Any mismatch of session, round, sender
// (or its key) or recipient, or any change to enc or ct, gives ErrEnvelope.
func (k *SessionKey) Open(senderPK []byte, session string, round, from, to uint32, enc, ct []byte) ([]byte, error) {
	return k.open(MaxEnvelopeSealed, senderPK, session, round, from, to, enc, ct)
}

// OpenBulk opens an envelope made by [SessionKey.SealBulk].
func (k *SessionKey) OpenBulk(senderPK []byte, session string, round, from, to uint32, enc, ct []byte) ([]byte, error) {
	return k.open(MaxBulkSealed, senderPK, session, round, from, to, enc, ct)
}

func (k *SessionKey) open(limit int, senderPK []byte, session string, round, from, to uint32, enc, ct []byte) ([]byte, error) {
	if len(enc) != EncSize || len(ct) < 16 || len(ct) > limit {
		return nil, fmt.Errorf("%w: bad lengths", ErrEnvelope)
	}
	pkS, err := hpke.KEM_X25519_HKDF_SHA256.Scheme().UnmarshalBinaryPublicKey(senderPK)
	if err != nil {
		return nil, fmt.Errorf("%w: sender key: %v", ErrEnvelope, err)
	}
	r, err := envelopeSuite.NewReceiver(k.sk, []byte(labelEnvelopeInfo))
	if err != nil {
		return nil, err
	}
	o, err := r.SetupAuth(enc, pkS)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEnvelope, err)
	}
	pt, err := o.Open(ct, envelopeAD(session, round, from, to))
	if err != nil {
		return nil, ErrEnvelope
	}
	return pt, nil
}

// sigMessage is label followed by each field, length-prefixed.
func sigMessage(label string, fields ...[]byte) []byte {
	b := []byte(label)
	for _, f := range fields {
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	return b
}

// ReadyStatement is what a party signs with its certificate key when it
// declares itself ready: its session public key, its declared set size and
// the hash of the spec it accepted, for its name in the session. Every
// other party checks it in the roster, so the coordinator can neither
// change a declared size nor show parties different specs.
type ReadyStatement struct {
	Session  string
	Name     string
	HPKEKey  []byte
	SetSize  uint64
	SpecHash []byte
}

func (r ReadyStatement) message() []byte {
	return sigMessage(labelHPKEKeySig, []byte(r.Session), []byte(r.Name), r.HPKEKey,
		binary.BigEndian.AppendUint64(nil, r.SetSize), r.SpecHash)
}

// SignReady signs the statement with the party's certificate key (ECDSA or
// Ed25519).
func SignReady(signer crypto.Signer, r ReadyStatement) ([]byte, error) {
	return sign(signer, r.message())
}

// VerifyReady checks a roster entry: cert must chain to roots as a client
// certificate, carry r.Name as its common name, and have signed r.
func VerifyReady(roots *x509.CertPool, certDER []byte, r ReadyStatement, sig []byte) error {
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return fmt.Errorf("%w: %s: certificate: %v", ErrRoster, r.Name, err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("%w: %s: certificate does not chain to our CA: %v", ErrRoster, r.Name, err)
	}
	if cert.Subject.CommonName != r.Name {
		return fmt.Errorf("%w: certificate of %q names %q", ErrRoster, r.Name, cert.Subject.CommonName)
	}
	return verifyWithCert(cert, r.message(), sig, fmt.Sprintf("%s: signature over its key, set size and spec", r.Name))
}

func sign(signer crypto.Signer, msg []byte) ([]byte, error) {
	switch signer.Public().(type) {
	case ed25519.PublicKey:
		return signer.Sign(rand.Reader, msg, crypto.Hash(0))
	case *ecdsa.PublicKey:
		h := sha256.Sum256(msg)
		return signer.Sign(rand.Reader, h[:], crypto.SHA256)
	default:
		return nil, fmt.Errorf("envelope: identity key type %T is not supported (use ECDSA or Ed25519)", signer.Public())
	}
}

func verifyWithCert(cert *x509.Certificate, msg, sig []byte, what string) error {
	switch pub := cert.PublicKey.(type) {
	case ed25519.PublicKey:
		if !ed25519.Verify(pub, msg, sig) {
			return fmt.Errorf("%w: %s does not verify", ErrRoster, what)
		}
	case *ecdsa.PublicKey:
		h := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(pub, h[:], sig) {
			return fmt.Errorf("%w: %s does not verify", ErrRoster, what)
		}
	default:
		return fmt.Errorf("%w: %s: unsupported key type %T", ErrRoster, what, pub)
	}
	return nil
}

const labelResultSig = "mpsi/v1/result"

// ResultSigMessage is what the coordinator signs for a released Result.
func ResultSigMessage(session string, resultJSON []byte) []byte {
	return sigMessage(labelResultSig, []byte(session), resultJSON)
}

// SignResult signs a released Result JSON with the coordinator's key.
func SignResult(signer crypto.Signer, session string, resultJSON []byte) ([]byte, error) {
	return sign(signer, ResultSigMessage(session, resultJSON))
}

const labelTallySig = "mpsi/v1/tally"

// SignTally signs the coordinator's statement of the join's counts (the
// encoded tally) for the session.
func SignTally(signer crypto.Signer, session string, tally []byte) ([]byte, error) {
	return sign(signer, sigMessage(labelTallySig, []byte(session), tally))
}

// VerifyTally checks the coordinator's signature over a tally.
func VerifyTally(coordinatorCert *x509.Certificate, session string, tally, sig []byte) error {
	return verifyWithCert(coordinatorCert, sigMessage(labelTallySig, []byte(session), tally), sig, "tally signature")
}

// VerifyResult checks the coordinator's signature over a Result JSON.
func VerifyResult(coordinatorCert *x509.Certificate, session string, resultJSON, sig []byte) error {
	return verifyWithCert(coordinatorCert, ResultSigMessage(session, resultJSON), sig, "result signature")
}

const labelAttestationSig = "mpsi/v1/indicator-digests"

func attestationMessage(session string, party uint32, digests []byte) []byte {
	return sigMessage(labelAttestationSig, []byte(session), binary.BigEndian.AppendUint32(nil, party), digests)
}

// SignAttestation signs a party's statement of the indicator digests it
// received (oblivious aggregation) with its certificate key.
func SignAttestation(signer crypto.Signer, session string, party uint32, digests []byte) ([]byte, error) {
	return sign(signer, attestationMessage(session, party, digests))
}

// VerifyAttestation checks a party's attestation against its certificate
// (DER, from the roster, already verified against the CA).
func VerifyAttestation(certDER []byte, session string, party uint32, digests, sig []byte) error {
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return fmt.Errorf("%w: attestation of party %d: certificate: %v", ErrRoster, party, err)
	}
	return verifyWithCert(cert, attestationMessage(session, party, digests), sig, fmt.Sprintf("party %d's indicator attestation", party))
}
