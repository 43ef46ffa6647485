package coordinator

import (
	"crypto/x509"
	"time"

	"github.com/mpsi-dev/mpsi/psi/protocol"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// AttachDuringFullQueue reproduces a party attaching while another party
// floods the session's event queue. Party from is attached first (with
// fromCert), then the queue is filled with messages m from it and a sender
// is kept blocked on it, as Run's reader goroutine is; attach(idx) starts
// in a goroutine (and blocks on the full queue); once it has registered its
// connection, the session goroutine runs. It returns a channel closed when
// run returns. The session must already exist in the store.
func (s *Server) AttachDuringFullQueue(spec *session.Spec, from int, fromCert *x509.Certificate, m protocol.Message, idx int, cert *x509.Certificate) (<-chan struct{}, error) {
	l, err := s.newLive(spec)
	if err != nil {
		return nil, err
	}
	c := newConn(fromCert, false, s.log)
	sl := c.attachStream()
	l.conns[from] = c
	l.events <- event{from: from, gen: sl.gen, attach: fromCert}
	seq := uint64(1) // the Hello
	for len(l.events) < cap(l.events) {
		seq++
		l.events <- event{from: from, gen: sl.gen, seq: seq, msg: m}
	}
	// Like Run's reader goroutine for a party that keeps sending: blocked on
	// the full queue before attach (blocked senders are served in order).
	go func() {
		for {
			select {
			case l.events <- event{from: from, gen: sl.gen, seq: seq + 1, msg: m}:
				seq++
			case <-l.done:
				return
			}
		}
	}()
	time.Sleep(20 * time.Millisecond)
	go func() { _, _, _ = l.attach(idx, cert) }()
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
