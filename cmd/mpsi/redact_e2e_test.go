package main

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// Bad values in a hospital's file (a date that is no calendar date, a date
// in the wrong layout, a value outside the aggregate's bounds, a code with a
// separator in it, an unknown sex code), each on line 5 of a hospital's file
// in a session of its own, real processes on 127.0.0.1: that hospital's own
// terminal names the line and the field; the session aborts
// with a code, and no byte of the value appears in the other hospital's
// output, the coordinator's log, the database file (the sessions row and
// the audit chain) or the audit tool's output.
func TestE2ERecordValuesStayLocal(t *testing.T) {
	cl := newCluster(t, cohort.Config{Seed: 26, Parties: 2, Records: 30, SharedAll: 0.6, MinCell: 1, Mode: session.ModeKeyed})
	cases := []struct {
		bad, good, column, value string
	}{
		{"hospital-a", "hospital-b", "birth_date", "1959-13-28"},
		{"hospital-a", "hospital-b", "birth_date", "1/15/1901"},
		{"hospital-a", "hospital-b", "visits", "987654"},
		{"hospital-a", "hospital-b", "sex", "QZ-SECRET"},
		// hospital-b contributes the count_if over the codes.
		{"hospital-b", "hospital-a", "condition_codes", "E11\x1fXQ-SECRET"},
	}
	var secrets, refs []string
	var others strings.Builder
	for k, tc := range cases {
		id := "redact-" + string(rune('a'+k))
		cl.editSpec(func(m map[string]any) { m["id"] = id })
		cl.createSession()
		writeBadFile(t, cl, tc.bad, "bad-"+id, tc.column, tc.value)
		secrets = append(secrets, tc.value)

		bad, badErr, _ := cl.partyCmdAs(tc.bad, cl.certs, id, "bad-"+id)
		good, goodErr, goodOut := cl.partyCmd(tc.good, cl.certs)
		require.NoError(t, bad.Start())
		require.NoError(t, good.Start())
		require.Error(t, bad.Wait(), "%v\n%s", bad.Args, badErr.String())
		require.Error(t, good.Wait())
		require.Contains(t, badErr.String(), "line 5", "the bad file's own hospital's terminal names the line")
		require.Contains(t, badErr.String(), "field ")
		ref := regexp.MustCompile(`\(ref ([0-9a-f]{16})\)`).FindStringSubmatch(badErr.String())
		require.NotNil(t, ref, "the hospital's terminal shows the reference: %s", badErr.String())
		refs = append(refs, ref[1])
		require.NoFileExists(t, goodOut)
		others.WriteString(goodErr.String())
	}
	cl.stop(syscall.SIGTERM)
	others.WriteString(cl.logs())
	for _, suffix := range []string{"", "-wal", "-journal"} {
		if b, err := os.ReadFile(cl.db + suffix); err == nil {
			others.Write(b)
		}
	}
	out, stderr, err := mpsi(t, "audit", "verify", "--db", cl.db)
	require.NoError(t, err, stderr)
	require.Contains(t, out, "verified")
	others.WriteString(out + stderr)
	require.Contains(t, others.String(), "redact-e", "the database holds the sessions")
	for _, ref := range refs {
		require.Contains(t, cl.logs(), "ref "+ref, "the coordinator logs the reference the hospital's terminal shows")
	}
	require.Contains(t, cl.logs(), "a record value could not be used")
	for _, s := range secrets {
		require.NotContains(t, others.String(), s)
	}
}

// writeBadFile writes party's cohort file with column set to value on line
// 5 (the fourth data row) as cohort/<name>.csv, with its mapping.
func writeBadFile(t *testing.T, cl *cluster, party, name, column, value string) {
	t.Helper()
	dir := filepath.Join(cl.dir, "cohort")
	f, err := os.Open(filepath.Join(dir, party+".csv"))
	require.NoError(t, err)
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	require.NoError(t, err)
	col := slices.Index(rows[0], column)
	require.GreaterOrEqual(t, col, 0, "%s has a column %s", party, column)
	rows[4][col] = value
	out, err := os.Create(filepath.Join(dir, name+".csv"))
	require.NoError(t, err)
	w := csv.NewWriter(out)
	require.NoError(t, w.WriteAll(rows))
	require.NoError(t, out.Close())
	m, err := os.ReadFile(filepath.Join(dir, party+".map.json"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".map.json"), m, 0o600))
}
