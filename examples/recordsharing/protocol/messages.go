package protocol

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Sizes of the fixed-size fields.
const (
	KeySize       = 32 // Ed25519 public key
	SignatureSize = 64 // Ed25519 signature
	RecordIDSize  = 32
	NonceSize     = 16
	DigestSize    = 32
	SessionIDSize = 16
	PatientIDSize = 32
	// MaxDataSize bounds the record data in one upload or view.
	MaxDataSize = 4 << 20
)

// version is the first byte of every encoding in this package.
const version = 1

// Key is an Ed25519 public key.
type Key [KeySize]byte

// String returns a short hexadecimal fingerprint of k for logs.
func (k Key) String() string { return hex.EncodeToString(k[:6]) }

// IsZero reports whether k is all zeros (absent).
func (k Key) IsZero() bool { return k == Key{} }

// RecordID names a record. The uploader picks it at random.
type RecordID [RecordIDSize]byte

// String returns a short hexadecimal form of id for logs.
func (id RecordID) String() string { return hex.EncodeToString(id[:6]) }

// PatientID is the pseudonymous patient identifier a record names and a
// patient registers with. The hospital derives it from its own patient
// number with a keyed hash ([DerivePatientID]), so the ledger never holds
// the number itself.
type PatientID [PatientIDSize]byte

// String returns a short hexadecimal form of p for logs.
func (p PatientID) String() string { return hex.EncodeToString(p[:6]) }

// IsZero reports whether p is all zeros (absent).
func (p PatientID) IsZero() bool { return p == PatientID{} }

// Nonce is a random value that makes each request unique.
type Nonce [NonceSize]byte

// Digest is a SHA-256 digest.
type Digest [DigestSize]byte

// String returns a short hexadecimal form of d for logs.
func (d Digest) String() string { return hex.EncodeToString(d[:6]) }

// SessionID names an app/access-layer session.
type SessionID [SessionIDSize]byte

// String returns the hexadecimal form of id.
func (id SessionID) String() string { return hex.EncodeToString(id[:]) }

// Signature is an Ed25519 signature. The zero value is never valid.
type Signature [SignatureSize]byte

// String returns a short hexadecimal form of s for logs.
func (s Signature) String() string { return hex.EncodeToString(s[:6]) + "…" }

// ParseSignature copies b into a Signature. It fails with ErrMalformed
// (wrapped) unless b has exactly SignatureSize bytes.
func ParseSignature(b []byte) (Signature, error) {
	var s Signature
	if len(b) != SignatureSize {
		return s, fmt.Errorf("%w: signature is %d bytes, want %d", ErrMalformed, len(b), SignatureSize)
	}
	copy(s[:], b)
	return s, nil
}

// Type is a request type.
type Type uint8

// Request types.
const (
	TypeRegister  Type = 1 // register Requester with Role
	TypeUpload    Type = 2 // store Data as Record, owned by Requester
	TypeAuthorize Type = 3 // let Doctor view Record; Requester must own it
	TypeRevoke    Type = 4 // withdraw Doctor's authorisation for Record
	TypeView      Type = 5 // read Record; Requester must own it or be authorised
	TypeRotate    Type = 6 // replace Requester's key by NewKey
)

