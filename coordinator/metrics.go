package coordinator

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the coordinator's Prometheus metrics, registered on a
// registry the caller owns (no global registration). A nil *Metrics is
// valid and records nothing.
type Metrics struct {
	sessions *prometheus.CounterVec
	rounds   *prometheus.HistogramVec
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
}

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mpsi_sessions_total", Help: "Sessions by outcome (created, completed, aborted)."}, []string{"state"}),
		rounds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mpsi_round_duration_seconds", Help: "Duration of protocol rounds.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10)}, []string{"round"}),
		bytesIn:  prometheus.NewCounter(prometheus.CounterOpts{Name: "mpsi_received_bytes_total", Help: "Protocol message bytes received from parties."}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{Name: "mpsi_sent_bytes_total", Help: "Protocol message bytes sent to parties."}),
	}
	reg.MustRegister(m.sessions, m.rounds, m.bytesIn, m.bytesOut)
	return m
}

func (m *Metrics) sessionCreated() {
	if m != nil {
		m.sessions.WithLabelValues("created").Inc()
	}
}

func (m *Metrics) sessionEnded(state string) {
	if m != nil {
		m.sessions.WithLabelValues(state).Inc()
	}
}

func (m *Metrics) roundDone(round string, d time.Duration) {
	if m != nil {
		m.rounds.WithLabelValues(round).Observe(d.Seconds())
	}
}

func (m *Metrics) received(n int) {
	if m != nil {
		m.bytesIn.Add(float64(n))
	}
}

func (m *Metrics) sent(n int) {
	if m != nil {
		m.bytesOut.Add(float64(n))
	}
}
