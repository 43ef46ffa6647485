package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// labelAuditEvent separates audit event hashes from every other hash in
// mpsi.
const labelAuditEvent = "mpsi/v1/coordinator/audit-event"

// HashSize is the size of an audit event hash (SHA-256).
const HashSize = sha256.Size

// Event is one entry of the audit log. Prev is the Hash of the event before
// it (HashSize zero bytes for the first), and Hash covers all other fields;
// see the package documentation for the encoding.
type Event struct {
	Seq     int64     // 1, 2, 3, ... in append order
	Time    time.Time // UTC
	Kind    string    // e.g. "session.created", "party.joined"
	Session string    // session id, or "" for events not tied to a session
	Actor   string    // who caused the event, e.g. a party name or "coordinator"
	Detail  string    // free text; never secret
	Prev    []byte
	Hash    []byte
}

// encodeEvent is the unambiguous encoding hashed into an event's Hash: the
// label, the sequence number as 8 bytes big-endian, then each remaining field
// as an 8-byte big-endian length followed by its bytes.
func encodeEvent(seq int64, ts, kind, session, actor, detail string, prev []byte) []byte {
	n := 8 + len(labelAuditEvent) + 8 + 6*8 + len(ts) + len(kind) + len(session) + len(actor) + len(detail) + len(prev)
	b := make([]byte, 0, n)
	b = appendField(b, []byte(labelAuditEvent))
	b = binary.BigEndian.AppendUint64(b, uint64(seq))
	for _, f := range []string{ts, kind, session, actor, detail} {
		b = appendField(b, []byte(f))
	}
	return appendField(b, prev)
}

func appendField(b, f []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(len(f)))
	return append(b, f...)
}

// eventHash returns the hash of the event with the given fields; ts is the
// time as written by formatTime.
func eventHash(seq int64, ts, kind, session, actor, detail string, prev []byte) []byte {
	h := sha256.Sum256(encodeEvent(seq, ts, kind, session, actor, detail, prev))
	return h[:]
}