// String returns the name of t.
func (t Type) String() string {
	switch t {
	case TypeRegister:
		return "register"
	case TypeUpload:
		return "upload"
	case TypeAuthorize:
		return "authorize"
	case TypeRevoke:
		return "revoke"
	case TypeView:
		return "view"
	case TypeRotate:
		return "rotate"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Role is the role a user registers with.
type Role uint8

// Roles.
const (
	RoleNone    Role = 0
	RolePatient Role = 1
	RoleDoctor  Role = 2
)

// String returns the name of r.
func (r Role) String() string {
	switch r {
	case RoleNone:
		return "none"
	case RolePatient:
		return "patient"
	case RoleDoctor:
		return "doctor"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Request is what a user asks for. Fields a type does not use must be zero;
// [Request.Validate] enforces this so that the encoding is canonical.
type Request struct {
	Type      Type
	Requester Key       // the signer of signature 1
	Role      Role      // register only
	Patient   PatientID // register (patients only) and upload: the patient the record names
	Record    RecordID  // upload, authorize, revoke, view
	Doctor    Key       // authorize, revoke
	NewKey    Key       // rotate only: the replacement key
	Approval  Signature // register: the registration authority's approval; rotate: NewKey's proof of possession
	Data      []byte    // upload only
	Time      int64     // Unix nanoseconds when the request was made
	Nonce     Nonce
}

// Validate checks that r's fields fit its type. It returns an error wrapping
// ErrMalformed.
func (r *Request) Validate() error {
	bad := func(why string) error { return fmt.Errorf("%w: %s request: %s", ErrMalformed, r.Type, why) }
	if r.Requester.IsZero() {
		return bad("no requester key")
	}
	if r.Time <= 0 {
		return bad("no timestamp")
	}
	if r.Nonce == (Nonce{}) {
		return bad("zero nonce")
	}
	if len(r.Data) > MaxDataSize {
		return bad(fmt.Sprintf("data is %d bytes, limit %d", len(r.Data), MaxDataSize))
	}
	hasRecord := r.Record != RecordID{}
	hasApproval := r.Approval != Signature{}
	if r.Type != TypeRotate && !r.NewKey.IsZero() {
		return bad("unexpected new key")
	}
	if r.Type != TypeRegister && r.Type != TypeRotate && hasApproval {
		return bad("unexpected approval")
	}
	if r.Type != TypeRegister && r.Type != TypeUpload && !r.Patient.IsZero() {
		return bad("unexpected patient id")
	}
	switch r.Type {
	case TypeRegister:
		if r.Role != RolePatient && r.Role != RoleDoctor {
			return bad("role must be patient or doctor")
		}
		if (r.Role == RolePatient) == r.Patient.IsZero() {
			return bad("a patient registers with a patient id, a doctor without")
		}
		if !hasApproval {
			return bad("no registration approval")
		}
		if hasRecord || !r.Doctor.IsZero() || len(r.Data) != 0 {
			return bad("unexpected record, doctor or data")
		}
	case TypeUpload:
		if r.Role != RoleNone || !hasRecord || r.Patient.IsZero() || !r.Doctor.IsZero() || len(r.Data) == 0 {
			return bad("needs record id, patient id and data only")
		}
	case TypeAuthorize, TypeRevoke:
		if r.Role != RoleNone || !hasRecord || r.Doctor.IsZero() || len(r.Data) != 0 {
			return bad("needs record id and doctor key only")
		}
	case TypeView:
		if r.Role != RoleNone || !hasRecord || !r.Doctor.IsZero() || len(r.Data) != 0 {
			return bad("needs record id only")
		}
	case TypeRotate:
		if r.Role != RoleNone || hasRecord || !r.Doctor.IsZero() || len(r.Data) != 0 {
			return bad("needs the new key and its proof of possession only")
		}
		if r.NewKey.IsZero() || r.NewKey == r.Requester || !hasApproval {
			return bad("needs a new key other than the requester's and its proof of possession")
		}
	default:
		return bad("unknown type")
	}
	return nil
}

// MarshalBinary returns the canonical encoding of r. It fails if r is not
// valid.
func (r *Request) MarshalBinary() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddUint8(version)
	b.AddUint8(uint8(r.Type))
	b.AddBytes(r.Requester[:])
	b.AddUint8(uint8(r.Role))
	b.AddBytes(r.Patient[:])
	b.AddBytes(r.Record[:])
	b.AddBytes(r.Doctor[:])
	b.AddBytes(r.NewKey[:])
	b.AddBytes(r.Approval[:])
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(r.Data) })
	b.AddUint64(uint64(r.Time))
	b.AddBytes(r.Nonce[:])
	return b.Bytes()
}

// UnmarshalBinary decodes a canonical request. Any trailing byte, bad
// length or invalid field combination fails with ErrMalformed; r is left
// unchanged on error.
func (r *Request) UnmarshalBinary(data []byte) error {
	s := cryptobyte.String(data)
	var (
		v, typ, role uint8
		out          Request
		body         cryptobyte.String
		t            uint64
	)
	if !s.ReadUint8(&v) || v != version ||
		!s.ReadUint8(&typ) ||
		!s.CopyBytes(out.Requester[:]) ||
		!s.ReadUint8(&role) ||
		!s.CopyBytes(out.Patient[:]) ||
		!s.CopyBytes(out.Record[:]) ||
		!s.CopyBytes(out.Doctor[:]) ||
		!s.CopyBytes(out.NewKey[:]) ||
		!s.CopyBytes(out.Approval[:]) ||
		!readUint32Prefixed(&s, &body) ||
		!s.ReadUint64(&t) ||
		!s.CopyBytes(out.Nonce[:]) ||
		!s.Empty() {
		return fmt.Errorf("%w: request encoding", ErrMalformed)
	}
	if t > 1<<63-1 {
		return fmt.Errorf("%w: request timestamp out of range", ErrMalformed)
	}
	out.Type, out.Role, out.Time = Type(typ), Role(role), int64(t)
	if len(body) > 0 {
		out.Data = append([]byte(nil), body...)
	}
	if err := out.Validate(); err != nil {
		return err
	}
	*r = out
	return nil
}

// DigestRequest returns the digest of a canonical request encoding, which
// responses carry to say which request they answer.
func DigestRequest(encoded []byte) Digest {
	h := sha256.New()
	h.Write(frame(labelDigest, encoded))
	var d Digest
	h.Sum(d[:0])
	return d
}

// Response is the contract's answer to a request.
type Response struct {
	Type    Type     // the type of the request answered
	Request Digest   // DigestRequest of the request answered
	Record  RecordID // the record concerned, if any
	Owner   Key      // the record's owner, if any
	Data    []byte   // record data (view only)
	Seq     uint64   // sequence number of the ledger entry written
	Entry   Digest   // hash of the ledger entry written
	Time    int64    // Unix nanoseconds when the contract answered
}

// MarshalBinary returns the canonical encoding of r.
func (r *Response) MarshalBinary() ([]byte, error) {
	if len(r.Data) > MaxDataSize || r.Time <= 0 || r.Type < TypeRegister || r.Type > TypeRotate {
		return nil, fmt.Errorf("%w: response data too large, no timestamp or unknown type", ErrMalformed)
	}
	var b cryptobyte.Builder
	b.AddUint8(version)
	b.AddUint8(uint8(r.Type))
	b.AddBytes(r.Request[:])
	b.AddBytes(r.Record[:])
	b.AddBytes(r.Owner[:])
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(r.Data) })
	b.AddUint64(r.Seq)
	b.AddBytes(r.Entry[:])
	b.AddUint64(uint64(r.Time))
	return b.Bytes()
}

