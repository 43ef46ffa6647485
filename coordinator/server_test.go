package coordinator_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	mpsiv1 "github.com/mpsi-dev/mpsi/api/mpsi/v1"
	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/coordinator"
	"github.com/mpsi-dev/mpsi/coordinator/store"
	"github.com/mpsi-dev/mpsi/internal/devcert"
	"github.com/mpsi-dev/mpsi/internal/envelope"
	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/psi"
	"github.com/mpsi-dev/mpsi/psi/ident"
	"github.com/mpsi-dev/mpsi/psi/protocol"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// Test parameters: a short round timeout keeps deadline tests quick, a tiny
// batch limit makes the honest ring stream several batches per list.
const (
	testRoundTimeout = 3 * time.Second
	testMaxBatch     = 8
	testRecords      = 24
	// slack for deadline assertions (CI machines, -race).
	deadlineSlack = 2 * time.Second
)

var partyNames = []string{"hospital-a", "hospital-b", "hospital-c"}

// ---------------------------------------------------------------- PKI

type testPKI struct {
	ca, rogue *devcert.CA
	leaves    map[string]*devcert.Leaf
	rogueA    *devcert.Leaf // "hospital-a" issued by another CA
}

var (
	pkiOnce sync.Once
	pkiVal  *testPKI
	pkiErr  error
)

func getPKI(t testing.TB) *testPKI {
	t.Helper()
	pkiOnce.Do(func() {
		p := &testPKI{leaves: map[string]*devcert.Leaf{}}
		if p.ca, pkiErr = devcert.NewCA("mpsi test CA"); pkiErr != nil {
			return
		}
		if p.rogue, pkiErr = devcert.NewCA("rogue CA"); pkiErr != nil {
			return
		}
		for _, n := range []string{"coordinator", "admin", "hospital-a", "hospital-b", "hospital-c", "outsider"} {
			if p.leaves[n], pkiErr = p.ca.Issue(n); pkiErr != nil {
				return
			}
		}
		if p.rogueA, pkiErr = p.rogue.Issue("hospital-a"); pkiErr != nil {
			return
		}
		pkiVal = p
	})
	require.NoError(t, pkiErr)
	return pkiVal
}

func (p *testPKI) clientTLS(t testing.TB, name string) *tls.Config {
	t.Helper()
	cfg, err := devcert.ClientConfig(p.ca, p.leaves[name])
	require.NoError(t, err)
	return cfg
}

func (p *testPKI) cert(t testing.TB, name string) *x509.Certificate {
	t.Helper()
	c, err := p.leaves[name].TLSCertificate()
	require.NoError(t, err)
	x, err := x509.ParseCertificate(c.Certificate[0])
	require.NoError(t, err)
	return x
}

func (p *testPKI) signer(t testing.TB, name string) crypto.Signer {
	t.Helper()
	c, err := p.leaves[name].TLSCertificate()
	require.NoError(t, err)
	return c.PrivateKey.(crypto.Signer)
}

// ---------------------------------------------------------------- cohorts

var (
	cohortMu sync.Mutex
	cohorts  = map[string]*cohort.Cohort{}
)

// getCohort is a 3-party cohort of testRecords records each in mode.
func getCohort(t testing.TB, mode string) *cohort.Cohort {
	t.Helper()
	cohortMu.Lock()
	defer cohortMu.Unlock()
	if c, ok := cohorts[mode]; ok {
		return c
	}
	c, err := cohort.Generate(cohort.Config{Seed: 7, Parties: 3, Records: testRecords, SharedAll: 0.5, SharedPair: 0.2, Noise: true, Mode: mode})
	require.NoError(t, err)
	cohorts[mode] = c
	return c
}

// specJSON is the cohort's spec with another id and optional edits.
func specJSON(t testing.TB, c *cohort.Cohort, id string, edit func(map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(c.Spec, &m))
	m["id"] = id
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

func records(t testing.TB, c *cohort.Cohort, spec *session.Spec, name string) *party.Records {
	t.Helper()
	for _, p := range c.Parties {
		if p.Name != name {
			continue
		}
		m, err := party.ParseMapping(p.Mapping)
		require.NoError(t, err)
		recs, err := party.ReadCSV(bytes.NewReader(p.CSV), spec, name, party.LoadOptions{Mapping: m})
		require.NoError(t, err)
		return recs
	}
	t.Fatalf("no party %s in cohort", name)
	return nil
}

var sessionSeq atomic.Int64

func newSessionID(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, sessionSeq.Add(1))
}

// ---------------------------------------------------------------- harness

type harness struct {
	t    *testing.T
	pki  *testPKI
	addr string
	srv  *coordinator.Server
	st   *store.Store
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("MPSI_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// newCoreTimeout is the coordinator with its store and the given round
// timeout, without the network.
func newCoreTimeout(t testing.TB, roundTimeout time.Duration, edit ...func(*coordinator.Config)) *harness {
	t.Helper()
	p := getPKI(t)
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "mpsi.db"))
	require.NoError(t, err)
	cfg := coordinator.Config{Store: st, Signer: p.signer(t, "coordinator"), Logger: testLogger(t),
		RoundTimeout: roundTimeout, MaxBatch: testMaxBatch}
	for _, e := range edit {
		e(&cfg)
	}
	srv, err := coordinator.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(sctx), "session goroutines must end")
		require.NoError(t, st.Close())
	})
	return &harness{pki: p, srv: srv, st: st}
}

// newHarness serves the coordinator over mutual TLS 1.3 on 127.0.0.1.
func newHarness(t *testing.T) *harness { return newHarnessTimeout(t, testRoundTimeout) }

// newHarnessTimeout is newHarness with another round timeout.
func newHarnessTimeout(t *testing.T, roundTimeout time.Duration, edit ...func(*coordinator.Config)) *harness {
	t.Helper()
	h := newCoreTimeout(t, roundTimeout, edit...)
	h.t = t
	scfg, err := devcert.ServerConfig(h.pki.ca, h.pki.leaves["coordinator"])
	require.NoError(t, err)
	g := grpc.NewServer(append(coordinator.ServerOptions(), grpc.Creds(credentials.NewTLS(scfg)))...)
	h.srv.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop) // runs before newCoreTimeout's cleanup
	h.addr = lis.Addr().String()
	return h
}