// appendTx appends an event at time t in tx and moves the chain head.
func appendTx(ctx context.Context, tx *sql.Tx, t time.Time, kind, session, actor, detail string) (int64, error) {
	var (
		seq  int64
		prev []byte
	)
	if err := tx.QueryRowContext(ctx, "SELECT seq, hash FROM audit_head WHERE id = 1").Scan(&seq, &prev); err != nil {
		return 0, fmt.Errorf("reading audit head: %w", err)
	}
	if len(prev) != HashSize {
		return 0, fmt.Errorf("audit head at seq %d: malformed hash: %w", seq, ErrTampered)
	}
	seq++
	ts := formatTime(t)
	h := eventHash(seq, ts, kind, session, actor, detail, prev)
	if _, err := tx.ExecContext(ctx,
		"INSERT INTO audit (seq, time, kind, session, actor, detail, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		seq, ts, kind, session, actor, detail, prev, h); err != nil {
		return 0, fmt.Errorf("appending audit event %d: %w", seq, err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", seq, h); err != nil {
		return 0, fmt.Errorf("moving audit head to %d: %w", seq, err)
	}
	return seq, nil
}

// Append appends an event of the given kind to the audit log, for example
// kind "party.joined" with the session id and the party as actor. session
// may be empty for events not tied to a session; kind may not. None of the
// strings may contain secrets.
func (s *Store) Append(ctx context.Context, kind, session, actor, detail string) error {
	if kind == "" {
		return errors.New("store: append audit event: empty kind")
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := appendTx(ctx, tx, now(), kind, session, actor, detail)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: append audit event %q: %w", kind, err)
	}
	return nil
}

// Events returns the audit events of the given session in order, or all
// events if session is "". It does not verify the chain; see
// [Store.VerifyAudit].
func (s *Store) Events(ctx context.Context, session string) ([]Event, error) {
	const cols = "SELECT seq, time, kind, session, actor, detail, prev, hash FROM audit"
	var (
		rows *sql.Rows
		err  error
	)
	if session == "" {
		rows, err = s.db.QueryContext(ctx, cols+" ORDER BY seq")
	} else {
		rows, err = s.db.QueryContext(ctx, cols+" WHERE session = ? ORDER BY seq", session)
	}
	if err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e, _, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("store: events: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	return out, nil
}

// scanEvent reads one audit row. It also returns the time exactly as stored.
// A NULL or malformed field is reported as ErrTampered.
func scanEvent(rows *sql.Rows) (Event, string, error) {
	var (
		e                           Event
		ts, kind, sess, act, detail sql.NullString
	)
	if err := rows.Scan(&e.Seq, &ts, &kind, &sess, &act, &detail, &e.Prev, &e.Hash); err != nil {
		return Event{}, "", err
	}
	if !ts.Valid || !kind.Valid || !sess.Valid || !act.Valid || !detail.Valid {
		return Event{}, "", fmt.Errorf("seq %d: NULL field: %w", e.Seq, ErrTampered)
	}
	t, ok := parseTime(ts.String)
	if !ok {
		return Event{}, "", fmt.Errorf("seq %d: malformed time: %w", e.Seq, ErrTampered)
	}
	e.Time, e.Kind, e.Session, e.Actor, e.Detail = t, kind.String, sess.String, act.String, detail.String
	return e, ts.String, nil
}

// Head returns the sequence number and hash of the last audit event (0 and
// HashSize zero bytes if the log is empty). Publishing or signing the head
// outside the database lets a later [Store.VerifyAudit] plus a comparison
// with the published head detect a rewritten chain.
func (s *Store) Head(ctx context.Context) (seq int64, hash []byte, err error) {
	err = s.db.QueryRowContext(ctx, "SELECT seq, hash FROM audit_head WHERE id = 1").Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("chain head missing: %w", ErrTampered)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("store: audit head: %w", err)
	}
	return seq, hash, nil
}

// VerifyAudit recomputes the audit chain from the first event to the chain
// head in one consistent read. It returns the number of events verified, or
// an error wrapping [ErrTampered] that names the first bad sequence number if
// any event was altered, reordered, inserted or removed, or the head does not
// match the last event. It then checks the sessions and results tables
// against the chain (see verifyLinks): a session or result without its
// audit events, or whose spec, state, reason or result differs from what
// they record, is reported wrapping [ErrTampered] with the session's id.
func (s *Store) VerifyAudit(ctx context.Context) (int, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("store: verify audit: %w", err)
	}
	defer tx.Rollback()
	n, err := verifyChain(ctx, tx)
	if err == nil {
		err = verifyLinks(ctx, tx)
	}
	if err != nil {
		return n, fmt.Errorf("store: verify audit: %w", err)
	}
	return n, nil
}

func verifyChain(ctx context.Context, tx *sql.Tx) (int, error) {
	var (
		headSeq  int64
		headHash []byte
	)
	// Reading the head first starts the read transaction's snapshot.
	err := tx.QueryRowContext(ctx, "SELECT seq, hash FROM audit_head WHERE id = 1").Scan(&headSeq, &headHash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("chain head missing: %w", ErrTampered)
	}
	if err != nil {
		return 0, err
	}
	rows, err := tx.QueryContext(ctx,
		"SELECT seq, time, kind, session, actor, detail, prev, hash FROM audit ORDER BY seq")
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var (
		n    int
		want = int64(1)
		prev = make([]byte, HashSize)
	)
	for rows.Next() {
		e, ts, err := scanEvent(rows)
		if err != nil {
			return n, err
		}
		switch {
		case e.Seq != want:
			return n, fmt.Errorf("seq %d: expected seq %d: %w", e.Seq, want, ErrTampered)
		case e.Seq > headSeq:
			return n, fmt.Errorf("seq %d: beyond chain head %d: %w", e.Seq, headSeq, ErrTampered)
		case !bytes.Equal(e.Prev, prev):
			return n, fmt.Errorf("seq %d: prev does not match the hash of seq %d: %w", e.Seq, e.Seq-1, ErrTampered)
		case !bytes.Equal(e.Hash, eventHash(e.Seq, ts, e.Kind, e.Session, e.Actor, e.Detail, e.Prev)):
			return n, fmt.Errorf("seq %d: hash mismatch: %w", e.Seq, ErrTampered)
		}
		prev = e.Hash
		want++
		n++
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	last := want - 1
	switch {
	case headSeq != last:
		return n, fmt.Errorf("seq %d: missing, chain head is at %d: %w", want, headSeq, ErrTampered)
	case !bytes.Equal(headHash, prev):
		return n, fmt.Errorf("seq %d: hash differs from chain head: %w", last, ErrTampered)
	}
	return n, nil
}
