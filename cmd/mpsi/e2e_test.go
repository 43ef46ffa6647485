package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/psi/protocol"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// mpsiBin is the real binary, built once by TestMain; end-to-end tests start
// it as separate processes on 127.0.0.1.
var mpsiBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mpsi-e2e-bin-")
	if err != nil {
		panic(err)
	}
	mpsiBin = filepath.Join(dir, "mpsi")
	if out, err := exec.Command("go", "build", "-o", mpsiBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building mpsi: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cluster is a coordinator process with its certificates and cohort files.
type cluster struct {
	t     *testing.T
	dir   string
	certs string
	db    string
	addr  string
	coord *exec.Cmd
	log   *bytes.Buffer
	logMu *sync.Mutex
	c     *cohort.Cohort
	spec  *session.Spec
	// coordArgs are added to the coordinator's command line.
	coordArgs []string
}

func mpsi(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mpsiBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

type syncBuf struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (s syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func newCluster(t *testing.T, cfg cohort.Config, extraNames ...string) *cluster {
	t.Helper()
	return newClusterArgs(t, cfg, nil, extraNames...)
}

// newClusterArgs is newCluster with extra coordinator arguments.
func newClusterArgs(t *testing.T, cfg cohort.Config, coordArgs []string, extraNames ...string) *cluster {
	t.Helper()
	dir := t.TempDir()
	c, err := cohort.Generate(cfg)
	require.NoError(t, err)
	require.NoError(t, c.WriteDir(filepath.Join(dir, "cohort")))
	spec, err := session.ParseSpec(c.Spec)
	require.NoError(t, err)
	names := []string{"coordinator", "admin"}
	names = append(names, spec.Parties...)
	names = append(names, extraNames...)
	cl := &cluster{t: t, dir: dir, certs: filepath.Join(dir, "certs"), db: filepath.Join(dir, "mpsi.db"), c: c, spec: spec, logMu: &sync.Mutex{}, coordArgs: coordArgs}
	_, stderr, err := mpsi(t, "dev-certs", "--out", cl.certs, "--names", strings.Join(names, ","))
	require.NoError(t, err, stderr)
	cl.start()
	return cl
}

func (cl *cluster) start() {
	t := cl.t
	addrFile := filepath.Join(cl.dir, "addr")
	os.Remove(addrFile)
	cl.log = &bytes.Buffer{}
	cl.coord = exec.Command(mpsiBin, append([]string{"coordinator", "--listen", "127.0.0.1:0", "--certs", cl.certs, "--db", cl.db,
		"--addr-file", addrFile, "--round-timeout", "8s"}, cl.coordArgs...)...)
	cl.coord.Stdout, cl.coord.Stderr = syncBuf{cl.logMu, cl.log}, syncBuf{cl.logMu, cl.log}
	require.NoError(t, cl.coord.Start())
	t.Cleanup(func() { cl.stop(syscall.SIGKILL) })
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(addrFile)
		if err == nil && len(b) > 0 {
			cl.addr = string(b)
			return true
		}
		return false
	}, 20*time.Second, 20*time.Millisecond, "coordinator did not start: %s", cl.logs())
}

func (cl *cluster) logs() string {
	cl.logMu.Lock()
	defer cl.logMu.Unlock()
	return cl.log.String()
}

func (cl *cluster) stop(sig syscall.Signal) {
	if cl.coord == nil || cl.coord.Process == nil {
		return
	}
	_ = cl.coord.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = cl.coord.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cl.coord.Process.Kill()
		<-done
	}
	cl.coord = nil
}

func (cl *cluster) createSession() {
	out, stderr, err := mpsi(cl.t, "session", "create", "--coordinator", cl.addr, "--certs", cl.certs, "--spec", filepath.Join(cl.dir, "cohort", "spec.json"))
	require.NoError(cl.t, err, stderr)
	require.Equal(cl.t, cl.spec.ID, strings.TrimSpace(out))
}

func (cl *cluster) partyCmd(name, certs string) (*exec.Cmd, *bytes.Buffer, string) {
	return cl.partyCmdAs(name, certs, cl.spec.ID, name)
}

