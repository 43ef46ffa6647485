package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/mpsi-dev/mpsi/internal/envelope"
	"github.com/mpsi-dev/mpsi/psi"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// MaxMessageSize is the transport's message limit on both sides (the gRPC
// limit; the one definition in the tree). An encoded message is at most
// MaxEncodedSize, which leaves room for the transport's framing.
const MaxMessageSize = 16 << 20

// MaxEncodedSize is the largest encoded message.
const MaxEncodedSize = MaxMessageSize - 64

// Version is the first byte of every encoded message.
const Version = 1

// Limits the codec enforces on fields, before allocating anything for them.
const (
	// MaxSpecSize bounds the spec JSON in a Welcome.
	MaxSpecSize = 1 << 20
	// MaxParties bounds the entries of a Roster.
	MaxParties = 1024
	// MaxNameSize bounds a party name in a Roster entry.
	MaxNameSize = 128
	// MaxCertificateSize bounds a certificate (DER) in a Roster entry.
	MaxCertificateSize = 16 << 10
	// MaxSignatureSize bounds a signature.
	MaxSignatureSize = 512
	// MaxNormalizationSize bounds the normalisation version in a Ready.
	MaxNormalizationSize = 100
	// MaxReasonSize bounds an Abort's reason.
	MaxReasonSize = 1024
	// MaxResultSize bounds a Result's JSON.
	MaxResultSize = 8 << 20
	// ChunkSize bounds the data of one MheChunk.
	ChunkSize = 4 << 20
)

// ErrMalformed reports bytes that are not one well-formed message: a wrong
// version or type, a field out of its range or over its limit, truncated
// input or trailing bytes.
var ErrMalformed = errors.New("protocol: malformed message")

// Encode returns the canonical encoding of m. It refuses (with
// [ErrMalformed]) a message that [Decode] would refuse, so that nothing is
// sent that the other side cannot read.
func Encode(m Message) ([]byte, error) {
	b, err := AppendEncode(nil, m)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// AppendEncode appends the canonical encoding of m to b.
func AppendEncode(b []byte, m Message) ([]byte, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: nil message", ErrMalformed)
	}
	h := m.Head()
	if len(h.Session) > psi.MaxSessionIDSize {
		return nil, fmt.Errorf("%w: session id of %d bytes", ErrMalformed, len(h.Session))
	}
	w := writer{b: b}
	w.u8(Version)
	w.u8(uint8(m.Type()))
	w.str16(h.Session)
	w.u32(uint32(h.From))
	switch x := m.(type) {
	case *Hello:
	case *Welcome:
		w.bytes(x.Spec)
		w.u32(x.Index)
		w.u32(x.MaxBatch)
	case *Ready:
		w.u64(x.SetSize)
		w.bytes(x.HPKEKey)
		w.bytes(x.Signature)
		w.bytes([]byte(x.Normalization))
	case *Roster:
		w.u32(uint32(len(x.Entries)))
		for _, e := range x.Entries {
			w.bytes([]byte(e.Name))
			w.u64(e.SetSize)
			w.bytes(e.HPKEKey)
			w.bytes(e.Signature)
			w.bytes(e.Certificate)
		}
	case *Envelope:
		w.u32(uint32(x.Round))
		w.u32(x.FromParty)
		w.u32(x.To)
		w.bytes(x.Enc)
		w.bytes(x.Ciphertext)
	case *Batch:
		w.u8(uint8(x.Kind))
		w.u32(x.Owner)
		w.u32(x.Hop)
		w.u8(x.Key)
		w.u64(x.Offset)
		w.u64(x.Total)
		w.bytes(x.Data)
		w.bytes(x.MAC)
	case *MaskDeal:
		w.bytes(x.Mask)
	case *Share:
		w.bytes(x.Vector)
	case *MheChunk:
		w.u8(uint8(x.Kind))
		w.u32(x.Index)
		w.u64(x.Offset)
		w.u64(x.Total)
		w.bytes(x.Data)
	case *Abort:
		w.u8(uint8(x.Code))
		w.bytes([]byte(x.Reason))
	case *Result:
		w.bytes(x.JSON)
		w.bytes(x.Signature)
	case *Credit:
		w.u8(x.Key)
		w.u64(x.Done)
	case *Attestation:
		w.u32(x.Party)
		w.bytes(x.Digests)
		w.bytes(x.Signature)
	case *Tally:
		w.u64(x.Intersection)
		w.u32(uint32(len(x.Pairwise)))
		for _, v := range x.Pairwise {
			w.u64(v)
		}
		w.bytes(x.Signature)
	default:
		return nil, fmt.Errorf("%w: unknown message %T", ErrMalformed, m)
	}
	if len(w.b)-len(b) > MaxEncodedSize {
		return nil, fmt.Errorf("%w: %s of %d bytes exceeds %d", ErrMalformed, m.Type(), len(w.b)-len(b), MaxEncodedSize)
	}
	// Check against the decoder's rules: whatever we send must decode.
	if _, err := Decode(w.b[len(b):]); err != nil {
		return nil, err
	}
	return w.b, nil
}

