package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/coordinator/store"
)

func openTemp(t *testing.T) (*store.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mpsi.db")
	s, err := store.Open(t.Context(), path)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s, path
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

func kinds(evs []store.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Kind)
	}
	return out
}

func TestLifecycle(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)
	spec := []byte(`{"parties":3}`)
	before := time.Now().UTC().Add(-time.Second)

	require.NoError(t, s.CreateSession(ctx, "s1", spec, "alice"))
	got, err := s.Session(ctx, "s1")
	require.NoError(t, err)
	require.Equal(t, "s1", got.ID)
	require.Equal(t, spec, got.Spec)
	require.Equal(t, store.StateCreated, got.State)
	require.Empty(t, got.Reason)
	require.Equal(t, time.UTC, got.Created.Location())
	require.True(t, got.Created.After(before), "Created = %v", got.Created)
	require.Equal(t, got.Created, got.Updated)

	require.NoError(t, s.Append(ctx, "party.joined", "s1", "alice", "party 1"))
	require.NoError(t, s.Append(ctx, "party.joined", "s1", "bob", "party 2"))
	require.NoError(t, s.SetRunning(ctx, "s1"))
	got, err = s.Session(ctx, "s1")
	require.NoError(t, err)
	require.Equal(t, store.StateRunning, got.State)
	require.False(t, got.Updated.Before(got.Created))

	_, _, err = s.Result(ctx, "s1")
	require.ErrorIs(t, err, store.ErrNotFound)

	result, sig := []byte("intersection=42"), []byte("signature")
	require.NoError(t, s.Complete(ctx, "s1", result, sig))
	got, err = s.Session(ctx, "s1")
	require.NoError(t, err)
	require.Equal(t, store.StateCompleted, got.State)
	r, g, err := s.Result(ctx, "s1")
	require.NoError(t, err)
	require.Equal(t, result, r)
	require.Equal(t, sig, g)

	// A second session, aborted, and an event not tied to a session.
	require.NoError(t, s.CreateSession(ctx, "s2", nil, "bob"))
	require.NoError(t, s.Abort(ctx, "s2", "party 2 timed out"))
	require.NoError(t, s.Append(ctx, "coordinator.started", "", "coordinator", ""))
	got, err = s.Session(ctx, "s2")
	require.NoError(t, err)
	require.Equal(t, store.StateAborted, got.State)
	require.Equal(t, "party 2 timed out", got.Reason)
	require.Equal(t, []byte{}, got.Spec)

	all, err := s.Sessions(ctx)
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, "s1", all[0].ID)
	require.Equal(t, "s2", all[1].ID)

	evs, err := s.Events(ctx, "s1")
	require.NoError(t, err)
	require.Equal(t, []string{
		store.KindSessionCreated, "party.joined", "party.joined",
		store.KindSessionRunning, store.KindSessionReleased,
	}, kinds(evs))
	require.Equal(t, sha(spec), evs[0].Detail)
	require.Equal(t, "alice", evs[0].Actor)
	require.Equal(t, "bob", evs[2].Actor)
	require.Equal(t, "party 2", evs[2].Detail)
	require.Equal(t, sha(result), evs[4].Detail)

	all2, err := s.Events(ctx, "")
	require.NoError(t, err)
	require.Len(t, all2, 8)
	require.Equal(t, make([]byte, store.HashSize), all2[0].Prev)
	for i, e := range all2 {
		require.Equal(t, int64(i+1), e.Seq)
		require.Len(t, e.Hash, store.HashSize)
		require.Equal(t, time.UTC, e.Time.Location())
		if i > 0 {
			require.Equal(t, all2[i-1].Hash, e.Prev)
		}
	}
	require.Equal(t, store.KindSessionAborted, all2[6].Kind)
	require.Equal(t, "party 2 timed out", all2[6].Detail)
	require.Equal(t, "coordinator.started", all2[7].Kind)

	n, err := s.VerifyAudit(ctx)
	require.NoError(t, err)
	require.Equal(t, 8, n)

	seq, head, err := s.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(8), seq)
	require.Equal(t, all2[7].Hash, head)
}