// partyCmdAs runs party name in session with dataOf's files.
func (cl *cluster) partyCmdAs(name, certs, sessionID, dataOf string) (*exec.Cmd, *bytes.Buffer, string) {
	out := filepath.Join(cl.dir, name+"-"+sessionID+".result.json")
	cmd := exec.Command(mpsiBin, "party", "--coordinator", cl.addr, "--certs", certs, "--name", name, "--session", sessionID,
		"--data", filepath.Join(cl.dir, "cohort", dataOf+".csv"), "--map", filepath.Join(cl.dir, "cohort", dataOf+".map.json"), "--out", out)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	return cmd, &errb, out
}

// partyProc is a started party process.
type partyProc struct {
	cmd  *exec.Cmd
	errb *bytes.Buffer
	out  string
}

// startParties starts every party of the spec as a process, each with the
// extra arguments extra[name].
func (cl *cluster) startParties(extra map[string][]string) map[string]partyProc {
	procs := map[string]partyProc{}
	for _, name := range cl.spec.Parties {
		cmd, errb, out := cl.partyCmd(name, cl.certs)
		cmd.Args = append(cmd.Args, extra[name]...)
		require.NoError(cl.t, cmd.Start())
		procs[name] = partyProc{cmd, errb, out}
	}
	return procs
}

// runParties runs every party of the spec as a process and waits.
func (cl *cluster) runParties() map[string]string {
	t := cl.t
	procs := cl.startParties(nil)
	results := map[string]string{}
	for name, p := range procs {
		require.NoError(t, p.cmd.Wait(), "%s: %s\ncoordinator: %s", name, p.errb.String(), cl.logs())
		b, err := os.ReadFile(p.out)
		require.NoError(t, err)
		results[name] = strings.TrimSpace(string(b))
	}
	return results
}

func (cl *cluster) inProcess() *party.Outcome {
	ins, err := cohortInputs(cl.c, cl.spec)
	require.NoError(cl.t, err)
	out, err := party.RunLocal(context.Background(), cl.spec, ins, party.Config{})
	require.NoError(cl.t, err)
	return out
}

// The built binary as separate processes, a coordinator and three parties on
// 127.0.0.1, gives the same Result as the in-process runner, in both modes;
// `session result` serves it, and the audit chain verifies.
func TestE2EMatchesInProcess(t *testing.T) {
	for _, mode := range []string{session.ModeDH, session.ModeKeyed} {
		t.Run(mode, func(t *testing.T) {
			cl := newCluster(t, cohort.Config{Seed: 21, Parties: 3, Records: 150, SharedAll: 0.4, SharedPair: 0.1, Noise: true, Mode: mode, MinCell: 3})
			cl.createSession()
			results := cl.runParties()
			want := cl.inProcess()
			for name, got := range results {
				wb, err := json.Marshal(want.Parties[name])
				require.NoError(t, err)
				require.JSONEq(t, string(wb), got, name)
			}
			out, stderr, err := mpsi(t, "session", "result", "--coordinator", cl.addr, "--certs", cl.certs, "--session", cl.spec.ID)
			require.NoError(t, err, stderr)
			wb, _ := json.Marshal(want.Result)
			require.JSONEq(t, string(wb), out)
			cl.stop(syscall.SIGTERM)
			out, stderr, err = mpsi(t, "audit", "verify", "--db", cl.db)
			require.NoError(t, err, stderr)
			require.Contains(t, out, "verified")
		})
	}
}

