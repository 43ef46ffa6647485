// Package resend holds the bookkeeping that lets a stream of protocol frames
// survive a broken connection: each side numbers the frames it sends
// ([Outbox]), keeps the ones the other side has not acknowledged, and
// checks the numbers of the frames it receives ([Inbox]): a resent
// duplicate is dropped, a gap is refused. It does no I/O; the coordinator
// (package coordinator) and the party driver (package party) carry the
// numbers in the seq, ack and resume fields of mpsi.v1.Frame (see
// doc/PROTOCOL.md, "Reconnect").
package resend

import (
	"errors"
	"fmt"
)

// AckEvery is how many frames a receiver takes in before it owes the
// sender an acknowledgement: when it has sent nothing meanwhile (every
// frame it sends carries one), it sends a pure acknowledgement, so the
// sender's buffer stays bounded even on a one-way stretch of the protocol.
const AckEvery = 16

// GraceHeader is the gRPC response header of Run in which the coordinator
// tells a party its reconnect grace (a Go duration, e.g. "30s"; absent
// when reconnecting is off): how long a session waits for a party whose
// stream broke to resume it.
const GraceHeader = "mpsi-reconnect-grace"

// DefaultMaxUnacked is the default bound of an [Outbox]'s retained bytes.
const DefaultMaxUnacked = 256 << 20

// Errors of the checks; callers branch on them with errors.Is.
var (
	// ErrGap reports a frame numbered past the next expected one: frames
	// were lost in between.
	ErrGap = errors.New("resend: frame sequence gap")
	// ErrUnnumbered reports a protocol frame without a sequence number.
	ErrUnnumbered = errors.New("resend: frame without a sequence number")
	// ErrAckAhead reports an acknowledgement of frames never sent.
	ErrAckAhead = errors.New("resend: acknowledgement of frames never sent")
	// ErrNotResumable reports a resume that needs frames the outbox no
	// longer holds (it does not retain, its bound was exceeded, or the
	// resume point is before an earlier acknowledgement).
	ErrNotResumable = errors.New("resend: cannot resume")
)

// Frame is one numbered frame of an [Outbox].
type Frame struct {
	Seq  uint64
	Data []byte
}

// Outbox numbers outgoing frames from 1 and holds them until sent and, if
// it retains, until acknowledged. The zero value does not retain (frames
// are forgotten once sent, as without resumption); use [NewOutbox] for one
// that does. An Outbox is not safe for concurrent use.
type Outbox struct {
	retain   bool
	overflow bool // the bound was exceeded: no longer retains
	max      int  // bound of the retained (sent, unacknowledged) bytes
	held     int  // bytes of the sent, unacknowledged frames held
	frames   []Frame
	acked    uint64 // highest seq acknowledged
	cursor   uint64 // highest seq handed out by Next on the current stream
	maxSent  uint64 // highest seq ever handed out by Next
	last     uint64 // highest seq numbered
}

// NewOutbox returns an Outbox that retains the sent frames until they are
// acknowledged, as long as they hold at most maxBytes (0 means
// DefaultMaxUnacked); past that bound it stops retaining and a later
// [Outbox.Resume] fails with ErrNotResumable.
func NewOutbox(maxBytes int) *Outbox {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxUnacked
	}
	return &Outbox{retain: true, max: maxBytes}
}

// Push numbers data as the next frame and queues it; it returns its seq.
func (o *Outbox) Push(data []byte) uint64 {
	o.last++
	o.frames = append(o.frames, Frame{Seq: o.last, Data: data})
	return o.last
}

// Next returns the next frame to send on the current stream, if any.
func (o *Outbox) Next() (Frame, bool) {
	if o.cursor >= o.last {
		return Frame{}, false
	}
	i := o.index(o.cursor + 1)
	f := o.frames[i]
	o.cursor = f.Seq
	first := f.Seq > o.maxSent // not a resend
	o.maxSent = max(o.maxSent, f.Seq)
	if o.retain && first {
		o.held += len(f.Data)
		if o.held > o.max {
			// Past the bound: forget what was sent. A break now cannot
			// be resumed; the frames still to send stay queued.
			o.retain, o.overflow = false, true
		}
	}
	if !o.retain {
		o.dropThrough(o.cursor)
	}
	return f, true
}

// Pending returns how many frames Next will still return.
func (o *Outbox) Pending() int { return int(o.last - o.cursor) }

// Retaining reports whether the outbox keeps sent frames for a resume: it
// was made by NewOutbox and its bound has not been exceeded.
func (o *Outbox) Retaining() bool { return o.retain }

// Overflowed reports whether the bound was exceeded.
func (o *Outbox) Overflowed() bool { return o.overflow }

// Acked returns the highest seq acknowledged.
func (o *Outbox) Acked() uint64 { return o.acked }

// Ack records that the other side received every frame through seq and
// forgets them. An acknowledgement at or below an earlier one changes
// nothing (it may come late, over a stream being replaced); one past the
// frames sent is an error.
func (o *Outbox) Ack(seq uint64) error {
	if seq > o.maxSent {
		return fmt.Errorf("%w: ack %d, but only %d sent", ErrAckAhead, seq, o.maxSent)
	}
	if seq <= o.acked {
		return nil
	}
	if o.retain {
		o.dropThrough(seq)
	}
	o.acked = seq
	o.cursor = max(o.cursor, seq)
	return nil
}

// Resume prepares a new stream: the other side has received every frame
// through seq (its last received), so Next starts again after it. It
// fails with ErrAckAhead for a seq past the frames sent and with
// ErrNotResumable when frames after seq are no longer held.
func (o *Outbox) Resume(seq uint64) error {
	if seq < o.acked {
		return fmt.Errorf("%w: resume after frame %d, but %d was already acknowledged", ErrNotResumable, seq, o.acked)
	}
	if err := o.Ack(seq); err != nil {
		return err
	}
	if seq < o.maxSent && !o.retain {
		return fmt.Errorf("%w: frames %d to %d were sent and not kept (resend buffer off or over its bound)", ErrNotResumable, seq+1, o.maxSent)
	}
	o.cursor = seq
	return nil
}

// index returns the position of seq in frames; seq must be held.
func (o *Outbox) index(seq uint64) int { return int(seq - o.frames[0].Seq) }

// dropThrough forgets the frames numbered up to seq.
func (o *Outbox) dropThrough(seq uint64) {
	k := 0
	for k < len(o.frames) && o.frames[k].Seq <= seq {
		if o.frames[k].Seq <= o.maxSent && o.retain {
			o.held -= len(o.frames[k].Data)
		}
		o.frames[k] = Frame{}
		k++
	}
	o.frames = o.frames[k:]
	if len(o.frames) == 0 {
		o.frames = nil // let the backing array go
	}
}

// Inbox checks the numbers of incoming frames. The zero value expects
// frame 1 first. An Inbox is not safe for concurrent use.
type Inbox struct {
	last uint64
}

// Accept checks the number of an incoming protocol frame: fresh is true
// for the next expected frame (deliver it), false for one already
// received (a resent duplicate: drop it). A frame past the next one (a
// gap) or without a number is an error.
func (in *Inbox) Accept(seq uint64) (fresh bool, err error) {
	switch {
	case seq == 0:
		return false, ErrUnnumbered
	case seq <= in.last:
		return false, nil
	case seq > in.last+1:
		return false, fmt.Errorf("%w: frame %d after frame %d (frames lost in between)", ErrGap, seq, in.last)
	}
	in.last = seq
	return true, nil
}

// Last returns the highest seq received in order: what to acknowledge.
func (in *Inbox) Last() uint64 { return in.last }
