package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/internal/tcpproxy"
)

// cutParty runs the session's parties as processes, hospital-b through a
// TCP proxy to the coordinator. When b logs the end of its first ring hop
// (mid dh ring: the ring needs b's other hop) the proxy holds the path and
// cuts b's connection; refuse keeps the path down afterwards. It returns
// each party's exit error and stderr, and the coordinator's log at the cut.
func cutParty(t *testing.T, cl *cluster, refuse bool) (map[string]error, map[string]*syncLog, string) {
	t.Helper()
	px, err := tcpproxy.Start(cl.addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = px.Close() })
	errs := map[string]error{}
	logs := map[string]*syncLog{}
	var cmds = map[string]*exec.Cmd{}
	var atCut string
	var wg sync.WaitGroup
	for _, name := range cl.spec.Parties {
		cmd, _, _ := cl.partyCmd(name, cl.certs)
		lg := &syncLog{}
		logs[name] = lg
		cmds[name] = cmd
		if name != "hospital-b" {
			cmd.Stderr = lg
			require.NoError(t, cmd.Start())
			continue
		}
		for i, a := range cmd.Args {
			if a == cl.addr {
				cmd.Args[i] = px.Addr()
			}
		}
		pr, pw, err := os.Pipe()
		require.NoError(t, err)
		cmd.Stderr = pw
		require.NoError(t, cmd.Start())
		pw.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(pr)
			cut := false
			for sc.Scan() {
				line := sc.Text()
				_, _ = io.WriteString(lg, line+"\n")
				if !cut && strings.Contains(line, `phase="hop on`) {
					cut = true
					px.Hold()
					px.Refuse(refuse)
					px.Cut()
					atCut = cl.logs()
				}
			}
		}()
	}
	for name, cmd := range cmds {
		errs[name] = cmd.Wait()
	}
	wg.Wait()
	require.Equal(t, 1, px.Cuts(), "hospital-b's connection was cut once; its log:\n%s", logs["hospital-b"])
	return errs, logs, atCut
}

// syncLog is a process's stderr, safe to read while it runs.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A hospital's TCP connection cut mid dh ring (separate processes on
// 127.0.0.1, a proxy in between): it reconnects within the coordinator's
// --reconnect-grace, the session goes on and releases the Result the
// in-process runner computes over the same data.
func TestE2EReconnectMidRing(t *testing.T) {
	cl := newClusterArgs(t, cohort.Config{Seed: 31, Parties: 3, Records: 2000, SharedAll: 0.3, SharedPair: 0.1, MinCell: 1},
		[]string{"--reconnect-grace", "30s", "--round-timeout", "30s"})
	cl.createSession()
	errs, logs, atCut := cutParty(t, cl, false)
	for name, err := range errs {
		require.NoError(t, err, "%s failed\ncoordinator:\n%s\nhospital-a:\n%s\nhospital-b:\n%s\nhospital-c:\n%s", name, cl.logs(), logs["hospital-a"], logs["hospital-b"], logs["hospital-c"])
	}
	require.Contains(t, atCut, "round=tokens", "the cut came during the dh ring (round tokens)")
	require.NotContains(t, atCut, "session released")
	require.Contains(t, logs["hospital-b"].String(), "msg=reconnected")
	require.Contains(t, cl.logs(), `msg="party reconnected"`)
	require.Contains(t, cl.logs(), "party=hospital-b")
	want := cl.inProcess()
	out, stderr, err := mpsi(t, "session", "result", "--coordinator", cl.addr, "--certs", cl.certs, "--session", cl.spec.ID)
	require.NoError(t, err, stderr)
	wb, err := json.Marshal(want.Result)
	require.NoError(t, err)
	require.JSONEq(t, string(wb), out)
}

// A hospital whose path stays down past the grace: the session aborts
// (code disconnected) naming it, and every hospital ends with that reason.
func TestE2EReconnectGraceExpires(t *testing.T) {
	cl := newClusterArgs(t, cohort.Config{Seed: 32, Parties: 3, Records: 2000, SharedAll: 0.3, MinCell: 1},
		[]string{"--reconnect-grace", "2s"})
	cl.createSession()
	errs, logs, _ := cutParty(t, cl, true)
	for name, err := range errs {
		require.Error(t, err, "party %s must fail", name)
		if name == "hospital-b" {
			require.Contains(t, logs[name].String(), "reconnecting failed within 2s")
			continue
		}
		require.Contains(t, logs[name].String(), "session aborted")
		require.Contains(t, logs[name].String(), "party hospital-b disconnected")
		require.Contains(t, logs[name].String(), "did not reconnect within 2s")
	}
	_, stderr, err := mpsi(t, "session", "result", "--coordinator", cl.addr, "--certs", cl.certs, "--session", cl.spec.ID)
	require.Error(t, err)
	require.Contains(t, stderr, "aborted")
	require.Contains(t, stderr, "hospital-b")
	require.Contains(t, stderr, "did not reconnect within 2s")
}