// A party with a certificate from another CA, or with a name not in the
// spec, is refused with the reason, and writes no output file.
func TestE2ERefusals(t *testing.T) {
	cl := newCluster(t, cohort.Config{Seed: 22, Parties: 2, Records: 40, SharedAll: 0.5, MinCell: 1}, "hospital-z")
	cl.createSession()
	rogue := filepath.Join(cl.dir, "rogue")
	_, stderr, err := mpsi(t, "dev-certs", "--out", rogue, "--names", "hospital-a")
	require.NoError(t, err, stderr)

	cmd, errb, out := cl.partyCmd("hospital-a", rogue)
	require.Error(t, cmd.Run())
	require.Contains(t, errb.String(), "mpsi: error:")
	require.Contains(t, errb.String(), "certificate")
	require.NoFileExists(t, out)
	// The coordinator logs the refused handshake with the peer and reason.
	require.Eventually(t, func() bool {
		l := cl.logs()
		return strings.Contains(l, "TLS handshake refused") && strings.Contains(l, "peer=127.0.0.1:") && strings.Contains(l, "certificate")
	}, 20*time.Second, 20*time.Millisecond, "no log line for the refused handshake: %s", cl.logs())

	cmd, errb, out = cl.partyCmdAs("hospital-z", cl.certs, cl.spec.ID, "hospital-a")
	require.Error(t, cmd.Run())
	require.Contains(t, errb.String(), `"hospital-z" is not a party of session`)
	require.NoFileExists(t, out)

	// A non-admin certificate cannot create sessions.
	_, stderr, err = mpsi(t, "session", "create", "--coordinator", cl.addr, "--certs", cl.certs, "--name", "hospital-a", "--spec", filepath.Join(cl.dir, "cohort", "spec.json"))
	require.Error(t, err)
	require.Contains(t, stderr, "PermissionDenied")
}

// A party killed in the middle of the ring makes the session abort for the
// others, with a reason, within the round deadline; nothing is released.
func TestE2EPartyKilledMidRing(t *testing.T) {
	cl := newCluster(t, cohort.Config{Seed: 23, Parties: 3, Records: 6000, SharedAll: 0.3, MinCell: 1})
	cl.createSession()
	var cmds []*exec.Cmd
	var errs []*bytes.Buffer
	for _, name := range cl.spec.Parties {
		cmd, errb, _ := cl.partyCmd(name, cl.certs)
		if name == "hospital-b" {
			pr, pw, err := os.Pipe()
			require.NoError(t, err)
			cmd.Stderr = pw
			require.NoError(t, cmd.Start())
			pw.Close()
			go func() {
				sc := bufio.NewScanner(pr)
				for sc.Scan() {
					if strings.Contains(sc.Text(), "roster verified") {
						time.Sleep(300 * time.Millisecond) // into the ring
						_ = cmd.Process.Kill()
					}
				}
			}()
		} else {
			require.NoError(t, cmd.Start())
		}
		cmds = append(cmds, cmd)
		errs = append(errs, errb)
	}
	start := time.Now()
	for i, cmd := range cmds {
		err := cmd.Wait()
		require.Error(t, err, "party %s must fail", cl.spec.Parties[i])
		if cl.spec.Parties[i] != "hospital-b" {
			require.Contains(t, errs[i].String(), "session aborted")
			require.Contains(t, errs[i].String(), "hospital-b")
		}
	}
	require.Less(t, time.Since(start), 30*time.Second)
	_, stderr, err := mpsi(t, "session", "result", "--coordinator", cl.addr, "--certs", cl.certs, "--session", cl.spec.ID)
	require.Error(t, err)
	require.Contains(t, stderr, "aborted")
	require.Contains(t, stderr, "hospital-b")
}

// A coordinator killed and restarted still serves completed results, reports
// the interrupted session as aborted, and its audit chain verifies.
func TestE2ECoordinatorRestart(t *testing.T) {
	cl := newCluster(t, cohort.Config{Seed: 24, Parties: 2, Records: 60, SharedAll: 0.5, MinCell: 1, Mode: session.ModeKeyed})
	cl.createSession()
	results := cl.runParties()
	// A second session, interrupted: created, one party joined, then SIGKILL.
	spec2 := strings.Replace(string(cl.c.Spec), cl.spec.ID, "interrupted", 1)
	p2 := filepath.Join(cl.dir, "spec2.json")
	require.NoError(t, os.WriteFile(p2, []byte(spec2), 0o644))
	_, stderr, err := mpsi(t, "session", "create", "--coordinator", cl.addr, "--certs", cl.certs, "--spec", p2)
	require.NoError(t, err, stderr)
	cmd, _, _ := cl.partyCmdAs("hospital-a", cl.certs, "interrupted", "hospital-a")
	require.NoError(t, cmd.Start())
	require.Eventually(t, func() bool { return strings.Contains(cl.logs(), "session=interrupted party=hospital-a") }, 20*time.Second, 20*time.Millisecond)
	cl.stop(syscall.SIGKILL)
	_ = cmd.Wait()

	cl.start()
	out, stderr, err := mpsi(t, "session", "result", "--coordinator", cl.addr, "--certs", cl.certs, "--session", cl.spec.ID)
	require.NoError(t, err, stderr)
	var r session.Result
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	var pr session.Result
	require.NoError(t, json.Unmarshal([]byte(results["hospital-a"]), &pr))
	require.Equal(t, *pr.Intersection, *r.Intersection)
	_, stderr, err = mpsi(t, "session", "result", "--coordinator", cl.addr, "--certs", cl.certs, "--session", "interrupted")
	require.Error(t, err)
	require.Contains(t, stderr, "aborted")
	require.Contains(t, stderr, "restarted")
	cl.stop(syscall.SIGTERM)
	out, stderr, err = mpsi(t, "audit", "verify", "--db", cl.db)
	require.NoError(t, err, stderr)
	require.Contains(t, out, "verified")
	out, stderr, err = mpsi(t, "audit", "head", "--db", cl.db)
	require.NoError(t, err, stderr)
	require.Regexp(t, `^[0-9]+ [0-9a-f]{64}\n$`, out)
}

