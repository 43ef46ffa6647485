package party_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// With a privacy budget, a spec that reveals aggregates must ask for noise,
// with a δ no larger than the budget's.
func TestPolicyPrivacyBudget(t *testing.T) {
	pol := &party.Policy{PrivacyBudget: &party.Budget{Epsilon: 2, Delta: 1e-6}}
	for _, tc := range []struct {
		reveal, privacy, want string
	}{
		{`"aggregates"`, ``, "without privacy"},
		{`"aggregates"`, `,"privacy":{"epsilon":1,"delta":1e-5}`, "above the budget"},
		{`"aggregates"`, `,"privacy":{"epsilon":1,"delta":1e-6}`, ""},
		{`"cardinality"`, ``, ""},
	} {
		s, err := session.ParseSpec(fmt.Appendf(nil, `{"id":"p","parties":["a","b"],"fields":{"n":"name","v":"number"},"match":{"fields":["n"]},
"reveal":[%s],"aggregates":[{"name":"v","kind":"sum","field":"v","min":0,"max":10}]%s}`, tc.reveal, tc.privacy))
		require.NoError(t, err)
		err = pol.Check(s)
		if tc.want == "" {
			require.NoError(t, err)
			continue
		}
		require.ErrorIs(t, err, party.ErrPolicy)
		require.ErrorContains(t, err, tc.want)
	}
}
