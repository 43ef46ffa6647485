package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/internal/patients"
	"github.com/mpsi-dev/mpsi/internal/pgtest"
	"github.com/mpsi-dev/mpsi/psi/session"
)

const sourcesSpec = `{"id":"%s","parties":["hospital-a","hospital-b","hospital-c"],
"fields":{"given_name":"name","family_name":"name","birth_date":"date","sex":"sex","deceased":"number","condition_codes":"codes"},
"match":{"fields":["given_name","family_name","birth_date","sex"],"mode":"dh"},
"reveal":["cardinality","pairwise","aggregates"],
"aggregates":[{"name":"shared","kind":"count"},
{"name":"deceased","kind":"sum","field":"deceased","from":["hospital-a"],"min":0,"max":1},
{"name":"diabetes","kind":"count_if","field":"condition_codes","contains":"44054006","from":["hospital-b"]}],
"min_cell":3}`

// sourcesPeople splits one population into three hospitals: a quarter of
// the people at every one, the rest at two of the three.
func sourcesPeople(t *testing.T) map[string][]patients.Person {
	all, err := patients.Synthea(patients.SyntheaDir("."))
	if err != nil {
		all = patients.Generate(800, 17)
	}
	t.Logf("%d people", len(all))
	at := map[string][]int{"hospital-a": {0, 1, 2}, "hospital-b": {0, 1, 3}, "hospital-c": {0, 2, 3}}
	out := map[string][]patients.Person{}
	for i, p := range all {
		for name, ks := range at {
			for _, k := range ks {
				if i%4 == k {
					out[name] = append(out[name], p)
				}
			}
		}
	}
	return out
}

// runSourcesSession creates session id and runs the three hospitals as
// processes with args[name]; it returns the session's Result (its id
// blanked) and the parties' outputs.
func runSourcesSession(t *testing.T, cl *cluster, id string, args map[string][]string, env []string) string {
	specPath := filepath.Join(cl.dir, id+".spec.json")
	require.NoError(t, os.WriteFile(specPath, fmt.Appendf(nil, sourcesSpec, id), 0o644))
	out, stderr, err := mpsi(t, "session", "create", "--coordinator", cl.addr, "--certs", cl.certs, "--spec", specPath)
	require.NoError(t, err, stderr)
	require.Equal(t, id, strings.TrimSpace(out))
	type proc struct {
		cmd  *exec.Cmd
		errb *strings.Builder
	}
	procs := map[string]proc{}
	for name, a := range args {
		cmd := exec.Command(mpsiBin, append([]string{"party", "--coordinator", cl.addr, "--certs", cl.certs, "--name", name, "--session", id,
			"--out", filepath.Join(cl.dir, name+"-"+id+".json")}, a...)...)
		cmd.Env = append(os.Environ(), env...)
		var errb strings.Builder
		cmd.Stderr = &errb
		require.NoError(t, cmd.Start())
		procs[name] = proc{cmd, &errb}
	}
	for name, p := range procs {
		require.NoError(t, p.cmd.Wait(), "%s: %s\ncoordinator: %s", name, p.errb.String(), cl.logs())
	}
	out, stderr, err = mpsi(t, "session", "result", "--coordinator", cl.addr, "--certs", cl.certs, "--session", id)
	require.NoError(t, err, stderr)
	var r session.Result
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	require.Equal(t, id, r.Session)
	r.Session = ""
	b, err := json.Marshal(r)
	require.NoError(t, err)
	return string(b)
}

