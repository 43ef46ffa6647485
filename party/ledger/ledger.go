// Package ledger is a hospital's own privacy-budget ledger: a small SQLite
// file (pure-Go driver modernc.org/sqlite) beside the party, in which every
// session that asks for differentially private aggregates is charged, per
// dataset and per set of partners, before any of the hospital's data
// leaves. A session that would take the spend past the hospital's budget is
// refused. The ledger runs on the hospital's side, so no coordinator can
// bypass it; the coordinator's own view of budgets (if any) is advisory.
//
// Spending is kept in zero-concentrated DP: a session with privacy
// (ε, δ) costs ρ = [session.RhoFor](ε, δ), ρ's add up across sessions
// exactly, and a budget (ε_B, δ_B) allows ρ_B = RhoFor(ε_B, δ_B) in total,
// so the released aggregates of all sessions together are (ε_B, δ_B)-DP
// for each patient of the dataset (given the partners). Every admission
// is charged, even of a session id seen before: a session run twice draws
// fresh noise twice.
//
// The package is separate from package party so that a program built on
// party alone links no SQLite; cmd/mpsi's party command uses it when the
// policy sets a privacy_budget.
package ledger

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, "sqlite"

	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// ErrExceeded reports a session refused because its charge would take the
// spend of its dataset and partners past the budget. Nothing is charged.
var ErrExceeded = errors.New("ledger: privacy budget exceeded")

// ErrNoPrivacy reports a session that reveals aggregates without privacy
// (noise) while a budget is kept: its loss is unbounded.
var ErrNoPrivacy = errors.New("ledger: aggregates without privacy cannot be charged")

// Ledger is an open ledger file. It is safe for concurrent use; charges
// are serialised by SQLite (BEGIN IMMEDIATE), also across processes.
type Ledger struct {
	db *sql.DB
}

const schema = `
CREATE TABLE IF NOT EXISTS charges (
	seq      INTEGER PRIMARY KEY,
	time     TEXT NOT NULL,
	dataset  TEXT NOT NULL,
	partners TEXT NOT NULL,
	session  TEXT NOT NULL,
	spec     TEXT NOT NULL,
	epsilon  REAL NOT NULL,
	delta    REAL NOT NULL,
	rho      REAL NOT NULL CHECK (rho > 0)
) STRICT;

CREATE INDEX IF NOT EXISTS charges_key ON charges(dataset, partners);

CREATE TRIGGER IF NOT EXISTS charges_no_update BEFORE UPDATE ON charges
BEGIN
	SELECT RAISE(ABORT, 'the ledger is append-only');
END;

CREATE TRIGGER IF NOT EXISTS charges_no_delete BEFORE DELETE ON charges
BEGIN
	SELECT RAISE(ABORT, 'the ledger is append-only');
END;
`

// Open opens (creating if needed) the ledger at path, a plain file name.
func Open(ctx context.Context, path string) (*Ledger, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("ledger: open %q: unsupported path", path)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("ledger: open %q: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger: open %q: %w", path, err)
	}
	return &Ledger{db: db}, nil
}

// Close closes the ledger.
func (l *Ledger) Close() error { return l.db.Close() }

// Charge is one admitted session's entry.
type Charge struct {
	Dataset  string
	Partners []string
	Session  string
	Rho      float64 // this session's cost
	Spent    float64 // the spend of the dataset and partners, this charge included
	Budget   float64 // the budget in ρ
}

// Partners returns the key under which self's sessions of spec are charged:
// the other parties, sorted.
func Partners(spec *session.Spec, self string) []string {
	var out []string
	for _, p := range spec.Parties {
		if p != self {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// Charge admits session spec for party self's dataset against budget, in
// one transaction: it computes the session's ρ from its privacy, adds up
// what the dataset has spent with the same partners, and either records
// the charge or refuses with [ErrExceeded] (nothing recorded). A spec that
// reveals no aggregates costs nothing and is admitted without an entry; one
// that reveals aggregates without privacy is refused ([ErrNoPrivacy]).
// Errors name the budget and the spend, not the dataset (they may be sent
// to the coordinator as the reason of a refusal).
func (l *Ledger) Charge(ctx context.Context, dataset, self string, spec *session.Spec, budget party.Budget) (*Charge, error) {
	if !spec.Reveals(session.RevealAggregates) {
		return nil, nil
	}
	if spec.Privacy == nil {
		return nil, ErrNoPrivacy
	}
	layout, err := session.NewLayout(spec)
	if err != nil {
		return nil, err
	}
	c := &Charge{Dataset: dataset, Partners: Partners(spec, self), Session: spec.ID, Rho: layout.NoisePlan().Rho, Budget: budget.Rho()}
	key := strings.Join(c.Partners, ",")
	digest := sha256.Sum256(spec.Canonical())
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	defer tx.Rollback()
	var spent float64
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(SUM(rho), 0) FROM charges WHERE dataset = ? AND partners = ?", dataset, key).Scan(&spent); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	if spent+c.Rho > c.Budget {
		return nil, fmt.Errorf("%w: session %s needs ρ = %.4g (ε = %v at δ = %v); spent with these partners ρ = %.4g of %.4g",
			ErrExceeded, spec.ID, c.Rho, spec.Privacy.Epsilon, spec.Privacy.Delta, spent, c.Budget)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO charges (time, dataset, partners, session, spec, epsilon, delta, rho)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, time.Now().UTC().Format(time.RFC3339Nano), dataset, key, spec.ID,
		"sha256:"+hex.EncodeToString(digest[:]), spec.Privacy.Epsilon, spec.Privacy.Delta, c.Rho); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	c.Spent = spent + c.Rho
	return c, nil
}

// Spent returns the ρ that dataset has spent with partners (sorted or not).
func (l *Ledger) Spent(ctx context.Context, dataset string, partners []string) (float64, error) {
	p := slices.Sorted(slices.Values(partners))
	var spent float64
	err := l.db.QueryRowContext(ctx, "SELECT COALESCE(SUM(rho), 0) FROM charges WHERE dataset = ? AND partners = ?",
		dataset, strings.Join(p, ",")).Scan(&spent)
	if err != nil {
		return 0, fmt.Errorf("ledger: %w", err)
	}
	return spent, nil
}