func TestEmpty(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)
	n, err := s.VerifyAudit(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	all, err := s.Sessions(ctx)
	require.NoError(t, err)
	require.Empty(t, all)
	evs, err := s.Events(ctx, "")
	require.NoError(t, err)
	require.Empty(t, evs)
	seq, head, err := s.Head(ctx)
	require.NoError(t, err)
	require.Zero(t, seq)
	require.Equal(t, make([]byte, store.HashSize), head)
}

func TestTransitions(t *testing.T) {
	ctx := t.Context()
	// setup brings a fresh session "s" into the named state.
	setup := func(t *testing.T, s *store.Store, state string) {
		t.Helper()
		if state == "" {
			return
		}
		require.NoError(t, s.CreateSession(ctx, "s", []byte("spec"), "a"))
		switch state {
		case store.StateRunning:
			require.NoError(t, s.SetRunning(ctx, "s"))
		case store.StateCompleted:
			require.NoError(t, s.SetRunning(ctx, "s"))
			require.NoError(t, s.Complete(ctx, "s", []byte("r"), []byte("sig")))
		case store.StateAborted:
			require.NoError(t, s.Abort(ctx, "s", "first"))
		}
	}
	ops := map[string]func(*store.Store) error{
		"create":   func(s *store.Store) error { return s.CreateSession(ctx, "s", []byte("other"), "b") },
		"running":  func(s *store.Store) error { return s.SetRunning(ctx, "s") },
		"abort":    func(s *store.Store) error { return s.Abort(ctx, "s", "second") },
		"complete": func(s *store.Store) error { return s.Complete(ctx, "s", []byte("x"), []byte("y")) },
	}
	tests := []struct {
		state   string // "" = no session
		op      string
		wantErr error // nil = allowed
	}{
		{"", "create", nil},
		{"", "running", store.ErrNotFound},
		{"", "abort", store.ErrNotFound},
		{"", "complete", store.ErrNotFound},
		{store.StateCreated, "create", store.ErrExists},
		{store.StateCreated, "running", nil},
		{store.StateCreated, "abort", nil},
		{store.StateCreated, "complete", store.ErrState},
		{store.StateRunning, "create", store.ErrExists},
		{store.StateRunning, "running", store.ErrState},
		{store.StateRunning, "abort", nil},
		{store.StateRunning, "complete", nil},
		{store.StateCompleted, "create", store.ErrExists},
		{store.StateCompleted, "running", store.ErrState},
		{store.StateCompleted, "abort", store.ErrState},
		{store.StateCompleted, "complete", store.ErrState},
		{store.StateAborted, "create", store.ErrExists},
		{store.StateAborted, "running", store.ErrState},
		{store.StateAborted, "abort", store.ErrState},
		{store.StateAborted, "complete", store.ErrState},
	}
	for _, tc := range tests {
		state := tc.state
		if state == "" {
			state = "none"
		}
		t.Run(fmt.Sprintf("%s/%s", state, tc.op), func(t *testing.T) {
			s, _ := openTemp(t)
			setup(t, s, tc.state)
			before, err := s.Events(ctx, "")
			require.NoError(t, err)
			var sess *store.Session
			if tc.state != "" {
				sess, err = s.Session(ctx, "s")
				require.NoError(t, err)
			}

			err = ops[tc.op](s)
			if tc.wantErr == nil {
				require.NoError(t, err)
				after, err := s.Events(ctx, "")
				require.NoError(t, err)
				require.Len(t, after, len(before)+1, "one audit event per transition")
				return
			}
			require.ErrorIs(t, err, tc.wantErr)
			// A refused transition changes nothing.
			after, err := s.Events(ctx, "")
			require.NoError(t, err)
			require.Equal(t, before, after)
			if sess != nil {
				now, err := s.Session(ctx, "s")
				require.NoError(t, err)
				require.Equal(t, sess, now)
			}
			if tc.state != store.StateCompleted {
				_, _, err := s.Result(ctx, "s")
				require.ErrorIs(t, err, store.ErrNotFound)
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)
	_, err := s.Session(ctx, "nope")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, _, err = s.Result(ctx, "nope")
	require.ErrorIs(t, err, store.ErrNotFound)
	evs, err := s.Events(ctx, "nope")
	require.NoError(t, err)
	require.Empty(t, evs)
}

func TestInvalidArguments(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)
	require.Error(t, s.CreateSession(ctx, "", nil, "a"))
	require.Error(t, s.Append(ctx, "", "s", "a", "d"))
	for _, p := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro"} {
		_, err := store.Open(ctx, p)
		require.Error(t, err, "Open(%q)", p)
	}
}

func TestCanceledContext(t *testing.T) {
	s, _ := openTemp(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, s.CreateSession(ctx, "s", nil, "a"), context.Canceled)
	require.ErrorIs(t, s.Append(ctx, "k", "", "", ""), context.Canceled)
	_, err := s.VerifyAudit(ctx)
	require.ErrorIs(t, err, context.Canceled)
	_, err = store.Open(ctx, filepath.Join(t.TempDir(), "x.db"))
	require.ErrorIs(t, err, context.Canceled)
}

// TestStrings checks that arbitrary bytes in the text fields survive the
// database and still verify.
func TestStrings(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)
	weird := []string{"", "a\x00b", "\xff\xfe", "ünïcødé", "line\nbreak", "'; DROP TABLE audit; --"}
	for _, w := range weird {
		require.NoError(t, s.Append(ctx, "k"+w, w, w, w))
	}
	evs, err := s.Events(ctx, "")
	require.NoError(t, err)
	require.Len(t, evs, len(weird))
	for i, w := range weird {
		require.Equal(t, "k"+w, evs[i].Kind)
		require.Equal(t, w, evs[i].Session)
		require.Equal(t, w, evs[i].Actor)
		require.Equal(t, w, evs[i].Detail)
	}
	n, err := s.VerifyAudit(ctx)
	require.NoError(t, err)
	require.Equal(t, len(weird), n)
}

