package upload

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/examples/ecgupload/ecgpb"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		seconds  float64
		wantMode Mode
	}{
		{"small", 20, ModeUnary},   // ~21 KiB: one unary call
		{"large", 150, ModeStream}, // ~160 KiB: above the 64 KiB threshold
	}
	for _, suite := range Suites() {
		for _, tc := range tests {
			t.Run("suite="+suite.String()+"/size="+tc.name, func(t *testing.T) {
				ctx := testContext(t)
				e := newEnv(t, func(c *Config) { c.Threshold = 64 << 10 })
				e.rotateUntil(t, suite)
				c := e.client(t, "clinic-a", func(c *ClientConfig) { c.Threshold = 64 << 10; c.ChunkSize = 16 << 10 })
				rec := SyntheticECG("rt"+tc.name, tc.seconds)
				rc, err := c.Upload(ctx, rec, 3)
				require.NoError(t, err)
				if rc.Mode != tc.wantMode || rc.Suite != suite {
					t.Fatalf("Upload(%d bytes) used %s/%s, want %s/%s", rec.Size(), rc.Mode, rc.Suite, tc.wantMode, suite)
				}
				m := e.requireStored(t, rc, rec)
				require.Equal(t, suite.String(), m.Suite)
				require.Equal(t, tc.wantMode.String(), m.Mode)
				require.Equal(t, uint64(rec.Size()), rc.Size)
				if tc.wantMode == ModeStream {
					require.EqualValues(t, 1, e.srv.Metrics().UploadsStream.Load())
					require.EqualValues(t, (rec.Size()+16<<10-1)/(16<<10), e.srv.Metrics().ChunksReceived.Load())
				} else {
					require.EqualValues(t, 1, e.srv.Metrics().UploadsUnary.Load())
				}
				// The recording decodes and matches its header checksums.
				checks, err := VerifyRecord(rec.Files[2].Data, map[string][]byte{rec.Name + ".dat": rec.Files[1].Data})
				require.NoError(t, err)
				require.Len(t, checks, 2)
			})
		}
	}
}

func TestSelectSuite(t *testing.T) {
	seen := map[Suite]int{}
	for range 64 {
		kp, err := generateKeyPair(1)
		require.NoError(t, err)
		s := SelectSuite(kp.pub)
		require.Equal(t, s, SelectSuite(kp.pub), "selection must be deterministic")
		require.True(t, s.valid())
		seen[s]++
	}
	for _, s := range Suites() {
		if seen[s] == 0 {
			t.Errorf("SelectSuite never chose %s in 64 keys", s)
		}
	}
}

func TestUnaryAboveThresholdRefused(t *testing.T) {
	ctx := testContext(t)
	e := newEnv(t, func(c *Config) { c.Threshold = 16 << 10 })
	c := e.client(t, "clinic-a", nil)
	_, err := c.Put(ctx, SyntheticECG("big", 30), 1)
	require.ErrorIs(t, err, ErrMalformed)
}

