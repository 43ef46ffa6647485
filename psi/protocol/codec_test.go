package protocol

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/internal/envelope"
)

func h(from Sender) Header { return Header{Session: "s-1", From: from} }

// sampleMessages has one valid message of every type.
func sampleMessages() []Message {
	k32 := bytes.Repeat([]byte{7}, 32)
	return []Message{
		&Hello{Header: h(FromUnassigned)},
		&Welcome{Header: h(FromCoordinator), Spec: []byte(`{"id":"s-1"}`), Index: 2, MaxBatch: 8},
		&Ready{Header: h(1), SetSize: 1 << 40, HPKEKey: k32, Signature: []byte{1, 2}, Normalization: "ident/1"},
		&Roster{Header: h(FromCoordinator), Entries: []RosterEntry{
			{Name: "a", SetSize: 3, HPKEKey: k32, Signature: []byte{1}, Certificate: []byte{2}},
			{Name: "b", SetSize: 0, HPKEKey: k32, Signature: []byte{3}, Certificate: []byte{4}}}},
		&Envelope{Header: h(0), Round: EnvelopeMaskSeed, FromParty: 0, To: 1, Enc: k32, Ciphertext: make([]byte, 48)},
		&Envelope{Header: h(0), Round: EnvelopeThresholdShare, FromParty: 0, To: 1, Enc: k32, Ciphertext: make([]byte, 1000)},
		&Batch{Header: h(0), Kind: BatchRing, Owner: 1, Hop: 2, Offset: 8, Total: 16, Data: make([]byte, 64)},
		&Batch{Header: h(FromCoordinator), Kind: BatchPositions, Owner: 0, Offset: 0, Total: 0},
		&MaskDeal{Header: h(FromCoordinator), Mask: []byte{1, 2, 3}},
		&Share{Header: h(2), Vector: []byte{4, 5}},
		&MheChunk{Header: h(1), Kind: MheCiphertext, Index: 3, Offset: 4, Total: 10, Data: []byte{1, 2, 3}},
		&Abort{Header: h(1), Code: CodePolicy, Reason: "policy refuses field x"},
		&Result{Header: h(FromCoordinator), JSON: []byte(`{}`), Signature: []byte{9}},
		&Tally{Header: h(FromCoordinator), Intersection: 3, Pairwise: []uint64{5, 3, 3, 4}, Signature: []byte{9}},
		&Tally{Header: h(FromCoordinator), Intersection: 0, Signature: []byte{9}},
		&Attestation{Header: h(1), Party: 1, Digests: make([]byte, 64), Signature: []byte{8}},
		&Batch{Header: h(0), Kind: BatchRing, Owner: 0, Hop: 0, Offset: 0, Total: 1, Data: make([]byte, 32), MAC: make([]byte, 32)},
		&Batch{Header: h(FromCoordinator), Kind: BatchIndicator, Owner: 1, Offset: 8, Total: 12, Data: []byte{0x0f}},
		&Batch{Header: h(2), Kind: BatchTokens, Owner: 2, Key: 7, Offset: 0, Total: 1, Data: make([]byte, 32)},
		&Credit{Header: h(FromCoordinator), Key: 3, Done: 64},
	}
}

// Every message survives Encode → Decode unchanged, and the encoding is
// canonical: re-encoding the decoded message gives the same bytes.
func TestCodecRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		t.Run(m.Type().String(), func(t *testing.T) {
			b, err := Encode(m)
			require.NoError(t, err)
			d, err := Decode(b)
			require.NoError(t, err)
			require.Equal(t, m, d)
			b2, err := Encode(d)
			require.NoError(t, err)
			require.Equal(t, b, b2)
		})
	}
}

// A test vector pins the wire format: a Hello for session "s" from an
// unassigned sender.
func TestCodecVector(t *testing.T) {
	b, err := Encode(&Hello{Header: Header{Session: "s", From: FromUnassigned}})
	require.NoError(t, err)
	require.Equal(t, "0101"+"0001"+"73"+"fffffffe", hex.EncodeToString(b))
}

