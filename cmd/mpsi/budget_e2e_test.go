package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// Real processes: a session with privacy releases noised aggregates and
// says so; hospital-a's policy budget (ε = 1.2 at δ = 1e-6) has room for one
// session of ε = 1 with hospital-b, so its own ledger refuses the second
// before any of its data leaves (code policy), and the session aborts.
func TestE2EPrivacyBudget(t *testing.T) {
	cl := newCluster(t, cohort.Config{Seed: 27, Parties: 2, Records: 60, SharedAll: 0.5, MinCell: 1, Mode: session.ModeKeyed})
	pol := filepath.Join(cl.dir, "policy.json")
	require.NoError(t, os.WriteFile(pol, []byte(`{"privacy_budget":{"epsilon":1.2,"delta":1e-6}}`), 0o600))
	ledgerPath := filepath.Join(cl.dir, "hospital-a-ledger.db")
	run := func(id string) (map[string]partyProc, []error) {
		cl.editSpec(func(m map[string]any) {
			m["id"] = id
			m["privacy"] = map[string]any{"epsilon": 1, "delta": 1e-6}
		})
		cl.createSession()
		procs := cl.startParties(map[string][]string{"hospital-a": {"--policy", pol, "--ledger", ledgerPath, "--dataset", "cohort"}})
		var errs []error
		for _, name := range cl.spec.Parties {
			errs = append(errs, procs[name].cmd.Wait())
		}
		return procs, errs
	}

	procs, errs := run("dp-1")
	for i, err := range errs {
		require.NoError(t, err, "%s: %s", cl.spec.Parties[i], procs[cl.spec.Parties[i]].errb.String())
	}
	b, err := os.ReadFile(procs["hospital-b"].out)
	require.NoError(t, err)
	var r session.Result
	require.NoError(t, json.Unmarshal(b, &r))
	require.NotNil(t, r.Privacy)
	require.Equal(t, session.MechanismDiscreteGaussian, r.Privacy.Mechanism)
	require.Contains(t, procs["hospital-a"].errb.String(), "privacy budget charged")

	procs, errs = run("dp-2")
	require.Error(t, errs[0])
	require.Error(t, errs[1])
	require.Contains(t, procs["hospital-a"].errb.String(), "privacy budget exceeded")
	require.NoFileExists(t, procs["hospital-a"].out)
	require.NoFileExists(t, procs["hospital-b"].out)
	logs := cl.logs()
	i := strings.Index(logs, "session=dp-2")
	require.GreaterOrEqual(t, i, 0)
	require.Contains(t, logs[i:], "code=policy")
	require.Contains(t, logs[i:], "privacy budget exceeded")
}
