package sharing_test

import (
	"math"
	"math/bits"
	"testing"
	"testing/cryptotest"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/sharing"
)

// Uniformity thresholds. With the fixed cryptotest seed the test is
// deterministic; the thresholds are set so that a truly uniform vector would
// fail with probability about 1e-9 per statistic, so a change of seed or
// implementation does not make the test flaky.
const (
	// statZ is the one-sided standard-normal quantile for p ≈ 1e-9.
	statZ = 6.0
	// statWords is the length of the vectors tested: 2^15 words = 256 KiB,
	// 1024 expected observations per byte value and 16384 per bit value.
	statWords = 1 << 15
)

// chiSquareBytesLimit is the 1 − 1e-9 quantile of χ² with 255 degrees of
// freedom, by the Wilson–Hilferty approximation (≈ 415).
func chiSquareBytesLimit() float64 {
	const k = 255.0
	c := 2 / (9 * k)
	return k * math.Pow(1-c+statZ*math.Sqrt(c), 3)
}

// uniformityStats returns the χ² statistic of the byte histogram of v (as
// little-endian words) and the largest |z-score| of the 64 per-bit-position
// counts of ones.
func uniformityStats(v sharing.Vector) (chi2, maxBitZ float64) {
	var hist [256]float64
	var ones [64]float64
	for _, w := range v {
		for b := range 8 {
			hist[byte(w>>(8*b))]++
		}
		for x := w; x != 0; x &= x - 1 {
			ones[bits.TrailingZeros64(x)]++
		}
	}
	expected := float64(8*len(v)) / 256
	for _, h := range hist {
		chi2 += (h - expected) * (h - expected) / expected
	}
	n := float64(len(v))
	for _, c := range ones {
		maxBitZ = max(maxBitZ, math.Abs(c-n/2)/math.Sqrt(n/4))
	}
	return chi2, maxBitZ
}

func requireUniform(t *testing.T, name string, v sharing.Vector) {
	t.Helper()
	chi2, bitZ := uniformityStats(v)
	t.Logf("%s: byte χ² = %.1f (limit %.1f), max bit |z| = %.2f (limit %.1f)", name, chi2, chiSquareBytesLimit(), bitZ, statZ)
	require.Less(t, chi2, chiSquareBytesLimit(), "%s: byte χ² = %.1f, bytes do not look uniform", name, chi2)
	require.Less(t, bitZ, statZ, "%s: max bit |z| = %.2f, bits do not look uniform", name, bitZ)
}

// TestSharesLookUniform checks, for a fixed and highly structured input,
// that everything a coalition short of "coordinator + all other parties"
// can compute from the submissions looks uniform: each z_i, each z_i − x_i,
// every proper partial sum of submissions, and the view of the coordinator
// colluding with one party in a 3-party run. It also checks that the
// statistics do detect structure (the inputs themselves fail them), and that
// the coalition of the coordinator with all other parties recovers x_i
// exactly, as the protocol accepts.
func TestSharesLookUniform(t *testing.T) {
	// Deterministic crypto/rand for this (non-parallel) test only.
	cryptotest.SetGlobalRandom(t, 0x6d7073692d736861)

	const n = 4
	xs := make([]sharing.Vector, n)
	for i := range xs {
		xs[i] = make(sharing.Vector, statWords)
		for k := range xs[i] {
			// Small counts, the typical aggregate: mostly zero bytes.
			xs[i][k] = uint64(k%7) + uint64(i)
		}
	}
	// Power check: the statistics reject the inputs themselves, and also
	// reject a subtler flaw (a uniform vector whose low byte is forced).
	for i := range xs {
		chi2, _ := uniformityStats(xs[i])
		require.Greater(t, chi2, chiSquareBytesLimit(), "χ² fails to reject structured input %d", i)
	}
	flawed := sharing.Expand(sharing.Seed{1}, nil, statWords)
	for k := range flawed {
		flawed[k] &^= 0xff
	}
	chi2, bitZ := uniformityStats(flawed)
	require.True(t, chi2 > chiSquareBytesLimit() && bitZ > statZ, "statistics miss a forced low byte")

	run := runProtocol(t, xs)

	for i := range n {
		requireUniform(t, "z_i", run.z[i])
		d := run.z[i].Clone()
		require.NoError(t, d.Sub(xs[i]))
		requireUniform(t, "z_i − x_i", d)
	}
	// Every proper non-empty subset of submissions sums to something uniform.
	for set := 1; set < 1<<n-1; set++ {
		var part []sharing.Vector
		for i := range n {
			if set&(1<<i) != 0 {
				part = append(part, run.z[i])
			}
		}
		requireUniform(t, "partial sum of submissions", mustSum(t, part...))
	}
	// The whole sum is the (structured) aggregate.
	require.True(t, mustSum(t, run.z...).Equal(mustSum(t, xs...)))

	// Coordinator colluding with parties 2 and 3 (leaving parties 0 and 1
	// honest): it knows r_0 and the keys between party 0 and parties 2, 3, so
	// it can strip them from z_0; what remains, x_0 − k_01 + k_10, is uniform.
	view := run.z[0].Clone()
	require.NoError(t, view.Sub(run.masks[0]))
	for _, j := range []int{2, 3} {
		require.NoError(t, view.Add(run.keys[0][j]))
		require.NoError(t, view.Sub(run.keys[j][0]))
	}
	requireUniform(t, "coalition view of z_0", view)

	// With party 1 in the coalition as well, x_0 is revealed: the accepted
	// limit of n-out-of-n masking.
	require.NoError(t, view.Add(run.keys[0][1]))
	require.NoError(t, view.Sub(run.keys[1][0]))
	require.True(t, view.Equal(xs[0]), "coalition of all other parties should recover x_0")
}

// TestMasksLookUniform checks each zero-sum mask, and each proper partial
// sum of them, for uniformity.
func TestMasksLookUniform(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 0x6d61736b73)
	masks, err := sharing.ZeroSumMasks(3, statWords)
	require.NoError(t, err)
	for i := range masks {
		requireUniform(t, "mask", masks[i])
		requireUniform(t, "sum of two masks", mustSum(t, masks[i], masks[(i+1)%3]))
	}
	requireUniform(t, "Expand output", sharing.Expand(sharing.Seed{}, nil, statWords))
}
