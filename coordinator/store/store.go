package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	// The pure-Go SQLite driver registers itself as "sqlite". This blank
	// import is allowed in this package only.
	_ "modernc.org/sqlite"
)

// SchemaVersion is the schema version this package writes and reads, kept in
// PRAGMA user_version. Version 2 added the triggers that keep sessions'
// history (no delete, forward-only state changes, no replacing rows); Open
// migrates a version 1 database.
const SchemaVersion = 2

// DefaultBusyTimeout is how long a connection waits for a lock held by
// another connection before failing with SQLITE_BUSY.
const DefaultBusyTimeout = 10 * time.Second

var (
	// ErrNotFound reports that the session or result does not exist. Check
	// with errors.Is; it is not worth retrying.
	ErrNotFound = errors.New("store: not found")
	// ErrExists reports that a session with that ID already exists. Check
	// with errors.Is; choose another ID.
	ErrExists = errors.New("store: already exists")
	// ErrTampered reports that the audit log or chain head does not verify:
	// the database was modified outside this package, or is corrupt. The
	// error names the first bad sequence number. Do not retry; investigate.
	ErrTampered = errors.New("store: audit log tampered")
	// ErrState reports a session state transition that is not allowed, such
	// as completing a session that is not running or aborting a completed
	// one. Check with errors.Is; the session is unchanged.
	ErrState = errors.New("store: invalid state transition")
	// ErrSchemaVersion reports a database written by a newer version of this
	// package. Open refuses it; upgrade the binary.
	ErrSchemaVersion = errors.New("store: unsupported schema version")
	// ErrNotDatabase reports that the file is not a database of this
	// package: empty (0 bytes), not SQLite, or SQLite without our schema.
	// Open refuses it so that a truncated or mistyped --db never starts an
	// empty history; [Options.Init] accepts an empty file or an empty
	// SQLite database, never a file that holds something else.
	ErrNotDatabase = errors.New("store: not an mpsi database")
)

// Options are the options of [OpenWith].
type Options struct {
	// Init allows initialising an existing empty file (0 bytes) or an
	// empty SQLite database (no schema) as a new database. A missing file
	// is always created.
	Init bool
	// ReadOnly opens the database read-only (SQLite mode=ro, query_only):
	// nothing is migrated or written, and every write fails. The database
	// must exist and have schema version [SchemaVersion].
	ReadOnly bool
}

// sqliteHeader starts every SQLite 3 database file.
const sqliteHeader = "SQLite format 3\x00"

// Store is the coordinator's database. It is safe for concurrent use by
// multiple goroutines. Reads run concurrently; writes are serialized (SQLite
// allows one writer at a time).
type Store struct {
	db *sql.DB

	// writer holds a token while one of this Store's write transactions
	// runs, so that writers queue here (and give up when their context is
	// done) rather than in SQLite's busy handler, which polls with sleeps.
	// BEGIN IMMEDIATE and the busy timeout still order them against other
	// connections to the same file.
	writer chan struct{}
}

// Open opens the database at path, creating the file and the schema if they
// are absent. It refuses a database whose schema version is newer than
// [SchemaVersion] with an error wrapping [ErrSchemaVersion].
//
// path is a file name; it must not be empty, ":memory:", start with "file:"
// or contain '?'. The caller must Close the Store.
//
// An existing file that is empty, not SQLite, or SQLite without this
// package's schema is refused with an error wrapping [ErrNotDatabase]; see
// [OpenWith] and [Options.Init].
func Open(ctx context.Context, path string) (*Store, error) {
	return OpenWith(ctx, path, Options{})
}

