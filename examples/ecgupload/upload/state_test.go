package upload

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/examples/ecgupload/ecgpb"
)

// TestRestartResumesJobsAndRefusesReplay stops a server mid-upload (no
// graceful stop) and starts another on the same state directory: the
// unfinished job is resumed from the chunks the first server stored, the
// recording arrives byte for byte, the key epoch moves on, and a request
// reusing a job id the first server accepted is refused as a replay.
func TestRestartResumesJobsAndRefusesReplay(t *testing.T) {
	ctx := testContext(t)
	state := t.TempDir()
	e := newEnv(t, func(c *Config) { c.StateDir = state; c.Threshold = 64 << 10 })
	c := e.client(t, "clinic-a", func(cc *ClientConfig) { cc.Threshold = 64 << 10; cc.ChunkSize = 16 << 10 })

	small := SyntheticECG("small", 5)
	rc, err := c.Upload(ctx, small, 1)
	require.NoError(t, err)
	used := rc.JobID

	rec := SyntheticECG("resumed", 400) // ~422 KiB: 27 chunks of 16 KiB
	j, err := c.Begin(ctx, rec, 3)
	require.NoError(t, err)
	half := make([]*ecgpb.Chunk, 0, j.Chunks()/2)
	for i := range uint32(j.Chunks() / 2) {
		half = append(half, &ecgpb.Chunk{Index: i, Sealed: j.sealedChunk(i)})
	}
	done, err := rawTransfer(ctx, j, half)
	require.NoError(t, err)
	require.Len(t, done.GetMissing(), j.Chunks()-len(half))
	// The state directory holds the database and the key; no plaintext data key.
	for _, n := range []string{StateDBName, StateKeyName} {
		_, err := os.Stat(filepath.Join(state, n))
		require.NoError(t, err)
	}
	info, err := os.Stat(filepath.Join(state, StateKeyName))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	epoch := e.srv.Epoch()
	e.restart(t)
	require.Greater(t, e.srv.Epoch(), epoch, "a restarted server never reuses an epoch")
	require.Contains(t, e.logs.text(), "job restored from the state database")

	// The client reconnects to the new server and resumes.
	c2 := e.client(t, "clinic-a", func(cc *ClientConfig) { cc.Threshold = 64 << 10; cc.ChunkSize = 16 << 10 })
	j.c = c2
	st, err := j.Status(ctx)
	require.NoError(t, err)
	require.Len(t, st.Missing, j.Chunks()-len(half), "the restarted server knows which chunks it has")
	require.Equal(t, 3, st.Priority)
	sent := j.Sent
	rc2, err := j.Run(ctx)
	require.NoError(t, err)
	require.Equal(t, j.Chunks()-len(half), j.Sent-sent, "only the missing chunks were sent again")
	e.requireStored(t, rc2, rec)
	// Once stored, the job is marked stored: another restart still knows it.
	e.restart(t)
	c3 := e.client(t, "clinic-a", nil)
	j.c = c3
	st, err = j.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, ecgpb.JobState_JOB_STATE_COMPLETE, st.State)

	// A fresh request (under the new key) that reuses the first upload's
	// job id is a replay: the cache outlived two restarts.
	c3.readNonce = func(b []byte) (int, error) { return copy(b, used[:]), nil }
	before := e.srv.Epoch()
	_, err = c3.Upload(ctx, SyntheticECG("again", 5), 1)
	require.ErrorIs(t, err, ErrRejected)
	require.ErrorIs(t, err, ErrReplay)
	require.Equal(t, before+1, e.srv.Epoch(), "a replay rotates the key")
}

// TestRolesAndExpiry: the server assigns the urgency from the credential's
// role (a client may ask for less, not more) and refuses expired
// credentials.
func TestRolesAndExpiry(t *testing.T) {
	ctx := testContext(t)
	roles := map[string]Role{"clinic-a": RoleRoutine, "clinic-b": RoleClinic, "clinic-c": RoleEmergency}
	e := newEnv(t, func(c *Config) {
		for id, r := range roles {
			cr := c.Credentials[id]
			cr.Role = r
			c.Credentials[id] = cr
		}
		cr := c.Credentials["clinic-d"]
		cr.Expires = time.Now().Add(-time.Second)
		c.Credentials["clinic-d"] = cr
		c.Threshold = 16 << 10
	})
	tests := []struct {
		client string
		asked  uint8
		want   int
	}{
		{"clinic-a", 9, 1},
		{"clinic-a", 0, 0},
		{"clinic-b", 9, 5},
		{"clinic-b", 2, 2},
		{"clinic-c", 9, 9},
	}
	for _, tc := range tests {
		c := e.client(t, tc.client, func(cc *ClientConfig) { cc.Threshold = 16 << 10; cc.ChunkSize = 16 << 10 })
		rec := SyntheticECG("role", 60) // streamed
		j, err := c.Begin(ctx, rec, tc.asked)
		require.NoError(t, err)
		st, err := j.Status(ctx)
		require.NoError(t, err)
		require.Equal(t, tc.want, st.Priority, "%s asked %d", tc.client, tc.asked)
		rc, err := j.Run(ctx)
		require.NoError(t, err)
		m := e.requireStored(t, rc, rec)
		require.Equal(t, tc.want, m.Urgency, "the manifest records the assigned urgency")
	}
	epoch := e.srv.Epoch()
	_, err := e.client(t, "clinic-d", nil).Upload(ctx, SyntheticECG("late", 5), 1)
	require.ErrorIs(t, err, ErrRejected)
	require.ErrorIs(t, err, ErrExpired)
	require.Equal(t, epoch+1, e.srv.Epoch(), "an expired credential rotates the key, as a forged one does")
	require.EqualValues(t, 1, e.srv.Metrics().RejectedExpired.Load())

	// Configuration errors name the client.
	for name, cr := range map[string]Credential{
		"no role":   {Secret: make([]byte, 32), Expires: time.Now().Add(time.Hour)},
		"no expiry": {Secret: make([]byte, 32), Role: RoleClinic},
	} {
		_, err := New(Config{StoreDir: t.TempDir(), Credentials: map[string]Credential{"x": cr}})
		require.ErrorContains(t, err, `"x"`, name)
	}
}