// client dials the coordinator with name's certificate.
func (h *harness) clientTLS(t testing.TB, cfg *tls.Config) mpsiv1.CoordinatorClient {
	t.Helper()
	cc, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return mpsiv1.NewCoordinatorClient(cc)
}

func (h *harness) client(t testing.TB, name string) mpsiv1.CoordinatorClient {
	return h.clientTLS(t, h.pki.clientTLS(t, name))
}

func (h *harness) create(t testing.TB, spec []byte) string {
	t.Helper()
	resp, err := h.client(t, "admin").CreateSession(context.Background(), &mpsiv1.CreateSessionRequest{SpecJson: spec})
	require.NoError(t, err)
	return resp.GetSessionId()
}

func (h *harness) result(t testing.TB, id string) *mpsiv1.GetResultResponse {
	t.Helper()
	r, err := h.client(t, "admin").GetResult(context.Background(), &mpsiv1.GetResultRequest{SessionId: id})
	require.NoError(t, err)
	return r
}

// waitState polls the stored state of session id until it is final or the
// timeout passes.
func (h *harness) waitFinal(t testing.TB, id string, timeout time.Duration) *store.Session {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rec, err := h.st.Session(context.Background(), id)
		require.NoError(t, err)
		if rec.State == store.StateAborted || rec.State == store.StateCompleted || time.Now().After(deadline) {
			return rec
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitEvents polls the audit log until every party in names has an event
// of the given kind in session id.
func (h *harness) waitEvents(t testing.TB, id, kind string, names ...string) {
	t.Helper()
	require.Eventually(t, func() bool {
		evs, err := h.st.Events(context.Background(), id)
		require.NoError(t, err)
		for _, n := range names {
			if !slices.ContainsFunc(evs, func(e store.Event) bool { return e.Kind == kind && e.Actor == n }) {
				return false
			}
		}
		return true
	}, 5*time.Second, 10*time.Millisecond, "waiting for %s of %v", kind, names)
}

type outcome struct {
	name string
	res  *session.Result
	err  error
}

// honest runs party name with party.RunRemote in a goroutine.
func (h *harness) honest(ctx context.Context, t testing.TB, c *cohort.Cohort, id, name string) <-chan outcome {
	return h.honestStage(ctx, t, c, id, name, nil)
}

// honestStage is honest with a hook called with every stage of aggregation
// encrypted the party reaches (protocol.StageReached events).
func (h *harness) honestStage(ctx context.Context, t testing.TB, c *cohort.Cohort, id, name string, stage func(string)) <-chan outcome {
	ch := make(chan outcome, 1)
	var observe func(protocol.Event)
	if stage != nil {
		observe = func(ev protocol.Event) {
			if e, ok := ev.(protocol.StageReached); ok {
				stage(e.Stage)
			}
		}
	}
	cfg := h.remoteConfig(t, c, id, name)
	cfg.Observe = observe
	go func() {
		res, err := party.RunRemote(ctx, cfg)
		ch <- outcome{name, res, err}
	}()
	return ch
}

// remoteConfig is party name's configuration for session id: the
// coordinator's address, its TLS, and its records from the cohort.
func (h *harness) remoteConfig(t testing.TB, c *cohort.Cohort, id, name string) party.RemoteConfig {
	return party.RemoteConfig{Address: h.addr, TLS: h.pki.clientTLS(t, name), Session: id,
		Load: func(spec *session.Spec) (*party.Records, error) {
			for _, p := range c.Parties {
				if p.Name == name {
					m, err := party.ParseMapping(p.Mapping)
					if err != nil {
						return nil, err
					}
					return party.ReadCSV(bytes.NewReader(p.CSV), spec, name, party.LoadOptions{Mapping: m})
				}
			}
			return nil, errors.New("no such party")
		}}
}

func collect(t testing.TB, chs ...<-chan outcome) []outcome {
	t.Helper()
	return collectWithin(t, testRoundTimeout+10*time.Second, chs...)
}

// collectWithin is collect with another timeout per party.
func collectWithin(t testing.TB, d time.Duration, chs ...<-chan outcome) []outcome {
	t.Helper()
	var out []outcome
	for _, ch := range chs {
		select {
		case o := <-ch:
			out = append(out, o)
		case <-time.After(d):
			t.Fatalf("an honest party did not return")
		}
	}
	return out
}

// runHappy runs a whole session with three honest parties and returns the
// released Result JSON.
func (h *harness) runHappy(t testing.TB, c *cohort.Cohort, id string) []byte {
	t.Helper()
	b, _ := h.runSession(t, c, id, nil)
	return b
}

// runSession is runHappy with a spec edit; it also returns the parties'
// own Results.
func (h *harness) runSession(t testing.TB, c *cohort.Cohort, id string, edit func(map[string]any)) ([]byte, []outcome) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h.create(t, specJSON(t, c, id, edit))
	var chs []<-chan outcome
	for _, n := range partyNames {
		chs = append(chs, h.honest(ctx, t, c, id, n))
	}
	outs := collectWithin(t, 30*time.Second, chs...)
	r := h.result(t, id)
	require.Equal(t, store.StateCompleted, r.GetState(), "reason: %s", r.GetReason())
	for _, o := range outs {
		require.NoError(t, o.err, o.name)
		b, err := json.Marshal(o.res)
		require.NoError(t, err)
		require.JSONEq(t, string(r.GetResultJson()), string(b), "party %s's result is the released one", o.name)
	}
	require.NoError(t, envelope.VerifyResult(h.pki.cert(t, "coordinator"), id, r.GetResultJson(), r.GetSignature()))
	return r.GetResultJson(), outs
}

// requireAborted checks the stored state, the reason and that nothing was
// released, for the admin and for a party of the session.
func (h *harness) requireAborted(t testing.TB, id string, substrs ...string) string {
	t.Helper()
	rec := h.waitFinal(t, id, testRoundTimeout+deadlineSlack)
	require.Equal(t, store.StateAborted, rec.State)
	for _, s := range substrs {
		require.Contains(t, rec.Reason, s)
	}
	for _, who := range []string{"admin", "hospital-b"} {
		r, err := h.client(t, who).GetResult(context.Background(), &mpsiv1.GetResultRequest{SessionId: id})
		require.NoError(t, err, who)
		require.Equal(t, store.StateAborted, r.GetState())
		require.Equal(t, rec.Reason, r.GetReason())
		require.Empty(t, r.GetResultJson(), "nothing is released")
		require.Empty(t, r.GetSignature())
	}
	_, _, err := h.st.Result(context.Background(), id)
	require.ErrorIs(t, err, store.ErrNotFound, "no result stored")
	return rec.Reason
}

// requireHonestAborted checks that every honest outcome failed with
// party.ErrAborted carrying the reason.
func requireHonestAborted(t testing.TB, outs []outcome, reason string) {
	t.Helper()
	for _, o := range outs {
		require.Nil(t, o.res, o.name)
		require.ErrorIs(t, o.err, party.ErrAborted, o.name)
		require.ErrorContains(t, o.err, reason, o.name)
	}
}

// ---------------------------------------------------------------- adversary

// adversary is a party speaking the protocol by hand over a raw stream:
// frames it encodes itself with protocol.Encode (or not at all).
type adversary struct {
	t        testing.TB
	name     string
	stream   grpc.BidiStreamingClient[mpsiv1.Frame, mpsiv1.Frame]
	cancel   context.CancelFunc
	spec     *session.Spec
	idx      int
	maxBatch int
	p        *protocol.Holder // honest state, to play honestly where needed
	key      *envelope.SessionKey
	seq      atomic.Uint64 // the number of the last frame sent
	roster   []protocol.RosterEntry
	ringOut  []byte // the key our ring batches are authenticated with (dh)
}

// join opens name's stream, says Hello and reads the Welcome.
func (h *harness) join(ctx context.Context, t testing.TB, c *cohort.Cohort, name, id string) *adversary {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	stream, err := h.client(t, name).Run(ctx)
	require.NoError(t, err)
	a := &adversary{t: t, name: name, stream: stream, cancel: cancel}
	a.send(hello(id))
	m := a.recv()
	w, ok := m.(*protocol.Welcome)
	require.True(t, ok, "got %s", m.Type())
	require.Equal(t, protocol.Header{Session: id, From: protocol.FromCoordinator}, w.Header)
	a.spec, err = session.ParseSpec(w.Spec)
	require.NoError(t, err)
	a.idx, a.maxBatch = int(w.Index), int(w.MaxBatch)
	require.Equal(t, a.spec.PartyIndex(name), a.idx)
	require.Equal(t, testMaxBatch, a.maxBatch)
	a.p, err = protocol.NewHolder(a.spec, name, records(t, c, a.spec, name), 0)
	require.NoError(t, err)
	a.key, err = envelope.GenerateSessionKey()
	require.NoError(t, err)
	return a
}

// hdr is the header of the adversary's honest messages.
func (a *adversary) hdr() protocol.Header {
	return protocol.Header{Session: a.spec.ID, From: protocol.Sender(a.idx)}
}

// frame encodes m as the first frame of a stream (seq 1).
func frame(t testing.TB, m protocol.Message) *mpsiv1.Frame {
	t.Helper()
	b, err := protocol.Encode(m)
	require.NoError(t, err)
	return &mpsiv1.Frame{Data: b, Seq: 1}
}

// numbered is b as the adversary's next frame.
func (a *adversary) numbered(b []byte) *mpsiv1.Frame {
	return &mpsiv1.Frame{Data: b, Seq: a.seq.Add(1)}
}

func (a *adversary) send(m protocol.Message) {
	a.t.Helper()
	b, err := protocol.Encode(m)
	require.NoError(a.t, err)
	require.NoError(a.t, a.stream.Send(a.numbered(b)))
}

// sendRaw sends b as a frame's data, as it is.
func (a *adversary) sendRaw(b []byte) {
	a.t.Helper()
	require.NoError(a.t, a.stream.Send(a.numbered(b)))
}

// trySend sends m, ignoring a stream the coordinator already ended.
func (a *adversary) trySend(m protocol.Message) {
	b, err := protocol.Encode(m)
	require.NoError(a.t, err)
	_ = a.stream.Send(a.numbered(b))
}

// recvFrame reads the coordinator's next frame that carries a message
// (skipping pure acknowledgements).
func (a *adversary) recvFrame() (*mpsiv1.Frame, error) {
	for {
		f, err := a.stream.Recv()
		if err != nil || len(f.GetData()) > 0 {
			return f, err
		}
	}
}

// recv reads and decodes the coordinator's next frame, which must come from
// the coordinator for this session.
func (a *adversary) recv() protocol.Message {
	a.t.Helper()
	f, err := a.recvFrame()
	require.NoError(a.t, err)
	m, err := protocol.Decode(f.GetData())
	require.NoError(a.t, err, "the coordinator sent an undecodable frame")
	require.Equal(a.t, protocol.FromCoordinator, m.Head().From)
	return m
}

// readyMsg is a Ready with a valid key and signature for setSize.
func (a *adversary) readyMsg(h *harness, setSize uint64) *protocol.Ready {
	sig, err := envelope.SignReady(h.pki.signer(a.t, a.name), envelope.ReadyStatement{Session: a.spec.ID, Name: a.name,
		HPKEKey: a.key.Public(), SetSize: setSize, SpecHash: protocol.SpecHash(a.spec.Canonical())})
	require.NoError(a.t, err)
	return &protocol.Ready{Header: a.hdr(), SetSize: setSize, HPKEKey: a.key.Public(), Signature: sig,
		Normalization: ident.NormalizationVersion()}
}

// ready declares the adversary's real set size and reads the roster.
func (a *adversary) ready(h *harness) {
	a.t.Helper()
	a.send(a.readyMsg(h, uint64(a.p.SetSize())))
	a.readRoster()
}

// readRoster reads until the roster.
func (a *adversary) readRoster() {
	a.t.Helper()
	for {
		switch m := a.recv().(type) {
		case *protocol.Abort:
			a.t.Fatalf("aborted before the roster: %s", m.Reason)
		case *protocol.Roster:
			a.roster = m.Entries
			return
		}
	}
}

// expectAbort reads until the coordinator's Abort, then requires the stream
// to end cleanly; it returns the Abort's reason.
func (a *adversary) expectAbort() string { return a.expectAbortMsg().Reason }

// expectAbortMsg is expectAbort returning the whole Abort.
func (a *adversary) expectAbortMsg() *protocol.Abort {
	a.t.Helper()
	for {
		f, err := a.recvFrame()
		require.NoError(a.t, err, "the coordinator must send Abort before ending the stream")
		m, err := protocol.Decode(f.GetData())
		require.NoError(a.t, err)
		if ab, ok := m.(*protocol.Abort); ok {
			require.Equal(a.t, protocol.Header{Session: a.spec.ID, From: protocol.FromCoordinator}, ab.Header)
			_, err := a.recvFrame()
			require.ErrorIs(a.t, err, io.EOF, "stream ends after Abort, got %v", err)
			return ab
		}
		require.NotEqual(a.t, protocol.TypeResult, m.Type(), "nothing may be released")
	}
}

// seal seals msg to party to for (round, a → to).
func (a *adversary) seal(round protocol.EnvelopeRound, to int, msg []byte) *protocol.Envelope {
	seal := a.key.Seal
	if round == protocol.EnvelopeThresholdShare {
		seal = a.key.SealBulk
	}
	enc, ct, err := seal(a.roster[to].HPKEKey, a.spec.ID, uint32(round), uint32(a.idx), uint32(to), msg)
	require.NoError(a.t, err)
	return &protocol.Envelope{Header: a.hdr(), Round: round, FromParty: uint32(a.idx), To: uint32(to), Enc: enc, Ciphertext: ct}
}

// ring returns the adversary's own hop-0 list (valid points).
func (a *adversary) ring() []byte {
	pts, err := a.p.StartRing()
	require.NoError(a.t, err)
	return pointsBytes(pts)
}

func pointsBytes(p []psi.Point) []byte {
	var b []byte
	for i := range p {
		b = append(b, p[i][:]...)
	}
	return b
}

// batch is a ring batch from the adversary, authenticated with its ring
// key (sendRingKey) as an honest party's would be.
func (a *adversary) batch(owner, hop, off, total int, data []byte) *protocol.Batch {
	b := &protocol.Batch{Header: a.hdr(), Kind: protocol.BatchRing, Owner: uint32(owner), Hop: uint32(hop),
		Offset: uint64(off), Total: uint64(total), Data: data}
	if a.ringOut != nil {
		b.MAC = protocol.RingMAC(a.ringOut, a.spec.ID, b.Owner, b.Hop, b.Offset, b.Total, data)
	}
	return b
}

// sendRingKey seals the adversary's ring key to the next party (dh).
func (a *adversary) sendRingKey() {
	a.t.Helper()
	a.ringOut = bytes.Repeat([]byte{0x17}, 32)
	a.send(a.seal(protocol.EnvelopeRingKey, (a.idx+1)%len(a.spec.Parties), a.ringOut))
}

// playPaced plays honestly (seeds, own ring list, hops) until the
// coordinator deals the mask, sending its own list's batches pace apart.
func (a *adversary) playPaced(pace time.Duration) {
	a.t.Helper()
	n := len(a.spec.Parties)
	for j := 0; j < n; j++ {
		if j != a.idx {
			s, err := a.p.Seed(j)
			require.NoError(a.t, err)
			a.send(a.seal(protocol.EnvelopeMaskSeed, j, s[:]))
		}
	}
	a.sendRingKey()
	own := a.ring()
	total := len(own) / psi.PointSize
	for off := 0; off < total; off += a.maxBatch {
		time.Sleep(pace)
		end := min(off+a.maxBatch, total)
		a.send(a.batch(a.idx, 0, off, total, own[off*32:end*32]))
	}
	for {
		switch m := a.recv().(type) {
		case *protocol.Abort:
			a.t.Fatalf("aborted while playing honestly: %s", m.Reason)
		case *protocol.MaskDeal:
			return
		case *protocol.Batch:
			if m.Kind != protocol.BatchRing {
				continue
			}
			pts := make([]psi.Point, len(m.Data)/32)
			for k := range pts {
				copy(pts[k][:], m.Data[k*32:])
			}
			_, err := a.p.Hop(pts)
			require.NoError(a.t, err)
			a.send(a.batch(int(m.Owner), int(m.Hop), int(m.Offset), int(m.Total), pointsBytes(pts)))
		}
	}
}

// hello is the first message of a party's stream.
func hello(id string) *protocol.Hello {
	return &protocol.Hello{Header: protocol.Header{Session: id, From: protocol.FromUnassigned}}
}

func requireStatus(t testing.TB, err error, code codes.Code, substr string) {
	t.Helper()
	require.Error(t, err)
	st, ok := status.FromError(err)
	require.True(t, ok, "not a status: %v", err)
	require.Equal(t, code, st.Code(), "status %v", st)
	require.Contains(t, st.Message(), substr)
}

// recvStatus reads a stream until it ends and returns its final error.
func recvStatus(stream grpc.BidiStreamingClient[mpsiv1.Frame, mpsiv1.Frame]) error {
	for {
		if _, err := stream.Recv(); err != nil {
			return err
		}
	}
}

// ================================================================ 1. auth

func TestAuthentication(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := getCohort(t, session.ModeDH)
	ctx := context.Background()

	t.Run("certificate from another CA fails the handshake", func(t *testing.T) {
		cert, err := h.pki.rogueA.TLSCertificate()
		require.NoError(t, err)
		cfg := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, RootCAs: h.pki.ca.Pool()}
		cl := h.clientTLS(t, cfg)
		id := h.create(t, specJSON(t, c, newSessionID("rogue"), nil))
		_, err = cl.GetResult(ctx, &mpsiv1.GetResultRequest{SessionId: id})
		requireStatus(t, err, codes.Unavailable, "")
		stream, err := cl.Run(ctx)
		if err == nil {
			_ = stream.Send(frame(t, hello(id)))
			err = recvStatus(stream)
		}
		requireStatus(t, err, codes.Unavailable, "")
		// Nothing reached the session.
		evs, err := h.st.Events(ctx, id)
		require.NoError(t, err)
		for _, e := range evs {
			require.NotEqual(t, "party.joined", e.Kind)
		}
	})

	t.Run("valid certificate not in the spec", func(t *testing.T) {
		id := h.create(t, specJSON(t, c, newSessionID("outsider"), nil))
		for _, who := range []string{"outsider", "admin"} {
			stream, err := h.client(t, who).Run(ctx)
			require.NoError(t, err)
			require.NoError(t, stream.Send(frame(t, hello(id))))
			requireStatus(t, recvStatus(stream), codes.PermissionDenied, fmt.Sprintf("%q is not a party of session %s", who, id))
		}
	})

	t.Run("non-admin cannot create sessions", func(t *testing.T) {
		for _, who := range []string{"hospital-a", "outsider"} {
			_, err := h.client(t, who).CreateSession(ctx, &mpsiv1.CreateSessionRequest{SpecJson: specJSON(t, c, newSessionID("x"), nil)})
			requireStatus(t, err, codes.PermissionDenied, "may not create sessions")
		}
	})

	t.Run("invalid spec and duplicate id", func(t *testing.T) {
		_, err := h.client(t, "admin").CreateSession(ctx, &mpsiv1.CreateSessionRequest{SpecJson: []byte(`{"id":"x"}`)})
		requireStatus(t, err, codes.InvalidArgument, "invalid spec")
		spec := specJSON(t, c, newSessionID("dup"), nil)
		h.create(t, spec)
		_, err = h.client(t, "admin").CreateSession(ctx, &mpsiv1.CreateSessionRequest{SpecJson: spec})
		requireStatus(t, err, codes.AlreadyExists, "already exists")
	})

	t.Run("GetResult by a non-party non-admin", func(t *testing.T) {
		id := h.create(t, specJSON(t, c, newSessionID("getresult"), nil))
		_, err := h.client(t, "outsider").GetResult(ctx, &mpsiv1.GetResultRequest{SessionId: id})
		requireStatus(t, err, codes.PermissionDenied, "neither an admin nor a party")
		r, err := h.client(t, "hospital-c").GetResult(ctx, &mpsiv1.GetResultRequest{SessionId: id})
		require.NoError(t, err, "a party may read its session")
		require.Equal(t, store.StateCreated, r.GetState())
		_, err = h.client(t, "admin").GetResult(ctx, &mpsiv1.GetResultRequest{SessionId: "no-such-session"})
		requireStatus(t, err, codes.NotFound, "not found")
	})

	t.Run("Hello for an unknown session", func(t *testing.T) {
		stream, err := h.client(t, "hospital-a").Run(ctx)
		require.NoError(t, err)
		require.NoError(t, stream.Send(frame(t, hello("no-such-session"))))
		requireStatus(t, recvStatus(stream), codes.NotFound, `unknown session: "no-such-session"`)
	})

	t.Run("first message is not Hello", func(t *testing.T) {
		id := h.create(t, specJSON(t, c, newSessionID("not-hello"), nil))
		sig := make([]byte, 64)
		for _, tc := range []struct {
			name   string
			data   []byte
			substr string
		}{
			{"empty frame", nil, "malformed message"},
			{"garbage", []byte("GET / HTTP/1.1"), "malformed message"},
			{"Ready", frame(t, &protocol.Ready{Header: protocol.Header{Session: id}, SetSize: 1, HPKEKey: make([]byte, 32), Signature: sig}).Data,
				"the first message must be Hello, not Ready"},
			{"Abort", frame(t, &protocol.Abort{Header: protocol.Header{Session: id, From: protocol.FromUnassigned}, Reason: "x"}).Data,
				"the first message must be Hello, not Abort"},
		} {
			stream, err := h.client(t, "hospital-a").Run(ctx)
			require.NoError(t, err)
			require.NoError(t, stream.Send(&mpsiv1.Frame{Data: tc.data}))
			requireStatus(t, recvStatus(stream), codes.InvalidArgument, tc.substr)
		}
		// None of them reached the session.
		evs, err := h.st.Events(ctx, id)
		require.NoError(t, err)
		require.False(t, slices.ContainsFunc(evs, func(e store.Event) bool { return e.Kind == "party.joined" }))
		require.Equal(t, store.StateCreated, h.result(t, id).GetState())
	})

	t.Run("second stream for a connected party", func(t *testing.T) {
		id := newSessionID("second")
		h.create(t, specJSON(t, c, id, nil))
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		a := h.honest(cctx, t, c, id, "hospital-a")
		h.waitEvents(t, id, "party.ready", "hospital-a")
		stream, err := h.client(t, "hospital-a").Run(ctx)
		require.NoError(t, err)
		require.NoError(t, stream.Send(frame(t, hello(id))))
		requireStatus(t, recvStatus(stream), codes.FailedPrecondition, "party hospital-a is already connected")
		// The first stream and the session are unaffected.
		outs := collect(t, a, h.honest(cctx, t, c, id, "hospital-b"), h.honest(cctx, t, c, id, "hospital-c"))
		for _, o := range outs {
			require.NoError(t, o.err, o.name)
		}
		require.Equal(t, store.StateCompleted, h.result(t, id).GetState())
	})
}

