package relay

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/mpsi-dev/mpsi/examples/identitykeys/identity"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/link"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/recordkey"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/records"
	"github.com/stretchr/testify/require"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestLimiter(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := NewLimiter(3, 10*time.Second, clk.now)
	type op struct {
		advance  time.Duration
		terminal string
		n        int
		want     bool
	}
	ops := []op{
		{0, "a", 1, true}, {0, "a", 1, true}, {0, "a", 1, true}, {0, "a", 1, false}, // burst of 3
		{0, "b", 1, true},                // per terminal
		{9 * time.Second, "a", 1, false}, // not yet refilled
		{time.Second, "a", 1, true},      // one token after 10 s
		{0, "a", 1, false},               //
		{time.Hour, "a", 4, false},       // capped at burst: 4 never fit
		{0, "a", 0, false},               // n < 1 is refused
		{0, "a", 2, true}, {0, "a", 2, false}, {0, "a", 1, true}, {0, "a", 1, false},
	}
	for i, o := range ops {
		clk.advance(o.advance)
		if got := l.Allow(o.terminal, o.n); got != o.want {
			t.Fatalf("op %d: Allow(%q, %d) = %v, want %v", i, o.terminal, o.n, got, o.want)
		}
	}
}

// openStore imports db into a fresh SQLite database in a temporary folder.
func openStore(t *testing.T, db *records.DB) *records.Store {
	t.Helper()
	st, err := records.OpenStore(context.Background(), filepath.Join(t.TempDir(), db.Hospital+".db"), db.Hospital)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	require.NoError(t, st.Import(context.Background(), db))
	return st
}

func newRelay(t *testing.T, db *records.DB, clk *fakeClock) (*Relay, *recordkey.Evaluator, *link.Switch) {
	r, ev, sw, _ := newRelayStore(t, db, clk)
	return r, ev, sw
}

func newRelayStore(t *testing.T, db *records.DB, clk *fakeClock) (*Relay, *recordkey.Evaluator, *link.Switch, *records.Store) {
	t.Helper()
	ev, err := recordkey.GenerateEvaluator(db.Hospital)
	require.NoError(t, err)
	sw := link.NewSwitch(nil)
	require.NoError(t, sw.Start())
	st := openStore(t, db)
	cfg := Config{Evaluator: ev, Link: sw, DB: st, RateBurst: 2, RateEvery: time.Minute}
	if clk != nil {
		cfg.Now = clk.now
	}
	r, err := New(cfg)
	require.NoError(t, err)
	return r, ev, sw, st
}

func TestSyncMergesAndSeals(t *testing.T) {
	ps := records.Generate(5)
	dupe := ps[1]
	dupe.Identity.Given = "  " + dupe.Identity.Given + "  " // same person, typed differently
	dupe.Conditions = []records.Condition{{Code: "1", Description: "extra"}}
	dupe.LocalID = "another-row"
	db := &records.DB{Hospital: "hospital-a", Patients: append(ps, dupe)}
	r, ev, sw, st := newRelayStore(t, db, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Every patient but ps[4] is enrolled.
	var cred recordkey.Credential
	for i, p := range ps[:4] {
		c, err := st.Enrol(ctx, p.Identity)
		require.NoError(t, err)
		if i == 1 {
			cred = c
		}
	}

	done := make(chan error, 1)
	var rep SyncReport
	go func() {
		var err error
		rep, err = r.Sync(ctx)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Sync ran while the link was on the cloud side (%v)", err)
	case <-time.After(20 * time.Millisecond):
	}
	require.NoError(t, sw.Toggle(ctx))
	require.NoError(t, <-done)
	require.Equal(t, SyncReport{Patients: 6, Bundles: 4, Merged: 1, Unenrolled: 1, Conditions: rep.Conditions, Bytes: rep.Bytes}, rep)

	want := len(dupe.Conditions)
	for _, p := range ps[:4] {
		want += len(p.Conditions)
	}
	require.Equal(t, want, rep.Conditions)

	// The pending entries open under the patients' keys, the merged one with both rows' conditions.
	enc, err := identity.Encode(ps[1].Identity)
	require.NoError(t, err)
	k, err := ev.Derive(recordkey.Input(enc, cred))
	require.NoError(t, err)
	ix := k.Index()
	noCred, err := ev.Derive(enc)
	require.NoError(t, err)
	found := false
	for _, e := range r.pending {
		if string(e.Index) != string(ix[:]) {
			continue
		}
		found = true
		pt, err := recordkey.Open(k, e.Ciphertext)
		require.NoError(t, err)
		b, err := records.ParseBundle(pt)
		require.NoError(t, err)
		require.Len(t, b.Conditions, len(ps[1].Conditions)+1)
		require.Equal(t, k.AccessPublicKey(), e.AccessKey, "the entry carries the bundle's access public key")
	}
	require.True(t, found)
	for _, e := range r.pending {
		nix := noCred.Index()
		require.NotEqual(t, nix[:], e.Index, "without the credential no index matches")
	}
}

func TestEvaluateRateLimited(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	r, ev, _ := newRelay(t, &records.DB{Hospital: "hospital-a"}, clk)
	enc, err := identity.Encode(records.Generate(1)[0].Identity)
	require.NoError(t, err)
	query := func(terminal string) error {
		q, blinded, err := recordkey.NewQuery("hospital-a", ev.PublicKey(), enc)
		require.NoError(t, err)
		resp, err := r.evaluate(terminal, blinded)
		if err != nil {
			return err
		}
		_, err = q.Finalize(resp.Evaluated, resp.Proof)
		return err
	}
	require.NoError(t, query("t1"))
	require.NoError(t, query("t1"))
	require.ErrorIs(t, query("t1"), ErrRateLimited)
	require.NoError(t, query("t2"))
	clk.advance(time.Minute)
	require.NoError(t, query("t1"))
	require.ErrorIs(t, query("t1"), ErrRateLimited)

	// A batch is charged per identity: with a budget of 2, a batch of 3 is refused.
	clk.advance(time.Hour)
	_, one, err := recordkey.NewQuery("hospital-a", ev.PublicKey(), enc)
	require.NoError(t, err)
	_, err = r.evaluate("t3", [][]byte{one[0], one[0], one[0]})
	require.ErrorIs(t, err, ErrRateLimited)
	_, err = r.evaluate("t3", [][]byte{one[0], one[0]})
	require.NoError(t, err)
	_, err = r.evaluate("t3", [][]byte{one[0]})
	require.ErrorIs(t, err, ErrRateLimited)
}

func TestNewValidates(t *testing.T) {
	ev, err := recordkey.GenerateEvaluator("hospital-a")
	require.NoError(t, err)
	sw := link.NewSwitch(nil)
	tests := []struct {
		name string
		cfg  Config
	}{
		{"empty", Config{}},
		{"no db", Config{Evaluator: ev, Link: sw}},
		{"other hospital's db", Config{Evaluator: ev, Link: sw, DB: openStore(t, &records.DB{Hospital: "hospital-b"})}},
		{"negative rate", Config{Evaluator: ev, Link: sw, DB: openStore(t, &records.DB{Hospital: "hospital-a"}), RateBurst: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			require.Error(t, err)
		})
	}
}