func TestChunkSizeFor(t *testing.T) {
	tests := []struct {
		link LinkType
		rate float64
		want int
	}{
		{LinkWired, 0, MaxChunkSize}, // 50 MB/s: 12.5 MB a quarter second, capped
		{LinkWiFi, 0, 2 << 20},       // 10 MB/s: 2.5 MB
		{LinkCellular, 0, 128 << 10}, // 1 MB/s: 250 kB
		{LinkPoor, 0, 16 << 10},      // 100 kB/s: 25 kB
		{LinkUnknown, 0, 1 << 20},    // 5 MB/s: 1.25 MB
		{LinkPoor, 8e6, 1 << 20},     // measured beats the link type
		{LinkWired, 1, 16 << 10},     // floor
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, ChunkSizeFor(tc.link, tc.rate), "%s at %.0f B/s", tc.link, tc.rate)
	}
}

// TestSchedulerETAOrder: among equal priorities the scheduler grants the
// transfer expected to finish first, from the reported link and the
// measured throughput, not from size alone.
func TestSchedulerETAOrder(t *testing.T) {
	m := &Metrics{}
	s := newScheduler(schedConfig{capacity: 1, high: 5, boost: 2, grace: time.Second}, slog.New(slog.DiscardHandler), m)
	ctx := t.Context()
	first, err := s.acquire(ctx, schedJob("first", 0, 10))
	require.NoError(t, err)

	mk := func(name, client string, size uint64, link LinkType) *job {
		j := schedJob(name, 2, size)
		j.req.ClientID = client
		j.link = link
		return j
	}
	// A client measured as fast earlier.
	s.mu.Lock()
	s.clientRate["fast-clinic"] = 80e6
	s.mu.Unlock()
	jobs := []*job{
		mk("small-on-poor-link", "ward", 1<<20, LinkPoor),          // 10 s
		mk("big-on-wired", "lab", 100<<20, LinkWired),              // 2.1 s
		mk("medium-on-cellular", "ambulance", 1<<20, LinkCellular), // 1 s
		mk("big-measured-fast", "fast-clinic", 100<<20, LinkPoor),  // 1.3 s
	}
	granted := make(chan *lease, len(jobs))
	for i, j := range jobs {
		go func() {
			l, err := s.acquire(ctx, j)
			if err == nil {
				granted <- l
			}
		}()
		require.Eventually(t, func() bool { return m.QueueDepth.Load() == int64(i+1) }, 5*time.Second, time.Millisecond)
	}
	var order []string
	s.release(first)
	for range jobs {
		l := <-granted
		order = append(order, l.j.req.Record)
		s.release(l)
	}
	require.Equal(t, []string{"medium-on-cellular", "big-measured-fast", "big-on-wired", "small-on-poor-link"}, order)
}

// TestSchedulerResize: the pool shrinks while the running transfers'
// measured throughput exceeds the budget and grows back while transfers
// wait under a light load.
func TestSchedulerResize(t *testing.T) {
	m := &Metrics{}
	s := newScheduler(schedConfig{capacity: 3, min: 1, budget: 20e6, high: 9, boost: 2, grace: time.Second}, slog.New(slog.DiscardHandler), m)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var leases []*lease
	for i := range 3 {
		l, err := s.acquire(ctx, schedJob(string(rune('a'+i)), 1, 1<<20))
		require.NoError(t, err)
		leases = append(leases, l)
	}
	require.EqualValues(t, 3, m.PoolSize.Load())
	now := time.Now().Add(time.Second)
	// Each running transfer measures 12 MiB/s: about 38 MB/s against a 20 MB/s
	// budget (before any measurement the three count 5 MB/s each).
	for i, l := range leases {
		s.observe(l.j, 12<<20, time.Second, now.Add(time.Duration(i)*resizeEvery))
	}
	require.EqualValues(t, 1, m.PoolSize.Load(), "shrunk one step per resize interval, down to the minimum")

	// A waiting transfer is not granted while the pool is smaller than the
	// running set.
	waiting := schedJob("d", 1, 1<<20)
	got := make(chan *lease, 1)
	go func() {
		l, err := s.acquire(ctx, waiting)
		if err == nil {
			got <- l
		}
	}()
	require.Eventually(t, func() bool { return m.QueueDepth.Load() == 1 }, 5*time.Second, time.Millisecond)
	for _, l := range leases[:2] {
		s.release(l)
	}
	select {
	case <-got:
		t.Fatal("granted above the shrunk pool size")
	case <-time.After(50 * time.Millisecond):
	}
	// The remaining transfer slows to 1 MB/s: the load is light and a
	// transfer waits, so the pool grows and grants it.
	s.observe(leases[2].j, 1<<20, time.Second, now.Add(10*resizeEvery))
	s.observe(leases[2].j, 1<<20, time.Second, now.Add(20*resizeEvery))
	select {
	case l := <-got:
		s.release(l)
	case <-time.After(5 * time.Second):
		t.Fatal("the pool did not grow back")
	}
	require.GreaterOrEqual(t, m.PoolSize.Load(), int64(2))
	s.release(leases[2])
}