func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "mpsi.db")
	s, err := store.Open(ctx, path)
	require.NoError(t, err)
	require.NoError(t, s.CreateSession(ctx, "done", []byte("spec-done"), "a"))
	require.NoError(t, s.SetRunning(ctx, "done"))
	require.NoError(t, s.Complete(ctx, "done", []byte("result"), []byte("sig")))
	require.NoError(t, s.CreateSession(ctx, "running", []byte("spec-running"), "a"))
	require.NoError(t, s.SetRunning(ctx, "running"))
	require.NoError(t, s.Append(ctx, "party.joined", "running", "b", ""))
	require.NoError(t, s.CreateSession(ctx, "created", []byte("spec-created"), "a"))
	require.NoError(t, s.CreateSession(ctx, "aborted", nil, "a"))
	require.NoError(t, s.Abort(ctx, "aborted", "by operator"))
	before, err := s.Sessions(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	// Restart.
	s, err = store.Open(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	after, err := s.Sessions(ctx)
	require.NoError(t, err)
	require.Equal(t, before, after)
	r, sig, err := s.Result(ctx, "done")
	require.NoError(t, err)
	require.Equal(t, []byte("result"), r)
	require.Equal(t, []byte("sig"), sig)
	n, err := s.VerifyAudit(ctx)
	require.NoError(t, err)
	require.Equal(t, 9, n)

	ids, err := s.AbortInterrupted(ctx, "coordinator restarted")
	require.NoError(t, err)
	require.Equal(t, []string{"created", "running"}, ids)
	for _, id := range ids {
		ss, err := s.Session(ctx, id)
		require.NoError(t, err)
		require.Equal(t, store.StateAborted, ss.State)
		require.Equal(t, "coordinator restarted", ss.Reason)
		evs, err := s.Events(ctx, id)
		require.NoError(t, err)
		last := evs[len(evs)-1]
		require.Equal(t, store.KindSessionAborted, last.Kind)
		require.Equal(t, "coordinator restarted", last.Detail)
	}
	ss, err := s.Session(ctx, "aborted")
	require.NoError(t, err)
	require.Equal(t, "by operator", ss.Reason)
	ss, err = s.Session(ctx, "done")
	require.NoError(t, err)
	require.Equal(t, store.StateCompleted, ss.State)

	// Nothing left to abort.
	ids, err = s.AbortInterrupted(ctx, "again")
	require.NoError(t, err)
	require.Empty(t, ids)

	n, err = s.VerifyAudit(ctx)
	require.NoError(t, err)
	require.Equal(t, 11, n)
}

func TestSchemaVersion(t *testing.T) {
	ctx := t.Context()
	s, path := openTemp(t)
	require.NoError(t, s.Close())

	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	var v int
	require.NoError(t, db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v))
	require.Equal(t, store.SchemaVersion, v)
	_, err = db.ExecContext(ctx, "PRAGMA user_version = 99")
	require.NoError(t, err)
	require.NoError(t, db.Close())

	_, err = store.Open(ctx, path)
	require.ErrorIs(t, err, store.ErrSchemaVersion)
}