// mpsi session result prints only a Result whose coordinator signature
// verifies against the coordinator's certificate, pinned by name: a stored
// signature changed on disk is refused, with --no-verify for forensics; a
// stored result changed by one digit fails the audit check.
func TestE2ESessionResultVerifiesSignature(t *testing.T) {
	cl := newCluster(t, cohort.Config{Seed: 25, Parties: 2, Records: 60, SharedAll: 0.5, MinCell: 1, Mode: session.ModeKeyed})
	cl.createSession()
	cl.runParties()
	args := func() []string {
		return []string{"session", "result", "--coordinator", cl.addr, "--certs", cl.certs, "--session", cl.spec.ID}
	}
	out, stderr, err := mpsi(t, args()...)
	require.NoError(t, err, stderr)
	_, stderr, err = mpsi(t, append(args(), "--coordinator-name", "hospital-a")...)
	require.Error(t, err)
	require.Contains(t, stderr, `pinned name "hospital-a"`)

	// Change one byte of the stored signature, behind the store's back.
	cl.stop(syscall.SIGTERM)
	tamper := func(query string, qargs ...any) {
		db, err := sql.Open("sqlite", cl.db)
		require.NoError(t, err)
		defer db.Close()
		_, err = db.Exec(`DROP TRIGGER IF EXISTS results_no_update`)
		require.NoError(t, err)
		res, err := db.Exec(query, qargs...)
		require.NoError(t, err)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
	}
	tamper(`UPDATE results SET signature = CAST(substr(signature, 1, length(signature)-1) || X'00' AS BLOB) WHERE session = ?`, cl.spec.ID)
	cl.start()
	_, stderr, err = mpsi(t, args()...)
	require.Error(t, err, "a result whose signature fails must be refused")
	require.Contains(t, stderr, "does not verify")
	got, stderr, err := mpsi(t, append(args(), "--no-verify")...)
	require.NoError(t, err, stderr)
	require.Equal(t, out, got)
	require.Contains(t, stderr, "NOT checked")

	// Change one digit of the stored result: the audit chain no longer
	// matches it.
	cl.stop(syscall.SIGTERM)
	var r session.Result
	require.NoError(t, json.Unmarshal([]byte(out), &r))
	from := fmt.Sprintf(`"intersection":%d`, *r.Intersection)
	to := fmt.Sprintf(`"intersection":%d`, *r.Intersection+1)
	tamper(`UPDATE results SET result = CAST(replace(CAST(result AS TEXT), ?, ?) AS BLOB) WHERE session = ?`, from, to, cl.spec.ID)
	_, stderr, err = mpsi(t, "audit", "verify", "--db", cl.db)
	require.Error(t, err, "audit verify must catch a changed result")
	require.NotEmpty(t, stderr)
}

func TestCLIUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, "mpsi: hint: try: mpsi demo"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"demo", "--mode", "fast"}, "use --mode dh or --mode keyed"},
		{[]string{"coordinator"}, "mpsi dev-certs --out"},
		{[]string{"run", "--spec", "/nonexistent.json"}, "no such file"},
		{[]string{"party", "--name", "x"}, "is required"},
		{[]string{"demo", "stray"}, `unexpected argument "stray"`},
	}
	for _, tc := range cases {
		_, stderr, err := mpsi(t, tc.args...)
		require.Error(t, err, tc.args)
		require.Contains(t, stderr, tc.want, tc.args)
	}
}

// The default demo path works end to end (small size for test time).
func TestDemoRuns(t *testing.T) {
	out, stderr, err := mpsi(t, "demo", "--records", "200", "--seed", "3")
	require.NoError(t, err, stderr+out)
	require.Contains(t, out, "check against plaintext computation: OK")
	out, stderr, err = mpsi(t, "demo", "--inproc", "--records", "200", "--seed", "3", "--mode", "keyed", "--json")
	require.NoError(t, err, stderr+out)
	require.Contains(t, out, `"match_mode":"keyed"`)
}

// The encrypted aggregation mode matches the truth in process and over the
// network.
func TestDemoEncrypted(t *testing.T) {
	out, stderr, err := mpsi(t, "demo", "--inproc", "--aggregation", "encrypted", "--records", "300", "--seed", "5")
	require.NoError(t, err, stderr+out)
	require.Contains(t, out, "check against plaintext computation: OK")
	out, stderr, err = mpsi(t, "demo", "--aggregation", "encrypted", "--records", "300", "--seed", "6")
	require.NoError(t, err, stderr+out)
	require.Contains(t, out, "check against plaintext computation: OK")
	require.Contains(t, out, "encrypted aggregation")
}

// The oblivious aggregation mode matches the truth over the network, with
// the hospitals as separate processes, in both matching modes.
func TestDemoOblivious(t *testing.T) {
	out, stderr, err := mpsi(t, "demo", "--aggregation", "oblivious", "--records", "300", "--seed", "8")
	require.NoError(t, err, stderr+out)
	require.Contains(t, out, "check against plaintext computation: OK")
	require.Contains(t, out, "oblivious aggregation")
	out, stderr, err = mpsi(t, "demo", "--aggregation", "oblivious", "--mode", "keyed", "--records", "300", "--seed", "9")
	require.NoError(t, err, stderr+out)
	require.Contains(t, out, "check against plaintext computation: OK")
}

// mpsi bench checks every run against the ground truth, in every aggregation
// mode in process and over the network.
func TestBenchRuns(t *testing.T) {
	out, stderr, err := mpsi(t, "bench", "--inproc", "--parties", "2", "--records", "300", "--mode", "keyed", "--aggregation", "masked,oblivious,encrypted", "--json")
	require.NoError(t, err, stderr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3)
	for _, l := range lines {
		var row benchRow
		require.NoError(t, json.Unmarshal([]byte(l), &row))
		require.True(t, row.Correct, l)
	}
	out, stderr, err = mpsi(t, "bench", "--parties", "2", "--records", "300", "--mode", "dh")
	require.NoError(t, err, stderr)
	require.Contains(t, out, "true")
	out, stderr, err = mpsi(t, "bench", "--parties", "2", "--records", "300", "--mode", "keyed", "--aggregation", "encrypted", "--json")
	require.NoError(t, err, stderr)
	var row benchRow
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(out)), &row))
	require.True(t, row.Correct, out)
	require.Equal(t, session.AggregationEncrypted, row.Aggregation)
	require.Positive(t, row.WireBPerElem, "wire bytes are counted over the network")
}

// editSpec rewrites the cluster's spec file before the session is created.
func (cl *cluster) editSpec(edit func(map[string]any)) {
	t := cl.t
	var m map[string]any
	require.NoError(t, json.Unmarshal(cl.c.Spec, &m))
	edit(m)
	b, err := json.Marshal(m)
	require.NoError(t, err)
	cl.spec, err = session.ParseSpec(b)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(cl.dir, "cohort", "spec.json"), b, 0o600))
}