func TestRejections(t *testing.T) {
	tests := []struct {
		name     string
		window   time.Duration
		clientID string
		cred     func(e *testEnv) []byte
		skew     time.Duration
		wantErr  error
		metric   func(m *Metrics) int64
	}{
		{name: "forged credential", clientID: "clinic-a", cred: func(e *testEnv) []byte { return randomCredential(t) },
			wantErr: ErrRejected, metric: func(m *Metrics) int64 { return m.RejectedForged.Load() }},
		{name: "unknown client", clientID: "intruder", cred: func(e *testEnv) []byte { return randomCredential(t) },
			wantErr: ErrRejected, metric: func(m *Metrics) int64 { return m.RejectedForged.Load() }},
		{name: "expired default window", clientID: "clinic-a", skew: -13 * time.Hour,
			wantErr: ErrRejected, metric: func(m *Metrics) int64 { return m.RejectedExpired.Load() }},
		{name: "from the future", clientID: "clinic-a", skew: time.Hour,
			wantErr: ErrRejected, metric: func(m *Metrics) int64 { return m.RejectedExpired.Load() }},
		{name: "expired custom window", window: time.Hour, clientID: "clinic-a", skew: -2 * time.Hour,
			wantErr: ErrRejected, metric: func(m *Metrics) int64 { return m.RejectedExpired.Load() }},
		{name: "within custom window", window: time.Hour, clientID: "clinic-a", skew: -30 * time.Minute},
		{name: "within default window", clientID: "clinic-a", skew: -11 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			e := newEnv(t, func(c *Config) { c.Window = tc.window })
			epoch := e.srv.Epoch()
			c := e.client(t, "clinic-b", nil) // an honest client on the side
			bad := e.client(t, "clinic-a", func(c *ClientConfig) {
				c.ClientID = tc.clientID
				if tc.cred != nil {
					c.Credential = tc.cred(e)
				}
				c.Now = func() time.Time { return time.Now().Add(tc.skew) }
			})
			rec := SyntheticECG("rej", 5)
			_, err := bad.Upload(ctx, rec, 1)
			if tc.wantErr == nil {
				require.NoError(t, err)
				require.Equal(t, epoch, e.srv.Epoch(), "key rotated without a failed check")
				return
			}
			require.ErrorIs(t, err, tc.wantErr)
			require.Equal(t, epoch+1, e.srv.Epoch(), "key pair not rotated after a failed check")
			require.EqualValues(t, 1, tc.metric(e.srv.Metrics()))
			require.EqualValues(t, 1, e.srv.Metrics().KeyRotations.Load())
			entries, err := os.ReadDir(e.store)
			require.NoError(t, err)
			require.Empty(t, entries, "a rejected upload stored something")
			// The honest client fetches the new key and succeeds.
			rc, err := c.Upload(ctx, rec, 1)
			require.NoError(t, err)
			e.requireStored(t, rc, rec)
			// No credential ever reaches the log.
			logs := e.logs.text()
			for _, cred := range e.creds {
				require.NotContains(t, logs, hex.EncodeToString(cred))
				require.NotContains(t, logs, string(cred))
			}
		})
	}
}

func TestReplayAndStaleKey(t *testing.T) {
	ctx := testContext(t)
	e := newEnv(t, nil)
	c := e.client(t, "clinic-a", nil)
	rec := SyntheticECG("replay", 5)
	payload, infos, digest := rec.payload()
	h, err := c.newHandshake(ctx, rec, infos, digest, ModeUnary, 1)
	require.NoError(t, err)
	put := &ecgpb.PutRequest{Handshake: h.hs, SealedPayload: sealChunk(h.aead, nil, h.req.JobID, 0, 1, uint64(len(payload)), payload)}

	_, err = c.rpc.Put(ctx, put)
	require.NoError(t, err, "first use of a request")
	epoch := e.srv.Epoch()
	_, err = c.rpc.Put(ctx, put)
	require.ErrorIs(t, fromStatus(err), ErrRejected, "replayed request")
	require.Equal(t, epoch+1, e.srv.Epoch(), "key not rotated after a replay")
	require.EqualValues(t, 1, e.srv.Metrics().RejectedReplay.Load())

	// The same bytes once more are now under a stale epoch: refused without
	// another rotation.
	_, err = c.rpc.Put(ctx, put)
	require.ErrorIs(t, fromStatus(err), ErrStaleKey)
	require.Equal(t, epoch+1, e.srv.Epoch())

	// A client that prepared its handshake before a rotation starts again
	// with the new key transparently.
	h2, err := c.newHandshake(ctx, rec, infos, digest, ModeStream, 1)
	require.NoError(t, err)
	require.NoError(t, e.srv.Rotate("test"))
	_, err = c.rpc.Begin(ctx, &ecgpb.BeginRequest{Handshake: h2.hs})
	require.ErrorIs(t, fromStatus(err), ErrStaleKey)
	rc, err := c.Upload(ctx, rec, 1)
	require.NoError(t, err)
	e.requireStored(t, rc, rec)
}

