package sharing_test

import (
	"encoding/binary"
	mathrand "math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/sharing"
)

// newTestRand returns a deterministic, NON-cryptographic generator for test
// inputs only (vector contents, party counts, lengths), so failures are
// reproducible. Secrets in tests still come from the package under test,
// which uses crypto/rand (made deterministic with cryptotest.SetGlobalRandom
// where a test needs that).
func newTestRand(seed uint64) *mathrand.Rand {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return mathrand.New(mathrand.NewChaCha8(s))
}

// randomInput returns a test input vector whose words are biased towards
// the wraparound boundary: a third near 0, a third near 2^64, a third
// uniform.
func randomInput(r *mathrand.Rand, length int) sharing.Vector {
	v := make(sharing.Vector, length)
	for i := range v {
		switch r.IntN(3) {
		case 0:
			v[i] = r.Uint64N(16)
		case 1:
			v[i] = ^r.Uint64N(16) // 2^64 − 1 − small
		default:
			v[i] = r.Uint64()
		}
	}
	return v
}

// pairContext is the injective context encoding used in these tests:
// session (16 bytes) ‖ round ‖ from ‖ to, each integer 4 bytes big-endian.
func pairContext(session [16]byte, round, from, to uint32) []byte {
	b := append([]byte(nil), session[:]...)
	b = binary.BigEndian.AppendUint32(b, round)
	b = binary.BigEndian.AppendUint32(b, from)
	b = binary.BigEndian.AppendUint32(b, to)
	return b
}

// run is one in-process execution of the masked aggregation step.
type run struct {
	masks []sharing.Vector   // r_i, dealt by the coordinator
	keys  [][]sharing.Vector // keys[i][j] = k_ij (k_ii from SelfKey)
	z     []sharing.Vector   // submissions
}

// runProtocol runs doc/DESIGN.md §4, step 4 for inputs xs (one per party), the
// way party and coordinator will: masks, seeds, expansion on both ends,
// SelfKey, Blind. It checks that sender and recipient expand the same key.
func runProtocol(t testing.TB, xs []sharing.Vector) *run {
	t.Helper()
	n, length := len(xs), len(xs[0])
	session := [16]byte{'t', 'e', 's', 't'}
	masks, err := sharing.ZeroSumMasks(n, length)
	require.NoError(t, err)

	// Party i draws s_ij and expands k_ij; party j receives s_ij and expands
	// it again on its side.
	seeds := make([][]sharing.Seed, n)
	keys := make([][]sharing.Vector, n)
	for i := range n {
		seeds[i] = make([]sharing.Seed, n)
		keys[i] = make([]sharing.Vector, n)
		for j := range n {
			if j == i {
				continue
			}
			seeds[i][j], err = sharing.NewSeed()
			require.NoError(t, err)
			keys[i][j] = sharing.Expand(seeds[i][j], pairContext(session, 4, uint32(i), uint32(j)), length)
		}
	}
	z := make([]sharing.Vector, n)
	for i := range n {
		var outgoing, incoming []sharing.Vector
		for j := range n {
			if j == i {
				continue
			}
			outgoing = append(outgoing, keys[i][j])
			// Recipient side: party i expands the seed it received from j.
			kji := sharing.Expand(seeds[j][i], pairContext(session, 4, uint32(j), uint32(i)), length)
			require.True(t, kji.Equal(keys[j][i]), "recipient expanded a different k_%d%d", j, i)
			incoming = append(incoming, kji)
		}
		keys[i][i], err = sharing.SelfKey(masks[i], outgoing)
		require.NoError(t, err)
		z[i], err = sharing.Blind(xs[i], keys[i][i], incoming)
		require.NoError(t, err)
	}
	return &run{masks: masks, keys: keys, z: z}
}

// mustSum is sharing.Sum for tests.
func mustSum(t testing.TB, vs ...sharing.Vector) sharing.Vector {
	t.Helper()
	s, err := sharing.Sum(vs)
	require.NoError(t, err)
	return s
}
