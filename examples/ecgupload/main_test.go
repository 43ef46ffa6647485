package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/examples/ecgupload/upload"
	"github.com/mpsi-dev/mpsi/internal/devcert"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMain lets the test binary stand in for the command when a test runs
// the server as its own process.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "ecgupload: error:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const childEnv = "ECGUPLOAD_TEST_CHILD"

// serverProcess runs "ecgupload server args..." as its own process and waits
// until it serves.
func serverProcess(t *testing.T, args []string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"server"}, args...)...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "serving on") }, 30*time.Second, 10*time.Millisecond,
		"server did not start:\n%s", out.String())
	return cmd, out
}

// TestServerKilledMidUpload kills the server process (SIGKILL) in the
// middle of a stream upload and starts a new one on the same state
// directory: the new process restores the job, the client resumes it, and
// the recording arrives byte for byte.
func TestServerKilledMidUpload(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	certs, store, state := filepath.Join(dir, "certs"), filepath.Join(dir, "store"), filepath.Join(dir, "state")
	args := []string{"--listen", freePort(t), "--store", store, "--certs", certs, "--state", state}
	first, firstOut := serverProcess(t, args)

	pool, cert, err := devcert.LoadDir(certs, "client")
	require.NoError(t, err)
	conn, err := upload.Dial(args[1], clientTLS(pool, cert))
	require.NoError(t, err)
	defer conn.Close()
	token, err := readToken(filepath.Join(certs, "client.token"))
	require.NoError(t, err)
	c, err := upload.NewClient(conn, upload.ClientConfig{ClientID: "client", Credential: token, Threshold: 64 << 10,
		ChunkSize: 64 << 10, ChunkInterval: 60 * time.Millisecond, MaxAttempts: 30, CallTimeout: 20 * time.Second})
	require.NoError(t, err)
	// Two uploads in flight, so that every unfinished job must come back.
	recs := []*upload.Recording{upload.SyntheticECG("killed-a", 900), upload.SyntheticECG("killed-b", 700)}
	type result struct {
		rc  *upload.Receipt
		err error
	}
	jobs := make([]*upload.Job, len(recs))
	res := make([]chan result, len(recs))
	for i, rec := range recs {
		j, err := c.Begin(ctx, rec, 5)
		require.NoError(t, err)
		jobs[i], res[i] = j, make(chan result, 1)
		go func() { rc, err := j.Run(ctx); res[i] <- result{rc, err} }()
	}

	// Kill the server once it holds a few chunks of each job but not all.
	require.Eventually(t, func() bool {
		for _, j := range jobs {
			st, err := j.Status(ctx)
			if err != nil || j.Chunks()-len(st.Missing) < 2 {
				return false
			}
		}
		return true
	}, 30*time.Second, 5*time.Millisecond)
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()
	require.False(t, first.ProcessState.Success(), "the first server was killed, it did not exit")
	require.NotContains(t, firstOut.String(), "recording stored")

	_, secondOut := serverProcess(t, args)
	for i, j := range jobs {
		var r result
		select {
		case r = <-res[i]:
		case <-ctx.Done():
			t.Fatalf("upload %s did not finish after the restart:\n%s", recs[i].Name, secondOut.String())
		}
		require.NoError(t, r.err, "second server:\n%s", secondOut.String())

		restored := regexp.MustCompile(`job restored from the state database.*job.record=` + recs[i].Name + ` .*missing=(\d+) chunks=(\d+)`).
			FindStringSubmatch(secondOut.String())
		require.NotNil(t, restored, "the second server did not restore %s:\n%s", recs[i].Name, secondOut.String())
		missing, _ := strconv.Atoi(restored[1])
		require.Less(t, missing, j.Chunks(), "the restarted server kept the chunks the first one stored")
		require.Greater(t, missing, 0)
		require.Less(t, j.Sent, 2*j.Chunks(), "the client resumed rather than starting again")

		_, stored, err := upload.ReadStored(store, r.rc.StoredAs)
		require.NoError(t, err)
		require.Len(t, stored.Files, len(recs[i].Files))
		for k, f := range recs[i].Files {
			require.Equal(t, f.Name, stored.Files[k].Name)
			require.True(t, bytes.Equal(f.Data, stored.Files[k].Data), "%s differs after the restart", f.Name)
		}
		t.Logf("%s: killed after %d of %d chunks; %d chunks sent in all", recs[i].Name, j.Chunks()-missing, j.Chunks(), j.Sent)
	}
}

// TestDemo runs the whole flow of `go run ./examples/ecgupload`.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole demo")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var stdout, stderr syncBuffer
	store := t.TempDir()
	err := run(ctx, []string{"demo", "-v=false", "--store", store}, &stdout, &stderr)
	require.NoError(t, err, "stderr:\n%s", stderr.String())
	out := stdout.String()
	t.Log(out)

	entries, err := os.ReadDir(store)
	require.NoError(t, err)
	want := 4 // the shared records 100, 100s and s0010_re plus the Holter recording
	if _, ok := upload.SharedDataDir("."); !ok {
		t.Log("shared ECG data absent: the demo used generated recordings")
		want = 3
	}
	require.Len(t, entries, want)
	require.Equal(t, want, strings.Count(out, "byte-for-byte identical"))
	require.Equal(t, want, strings.Count(out, "checksums match the header"))
	require.Contains(t, out, "forged credential refused; key epoch 1 -> 2")
	require.Contains(t, out, "expired credential refused; key epoch 2 -> 3")
	require.Contains(t, out, "asked for urgency 9; the server assigned 1")
	require.Contains(t, out, "ecgupload_preemptions_total 1")
	require.Contains(t, out, "preempted 1 time(s)")
	require.Contains(t, out, " unary ")
	require.Contains(t, out, " stream ")
}

