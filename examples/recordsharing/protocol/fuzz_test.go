package protocol_test

import (
	"bytes"
	"encoding"
	"errors"
	"testing"

	"github.com/mpsi-dev/mpsi/examples/recordsharing/protocol"
)

type codec interface {
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

// fuzzCodec checks that decoding never panics, that refusals are
// ErrMalformed, and that accepted input re-encodes to identical bytes.
func fuzzCodec(f *testing.F, seeds [][]byte, fresh func() codec) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, data []byte) {
		m := fresh()
		if err := m.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, protocol.ErrMalformed) {
				t.Fatalf("UnmarshalBinary error %v is not ErrMalformed", err)
			}
			return
		}
		again, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("re-encoding accepted input: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("accepted non-canonical input: %x re-encodes to %x", data, again)
		}
	})
}

func requestSeeds(f *testing.F) [][]byte {
	var out [][]byte
	for _, r := range sampleRequests(f) {
		b, err := r.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func FuzzUnmarshalRequest(f *testing.F) {
	fuzzCodec(f, requestSeeds(f), func() codec { return new(protocol.Request) })
}

func FuzzUnmarshalResponse(f *testing.F) {
	var seeds [][]byte
	for _, r := range []protocol.Response{
		{Type: protocol.TypeView, Data: []byte("record"), Seq: 2, Time: 10},
		{Type: protocol.TypeRegister, Seq: 1, Time: 1},
	} {
		b, err := r.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	fuzzCodec(f, seeds, func() codec { return new(protocol.Response) })
}

func FuzzUnmarshalSignedRequest(f *testing.F) {
	var seeds [][]byte
	for _, r := range requestSeeds(f) {
		b, err := (&protocol.SignedRequest{Request: r, Requester: protocol.Signature{1}, Hop: protocol.Signature{2}}).MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	fuzzCodec(f, seeds, func() codec { return new(protocol.SignedRequest) })
}

func FuzzUnmarshalSignedResponse(f *testing.F) {
	r, err := (&protocol.Response{Type: protocol.TypeView, Data: []byte("x"), Time: 3}).MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	b, err := (&protocol.SignedResponse{Response: r, Hop: protocol.Signature{5}}).MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	fuzzCodec(f, [][]byte{b}, func() codec { return new(protocol.SignedResponse) })
}

func FuzzUnmarshalSessionGrant(f *testing.F) {
	b, err := (&protocol.SessionGrant{Session: protocol.SessionID{1}, Ephemeral: make([]byte, 32), Enc: make([]byte, 32), SealedKey: make([]byte, 48), Time: 9}).MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	fuzzCodec(f, [][]byte{b}, func() codec { return new(protocol.SessionGrant) })
}

func FuzzUnmarshalSignedAccessRotation(f *testing.F) {
	old, next := key(f), key(f)
	r := protocol.AccessRotation{Old: old.Public(), New: next.Public(), Time: 5, Nonce: protocol.Nonce{1}}
	enc, err := r.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	m := protocol.SignAccessRotation(old, next, enc)
	b, err := m.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	fuzzCodec(f, [][]byte{b}, func() codec { return new(protocol.SignedAccessRotation) })
}

func FuzzUnmarshalAccessRotation(f *testing.F) {
	r := protocol.AccessRotation{Old: protocol.Key{1}, New: protocol.Key{2}, Time: 5, Nonce: protocol.Nonce{1}}
	enc, err := r.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	fuzzCodec(f, [][]byte{enc}, func() codec { return new(protocol.AccessRotation) })
}
