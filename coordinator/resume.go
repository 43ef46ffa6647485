package coordinator

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	mpsiv1 "github.com/mpsi-dev/mpsi/api/mpsi/v1"
	"github.com/mpsi-dev/mpsi/internal/resend"
	"github.com/mpsi-dev/mpsi/psi/protocol"
)

// errSuperseded ends the pump of a stream replaced by a resumed one.
var errSuperseded = errors.New("coordinator: stream superseded by a resumed one")

// conn is the coordinator's side of one party's link, across the streams
// that carry it (one at a time: a resume replaces a broken one). Frames to
// the party are numbered and queued without bound so that the session
// goroutine never blocks on a slow party (the ring would otherwise
// deadlock); the queue holds at most the lists in flight. With a reconnect
// grace the frames sent stay in the outbox until the party acknowledges
// them, so a resumed stream can resend them.
type conn struct {
	cert *x509.Certificate
	log  *slog.Logger
	mu   sync.Mutex // guards out, cur, closed, ackDue
	cond *sync.Cond
	out  *resend.Outbox
	cur  *slot // the stream carrying the link; nil while broken
	gen  uint64
	// closed: no more frames will be queued; pump returns when they drain.
	closed bool
	ackDue bool // the party is owed a pure acknowledgement
	warned bool // the outbox's bound was exceeded and logged
	// recvd is the last seq accepted from the party (the session
	// goroutine's inbox); acked the last one acknowledged to it (pump).
	recvd, acked atomic.Uint64
}

// slot is one stream of a conn; gone is closed when the stream no longer
// carries the link (broken, or replaced by a resumed one).
type slot struct {
	gen  uint64
	gone chan struct{}
}

func newConn(cert *x509.Certificate, retain bool, log *slog.Logger) *conn {
	c := &conn{cert: cert, log: log, out: &resend.Outbox{}}
	if retain {
		c.out = resend.NewOutbox(0)
	}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// send queues a protocol frame for the party.
func (c *conn) send(b []byte) {
	c.mu.Lock()
	if !c.closed {
		c.out.Push(b)
	}
	c.mu.Unlock()
	c.cond.Broadcast()
}

func (c *conn) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cond.Broadcast()
}

func (c *conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// attachStream makes a new stream the link's carrier; the previous one, if
// any, is superseded (its pump returns, its Run call ends).
func (c *conn) attachStream() *slot {
	c.mu.Lock()
	if c.cur != nil {
		close(c.cur.gone)
	}
	c.gen++
	s := &slot{gen: c.gen, gone: make(chan struct{})}
	c.cur = s
	c.mu.Unlock()
	c.cond.Broadcast()
	return s
}

// release detaches a stream that ended.
func (c *conn) release(s *slot) {
	c.mu.Lock()
	if c.cur == s {
		c.cur = nil
		close(s.gone)
	}
	c.mu.Unlock()
	c.cond.Broadcast()
}

// resumable reports whether a broken stream can be resumed: the outbox
// still holds every unacknowledged frame.
func (c *conn) resumable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Retaining() && !c.closed
}

// rewind prepares a resumed stream: the party received every frame through
// ack. It returns the number of frames to resend.
func (c *conn) rewind(ack uint64) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.out.Resume(ack); err != nil {
		return 0, err
	}
	return c.out.Pending(), nil
}

// peerAck records the party's acknowledgement.
func (c *conn) peerAck(ack uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Ack(ack)
}

// received records that the session accepted the party's frame seq, and
// asks the pump for a pure acknowledgement when one is owed.
func (c *conn) received(seq uint64) {
	c.recvd.Store(seq)
	if seq-c.acked.Load() >= resend.AckEvery {
		c.mu.Lock()
		c.ackDue = true
		c.mu.Unlock()
		c.cond.Broadcast()
	}
}

// pump sends the link's frames on stream s until s no longer carries it
// (errSuperseded), the link is closed and drained (nil), or a Send fails.
func (c *conn) pump(stream grpc.BidiStreamingServer[mpsiv1.Frame, mpsiv1.Frame], s *slot) error {
	for {
		c.mu.Lock()
		for c.cur == s && c.out.Pending() == 0 && !c.ackDue && !c.closed {
			c.cond.Wait()
		}
		if c.cur != s {
			c.mu.Unlock()
			return errSuperseded
		}
		f, ok := c.out.Next()
		due := c.ackDue
		c.ackDue = false
		if c.out.Overflowed() && !c.warned {
			c.warned = true
			c.log.Warn("resend buffer over its bound: a break of this party's stream will abort the session", "party", c.cert.Subject.CommonName)
		}
		c.mu.Unlock()
		ack := c.recvd.Load()
		var fr *mpsiv1.Frame
		switch {
		case ok:
			fr = &mpsiv1.Frame{Data: f.Data, Seq: f.Seq, Ack: ack}
		case due:
			fr = &mpsiv1.Frame{Ack: ack}
		default: // closed and drained
			return nil
		}
		c.acked.Store(ack)
		if err := stream.Send(fr); err != nil {
			return err
		}
	}
}

