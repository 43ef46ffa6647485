package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Session states. A session starts as StateCreated, moves to StateRunning
// and ends as StateCompleted or StateAborted; the last two are final.
const (
	StateCreated   = "created"
	StateRunning   = "running"
	StateCompleted = "completed"
	StateAborted   = "aborted"
)

// Audit event kinds the store appends itself, in the same transaction as the
// change they record. Callers append other kinds (such as "party.joined")
// with [Store.Append].
const (
	KindSessionCreated  = "session.created"  // detail: "sha256:" + hex SHA-256 of the spec
	KindSessionRunning  = "session.running"  // detail: empty
	KindSessionReleased = "session.released" // detail: "sha256:" + hex SHA-256 of the result
	KindSessionAborted  = "session.aborted"  // detail: the reason
)

// ActorCoordinator is the actor of the audit events the store appends for
// transitions made by the coordinator itself.
const ActorCoordinator = "coordinator"

// Session is a stored session. Spec is the session specification as given to
// [Store.CreateSession]; it holds public parameters only.
type Session struct {
	ID      string
	Spec    []byte
	State   string // one of the State* constants
	Reason  string // why the session was aborted; empty otherwise
	Created time.Time
	Updated time.Time // time of the last state change
}

// digest is how audit details refer to specs and results.
func digest(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// CreateSession stores a new session with the given spec in state
// [StateCreated] and appends a [KindSessionCreated] event by actor, in one
// transaction. It returns an error wrapping [ErrExists] if id is taken.
// id must not be empty.
func (s *Store) CreateSession(ctx context.Context, id string, spec []byte, actor string) error {
	if id == "" {
		return errors.New("store: create session: empty id")
	}
	if spec == nil {
		spec = []byte{}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, "SELECT 1 FROM sessions WHERE id = ?", id).Scan(&one)
		switch {
		case err == nil:
			return ErrExists
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		t := now()
		if _, err := tx.ExecContext(ctx,
			"INSERT INTO sessions (id, spec, state, reason, created, updated) VALUES (?, ?, ?, '', ?, ?)",
			id, spec, StateCreated, formatSortable(t), formatSortable(t)); err != nil {
			return err
		}
		_, err = appendTx(ctx, tx, t, KindSessionCreated, id, actor, digest(spec))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: create session %q: %w", id, err)
	}
	return nil
}

// Session returns the session with the given id, or an error wrapping
// [ErrNotFound].
func (s *Store) Session(ctx context.Context, id string) (*Session, error) {
	row := s.db.QueryRowContext(ctx,
		"SELECT id, spec, state, reason, created, updated FROM sessions WHERE id = ?", id)
	ss, err := scanSession(row)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: session %q: %w", id, err)
	}
	return ss, nil
}

// Sessions returns all sessions, oldest first.
func (s *Store) Sessions(ctx context.Context) ([]Session, error) {
	rows, err := s.db.QueryContext(ctx,
		"SELECT id, spec, state, reason, created, updated FROM sessions ORDER BY created, id")
	if err != nil {
		return nil, fmt.Errorf("store: sessions: %w", err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		ss, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("store: sessions: %w", err)
		}
		out = append(out, *ss)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: sessions: %w", err)
	}
	return out, nil
}

func scanSession(row interface{ Scan(...any) error }) (*Session, error) {
	var (
		ss               Session
		created, updated string
	)
	if err := row.Scan(&ss.ID, &ss.Spec, &ss.State, &ss.Reason, &created, &updated); err != nil {
		return nil, err
	}
	var ok1, ok2 bool
	ss.Created, ok1 = parseSortable(created)
	ss.Updated, ok2 = parseSortable(updated)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("session %q: malformed time", ss.ID)
	}
	if ss.Spec == nil {
		ss.Spec = []byte{}
	}
	return &ss, nil
}

// transition moves session id from one of the states in from to state to and
// records reason, in tx. It returns ErrNotFound, or ErrState wrapped.
func transition(ctx context.Context, tx *sql.Tx, t time.Time, id string, from []string, to, reason string) error {
	var state string
	err := tx.QueryRowContext(ctx, "SELECT state FROM sessions WHERE id = ?", id).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if !slices.Contains(from, state) {
		return fmt.Errorf("%s -> %s: %w", state, to, ErrState)
	}
	_, err = tx.ExecContext(ctx,
		"UPDATE sessions SET state = ?, reason = ?, updated = ? WHERE id = ?",
		to, reason, formatSortable(t), id)
	return err
}

