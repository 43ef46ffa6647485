package coordinator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mpsi-dev/mpsi/psi/protocol"
)

// Session outcomes, the outcome label of mpsi_sessions_finished_total.
const (
	OutcomeCompleted = "completed"
	OutcomeAborted   = "aborted"
)

// Outcomes of a broken party stream, the outcome label of
// mpsi_party_stream_breaks_total.
const (
	BreakReconnected = "reconnected"
	BreakExpired     = "expired"
	BreakRefused     = "refused"
)

// ReasonNone is the reason label of a completed session; an aborted one
// carries its abort code's name ([protocol.Code.String]: timeout,
// disconnected, party_aborted, bad_message, wrong_round, shutdown, internal,
// roster, policy, input, too_few_parties, crypto, unspecified).
const ReasonNone = "none"

// Metrics are the coordinator's Prometheus metrics, registered on a
// registry the caller owns (no global registration). A nil *Metrics is
// valid and records nothing. The methods are the whole interface between
// the protocol and the metrics: the transport calls them as sessions,
// rounds and messages come and go.
type Metrics struct {
	created    prometheus.Counter
	finished   *prometheus.CounterVec
	live       *prometheus.GaugeVec
	sessionDur *prometheus.HistogramVec
	rounds     *prometheus.HistogramVec
	msgIn      *prometheus.CounterVec
	bytesIn    *prometheus.CounterVec
	msgOut     *prometheus.CounterVec
	bytesOut   *prometheus.CounterVec
	breaks     *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	durations := prometheus.ExponentialBuckets(0.01, 4, 10) // 10 ms .. ~44 min
	m := &Metrics{
		created: prometheus.NewCounter(prometheus.CounterOpts{Name: "mpsi_sessions_created_total",
			Help: "Sessions registered by an admin."}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mpsi_sessions_finished_total",
			Help: "Sessions finished, by outcome (completed, aborted) and abort reason code (none when completed)."}, []string{"outcome", "reason"}),
		live: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "mpsi_sessions_live",
			Help: "Sessions in progress, by the protocol round they are in."}, []string{"round"}),
		sessionDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mpsi_session_duration_seconds",
			Help: "Time from a session's registration to its release or abort.", Buckets: durations}, []string{"outcome"}),
		rounds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mpsi_round_duration_seconds",
			Help: "Duration of protocol rounds.", Buckets: durations}, []string{"round"}),
		msgIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mpsi_messages_received_total",
			Help: "Protocol messages received from parties, by round."}, []string{"round"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mpsi_received_bytes_total",
			Help: "Protocol message bytes received from parties, by round."}, []string{"round"}),
		msgOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mpsi_messages_sent_total",
			Help: "Protocol messages queued to parties, by round."}, []string{"round"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mpsi_sent_bytes_total",
			Help: "Protocol message bytes queued to parties, by round."}, []string{"round"}),
		breaks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mpsi_party_stream_breaks_total",
			Help: "Party streams that broke while their session went on, by outcome: reconnected (the party resumed within --reconnect-grace), expired (it did not; the session was aborted), refused (its resume could not be honoured)."}, []string{"outcome"}),
	}
	reg.MustRegister(m.created, m.finished, m.live, m.sessionDur, m.rounds, m.msgIn, m.bytesIn, m.msgOut, m.bytesOut, m.breaks)
	for _, o := range []string{OutcomeCompleted, OutcomeAborted} {
		m.sessionDur.WithLabelValues(o) // export both series from the start
	}
	m.finished.WithLabelValues(OutcomeCompleted, ReasonNone)
	for _, o := range []string{BreakReconnected, BreakExpired, BreakRefused} {
		m.breaks.WithLabelValues(o)
	}
	return m
}

// RegisterRuntime registers the standard Go runtime, process and build
// information collectors on reg (go_*, process_*, go_build_info).
func RegisterRuntime(reg prometheus.Registerer) {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewBuildInfoCollector())
}

// SessionCreated counts a session registered by an admin.
func (m *Metrics) SessionCreated() {
	if m != nil {
		m.created.Inc()
	}
}

// RoundEntered moves a live session from round from ("" for a new
// session) to round to.
func (m *Metrics) RoundEntered(from, to string) {
	if m == nil {
		return
	}
	if from != "" {
		m.live.WithLabelValues(from).Dec()
	}
	m.live.WithLabelValues(to).Inc()
}

// RoundFinished observes the duration of a round.
func (m *Metrics) RoundFinished(round string, d time.Duration) {
	if m != nil {
		m.rounds.WithLabelValues(round).Observe(d.Seconds())
	}
}

// SessionFinished records a session that ended in round with outcome
// (OutcomeCompleted or OutcomeAborted) and reason (ReasonNone, or the abort
// code's name) after d since it started.
func (m *Metrics) SessionFinished(round, outcome, reason string, d time.Duration) {
	if m == nil {
		return
	}
	m.live.WithLabelValues(round).Dec()
	m.finished.WithLabelValues(outcome, reason).Inc()
	m.sessionDur.WithLabelValues(outcome).Observe(d.Seconds())
}

// SessionsInterrupted counts sessions found interrupted at start-up and
// aborted, with reason shutdown (their duration is unknown).
func (m *Metrics) SessionsInterrupted(n int) {
	if m != nil && n > 0 {
		m.finished.WithLabelValues(OutcomeAborted, protocol.CodeShutdown.String()).Add(float64(n))
	}
}

// MessageIn counts a message of size bytes received in round.
func (m *Metrics) MessageIn(round string, size int) {
	if m != nil {
		m.msgIn.WithLabelValues(round).Inc()
		m.bytesIn.WithLabelValues(round).Add(float64(size))
	}
}

// MessageOut counts a message of size bytes queued to a party in round.
func (m *Metrics) MessageOut(round string, size int) {
	if m != nil {
		m.msgOut.WithLabelValues(round).Inc()
		m.bytesOut.WithLabelValues(round).Add(float64(size))
	}
}

// StreamBreak counts a party stream that broke mid-session by what came
// of it (BreakReconnected, BreakExpired or BreakRefused).
func (m *Metrics) StreamBreak(outcome string) {
	if m == nil {
		return
	}
	m.breaks.WithLabelValues(outcome).Inc()
}

// MetricsHandler serves /metrics from g, /healthz (200 while the process
// serves HTTP) and /readyz (200 when ready returns nil, 503 with its error
// otherwise) on one address.
func MetricsHandler(g prometheus.Gatherer, ready func(context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

// finish records the session's end in the metrics, once.
func (l *live) finish(outcome, reason string) {
	if l.finished {
		return
	}
	l.finished = true
	l.srv.cfg.Metrics.SessionFinished(l.round.String(), outcome, reason, time.Since(l.started))
}

// Ready reports whether the coordinator can take sessions: it is not
// shutting down and its store answers.
func (s *Server) Ready(ctx context.Context) error {
	s.mu.Lock()
	closing, unrecorded := s.closing, len(s.unrecorded)
	s.mu.Unlock()
	if closing {
		return errors.New("shutting down")
	}
	if unrecorded > 0 {
		return fmt.Errorf("store: %d session aborts not recorded yet (retrying)", unrecorded)
	}
	if _, _, err := s.cfg.Store.Head(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}
