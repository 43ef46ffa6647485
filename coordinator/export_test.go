package coordinator

import (
	"context"
	"crypto/x509"
	"time"

	mpsiv1 "github.com/mpsi-dev/mpsi/api/mpsi/v1"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// TestSession drives one session's state machine synchronously, without
// the network and without its goroutine: every party is attached up front
// and messages go straight to handle. For white-box and fuzz tests. The
// session must already exist in the store.
type TestSession struct{ l *live }

// NewTestLive builds a live session exactly as start does, but does not
// start its goroutine nor register it with the server.
// NewTestSession returns a session whose parties are all attached with the
// given certificates (one per party), in the join round.
func (s *Server) NewTestSession(spec *session.Spec, certs []*x509.Certificate) (*TestSession, error) {
	l, err := s.newLive(spec)
	if err != nil {
		return nil, err
	}
	for i := range l.conns {
		l.conns[i] = newConn(certs[i])
	}
	return &TestSession{l: l}, nil
}

// Attach delivers the "party attached" event for party i (sends Welcome).
func (t *TestSession) Attach(ctx context.Context, i int) error {
	_, err := t.l.handle(ctx, event{from: i})
	return err
}

// Handle feeds one message from party i to the session's handle function.
func (t *TestSession) Handle(ctx context.Context, i int, m *mpsiv1.PartyMessage) (finished bool, err error) {
	return t.l.handle(ctx, event{from: i, msg: m})
}

// Drain returns and removes the messages queued for party i.
func (t *TestSession) Drain(i int) []*mpsiv1.CoordinatorMessage {
	c := t.l.conns[i]
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.q
	c.q = nil
	return q
}

// Round is the session's current round name.
func (t *TestSession) Round() string { return t.l.round }

// WaitingFor is what the deadline reason would name now.
func (t *TestSession) WaitingFor() string { return t.l.waitingFor() }

// AttachDuringFullQueue reproduces a party attaching while another party
// floods the session's event queue: it fills the queue with events from
// party from (each carrying m) and keeps a sender blocked on it, as Run's
// reader goroutine is; starts attach(idx) in a goroutine (which blocks on
// the full queue), waits until attach holds the session lock, then runs the
// session goroutine. It returns a channel closed when run returns.
func (s *Server) AttachDuringFullQueue(spec *session.Spec, from int, m *mpsiv1.PartyMessage, idx int, cert *x509.Certificate) (<-chan struct{}, error) {
	l, err := s.newLive(spec)
	if err != nil {
		return nil, err
	}
	for len(l.events) < cap(l.events) {
		l.events <- event{from: from, msg: m}
	}
	// Like Run's reader goroutine for a party that keeps sending: blocked on
	// the full queue before attach (blocked senders are served in order).
	go func() {
		for {
			select {
			case l.events <- event{from: from, msg: m}:
			case <-l.done:
				return
			}
		}
	}()
	time.Sleep(20 * time.Millisecond)
	go func() { _, _ = l.attach(idx, cert) }()
	// Wait until attach is blocked on the full queue: either holding l.mu
	// (TryLock fails), or having registered its conn and let go of l.mu.
	for l.mu.TryLock() {
		attached := l.conns[idx] != nil
		l.mu.Unlock()
		if attached {
			break
		}
		time.Sleep(time.Millisecond)
	}
	done := make(chan struct{})
	go func() { l.run(); close(done) }()
	return done, nil
}