// OpenWith is [Open] with options.
func OpenWith(ctx context.Context, path string, o Options) (*Store, error) {
	if !plainPath(path) {
		return nil, fmt.Errorf("store: open %q: unsupported path", path)
	}
	fresh, err := checkFile(path, o)
	if err != nil {
		return nil, fmt.Errorf("store: open %q: %w", path, err)
	}
	name := dsn(path)
	if o.ReadOnly {
		name = dsnReadOnly(path)
	}
	db, err := sql.Open("sqlite", name)
	if err != nil {
		return nil, fmt.Errorf("store: open %q: %w", path, err)
	}
	s := &Store{db: db, writer: make(chan struct{}, 1)}
	if o.ReadOnly {
		err = s.checkVersion(ctx)
	} else {
		err = s.migrate(ctx, fresh || o.Init)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %q: %w", path, err)
	}
	return s, nil
}

// checkFile looks at the file before SQLite does: it reports whether the
// file is missing (to be created), and refuses an empty file (unless
// o.Init) or a file without the SQLite header.
func checkFile(path string, o Options) (fresh bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && !o.ReadOnly {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	head := make([]byte, len(sqliteHeader))
	n, err := io.ReadFull(f, head)
	switch {
	case n == 0 && (err == io.EOF):
		if fi, werr := os.Stat(path + "-wal"); werr == nil && fi.Size() > 0 {
			return false, nil // the content is still in the write-ahead log
		}
		if o.Init && !o.ReadOnly {
			return true, nil
		}
		return false, fmt.Errorf("%w: the file is empty (0 bytes); start with --init to initialise it as a new database", ErrNotDatabase)
	case err != nil && !errors.Is(err, io.ErrUnexpectedEOF):
		return false, err
	case string(head[:n]) != sqliteHeader:
		return false, fmt.Errorf("%w: the file is not an SQLite database", ErrNotDatabase)
	}
	return false, nil
}

// checkVersion refuses a read-only database whose schema is not
// [SchemaVersion] (it cannot be migrated without writing).
func (s *Store) checkVersion(ctx context.Context) error {
	var v int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	switch {
	case v == 0:
		return fmt.Errorf("%w: no schema", ErrNotDatabase)
	case v != SchemaVersion:
		return fmt.Errorf("database has version %d, a read-only open needs %d (open it read-write once to migrate): %w", v, SchemaVersion, ErrSchemaVersion)
	}
	return nil
}

// plainPath reports whether path is a file name that SQLite and the driver
// take literally: not empty, not in-memory, not a URI and without a query.
func plainPath(path string) bool {
	return path != "" && path != ":memory:" && !strings.HasPrefix(path, "file:") && !strings.ContainsRune(path, '?')
}

// dsn builds the driver's data source name: a plain file name followed by
// the query parameters documented by modernc.org/sqlite. _txlock=immediate
// makes every read-write transaction take the write lock at BEGIN, so two
// writers never deadlock on a lock upgrade; read-only transactions stay
// deferred.
func dsn(path string) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", DefaultBusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	return path + "?" + q.Encode()
}

// dsnReadOnly is the data source name of a read-only open: a file: URI
// with SQLite's mode=ro, and query_only as a second guard.
func dsnReadOnly(path string) string {
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", DefaultBusyTimeout.Milliseconds()))
	q.Add("_pragma", "query_only(1)")
	return "file:" + strings.NewReplacer("%", "%25", "#", "%23").Replace(path) + "?" + q.Encode()
}

