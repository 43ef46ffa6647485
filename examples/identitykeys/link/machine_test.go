package link

import (
	"errors"
	"testing"
)

// explore applies every sequence of events of length up to depth from s,
// calling check on every state reached, and returns the first violation with
// the sequence that led to it. It counts the sequences it tried.
func explore(step func(State, Event) (State, error), s State, depth int, check func(State) error, seen map[[2]uint8]bool, path []Event, n *int) ([]Event, error) {
	*n++
	if err := check(s); err != nil {
		return path, err
	}
	seen[[2]uint8{uint8(s.Phase), uint8(s.Target)}] = true
	if depth == 0 {
		return nil, nil
	}
	for _, e := range AllEvents() {
		next, err := step(s, e)
		if err != nil {
			if !errors.Is(err, ErrUnexpected) {
				return append(path, e), err
			}
			if next != s {
				return append(path, e), errors.New("rejected event changed the state")
			}
			continue
		}
		if p, err := explore(step, next, depth-1, check, seen, append(path, e), n); err != nil {
			return p, err
		}
	}
	return nil, nil
}

// depth bounds the sequences explored. A rejected event leaves the state
// unchanged (checked), so a sequence containing one reaches the same states
// as the sequence without it; the explorer therefore follows accepted events
// only, which covers all 5^depth sequences. A full cycle is 8 events.
const depth = 14

// TestNeverBothConnected explores every event sequence of length up to
// depth from power-on and checks the invariant in every state reached. It
// also checks that the exploration reached every phase on both sides, so the
// invariant was not checked over a trivially small space.
func TestNeverBothConnected(t *testing.T) {
	seen := map[[2]uint8]bool{}
	n := 0
	if path, err := explore(Step, Initial(), depth, Invariant, seen, nil, &n); err != nil {
		t.Fatalf("after %v: %v", path, err)
	}
	want := [][2]uint8{
		{uint8(Safe), 0},
		{uint8(Making), uint8(Cloud)}, {uint8(At), uint8(Cloud)}, {uint8(Breaking), uint8(Cloud)},
		{uint8(Making), uint8(Hospital)}, {uint8(At), uint8(Hospital)}, {uint8(Breaking), uint8(Hospital)},
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("exploration never reached %v/%v", Phase(w[0]), Side(w[1]))
		}
	}
	if len(seen) != len(want) {
		t.Errorf("reached %d phase/side pairs, want %d", len(seen), len(want))
	}
	t.Logf("checked the invariant in %d states along all event sequences up to length %d", n, depth)
}

// TestExplorerCatchesMakeBeforeBreak runs the same exploration on a broken
// controller that closes the other contact before opening the current one,
// and expects the checker to find the violation.
func TestExplorerCatchesMakeBeforeBreak(t *testing.T) {
	broken := func(s State, e Event) (State, error) {
		if s.Phase == At && e == Timer {
			next := s
			next.set(s.Target.Other(), true) // make first
			next.Phase = Breaking
			return next, nil
		}
		return Step(s, e)
	}
	n := 0
	path, err := explore(broken, Initial(), depth, Invariant, map[[2]uint8]bool{}, nil, &n)
	if !errors.Is(err, ErrBothConnected) {
		t.Fatalf("checker missed the make-before-break controller: err = %v", err)
	}
	t.Logf("found after %v", path)
}

func TestCycle(t *testing.T) {
	s := Initial()
	seq := []struct {
		e    Event
		want State
	}{
		{Reset, State{Phase: Making, Target: Cloud}},
		{Closed, State{Phase: At, Target: Cloud, CloudOn: true, Transitions: 1}},
		{Timer, State{Phase: Breaking, Target: Cloud, CloudOn: true, Transitions: 1}},
		{Opened, State{Phase: Making, Target: Hospital, Transitions: 1}},
		{Closed, State{Phase: At, Target: Hospital, HospitalOn: true, Transitions: 2}},
		{Timer, State{Phase: Breaking, Target: Hospital, HospitalOn: true, Transitions: 2}},
		{Opened, State{Phase: Making, Target: Cloud, Transitions: 2}},
		{Closed, State{Phase: At, Target: Cloud, CloudOn: true, Transitions: 3}},
		{Fault, State{Phase: Safe, Transitions: 3}},
	}
	for i, st := range seq {
		next, err := Step(s, st.e)
		if err != nil {
			t.Fatalf("step %d (%v): %v", i, st.e, err)
		}
		if next != st.want {
			t.Fatalf("step %d (%v) = %v, want %v", i, st.e, next, st.want)
		}
		s = next
	}
}

func TestUnexpectedEvents(t *testing.T) {
	at := State{Phase: At, Target: Cloud, CloudOn: true}
	tests := []struct {
		name string
		s    State
		e    Event
	}{
		{"closed while at", at, Closed},
		{"opened while at", at, Opened},
		{"reset while at", at, Reset},
		{"timer in safe", Initial(), Timer},
		{"timer while making", State{Phase: Making, Target: Hospital}, Timer},
		{"close with other contact closed", State{Phase: Making, Target: Hospital, CloudOn: true}, Closed},
		{"unknown event", at, Event(99)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Step(tc.s, tc.e)
			if !errors.Is(err, ErrUnexpected) || got != tc.s {
				t.Fatalf("Step = (%v, %v), want unchanged state and ErrUnexpected", got, err)
			}
		})
	}
}