// Decode parses one message. Every length is checked against its field's
// limit and against the bytes actually present before anything is
// allocated, enums against their ranges, strings for UTF-8, and no byte may
// follow the message. The returned message does not alias b.
func Decode(b []byte) (Message, error) {
	if len(b) > MaxEncodedSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrMalformed, len(b), MaxEncodedSize)
	}
	r := reader{b: b}
	if v := r.u8("version"); r.err == nil && v != Version {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrMalformed, v, Version)
	}
	t := Type(r.u8("type"))
	h := Header{Session: r.str16("session", psi.MaxSessionIDSize)}
	h.From = Sender(r.u32("from"))
	if r.err != nil {
		return nil, r.err
	}
	var m Message
	switch t {
	case TypeHello:
		m = &Hello{Header: h}
	case TypeWelcome:
		x := &Welcome{Header: h}
		x.Spec = r.bytes("spec", 1, MaxSpecSize)
		x.Index = r.u32("index")
		x.MaxBatch = r.u32("max_batch")
		m = x
	case TypeReady:
		x := &Ready{Header: h}
		x.SetSize = r.u64("set_size")
		x.HPKEKey = r.bytes("hpke_key", envelope.EncSize, envelope.EncSize)
		x.Signature = r.bytes("signature", 1, MaxSignatureSize)
		x.Normalization = r.str("normalization", 0, MaxNormalizationSize)
		m = x
	case TypeRoster:
		x := &Roster{Header: h}
		k := r.u32("entries")
		if r.err == nil && (k < 2 || k > MaxParties) {
			r.fail("entries", "%d entries", k)
		}
		for i := uint32(0); r.err == nil && i < k; i++ {
			// Each entry needs at least its fixed-size fields: no
			// allocation for entries the input cannot hold.
			var e RosterEntry
			e.Name = r.str("roster.name", 1, MaxNameSize)
			e.SetSize = r.u64("roster.set_size")
			e.HPKEKey = r.bytes("roster.hpke_key", envelope.EncSize, envelope.EncSize)
			e.Signature = r.bytes("roster.signature", 1, MaxSignatureSize)
			e.Certificate = r.bytes("roster.certificate", 1, MaxCertificateSize)
			x.Entries = append(x.Entries, e)
		}
		m = x
	case TypeEnvelope:
		x := &Envelope{Header: h}
		x.Round = EnvelopeRound(r.u32("round"))
		limit := envelope.MaxEnvelopeSealed
		switch x.Round {
		case EnvelopeKeyContribution, EnvelopeMaskSeed, EnvelopeRingKey:
		case EnvelopeThresholdShare:
			limit = envelope.MaxBulkSealed
		default:
			r.fail("round", "unknown envelope round %d", uint32(x.Round))
		}
		x.FromParty = r.u32("from_party")
		x.To = r.u32("to")
		x.Enc = r.bytes("enc", envelope.EncSize, envelope.EncSize)
		x.Ciphertext = r.bytes("ciphertext", 1, limit)
		m = x
	case TypeBatch:
		x := &Batch{Header: h}
		x.Kind = BatchKind(r.u8("kind"))
		if r.err == nil && (x.Kind < BatchRing || x.Kind > BatchUpload) {
			r.fail("kind", "unknown batch kind %d", uint8(x.Kind))
		}
		x.Owner = r.u32("owner")
		x.Hop = r.u32("hop")
		x.Key = r.u8("key")
		if r.err == nil && x.Key >= session.MaxMatchKeys {
			r.fail("key", "match key %d (at most %d keys)", x.Key, session.MaxMatchKeys)
		}
		if r.err == nil && x.Key != 0 && x.Kind != BatchRing && x.Kind != BatchTokens {
			r.fail("key", "match key %d on a %s batch", x.Key, x.Kind)
		}
		x.Offset = r.u64("offset")
		x.Total = r.u64("total")
		x.Data = r.bytes("data", 0, MaxEncodedSize)
		x.MAC = r.bytes("mac", 0, RingMACSize)
		if r.err == nil && len(x.MAC) != 0 && len(x.MAC) != RingMACSize {
			r.fail("mac", "length %d", len(x.MAC))
		}
		if r.err == nil && x.Offset > x.Total {
			r.fail("offset", "offset %d beyond total %d", x.Offset, x.Total)
		}
		m = x
	case TypeMaskDeal:
		x := &MaskDeal{Header: h}
		x.Mask = r.bytes("mask", 1, MaxEncodedSize)
		m = x
	case TypeShare:
		x := &Share{Header: h}
		x.Vector = r.bytes("vector", 1, MaxEncodedSize)
		m = x
	case TypeMhe:
		x := &MheChunk{Header: h}
		x.Kind = MheKind(r.u8("kind"))
		if r.err == nil && (x.Kind < MheCKGShare || x.Kind > MhePCKSShare) {
			r.fail("kind", "unknown encrypted-aggregation kind %d", uint8(x.Kind))
		}
		x.Index = r.u32("index")
		x.Offset = r.u64("offset")
		x.Total = r.u64("total")
		x.Data = r.bytes("data", 1, ChunkSize)
		if r.err == nil && x.Offset+uint64(len(x.Data)) > x.Total {
			r.fail("offset", "chunk [%d, %d) beyond total %d", x.Offset, x.Offset+uint64(len(x.Data)), x.Total)
		}
		m = x
	case TypeAbort:
		x := &Abort{Header: h}
		x.Code = Code(r.u8("code"))
		if r.err == nil && x.Code > maxCode {
			r.fail("code", "unknown code %d", uint8(x.Code))
		}
		x.Reason = r.str("reason", 0, MaxReasonSize)
		m = x
	case TypeTally:
		x := &Tally{Header: h}
		x.Intersection = r.u64("intersection")
		k := r.u32("pairwise")
		if r.err == nil && k != 0 && (k > MaxParties*MaxParties || uint64(k)*8 > uint64(len(r.b))) {
			r.fail("pairwise", "%d cells", k)
		}
		if r.err == nil && k != 0 {
			x.Pairwise = make([]uint64, k)
			for i := range x.Pairwise {
				x.Pairwise[i] = r.u64("pairwise")
			}
		}
		x.Signature = r.bytes("signature", 1, MaxSignatureSize)
		m = x
	case TypeCredit:
		x := &Credit{Header: h, Key: r.u8("key")}
		if r.err == nil && x.Key >= session.MaxMatchKeys {
			r.fail("key", "match key %d (at most %d keys)", x.Key, session.MaxMatchKeys)
		}
		x.Done = r.u64("done")
		m = x
	case TypeAttest:
		x := &Attestation{Header: h}
		x.Party = r.u32("party")
		x.Digests = r.bytes("digests", 64, MaxParties*32)
		if r.err == nil && len(x.Digests)%32 != 0 {
			r.fail("digests", "length %d is not a multiple of 32", len(x.Digests))
		}
		x.Signature = r.bytes("signature", 1, MaxSignatureSize)
		m = x
	case TypeResult:
		x := &Result{Header: h}
		x.JSON = r.bytes("json", 1, MaxResultSize)
		x.Signature = r.bytes("signature", 1, MaxSignatureSize)
		m = x
	default:
		return nil, fmt.Errorf("%w: unknown type %d", ErrMalformed, uint8(t))
	}
	if r.err != nil {
		return nil, fmt.Errorf("%s: %w", t, r.err)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %s: %d trailing bytes", ErrMalformed, t, len(r.b))
	}
	return m, nil
}