// A certificate that is not a party of a finished session must not learn
// its state or abort reason through Run (GetResult refuses it the same).
func TestRunDoesNotLeakFinishedSessionToOutsider(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := getCohort(t, session.ModeDH)
	id := h.create(t, specJSON(t, c, newSessionID("leak"), nil))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := h.join(ctx, t, c, "hospital-a", id)
	a.send(&protocol.Abort{Header: a.hdr(), Code: protocol.CodePolicy, Reason: "secret-ish operational detail"})
	a.expectAbort()
	h.requireAborted(t, id, "secret-ish operational detail")

	stream, err := h.client(t, "outsider").Run(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(frame(t, hello(id))))
	err = recvStatus(stream)
	require.NotContains(t, status.Convert(err).Message(), "secret-ish", "abort reason leaked to a non-party")
	requireStatus(t, err, codes.PermissionDenied, "not a party")
}

// ================================================================ 2. malformed frames

// advCase is one misbehaviour of hospital-a, with hospital-b and
// hospital-c honest.
type advCase struct {
	name string
	// preRoster runs instead of Ready + roster, once the honest parties are ready.
	preRoster func(t *testing.T, h *harness, a *adversary)
	// act runs after the roster.
	act func(t *testing.T, h *harness, a *adversary)
	// reason: substrings of the abort reason.
	reason []string
	// code is the abort's code.
	code protocol.Code
	// detector, if set, is the honest party that detects the problem itself
	// (its error must wrap detErr), or "any"; the others get ErrAborted.
	detector string
	detErr   error
}

