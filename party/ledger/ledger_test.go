package ledger_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/party/ledger"
	"github.com/mpsi-dev/mpsi/psi/session"
)

func spec(t testing.TB, id string, parties string, privacy string) *session.Spec {
	t.Helper()
	s, err := session.ParseSpec(fmt.Appendf(nil, `{"id":%q,"parties":%s,"fields":{"n":"name","v":"number"},"match":{"fields":["n"]},
"reveal":["aggregates"],"aggregates":[{"name":"v","kind":"sum","field":"v","min":0,"max":10}]%s}`, id, parties, privacy))
	require.NoError(t, err)
	return s
}

const abc = `["hospital-a","hospital-b","hospital-c"]`

// A budget of ε = 2.5 at δ = 1e-6 admits ⌊ρ_B/ρ_1⌋ sessions of ε = 1 with the
// same partners (five: zCDP composes below the sum of the ε's) and refuses
// the next, recording nothing for it; other partners and other datasets
// have their own budgets; the spend survives reopening.
func TestChargeAndRefuse(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := ledger.Open(ctx, path)
	require.NoError(t, err)
	budget := party.Budget{Epsilon: 2.5, Delta: 1e-6}
	one := `,"privacy":{"epsilon":1,"delta":1e-6}`
	fit := int(budget.Rho() / session.RhoFor(1, 1e-6))
	require.Equal(t, 5, fit)
	for i := range fit {
		c, err := l.Charge(ctx, "oncology", "hospital-a", spec(t, fmt.Sprint("s", i), abc, one), budget)
		require.NoError(t, err)
		require.Equal(t, []string{"hospital-b", "hospital-c"}, c.Partners)
		require.InDelta(t, float64(i+1)*c.Rho, c.Spent, 1e-12)
	}
	_, err = l.Charge(ctx, "oncology", "hospital-a", spec(t, "s-next", abc, one), budget)
	require.ErrorIs(t, err, ledger.ErrExceeded)
	require.NotContains(t, err.Error(), "oncology", "the refusal may travel: no dataset name")
	spent, err := l.Spent(ctx, "oncology", []string{"hospital-c", "hospital-b"})
	require.NoError(t, err)
	require.InDelta(t, float64(fit)*session.RhoFor(1, 1e-6), spent, 1e-9, "the refused session is not charged")

	_, err = l.Charge(ctx, "oncology", "hospital-a", spec(t, "s3", `["hospital-a","hospital-b"]`, one), budget)
	require.NoError(t, err, "another partner set has its own budget")
	_, err = l.Charge(ctx, "cardiology", "hospital-a", spec(t, "s4", abc, one), budget)
	require.NoError(t, err, "another dataset has its own budget")
	_, err = l.Charge(ctx, "oncology", "hospital-a", spec(t, "s0", abc, one), budget)
	require.ErrorIs(t, err, ledger.ErrExceeded, "a session id seen before is charged again (fresh noise)")

	_, err = l.Charge(ctx, "oncology", "hospital-a", spec(t, "s5", abc, ""), budget)
	require.ErrorIs(t, err, ledger.ErrNoPrivacy)
	require.NoError(t, l.Close())

	l, err = ledger.Open(ctx, path)
	require.NoError(t, err)
	defer l.Close()
	spent2, err := l.Spent(ctx, "oncology", []string{"hospital-b", "hospital-c"})
	require.NoError(t, err)
	require.Equal(t, spent, spent2)
	// Small sessions still fit a fresh partner set's budget exactly up to it.
	_, err = l.Charge(ctx, "oncology", "hospital-a", spec(t, "big", `["hospital-a","hospital-d"]`, `,"privacy":{"epsilon":2.5,"delta":1e-6}`), budget)
	require.NoError(t, err, "a session that spends the whole budget at once is admitted")
}

// Concurrent charges (two sessions admitted at once) never overspend.
func TestConcurrentCharges(t *testing.T) {
	ctx := t.Context()
	l, err := ledger.Open(ctx, filepath.Join(t.TempDir(), "ledger.db"))
	require.NoError(t, err)
	defer l.Close()
	budget := party.Budget{Epsilon: 1.6, Delta: 1e-6} // room for two sessions of ε = 1
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for i := range 8 {
		wg.Go(func() {
			_, err := l.Charge(ctx, "d", "hospital-a", spec(t, fmt.Sprint("c", i), abc, `,"privacy":{"epsilon":1,"delta":1e-6}`), budget)
			if err == nil {
				mu.Lock()
				admitted++
				mu.Unlock()
			} else {
				require.ErrorIs(t, err, ledger.ErrExceeded)
			}
		})
	}
	wg.Wait()
	spent, err := l.Spent(ctx, "d", []string{"hospital-b", "hospital-c"})
	require.NoError(t, err)
	require.LessOrEqual(t, spent, budget.Rho())
	require.InDelta(t, float64(admitted)*session.RhoFor(1, 1e-6), spent, 1e-9)
	require.Equal(t, int(budget.Rho()/session.RhoFor(1, 1e-6)), admitted)
}

// The ledger refuses UPDATE and DELETE from outside (the sqlite3 client).
func TestAppendOnly(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := ledger.Open(ctx, path)
	require.NoError(t, err)
	_, err = l.Charge(ctx, "d", "hospital-a", spec(t, "s", abc, `,"privacy":{"epsilon":1,"delta":1e-6}`), party.Budget{Epsilon: 2, Delta: 1e-6})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	for _, q := range []string{"DELETE FROM charges", "UPDATE charges SET rho = 0.0000001"} {
		_, err := db.ExecContext(ctx, q)
		require.ErrorContains(t, err, "append-only", q)
	}
}

// One admission: a write transaction with synchronous=FULL (an fsync).
func BenchmarkCharge(b *testing.B) {
	l, err := ledger.Open(b.Context(), filepath.Join(b.TempDir(), "ledger.db"))
	require.NoError(b, err)
	defer l.Close()
	s := spec(b, "s", abc, `,"privacy":{"epsilon":0.001,"delta":1e-6}`)
	budget := party.Budget{Epsilon: 1e6, Delta: 1e-6}
	for b.Loop() {
		if _, err := l.Charge(b.Context(), "d", "hospital-a", s, budget); err != nil {
			b.Fatal(err)
		}
	}
}
