package protocol

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/psi/session"
)

// With reveal: membership, a party's own Result lists its shared records
// only when |I| is not below min_cell; otherwise it says they are
// suppressed, as the intersection is.
func TestMembershipSuppressed(t *testing.T) {
	for _, tc := range []struct {
		shared     int
		suppressed bool
	}{{3, true}, {5, false}, {0, false}} {
		spec, err := session.ParseSpec([]byte(`{"id":"members","parties":["hospital-a","hospital-b"],
		"fields":{"name":"name","visits":"number"},"match":{"mode":"keyed","fields":["name"]},
		"reveal":["cardinality","membership"],"min_cell":5}`))
		require.NoError(t, err)
		out, err := RunLocal(context.Background(), spec, []LocalInput{
			{Name: "hospital-a", Records: people(0, 20)}, {Name: "hospital-b", Records: people(20-tc.shared, 40)}}, LocalConfig{Workers: 1})
		require.NoError(t, err)
		require.Equal(t, tc.suppressed, out.Result.IntersectionSuppressed)
		for name, r := range out.Parties {
			require.Equal(t, tc.suppressed, r.MembersSuppressed, name)
			if tc.suppressed {
				require.Empty(t, r.Members, name)
			} else {
				require.Len(t, r.Members, tc.shared, name)
			}
		}
	}
}
