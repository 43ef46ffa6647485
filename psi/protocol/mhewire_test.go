package protocol_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/psi/protocol"
	"github.com/mpsi-dev/mpsi/sharing/mhe"
)

const (
	kCT  = protocol.MheCiphertext
	kGal = protocol.MheGaloisShares
	kPK  = protocol.MhePublicKey
)

func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i) ^ seed
	}
	return b
}

// SizesOf gives every kind a positive length, the same for equal parameters.
func TestSizesOf(t *testing.T) {
	lit := mhe.ProfileB()
	lit.Parties, lit.Threshold, lit.Components, lit.MaxRecords, lit.MaxAbs = 3, 2, 2, 100, []uint64{10, 10}
	p, err := mhe.NewParams(lit)
	require.NoError(t, err)
	s, err := protocol.SizesOf(p)
	require.NoError(t, err)
	require.Len(t, s, 7)
	for k, v := range s {
		require.Positive(t, v, k)
	}
	// A real message has exactly that length.
	id, err := mhe.NewSessionID(p, "s")
	require.NoError(t, err)
	party, err := mhe.NewParty(p, id, 1)
	require.NoError(t, err)
	m, err := party.GenCKGShare()
	require.NoError(t, err)
	b, err := m.MarshalBinary()
	require.NoError(t, err)
	require.Len(t, b, s[protocol.MheCKGShare])
}

// Messages longer than a chunk travel in several and come back whole, one
// after the other.
func TestSplitAssemble(t *testing.T) {
	sizes := protocol.Sizes{kGal: 2*protocol.ChunkSize + 5, kCT: 100}
	a := protocol.NewAssembler(sizes, nil)
	for i, msg := range [][]byte{payload(sizes[kGal], 1), payload(100, 2), payload(100, 3)} {
		kind := kCT
		if len(msg) > 100 {
			kind = kGal
		}
		chunks := protocol.Split(protocol.Header{}, kind, uint32(i), msg)
		require.Len(t, chunks, (len(msg)+protocol.ChunkSize-1)/protocol.ChunkSize)
		for k, c := range chunks {
			got, done, err := a.Add(c)
			require.NoError(t, err)
			require.Equal(t, k == len(chunks)-1, done)
			require.Equal(t, done, !a.Pending())
			if done {
				require.Equal(t, msg, got)
			}
		}
	}
}

func TestAssemblerRefuses(t *testing.T) {
	sizes := protocol.Sizes{kCT: 10, kPK: 4}
	refuse := errors.New("not now")
	accept := func(k protocol.MheKind, idx uint32) error {
		if idx > 5 {
			return refuse
		}
		return nil
	}
	chunk := func(k protocol.MheKind, idx uint32, off, total uint64, data []byte) *protocol.MheChunk {
		return &protocol.MheChunk{Kind: k, Index: idx, Offset: off, Total: total, Data: data}
	}
	cases := []struct {
		name   string
		before []*protocol.MheChunk
		bad    *protocol.MheChunk
	}{
		{"unknown kind", nil, chunk(kGal, 0, 0, 10, payload(10, 0))},
		{"unspecified kind", nil, chunk(protocol.MheKind(0), 0, 0, 10, payload(10, 0))},
		{"wrong total", nil, chunk(kCT, 0, 0, 11, payload(10, 0))},
		{"huge total", nil, chunk(kCT, 0, 0, 1<<62, payload(10, 0))},
		{"empty data", nil, chunk(kCT, 0, 0, 10, nil)},
		{"first chunk not at 0", nil, chunk(kCT, 0, 3, 10, payload(3, 0))},
		{"refused by accept", nil, chunk(kCT, 6, 0, 10, payload(10, 0))},
		{"overrun", nil, chunk(kCT, 0, 0, 10, payload(11, 0))},
		{"gap", []*protocol.MheChunk{chunk(kCT, 0, 0, 10, payload(4, 0))}, chunk(kCT, 0, 5, 10, payload(5, 0))},
		{"replayed chunk", []*protocol.MheChunk{chunk(kCT, 0, 0, 10, payload(4, 0))}, chunk(kCT, 0, 0, 10, payload(4, 0))},
		{"interleaved index", []*protocol.MheChunk{chunk(kCT, 0, 0, 10, payload(4, 0))}, chunk(kCT, 1, 4, 10, payload(6, 0))},
		{"interleaved kind", []*protocol.MheChunk{chunk(kCT, 0, 0, 10, payload(4, 0))}, chunk(kPK, 0, 0, 4, payload(4, 0))},
		{"overrun later", []*protocol.MheChunk{chunk(kCT, 0, 0, 10, payload(4, 0))}, chunk(kCT, 0, 4, 10, payload(7, 0))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := protocol.NewAssembler(sizes, accept)
			for _, c := range tc.before {
				_, _, err := a.Add(c)
				require.NoError(t, err)
			}
			_, done, err := a.Add(tc.bad)
			require.ErrorIs(t, err, protocol.ErrChunk)
			require.False(t, done)
		})
	}
	// accept's error is wrapped.
	_, _, err := protocol.NewAssembler(sizes, accept).Add(chunk(kCT, 9, 0, 10, payload(10, 0)))
	require.ErrorIs(t, err, refuse)
}

// FuzzAssembler feeds arbitrary chunk sequences: no panic, and every
// completed message has exactly its kind's length.
func FuzzAssembler(f *testing.F) {
	f.Add([]byte{4, 0, 0, 10, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	f.Add([]byte{4, 0, 0, 10, 4, 1, 2, 3, 4, 4, 0, 4, 10, 6, 1, 2, 3, 4, 5, 6})
	f.Add([]byte{3, 1, 0, 4, 4, 9, 9, 9, 9})
	f.Fuzz(func(t *testing.T, in []byte) {
		sizes := protocol.Sizes{kCT: 10, kPK: 4}
		a := protocol.NewAssembler(sizes, nil)
		r := bytes.NewReader(in)
		for r.Len() >= 5 {
			var h [5]byte
			_, _ = r.Read(h[:])
			data := make([]byte, min(int(h[4]), r.Len()))
			_, _ = r.Read(data)
			c := &protocol.MheChunk{Kind: protocol.MheKind(h[0]), Index: uint32(h[1]), Offset: uint64(h[2]), Total: binary.BigEndian.Uint64(append(make([]byte, 7), h[3])), Data: data}
			msg, done, err := a.Add(c)
			if err != nil {
				a = protocol.NewAssembler(sizes, nil)
				continue
			}
			if done && len(msg) != sizes[c.Kind] {
				t.Fatalf("message of %d bytes for %v", len(msg), c.Kind)
			}
		}
	})
}
