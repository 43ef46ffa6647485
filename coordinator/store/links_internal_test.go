package store

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// historyFixture writes a store with four sessions: "done" completed with a
// result, "cut" aborted with a reason, "live" running and "new" created.
func historyFixture(t *testing.T) string {
	t.Helper()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "mpsi.db")
	s, err := Open(ctx, path)
	require.NoError(t, err)
	for _, id := range []string{"done", "cut", "live", "new"} {
		require.NoError(t, s.CreateSession(ctx, id, []byte("spec "+id), "admin"))
	}
	require.NoError(t, s.SetRunning(ctx, "done"))
	require.NoError(t, s.Complete(ctx, "done", []byte("result"), []byte("sig")))
	require.NoError(t, s.SetRunning(ctx, "cut"))
	require.NoError(t, s.Abort(ctx, "cut", "hospital-b: input error, ref 0011"))
	require.NoError(t, s.SetRunning(ctx, "live"))
	_, err = s.VerifyAudit(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	return path
}

// The sqlite3 client on the file (foreign keys off, as it starts) cannot
// delete or rewrite history: no DELETE on any table that holds it, session
// states only move forward, no INSERT OR REPLACE over a session, a result or
// the chain head. The store's own transitions still work afterwards.
func TestHistoryTriggers(t *testing.T) {
	ctx := t.Context()
	path := historyFixture(t)
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	for _, q := range []string{
		"DELETE FROM sessions WHERE id = 'done'",
		"DELETE FROM sessions WHERE id = 'new'",
		"DELETE FROM results",
		"DELETE FROM audit WHERE seq = 1",
		"DELETE FROM audit_head",
		"UPDATE sessions SET state = 'running' WHERE id = 'done'",
		"UPDATE sessions SET state = 'created' WHERE id = 'live'",
		"UPDATE sessions SET state = 'completed' WHERE id = 'new'",
		"UPDATE sessions SET reason = 'x' WHERE id = 'cut'",
		"UPDATE sessions SET reason = 'x' WHERE id = 'live'",
		"UPDATE sessions SET spec = x'00' WHERE id = 'new'",
		"UPDATE sessions SET id = 'renamed' WHERE id = 'new'",
		"UPDATE sessions SET created = '2000-01-01T00:00:00.000000000Z' WHERE id = 'live'",
		"INSERT OR REPLACE INTO sessions (id, spec, state, reason, created, updated) VALUES ('done', x'', 'created', '', '', '')",
		"INSERT INTO sessions (id, spec, state, reason, created, updated) VALUES ('forged', x'', 'completed', '', '', '')",
		"INSERT OR REPLACE INTO results (session, result, signature, created) VALUES ('done', x'00', x'00', '')",
		"INSERT INTO results (session, result, signature, created) VALUES ('live', x'00', x'00', '')",
		"INSERT OR REPLACE INTO audit_head (id, seq, hash) VALUES (1, 0, zeroblob(32))",
	} {
		_, err := db.ExecContext(ctx, q)
		require.Error(t, err, q)
	}

	s, err := Open(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Abort(ctx, "new", "created, then aborted"))
	require.NoError(t, s.Complete(ctx, "live", []byte("r2"), []byte("g2")))
	_, err = s.VerifyAudit(ctx)
	require.NoError(t, err)
}

// With the triggers dropped (whoever can write the file can), VerifyAudit
// still finds a session or result deleted, replaced or moved: the tables no
// longer agree with the chain.
func TestVerifyAuditChecksLinks(t *testing.T) {
	tests := []struct {
		name   string
		tamper []string
		want   string
	}{
		{"session deleted, its result orphaned", []string{"DELETE FROM sessions WHERE id = 'done'"}, `session "done", which is not in the sessions table`},
		{"created session deleted", []string{"DELETE FROM sessions WHERE id = 'new'"}, `session "new", which is not in the sessions table`},
		{"result deleted", []string{"DELETE FROM results"}, `session "done": state completed with a result: false`},
		{"result replaced", []string{"UPDATE results SET result = x'00'"}, `session "done": result differs`},
		{"completed made aborted", []string{"UPDATE sessions SET state = 'aborted' WHERE id = 'done'"}, `session "done": state aborted`},
		{"reason rewritten", []string{"UPDATE sessions SET reason = 'other' WHERE id = 'cut'"}, `session "cut": reason differs`},
		{"spec rewritten", []string{"UPDATE sessions SET spec = x'00' WHERE id = 'new'"}, `session "new": spec differs`},
		{"running set back", []string{"UPDATE sessions SET state = 'created' WHERE id = 'live'"}, `session "live": state created with 1 running`},
		{"session inserted", []string{"INSERT INTO sessions (id, spec, state, reason, created, updated) VALUES ('ghost', x'', 'created', '', '2026-01-01T00:00:00.000000000Z', '2026-01-01T00:00:00.000000000Z')"}, `session "ghost": no single session.created event`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			path := historyFixture(t)
			db, err := sql.Open("sqlite", path)
			require.NoError(t, err)
			for _, trig := range []string{"sessions_no_delete", "sessions_forward", "sessions_insert", "results_no_update", "results_no_delete"} {
				exec(t, db, "DROP TRIGGER "+trig)
			}
			for _, q := range tc.tamper {
				exec(t, db, q)
			}
			require.NoError(t, db.Close())

			s, err := Open(ctx, path)
			require.NoError(t, err)
			defer s.Close()
			_, err = s.VerifyAudit(ctx)
			require.ErrorIs(t, err, ErrTampered)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// A version 1 database (before the history triggers) is migrated on Open:
// its sessions stay, and the triggers then hold.
func TestMigrateV1(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open("sqlite", dsn(path))
	require.NoError(t, err)
	exec(t, db, schema)
	exec(t, db, "PRAGMA user_version = 1")
	require.NoError(t, db.Close())

	s, err := Open(ctx, path)
	require.NoError(t, err)
	require.NoError(t, s.CreateSession(ctx, "old", []byte("spec"), "admin"))
	require.NoError(t, s.Close())

	db, err = sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	var v int
	require.NoError(t, db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v))
	require.Equal(t, SchemaVersion, v)
	_, err = db.ExecContext(ctx, "DELETE FROM sessions")
	require.ErrorContains(t, err, "no delete")
}