func freePort(t *testing.T) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	return addr
}

// TestServerAndClientApart runs the server and client commands separately.
func TestServerAndClientApart(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	certs, store, data := filepath.Join(dir, "certs"), filepath.Join(dir, "store"), filepath.Join(dir, "data")
	require.NoError(t, os.MkdirAll(data, 0o755))
	recs := []*upload.Recording{upload.SyntheticECG("small", 30), upload.SyntheticECG("large", 600)}
	for _, r := range recs {
		for _, f := range r.Files {
			require.NoError(t, os.WriteFile(filepath.Join(data, f.Name), f.Data, 0o644))
		}
	}
	addr := freePort(t)

	sctx, stop := context.WithCancel(ctx)
	var sout, serr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(sctx, []string{"server", "--listen", addr, "--store", store, "--certs", certs, "-v=false"}, &sout, &serr)
	}()
	require.Eventually(t, func() bool { return strings.Contains(sout.String(), "serving on") }, 20*time.Second, 10*time.Millisecond,
		"server did not start: %s", serr.String())

	var cout, cerr syncBuffer
	err := run(ctx, []string{"client", "--server", addr, "--certs", certs, "--data", data, "--threshold", "262144", "--chunk", "65536"}, &cout, &cerr)
	require.NoError(t, err, "client stderr:\n%s", cerr.String())
	require.Contains(t, cout.String(), "uploaded 2 recordings")
	require.Contains(t, cout.String(), " stream ")
	require.Contains(t, cout.String(), " unary ")

	// A client whose token is wrong is refused.
	require.NoError(t, os.WriteFile(filepath.Join(certs, "bad.token"), []byte(strings.Repeat("ab", 32)), 0o600))
	err = run(ctx, []string{"client", "--server", addr, "--certs", certs, "--data", data, "--token", filepath.Join(certs, "bad.token")}, &cout, &cerr)
	require.ErrorIs(t, err, upload.ErrRejected)

	stop()
	require.NoError(t, <-done)
	entries, err := os.ReadDir(store)
	require.NoError(t, err)
	require.Len(t, entries, 2)
	for _, e := range entries {
		_, rec, err := upload.ReadStored(store, e.Name())
		require.NoError(t, err)
		for _, want := range recs {
			if want.Name == rec.Name {
				for i := range want.Files {
					require.Equal(t, want.Files[i].Data, rec.Files[i].Data)
				}
			}
		}
	}
}

func TestCommandErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, "unknown command"},
		{"server without store", []string{"server", "--certs", "x"}, "--store and --certs are required"},
		{"client without certs", []string{"client"}, "--certs is required"},
		{"non-loopback listen", []string{"server", "--listen", "0.0.0.0:0", "--store", "STORE", "--certs", "CERTS"}, "not a loopback address"},
		{"urgency too high", []string{"client", "--certs", "x", "--urgency", "10"}, "--urgency must be at most 9"},
		{"unknown link", []string{"client", "--certs", "x", "--link", "carrier-pigeon"}, "--link"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = strings.NewReplacer("STORE", filepath.Join(dir, "s"), "CERTS", filepath.Join(dir, "c")).Replace(a)
			}
			var out, errb syncBuffer
			err := run(t.Context(), args, &out, &errb)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestParseCredentials(t *testing.T) {
	tests := []struct {
		name, in string
		want     int
		wantErr  string
	}{
		{"two clients", "# comment\na routine 2030-01-01T00:00:00Z " + strings.Repeat("00", 32) + "\n\nb emergency 2030-01-01T00:00:00+08:00 " + strings.Repeat("ff", 16) + "\n", 2, ""},
		{"not hex", "a clinic 2030-01-01T00:00:00Z zz\n", 0, "creds:1: credential is not hex"},
		{"three fields", "a clinic 00\n", 0, "creds:1: want"},
		{"old two-field line", "a 00\n", 0, "creds:1: want"},
		{"unknown role", "a\nb admin 2030-01-01T00:00:00Z 00\n", 0, "creds:1: want"},
		{"unknown role on line 2", "# c\nb admin 2030-01-01T00:00:00Z 00\n", 0, "creds:2: upload: malformed"},
		{"bad expiry", "a clinic tomorrow 00\n", 0, "creds:1: expiry is not an RFC 3339 time"},
		{"duplicate", "a clinic 2030-01-01T00:00:00Z 00\na clinic 2030-01-01T00:00:00Z 01\n", 0, "creds:2: duplicate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCredentials("creds", []byte(tc.in))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Len(t, got, tc.want)
		})
	}
	got, err := parseCredentials("creds", []byte("a routine 2030-01-01T00:00:00Z 0001\n"))
	require.NoError(t, err)
	require.Equal(t, upload.Credential{Secret: []byte{0, 1}, Role: upload.RoleRoutine, Expires: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}, got["a"])
}

func FuzzParseCredentials(f *testing.F) {
	f.Add([]byte("client clinic 2030-01-01T00:00:00Z " + strings.Repeat("ab", 32) + "\n"))
	f.Add([]byte("# x\n\na routine 2030-01-01T00:00:00Z 00\nb emergency 1999-12-31T23:59:59Z 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseCredentials("fuzz", data)
		if err != nil {
			if got != nil {
				t.Fatal("credentials returned with an error")
			}
			return
		}
		for id := range got {
			if id == "" || strings.ContainsAny(id, " \t\n") {
				t.Fatalf("bad client id %q", id)
			}
		}
	})
}
