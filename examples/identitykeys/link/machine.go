// Package link models the relay's two-way switch between the hospital
// database and the cloud (the seed's 物理切换开关): the relay is connected to
// one side at a time, never to both, and switches on a timer.
//
// [Machine] is the pure state machine (no clocks, no goroutines): a state
// and a transition function over [Event]s. It is break-before-make: to move
// to the other side it first opens the current contact and waits for the
// confirmation that it is open before closing the other one. Its test
// explores every event sequence up to a fixed length and checks [Invariant]
// in every reachable state.
//
// [Switch] runs a Machine for a relay: operations on one side run only while
// that side is connected, and a switch waits for them to drain before it
// opens the contact.
package link

import (
	"errors"
	"fmt"
)

// Side is one end of the switch.
type Side uint8

// The two sides.
const (
	Hospital Side = iota + 1 // the hospital database, on the hospital LAN
	Cloud                    // the platform cloud, over the internet
)

// String returns "hospital" or "cloud".
func (s Side) String() string {
	switch s {
	case Hospital:
		return "hospital"
	case Cloud:
		return "cloud"
	}
	return fmt.Sprintf("Side(%d)", uint8(s))
}

// Other returns the opposite side.
func (s Side) Other() Side {
	if s == Hospital {
		return Cloud
	}
	return Hospital
}

// Phase is where the controller is in its cycle.
type Phase uint8

// Phases. A cycle is AtCloud → Breaking(cloud) → Making(hospital) →
// AtHospital → Breaking(hospital) → Making(cloud) → AtCloud. Safe is entered
// on a fault, with both contacts open, and left only by Reset.
const (
	Safe     Phase = iota // both contacts open after a fault or at power-on
	Making                // the Target contact is commanded closed
	At                    // connected to Target
	Breaking              // the Target contact is commanded open
)

// String returns the phase's lower-case name.
func (p Phase) String() string {
	switch p {
	case Safe:
		return "safe"
	case Making:
		return "making"
	case At:
		return "at"
	case Breaking:
		return "breaking"
	}
	return fmt.Sprintf("Phase(%d)", uint8(p))
}

// Event drives the machine.
type Event uint8

// Events.
const (
	Timer  Event = iota + 1 // the schedule says: go to the other side
	Opened                  // the commanded contact reports open
	Closed                  // the commanded contact reports closed
	Fault                   // a contact or the controller failed
	Reset                   // an operator restarts the cycle from Safe
)

// AllEvents returns every event.
func AllEvents() []Event { return []Event{Timer, Opened, Closed, Fault, Reset} }

// String returns the event's lower-case name.
func (e Event) String() string {
	switch e {
	case Timer:
		return "timer"
	case Opened:
		return "opened"
	case Closed:
		return "closed"
	case Fault:
		return "fault"
	case Reset:
		return "reset"
	}
	return fmt.Sprintf("Event(%d)", uint8(e))
}

// State is the machine's whole state: the phase, the side it refers to, and
// the physical position of each contact (true = closed, i.e. connected).
type State struct {
	Phase       Phase
	Target      Side // the side Making/At/Breaking refer to; 0 in Safe
	HospitalOn  bool
	CloudOn     bool
	Transitions uint64 // completed switches to a side (for observers)
}

// Initial is the power-on state: both contacts open. Reset starts the first
// cycle on the cloud side, as the seed describes.
func Initial() State { return State{Phase: Safe} }

// Connected reports the side the relay may use now, if any: only in phase
// At, and only while exactly that contact is closed.
func (s State) Connected() (Side, bool) {
	if s.Phase != At {
		return 0, false
	}
	return s.Target, true
}

// String describes s for logs and errors (it holds no secret).
func (s State) String() string {
	return fmt.Sprintf("%s/%v hospital=%v cloud=%v", s.Phase, s.Target, s.HospitalOn, s.CloudOn)
}

// ErrUnexpected reports an event that the current state does not accept;
// the state is unchanged.
var ErrUnexpected = errors.New("link: unexpected event")

// ErrBothConnected reports a state with both contacts closed.
var ErrBothConnected = errors.New("link: connected to both sides")

func (s State) on(side Side) bool {
	if side == Hospital {
		return s.HospitalOn
	}
	return s.CloudOn
}

func (s *State) set(side Side, on bool) {
	if side == Hospital {
		s.HospitalOn = on
	} else {
		s.CloudOn = on
	}
}

// Step applies e to s and returns the next state. An event the state does
// not accept returns s unchanged and an error wrapping [ErrUnexpected].
func Step(s State, e Event) (State, error) {
	next := s
	switch {
	case e == Fault:
		// Cut both contacts; the controller stops until reset.
		return State{Phase: Safe, Transitions: s.Transitions}, nil
	case s.Phase == Safe && e == Reset:
		next.Phase, next.Target = Making, Cloud
		next.HospitalOn, next.CloudOn = false, false
		return next, nil
	case s.Phase == At && e == Timer:
		next.Phase = Breaking
		return next, nil
	case s.Phase == Breaking && e == Opened:
		next.set(s.Target, false)
		next.Phase, next.Target = Making, s.Target.Other()
		return next, nil
	case s.Phase == Making && e == Closed:
		// Guard: close only when the other contact is open.
		if s.on(s.Target.Other()) {
			return s, fmt.Errorf("%w: %v contact still closed", ErrUnexpected, s.Target.Other())
		}
		next.set(s.Target, true)
		next.Phase = At
		next.Transitions++
		return next, nil
	}
	return s, fmt.Errorf("%w: %v in %v", ErrUnexpected, e, s)
}

// Invariant checks what must hold in every reachable state: never both
// contacts closed; in At exactly the target contact is closed; in Making the
// target is not yet closed; in Safe both are open.
func Invariant(s State) error {
	if s.HospitalOn && s.CloudOn {
		return fmt.Errorf("%w: %v", ErrBothConnected, s)
	}
	switch s.Phase {
	case Safe:
		if s.HospitalOn || s.CloudOn || s.Target != 0 {
			return fmt.Errorf("link: safe state with a contact closed: %v", s)
		}
	case At:
		if !s.on(s.Target) || s.on(s.Target.Other()) {
			return fmt.Errorf("link: at %v but contacts are %v", s.Target, s)
		}
	case Making:
		if s.on(s.Target) || s.on(s.Target.Other()) {
			return fmt.Errorf("link: making %v with a contact closed: %v", s.Target, s)
		}
	case Breaking:
		if s.on(s.Target.Other()) {
			return fmt.Errorf("link: breaking %v with the other contact closed: %v", s.Target, s)
		}
	default:
		return fmt.Errorf("link: unknown phase %d", s.Phase)
	}
	return nil
}
