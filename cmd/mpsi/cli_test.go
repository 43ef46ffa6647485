package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// runIn runs the command in process and returns stdout, stderr (with the
// error as main prints it) and the exit status main would return.
func runIn(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	code := exitStatus(err, &errb)
	return out.String(), errb.String(), code
}

// Every command and subcommand prints its own usage on stdout and exits 0
// on -h, -help and --help, before checking required flags.
func TestHelpEveryCommand(t *testing.T) {
	for name := range commandHelp {
		for _, h := range []string{"-h", "--help", "-help"} {
			args := append(strings.Fields(name), h)
			out, errs, code := runIn(t, args...)
			require.Equal(t, 0, code, "%v: %s", args, errs)
			require.Empty(t, errs, args)
			require.True(t, strings.HasPrefix(out, "Usage:\n    mpsi "+name), "%v:\n%s", args, out)
		}
	}
	// Each subcommand lists its own flags only.
	out, _, _ := runIn(t, "session", "create", "-h")
	require.Contains(t, out, "--spec")
	require.NotContains(t, out, "--session ")
	out, _, _ = runIn(t, "session", "result", "-h")
	require.Contains(t, out, "--session")
	require.Contains(t, out, "--sig-out")
	require.NotContains(t, out, "--spec")

	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		out, _, code := runIn(t, args...)
		require.Equal(t, 0, code)
		require.Equal(t, usage, out)
	}
	out, _, code := runIn(t, "help", "report")
	require.Equal(t, 0, code)
	require.Contains(t, out, "mpsi report RESULT.json")
}

