package protocol

import "fmt"

// Sender identifies who sent a message: a party's index in the spec's
// parties, or one of the two constants below.
type Sender uint32

const (
	// FromCoordinator is the sender of every coordinator message.
	FromCoordinator Sender = 0xFFFFFFFF
	// FromUnassigned is the sender of a party's Hello: the party learns its
	// index from the Welcome.
	FromUnassigned Sender = 0xFFFFFFFE
)

// String names the sender for logs.
func (s Sender) String() string {
	switch s {
	case FromCoordinator:
		return "coordinator"
	case FromUnassigned:
		return "unassigned"
	}
	return fmt.Sprintf("party %d", uint32(s))
}

// Type is a message's type, the second byte of its encoding.
type Type uint8

// Message types. The numbers are part of the wire format.
const (
	TypeHello    Type = 1
	TypeWelcome  Type = 2
	TypeReady    Type = 3
	TypeRoster   Type = 4
	TypeEnvelope Type = 5
	TypeBatch    Type = 6
	TypeMaskDeal Type = 7
	TypeShare    Type = 8
	TypeMhe      Type = 9
	TypeAbort    Type = 10
	TypeResult   Type = 11
	TypeTally    Type = 12
	TypeAttest   Type = 13
	TypeCredit   Type = 14
)

var typeNames = map[Type]string{
	TypeHello: "Hello", TypeWelcome: "Welcome", TypeReady: "Ready", TypeRoster: "Roster",
	TypeEnvelope: "Envelope", TypeBatch: "Batch", TypeMaskDeal: "MaskDeal", TypeShare: "Share",
	TypeMhe: "MheChunk", TypeAbort: "Abort", TypeResult: "Result", TypeTally: "Tally", TypeAttest: "Attestation", TypeCredit: "Credit",
}