// The transport path of bad input: frames are decoded by the protocol
// codec and checked by the session's machine against the stream they came
// on, and whatever the check, the session aborts with one reason, stored
// and broadcast alike, and nothing is released. The machine's checks
// message by message are tested in package protocol.
func TestMalformedFrames(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := getCohort(t, session.ModeDH)
	cases := []advCase{
		{name: "undecodable frame", preRoster: func(t *testing.T, h *harness, a *adversary) {
			a.sendRaw([]byte{protocol.Version, byte(protocol.TypeReady), 0xff})
		}, reason: []string{"party hospital-a: undecodable message: " + protocol.ErrMalformed.Error()}, code: protocol.CodeBadMessage},
		{name: "header names another session", preRoster: func(t *testing.T, h *harness, a *adversary) {
			m := a.readyMsg(h, uint64(a.p.SetSize()))
			m.Session = "other-session"
			a.send(m)
		}, reason: []string{"party hospital-a: " + protocol.ErrBadMessage.Error(), `Ready names session "other-session"`}, code: protocol.CodeBadMessage},
		{name: "header names another sender", preRoster: func(t *testing.T, h *harness, a *adversary) {
			m := a.readyMsg(h, uint64(a.p.SetSize()))
			m.From = 1
			a.send(m)
		}, reason: []string{"party hospital-a: " + protocol.ErrBadMessage.Error(), "Ready on party 0's stream names sender party 1"}, code: protocol.CodeBadMessage},
		{name: "Ready with a forged signature (parties reject the roster)", preRoster: func(t *testing.T, h *harness, a *adversary) {
			m := a.readyMsg(h, uint64(a.p.SetSize()))
			m.Signature[len(m.Signature)-1] ^= 1
			a.send(m)
		}, reason: []string{" aborted: " + envelope.ErrRoster.Error(), "hospital-a: signature over its key, set size and spec does not verify"}, code: protocol.CodeRoster,
			detector: "any", detErr: envelope.ErrRoster},
		{name: "envelope tampered (recipient rejects)", act: func(t *testing.T, h *harness, a *adversary) {
			e := a.seal(protocol.EnvelopeMaskSeed, 1, make([]byte, 32))
			e.Ciphertext[0] ^= 1
			a.send(e)
		}, reason: []string{"party hospital-b aborted: envelope from hospital-a: " + envelope.ErrEnvelope.Error()}, code: protocol.CodeCrypto,
			detector: "hospital-b", detErr: envelope.ErrEnvelope},
		{name: "party aborts with a long reason", preRoster: func(t *testing.T, h *harness, a *adversary) {
			a.send(&protocol.Abort{Header: a.hdr(), Code: protocol.CodePolicy, Reason: strings.Repeat("x", 1000)})
		}, reason: []string{"party hospital-a aborted: " + strings.Repeat("x", 200) + "…"}, code: protocol.CodePolicy},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runAdvCase(t, h, c, tc)
		})
	}
	// The server still runs a fresh session to completion.
	t.Cleanup(func() { h.runHappy(t, c, newSessionID("after-malformed")) })
}

