package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// promtoolEnv makes TestE2EMetrics fail when promtool is missing (.ci/run
// sets it after installing Debian's prometheus package); without it the
// promtool step runs only where promtool is installed.
const promtoolEnv = "MPSI_TEST_PROMTOOL"

var (
	metricsAddrRe = regexp.MustCompile(`msg=metrics addr=(\S+)`)
	releasedRe    = regexp.MustCompile(`msg="session released".* duration=(\S+) last_round=(\S+)`)
)

// The real coordinator serves /metrics, /healthz and /readyz on its
// --metrics address; after a session the metrics count it, carry the
// runtime, process and build collectors, and pass promtool check metrics;
// "session released" logs the whole session's duration.
func TestE2EMetrics(t *testing.T) {
	cl := newClusterArgs(t, cohort.Config{Seed: 41, Parties: 2, Records: 80, SharedAll: 0.5, MinCell: 1, Mode: session.ModeKeyed},
		[]string{"--metrics", "127.0.0.1:0"})
	var base string
	require.Eventually(t, func() bool {
		m := metricsAddrRe.FindStringSubmatch(cl.logs())
		if m != nil {
			base = "http://" + m[1]
		}
		return m != nil
	}, 20*time.Second, 20*time.Millisecond, "no metrics address in the log: %s", cl.logs())
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, body := get("/healthz")
	require.Equal(t, http.StatusOK, code, body)
	code, body = get("/readyz")
	require.Equal(t, http.StatusOK, code, body)

	cl.createSession()
	cl.runParties()
	var metrics string
	require.Eventually(t, func() bool {
		_, metrics = get("/metrics")
		return strings.Contains(metrics, `mpsi_sessions_finished_total{outcome="completed",reason="none"} 1`)
	}, 20*time.Second, 50*time.Millisecond, "the completed session is counted")
	for _, want := range []string{
		"mpsi_sessions_created_total 1",
		`mpsi_sessions_live{round="setup"} 0`,
		`mpsi_session_duration_seconds_count{outcome="completed"} 1`,
		`mpsi_round_duration_seconds_count{round="tokens"}`,
		`mpsi_received_bytes_total{round="tokens"}`,
		`mpsi_sent_bytes_total{round="tokens"}`,
		"go_goroutines ", "process_resident_memory_bytes ", "go_build_info{",
	} {
		require.Contains(t, metrics, want)
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		require.NotEqual(t, "1", os.Getenv(promtoolEnv), "%s=1 but promtool is not installed (apt-get install -y prometheus)", promtoolEnv)
		t.Log("promtool not installed: promtool check metrics not run (the promlint check in coordinator's tests still is)")
	} else {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(metrics)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Run(), "promtool check metrics:\n%s", out.String())
	}

	cl.stop(syscall.SIGTERM)
	m := releasedRe.FindStringSubmatch(cl.logs())
	require.NotNil(t, m, "no session released line: %s", cl.logs())
	total, err := time.ParseDuration(m[1])
	require.NoError(t, err)
	last, err := time.ParseDuration(m[2])
	require.NoError(t, err)
	require.Greater(t, total, last, "the session's duration includes every round, not only the last")
}