type writer struct{ b []byte }

func (w *writer) u8(v uint8)   { w.b = append(w.b, v) }
func (w *writer) u32(v uint32) { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *writer) u64(v uint64) { w.b = binary.BigEndian.AppendUint64(w.b, v) }
func (w *writer) bytes(v []byte) {
	w.u32(uint32(len(v)))
	w.b = append(w.b, v...)
}
func (w *writer) str16(s string) {
	w.b = binary.BigEndian.AppendUint16(w.b, uint16(len(s)))
	w.b = append(w.b, s...)
}

// reader consumes b; the first failure sticks in err and later reads
// return zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(field, format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: field %s: %s", ErrMalformed, field, fmt.Sprintf(format, a...))
	}
}

func (r *reader) take(field string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.fail(field, "needs %d bytes, %d left", n, len(r.b))
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8(field string) uint8 {
	if v := r.take(field, 1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u32(field string) uint32 {
	if v := r.take(field, 4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *reader) u64(field string) uint64 {
	if v := r.take(field, 8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// bytes reads a u32 length and that many bytes, which must lie in
// [lo, hi]; the length is checked before the copy is allocated.
func (r *reader) bytes(field string, lo, hi int) []byte {
	n := r.u32(field)
	if r.err != nil {
		return nil
	}
	if uint64(n) < uint64(lo) || uint64(n) > uint64(hi) {
		r.fail(field, "length %d outside [%d, %d]", n, lo, hi)
		return nil
	}
	v := r.take(field, int(n))
	if v == nil {
		return nil
	}
	return append([]byte(nil), v...)
}

func (r *reader) str(field string, lo, hi int) string {
	b := r.bytes(field, lo, hi)
	if r.err == nil && !utf8.Valid(b) {
		r.fail(field, "not UTF-8")
	}
	return string(b)
}

func (r *reader) str16(field string, hi int) string {
	v := r.take(field, 2)
	if v == nil {
		return ""
	}
	n := int(binary.BigEndian.Uint16(v))
	if n > hi {
		r.fail(field, "length %d over %d", n, hi)
		return ""
	}
	s := r.take(field, n)
	if r.err == nil && !utf8.Valid(s) {
		r.fail(field, "not UTF-8")
	}
	return string(s)
}

// RingMACSize is the size of a ring batch's MAC (HMAC-SHA256).
const RingMACSize = 32
