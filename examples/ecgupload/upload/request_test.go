package upload

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func sampleRequest(mode Mode) *Request {
	r := &Request{
		ClientID: "clinic-a", Credential: bytes.Repeat([]byte{7}, 32), Time: time.Unix(1_700_000_000, 123456789),
		Mode: mode, Urgency: 4, Record: "100",
		Files: []FileInfo{
			{Name: "100.atr", Size: 4558, SHA256: sha256.Sum256([]byte("a"))},
			{Name: "100.dat", Size: 1950000, SHA256: sha256.Sum256([]byte("d"))},
			{Name: "100.hea", Size: 166, SHA256: sha256.Sum256([]byte("h"))},
		},
		Digest: sha256.Sum256([]byte("all")),
	}
	r.JobID[0], r.JobID[15] = 1, 2
	if mode == ModeStream {
		r.ChunkSize = 1 << 20
	}
	return r
}

func TestRequestRoundTrip(t *testing.T) {
	for _, mode := range []Mode{ModeUnary, ModeStream} {
		r := sampleRequest(mode)
		enc, err := r.MarshalBinary()
		require.NoError(t, err)
		got, err := UnmarshalRequest(enc)
		require.NoError(t, err)
		require.True(t, got.Time.Equal(r.Time))
		got.Time = r.Time
		require.Equal(t, r, got)
		again, err := got.MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, enc, again)
	}
	require.EqualValues(t, 2, sampleRequest(ModeStream).ChunkCount())
	require.EqualValues(t, 1, sampleRequest(ModeUnary).ChunkCount())
}

// TestRequestBadLengths checks every truncation and an extension.
func TestRequestBadLengths(t *testing.T) {
	enc, err := sampleRequest(ModeStream).MarshalBinary()
	require.NoError(t, err)
	for n := 0; n < len(enc); n++ {
		_, err := UnmarshalRequest(enc[:n])
		require.ErrorIs(t, err, ErrMalformed, "truncated to %d bytes", n)
	}
	_, err = UnmarshalRequest(append(bytes.Clone(enc), 0))
	require.ErrorIs(t, err, ErrMalformed, "extended")
}

func TestRequestInvalid(t *testing.T) {
	tests := []struct {
		name string
		mut  func(r *Request)
	}{
		{"empty client", func(r *Request) { r.ClientID = "" }},
		{"path in record", func(r *Request) { r.Record = "../etc" }},
		{"hidden record", func(r *Request) { r.Record = ".x" }},
		{"short credential", func(r *Request) { r.Credential = r.Credential[:8] }},
		{"urgency", func(r *Request) { r.Urgency = MaxUrgency + 1 }},
		{"no files", func(r *Request) { r.Files = nil }},
		{"duplicate file", func(r *Request) { r.Files[1].Name = r.Files[0].Name }},
		{"manifest name", func(r *Request) { r.Files[0].Name = ManifestName }},
		{"slash in file", func(r *Request) { r.Files[0].Name = "a/b" }},
		{"chunk too small", func(r *Request) { r.ChunkSize = MinChunkSize - 1 }},
		{"chunk too large", func(r *Request) { r.ChunkSize = MaxChunkSize + 1 }},
		{"too many chunks", func(r *Request) { r.ChunkSize = MinChunkSize; r.Files[1].Size = MinChunkSize * (MaxChunks + 1) }},
		{"unknown mode", func(r *Request) { r.Mode = 3 }},
		{"size overflow", func(r *Request) { r.Files[0].Size = MaxRecordingSize; r.Files[1].Size = 1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := sampleRequest(ModeStream)
			tc.mut(r)
			_, err := r.MarshalBinary()
			require.ErrorIs(t, err, ErrMalformed)
		})
	}
	// The decoder applies the same checks: an unknown mode byte in a
	// well-formed encoding is refused.
	enc, err := sampleRequest(ModeUnary).MarshalBinary()
	require.NoError(t, err)
	modeAt := 1 + 1 + len("clinic-a") + 1 + 32 + 8 + JobIDSize
	require.EqualValues(t, ModeUnary, enc[modeAt])
	enc[modeAt] = 9
	_, err = UnmarshalRequest(enc)
	require.ErrorIs(t, err, ErrMalformed)
}

func FuzzUnmarshalRequest(f *testing.F) {
	for _, m := range []Mode{ModeUnary, ModeStream} {
		enc, err := sampleRequest(m).MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := UnmarshalRequest(data)
		if err != nil {
			if r != nil {
				t.Fatal("request returned with an error")
			}
			return
		}
		// An accepted input re-encodes to the same bytes (no malleability).
		again, err := r.MarshalBinary()
		if err != nil {
			t.Fatalf("accepted request does not re-encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, data)
		}
	})
}

// FuzzOpenHandshake feeds arbitrary bytes as the sealed parts of a
// handshake: the server must refuse them with an error, never panic.
func FuzzOpenHandshake(f *testing.F) {
	kp, err := generateKeyPair(1)
	if err != nil {
		f.Fatal(err)
	}
	enc, sealedKey, aead, _, err := encapsulateKey(1, kp.pub)
	if err != nil {
		f.Fatal(err)
	}
	sealedReq, err := sealRequest(aead, 1, enc, sampleRequest(ModeUnary))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc, sealedKey, sealedReq)
	f.Add([]byte{}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, enc, sealedKey, sealedReq []byte) {
		a, _, err := kp.openKey(enc, sealedKey)
		if err != nil {
			return
		}
		r, err := openRequest(a, 1, enc, sealedReq)
		if err == nil && r == nil {
			t.Fatal("nil request without error")
		}
	})
}
