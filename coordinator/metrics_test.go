package coordinator_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/coordinator"
	"github.com/mpsi-dev/mpsi/psi/protocol"
	"github.com/mpsi-dev/mpsi/psi/session"
)

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *coordinator.Metrics
	m.SessionCreated()
	m.RoundEntered("", "join")
	m.RoundFinished("join", time.Second)
	m.SessionFinished("join", coordinator.OutcomeAborted, protocol.CodeTimeout.String(), time.Second)
	m.SessionsInterrupted(2)
	m.MessageIn("join", 10)
	m.MessageOut("join", 10)
}

// metricValue is the value of the series name{labels} in reg (counter,
// gauge, or a histogram's sample count), and whether it exists.
func metricValue(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue series
				}
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue(), true
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue(), true
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// A completed session, one aborted by an undecodable frame and one aborted
// by its party's policy: the metrics count each by outcome and reason code, the
// live gauges return to zero, messages and bytes are counted both ways per
// round, the output passes the linter promtool uses, and /readyz turns
// 503 once the coordinator shuts down.
func TestMetricsOfSessions(t *testing.T) {
	reg := prometheus.NewRegistry()
	coordinator.RegisterRuntime(reg)
	h := newHarnessTimeout(t, testRoundTimeout, func(c *coordinator.Config) { c.Metrics = coordinator.NewMetrics(reg) })
	c := getCohort(t, session.ModeKeyed)
	h.runHappy(t, c, newSessionID("metrics-ok"))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bad := newSessionID("metrics-bad")
	h.create(t, specJSON(t, c, bad, nil))
	h.join(ctx, t, c, "hospital-a", bad).sendRaw([]byte{protocol.Version, byte(protocol.TypeReady), 0xff})
	h.requireAborted(t, bad, "undecodable message")

	gaveUp := newSessionID("metrics-abort")
	h.create(t, specJSON(t, c, gaveUp, nil))
	a := h.join(ctx, t, c, "hospital-b", gaveUp)
	a.send(&protocol.Abort{Header: a.hdr(), Code: protocol.CodePolicy, Reason: "policy refused"})
	h.requireAborted(t, gaveUp, "policy refused")

	val := func(name string, labels map[string]string) float64 {
		v, _ := metricValue(t, reg, name, labels)
		return v
	}
	// The completed session's count follows its release by a moment (the
	// session goroutine records it after broadcasting the Result).
	require.Eventually(t, func() bool {
		return val("mpsi_sessions_finished_total", map[string]string{"outcome": "completed", "reason": "none"}) == 1
	}, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 3.0, val("mpsi_sessions_created_total", nil))
	require.Equal(t, 1.0, val("mpsi_sessions_finished_total", map[string]string{"outcome": "aborted", "reason": "bad_message"}))
	require.Equal(t, 1.0, val("mpsi_sessions_finished_total", map[string]string{"outcome": "aborted", "reason": "policy"}))
	require.Equal(t, 1.0, val("mpsi_session_duration_seconds", map[string]string{"outcome": "completed"}))
	require.Equal(t, 2.0, val("mpsi_session_duration_seconds", map[string]string{"outcome": "aborted"}))
	for _, round := range []string{"setup", "tokens", "join", "shares", "released"} {
		require.Zero(t, val("mpsi_sessions_live", map[string]string{"round": round}), "no session left live in %s", round)
	}
	for _, round := range []string{"setup", "tokens"} {
		require.Positive(t, val("mpsi_round_duration_seconds", map[string]string{"round": round}), round)
		require.Positive(t, val("mpsi_messages_received_total", map[string]string{"round": round}), round)
		require.Positive(t, val("mpsi_received_bytes_total", map[string]string{"round": round}), round)
		require.Positive(t, val("mpsi_messages_sent_total", map[string]string{"round": round}), round)
		require.Positive(t, val("mpsi_sent_bytes_total", map[string]string{"round": round}), round)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "go_build_info"} {
		_, ok := metricValue(t, reg, name, nil)
		require.True(t, ok, "%s is exported", name)
	}
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	require.Empty(t, problems, "promlint (promtool check metrics) problems")

	hs := httptest.NewServer(coordinator.MetricsHandler(reg, h.srv.Ready))
	defer hs.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(hs.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, body := get("/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `mpsi_sessions_finished_total{outcome="aborted",reason="policy"} 1`)
	code, _ = get("/healthz")
	require.Equal(t, http.StatusOK, code)
	code, body = get("/readyz")
	require.Equal(t, http.StatusOK, code, body)
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	require.NoError(t, h.srv.Shutdown(sctx))
	code, body = get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "shutting down")
	code, _ = get("/healthz")
	require.Equal(t, http.StatusOK, code, "alive while shutting down")
	code, _ = get("/nope")
	require.Equal(t, http.StatusNotFound, code)
}
