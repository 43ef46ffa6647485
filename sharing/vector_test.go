package sharing_test

import (
	"bytes"
	"encoding"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/sharing"
)

var (
	_ encoding.BinaryMarshaler   = sharing.Vector(nil)
	_ encoding.BinaryAppender    = sharing.Vector(nil)
	_ encoding.BinaryUnmarshaler = (*sharing.Vector)(nil)
)

func TestVectorAddSub(t *testing.T) {
	v := sharing.Vector{0, 1, ^uint64(0), 1 << 63}
	w := sharing.Vector{1, ^uint64(0), 2, 1 << 63}
	require.NoError(t, v.Add(w))
	require.Equal(t, sharing.Vector{1, 0, 1, 0}, v, "Add must wrap modulo 2^64")
	require.NoError(t, v.Sub(w))
	require.Equal(t, sharing.Vector{0, 1, ^uint64(0), 1 << 63}, v)
	require.Equal(t, sharing.Vector{1, ^uint64(0), 2, 1 << 63}, w, "operand modified")

	// Sub then Add is the identity on random inputs, including near 2^64.
	r := newTestRand(1)
	for range 100 {
		l := r.IntN(50)
		a, b := randomInput(r, l), randomInput(r, l)
		c := a.Clone()
		require.NoError(t, c.Sub(b))
		require.NoError(t, c.Add(b))
		require.True(t, c.Equal(a))
	}
}

func TestVectorLengthMismatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		v, w sharing.Vector
	}{
		{"shorter", sharing.Vector{1, 2, 3}, sharing.Vector{1, 2}},
		{"longer", sharing.Vector{1, 2}, sharing.Vector{1, 2, 3}},
		{"nil operand", sharing.Vector{1}, nil},
		{"nil receiver", nil, sharing.Vector{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.v.Clone()
			require.ErrorIs(t, tc.v.Add(tc.w), sharing.ErrLengthMismatch)
			require.ErrorIs(t, tc.v.Sub(tc.w), sharing.ErrLengthMismatch)
			require.Equal(t, before, tc.v, "receiver modified on error")
		})
	}
	// Empty vectors of either kind are compatible.
	require.NoError(t, sharing.Vector{}.Add(nil))
}

func TestVectorEqualClone(t *testing.T) {
	v := sharing.Vector{1, 2, 3}
	c := v.Clone()
	require.True(t, v.Equal(c))
	c[2]++
	require.False(t, v.Equal(c), "Clone shares memory or Equal ignores last word")
	require.Equal(t, uint64(3), v[2])
	require.False(t, v.Equal(v[:2]), "different lengths compared equal")
	require.False(t, v.Equal(sharing.Vector{1 << 63, 2, 3}), "Equal ignores high bit of first word")
	require.True(t, sharing.Vector{}.Equal(nil))
	require.Nil(t, sharing.Vector(nil).Clone())
	require.NotNil(t, sharing.Vector{}.Clone())
}

func TestVectorMarshalKnownAnswer(t *testing.T) {
	for _, tc := range []struct {
		v    sharing.Vector
		want string
	}{
		{nil, "00000000"},
		{sharing.Vector{}, "00000000"},
		{sharing.Vector{1}, "01000000" + "0100000000000000"},
		{sharing.Vector{0x0102030405060708, ^uint64(0)}, "02000000" + "0807060504030201" + "ffffffffffffffff"},
	} {
		got, err := tc.v.MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, tc.want, hex.EncodeToString(got), "MarshalBinary(%v)", tc.v)
		require.Len(t, got, sharing.EncodedLen(len(tc.v)))

		app, err := tc.v.AppendBinary([]byte("prefix"))
		require.NoError(t, err)
		require.Equal(t, append([]byte("prefix"), got...), app)

		var back sharing.Vector
		require.NoError(t, back.UnmarshalBinary(got))
		require.NotNil(t, back)
		require.True(t, back.Equal(tc.v))
	}
}

func TestVectorMarshalRoundTrip(t *testing.T) {
	r := newTestRand(2)
	for l := range 100 {
		v := randomInput(r, l)
		enc, err := v.MarshalBinary()
		require.NoError(t, err)
		got, err := sharing.UnmarshalVector(enc, l)
		require.NoError(t, err)
		require.Equal(t, v, got)
		_, err = sharing.UnmarshalVector(enc, l-1)
		if l > 0 {
			require.ErrorIs(t, err, sharing.ErrTooLong, "length %d accepted with maximum %d", l, l-1)
		}
	}
}

func TestUnmarshalVectorErrors(t *testing.T) {
	word := "0100000000000000"
	for _, tc := range []struct {
		name    string
		hex     string
		maxLen  int
		wantErr error
	}{
		{"empty input", "", 10, sharing.ErrMalformedVector},
		{"short header 1", "00", 10, sharing.ErrMalformedVector},
		{"short header 3", "000000", 10, sharing.ErrMalformedVector},
		{"empty vector with trailing byte", "00000000" + "00", 10, sharing.ErrMalformedVector},
		{"count 1, no words", "01000000", 10, sharing.ErrMalformedVector},
		{"count 1, partial word", "01000000" + word[:14], 10, sharing.ErrMalformedVector},
		{"count 1, trailing byte", "01000000" + word + "00", 10, sharing.ErrMalformedVector},
		{"count 1, two words", "01000000" + word + word, 10, sharing.ErrMalformedVector},
		{"count 2, one word", "02000000" + word, 10, sharing.ErrMalformedVector},
		{"count over maxLen", "03000000" + word + word + word, 2, sharing.ErrTooLong},
		{"count 1 with maxLen 0", "01000000" + word, 0, sharing.ErrTooLong},
		{"negative maxLen", "01000000" + word, -1, sharing.ErrTooLong},
		{"count over MaxLen", "01000004", 1 << 30, sharing.ErrTooLong},
		{"count 2^32-1, no words", "ffffffff", 1 << 30, sharing.ErrTooLong},
		{"count 2^24-1 within MaxLen, no words", "ffffff00", 1 << 30, sharing.ErrMalformedVector},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := hex.DecodeString(tc.hex)
			require.NoError(t, err)
			got, err := sharing.UnmarshalVector(data, tc.maxLen)
			require.ErrorIs(t, err, tc.wantErr)
			require.Nil(t, got)

			v := sharing.Vector{7, 7}
			if err := v.UnmarshalBinary(data); err != nil {
				require.Equal(t, sharing.Vector{7, 7}, v, "UnmarshalBinary modified receiver on error")
			}
		})
	}
}

// TestVectorBadLengths tries every truncation and every one-byte-or-more
// extension of valid encodings (cf. crypto/mlkem TestBadLengths).
func TestVectorBadLengths(t *testing.T) {
	r := newTestRand(3)
	for _, l := range []int{0, 1, 2, 5, 17} {
		enc, err := randomInput(r, l).MarshalBinary()
		require.NoError(t, err)
		for i := range len(enc) {
			_, err := sharing.UnmarshalVector(enc[:i], sharing.MaxLen)
			require.ErrorIs(t, err, sharing.ErrMalformedVector, "length %d: truncation to %d bytes accepted", l, i)
		}
		for extra := 1; extra <= 2*8+1; extra++ {
			ext := append(bytes.Clone(enc), make([]byte, extra)...)
			_, err := sharing.UnmarshalVector(ext, sharing.MaxLen)
			require.ErrorIs(t, err, sharing.ErrMalformedVector, "length %d: extension by %d bytes accepted", l, extra)
		}
	}
}