// Aggregation encrypted with a 2-of-3 threshold, the real binary as
// separate processes, parties crashing (--fault-exit-at: exit without an
// Abort) at a stage: an active party gone during the key switch is
// replaced; a party gone before its ciphertexts is left out (rule
// leave_out) and the Result says so; two parties gone leave fewer than t,
// and a party gone before the collective key exists aborts the session,
// with the reason.
func TestE2EEncryptedDropouts(t *testing.T) {
	base := cohort.Config{Seed: 25, Parties: 3, Records: 200, SharedAll: 0.4, SharedPair: 0.1, Noise: true, Mode: session.ModeKeyed, MinCell: 3, Aggregation: session.AggregationEncrypted}
	threshold := func(m map[string]any) { m["threshold"], m["dropout"] = 2, session.DropoutLeaveOut }
	// local runs the in-process runner on the cohort with a spec edit
	// (masked aggregation: the encrypted mode must release the same).
	local := func(t *testing.T, cl *cluster, edit func(map[string]any)) *session.Result {
		var m map[string]any
		require.NoError(t, json.Unmarshal(cl.c.Spec, &m))
		m["aggregation"] = session.AggregationMasked
		if edit != nil {
			edit(m)
		}
		b, err := json.Marshal(m)
		require.NoError(t, err)
		spec, err := session.ParseSpec(b)
		require.NoError(t, err)
		ins, err := cohortInputs(cl.c, spec)
		require.NoError(t, err)
		out, err := party.RunLocal(context.Background(), spec, ins, party.Config{})
		require.NoError(t, err)
		return out.Result
	}
	cases := []struct {
		name  string
		exit  map[string]string
		want  func(t *testing.T, cl *cluster) *session.Result // nil: abort
		abort string
	}{
		{"active party gone during the key switch", map[string]string{"hospital-a": protocol.StageKeySwitch},
			func(t *testing.T, cl *cluster) *session.Result { return local(t, cl, nil) }, ""},
		{"party gone before its ciphertexts is left out", map[string]string{"hospital-c": protocol.StagePublicKey},
			func(t *testing.T, cl *cluster) *session.Result {
				r := local(t, cl, func(m map[string]any) {
					for _, a := range m["aggregates"].([]any) {
						if a := a.(map[string]any); a["name"] == "visits" {
							a["from"] = []string{"hospital-a", "hospital-b"}
						}
					}
				})
				r.LeftOut = []string{"hospital-c"}
				return r
			}, ""},
		{"two of three gone", map[string]string{"hospital-b": protocol.StagePublicKey, "hospital-c": protocol.StagePublicKey}, nil,
			"only 1 parties remain and the key switch needs 2"},
		{"party gone before the keys are made", map[string]string{"hospital-b": protocol.StageKeysSent}, nil,
			"hospital-b"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := newCluster(t, base)
			cl.editSpec(threshold)
			cl.createSession()
			extra := map[string][]string{}
			for name, st := range tc.exit {
				extra[name] = []string{"--fault-exit-at", st}
			}
			procs := cl.startParties(extra)
			for name, p := range procs {
				err := p.cmd.Wait()
				if tc.exit[name] != "" {
					var ee *exec.ExitError
					require.ErrorAs(t, err, &ee, name)
					require.Equal(t, 86, ee.ExitCode(), "%s exits by fault injection: %s", name, p.errb.String())
					continue
				}
				if tc.want == nil {
					require.Error(t, err, name)
					require.Contains(t, p.errb.String(), tc.abort, name)
					continue
				}
				require.NoError(t, err, "%s: %s\ncoordinator: %s", name, p.errb.String(), cl.logs())
				got, err := os.ReadFile(p.out)
				require.NoError(t, err)
				want, err := json.Marshal(tc.want(t, cl))
				require.NoError(t, err)
				require.JSONEq(t, string(want), string(got), name)
			}
		})
	}
}