func TestAppendOnlyTriggers(t *testing.T) {
	ctx := t.Context()
	s, path := openTemp(t)
	require.NoError(t, s.CreateSession(ctx, "s", nil, "a"))
	require.NoError(t, s.SetRunning(ctx, "s"))
	require.NoError(t, s.Complete(ctx, "s", []byte("r"), []byte("g")))

	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	for _, q := range []string{
		"UPDATE audit SET detail = 'x' WHERE seq = 1",
		"DELETE FROM audit WHERE seq = 3",
		"DELETE FROM audit_head",
		"UPDATE audit_head SET seq = 1",
		"INSERT INTO audit (seq, time, kind, session, actor, detail, prev, hash) VALUES (7, '', '', '', '', '', x'', x'')",
		"UPDATE results SET result = x'00'",
		"DELETE FROM results",
		"UPDATE sessions SET state = 'running'",
	} {
		_, err := db.ExecContext(ctx, q)
		require.Error(t, err, q)
	}
	n, err := s.VerifyAudit(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, n)
}

func TestConcurrent(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)
	const (
		workers = 8
		appends = 10
	)
	var wg sync.WaitGroup
	errs := make(chan error, workers*(appends+3))
	for w := range workers {
		wg.Go(func() {
			id := fmt.Sprintf("s%d", w)
			errs <- s.CreateSession(ctx, id, []byte(id), "worker")
			for i := range appends {
				errs <- s.Append(ctx, "party.joined", id, fmt.Sprintf("p%d", i), "")
			}
			errs <- s.SetRunning(ctx, id)
			_, err := s.VerifyAudit(ctx)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	n, err := s.VerifyAudit(ctx)
	require.NoError(t, err)
	require.Equal(t, workers*(appends+2), n)
	all, err := s.Sessions(ctx)
	require.NoError(t, err)
	require.Len(t, all, workers)
}

func TestBackup(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)
	require.NoError(t, s.CreateSession(ctx, "s", []byte("spec"), "a"))
	require.NoError(t, s.SetRunning(ctx, "s"))
	require.NoError(t, s.Complete(ctx, "s", []byte("r"), []byte("g")))
	require.NoError(t, s.CreateSession(ctx, "t", []byte("spec"), "a"))

	dir := t.TempDir()
	bpath := filepath.Join(dir, "backup.db")
	require.NoError(t, s.Backup(ctx, bpath))
	// The original keeps working; the backup is a snapshot.
	require.NoError(t, s.Append(ctx, "after.backup", "", "", ""))

	b, err := store.Open(ctx, bpath)
	require.NoError(t, err)
	defer b.Close()
	n, err := b.VerifyAudit(ctx)
	require.NoError(t, err)
	require.Equal(t, 4, n)
	r, g, err := b.Result(ctx, "s")
	require.NoError(t, err)
	require.Equal(t, []byte("r"), r)
	require.Equal(t, []byte("g"), g)
	ss, err := b.Session(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, store.StateCreated, ss.State)

	// Backup refuses to overwrite an existing file.
	other := filepath.Join(dir, "exists.db")
	require.NoError(t, os.WriteFile(other, []byte("keep me"), 0o600))
	require.Error(t, s.Backup(ctx, other))
	data, err := os.ReadFile(other)
	require.NoError(t, err)
	require.Equal(t, "keep me", string(data))
}

func TestSessionsOrder(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)
	var want []string
	for i := range 12 {
		id := fmt.Sprintf("z%02d", 12-i) // creation order is the reverse of id order
		require.NoError(t, s.CreateSession(ctx, id, nil, "a"))
		want = append(want, id)
	}
	all, err := s.Sessions(ctx)
	require.NoError(t, err)
	var got []string
	for _, ss := range all {
		got = append(got, ss.ID)
	}
	require.Equal(t, want, got)
}