// SetRunning moves session id from [StateCreated] to [StateRunning] and
// appends a [KindSessionRunning] event, in one transaction. It returns an
// error wrapping [ErrNotFound] or [ErrState].
func (s *Store) SetRunning(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		t := now()
		if err := transition(ctx, tx, t, id, []string{StateCreated}, StateRunning, ""); err != nil {
			return err
		}
		_, err := appendTx(ctx, tx, t, KindSessionRunning, id, ActorCoordinator, "")
		return err
	})
	if err != nil {
		return fmt.Errorf("store: start session %q: %w", id, err)
	}
	return nil
}

// Abort moves session id from [StateCreated] or [StateRunning] to
// [StateAborted] with the given reason and appends a [KindSessionAborted]
// event carrying the reason, in one transaction. It returns an error wrapping
// [ErrNotFound], or [ErrState] if the session is already completed or
// aborted. The reason goes into the audit log: it must not contain secrets.
func (s *Store) Abort(ctx context.Context, id, reason string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		t := now()
		if err := transition(ctx, tx, t, id, []string{StateCreated, StateRunning}, StateAborted, reason); err != nil {
			return err
		}
		_, err := appendTx(ctx, tx, t, KindSessionAborted, id, ActorCoordinator, reason)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: abort session %q: %w", id, err)
	}
	return nil
}

// Complete moves session id from [StateRunning] to [StateCompleted], stores
// its result and the signature over it, and appends a [KindSessionReleased]
// event carrying the SHA-256 of the result, all in one transaction: either
// all of it is stored or none. It returns an error wrapping [ErrNotFound] or
// [ErrState].
func (s *Store) Complete(ctx context.Context, id string, result, signature []byte) error {
	if result == nil {
		result = []byte{}
	}
	if signature == nil {
		signature = []byte{}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		t := now()
		if err := transition(ctx, tx, t, id, []string{StateRunning}, StateCompleted, ""); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			"INSERT INTO results (session, result, signature, created) VALUES (?, ?, ?, ?)",
			id, result, signature, formatSortable(t)); err != nil {
			return err
		}
		_, err := appendTx(ctx, tx, t, KindSessionReleased, id, ActorCoordinator, digest(result))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: complete session %q: %w", id, err)
	}
	return nil
}

// Result returns the result and signature stored by [Store.Complete] for
// session id, or an error wrapping [ErrNotFound] if there is none (the
// session does not exist or has not completed).
func (s *Store) Result(ctx context.Context, id string) (result, signature []byte, err error) {
	err = s.db.QueryRowContext(ctx,
		"SELECT result, signature FROM results WHERE session = ?", id).Scan(&result, &signature)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("store: result of session %q: %w", id, err)
	}
	if result == nil {
		result = []byte{}
	}
	if signature == nil {
		signature = []byte{}
	}
	return result, signature, nil
}

// AbortInterrupted aborts, with the given reason, every session that is
// still created or running, appending a [KindSessionAborted] event for each,
// all in one transaction. The coordinator calls it at startup, when no
// session can be in progress. It returns the aborted session ids in sorted
// order.
func (s *Store) AbortInterrupted(ctx context.Context, reason string) ([]string, error) {
	var ids []string
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ids = nil
		rows, err := tx.QueryContext(ctx,
			"SELECT id FROM sessions WHERE state IN (?, ?) ORDER BY id", StateCreated, StateRunning)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return err
		}
		rows.Close()
		t := now()
		for _, id := range ids {
			if err := transition(ctx, tx, t, id, []string{StateCreated, StateRunning}, StateAborted, reason); err != nil {
				return fmt.Errorf("session %q: %w", id, err)
			}
			if _, err := appendTx(ctx, tx, t, KindSessionAborted, id, ActorCoordinator, reason); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: abort interrupted sessions: %w", err)
	}
	return ids, nil
}