// A frozen coordinator (SIGSTOP) ends a waiting hospital with a reason that
// names the coordinator, after --idle-timeout without a message, rather
// than leaving it waiting for ever.
func TestE2EFrozenCoordinator(t *testing.T) {
	cl := newCluster(t, cohort.Config{Seed: 26, Parties: 2, Records: 40, SharedAll: 0.5, MinCell: 1, Mode: session.ModeKeyed})
	cl.createSession()
	cmd, errb, _ := cl.partyCmd("hospital-a", cl.certs)
	cmd.Args = append(cmd.Args, "--idle-timeout", "2s")
	require.NoError(t, cmd.Start())
	require.Eventually(t, func() bool { return strings.Contains(cl.logs(), "party=hospital-a") }, 20*time.Second, 20*time.Millisecond)
	require.NoError(t, cl.coord.Process.Signal(syscall.SIGSTOP))
	defer func() { _ = cl.coord.Process.Signal(syscall.SIGCONT) }()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.Error(t, err)
		require.Contains(t, errb.String(), "no message from the coordinator")
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the hospital kept waiting on a frozen coordinator")
	}
}

// A session aborted by a coordinator crash is run again with `mpsi session
// rerun`: a derived id, the same spec, the parties' same command lines plus
// the new id, the same Result as in process; a completed session and a
// running one are refused.
func TestE2ESessionRerun(t *testing.T) {
	cl := newCluster(t, cohort.Config{Seed: 31, Parties: 2, Records: 60, SharedAll: 0.5, MinCell: 1, Mode: session.ModeKeyed})
	cl.createSession()
	orig := cl.spec.ID
	cmd, _, _ := cl.partyCmdAs("hospital-a", cl.certs, orig, "hospital-a")
	require.NoError(t, cmd.Start())
	require.Eventually(t, func() bool { return strings.Contains(cl.logs(), "session="+orig+" party=hospital-a") }, 20*time.Second, 20*time.Millisecond)
	cl.stop(syscall.SIGKILL)
	_ = cmd.Wait()
	cl.start()

	rerun := func(id string) (string, string, error) {
		out, stderr, err := mpsi(t, "session", "rerun", "--coordinator", cl.addr, "--certs", cl.certs, id)
		return strings.TrimSpace(out), stderr, err
	}
	out, stderr, err := rerun(orig)
	require.NoError(t, err, stderr)
	require.Equal(t, orig+"-r1", out)
	require.Contains(t, stderr, "--session "+orig+"-r1")

	// Still waiting for its parties: not rerunnable.
	_, stderr, err = rerun(orig + "-r1")
	require.Error(t, err)
	require.Contains(t, stderr, "only an aborted session can be rerun")

	cl.spec.ID = orig + "-r1"
	results := cl.runParties()
	var got session.Result
	require.NoError(t, json.Unmarshal([]byte(results["hospital-a"]), &got))
	want := cl.inProcess()
	require.Equal(t, *want.Result.Intersection, *got.Intersection)
	require.Equal(t, orig+"-r1", got.Session)

	_, stderr, err = rerun(orig + "-r1")
	require.Error(t, err)
	require.Contains(t, stderr, "completed")
	// The original is still aborted: a second rerun takes the next id.
	out, stderr, err = rerun(orig)
	require.NoError(t, err, stderr)
	require.Equal(t, orig+"-r2", out)
	// A party certificate cannot rerun (CreateSession is admin only).
	_, stderr, err = mpsi(t, "session", "rerun", "--coordinator", cl.addr, "--certs", cl.certs, "--name", "hospital-a", orig)
	require.Error(t, err)
	require.Contains(t, stderr, "PermissionDenied")
}

// With --max-sessions 1, a second live session is refused at once with
// ResourceExhausted by the real coordinator process, and the log says why.
func TestE2EMaxSessions(t *testing.T) {
	cl := newClusterArgs(t, cohort.Config{Seed: 33, Parties: 2, Records: 20, SharedAll: 0.5, MinCell: 1}, []string{"--max-sessions", "1"})
	cl.createSession()
	spec2 := strings.Replace(string(cl.c.Spec), cl.spec.ID, "second", 1)
	p2 := filepath.Join(cl.dir, "spec2.json")
	require.NoError(t, os.WriteFile(p2, []byte(spec2), 0o644))
	_, stderr, err := mpsi(t, "session", "create", "--coordinator", cl.addr, "--certs", cl.certs, "--spec", p2)
	require.Error(t, err)
	require.Contains(t, stderr, "ResourceExhausted")
	require.Contains(t, stderr, "--max-sessions")
	require.Eventually(t, func() bool { return strings.Contains(cl.logs(), "live-session cap reached") }, 20*time.Second, 20*time.Millisecond)
}
