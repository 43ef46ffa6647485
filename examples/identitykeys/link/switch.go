package link

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrDisconnected reports an operation on a side that is not connected now.
// Retry later (the schedule will switch back) or use [Switch.UseWhen].
var ErrDisconnected = errors.New("link: side not connected")

// Switch drives a [Machine] state for one relay. It is safe for concurrent
// use. Operations registered with [Switch.Use] hold the current side: a
// switch waits until they finish before it opens the contact, and no new
// operation starts once the switch has begun.
type Switch struct {
	observe func(from State, ev Event, to State)

	mu      sync.Mutex    // guards the fields below
	state   State         // current state; Invariant holds whenever mu is free
	active  int           // operations in flight on state.Target
	changed chan struct{} // closed and replaced whenever state or active changes
}

// NewSwitch returns a switch at power-on ([Initial]). observe, if not nil,
// is called after every accepted event, with the switch locked: it must not
// call the switch.
func NewSwitch(observe func(from State, ev Event, to State)) *Switch {
	return &Switch{observe: observe, state: Initial(), changed: make(chan struct{})}
}

// State returns the current state.
func (w *Switch) State() State {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state
}

// step applies e; w.mu must be held.
func (w *Switch) step(e Event) error {
	next, err := Step(w.state, e)
	if err != nil {
		return err
	}
	if err := Invariant(next); err != nil {
		return err // unreachable: the machine's test proves it
	}
	prev := w.state
	w.state = next
	w.notify()
	if w.observe != nil {
		w.observe(prev, e, next)
	}
	return nil
}

func (w *Switch) notify() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// Start resets the switch from Safe and connects the cloud side, the start
// of the seed's cycle.
func (w *Switch) Start() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.step(Reset); err != nil {
		return fmt.Errorf("link: start: %w", err)
	}
	return w.step(Closed)
}

// Fault opens both contacts at once and stops the cycle until [Switch.Start].
// Operations in flight keep running to completion but no new one starts.
func (w *Switch) Fault() {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.step(Fault) // Fault is accepted in every state
}

// Toggle moves to the other side: it stops new operations, waits for the
// ones in flight, opens the current contact, then closes the other. If ctx
// ends while it waits, the switch faults to Safe and Toggle returns the
// context's error.
func (w *Switch) Toggle(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.step(Timer); err != nil {
		return fmt.Errorf("link: toggle: %w", err)
	}
	for w.active > 0 {
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
			w.mu.Lock()
		case <-ctx.Done():
			w.mu.Lock()
			_ = w.step(Fault)
			return fmt.Errorf("link: toggle: draining: %w", ctx.Err())
		}
	}
	if err := w.step(Opened); err != nil {
		return fmt.Errorf("link: toggle: %w", err)
	}
	if err := w.step(Closed); err != nil {
		return fmt.Errorf("link: toggle: %w", err)
	}
	return nil
}

// Use runs fn while side is connected, holding the switch on that side
// until fn returns. If side is not connected now it returns an error
// wrapping [ErrDisconnected] without running fn.
func (w *Switch) Use(ctx context.Context, side Side, fn func(context.Context) error) error {
	w.mu.Lock()
	if cur, ok := w.state.Connected(); !ok || cur != side {
		st := w.state
		w.mu.Unlock()
		return fmt.Errorf("%w: want %v, switch is %v", ErrDisconnected, side, st)
	}
	w.active++
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.active--
		w.notify()
		w.mu.Unlock()
	}()
	return fn(ctx)
}

// UseWhen waits until side is connected, then runs fn as [Switch.Use] does.
func (w *Switch) UseWhen(ctx context.Context, side Side, fn func(context.Context) error) error {
	for {
		err := w.Use(ctx, side, fn)
		if !errors.Is(err, ErrDisconnected) {
			return err
		}
		w.mu.Lock()
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("link: waiting for %v: %w", side, ctx.Err())
		}
	}
}

// Schedule says how long the switch stays on each side.
type Schedule struct {
	Cloud    time.Duration
	Hospital time.Duration
}

// Run toggles the switch on sched until ctx ends, then returns nil. It
// returns an error if a toggle fails for another reason (e.g. after a Fault).
func (w *Switch) Run(ctx context.Context, sched Schedule) error {
	if sched.Cloud <= 0 || sched.Hospital <= 0 {
		return errors.New("link: schedule durations must be positive")
	}
	for {
		d := sched.Cloud
		if side, _ := w.State().Connected(); side == Hospital {
			d = sched.Hospital
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		if err := w.Toggle(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}