// schema is version 1 of the database schema. Times are TEXT in RFC 3339,
// UTC; see sortableLayout.
const schema = `
CREATE TABLE sessions (
	id      TEXT PRIMARY KEY NOT NULL,
	spec    BLOB NOT NULL,
	state   TEXT NOT NULL CHECK (state IN ('created', 'running', 'completed', 'aborted')),
	reason  TEXT NOT NULL DEFAULT '',
	created TEXT NOT NULL,
	updated TEXT NOT NULL
) STRICT;

CREATE INDEX sessions_state ON sessions(state);

-- Completed and aborted are final.
CREATE TRIGGER sessions_final BEFORE UPDATE ON sessions
WHEN OLD.state IN ('completed', 'aborted')
BEGIN
	SELECT RAISE(ABORT, 'session is final');
END;

CREATE TABLE results (
	session   TEXT PRIMARY KEY NOT NULL REFERENCES sessions(id),
	result    BLOB NOT NULL,
	signature BLOB NOT NULL,
	created   TEXT NOT NULL
) STRICT;

CREATE TRIGGER results_no_update BEFORE UPDATE ON results
BEGIN
	SELECT RAISE(ABORT, 'results are immutable');
END;

CREATE TRIGGER results_no_delete BEFORE DELETE ON results
BEGIN
	SELECT RAISE(ABORT, 'results are immutable');
END;

CREATE TABLE audit (
	seq     INTEGER PRIMARY KEY,
	time    TEXT NOT NULL,
	kind    TEXT NOT NULL,
	session TEXT NOT NULL,
	actor   TEXT NOT NULL,
	detail  TEXT NOT NULL,
	prev    BLOB NOT NULL,
	hash    BLOB NOT NULL
) STRICT;

CREATE INDEX audit_session ON audit(session);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
	SELECT RAISE(ABORT, 'audit log is append-only');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
	SELECT RAISE(ABORT, 'audit log is append-only');
END;

CREATE TABLE audit_head (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL,
	hash BLOB NOT NULL
) STRICT;

INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, zeroblob(32));

-- Events are appended in sequence, and the head only moves forward by one.
CREATE TRIGGER audit_in_sequence BEFORE INSERT ON audit
WHEN NEW.seq IS NOT (SELECT seq + 1 FROM audit_head WHERE id = 1)
BEGIN
	SELECT RAISE(ABORT, 'audit event out of sequence');
END;

CREATE TRIGGER audit_head_forward BEFORE UPDATE ON audit_head
WHEN NEW.seq IS NOT OLD.seq + 1 OR NEW.id IS NOT OLD.id
BEGIN
	SELECT RAISE(ABORT, 'audit head only moves forward');
END;

CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN
	SELECT RAISE(ABORT, 'audit head cannot be deleted');
END;
`

// schemaV2 makes every table that holds history refuse to lose it, against
// plain SQL on the file (the sqlite3 client, with foreign keys off):
// sessions are never deleted, their id, spec and creation time never change,
// their state only moves forward (created → running | aborted, running →
// completed | aborted) and a reason is only set with the move to aborted;
// INSERT OR REPLACE, which deletes without firing delete triggers, cannot
// replace a session, a result or the chain head; a result is only inserted
// for a completed session. Dropping the triggers stays possible for whoever
// can write the file: [Store.VerifyAudit] then finds sessions and results
// whose audit events do not match.
const schemaV2 = `
DROP TRIGGER sessions_final;

CREATE TRIGGER sessions_no_delete BEFORE DELETE ON sessions
BEGIN
	SELECT RAISE(ABORT, 'sessions are history: no delete');
END;

CREATE TRIGGER sessions_forward BEFORE UPDATE ON sessions
WHEN NOT (NEW.id IS OLD.id AND NEW.spec IS OLD.spec AND NEW.created IS OLD.created
	AND ((OLD.state = 'created' AND NEW.state IN ('running', 'aborted'))
		OR (OLD.state = 'running' AND NEW.state IN ('completed', 'aborted')))
	AND (NEW.state = 'aborted' OR NEW.reason = ''))
BEGIN
	SELECT RAISE(ABORT, 'sessions only move forward');
END;

CREATE TRIGGER sessions_insert BEFORE INSERT ON sessions
WHEN EXISTS (SELECT 1 FROM sessions WHERE id = NEW.id) OR NEW.state IS NOT 'created' OR NEW.reason IS NOT ''
BEGIN
	SELECT RAISE(ABORT, 'sessions are created once, in state created');
END;

CREATE TRIGGER results_insert BEFORE INSERT ON results
WHEN EXISTS (SELECT 1 FROM results WHERE session = NEW.session)
	OR (SELECT state FROM sessions WHERE id = NEW.session) IS NOT 'completed'
BEGIN
	SELECT RAISE(ABORT, 'results are immutable, one per completed session');
END;

CREATE TRIGGER audit_head_no_insert BEFORE INSERT ON audit_head
BEGIN
	SELECT RAISE(ABORT, 'audit head cannot be replaced');
END;
`