// The decoder refuses, with ErrMalformed, every way bytes can fail to be
// one message, before allocating anything for a declared length.
func TestCodecRefuses(t *testing.T) {
	valid, err := Encode(&Batch{Header: h(0), Kind: BatchRing, Total: 2, Data: make([]byte, 64)})
	require.NoError(t, err)
	lenAt := len(valid) - 4 - 64 - 4 // the data length field (data, then an empty MAC)
	set := func(b []byte, off int, v uint32) []byte {
		c := bytes.Clone(b)
		binary.BigEndian.PutUint32(c[off:], v)
		return c
	}
	cases := map[string][]byte{
		"empty":                 nil,
		"wrong version":         append([]byte{2}, valid[1:]...),
		"unknown type":          append([]byte{1, 99}, valid[2:]...),
		"truncated header":      valid[:3],
		"truncated body":        valid[:len(valid)-1],
		"trailing byte":         append(bytes.Clone(valid), 0),
		"length past the input": set(valid, lenAt, 1<<30),
		"length over any limit": set(valid, lenAt, 0xffffffff),
		"unknown batch kind":    func() []byte { c := bytes.Clone(valid); c[2+2+3+4] = 9; return c }(),
		"match key 8":           func() []byte { c := bytes.Clone(valid); c[2+2+3+4+1+4+4] = 8; return c }(),
		"match key on positions": mustEncodeRaw(t, TypeBatch, func(w *writer) {
			w.u8(uint8(BatchPositions))
			w.u32(0)
			w.u32(0)
			w.u8(1)
			w.u64(0)
			w.u64(0)
			w.bytes(nil)
			w.bytes(nil)
		}),
		"credit for match key 8":           mustEncodeRaw(t, TypeCredit, func(w *writer) { w.u8(8); w.u64(1) }),
		"session id too long":              append([]byte{1, 1, 0xff, 0xff}, make([]byte, 10)...),
		"session id not utf-8":             []byte{1, 1, 0, 2, 0xff, 0xfe, 0, 0, 0, 0},
		"abort code out of range":          mustEncodeRaw(t, TypeAbort, func(w *writer) { w.u8(99); w.bytes(nil) }),
		"reason over its limit":            mustEncodeRaw(t, TypeAbort, func(w *writer) { w.u8(1); w.bytes(make([]byte, MaxReasonSize+1)) }),
		"roster of one":                    mustEncodeRaw(t, TypeRoster, func(w *writer) { w.u32(1) }),
		"roster of 2^32-1 (no allocation)": mustEncodeRaw(t, TypeRoster, func(w *writer) { w.u32(0xffffffff) }),
		"roster entries missing":           mustEncodeRaw(t, TypeRoster, func(w *writer) { w.u32(MaxParties) }),
		"hpke key of 31 bytes": mustEncodeRaw(t, TypeReady, func(w *writer) {
			w.u64(1)
			w.bytes(make([]byte, 31))
			w.bytes([]byte{1})
			w.bytes(nil)
		}),
		"envelope round unknown": mustEncodeRaw(t, TypeEnvelope, func(w *writer) {
			w.u32(3)
			w.u32(0)
			w.u32(1)
			w.bytes(make([]byte, 32))
			w.bytes(make([]byte, 48))
		}),
		"mask-seed envelope too long": mustEncodeRaw(t, TypeEnvelope, func(w *writer) {
			w.u32(uint32(EnvelopeMaskSeed))
			w.u32(0)
			w.u32(1)
			w.bytes(make([]byte, 32))
			w.bytes(make([]byte, envelope.MaxEnvelopeSealed+1))
		}),
		"chunk past its total": mustEncodeRaw(t, TypeMhe, func(w *writer) {
			w.u8(uint8(MheCiphertext))
			w.u32(0)
			w.u64(8)
			w.u64(10)
			w.bytes(make([]byte, 3))
		}),
		"empty chunk": mustEncodeRaw(t, TypeMhe, func(w *writer) {
			w.u8(uint8(MheCiphertext))
			w.u32(0)
			w.u64(0)
			w.u64(10)
			w.bytes(nil)
		}),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(b)
			require.ErrorIs(t, err, ErrMalformed)
		})
	}
	// Encode refuses what Decode would.
	_, err = Encode(&Ready{Header: h(0), HPKEKey: make([]byte, 31), Signature: []byte{1}})
	require.ErrorIs(t, err, ErrMalformed)
	_, err = Encode(nil)
	require.ErrorIs(t, err, ErrMalformed)
}

// mustEncodeRaw writes a message of type t for session "s-1" from party 0
// with a hand-written body.
func mustEncodeRaw(t testing.TB, typ Type, body func(*writer)) []byte {
	w := writer{}
	w.u8(Version)
	w.u8(uint8(typ))
	w.str16("s-1")
	w.u32(0)
	body(&w)
	return w.b
}

// FuzzDecode: Decode never panics, and whatever it accepts re-encodes to
// the same bytes (the encoding is canonical).
func FuzzDecode(f *testing.F) {
	for _, m := range sampleMessages() {
		b, err := Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{1, 4, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Encode(m)
		if err != nil {
			t.Fatalf("decoded %s does not re-encode: %v", m.Type(), err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("%s: not canonical:\n in  %x\n out %x", m.Type(), b, again)
		}
	})
}
