package coordinator_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/coordinator"
	"github.com/mpsi-dev/mpsi/coordinator/store"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// When the store refuses to record an abort (a trigger stands in for a full
// disk), the session is never reported "running": GetResult says aborted,
// with the reason and the store's failure, Ready reports the backlog, and
// the abort is recorded, with its real reason, once the store works again.
func TestAbortRecordedAfterStoreFailure(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mpsi.db")
	st, err := store.Open(ctx, path)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	h := newHarnessTimeout(t, testRoundTimeout, func(c *coordinator.Config) { c.Store = st })
	c := getCohort(t, session.ModeDH)

	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(`CREATE TRIGGER test_fail_abort BEFORE UPDATE OF state ON sessions WHEN NEW.state = 'aborted'
		BEGIN SELECT RAISE(ABORT, 'database or disk is full (test)'); END`)
	require.NoError(t, err)

	id := h.create(t, specJSON(t, c, newSessionID("abort-write"), nil))
	a := h.join(ctx, t, c, "hospital-a", id)
	a.cancel() // hospital-a's stream drops: the session aborts

	var reason string
	require.Eventually(t, func() bool {
		r := h.result(t, id)
		reason = r.GetReason()
		return r.GetState() == store.StateAborted
	}, time.Minute, 20*time.Millisecond)
	require.Contains(t, reason, "hospital-a", "the reason names the party that failed")
	require.Contains(t, reason, "not yet recorded: the coordinator's store failed")
	require.Contains(t, reason, "database or disk is full (test)")
	rec, err := st.Session(ctx, id)
	require.NoError(t, err)
	require.NotEqual(t, store.StateAborted, rec.State, "the store really refused it")
	require.ErrorContains(t, h.srv.Ready(ctx), "not recorded")

	_, err = db.Exec(`DROP TRIGGER test_fail_abort`)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		rec, err := st.Session(ctx, id)
		return err == nil && rec.State == store.StateAborted
	}, time.Minute, 50*time.Millisecond, "the abort is retried")
	rec, err = st.Session(ctx, id)
	require.NoError(t, err)
	require.Contains(t, rec.Reason, "hospital-a")
	require.NotContains(t, rec.Reason, "not yet recorded")
	require.Eventually(t, func() bool { return h.srv.Ready(ctx) == nil }, time.Minute, 20*time.Millisecond)
	r := h.result(t, id)
	require.Equal(t, store.StateAborted, r.GetState())
	require.False(t, strings.Contains(r.GetReason(), "not yet recorded"))
}