// migrations[v] takes a database from version v-1 to v.
var migrations = []string{1: schema, 2: schemaV2}

// migrate creates the schema in a new database, brings an older one up to
// [SchemaVersion], and refuses a newer one.
//
// A database at version 0 (no schema) is initialised only when init is set:
// the file was just created, or the operator asked for it.
func (s *Store) migrate(ctx context.Context, init bool) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var v int
		if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			return fmt.Errorf("reading schema version: %w", err)
		}
		switch {
		case v == SchemaVersion:
			return nil
		case v == 0 && !init:
			return fmt.Errorf("%w: SQLite without an mpsi schema; start with --init to initialise it", ErrNotDatabase)
		case v < 0 || v > SchemaVersion:
			return fmt.Errorf("database has version %d, this build supports %d: %w", v, SchemaVersion, ErrSchemaVersion)
		}
		for next := v + 1; next <= SchemaVersion; next++ {
			if _, err := tx.ExecContext(ctx, migrations[next]); err != nil {
				return fmt.Errorf("creating schema version %d: %w", next, err)
			}
		}
		// PRAGMA takes no bound parameters; SchemaVersion is a constant.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion)); err != nil {
			return fmt.Errorf("setting schema version: %w", err)
		}
		return nil
	})
}

// Close closes the database. Calls in flight may fail.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Backup writes a consistent copy of the database to path with VACUUM INTO,
// while the Store stays in use. path must not exist yet (or be an empty
// file), and the same restrictions as for [Open] apply to it. The copy is
// synced to disk before Backup returns; it can be opened with [Open].
func (s *Store) Backup(ctx context.Context, path string) error {
	if !plainPath(path) {
		return fmt.Errorf("store: backup to %q: unsupported path", path)
	}
	if _, err := s.db.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		return fmt.Errorf("store: backup to %q: %w", path, err)
	}
	if err := syncFile(path); err != nil {
		return fmt.Errorf("store: backup to %q: %w", path, err)
	}
	return nil
}

// syncFile flushes path and its directory to stable storage.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	// Syncing a directory is not supported everywhere; the file itself is
	// durable at this point.
	_ = d.Sync()
	return nil
}

// inTx runs fn in a read-write (IMMEDIATE) transaction and commits it if fn
// returns nil; otherwise it rolls back and returns fn's error.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	select {
	case s.writer <- struct{}{}:
		defer func() { <-s.writer }()
	case <-ctx.Done():
		return ctx.Err()
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Times are stored as TEXT, always in UTC. Audit event times use
// time.RFC3339Nano, as hashed into the chain (see the package documentation).
// Session and result times use sortableLayout, RFC 3339 with exactly nine
// fractional digits, so that ORDER BY on the text is chronological.
const sortableLayout = "2006-01-02T15:04:05.000000000Z07:00"

// formatTime formats an audit event time.
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// parseTime parses a time written by formatTime and reports whether it is
// in that canonical form.
func parseTime(s string) (time.Time, bool) {
	return parseLayout(time.RFC3339Nano, s)
}

// formatSortable formats a session or result time.
func formatSortable(t time.Time) string {
	return t.UTC().Format(sortableLayout)
}

// parseSortable parses a time written by formatSortable and reports whether
// it is in that canonical form.
func parseSortable(s string) (time.Time, bool) {
	return parseLayout(sortableLayout, s)
}

func parseLayout(layout, s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	t = t.UTC()
	return t, t.Format(layout) == s
}

// now returns the current time in UTC without a monotonic reading.
func now() time.Time {
	return time.Now().UTC().Round(0)
}
