package party_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/psi/protocol"
	"github.com/mpsi-dev/mpsi/psi/session"
	"github.com/mpsi-dev/mpsi/sharing"
)

// What the coordinator sees of one party, z_i, differs from x_i in every
// slot (with overwhelming probability), yet the z_i sum to Σ x_i; and the
// shares of all but one party carry no more information than the masks do.
func TestCoordinatorViewHidesPartyVector(t *testing.T) {
	c, err := cohort.Generate(cohort.Config{Seed: 11, Parties: 3, Records: 80, SharedAll: 0.5, Mode: session.ModeKeyed})
	require.NoError(t, err)
	spec, ins := loadCohort(t, c)
	ps := make([]*protocol.Holder, 3)
	for i, in := range ins {
		ps[i], err = protocol.NewHolder(spec, in.Name, in.Records, 0)
		require.NoError(t, err)
	}
	// Run the token rounds in process to get positions.
	out, err := party.RunLocal(context.Background(), spec, ins, party.Config{})
	require.NoError(t, err)
	require.NotNil(t, out)
	// Use every record as "shared" for this check: positions 0..size-1.
	masks, err := sharing.ZeroSumMasks(3, mustLayoutLen(t, spec))
	require.NoError(t, err)
	var xs, zs []sharing.Vector
	for i, p := range ps {
		pos := make([]uint32, p.SetSize())
		for k := range pos {
			pos[k] = uint32(k)
		}
		x, err := p.Local(pos)
		require.NoError(t, err)
		in := make([]sharing.Seed, 3)
		for j, q := range ps {
			if j != i {
				in[j], err = q.Seed(i)
				require.NoError(t, err)
			}
		}
		z, err := p.Share(pos, masks[i], in)
		require.NoError(t, err)
		for k := range x {
			require.NotEqual(t, x[k], z[k], "slot %d of party %d's share equals its vector", k, i)
		}
		_, err = p.Share(pos, masks[i], in)
		require.ErrorIs(t, err, protocol.ErrStateConsumed, "a share is computed once")
		xs, zs = append(xs, x), append(zs, z)
	}
	sx, err := sharing.Sum(xs)
	require.NoError(t, err)
	sz, err := sharing.Sum(zs)
	require.NoError(t, err)
	require.Equal(t, sx, sz, "masks and pairwise keys cancel")
}

func mustLayoutLen(t *testing.T, s *session.Spec) int {
	l, err := session.NewLayout(s)
	require.NoError(t, err)
	return l.Len()
}

func TestPositionsChecked(t *testing.T) {
	c, err := cohort.Generate(cohort.Config{Seed: 12, Parties: 2, Records: 10, SharedAll: 0.5})
	require.NoError(t, err)
	spec, ins := loadCohort(t, c)
	p, err := protocol.NewHolder(spec, ins[0].Name, ins[0].Records, 0)
	require.NoError(t, err)
	for _, bad := range [][]uint32{{3, 2}, {1, 1}, {10}, {0, 1 << 31}} {
		_, err := p.Local(bad)
		require.ErrorIs(t, err, protocol.ErrPositions)
	}
}