func runAdvCase(t *testing.T, h *harness, c *cohort.Cohort, tc advCase) {
	id := newSessionID("adv")
	h.create(t, specJSON(t, c, id, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	b := h.honest(ctx, t, c, id, "hospital-b")
	cc := h.honest(ctx, t, c, id, "hospital-c")
	a := h.join(ctx, t, c, "hospital-a", id)
	if tc.preRoster != nil {
		h.waitEvents(t, id, "party.ready", "hospital-b", "hospital-c")
		tc.preRoster(t, h, a)
	} else {
		a.ready(h)
		tc.act(t, h, a)
	}
	ab := a.expectAbortMsg()
	reason := ab.Reason
	for _, s := range tc.reason {
		require.Contains(t, reason, s)
	}
	require.Equal(t, tc.code, ab.Code, "abort code (%s)", ab.Code)
	require.Equal(t, reason, h.requireAborted(t, id, tc.reason...), "the stored reason is the one broadcast")
	outs := collect(t, b, cc)
	for _, o := range outs {
		require.Nil(t, o.res, o.name)
		if tc.detector == o.name || (tc.detector == "any" && !errors.Is(o.err, party.ErrAborted)) {
			require.ErrorIs(t, o.err, tc.detErr, o.name)
			continue
		}
		require.ErrorIs(t, o.err, party.ErrAborted, o.name)
		require.ErrorContains(t, o.err, reason, o.name)
	}
}

// ================================================================ 3. deadline

func TestSilentPartyDeadline(t *testing.T) {
	t.Parallel()
	c := getCohort(t, session.ModeDH)
	for _, tc := range []struct {
		name  string
		round string
		ready bool
	}{
		{"silent after Hello", "setup", false},
		{"silent after the roster", "tokens", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			id := newSessionID("silent")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			h.create(t, specJSON(t, c, id, nil))
			b := h.honest(ctx, t, c, id, "hospital-b")
			cc := h.honest(ctx, t, c, id, "hospital-c")
			a := h.join(ctx, t, c, "hospital-a", id)
			if tc.ready {
				a.ready(h)
				start = time.Now()
			}
			reason := a.expectAbort()
			elapsed := time.Since(start)
			require.GreaterOrEqual(t, elapsed, testRoundTimeout-100*time.Millisecond, "not before the deadline")
			require.Less(t, elapsed, testRoundTimeout+deadlineSlack, "within the deadline")
			require.Contains(t, reason, "deadline exceeded")
			require.Contains(t, reason, "in round "+tc.round)
			require.Contains(t, reason, "hospital-a")
			h.requireAborted(t, id, reason)
			requireHonestAborted(t, collect(t, b, cc), reason)
			// Only the silent party is blamed.
			require.NotContains(t, reason, "hospital-b", "honest party blamed")
			require.NotContains(t, reason, "hospital-c", "honest party blamed")
		})
	}
}

// A round that lasts longer than the round timeout but keeps making
// progress is not cut off: the deadline counts time without progress.
func TestSlowButSteadyRoundIsNotCut(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := getCohort(t, session.ModeDH)
	id := newSessionID("steady")
	h.create(t, specJSON(t, c, id, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := h.honest(ctx, t, c, id, "hospital-b")
	cc := h.honest(ctx, t, c, id, "hospital-c")
	a := h.join(ctx, t, c, "hospital-a", id)
	a.ready(h)
	start := time.Now()
	// Its own list in batches, each 40% of the round timeout after the
	// last (three batches: the token round outlasts the timeout), then the
	// hops at once; playPaced fails on an Abort.
	a.playPaced(testRoundTimeout * 4 / 10)
	require.Greater(t, time.Since(start), testRoundTimeout, "the token round outlasted the timeout")
	a.cancel()
	collect(t, b, cc)
}

// ================================================================ 4. disconnect

func TestPartyDisconnectsMidRing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := getCohort(t, session.ModeDH)
	for _, tc := range []struct {
		name   string
		leave  func(a *adversary)
		reason []string
	}{
		{"context cancelled", func(a *adversary) { a.cancel() }, []string{"party hospital-a disconnected"}},
		{"stream closed", func(a *adversary) { require.NoError(t, a.stream.CloseSend()) }, []string{"party hospital-a closed its stream before the end"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := newSessionID("disconnect")
			h.create(t, specJSON(t, c, id, nil))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			b := h.honest(ctx, t, c, id, "hospital-b")
			cc := h.honest(ctx, t, c, id, "hospital-c")
			a := h.join(ctx, t, c, "hospital-a", id)
			a.ready(h)
			// Half of its own list, and wait for a hop batch of another list.
			a.sendRingKey()
			own := a.ring()
			a.send(a.batch(0, 0, 0, a.p.SetSize(), own[:a.maxBatch*32]))
			for {
				if _, ok := a.recv().(*protocol.Batch); ok {
					break
				}
			}
			left := time.Now()
			tc.leave(a)
			outs := collect(t, b, cc)
			require.Less(t, time.Since(left), testRoundTimeout, "abort at once, not at the deadline")
			reason := h.requireAborted(t, id, tc.reason...)
			requireHonestAborted(t, outs, reason)
		})
	}
	t.Cleanup(func() { h.runHappy(t, c, newSessionID("after-disconnect")) })
}

// fakeStream is a server-side Run stream whose Send fails (the transport
// broke) while Recv blocks: the branch of Run where the sender notices
// first.
type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
	in  chan *mpsiv1.Frame
}

func (f *fakeStream) Context() context.Context { return f.ctx }
func (f *fakeStream) Recv() (*mpsiv1.Frame, error) {
	select {
	case m := <-f.in:
		return m, nil
	case <-f.ctx.Done():
		return nil, status.FromContextError(f.ctx.Err()).Err()
	}
}
func (f *fakeStream) Send(*mpsiv1.Frame) error {
	return status.Error(codes.Unavailable, "transport is closing")
}

func peerCtx(ctx context.Context, cert *x509.Certificate) context.Context {
	return peer.NewContext(ctx, &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)},
		AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}}}})
}