// linkState is the session goroutine's view of one party's link.
type linkState struct {
	gen    uint64       // the stream whose events count; older ones are dropped
	in     resend.Inbox // the party's frame numbers
	down   bool         // the stream broke; waiting for a resume
	downAt time.Time
	why    string // how it broke
}

// resumeReq asks the session goroutine to resume a party's link over a new
// stream.
type resumeReq struct {
	cert  *x509.Certificate
	ack   uint64 // the last seq the party received
	reply chan resumeReply
}

type resumeReply struct {
	c   *conn
	s   *slot
	ack uint64 // the last seq the coordinator received
	err error
}

// errNotResumable refuses a resume (FailedPrecondition).
var errNotResumable = errors.New("coordinator: cannot resume")

// broken reports whether a stream error is a break a party may resume
// from: not a clean end of its stream.
func broken(err error) bool { return err != nil && !errors.Is(err, io.EOF) }

// resume hands a resumed stream of party idx to the session goroutine and
// waits for its answer.
func (l *live) resume(idx int, cert *x509.Certificate, ack uint64) (*conn, *slot, uint64, error) {
	reply := make(chan resumeReply, 1)
	select {
	case l.events <- event{from: idx, resume: &resumeReq{cert: cert, ack: ack, reply: reply}}:
	case <-l.done:
		return nil, nil, 0, fmt.Errorf("%w: session %s", protocol.ErrSessionOver, l.spec.ID)
	}
	select {
	case r := <-reply:
		return r.c, r.s, r.ack, r.err
	case <-l.done:
		return nil, nil, 0, fmt.Errorf("%w: session %s", protocol.ErrSessionOver, l.spec.ID)
	}
}

// doResume is the session goroutine's side of a resume.
func (l *live) doResume(idx int, r *resumeReq) resumeReply {
	name := l.spec.Parties[idx]
	c := l.conn(idx)
	st := &l.links[idx]
	switch {
	case c == nil || st.gen == 0:
		return resumeReply{err: fmt.Errorf("%w: party %s has no stream to resume (join with a Hello)", errNotResumable, name)}
	case !bytes.Equal(c.cert.Raw, r.cert.Raw):
		return resumeReply{err: fmt.Errorf("%w: party %s resumed with a certificate other than the one it joined with", ErrForbidden, name)}
	case c.isClosed():
		return resumeReply{err: fmt.Errorf("%w: session %s is over for party %s", protocol.ErrSessionOver, l.spec.ID, name)}
	}
	pending, err := c.rewind(r.ack)
	if err != nil {
		l.srv.cfg.Metrics.StreamBreak(BreakRefused)
		l.log.Warn("resume refused", "party", name, "err", err)
		if errors.Is(err, resend.ErrAckAhead) {
			l.m.Refuse(idx, fmt.Errorf("%w: resume: %v", protocol.ErrBadMessage, err))
		} else {
			l.m.Gone(l.ctx, idx, fmt.Sprintf("lost its stream and could not resume it: %v", err))
		}
		return resumeReply{err: fmt.Errorf("%w: %v", errNotResumable, err)}
	}
	s := c.attachStream()
	st.gen = s.gen
	if st.down {
		l.log.Info("party reconnected", "party", name, "down", time.Since(st.downAt).Round(time.Millisecond), "resent", pending, "received", st.in.Last())
	} else {
		// The party saw the break before the coordinator did: its new
		// stream replaces the one still open here.
		l.log.Info("party reconnected over a stream still open here (closed now)", "party", name, "resent", pending, "received", st.in.Last())
	}
	st.down = false
	l.srv.cfg.Metrics.StreamBreak(BreakReconnected)
	return resumeReply{c: c, s: s, ack: st.in.Last()}
}

// streamGone handles the end of party idx's current stream: with a
// reconnect grace, a break waits for a resume; otherwise, or past the
// grace, the machine decides (it aborts, naming the party).
func (l *live) streamGone(idx int, err error) {
	grace := l.srv.cfg.ReconnectGrace
	c := l.conn(idx)
	st := &l.links[idx]
	if st.down {
		return // both halves of the stream reported the break
	}
	if grace <= 0 || !broken(err) || c == nil || !c.resumable() {
		l.m.Gone(l.ctx, idx, goneReason(err))
		return
	}
	st.down, st.downAt, st.why = true, time.Now(), goneReason(err)
	gen := st.gen
	l.log.Warn("party disconnected; waiting for it to reconnect", "party", l.spec.Parties[idx], "grace", grace, "err", st.why)
	time.AfterFunc(grace, func() {
		select {
		case l.events <- event{from: idx, gen: gen, expired: true}:
		case <-l.done:
		}
	})
}

// graceExpired aborts for a party that did not resume in time.
func (l *live) graceExpired(idx int, gen uint64) {
	st := &l.links[idx]
	if !st.down || st.gen != gen {
		return // resumed meanwhile
	}
	l.srv.cfg.Metrics.StreamBreak(BreakExpired)
	l.m.Gone(l.ctx, idx, fmt.Sprintf("%s and did not reconnect within %s", st.why, l.srv.cfg.ReconnectGrace))
}
