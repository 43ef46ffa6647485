package recordkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// CredentialSize is the size of an enrolment credential.
const CredentialSize = 32

// A Credential is a patient's enrolment credential at one hospital: 32
// random bytes the hospital issues when it registers the patient, stores in
// its database, and hands to the patient's terminal. It enters the OPRF
// input beside the identity ([Input]), so knowing a patient's name, birth
// date and national ID is not enough to derive their key. It is secret.
type Credential [CredentialSize]byte

// NewCredential draws a credential from crypto/rand.
func NewCredential() (Credential, error) {
	var c Credential
	if _, err := rand.Read(c[:]); err != nil {
		return c, fmt.Errorf("recordkey: drawing credential: %w", err)
	}
	return c, nil
}

// Input is the OPRF input for a patient: the identity encoding and the
// enrolment credential, label first, each length-prefixed.
func Input(identityEncoding []byte, c Credential) []byte {
	var b cryptobyte.Builder
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(labelInput)) })
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(identityEncoding) })
	b.AddBytes(c[:])
	return b.BytesOrPanic() // identity encodings are bounded well below 64 KiB
}

// AccessKeySize is the size of an access public key (Ed25519).
const AccessKeySize = ed25519.PublicKeySize

// AccessKey returns the Ed25519 key derived from y with which the holder of
// k proves to the cloud that it is the patient: it signs fetches, and signs
// and revokes doctors' grants. The relay uploads its public half beside the
// bundle. A [ReadKey] does not contain it.
func (k *Key) AccessKey() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(k.derive(LabelAccessKey, ed25519.SeedSize))
}

// AccessPublicKey returns the public half of [Key.AccessKey].
func (k *Key) AccessPublicKey() []byte {
	return k.AccessKey().Public().(ed25519.PublicKey)
}

// ReadKey opens one bundle: its hospital, its index and its record key.
// It is what a patient gives a doctor. Unlike a [Key] it cannot derive the
// access key, so a doctor needs the cloud's permission (an unrevoked grant)
// to fetch the ciphertext. It is secret and immutable.
type ReadKey struct {
	hospital string
	index    Index
	key      [keySize]byte
}

// ReadKey returns k's read key.
func (k *Key) ReadKey() *ReadKey {
	r := &ReadKey{hospital: k.hospital, index: k.Index()}
	copy(r.key[:], k.derive(LabelRecordKey, keySize))
	return r
}

// Hospital returns the read key's hospital.
func (r *ReadKey) Hospital() string { return r.hospital }

// Index returns the index of the bundle the read key opens.
func (r *ReadKey) Index() Index { return r.index }

// Equal reports whether r and o are the same read key (constant time in the
// key bytes).
func (r *ReadKey) Equal(o *ReadKey) bool {
	return r.hospital == o.hospital && r.index == o.index && subtle.ConstantTimeCompare(r.key[:], o.key[:]) == 1
}

// Labels of the messages signed with an access key.
const (
	labelFetch  = "mpsi/examples/identitykeys/v1/fetch"
	labelPermit = "mpsi/examples/identitykeys/v1/grant-statement"
	labelRevoke = "mpsi/examples/identitykeys/v1/revoke"
)

func signed(label string, parts ...[]byte) []byte {
	var b cryptobyte.Builder
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(label)) })
	for _, p := range parts {
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(p) })
	}
	return b.BytesOrPanic() // parts are names, indexes and small integers
}

func u64(v int64) []byte {
	var b cryptobyte.Builder
	b.AddUint64(uint64(v))
	return b.BytesOrPanic()
}

// FetchMessage is what a patient signs with the access key to fetch its
// bundle: the caller's certificate name, the hospital, the index and the
// time (Unix seconds), so a signature is good for one caller, one bundle
// and a short window.
func FetchMessage(caller, hospital string, ix Index, unix int64) []byte {
	return signed(labelFetch, []byte(caller), []byte(hospital), ix[:], u64(unix))
}

// Permit is a patient's permission, signed with the access key of one
// bundle, for the terminal Grantee to fetch that bundle until Expires (Unix
// seconds). If Delegable, the grantee may pass it on to one colleague at a
// time ([Permit.Parent] set, signed by nobody: the cloud checks the
// delegating caller). The cloud stores it and checks it on every fetch;
// the patient can revoke it.
type Permit struct {
	ID        GrantID
	Hospital  string
	Index     Index
	Grantee   string
	Expires   int64
	Delegable bool
}

// Message returns the bytes the access key signs.
func (p *Permit) Message() []byte {
	d := []byte{0}
	if p.Delegable {
		d[0] = 1
	}
	return signed(labelPermit, p.ID[:], []byte(p.Hospital), p.Index[:], []byte(p.Grantee), u64(p.Expires), d)
}

// Sign signs p with k's access key; k must be the key of p's bundle.
func (p *Permit) Sign(k *Key) []byte { return ed25519.Sign(k.AccessKey(), p.Message()) }

// RevokeMessage is what a patient signs with the access key to revoke the
// grant id at time unix (Unix seconds).
func RevokeMessage(id GrantID, unix int64) []byte {
	return signed(labelRevoke, id[:], u64(unix))
}

// NewGrantID draws a grant id from crypto/rand.
func NewGrantID() (GrantID, error) {
	var id GrantID
	if _, err := rand.Read(id[:]); err != nil {
		return id, fmt.Errorf("recordkey: drawing grant id: %w", err)
	}
	return id, nil
}