// When sending to a party fails, Run returns; the session must learn that
// the party is gone at once, not at the round deadline.
func TestSendFailureAbortsSession(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := getCohort(t, session.ModeDH)
	id := h.create(t, specJSON(t, c, newSessionID("sendfail"), nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fs := &fakeStream{ctx: peerCtx(ctx, h.pki.cert(t, "hospital-a")), in: make(chan *mpsiv1.Frame, 1)}
	fs.in <- frame(t, hello(id))
	err := h.srv.Run(fs)
	require.Error(t, err)
	rec := h.waitFinal(t, id, testRoundTimeout/2)
	require.Equal(t, store.StateAborted, rec.State, "session still %s after its party's stream failed", rec.State)
	require.Contains(t, rec.Reason, "hospital-a")
	require.NotContains(t, rec.Reason, "deadline exceeded")
}

// ================================================================ 5. happy path

func TestHappyPathMatchesRunLocal(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{session.ModeDH, session.ModeKeyed} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			c := getCohort(t, mode)
			id := newSessionID("happy-" + mode)
			got := h.runHappy(t, c, id)
			spec, err := session.ParseSpec(specJSON(t, c, id, nil))
			require.NoError(t, err)
			var ins []party.Input
			for _, n := range partyNames {
				ins = append(ins, party.Input{Name: n, Records: records(t, c, spec, n)})
			}
			local, err := party.RunLocal(context.Background(), spec, ins, party.Config{})
			require.NoError(t, err)
			want, err := json.Marshal(local.Result)
			require.NoError(t, err)
			require.Equal(t, string(want), string(got))
			require.Equal(t, int64(c.Truth.Intersection), *local.Result.Intersection)
			// A party of the session reads the same signed result.
			r, err := h.client(t, "hospital-c").GetResult(context.Background(), &mpsiv1.GetResultRequest{SessionId: id})
			require.NoError(t, err)
			require.Equal(t, got, r.GetResultJson())
			// Hello for a completed session is refused.
			stream, err := h.client(t, "hospital-a").Run(context.Background())
			require.NoError(t, err)
			require.NoError(t, stream.Send(frame(t, hello(id))))
			requireStatus(t, recvStatus(stream), codes.FailedPrecondition, "session is over")
		})
	}
}