func TestOpenRefusesWhatIsNotOurs(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	empty := write("empty.db", nil)
	garbage := write("garbage.db", []byte("id,name\n1,alice\n"))
	short := write("short.db", []byte("SQL"))
	foreign := filepath.Join(dir, "foreign.db")
	db, err := sql.Open("sqlite", foreign)
	require.NoError(t, err)
	_, err = db.Exec("CREATE TABLE t (x INTEGER)")
	require.NoError(t, err)
	require.NoError(t, db.Close())

	for _, tc := range []struct {
		name, path string
		init       bool
		ok         bool
	}{
		{"empty", empty, false, false},
		{"garbage", garbage, false, false},
		{"garbage with init", garbage, true, false},
		{"short", short, true, false},
		{"foreign sqlite", foreign, false, false},
		{"empty with init", empty, true, true},
		{"missing", filepath.Join(dir, "new.db"), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := os.ReadFile(tc.path)
			s, err := store.OpenWith(ctx, tc.path, store.Options{Init: tc.init})
			if !tc.ok {
				require.ErrorIs(t, err, store.ErrNotDatabase)
				require.Contains(t, err.Error(), tc.path)
				if tc.path != foreign { // SQLite itself may switch the journal mode
					after, _ := os.ReadFile(tc.path)
					require.True(t, bytes.Equal(before, after), "a refused file is left as it was")
					return
				}
				db, err := sql.Open("sqlite", foreign)
				require.NoError(t, err)
				defer db.Close()
				var n int
				require.NoError(t, db.QueryRow("SELECT count(*) FROM sqlite_schema").Scan(&n))
				require.Equal(t, 1, n, "no schema added to a foreign database")
				return
			}
			require.NoError(t, err)
			require.NoError(t, s.CreateSession(ctx, "s1", []byte("{}"), "admin"))
			require.NoError(t, s.Close())
			s, err = store.Open(ctx, tc.path)
			require.NoError(t, err, "an initialised database opens without --init")
			require.NoError(t, s.Close())
		})
	}
}

func TestOpenReadOnly(t *testing.T) {
	ctx := t.Context()
	s, path := openTemp(t)
	require.NoError(t, s.CreateSession(ctx, "s1", []byte("{}"), "admin"))
	require.NoError(t, s.Close())

	ro, err := store.OpenWith(ctx, path, store.Options{ReadOnly: true})
	require.NoError(t, err)
	defer ro.Close()
	n, err := ro.VerifyAudit(ctx)
	require.NoError(t, err)
	require.Positive(t, n)
	require.Error(t, ro.CreateSession(ctx, "s2", []byte("{}"), "admin"), "a read-only store refuses writes")
	_, err = ro.Session(ctx, "s2")
	require.ErrorIs(t, err, store.ErrNotFound)

	_, err = store.OpenWith(ctx, filepath.Join(t.TempDir(), "missing.db"), store.Options{ReadOnly: true})
	require.ErrorIs(t, err, os.ErrNotExist, "a read-only open never creates the file")
}
