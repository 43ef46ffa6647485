package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mpsi-dev/mpsi/coordinator/store"
)

func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "mpsi-store-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "mpsi.db")

	// Coordinator: a session is created, parties join, it runs and its
	// result is released.
	s, err := store.Open(ctx, path)
	if err != nil {
		panic(err)
	}
	_ = s.CreateSession(ctx, "cohort-7", []byte(`{"parties":2}`), "hospital-a")
	_ = s.Append(ctx, "party.joined", "cohort-7", "hospital-a", "")
	_ = s.Append(ctx, "party.joined", "cohort-7", "hospital-b", "")
	_ = s.SetRunning(ctx, "cohort-7")
	_ = s.Complete(ctx, "cohort-7", []byte("intersection=1234"), []byte("sig"))

	// A session that was still running when the coordinator stopped.
	_ = s.CreateSession(ctx, "cohort-8", []byte(`{"parties":3}`), "hospital-a")
	_ = s.SetRunning(ctx, "cohort-8")
	_ = s.Close()

	// Coordinator, after a restart.
	s, err = store.Open(ctx, path)
	if err != nil {
		panic(err)
	}
	defer s.Close()
	aborted, _ := s.AbortInterrupted(ctx, "coordinator restarted")
	fmt.Println("aborted:", aborted)
	result, _, _ := s.Result(ctx, "cohort-7")
	fmt.Printf("result of cohort-7: %s\n", result)
	err = s.Complete(ctx, "cohort-8", []byte("late"), nil)
	fmt.Println("complete cohort-8 is ErrState:", errors.Is(err, store.ErrState))

	events, _ := s.Events(ctx, "cohort-7")
	for _, e := range events {
		fmt.Println(e.Seq, e.Kind, e.Actor)
	}
	n, err := s.VerifyAudit(ctx)
	fmt.Println("verified events:", n, err)
	// Output:
	// aborted: [cohort-8]
	// result of cohort-7: intersection=1234
	// complete cohort-8 is ErrState: true
	// 1 session.created hospital-a
	// 2 party.joined hospital-a
	// 3 party.joined hospital-b
	// 4 session.running coordinator
	// 5 session.released coordinator
	// verified events: 8 <nil>
}

// An empty file is refused unless Init is set, so that a truncated database
// never starts an empty history; an auditor opens it read-only.
func ExampleOpenWith() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "mpsi-store-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "mpsi.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		panic(err)
	}

	_, err = store.Open(ctx, path)
	fmt.Println(errors.Is(err, store.ErrNotDatabase))
	s, err := store.OpenWith(ctx, path, store.Options{Init: true})
	if err != nil {
		panic(err)
	}
	_ = s.CreateSession(ctx, "cohort-9", []byte(`{"parties":2}`), "admin")
	_ = s.Close()

	ro, err := store.OpenWith(ctx, path, store.Options{ReadOnly: true})
	if err != nil {
		panic(err)
	}
	defer ro.Close()
	n, err := ro.VerifyAudit(ctx)
	fmt.Println(n, err)
	fmt.Println(ro.CreateSession(ctx, "cohort-10", []byte(`{}`), "admin") != nil)
	// Output:
	// true
	// 1 <nil>
	// true
}
