package link

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func started(t *testing.T) *Switch {
	t.Helper()
	w := NewSwitch(nil)
	require.NoError(t, w.Start())
	side, ok := w.State().Connected()
	require.True(t, ok)
	require.Equal(t, Cloud, side)
	return w
}

func TestUseOnlyConnectedSide(t *testing.T) {
	w := started(t)
	ctx := context.Background()
	ran := false
	err := w.Use(ctx, Hospital, func(context.Context) error { ran = true; return nil })
	require.ErrorIs(t, err, ErrDisconnected)
	require.False(t, ran)
	require.NoError(t, w.Use(ctx, Cloud, func(context.Context) error { ran = true; return nil }))
	require.True(t, ran)
	require.NoError(t, w.Toggle(ctx))
	require.ErrorIs(t, w.Use(ctx, Cloud, func(context.Context) error { return nil }), ErrDisconnected)
	w.Fault()
	require.ErrorIs(t, w.Use(ctx, Hospital, func(context.Context) error { return nil }), ErrDisconnected)
	require.ErrorIs(t, w.Use(ctx, Cloud, func(context.Context) error { return nil }), ErrDisconnected)
	require.Error(t, w.Toggle(ctx), "toggle after a fault")
}

// TestToggleDrains: a switch waits for the operation in flight and admits
// no new one on the old side meanwhile.
func TestToggleDrains(t *testing.T) {
	w := started(t)
	ctx := context.Background()
	inside, release := make(chan struct{}), make(chan struct{})
	go func() {
		_ = w.Use(ctx, Cloud, func(context.Context) error { close(inside); <-release; return nil })
	}()
	<-inside
	done := make(chan error, 1)
	go func() { done <- w.Toggle(ctx) }()
	require.Eventually(t, func() bool { return w.State().Phase == Breaking }, time.Second, time.Millisecond)
	require.ErrorIs(t, w.Use(ctx, Cloud, func(context.Context) error { return nil }), ErrDisconnected)
	select {
	case err := <-done:
		t.Fatalf("Toggle returned (%v) while an operation was in flight", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	require.NoError(t, <-done)
	side, _ := w.State().Connected()
	require.Equal(t, Hospital, side)
}

func TestToggleCanceledFaults(t *testing.T) {
	w := started(t)
	inside, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	go func() {
		_ = w.Use(context.Background(), Cloud, func(context.Context) error { close(inside); <-release; return nil })
	}()
	<-inside
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err := w.Toggle(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, Safe, w.State().Phase)
}

func TestUseWhenWaits(t *testing.T) {
	w := started(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.UseWhen(ctx, Hospital, func(context.Context) error { return nil }) }()
	require.NoError(t, w.Toggle(ctx))
	require.NoError(t, <-done)

	short, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	err := w.UseWhen(short, Cloud, func(context.Context) error { return nil })
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

// TestSwitchNeverBothUnderLoad runs operations on both sides from many
// goroutines while the switch toggles on a fast schedule, and checks from
// inside the operations that the two sides never overlap.
func TestSwitchNeverBothUnderLoad(t *testing.T) {
	var bothSeen atomic.Bool
	observe := func(_ State, _ Event, to State) {
		if to.HospitalOn && to.CloudOn {
			bothSeen.Store(true)
		}
	}
	w := NewSwitch(observe)
	require.NoError(t, w.Start())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var active [3]atomic.Int32 // by Side
	var ran [3]atomic.Int32
	var overlap atomic.Bool
	var wg sync.WaitGroup
	for i := range 8 {
		side := Side(1 + i%2)
		wg.Go(func() {
			for ctx.Err() == nil {
				err := w.Use(ctx, side, func(context.Context) error {
					active[side].Add(1)
					if active[side.Other()].Load() > 0 {
						overlap.Store(true)
					}
					time.Sleep(100 * time.Microsecond)
					ran[side].Add(1)
					active[side].Add(-1)
					return nil
				})
				if err != nil && !errors.Is(err, ErrDisconnected) {
					t.Error(err)
					return
				}
				if err != nil {
					time.Sleep(50 * time.Microsecond)
				}
			}
		})
	}
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(ctx, Schedule{Cloud: 2 * time.Millisecond, Hospital: 2 * time.Millisecond}) }()
	wg.Wait()
	require.NoError(t, <-runErr)
	require.False(t, overlap.Load(), "operations on both sides overlapped")
	require.False(t, bothSeen.Load(), "observer saw both contacts closed")
	if ran[Hospital].Load() == 0 || ran[Cloud].Load() == 0 || w.State().Transitions < 10 {
		t.Fatalf("load too light to mean anything: hospital %d, cloud %d ops, %d transitions",
			ran[Hospital].Load(), ran[Cloud].Load(), w.State().Transitions)
	}
}

func TestRunRejectsBadSchedule(t *testing.T) {
	w := started(t)
	require.Error(t, w.Run(context.Background(), Schedule{}))
}