// UnmarshalBinary decodes a canonical response; malformed input fails with
// ErrMalformed and leaves r unchanged.
func (r *Response) UnmarshalBinary(data []byte) error {
	s := cryptobyte.String(data)
	var (
		v, typ uint8
		out    Response
		body   cryptobyte.String
		t      uint64
	)
	if !s.ReadUint8(&v) || v != version ||
		!s.ReadUint8(&typ) ||
		!s.CopyBytes(out.Request[:]) ||
		!s.CopyBytes(out.Record[:]) ||
		!s.CopyBytes(out.Owner[:]) ||
		!readUint32Prefixed(&s, &body) ||
		!s.ReadUint64(&out.Seq) ||
		!s.CopyBytes(out.Entry[:]) ||
		!s.ReadUint64(&t) ||
		!s.Empty() {
		return fmt.Errorf("%w: response encoding", ErrMalformed)
	}
	if t == 0 || t > 1<<63-1 || len(body) > MaxDataSize || Type(typ) < TypeRegister || Type(typ) > TypeRotate {
		return fmt.Errorf("%w: response fields", ErrMalformed)
	}
	out.Type, out.Time = Type(typ), int64(t)
	if len(body) > 0 {
		out.Data = append([]byte(nil), body...)
	}
	*r = out
	return nil
}

// SignedRequest is an encoded request with the requester's signature and
// one hop signature: signature 2 (app) between app and access layer, signature
// 3 (access layer) between access layer and contract and in the ledger.
type SignedRequest struct {
	Request   []byte // canonical Request encoding
	Requester Signature
	Hop       Signature
}

// MarshalBinary returns the canonical encoding of m.
func (m *SignedRequest) MarshalBinary() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(version)
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(m.Request) })
	b.AddBytes(m.Requester[:])
	b.AddBytes(m.Hop[:])
	return b.Bytes()
}

// UnmarshalBinary decodes m; malformed input fails with ErrMalformed. The
// embedded request is checked to decode too.
func (m *SignedRequest) UnmarshalBinary(data []byte) error {
	s := cryptobyte.String(data)
	var (
		v   uint8
		out SignedRequest
		req cryptobyte.String
	)
	if !s.ReadUint8(&v) || v != version ||
		!readUint32Prefixed(&s, &req) ||
		!s.CopyBytes(out.Requester[:]) ||
		!s.CopyBytes(out.Hop[:]) ||
		!s.Empty() {
		return fmt.Errorf("%w: signed request encoding", ErrMalformed)
	}
	var r Request
	if err := r.UnmarshalBinary(req); err != nil {
		return err
	}
	out.Request = append([]byte(nil), req...)
	*m = out
	return nil
}