// The same people as CSV, as FHIR bulk NDJSON and (with MPSI_TEST_POSTGRES)
// as OMOP tables in PostgreSQL give the same Result, each run with real
// processes; bad input fails the party with a clear error before anything
// is sent.
func TestE2ESourcesSameResult(t *testing.T) {
	cl := newCluster(t, cohort.Config{Seed: 31, Parties: 3, Records: 10, SharedAll: 0.5, MinCell: 1})
	people := sourcesPeople(t)
	csvArgs, fhirArgs := map[string][]string{}, map[string][]string{}
	for name, ps := range people {
		dir := filepath.Join(cl.dir, name)
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "fhir"), 0o755))
		f, err := os.Create(filepath.Join(dir, "records.csv"))
		require.NoError(t, err)
		require.NoError(t, patients.WriteCSV(f, ps))
		require.NoError(t, f.Close())
		pf, err := os.Create(filepath.Join(dir, "fhir", "Patient.000.ndjson"))
		require.NoError(t, err)
		cf, err := os.Create(filepath.Join(dir, "fhir", "Condition.000.ndjson"))
		require.NoError(t, err)
		require.NoError(t, patients.WriteFHIR(pf, cf, ps))
		require.NoError(t, pf.Close())
		require.NoError(t, cf.Close())
		csvArgs[name] = []string{"--data", filepath.Join(dir, "records.csv")}
		if name == "hospital-a" { // a directory
			fhirArgs[name] = []string{"--data", filepath.Join(dir, "fhir")}
		} else { // the files
			fhirArgs[name] = []string{"--data", filepath.Join(dir, "fhir", "Patient.000.ndjson"), "--data", filepath.Join(dir, "fhir", "Condition.000.ndjson")}
		}
	}
	fromCSV := runSourcesSession(t, cl, "sources-csv", csvArgs, nil)
	require.Contains(t, fromCSV, `"intersection"`)
	fromFHIR := runSourcesSession(t, cl, "sources-fhir", fhirArgs, nil)
	require.JSONEq(t, fromCSV, fromFHIR)

	// mpsi run, in one process, with FHIR and CSV inputs mixed.
	t.Run("run", func(t *testing.T) {
		specPath := filepath.Join(cl.dir, "sources-run.spec.json")
		require.NoError(t, os.WriteFile(specPath, fmt.Appendf(nil, sourcesSpec, "sources-run"), 0o644))
		out, stderr, err := mpsi(t, "run", "--spec", specPath,
			"--data", "hospital-a="+filepath.Join(cl.dir, "hospital-a", "fhir"),
			"--data", "hospital-b="+filepath.Join(cl.dir, "hospital-b", "records.csv"),
			"--data", "hospital-c="+filepath.Join(cl.dir, "hospital-c", "fhir", "Patient.000.ndjson"))
		require.NoError(t, err, stderr)
		var r session.Result
		require.NoError(t, json.Unmarshal([]byte(out), &r))
		r.Session = ""
		got, err := json.Marshal(r)
		require.NoError(t, err)
		// hospital-c gave no Conditions, but it contributes no codes either.
		require.JSONEq(t, fromCSV, string(got))
		_, stderr, err = mpsi(t, "run", "--spec", specPath, "--data", "hospital-a=postgres://x@/db?host=/nonexistent", "--query", "hospital-a=SELECT 1",
			"--data", "hospital-b="+filepath.Join(cl.dir, "hospital-b", "records.csv"), "--data", "hospital-c="+filepath.Join(cl.dir, "hospital-c", "records.csv"))
		require.Error(t, err)
		require.Contains(t, stderr, "pg: cannot connect: x@/nonexistent/db")
	})

	t.Run("postgres", func(t *testing.T) {
		srv := pgtest.Start(t)
		ctx := context.Background()
		pgArgs := map[string][]string{}
		for name, ps := range people {
			db := strings.ReplaceAll(name, "-", "_")
			require.NoError(t, srv.CreateDB(ctx, db))
			c, err := srv.Connect(ctx, db)
			require.NoError(t, err)
			require.NoError(t, pgtest.LoadOMOP(ctx, c, ps))
			c.Close(ctx)
			pgArgs[name] = []string{"--data", srv.URL(db), "--query", pgtest.OMOPQuery}
		}
		// One reads its password from a file and its codes from a second query.
		pw := filepath.Join(cl.dir, "pgpass")
		require.NoError(t, os.WriteFile(pw, []byte(srv.Password+"\n"), 0o600))
		pgArgs["hospital-b"] = []string{"--data", srv.URL("hospital_b"), "--query", pgtest.OMOPPersonQuery, "--codes-query", pgtest.OMOPCodesQuery, "--password-file", pw}
		fromPG := runSourcesSession(t, cl, "sources-pg", pgArgs, []string{"PGPASSWORD=" + srv.Password})
		require.JSONEq(t, fromCSV, fromPG)
	})

	t.Run("bad input", func(t *testing.T) {
		dir := t.TempDir()
		bad := filepath.Join(dir, "Patient.000.ndjson")
		good, err := os.ReadFile(filepath.Join(cl.dir, "hospital-a", "fhir", "Patient.000.ndjson"))
		require.NoError(t, err)
		first, _, _ := strings.Cut(string(good), "\n")
		cases := []struct {
			name string
			args []string
			file string
			want string
		}{
			{"non-Patient resource", []string{"--data", bad}, first + "\n" + `{"resourceType":"Observation","id":"o1"}` + "\n", "Patient.000.ndjson: line 2 (Observation/o1): fhir: invalid input: a Observation resource in a Patient file"},
			{"malformed JSON line", []string{"--data", bad}, first + "\n{\"resourceType\":\"Pat\n", "Patient.000.ndjson: line 2: malformed JSON"},
			{"missing birthDate", []string{"--data", bad}, regexp.MustCompile(`"birthDate":"[^"]*",`).ReplaceAllString(first, "") + "\n", "Patient.000.ndjson: line 1 (Patient/"},
			{"unreachable database", []string{"--data", "postgres://reader@/warehouse?host=" + dir, "--query", "SELECT 1"}, "", "pg: cannot connect: reader@" + dir + "/warehouse"},
			{"password in the URL", []string{"--data", "postgres://reader:hunter2@/warehouse?host=" + dir, "--query", "SELECT 1"}, "", "password in the URL"},
			{"query without postgres", []string{"--data", bad, "--query", "SELECT 1"}, first + "\n", "--query, --codes-query and --password-file apply to a postgres:// --data"},
		}
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				if tc.file != "" {
					require.NoError(t, os.WriteFile(bad, []byte(tc.file), 0o644))
				}
				id := fmt.Sprintf("sources-bad-%d", i)
				specPath := filepath.Join(dir, id+".json")
				require.NoError(t, os.WriteFile(specPath, fmt.Appendf(nil, sourcesSpec, id), 0o644))
				_, stderr, err := mpsi(t, "session", "create", "--coordinator", cl.addr, "--certs", cl.certs, "--spec", specPath)
				require.NoError(t, err, stderr)
				out := filepath.Join(dir, id+".result.json")
				_, stderr, err = mpsi(t, append([]string{"party", "--coordinator", cl.addr, "--certs", cl.certs, "--name", "hospital-a", "--session", id, "--out", out}, tc.args...)...)
				require.Error(t, err)
				require.Contains(t, stderr, tc.want)
				require.NotContains(t, stderr, "hunter2")
				require.NotContains(t, stderr, "records loaded", "nothing loaded, nothing sent")
				require.NoFileExists(t, out)
			})
		}
	})
}
