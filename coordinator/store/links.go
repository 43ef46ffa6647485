package store

import (
	"context"
	"database/sql"
	"fmt"
)

// sessionEvents are the store's own audit events of one session, in order.
type sessionEvents struct {
	kinds   []string
	details []string
	seqs    []int64
}

func (se *sessionEvents) count(kind string) int {
	n := 0
	for _, k := range se.kinds {
		if k == kind {
			n++
		}
	}
	return n
}

// detail returns the detail of the session's only event of kind.
func (se *sessionEvents) detail(kind string) string {
	for i, k := range se.kinds {
		if k == kind {
			return se.details[i]
		}
	}
	return ""
}

// verifyLinks checks, in the verification's read transaction, that the
// sessions and results tables agree with the audit chain: every session has
// exactly the state events its state implies (created with its spec's
// digest, first; running; released with its result's digest; aborted with
// its reason), every result belongs to a completed session and every
// session event names a session that exists. A session or result deleted,
// replaced or moved with the triggers dropped shows up here.
func verifyLinks(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, "SELECT seq, kind, session, detail FROM audit WHERE kind IN (?, ?, ?, ?) ORDER BY seq",
		KindSessionCreated, KindSessionRunning, KindSessionReleased, KindSessionAborted)
	if err != nil {
		return err
	}
	events := map[string]*sessionEvents{}
	for rows.Next() {
		var (
			seq                   int64
			kind, session, detail string
		)
		if err := rows.Scan(&seq, &kind, &session, &detail); err != nil {
			rows.Close()
			return err
		}
		se := events[session]
		if se == nil {
			se = &sessionEvents{}
			events[session] = se
		}
		se.kinds, se.details, se.seqs = append(se.kinds, kind), append(se.details, detail), append(se.seqs, seq)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if err := rows.Err(); err != nil {
		return err
	}

	rows, err = tx.QueryContext(ctx, `SELECT s.id, s.spec, s.state, s.reason, r.result IS NOT NULL, r.result
		FROM sessions s LEFT JOIN results r ON r.session = s.id ORDER BY s.id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	seen := map[string]bool{}
	for rows.Next() {
		var (
			id, state, reason string
			spec, result      []byte
			hasResult         bool
		)
		if err := rows.Scan(&id, &spec, &state, &reason, &hasResult, &result); err != nil {
			return err
		}
		seen[id] = true
		if err := checkSession(id, spec, state, reason, hasResult, result, events[id]); err != nil {
			return fmt.Errorf("session %q: %w: %w", id, err, ErrTampered)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for id, se := range events {
		if !seen[id] {
			return fmt.Errorf("seq %d: event %s of session %q, which is not in the sessions table: %w", se.seqs[0], se.kinds[0], id, ErrTampered)
		}
	}
	var orphans int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM results WHERE session NOT IN (SELECT id FROM sessions)").Scan(&orphans); err != nil {
		return err
	}
	if orphans > 0 {
		return fmt.Errorf("%d results without their session: %w", orphans, ErrTampered)
	}
	return nil
}

// checkSession checks one session row against its events.
func checkSession(id string, spec []byte, state, reason string, hasResult bool, result []byte, se *sessionEvents) error {
	if se == nil || len(se.kinds) == 0 || se.kinds[0] != KindSessionCreated || se.count(KindSessionCreated) != 1 {
		return fmt.Errorf("no single %s event first", KindSessionCreated)
	}
	if se.details[0] != digest(spec) {
		return fmt.Errorf("spec differs from the digest in its %s event", KindSessionCreated)
	}
	running, released, aborted := se.count(KindSessionRunning), se.count(KindSessionReleased), se.count(KindSessionAborted)
	want := map[string][3]int{ // running, released, aborted
		StateCreated:   {0, 0, 0},
		StateRunning:   {1, 0, 0},
		StateCompleted: {1, 1, 0},
	}
	switch w, ok := want[state]; {
	case state == StateAborted:
		if running > 1 || released != 0 || aborted != 1 {
			return fmt.Errorf("state aborted with %d running, %d released and %d aborted events", running, released, aborted)
		}
		if se.detail(KindSessionAborted) != reason {
			return fmt.Errorf("reason differs from its %s event", KindSessionAborted)
		}
	case !ok:
		return fmt.Errorf("unknown state %q", state)
	case w != [3]int{running, released, aborted}:
		return fmt.Errorf("state %s with %d running, %d released and %d aborted events", state, running, released, aborted)
	}
	switch {
	case hasResult != (state == StateCompleted):
		return fmt.Errorf("state %s with a result: %v", state, hasResult)
	case hasResult && se.detail(KindSessionReleased) != digest(result):
		return fmt.Errorf("result differs from the digest in its %s event", KindSessionReleased)
	}
	return nil
}