// String is the message type's name.
func (t Type) String() string {
	if s, ok := typeNames[t]; ok {
		return s
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Header is carried by every message: the session it belongs to and its
// sender. Receivers check both against what they know (the session they
// run, the authenticated stream it came on) before acting on the body.
type Header struct {
	Session string
	From    Sender
}

// Message is one protocol message. The concrete types are the pointer types
// below; [Encode] and [Decode] are their one canonical codec.
type Message interface {
	// Type is the message's wire type.
	Type() Type
	// Head returns the message's header, for reading or setting.
	Head() *Header
}

// Head returns the header.
func (h *Header) Head() *Header { return h }

// EnvelopeRound is the protocol step a sealed envelope belongs to. It is
// bound into the envelope's associated data, so its numbers are protocol
// constants (api/mpsi/v1's Round enum mirrors them; nothing cryptographic
// depends on the .proto).
type EnvelopeRound uint32

// Envelope rounds.
const (
	// EnvelopeKeyContribution carries a keyed-mode group-key contribution (32
	// bytes).
	EnvelopeKeyContribution EnvelopeRound = 2
	// EnvelopeMaskSeed carries a pairwise mask seed s_ij (32 bytes).
	EnvelopeMaskSeed EnvelopeRound = 4
	// EnvelopeThresholdShare carries a Shamir share of a BGV secret-key share
	// (aggregation encrypted with t < n), in a bulk envelope.
	EnvelopeThresholdShare EnvelopeRound = 6
	// EnvelopeRingKey carries the key (32 bytes) with which a party
	// authenticates the ring batches it sends to the next party (dh mode):
	// party i seals it to party i+1 (mod n) only.
	EnvelopeRingKey EnvelopeRound = 8
)

// String names the envelope round.
func (r EnvelopeRound) String() string {
	switch r {
	case EnvelopeKeyContribution:
		return "key-contribution"
	case EnvelopeMaskSeed:
		return "mask-seed"
	case EnvelopeThresholdShare:
		return "threshold-share"
	case EnvelopeRingKey:
		return "ring-key"
	}
	return fmt.Sprintf("EnvelopeRound(%d)", uint32(r))
}

// BatchKind is what a [Batch] carries.
type BatchKind uint8

// Batch kinds (wire constants).
const (
	// BatchRing is a slice of a dh ring list: 32-byte ristretto255 points.
	BatchRing BatchKind = 1
	// BatchTokens is a slice of a keyed-mode token list: 32-byte HMACs.
	BatchTokens BatchKind = 2
	// BatchPositions is a slice of a party's intersection positions:
	// 4-byte little-endian uint32s.
	BatchPositions BatchKind = 3
	// BatchIndicator is, in oblivious aggregation, a slice of another
	// party's (Owner's) 0/1 intersection indicator over its shuffled
	// positions, packed 8 positions a byte (least significant bit first);
	// Offset and Total count positions, Offset a multiple of 8.
	BatchIndicator BatchKind = 4
	// BatchUpload is, in oblivious aggregation, a slice of a party's masked
	// contributions y_i[p] for every record: L little-endian uint64s per
	// position; Offset and Total count positions.
	BatchUpload BatchKind = 5
)

// String names the batch kind.
func (k BatchKind) String() string {
	switch k {
	case BatchRing:
		return "ring"
	case BatchTokens:
		return "tokens"
	case BatchPositions:
		return "positions"
	case BatchIndicator:
		return "indicator"
	case BatchUpload:
		return "upload"
	}
	return fmt.Sprintf("BatchKind(%d)", uint8(k))
}

// MheKind is the sharing/mhe message an [MheChunk] is a slice of.
type MheKind uint8

// Kinds of aggregation-encrypted messages (wire constants).
const (
	// MheCKGShare: party to coordinator, its collective-public-key share.
	MheCKGShare MheKind = 1
	// MheGaloisShares: party to coordinator, its Galois-key shares.
	MheGaloisShares MheKind = 2
	// MhePublicKey: coordinator to party, the collective public key.
	MhePublicKey MheKind = 3
	// MheCiphertext: party to coordinator, contribution ciphertext Index.
	MheCiphertext MheKind = 4
	// MheRecipientKey: coordinator to party, the release key of request Index.
	MheRecipientKey MheKind = 5
	// MhePCKSRequest: coordinator to party, key-switch request Index.
	MhePCKSRequest MheKind = 6
	// MhePCKSShare: party to coordinator, its answer to request Index.
	MhePCKSShare MheKind = 7
)

// String names the kind.
func (k MheKind) String() string {
	switch k {
	case MheCKGShare:
		return "ckg-share"
	case MheGaloisShares:
		return "galois-shares"
	case MhePublicKey:
		return "public-key"
	case MheCiphertext:
		return "ciphertext"
	case MheRecipientKey:
		return "recipient-key"
	case MhePCKSRequest:
		return "pcks-request"
	case MhePCKSShare:
		return "pcks-share"
	}
	return fmt.Sprintf("MheKind(%d)", uint8(k))
}

// Hello opens a party's participation in a session.
type Hello struct {
	Header
}

// Welcome gives the party the spec it is asked to take part in, its index
// and the batch limit.
type Welcome struct {
	Header
	// Spec is the spec's canonical JSON.
	Spec     []byte
	Index    uint32
	MaxBatch uint32
}

// Ready declares the party's set size and its session HPKE public key,
// signed with its certificate's key, and its identifier normalisation
// version.
type Ready struct {
	Header
	SetSize       uint64
	HPKEKey       []byte
	Signature     []byte
	Normalization string
}

// RosterEntry is one party's line in the [Roster].
type RosterEntry struct {
	Name      string
	SetSize   uint64
	HPKEKey   []byte
	Signature []byte
	// Certificate is the party's certificate (DER), against which the
	// others check the signature over its HPKE key.
	Certificate []byte
}

// Roster lists every party once all are ready, in spec order.
type Roster struct {
	Header
	Entries []RosterEntry
}

// Envelope is a party-to-party payload sealed with HPKE to the recipient's
// session key, bound to (session, round, from, to). The coordinator relays
// it unopened: the header names the sender of each hop, FromParty the party
// that sealed it.
type Envelope struct {
	Header
	Round      EnvelopeRound
	FromParty  uint32
	To         uint32
	Enc        []byte
	Ciphertext []byte
}

// Batch is one slice of a streamed list. For the dh ring, Owner is the
// party whose list it is and Hop the number of exponentiations applied by
// parties other than the owner (from a party: the hop it just did). A ring
// batch carries MAC, computed by the party that produced it with the key it
// sealed to the next party in the ring (the coordinator only relays it):
// the next party refuses a batch the coordinator made, altered, replayed,
// reordered or re-addressed.
type Batch struct {
	Header
	Kind  BatchKind
	Owner uint32
	Hop   uint32
	// Key is the match key whose list this is (0 with one key): a spec
	// with several keys runs one ring (dh) or one token list (keyed) per
	// key. Ring and token batches only; 0 elsewhere.
	Key    uint8
	Offset uint64
	Total  uint64
	Data   []byte
	MAC    []byte
}

// MaskDeal is the party's zero-sum mask r_i (a [sharing.Vector] encoding).
type MaskDeal struct {
	Header
	Mask []byte
}

// Share is the party's masked vector z_i (a [sharing.Vector] encoding).
type Share struct {
	Header
	Vector []byte
}

// MheChunk is bytes [Offset, Offset+len(Data)) of one encoded sharing/mhe
// message of Total bytes.
type MheChunk struct {
	Header
	Kind   MheKind
	Index  uint32
	Offset uint64
	Total  uint64
	Data   []byte
}

// Abort ends the session; nothing is released.
type Abort struct {
	Header
	Code   Code
	Reason string
}

// Tally is the coordinator's signed statement of the join's counts, sent to
// every party before any aggregation step: |I| and, when the spec reveals
// it, the pairwise matrix (row-major, n × n). Each party checks its
// positions against it, refuses to contribute below min_cell, and checks the
// Result against it.
type Tally struct {
	Header
	Intersection uint64
	Pairwise     []uint64
	Signature    []byte
}

// Attestation is a party's signed statement, in oblivious aggregation, of
// the SHA-256 digests of the indicators it received: Digests holds n
// digests of 32 bytes in party order, the party's own slot zero. The
// coordinator relays every party's attestation to every party, which checks
// that all parties received the same indicator of each party.
type Attestation struct {
	Header
	Party     uint32
	Digests   []byte
	Signature []byte
}

// Credit tells a party, in dh mode, how much of its own list has come back
// from the ring (the coordinator holds its final tokens up to Done): a
// party keeps at most RingWindow batches of its own list in flight, so the
// coordinator's queues stay bounded without ever blocking a hop.
type Credit struct {
	Header
	Key  uint8 // the match key whose list it is
	Done uint64
}

// Result is the released Result JSON and the coordinator's signature.
type Result struct {
	Header
	JSON      []byte
	Signature []byte
}

// Type implementations.

// Type returns TypeHello.
func (*Hello) Type() Type { return TypeHello }

// Type returns TypeWelcome.
func (*Welcome) Type() Type { return TypeWelcome }

// Type returns TypeReady.
func (*Ready) Type() Type { return TypeReady }

// Type returns TypeRoster.
func (*Roster) Type() Type { return TypeRoster }

// Type returns TypeEnvelope.
func (*Envelope) Type() Type { return TypeEnvelope }

// Type returns TypeBatch.
func (*Batch) Type() Type { return TypeBatch }

// Type returns TypeMaskDeal.
func (*MaskDeal) Type() Type { return TypeMaskDeal }

// Type returns TypeShare.
func (*Share) Type() Type { return TypeShare }

// Type returns TypeMhe.
func (*MheChunk) Type() Type { return TypeMhe }

// Type returns TypeAbort.
func (*Abort) Type() Type { return TypeAbort }

// Type returns TypeResult.
func (*Result) Type() Type { return TypeResult }

// Type returns TypeTally.
func (*Tally) Type() Type { return TypeTally }

// Type returns TypeAttest.
func (*Attestation) Type() Type { return TypeAttest }

// Type returns TypeCredit.
func (*Credit) Type() Type { return TypeCredit }
