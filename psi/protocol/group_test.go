package protocol

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/psi"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// withGroup returns spec with match.group set and membership revealed,
// through its canonical JSON (so the group goes through parsing).
func withGroup(t testing.TB, spec *session.Spec, group string) *session.Spec {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(spec.Canonical(), &m))
	m["match"].(map[string]any)["group"] = group
	m["reveal"] = append(m["reveal"].([]any), session.RevealMembership)
	b, err := json.Marshal(m)
	require.NoError(t, err)
	s, err := session.ParseSpec(b)
	require.NoError(t, err)
	require.Equal(t, group, s.Match.Group)
	return s
}

// A dh session in the x25519 group releases the same Result, and gives every
// party the same members, as in ristretto255, for n = 2, 3 and 5 with
// partial overlaps; the intersection is the ground truth.
func TestDHGroupsReleaseTheSameResult(t *testing.T) {
	for _, n := range []int{2, 3, 5} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			in := make([]LocalInput, n)
			for i := range n {
				in[i] = LocalInput{Name: fmt.Sprintf("h%d", i), Records: people(i, 10+i)}
			}
			base := specN(t, "groups", session.ModeDH, session.AggregationMasked, n, "")
			outs := map[string]*Outcome{}
			for _, g := range []string{psi.GroupRistretto255, psi.GroupX25519} {
				o, err := RunLocal(context.Background(), withGroup(t, base, g), in, LocalConfig{Workers: 2})
				require.NoError(t, err, g)
				require.EqualValues(t, 10-(n-1), *o.Result.Intersection, g)
				outs[g] = o
			}
			r, x := outs[psi.GroupRistretto255], outs[psi.GroupX25519]
			require.JSONEq(t, resultJSON(t, r), resultJSON(t, x))
			require.Len(t, x.Parties, n)
			for name, pr := range r.Parties {
				require.NotEmpty(t, pr.Members, name)
				require.Equal(t, pr.Members, x.Parties[name].Members, name)
			}
		})
	}
}
