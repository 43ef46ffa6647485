package sharing_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/mpsi-dev/mpsi/sharing"
)

// FuzzUnmarshalVector checks non-malleability: any input UnmarshalVector
// accepts re-encodes to exactly the same bytes, and any rejected input
// yields a nil vector and one of the package's sentinels.
func FuzzUnmarshalVector(f *testing.F) {
	for _, s := range []string{"", "00", "00000000", "0000000000", "01000000", "010000000100000000000000", "ffffffff", "0100000001000000000000"} {
		b, _ := hex.DecodeString(s)
		f.Add(b, 4)
	}
	// Seed from the known-answer vectors: their outputs as encoded vectors.
	if data, err := os.ReadFile(expandVectorsPath); err == nil {
		var vf expandVectorFile
		if json.Unmarshal(data, &vf) == nil {
			for _, v := range vf.Vectors {
				words, _ := hex.DecodeString(v.Output)
				f.Add(append(binary.LittleEndian.AppendUint32(nil, uint32(v.Length)), words...), v.Length)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, maxLen int) {
		v, err := sharing.UnmarshalVector(data, maxLen)
		if err != nil {
			if v != nil {
				t.Errorf("UnmarshalVector(%x) returned %v with error %v", data, v, err)
			}
			if !errors.Is(err, sharing.ErrMalformedVector) && !errors.Is(err, sharing.ErrTooLong) {
				t.Errorf("UnmarshalVector(%x): unexpected error %v", data, err)
			}
			return
		}
		if len(v) > max(maxLen, 0) {
			t.Errorf("UnmarshalVector: %d words exceed maximum %d", len(v), maxLen)
		}
		enc, err := v.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary of accepted vector: %v", err)
		}
		if !bytes.Equal(enc, data) {
			t.Errorf("re-encoding differs:\n got %x\nwant %x", enc, data)
		}
		var w sharing.Vector
		if err := w.UnmarshalBinary(data); err != nil || !w.Equal(v) {
			t.Errorf("UnmarshalBinary disagrees with UnmarshalVector: %v", err)
		}
	})
}

// FuzzSplitBlindSum checks the algebra of one aggregation for arbitrary
// inputs: data is cut into n input vectors of length L (n and L taken from
// the first bytes), masks and keys come from the package, and the sum of
// the submissions must equal the sum of the inputs, with each party's keys
// summing to its mask.
func FuzzSplitBlindSum(f *testing.F) {
	f.Add(uint8(0), uint8(1), []byte{})
	f.Add(uint8(1), uint8(3), bytes.Repeat([]byte{0xff}, 64))
	f.Add(uint8(6), uint8(20), bytes.Repeat([]byte{0x80, 0, 0, 0, 0, 0, 0, 0x7f}, 200))
	f.Fuzz(func(t *testing.T, nb, lb uint8, data []byte) {
		n := 2 + int(nb%7)     // 2..8 parties
		length := int(lb % 65) // 0..64 words
		xs := make([]sharing.Vector, n)
		for i := range xs {
			xs[i] = make(sharing.Vector, length)
			for k := range xs[i] {
				var w [8]byte
				off := 8 * (i*length + k)
				if off < len(data) {
					copy(w[:], data[off:])
				}
				xs[i][k] = binary.LittleEndian.Uint64(w[:])
			}
		}
		run := runProtocol(t, xs)
		if !mustSum(t, run.z...).Equal(mustSum(t, xs...)) {
			t.Fatalf("n=%d L=%d: Σ z_i != Σ x_i", n, length)
		}
		for i := range n {
			if !mustSum(t, run.keys[i]...).Equal(run.masks[i]) {
				t.Fatalf("n=%d L=%d: party %d's keys do not sum to its mask", n, length, i)
			}
		}
	})
}