// ================================================================ white box

// A party attaching while the session's event queue is full must not wedge
// the session: attach must not hold the session lock while it blocks on the
// queue, since the session goroutine needs that lock to send anything (here,
// to broadcast the abort caused by a queued message).
func TestAttachWhileEventQueueFull(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := getCohort(t, session.ModeDH)
	id := newSessionID("wedge")
	spec, err := session.ParseSpec(specJSON(t, c, id, nil))
	require.NoError(t, err)
	require.NoError(t, h.st.CreateSession(context.Background(), spec.ID, spec.Canonical(), "admin"))
	// hospital-a attached, then 63 queued "Hello sent twice" messages from
	// it; hospital-b attaches.
	again := &protocol.Hello{Header: protocol.Header{Session: id, From: 0}}
	done, err := h.srv.AttachDuringFullQueue(spec, 0, h.pki.cert(t, "hospital-a"), again, 1, h.pki.cert(t, "hospital-b"))
	require.NoError(t, err)
	select {
	case <-done:
	case <-time.After(testRoundTimeout + deadlineSlack):
		t.Fatalf("session goroutine deadlocked: attach holds live.mu while blocked on a full event queue")
	}
	rec := h.waitFinal(t, id, time.Second)
	require.Equal(t, store.StateAborted, rec.State)
	require.Equal(t, "party hospital-a: "+protocol.ErrWrongRound.Error()+": Hello sent twice", rec.Reason,
		"aborted by the queued message, not by the deadline")
}