// rawTransfer opens a Transfer stream for j and sends chunks as given.
func rawTransfer(ctx context.Context, j *Job, chunks []*ecgpb.Chunk) (*ecgpb.Done, error) {
	stream, err := j.c.rpc.Transfer(ctx)
	if err != nil {
		return nil, fromStatus(err)
	}
	id := j.ID()
	if err := stream.Send(&ecgpb.TransferMsg{Msg: &ecgpb.TransferMsg_JobId{JobId: id[:]}}); err != nil {
		return nil, streamErr(stream, err)
	}
	if _, err := stream.Recv(); err != nil {
		return nil, fromStatus(err)
	}
	for _, c := range chunks {
		if err := stream.Send(&ecgpb.TransferMsg{Msg: &ecgpb.TransferMsg_Chunk{Chunk: c}}); err != nil {
			return nil, streamErr(stream, err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		return nil, streamErr(stream, err)
	}
	r, err := stream.Recv()
	if err != nil {
		return nil, fromStatus(err)
	}
	return r.GetDone(), nil
}

func TestBadChunks(t *testing.T) {
	const chunk = 16 << 10
	type setup struct {
		j, other *Job
	}
	sealed := func(j *Job, i uint32) []byte { return j.sealedChunk(i) }
	tests := []struct {
		name        string
		chunks      func(s setup) []*ecgpb.Chunk
		wantErr     error
		wantMissing []uint32 // for an incomplete transfer
	}{
		{name: "tampered", wantErr: ErrBadChunk, chunks: func(s setup) []*ecgpb.Chunk {
			b := sealed(s.j, 0)
			b[7] ^= 0x20
			return []*ecgpb.Chunk{{Index: 0, Sealed: b}}
		}},
		{name: "reordered", wantErr: ErrBadChunk, chunks: func(s setup) []*ecgpb.Chunk {
			return []*ecgpb.Chunk{{Index: 0, Sealed: sealed(s.j, 1)}, {Index: 1, Sealed: sealed(s.j, 0)}}
		}},
		{name: "duplicated", wantErr: ErrBadChunk, chunks: func(s setup) []*ecgpb.Chunk {
			return []*ecgpb.Chunk{{Index: 0, Sealed: sealed(s.j, 0)}, {Index: 0, Sealed: sealed(s.j, 0)}}
		}},
		{name: "truncated", wantErr: ErrBadChunk, chunks: func(s setup) []*ecgpb.Chunk {
			b := sealed(s.j, 0)
			return []*ecgpb.Chunk{{Index: 0, Sealed: b[:len(b)-1]}}
		}},
		{name: "extended", wantErr: ErrBadChunk, chunks: func(s setup) []*ecgpb.Chunk {
			return []*ecgpb.Chunk{{Index: 0, Sealed: append(sealed(s.j, 0), 0)}}
		}},
		{name: "last chunk truncated to a full-size index", wantErr: ErrBadChunk, chunks: func(s setup) []*ecgpb.Chunk {
			return []*ecgpb.Chunk{{Index: 0, Sealed: sealed(s.j, uint32(s.j.count-1))}}
		}},
		{name: "from another job", wantErr: ErrBadChunk, chunks: func(s setup) []*ecgpb.Chunk {
			return []*ecgpb.Chunk{{Index: 0, Sealed: sealed(s.other, 0)}}
		}},
		{name: "index out of range", wantErr: ErrBadChunk, chunks: func(s setup) []*ecgpb.Chunk {
			return []*ecgpb.Chunk{{Index: s.j.count, Sealed: sealed(s.j, 0)}}
		}},
		{name: "missing", wantErr: ErrIncomplete, wantMissing: []uint32{3}, chunks: func(s setup) []*ecgpb.Chunk {
			var out []*ecgpb.Chunk
			for i := range s.j.count {
				if i != 3 {
					out = append(out, &ecgpb.Chunk{Index: i, Sealed: sealed(s.j, i)})
				}
			}
			return out
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			e := newEnv(t, func(c *Config) { c.Threshold = 16 << 10 })
			c := e.client(t, "clinic-a", func(c *ClientConfig) { c.Threshold = 16 << 10; c.ChunkSize = chunk })
			rec := SyntheticECG("chunks", 90) // ~97 KiB: 6 chunks, the last one short
			j, err := c.Begin(ctx, rec, 1)
			require.NoError(t, err)
			require.Equal(t, 6, j.Chunks())
			other, err := c.Begin(ctx, SyntheticECG("other", 90), 1)
			require.NoError(t, err)

			done, err := rawTransfer(ctx, j, tc.chunks(setup{j, other}))
			if tc.wantErr == ErrIncomplete {
				require.NoError(t, err)
				require.False(t, done.GetComplete())
				require.Equal(t, tc.wantMissing, done.GetMissing())
			} else {
				require.ErrorIs(t, err, tc.wantErr)
				require.Positive(t, e.srv.Metrics().ChunksRefused.Load())
			}
			st, err := j.Status(ctx)
			require.NoError(t, err)
			require.NotEqual(t, ecgpb.JobState_JOB_STATE_COMPLETE, st.State)
			require.NotEmpty(t, st.Missing)
			entries, err := os.ReadDir(e.store)
			require.NoError(t, err)
			require.Empty(t, entries, "a refused transfer stored something")

			// The job survives the refusal: an honest transfer completes it.
			rc, err := j.Run(ctx)
			require.NoError(t, err)
			e.requireStored(t, rc, rec)
		})
	}
}

// cutProxy forwards TCP connections to target and cuts the first one after
// limit bytes from the client.
type cutProxy struct {
	lis    net.Listener
	target string
	limit  int64
	cut    atomic.Bool
}

func newCutProxy(t *testing.T, target string, limit int64) *cutProxy {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{lis: lis, target: target, limit: limit}
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			in, err := lis.Accept()
			if err != nil {
				return
			}
			go p.serve(in)
		}
	}()
	return p
}

