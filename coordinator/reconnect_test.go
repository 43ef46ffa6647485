package coordinator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/mpsi-dev/mpsi/coordinator"
	"github.com/mpsi-dev/mpsi/coordinator/store"
	"github.com/mpsi-dev/mpsi/internal/devcert"
	"github.com/mpsi-dev/mpsi/internal/tcpproxy"
	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/psi/protocol"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// lockedBuf is a log sink safe for concurrent writes.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// withoutSession is a Result JSON without its session id, to compare the
// Results of two sessions over the same data.
func withoutSession(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	delete(m, "session")
	return m
}

// cutRun runs a dh session in which hospital-b reaches the coordinator
// through a TCP proxy that is held and cut as b makes its first ring hop
// (and each of the next cuts-1 hop batches); refuse keeps the path down
// afterwards. It returns the outcomes (a, b, c) and b's log.
func cutRun(t *testing.T, h *harness, id string, cuts int, refuse bool) ([]outcome, *lockedBuf, *tcpproxy.Proxy) {
	t.Helper()
	c := getCohort(t, session.ModeDH)
	px, err := tcpproxy.Start(h.addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = px.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	h.create(t, specJSON(t, c, id, nil))
	var chs []<-chan outcome
	blog := &lockedBuf{}
	for _, n := range partyNames {
		if n != "hospital-b" {
			chs = append(chs, h.honest(ctx, t, c, id, n))
			continue
		}
		cfg := h.remoteConfig(t, c, id, n)
		cfg.Address = px.Addr()
		cfg.Logger = slog.New(slog.NewTextHandler(blog, nil))
		left := cuts
		cfg.Progress = func(phase string, done, total int) {
			if strings.HasPrefix(phase, "hop on ") && left > 0 {
				// Mid-ring: b holds a hop the ring needs. Hold the path
				// first so that nothing more gets through, then cut it.
				left--
				px.Hold()
				px.Refuse(refuse)
				px.Cut()
			}
		}
		ch := make(chan outcome, 1)
		go func() {
			res, err := party.RunRemote(ctx, cfg)
			ch <- outcome{n, res, err}
		}()
		chs = append(chs, ch)
	}
	return collectWithin(t, 30*time.Second, chs...), blog, px
}

// A party whose TCP connection is cut mid-ring (up to three times)
// reconnects within the grace each time, both sides resend what the other
// missed, and the session completes with the Result of the same session run
// without the cuts.
func TestReconnectMidRing(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	h := newHarnessTimeout(t, testRoundTimeout, func(cfg *coordinator.Config) {
		cfg.ReconnectGrace = 20 * time.Second
		cfg.Metrics = coordinator.NewMetrics(reg)
	})
	c := getCohort(t, session.ModeDH)
	want := h.runHappy(t, c, newSessionID("uncut"))

	id := newSessionID("cut")
	outs, blog, px := cutRun(t, h, id, 3, false)
	require.GreaterOrEqual(t, px.Cuts(), 1, "hospital-b's connection was cut")
	r := h.result(t, id)
	require.Equal(t, store.StateCompleted, r.GetState(), "reason: %s\nhospital-b: %s", r.GetReason(), blog.String())
	for _, o := range outs {
		require.NoError(t, o.err, o.name)
		b, err := json.Marshal(o.res)
		require.NoError(t, err)
		require.JSONEq(t, string(r.GetResultJson()), string(b), "party %s's result is the released one", o.name)
	}
	require.Equal(t, withoutSession(t, want), withoutSession(t, r.GetResultJson()), "the cut changes nothing in the Result")
	require.Contains(t, blog.String(), "msg=reconnected")
	v, ok := metricValue(t, reg, "mpsi_party_stream_breaks_total", map[string]string{"outcome": coordinator.BreakReconnected})
	require.True(t, ok)
	require.GreaterOrEqual(t, v, 1.0)
	require.LessOrEqual(t, v, float64(px.Cuts()), "no more reconnects than cuts")
	t.Logf("%d cuts, %v reconnects", px.Cuts(), v)
}

// A party that does not come back within the grace aborts the session as a
// disconnect does without one, naming it.
func TestReconnectGraceExpires(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	h := newHarnessTimeout(t, testRoundTimeout, func(cfg *coordinator.Config) {
		cfg.ReconnectGrace = time.Second
		cfg.Metrics = coordinator.NewMetrics(reg)
	})
	id := newSessionID("gone")
	outs, blog, _ := cutRun(t, h, id, 1, true)
	reason := h.requireAborted(t, id, "party hospital-b disconnected", "did not reconnect within 1s")
	for _, o := range outs {
		if o.name == "hospital-b" {
			require.ErrorIs(t, o.err, party.ErrUnavailable)
			require.ErrorContains(t, o.err, "reconnecting failed within 1s")
			continue
		}
		require.ErrorIs(t, o.err, party.ErrAborted, o.name)
		require.ErrorContains(t, o.err, reason, o.name)
		var ae *protocol.AbortError
		require.ErrorAs(t, o.err, &ae)
		require.Equal(t, protocol.CodeDisconnected, ae.Code)
	}
	require.Contains(t, blog.String(), "reconnecting")
	v, _ := metricValue(t, reg, "mpsi_party_stream_breaks_total", map[string]string{"outcome": coordinator.BreakExpired})
	require.Equal(t, 1.0, v)
}

// Resumes that cannot be honoured are refused with a code that says why; a
// resume replaces a stream the coordinator still holds and resends what the
// party lacks; a resent duplicate is dropped and a gap aborts the session
// naming the check.
func TestResume(t *testing.T) {
	t.Parallel()
	h := newHarnessTimeout(t, testRoundTimeout, func(cfg *coordinator.Config) { cfg.ReconnectGrace = 10 * time.Second })
	c := getCohort(t, session.ModeDH)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resume := func(name, id string, ack uint64) error {
		stream, err := h.client(t, name).Run(ctx)
		require.NoError(t, err)
		f := frame(t, hello(id))
		f.Seq, f.Resume, f.Ack = 0, true, ack
		require.NoError(t, stream.Send(f))
		return recvStatus(stream)
	}

	// joinAll joins every party to session id; readyAll has them all
	// declare their sizes and read the roster (the session went on).
	joinAll := func(id string) []*adversary {
		var advs []*adversary
		for _, n := range partyNames {
			advs = append(advs, h.join(ctx, t, c, n, id))
		}
		return advs
	}
	readyAll := func(advs []*adversary) {
		for _, a := range advs {
			a.send(a.readyMsg(h, uint64(a.p.SetSize())))
		}
		for _, a := range advs {
			a.readRoster()
		}
	}

	t.Run("unknown session", func(t *testing.T) {
		requireStatus(t, resume("hospital-a", "no-such-session", 1), codes.NotFound, "unknown session")
	})
	t.Run("finished session", func(t *testing.T) {
		id := newSessionID("finished")
		h.runHappy(t, c, id)
		requireStatus(t, resume("hospital-a", id, 1), codes.FailedPrecondition, "completed")
	})
	t.Run("never joined", func(t *testing.T) {
		id := h.create(t, specJSON(t, c, newSessionID("never"), nil))
		a := h.join(ctx, t, c, "hospital-a", id)
		requireStatus(t, resume("hospital-b", id, 1), codes.FailedPrecondition, "party hospital-b has no stream to resume")
		a.cancel()
	})
	t.Run("ack of frames never sent", func(t *testing.T) {
		id := h.create(t, specJSON(t, c, newSessionID("ahead"), nil))
		a := h.join(ctx, t, c, "hospital-a", id)
		requireStatus(t, resume("hospital-a", id, 1000), codes.FailedPrecondition, "acknowledgement of frames never sent")
		require.Contains(t, a.expectAbort(), "hospital-a")
		h.requireAborted(t, id, "party hospital-a", "acknowledgement of frames never sent")
	})
	t.Run("gap", func(t *testing.T) {
		id := h.create(t, specJSON(t, c, newSessionID("gap"), nil))
		a := h.join(ctx, t, c, "hospital-a", id)
		a.seq.Add(1) // frame 2 is never sent
		a.send(a.readyMsg(h, uint64(a.p.SetSize())))
		require.Contains(t, a.expectAbort(), "frame sequence gap: frame 3 after frame 1")
		h.requireAborted(t, id, "party hospital-a", "frame sequence gap")
	})
	t.Run("resume replaces a stream still open", func(t *testing.T) {
		id := h.create(t, specJSON(t, c, newSessionID("takeover"), nil))
		advs := joinAll(id)
		a := advs[0]
		// hospital-a resumes as if its stream had broken before the
		// Welcome arrived (ack 0), while the coordinator still holds it.
		stream, err := h.client(t, "hospital-a").Run(ctx)
		require.NoError(t, err)
		f := frame(t, hello(id))
		f.Seq, f.Resume, f.Ack = 0, true, 0
		require.NoError(t, stream.Send(f))
		got, err := stream.Recv()
		require.NoError(t, err)
		require.True(t, got.GetResume())
		require.Equal(t, uint64(1), got.GetAck(), "the coordinator has hospital-a's Hello")
		requireStatus(t, recvStatus(a.stream), codes.Aborted, "replaced by a resumed one")
		a.stream = stream
		m := a.recv()
		require.Equal(t, protocol.TypeWelcome, m.Type(), "the Welcome is resent")
		readyAll(advs)
	})
	t.Run("another certificate of the same name", func(t *testing.T) {
		// A second certificate for hospital-a from the session's own CA
		// (a stolen issuance, a re-keyed machine) cannot take over the
		// stream hospital-a joined with: the resume is refused and the
		// session goes on over the original stream.
		id := h.create(t, specJSON(t, c, newSessionID("other-cert"), nil))
		advs := joinAll(id)
		leaf, err := h.pki.ca.Issue("hospital-a")
		require.NoError(t, err)
		cfg, err := devcert.ClientConfig(h.pki.ca, leaf)
		require.NoError(t, err)
		stream, err := h.clientTLS(t, cfg).Run(ctx)
		require.NoError(t, err)
		f := frame(t, hello(id))
		f.Seq, f.Resume, f.Ack = 0, true, 1
		require.NoError(t, stream.Send(f))
		requireStatus(t, recvStatus(stream), codes.PermissionDenied, "resumed with a certificate other than the one it joined with")
		readyAll(advs)
	})
	t.Run("duplicate dropped", func(t *testing.T) {
		id := h.create(t, specJSON(t, c, newSessionID("dup"), nil))
		advs := joinAll(id)
		// hospital-a's Hello again, as frame 1: a resent duplicate, not a
		// second Hello (which would abort the session).
		require.NoError(t, advs[0].stream.Send(frame(t, hello(id))))
		readyAll(advs)
	})
}