// Unknown commands, subcommands and flags get a short error (two lines, no
// full usage) with a suggestion, and exit status 2.
func TestUnknownNamesSuggest(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sesion"}, `unknown command "sesion"` + "\nmpsi: hint: did you mean session?"},
		{[]string{"reprot"}, "did you mean report?"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"` + "\nmpsi: hint: mpsi help lists them"},
		{[]string{"help", "frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"session", "creat"}, `unknown session subcommand "creat"` + "\nmpsi: hint: did you mean create?"},
		{[]string{"audit", "verfy"}, "did you mean verify?"},
		{[]string{"session"}, "mpsi session needs a subcommand: create or result"},
		{[]string{"demo", "--recrods", "3"}, "unknown flag --recrods\nmpsi: hint: did you mean --records?"},
		{[]string{"run", "--dat", "a=b"}, "did you mean --data?"},
		{[]string{"party", "--sesion", "x"}, "did you mean --session?"},
		{[]string{"session", "create", "--session", "x"}, "unknown flag --session"},
		{[]string{"coordinator", "--zzzzzz"}, "unknown flag --zzzzzz\nmpsi: hint: mpsi coordinator -h lists the flags"},
		{[]string{"demo", "--records", "many"}, `invalid value "many" for flag --records`},
		{[]string{"demo", "stray"}, `unexpected argument "stray"`},
		{[]string{"version", "--short"}, "unknown flag --short"},
		{[]string{"gen-cohorts", "--out", "unused", "--mode", "fast"}, "use --mode dh or --mode keyed"},
		{[]string{"gen-cohorts", "--out", "unused", "--keys", "[ssn]"}, "--keys is not a JSON list of keys"},
	} {
		out, errs, code := runIn(t, tc.args...)
		require.Equal(t, exitUsage, code, "%v: %s", tc.args, errs)
		require.Empty(t, out, tc.args)
		require.Contains(t, errs, tc.want, tc.args)
		require.LessOrEqual(t, strings.Count(errs, "\n"), 2, "%v: short error:\n%s", tc.args, errs)
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"demo", "run", "coordinator", "session", "party", "report"}
	for _, tc := range []struct{ in, want string }{
		{"sesion", "session"}, {"coordinater", "coordinator"}, {"coord", "coordinator"}, {"rn", "run"},
		{"xyz", ""}, {"partyparty", ""}, {"DEMO", "demo"},
	} {
		require.Equal(t, tc.want, suggest(tc.in, names), tc.in)
	}
}

// mpsi run refuses --data and --map names that are not parties of the
// spec, and files that are not there, before reading any data.
func TestRunRefusesUnknownNamesAndFiles(t *testing.T) {
	dir := t.TempDir()
	_, err := cohort.GenerateDir(cohort.Config{Seed: 1, Parties: 2, Records: 20, SharedAll: 0.5, Mode: session.ModeKeyed}, dir)
	require.NoError(t, err)
	f := func(n string) string { return filepath.Join(dir, n) }
	base := []string{"run", "--spec", f("spec.json"), "--data", "hospital-a=" + f("hospital-a.csv"), "--data", "hospital-b=" + f("hospital-b.csv")}
	for _, tc := range []struct {
		extra []string
		want  string
		code  int
	}{
		{[]string{"--map", "hospital-x=x.json"}, "--map hospital-x: not a party of session", exitUsage},
		{[]string{"--data", "hospital-x=" + f("hospital-a.csv")}, "--data hospital-x: not a party of session", exitUsage},
		{[]string{"--map", "hospital-a=" + f("missing.map.json")}, "--map hospital-a: stat", 1},
	} {
		out, errs, code := runIn(t, append(append([]string{}, base...), tc.extra...)...)
		require.Equal(t, tc.code, code, "%v: %s", tc.extra, errs)
		require.Contains(t, errs, tc.want)
		require.Empty(t, out)
		require.NotContains(t, errs, "rows read", "refused before reading data")
	}
	_, errs, code := runIn(t, "run", "--spec", f("spec.json"), "--data", "hospital-a="+f("nope.csv"), "--data", "hospital-b="+f("hospital-b.csv"))
	require.Equal(t, 1, code)
	require.Contains(t, errs, "--data hospital-a: stat")
	out, errs, code := runIn(t, base...)
	require.Equal(t, 0, code, errs)
	require.NoError(t, json.Unmarshal([]byte(out), &session.Result{}))
}

// demo --json writes the Result JSON and nothing else on stdout.
func TestDemoJSONOnly(t *testing.T) {
	out, errs, code := runIn(t, "demo", "--inproc", "--records", "120", "--seed", "2", "--json")
	require.Equal(t, 0, code, errs)
	dec := json.NewDecoder(strings.NewReader(out))
	var r session.Result
	require.NoError(t, dec.Decode(&r))
	require.False(t, dec.More(), "stdout holds one JSON value only: %q", out)
	require.Contains(t, errs, "check against plaintext computation: OK")
}

// dev-certs says when its certificates expire and takes --valid-for.
func TestDevCertsValidFor(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	out, errs, code := runIn(t, "dev-certs", "--out", dir, "--names", "coordinator,hospital-a", "--valid-for", "30d")
	require.Equal(t, 0, code, errs)
	require.Regexp(t, `they expire at 20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ \(in 30 days; --valid-for sets this\)`, out)
	out, _, code = runIn(t, "dev-certs", "--out", filepath.Join(t.TempDir(), "c"), "--names", "x")
	require.Equal(t, 0, code)
	require.Contains(t, out, "(in 7 days;")
	for _, bad := range []string{"0s", "-1h", "10s", "forever", "4000d"} {
		_, errs, code := runIn(t, "dev-certs", "--out", filepath.Join(t.TempDir(), "c"), "--valid-for", bad)
		require.Equal(t, exitUsage, code, bad)
		require.Contains(t, errs, "--valid-for", bad)
	}
}

func TestParseValidity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{{"7d", "168h0m0s", true}, {"72h", "72h0m0s", true}, {"1m", "1m0s", true}, {" 30d ", "720h0m0s", true},
		{"59s", "", false}, {"d", "", false}, {"3661d", "", false}, {"1.5d", "", false}, {"", "", false}} {
		d, err := parseValidity(tc.in)
		if !tc.ok {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, d.String(), tc.in)
	}
}

// mpsi report writes the page from a Result file, refuses what is not a
// Result, and needs --sig and --certs together.
func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	res := filepath.Join(dir, "r.json")
	require.NoError(t, os.WriteFile(res, []byte(`{"session":"s","parties":["a","b"],"match_mode":"dh","intersection":12,"pairwise":[[20,12],[12,30]]}`+"\n"), 0o644))
	page := filepath.Join(dir, "r.html")
	_, errs, code := runIn(t, "report", res, "--out", page)
	require.Equal(t, 0, code, errs)
	b, err := os.ReadFile(page)
	require.NoError(t, err)
	require.Contains(t, string(b), `<span data-k="intersection">12</span>`)
	require.Contains(t, errs, "signature not checked")

	out, _, code := runIn(t, "report", "--out", "-", res)
	require.Equal(t, 0, code)
	require.True(t, strings.HasPrefix(out, "<!DOCTYPE html>"))

	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"hello":1}`), 0o644))
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"report", res}, "--out is required", exitUsage},
		{[]string{"report", "--out", page}, "want one RESULT.json", exitUsage},
		{[]string{"report", res, res, "--out", page}, "want one RESULT.json", exitUsage},
		{[]string{"report", res, "--out", page, "--sig", "x.sig"}, "--sig and --certs go together", exitUsage},
		{[]string{"report", bad, "--out", filepath.Join(dir, "bad.html")}, "bad.json: report: invalid input: result: no session id", 1},
		{[]string{"report", filepath.Join(dir, "none.json"), "--out", page}, "no such file", 1},
	} {
		_, errs, code := runIn(t, tc.args...)
		require.Equal(t, tc.code, code, "%v: %s", tc.args, errs)
		require.Contains(t, errs, tc.want, tc.args)
	}
	_, err = os.Stat(filepath.Join(dir, "bad.html"))
	require.True(t, errors.Is(err, os.ErrNotExist), "no page written for a bad Result")
}

// The real binary exits 0 on help and 2 on an unknown command.
func TestExitStatusOfBinary(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{{[]string{"session", "-h"}, 0}, {[]string{"audit", "head", "--help"}, 0}, {[]string{"frobnicate"}, exitUsage}, {[]string{"demo", "--nope"}, exitUsage}} {
		_, _, err := mpsi(t, tc.args...)
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err)
		}
		require.Equal(t, tc.code, code, tc.args)
	}
}

// The signed result fetched with session result --sig-out verifies in
// mpsi report against the dev CA; one changed digit fails the check (exit
// 1, and the page says so).
func TestE2EReportSignature(t *testing.T) {
	cl := newCluster(t, cohort.Config{Seed: 31, Parties: 2, Records: 60, SharedAll: 0.5, MinCell: 1, Mode: session.ModeKeyed})
	cl.createSession()
	cl.runParties()
	res, sig := filepath.Join(cl.dir, "r.json"), filepath.Join(cl.dir, "r.sig")
	out, stderr, err := mpsi(t, "session", "result", "--coordinator", cl.addr, "--certs", cl.certs, "--session", cl.spec.ID, "--sig-out", sig)
	require.NoError(t, err, stderr)
	require.NoError(t, os.WriteFile(res, []byte(out), 0o644))
	page := filepath.Join(cl.dir, "r.html")
	_, stderr, err = mpsi(t, "report", res, "--spec", filepath.Join(cl.dir, "cohort", "spec.json"), "--sig", sig, "--certs", cl.certs, "--out", page)
	require.NoError(t, err, stderr)
	b, err := os.ReadFile(page)
	require.NoError(t, err)
	require.Contains(t, string(b), `<span class="badge sig-verified" data-k="signature">verified</span>`)
	require.Contains(t, string(b), "min_cell")

	var r session.Result
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	tampered := strings.Replace(out, `"intersection":`, `"intersection":1`, 1)
	require.NotEqual(t, out, tampered)
	require.NoError(t, os.WriteFile(res, []byte(tampered), 0o644))
	_, stderr, err = mpsi(t, "report", res, "--sig", sig, "--certs", cl.certs, "--out", page)
	require.Error(t, err)
	require.Contains(t, stderr, "signature check failed")
	b, err = os.ReadFile(page)
	require.NoError(t, err)
	require.Contains(t, string(b), `<span class="badge sig-failed" data-k="signature">failed</span>`)
}

// By default the first row that fails to parse stops mpsi run, naming its
// line; with --skip-bad-rows every bad row is rejected and listed by line.
func TestRunBadRowsByLine(t *testing.T) {
	dir := t.TempDir()
	_, err := cohort.GenerateDir(cohort.Config{Seed: 3, Parties: 2, Records: 40, SharedAll: 0.5, Mode: session.ModeKeyed}, dir)
	require.NoError(t, err)
	path := filepath.Join(dir, "hospital-a.csv")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	lines := strings.Split(string(b), "\n")
	for _, i := range []int{4, 9} { // file lines 5 and 10
		f := strings.Split(lines[i], ",")
		f[len(f)-2] = "999" // age outside [0, 130]
		lines[i] = strings.Join(f, ",")
	}
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644))
	args := []string{"run", "--spec", filepath.Join(dir, "spec.json"),
		"--data", "hospital-a=" + path, "--map", "hospital-a=" + filepath.Join(dir, "hospital-a.map.json"),
		"--data", "hospital-b=" + filepath.Join(dir, "hospital-b.csv"), "--map", "hospital-b=" + filepath.Join(dir, "hospital-b.map.json")}
	_, errs, code := runIn(t, args...)
	require.Equal(t, 1, code)
	require.Contains(t, errs, "line 5: ")
	require.NotContains(t, errs, "line 10")

	out, errs, code := runIn(t, append(args, "--skip-bad-rows")...)
	require.Equal(t, 0, code, errs)
	require.Contains(t, errs, "mpsi: hospital-a: rejected line 5: ")
	require.Contains(t, errs, "mpsi: hospital-a: rejected line 10: ")
	require.Contains(t, errs, "2 rejected")
	require.NoError(t, json.Unmarshal([]byte(out), &session.Result{}))
}

// mpsi party refuses a missing data file before it connects (joining first
// would abort the session for everyone).
func TestPartyMissingDataBeforeConnecting(t *testing.T) {
	_, errs, code := runIn(t, "party", "--coordinator", "127.0.0.1:1", "--certs", t.TempDir(), "--name", "hospital-a",
		"--session", "s", "--data", filepath.Join(t.TempDir(), "none.csv"))
	require.Equal(t, 1, code)
	require.Contains(t, errs, "--data: stat")
	require.NotContains(t, errs, "devcert", "refused before loading certificates or dialling")
}

func FuzzParseValidity(f *testing.F) {
	for _, s := range []string{"7d", "72h", "1m", "0", "-1d", "99999999999d", "1.5h", "d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseValidity(s)
		if err == nil && (d < time.Minute || d > 3660*24*time.Hour) {
			t.Fatalf("parseValidity(%q) = %s, outside [1m, 3660d]", s, d)
		}
	})
}

// gen-cohorts --realistic writes the true groups beside the files, and
// --keys the match keys into the spec.
func TestGenCohortsRealistic(t *testing.T) {
	dir := t.TempDir()
	out, errs, code := runIn(t, "gen-cohorts", "--out", dir, "--records", "40", "--realistic", "--keys", `[["ssn"],["family_name|soundex","birth_date"]]`)
	require.Zero(t, code, errs)
	require.Contains(t, out, "truth_groups.csv")
	require.FileExists(t, filepath.Join(dir, cohort.TruthGroupsFile))
	spec, err := os.ReadFile(filepath.Join(dir, "spec.json"))
	require.NoError(t, err)
	require.Contains(t, string(spec), `"family_name|soundex"`)
	require.Contains(t, string(spec), `"ssn": "id"`)
	parsed, err := session.ParseSpec(spec)
	require.NoError(t, err, "the spec with match.keys is valid")
	require.Len(t, parsed.Match.Keys, 2)
}