func (p *cutProxy) serve(in net.Conn) {
	out, err := net.Dial("tcp", p.target)
	if err != nil {
		in.Close()
		return
	}
	var once sync.Once
	closeBoth := func() { once.Do(func() { in.Close(); out.Close() }) }
	go func() { io.Copy(in, out); closeBoth() }()
	var n int64
	buf := make([]byte, 32<<10)
	for {
		k, err := in.Read(buf)
		if k > 0 {
			n += int64(k)
			if n > p.limit && p.cut.CompareAndSwap(false, true) {
				closeBoth()
				return
			}
			if _, werr := out.Write(buf[:k]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	closeBoth()
}

func TestResumeAfterCut(t *testing.T) {
	ctx := testContext(t)
	e := newEnv(t, func(c *Config) { c.Threshold = 64 << 10 })
	proxy := newCutProxy(t, e.addr, 200<<10)
	c, err := NewClient(e.dial(t, proxy.lis.Addr().String()), ClientConfig{
		ClientID: "clinic-a", Credential: e.creds["clinic-a"], Threshold: 64 << 10, ChunkSize: 16 << 10,
	})
	require.NoError(t, err)
	rec := SyntheticECG("cut", 400) // ~422 KiB: 27 chunks
	j, err := c.Begin(ctx, rec, 1)
	require.NoError(t, err)

	_, err = j.Transfer(ctx)
	require.Error(t, err, "the first transfer must break at the cut")
	require.True(t, proxy.cut.Load())

	var st *JobStatus
	require.Eventually(t, func() bool {
		st, err = j.Status(ctx)
		return err == nil && st.State == ecgpb.JobState_JOB_STATE_IDLE
	}, 10*time.Second, 20*time.Millisecond)
	received := j.Chunks() - len(st.Missing)
	if received == 0 || len(st.Missing) == 0 {
		t.Fatalf("after the cut the server has %d of %d chunks; want some but not all", received, j.Chunks())
	}
	t.Logf("cut after %d of %d chunks", received, j.Chunks())

	sentBefore := j.Sent
	rc, err := j.Run(ctx)
	require.NoError(t, err)
	e.requireStored(t, rc, rec)
	if resent := j.Sent - sentBefore; resent != len(st.Missing) {
		t.Errorf("resume sent %d chunks, want only the %d missing ones", resent, len(st.Missing))
	}
	require.EqualValues(t, j.Chunks(), e.srv.Metrics().ChunksReceived.Load(), "every chunk accepted exactly once")
}

func TestPreemptionOrder(t *testing.T) {
	ctx := testContext(t)
	e := newEnv(t, func(c *Config) {
		c.Threshold, c.PoolSize, c.HighPriority, c.PriorityBoost = 16<<10, 1, 5, 2
	})
	client := func(id string, interval time.Duration) *Client {
		return e.client(t, id, func(c *ClientConfig) {
			c.Threshold, c.ChunkSize, c.ChunkInterval = 16<<10, 16<<10, interval
		})
	}
	type upload struct {
		name    string
		c       *Client
		size    int
		urgency uint8
		j       *Job
	}
	ups := map[string]*upload{
		"low1":  {c: client("clinic-a", 40*time.Millisecond), size: 640 << 10, urgency: 1},
		"low2":  {c: client("clinic-b", 2*time.Millisecond), size: 96 << 10, urgency: 2},
		"low3":  {c: client("clinic-c", 2*time.Millisecond), size: 192 << 10, urgency: 2},
		"high1": {c: client("clinic-d", 2*time.Millisecond), size: 96 << 10, urgency: 8},
	}
	for name, u := range ups {
		u.name = name
		var err error
		u.j, err = u.c.Begin(ctx, SyntheticBlob(name, u.size), u.urgency)
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	run := func(u *upload) {
		wg.Go(func() {
			rc, err := u.j.Run(ctx)
			if err == nil {
				_, _, err = ReadStored(e.store, rc.StoredAs)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	waitState := func(u *upload, want ecgpb.JobState) {
		require.Eventually(t, func() bool {
			st, err := u.j.Status(ctx)
			return err == nil && st.State == want
		}, 10*time.Second, 2*time.Millisecond, "%s never reached %s", u.name, want)
	}
	run(ups["low1"])
	waitState(ups["low1"], ecgpb.JobState_JOB_STATE_ACTIVE)
	run(ups["low3"])
	run(ups["low2"])
	waitState(ups["low2"], ecgpb.JobState_JOB_STATE_QUEUED)
	waitState(ups["low3"], ecgpb.JobState_JOB_STATE_QUEUED)
	// Small unary uploads from other clients run beside the pool.
	for _, id := range []string{"clinic-e", "clinic-f", "clinic-g", "clinic-h"} {
		c := client(id, 0)
		wg.Go(func() {
			if _, err := c.Upload(ctx, SyntheticECG("unary-"+id, 5), 9); err != nil {
				errs <- err
			}
		})
	}
	run(ups["high1"])
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	var granted, preempted, requeued []string
	for _, le := range e.logs.snapshot() {
		switch le.msg {
		case "transfer granted":
			granted = append(granted, le.attrs["job.record"])
		case "transfer preempted":
			preempted = append(preempted, le.attrs["job.record"]+">"+le.attrs["for"])
		case "transfer re-queued":
			// The server re-queues the victim itself, before high1 is granted.
			requeued = append(requeued, le.attrs["job.record"]+"@"+le.attrs["priority"]+" after "+strings.Join(granted, ","))
		}
	}
	require.Equal(t, []string{"low1@3 after low1"}, requeued)
	// low1 holds the pool; high1 preempts it; low1 comes back with priority
	// 1+2=3 ahead of low2 and low3 (priority 2), and low2 (smaller) goes
	// before low3.
	wantGranted := []string{"low1", "high1", "low1", "low2", "low3"}
	if !slices.Equal(granted, wantGranted) {
		t.Errorf("grant order %v, want %v\nlog:\n%s", granted, wantGranted, e.logs.text())
	}
	if len(preempted) != 1 || !strings.HasPrefix(preempted[0], "low1>high1/") {
		t.Errorf("preemptions %v, want exactly low1 for high1", preempted)
	}
	require.EqualValues(t, 1, e.srv.Metrics().Preemptions.Load())
	require.Equal(t, 1, ups["low1"].j.Preemptions)
	st, err := ups["low1"].j.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, st.Priority, "preempted job's raised priority")
	require.Equal(t, ecgpb.JobState_JOB_STATE_COMPLETE, st.State)
	// low1 resumed from its missing chunks: no chunk was accepted twice.
	var total int
	for _, u := range ups {
		total += u.j.Chunks()
	}
	require.EqualValues(t, total, e.srv.Metrics().ChunksReceived.Load())
	require.EqualValues(t, 4, e.srv.Metrics().UploadsUnary.Load())
	require.EqualValues(t, 4, e.srv.Metrics().UploadsStream.Load())
	// The server releases a slot just after sending Done, so the gauges
	// settle shortly after the clients finish.
	require.Eventually(t, func() bool {
		return e.srv.Metrics().ActiveTransfers.Load() == 0 && e.srv.Metrics().QueueDepth.Load() == 0
	}, 5*time.Second, time.Millisecond, "gauges did not return to zero")
}

func TestErrorsMapBack(t *testing.T) {
	for _, err := range []error{ErrStaleKey, ErrRejected, ErrMalformed, ErrBadChunk, ErrDigest, ErrUnknownJob, ErrPreempted, ErrBusy, ErrExists} {
		s := &Server{log: newEnv(t, nil).srv.log}
		got := fromStatus(s.toStatus("test", errors.Join(err)))
		require.ErrorIs(t, got, err)
	}
}
