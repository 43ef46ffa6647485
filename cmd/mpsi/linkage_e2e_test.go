package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// Several match keys over the network: the built binary as separate
// processes on 127.0.0.1 gives the in-process Result (the same linkage),
// with the per-key counts, and finds at least the one-key intersection.
func TestE2EMatchKeys(t *testing.T) {
	cl := newCluster(t, cohort.Config{Seed: 33, Parties: 3, Records: 150, SharedAll: 0.4, SharedPair: 0.1, Noise: true, Mode: session.ModeDH, MinCell: 1})
	oneKey := *cl.inProcess().Result.Intersection

	// The same cohort, linked on the exact key, then on coarser ones.
	path := filepath.Join(cl.dir, "cohort", "spec.json")
	var m map[string]any
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &m))
	match := m["match"].(map[string]any)
	fields := match["fields"]
	delete(match, "fields")
	match["keys"] = []any{fields,
		[]string{"family_name|soundex", "given_name|initial", "birth_date"},
		[]string{"family_name", "given_name", "birth_date|day_month_unordered"}}
	m["id"] = "keys-e2e"
	b, err = json.Marshal(m)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	cl.spec, err = session.ParseSpec(b)
	require.NoError(t, err)

	cl.createSession()
	results := cl.runParties()
	want := cl.inProcess()
	require.NotNil(t, want.Result.Linkage)
	require.Len(t, want.Result.Linkage.Keys, 3)
	require.GreaterOrEqual(t, *want.Result.Intersection, oneKey)
	t.Logf("one key: %d; three keys: %d (per key %v, ambiguous %v)", oneKey, *want.Result.Intersection, derefs(want.Result.Linkage.Keys), *want.Result.Linkage.Ambiguous)
	for name, got := range results {
		wb, err := json.Marshal(want.Parties[name])
		require.NoError(t, err)
		require.JSONEq(t, string(wb), got, name)
	}
}

func derefs(p []*int64) []int64 {
	out := make([]int64, len(p))
	for i, v := range p {
		if v != nil {
			out[i] = *v
		}
	}
	return out
}
