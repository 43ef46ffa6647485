package resend

import (
	"errors"
	"fmt"
	"testing"
)

func TestInboxAccept(t *testing.T) {
	tests := []struct {
		name  string
		seqs  []uint64
		fresh []bool
		err   error // of the last
		last  uint64
	}{
		{"in order", []uint64{1, 2, 3}, []bool{true, true, true}, nil, 3},
		{"duplicate dropped", []uint64{1, 2, 2, 1, 3}, []bool{true, true, false, false, true}, nil, 3},
		{"gap refused", []uint64{1, 3}, []bool{true, false}, ErrGap, 1},
		{"gap at start", []uint64{2}, []bool{false}, ErrGap, 0},
		{"unnumbered", []uint64{1, 0}, []bool{true, false}, ErrUnnumbered, 1},
		{"resend after resume", []uint64{1, 2, 3, 2, 3, 4}, []bool{true, true, true, false, false, true}, nil, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in Inbox
			var err error
			for i, s := range tc.seqs {
				var fresh bool
				fresh, err = in.Accept(s)
				if fresh != tc.fresh[i] {
					t.Fatalf("Accept(%d) #%d fresh = %v, want %v", s, i, fresh, tc.fresh[i])
				}
				if err != nil && i != len(tc.seqs)-1 {
					t.Fatalf("Accept(%d) #%d: %v", s, i, err)
				}
			}
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("last error %v, want %v", err, tc.err)
			}
			if in.Last() != tc.last {
				t.Fatalf("Last = %d, want %d", in.Last(), tc.last)
			}
		})
	}
}

// drain returns the seqs Next hands out.
func drain(o *Outbox) []uint64 {
	var out []uint64
	for f, ok := o.Next(); ok; f, ok = o.Next() {
		if string(f.Data) != fmt.Sprint(f.Seq) {
			panic("frame data does not match its seq")
		}
		out = append(out, f.Seq)
	}
	return out
}

func push(o *Outbox, n int) {
	for range n {
		o.Push([]byte(fmt.Sprint(o.last + 1)))
	}
}