// SignedResponse is an encoded response with one hop signature: signature 4
// (contract) or signature 5 (access layer).
type SignedResponse struct {
	Response []byte // canonical Response encoding
	Hop      Signature
}

// MarshalBinary returns the canonical encoding of m.
func (m *SignedResponse) MarshalBinary() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(version)
	b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(m.Response) })
	b.AddBytes(m.Hop[:])
	return b.Bytes()
}

// UnmarshalBinary decodes m; malformed input fails with ErrMalformed.
func (m *SignedResponse) UnmarshalBinary(data []byte) error {
	s := cryptobyte.String(data)
	var (
		v    uint8
		out  SignedResponse
		resp cryptobyte.String
	)
	if !s.ReadUint8(&v) || v != version ||
		!readUint32Prefixed(&s, &resp) ||
		!s.CopyBytes(out.Hop[:]) ||
		!s.Empty() {
		return fmt.Errorf("%w: signed response encoding", ErrMalformed)
	}
	var r Response
	if err := r.UnmarshalBinary(resp); err != nil {
		return err
	}
	out.Response = append([]byte(nil), resp...)
	*m = out
	return nil
}

// SessionGrant is the access layer's answer to OpenSession: a session key
// encapsulated (HPKE) to the app's temporary public key. The access layer
// signs it so that the app knows whom it shares the key with.
type SessionGrant struct {
	Session   SessionID
	Ephemeral []byte // the app's temporary public key, echoed
	Enc       []byte // HPKE encapsulated key
	SealedKey []byte // the session key sealed by HPKE
	Time      int64  // Unix nanoseconds
}

// maxGrantField bounds each variable field of a grant.
const maxGrantField = 255

// MarshalBinary returns the canonical encoding of g.
func (g *SessionGrant) MarshalBinary() ([]byte, error) {
	if len(g.Ephemeral) == 0 || len(g.Ephemeral) > maxGrantField || len(g.Enc) == 0 || len(g.Enc) > maxGrantField ||
		len(g.SealedKey) == 0 || len(g.SealedKey) > maxGrantField || g.Time <= 0 {
		return nil, fmt.Errorf("%w: session grant fields", ErrMalformed)
	}
	var b cryptobyte.Builder
	b.AddUint8(version)
	b.AddBytes(g.Session[:])
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(g.Ephemeral) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(g.Enc) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(g.SealedKey) })
	b.AddUint64(uint64(g.Time))
	return b.Bytes()
}

// UnmarshalBinary decodes g; malformed input fails with ErrMalformed.
func (g *SessionGrant) UnmarshalBinary(data []byte) error {
	s := cryptobyte.String(data)
	var (
		v              uint8
		out            SessionGrant
		eph, enc, seal cryptobyte.String
		t              uint64
	)
	if !s.ReadUint8(&v) || v != version ||
		!s.CopyBytes(out.Session[:]) ||
		!s.ReadUint8LengthPrefixed(&eph) ||
		!s.ReadUint8LengthPrefixed(&enc) ||
		!s.ReadUint8LengthPrefixed(&seal) ||
		!s.ReadUint64(&t) ||
		!s.Empty() {
		return fmt.Errorf("%w: session grant encoding", ErrMalformed)
	}
	if len(eph) == 0 || len(enc) == 0 || len(seal) == 0 || t == 0 || t > 1<<63-1 {
		return fmt.Errorf("%w: session grant fields", ErrMalformed)
	}
	out.Ephemeral = append([]byte(nil), eph...)
	out.Enc = append([]byte(nil), enc...)
	out.SealedKey = append([]byte(nil), seal...)
	out.Time = int64(t)
	*g = out
	return nil
}

// frame encodes a label and parts, each length-prefixed, so that no two
// different (label, parts) tuples give the same bytes.
func frame(label string, parts ...[]byte) []byte {
	var b cryptobyte.Builder
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(label)) })
	b.AddUint8(uint8(len(parts)))
	for _, p := range parts {
		b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(p) })
	}
	return b.BytesOrPanic() // lengths are bounded by the callers; a panic is a programmer error
}

// readUint32Prefixed reads a uint32 length followed by that many bytes (the
// counterpart of cryptobyte.Builder.AddUint32LengthPrefixed).
func readUint32Prefixed(s *cryptobyte.String, out *cryptobyte.String) bool {
	var n uint32
	if !s.ReadUint32(&n) || uint64(n) > uint64(len(*s)) {
		return false
	}
	var b []byte
	if !s.ReadBytes(&b, int(n)) {
		return false
	}
	*out = b
	return true
}
