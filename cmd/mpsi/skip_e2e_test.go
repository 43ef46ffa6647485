package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// mpsi party --skip-bad-rows, real processes on 127.0.0.1: a hospital's
// file with a bad date, an out-of-range number, an unknown sex code, a
// value with too many decimals and a row with a missing column goes past
// them; the session completes; the hospital's own terminal lists each
// rejected row by line, field and kind of fault and logs the count, and no
// byte of a bad value appears on any terminal, in the coordinator's log or
// in its database.
func TestE2EPartySkipBadRows(t *testing.T) {
	cl := newCluster(t, cohort.Config{Seed: 31, Parties: 2, Records: 40, SharedAll: 0.6, MinCell: 1, Mode: session.ModeKeyed})
	cl.createSession()
	dir := filepath.Join(cl.dir, "cohort")
	f, err := os.Open(filepath.Join(dir, "hospital-a.csv"))
	require.NoError(t, err)
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	require.NoError(t, err)
	col := func(name string) int {
		i := slices.Index(rows[0], name)
		require.GreaterOrEqual(t, i, 0, "column %s", name)
		return i
	}
	secrets := []string{"1961-14-31", "987654", "QZ-SECRET", "12.3456789"}
	rows[4][col("birth_date")] = secrets[0] // file line 5
	rows[6][col("visits")] = secrets[1]     // line 7
	rows[9][col("sex")] = secrets[2]        // line 10
	rows[11][col("visits")] = secrets[3]    // line 12: scale 0
	rows[13] = rows[13][:3]                 // line 14: too few fields
	var b strings.Builder
	w := csv.NewWriter(&b)
	w.WriteAll(rows)
	require.NoError(t, w.Error())
	bad := filepath.Join(dir, "hospital-a-bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte(b.String()), 0o600))

	a, aErr, aOut := cl.partyCmd("hospital-a", cl.certs)
	for i, arg := range a.Args {
		if strings.HasSuffix(arg, "hospital-a.csv") {
			a.Args[i] = bad
		}
	}
	a.Args = append(a.Args, "--skip-bad-rows")
	good, goodErr, _ := cl.partyCmd("hospital-b", cl.certs)
	require.NoError(t, a.Start())
	require.NoError(t, good.Start())
	require.NoError(t, a.Wait(), "%s\ncoordinator: %s", aErr.String(), cl.logs())
	require.NoError(t, good.Wait(), goodErr.String())
	var res session.Result
	out, err := os.ReadFile(aOut)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(out, &res))

	term := aErr.String()
	for _, want := range []string{
		"mpsi: hospital-a: rejected line 5: field birth_date: not a date in the column's format",
		`mpsi: hospital-a: rejected line 7: aggregate "visits": outside [min, max]`,
		"mpsi: hospital-a: rejected line 10: field sex: ident: unrecognised sex code",
		`mpsi: hospital-a: rejected line 12: aggregate "visits": more decimals than the scale`,
		"mpsi: hospital-a: rejected line 14: wrong number of fields",
		"rejected=5",
	} {
		require.Contains(t, term, want)
	}
	cl.stop(syscall.SIGTERM)
	var all strings.Builder
	all.WriteString(term + goodErr.String() + cl.logs() + string(out))
	for _, suffix := range []string{"", "-wal", "-journal"} {
		if b, err := os.ReadFile(cl.db + suffix); err == nil {
			all.Write(b)
		}
	}
	for _, s := range secrets {
		require.NotContains(t, all.String(), s)
	}
}
