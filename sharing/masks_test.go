package sharing_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/sharing"
)

func TestZeroSumMasks(t *testing.T) {
	for n := 2; n <= 8; n++ {
		for _, length := range []int{0, 1, 2, 7, 64, 100, 513, 1000} {
			masks, err := sharing.ZeroSumMasks(n, length)
			require.NoError(t, err)
			require.Len(t, masks, n)
			for i, m := range masks {
				require.Len(t, m, length, "mask %d", i)
			}
			require.True(t, mustSum(t, masks...).Equal(make(sharing.Vector, length)), "n=%d L=%d: masks do not sum to zero", n, length)
			if length >= 2 {
				// 2^-64 false-positive chance per pair: masks are distinct and non-zero.
				for i := range n {
					require.False(t, masks[i].Equal(make(sharing.Vector, length)), "mask %d is zero", i)
					for j := range i {
						require.False(t, masks[i].Equal(masks[j]), "masks %d and %d equal", i, j)
					}
				}
			}
		}
	}
}

func TestZeroSumMasksErrors(t *testing.T) {
	for _, tc := range []struct{ n, length int }{
		{-1, 10}, {0, 10}, {1, 10}, {3, -1}, {3, sharing.MaxLen + 1},
	} {
		masks, err := sharing.ZeroSumMasks(tc.n, tc.length)
		require.ErrorIs(t, err, sharing.ErrInvalidArgument, "ZeroSumMasks(%d, %d)", tc.n, tc.length)
		require.Nil(t, masks)
	}
}

// TestSumOfSubmissions is the protocol's correctness property: for random
// n in 2..8 and L in 0..100, with inputs clustered around 0 and 2^64, the
// coordinator's Σ z_i equals Σ x_i exactly, and the keys of each party sum
// to its mask.
func TestSumOfSubmissions(t *testing.T) {
	r := newTestRand(4)
	for it := range 200 {
		n, length := 2+r.IntN(7), r.IntN(101)
		if it < 7 {
			n, length = it+2, 100
		}
		t.Run(fmt.Sprintf("n=%d/L=%d", n, length), func(t *testing.T) {
			xs := make([]sharing.Vector, n)
			for i := range xs {
				xs[i] = randomInput(r, length)
			}
			inputs := make([]sharing.Vector, n)
			for i := range xs {
				inputs[i] = xs[i].Clone()
			}
			run := runProtocol(t, xs)
			require.Equal(t, inputs, xs, "Blind modified its input")
			require.True(t, mustSum(t, run.z...).Equal(mustSum(t, xs...)), "Σ z_i != Σ x_i")
			for i := range n {
				require.True(t, mustSum(t, run.keys[i]...).Equal(run.masks[i]), "party %d: Σ_j k_ij != r_i", i)
			}
		})
	}
}

// TestSumWraparound pins the Z_2^64 semantics with inputs whose true sum
// overflows: the result is the sum modulo 2^64.
func TestSumWraparound(t *testing.T) {
	top := ^uint64(0)
	xs := []sharing.Vector{
		{top, 1 << 63, 0, top},
		{top, 1 << 63, 0, 1},
		{2, 0, top, 0},
	}
	run := runProtocol(t, xs)
	require.Equal(t, sharing.Vector{0, 0, top, 0}, mustSum(t, run.z...))
}

// TestSubmissionHidesInput checks z_i != x_i (word by word, with L = 64 the
// chance that any word of a uniform key is zero is 64·2^-64).
func TestSubmissionHidesInput(t *testing.T) {
	r := newTestRand(5)
	for n := 2; n <= 8; n++ {
		xs := make([]sharing.Vector, n)
		for i := range xs {
			xs[i] = randomInput(r, 64)
		}
		run := runProtocol(t, xs)
		for i := range n {
			require.False(t, run.z[i].Equal(xs[i]), "n=%d: z_%d == x_%d", n, i, i)
			for k := range xs[i] {
				require.NotEqual(t, xs[i][k], run.z[i][k], "n=%d: z_%d[%d] == x_%d[%d]", n, i, k, i, k)
			}
		}
	}
}

func TestSelfKeyBlindSumErrors(t *testing.T) {
	v3 := sharing.Vector{1, 2, 3}
	v2 := sharing.Vector{1, 2}

	t.Run("SelfKey", func(t *testing.T) {
		for _, out := range [][]sharing.Vector{{v2}, {v3, v2}, {v3, nil}} {
			k, err := sharing.SelfKey(v3, out)
			require.ErrorIs(t, err, sharing.ErrLengthMismatch)
			require.Nil(t, k)
		}
		k, err := sharing.SelfKey(v3, nil) // n = 1 degenerates to k_ii = r_i
		require.NoError(t, err)
		require.Equal(t, v3, k)
		k[0] = 9
		require.Equal(t, uint64(1), v3[0], "SelfKey aliased its mask")
		k, err = sharing.SelfKey(nil, []sharing.Vector{{}})
		require.NoError(t, err)
		require.Equal(t, sharing.Vector{}, k)
	})
	t.Run("Blind", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			x, self  sharing.Vector
			incoming []sharing.Vector
		}{
			{"short self key", v3, v2, []sharing.Vector{v3}},
			{"long self key", v2, v3, []sharing.Vector{v2}},
			{"short incoming", v3, v3, []sharing.Vector{v3, v2}},
			{"nil incoming", v3, v3, []sharing.Vector{nil}},
		} {
			z, err := sharing.Blind(tc.x, tc.self, tc.incoming)
			require.ErrorIs(t, err, sharing.ErrLengthMismatch, tc.name)
			require.Nil(t, z, tc.name)
		}
	})
	t.Run("Sum", func(t *testing.T) {
		s, err := sharing.Sum(nil)
		require.ErrorIs(t, err, sharing.ErrInvalidArgument)
		require.Nil(t, s)
		s, err = sharing.Sum([]sharing.Vector{v3, v3, v2})
		require.ErrorIs(t, err, sharing.ErrLengthMismatch)
		require.Nil(t, s)
		s, err = sharing.Sum([]sharing.Vector{v3})
		require.NoError(t, err)
		require.Equal(t, v3, s)
		s[0] = 9
		require.Equal(t, uint64(1), v3[0], "Sum aliased its input")
	})
}