// A stream that never sends Hello is ended with DeadlineExceeded after the
// round deadline instead of holding a handler for ever.
func TestSilentStreamWithoutHello(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*testRoundTimeout)
	defer cancel()
	stream, err := h.client(t, "hospital-a").Run(ctx)
	require.NoError(t, err)
	start := time.Now()
	requireStatus(t, recvStatus(stream), codes.DeadlineExceeded, "no Hello within the round deadline")
	require.Less(t, time.Since(start), testRoundTimeout+2*time.Second)
}

// With a join budget the tokens go to spill files as they arrive; the
// Result is the same as with the in-memory join, in both modes, and no
// spill file is left behind (after a completed session or an aborted one).
func TestJoinBudgetSpills(t *testing.T) {
	spillDir := t.TempDir()
	mem := newHarness(t)
	spill := newHarnessTimeout(t, testRoundTimeout, func(c *coordinator.Config) {
		c.JoinBudget, c.SpillDir = 256<<10, spillDir
	})
	for _, mode := range []string{session.ModeDH, session.ModeKeyed} {
		c := getCohort(t, mode)
		want := canonicalResult(t, mem.runHappy(t, c, newSessionID("mem")))
		got := canonicalResult(t, spill.runHappy(t, c, newSessionID("spill")))
		require.Equal(t, want, got, mode)
		entries, err := os.ReadDir(spillDir)
		require.NoError(t, err)
		require.Empty(t, entries, "spill files removed after the join")
	}
	// A party that vanishes mid-token-round: the session aborts and its
	// spill files go too.
	c := getCohort(t, session.ModeKeyed)
	id := newSessionID("spill-abort")
	spill.create(t, specJSON(t, c, id, nil))
	ctx, cancel := context.WithCancel(context.Background())
	chA := spill.honest(ctx, t, c, id, "hospital-a")
	chC := spill.honest(ctx, t, c, id, "hospital-c")
	a := spill.join(context.Background(), t, c, "hospital-b", id)
	a.ready(spill)
	require.Eventually(t, func() bool {
		entries, err := os.ReadDir(spillDir)
		return err == nil && len(entries) == 1
	}, 10*time.Second, 10*time.Millisecond, "the session spills once the roster is out")
	a.trySend(&protocol.Abort{Header: a.hdr(), Code: protocol.CodePartyAborted, Reason: "test"})
	spill.waitFinal(t, id, 10*time.Second)
	cancel()
	<-chA
	<-chC
	require.Eventually(t, func() bool {
		entries, err := os.ReadDir(spillDir)
		return err == nil && len(entries) == 0
	}, 10*time.Second, 10*time.Millisecond, "spill files removed after an abort")
}

// Recover removes spill directories a crash left in an explicit spill
// directory, and nothing else there.
func TestRecoverRemovesStaleSpill(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "mpsi-join-spill-123")
	require.NoError(t, os.MkdirAll(stale, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(stale, "tokens"), []byte("x"), 0o600))
	other := filepath.Join(dir, "keep.txt")
	require.NoError(t, os.WriteFile(other, []byte("x"), 0o600))
	h := newCoreTimeout(t, testRoundTimeout, func(c *coordinator.Config) { c.SpillDir = dir })
	_, err := h.srv.Recover(context.Background())
	require.NoError(t, err)
	require.NoDirExists(t, stale)
	require.FileExists(t, other)
}
