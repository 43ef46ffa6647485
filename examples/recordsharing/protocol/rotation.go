package protocol

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// DerivePatientID turns a hospital's own patient number into the
// pseudonymous id that goes on the ledger: HMAC-SHA256 under the hospital's
// secret key. Without the key the id reveals nothing about the number and
// cannot be recomputed from a guessed number.
func DerivePatientID(hospitalKey []byte, number string) PatientID {
	m := hmac.New(sha256.New, hospitalKey)
	m.Write(frame(labelPatientID, []byte(number)))
	var p PatientID
	m.Sum(p[:0])
	return p
}

func approvalMessage(role Role, key Key, patient PatientID) []byte {
	return frame(labelApproval, []byte{byte(role)}, key[:], patient[:])
}

// SignApproval is the registration authority's approval of key as a user
// with role (and, for a patient, patient id patient). The contract accepts
// a registration only with an approval that verifies under the authority
// key set at deployment.
func SignApproval(ra *KeyPair, role Role, key Key, patient PatientID) Signature {
	return ra.sign(approvalMessage(role, key, patient))
}

// VerifyApproval checks an approval under the authority key ra. It fails
// with ErrNotApproved (wrapped).
func VerifyApproval(ra Key, role Role, key Key, patient PatientID, sig Signature) error {
	if err := verify(ra, approvalMessage(role, key, patient), sig, "registration approval"); err != nil {
		return fmt.Errorf("%w: %v", ErrNotApproved, err)
	}
	return nil
}

// SignPossession is the new key's proof of possession in a rotate request:
// the replacement key signs the key it replaces.
func SignPossession(newKey *KeyPair, old Key) Signature {
	return newKey.sign(frame(labelUserRotation, old[:], newKey.pub[:]))
}

// VerifyPossession checks a proof of possession made by SignPossession.
func VerifyPossession(newKey, old Key, sig Signature) error {
	return verify(newKey, frame(labelUserRotation, old[:], newKey[:]), sig, "new key's proof of possession")
}

// AccessRotation replaces the access layer's key (signatures 3 and 5 and
// session grants). Both keys sign it; the contract appends it to the
// ledger, so entries countersigned under the old key stay verifiable.
type AccessRotation struct {
	Old, New Key
	Time     int64 // Unix nanoseconds
	Nonce    Nonce
}

// MarshalBinary returns the canonical encoding of r.
func (r *AccessRotation) MarshalBinary() ([]byte, error) {
	if r.Old.IsZero() || r.New.IsZero() || r.Old == r.New || r.Time <= 0 || r.Nonce == (Nonce{}) {
		return nil, fmt.Errorf("%w: access key rotation fields", ErrMalformed)
	}
	var b cryptobyte.Builder
	b.AddUint8(version)
	b.AddBytes(r.Old[:])
	b.AddBytes(r.New[:])
	b.AddUint64(uint64(r.Time))
	b.AddBytes(r.Nonce[:])
	return b.Bytes()
}

// UnmarshalBinary decodes a canonical rotation; malformed input fails with
// ErrMalformed and leaves r unchanged.
func (r *AccessRotation) UnmarshalBinary(data []byte) error {
	s := cryptobyte.String(data)
	var (
		v   uint8
		out AccessRotation
		t   uint64
	)
	if !s.ReadUint8(&v) || v != version ||
		!s.CopyBytes(out.Old[:]) || !s.CopyBytes(out.New[:]) ||
		!s.ReadUint64(&t) || !s.CopyBytes(out.Nonce[:]) || !s.Empty() {
		return fmt.Errorf("%w: access key rotation encoding", ErrMalformed)
	}
	if t == 0 || t > 1<<63-1 || out.Old.IsZero() || out.New.IsZero() || out.Old == out.New || out.Nonce == (Nonce{}) {
		return fmt.Errorf("%w: access key rotation fields", ErrMalformed)
	}
	out.Time = int64(t)
	*r = out
	return nil
}

// SignedAccessRotation is an encoded AccessRotation signed by both keys.
type SignedAccessRotation struct {
	Rotation []byte // canonical AccessRotation encoding
	ByOld    Signature
	ByNew    Signature
}

// MarshalBinary returns the canonical encoding of m.
func (m *SignedAccessRotation) MarshalBinary() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(version)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(m.Rotation) })
	b.AddBytes(m.ByOld[:])
	b.AddBytes(m.ByNew[:])
	return b.Bytes()
}

// UnmarshalBinary decodes m; malformed input fails with ErrMalformed. The
// embedded rotation must decode too.
func (m *SignedAccessRotation) UnmarshalBinary(data []byte) error {
	s := cryptobyte.String(data)
	var (
		v   uint8
		out SignedAccessRotation
		rot cryptobyte.String
	)
	if !s.ReadUint8(&v) || v != version || !s.ReadUint8LengthPrefixed(&rot) ||
		!s.CopyBytes(out.ByOld[:]) || !s.CopyBytes(out.ByNew[:]) || !s.Empty() {
		return fmt.Errorf("%w: signed access key rotation encoding", ErrMalformed)
	}
	var r AccessRotation
	if err := r.UnmarshalBinary(rot); err != nil {
		return err
	}
	out.Rotation = append([]byte(nil), rot...)
	*m = out
	return nil
}

// SignAccessRotation signs an encoded rotation with the old and the new
// key. old and newKey must be the rotation's Old and New.
func SignAccessRotation(old, newKey *KeyPair, rotation []byte) SignedAccessRotation {
	return SignedAccessRotation{
		Rotation: rotation,
		ByOld:    old.sign(frame(labelAccessRotOld, rotation)),
		ByNew:    newKey.sign(frame(labelAccessRotNew, rotation)),
	}
}

// Verify decodes m's rotation and checks both signatures. It does not
// check that Old is the key the caller trusts; FollowRotations does.
func (m *SignedAccessRotation) Verify() (*AccessRotation, error) {
	var r AccessRotation
	if err := r.UnmarshalBinary(m.Rotation); err != nil {
		return nil, err
	}
	if err := verify(r.Old, frame(labelAccessRotOld, m.Rotation), m.ByOld, "access rotation (old key)"); err != nil {
		return nil, err
	}
	if err := verify(r.New, frame(labelAccessRotNew, m.Rotation), m.ByNew, "access rotation (new key)"); err != nil {
		return nil, err
	}
	return &r, nil
}

// FollowRotations walks a chain of encoded SignedAccessRotations from the
// trusted key pinned and returns the key the chain ends at. Each link must
// be signed by the key before it (and by its new key); a chain that does
// not start at pinned, or skips a key, fails with ErrBadSignature.
func FollowRotations(pinned Key, chain [][]byte) (Key, error) {
	cur := pinned
	for i, enc := range chain {
		var m SignedAccessRotation
		if err := m.UnmarshalBinary(enc); err != nil {
			return Key{}, fmt.Errorf("rotation %d: %w", i, err)
		}
		r, err := m.Verify()
		if err != nil {
			return Key{}, fmt.Errorf("rotation %d: %w", i, err)
		}
		if r.Old != cur {
			return Key{}, fmt.Errorf("rotation %d: replaces %s, not the trusted key %s: %w", i, r.Old, cur, ErrBadSignature)
		}
		cur = r.New
	}
	return cur, nil
}