func TestOutbox(t *testing.T) {
	type step struct {
		push   int
		send   bool   // drain Next
		ack    uint64 // Ack (when >0)
		resume int64  // Resume(resume) when >= 0
		sent   []uint64
		err    error
	}
	const none = -1
	tests := []struct {
		name   string
		retain bool
		max    int
		steps  []step
	}{
		{"sends in order", true, 0, []step{
			{push: 3, send: true, resume: none, sent: []uint64{1, 2, 3}},
			{push: 2, send: true, resume: none, sent: []uint64{4, 5}},
		}},
		{"resume resends after the peer's last", true, 0, []step{
			{push: 5, send: true, resume: none, sent: []uint64{1, 2, 3, 4, 5}},
			{ack: 2, resume: none},
			{resume: 3, send: true, sent: []uint64{4, 5}},
		}},
		{"resume with nothing received resends all", true, 0, []step{
			{push: 2, send: true, resume: none, sent: []uint64{1, 2}},
			{resume: 0, send: true, sent: []uint64{1, 2}},
		}},
		{"resume also sends the unsent", true, 0, []step{
			{push: 2, send: true, resume: none, sent: []uint64{1, 2}},
			{push: 2, resume: 1, send: true, sent: []uint64{2, 3, 4}},
		}},
		{"ack of unsent frames refused", true, 0, []step{
			{push: 3, resume: none},
			{ack: 1, resume: none, err: ErrAckAhead},
		}},
		{"resume ahead refused", true, 0, []step{
			{push: 3, send: true, resume: none, sent: []uint64{1, 2, 3}},
			{resume: 4, err: ErrAckAhead},
		}},
		{"resume before an ack refused", true, 0, []step{
			{push: 3, send: true, resume: none, sent: []uint64{1, 2, 3}},
			{ack: 3, resume: none},
			{resume: 1, err: ErrNotResumable},
		}},
		{"stale ack ignored", true, 0, []step{
			{push: 3, send: true, resume: none, sent: []uint64{1, 2, 3}},
			{ack: 3, resume: none},
			{ack: 1, resume: none},
			{resume: 3, send: true},
		}},
		{"no retention: cannot resume what was sent", false, 0, []step{
			{push: 3, send: true, resume: none, sent: []uint64{1, 2, 3}},
			{resume: 1, err: ErrNotResumable},
		}},
		{"no retention: resume at the end is fine", false, 0, []step{
			{push: 3, send: true, resume: none, sent: []uint64{1, 2, 3}},
			{push: 1, resume: 3, send: true, sent: []uint64{4}},
		}},
		{"bound exceeded: stops retaining", true, 2, []step{
			{push: 3, send: true, resume: none, sent: []uint64{1, 2, 3}},
			{resume: 2, err: ErrNotResumable},
		}},
		{"bound kept by acks", true, 2, []step{
			{push: 2, send: true, resume: none, sent: []uint64{1, 2}},
			{ack: 2, resume: none},
			{push: 2, send: true, resume: none, sent: []uint64{3, 4}},
			{resume: 3, send: true, sent: []uint64{4}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := &Outbox{}
			if tc.retain {
				o = NewOutbox(tc.max)
			}
			for i, s := range tc.steps {
				push(o, s.push)
				var err error
				if s.ack > 0 {
					err = o.Ack(s.ack)
				}
				if s.resume >= 0 && err == nil {
					err = o.Resume(uint64(s.resume))
				}
				if !errors.Is(err, s.err) || (err == nil) != (s.err == nil) {
					t.Fatalf("step %d: error %v, want %v", i, err, s.err)
				}
				if s.send {
					got := drain(o)
					if fmt.Sprint(got) != fmt.Sprint(s.sent) {
						t.Fatalf("step %d: sent %v, want %v", i, got, s.sent)
					}
				}
			}
		})
	}
}

// FuzzLink runs a sender's Outbox and a receiver's Inbox over a lossy
// stream that breaks and resumes, driven by the fuzzer's bytes, and checks
// that the receiver delivers every frame exactly once, in order.
func FuzzLink(f *testing.F) {
	f.Add([]byte{0, 0, 1, 2, 0, 3, 1, 4, 0, 2})
	f.Add([]byte{0, 1, 0, 1, 0, 1, 3, 3, 2, 1, 0, 4, 4, 2})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, ops []byte) {
		o := NewOutbox(64)
		var in Inbox
		var delivered []uint64
		var wire []Frame // sent, not yet received on this stream
		pushed := 0
		for _, op := range ops {
			switch op % 5 {
			case 0: // the sender has a message
				pushed++
				o.Push([]byte{byte(pushed)})
			case 1: // the sender sends one frame
				if f, ok := o.Next(); ok {
					wire = append(wire, f)
				}
			case 2: // the receiver takes one frame
				if len(wire) == 0 {
					continue
				}
				fr := wire[0]
				wire = wire[1:]
				fresh, err := in.Accept(fr.Seq)
				if err != nil {
					t.Fatalf("receiver refused frame %d: %v", fr.Seq, err)
				}
				if fresh {
					delivered = append(delivered, fr.Seq)
				}
			case 3: // the receiver acknowledges
				if err := o.Ack(in.Last()); err != nil {
					t.Fatalf("ack %d: %v", in.Last(), err)
				}
			case 4: // the stream breaks: frames on the wire are lost; resume
				wire = nil
				if err := o.Resume(in.Last()); err != nil {
					if errors.Is(err, ErrNotResumable) && o.Overflowed() {
						return // the bound was exceeded: a break aborts
					}
					t.Fatalf("resume %d: %v", in.Last(), err)
				}
			}
		}
		for i, s := range delivered {
			if s != uint64(i+1) {
				t.Fatalf("delivered %v: not 1, 2, 3, …", delivered)
			}
		}
	})
}
