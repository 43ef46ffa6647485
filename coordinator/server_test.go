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
	"runtime"
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
	"github.com/mpsi-dev/mpsi/psi/session"
	"github.com/mpsi-dev/mpsi/sharing"
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

// newCore is the coordinator with its store, without the network.
func newCore(t testing.TB) *harness { return newCoreTimeout(t, testRoundTimeout) }

// newCoreTimeout is newCore with another round timeout.
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

// newHarness serves newCore over mutual TLS 1.3 on 127.0.0.1.
func newHarness(t *testing.T) *harness { return newHarnessTimeout(t, testRoundTimeout) }

// newHarnessTimeout is newHarness with another round timeout.
func newHarnessTimeout(t *testing.T, roundTimeout time.Duration, edit ...func(*coordinator.Config)) *harness {
	t.Helper()
	h := newCoreTimeout(t, roundTimeout, edit...)
	h.t = t
	scfg, err := devcert.ServerConfig(h.pki.ca, h.pki.leaves["coordinator"])
	require.NoError(t, err)
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(scfg)),
		grpc.MaxRecvMsgSize(coordinator.MaxMessageSize), grpc.MaxSendMsgSize(coordinator.MaxMessageSize))
	h.srv.Register(g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop) // runs before newCore's cleanup
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

// honestStage is honest with a RemoteConfig.Stage hook.
func (h *harness) honestStage(ctx context.Context, t testing.TB, c *cohort.Cohort, id, name string, stage func(string)) <-chan outcome {
	ch := make(chan outcome, 1)
	cfg := party.RemoteConfig{Address: h.addr, TLS: h.pki.clientTLS(t, name), Session: id, Stage: stage,
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
	go func() {
		res, err := party.RunRemote(ctx, cfg)
		ch <- outcome{name, res, err}
	}()
	return ch
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

// adversary is a party speaking the protocol by hand over a raw stream.
type adversary struct {
	t        testing.TB
	name     string
	stream   grpc.BidiStreamingClient[mpsiv1.PartyMessage, mpsiv1.CoordinatorMessage]
	cancel   context.CancelFunc
	spec     *session.Spec
	idx      int
	maxBatch int
	p        *party.Party // honest state, to play honestly where needed
	key      *envelope.SessionKey
	roster   []*mpsiv1.RosterEntry
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
	m, err := stream.Recv()
	require.NoError(t, err)
	w := m.GetWelcome()
	require.NotNil(t, w, "got %v", m)
	a.spec, err = session.ParseSpec(w.GetSpecJson())
	require.NoError(t, err)
	a.idx, a.maxBatch = int(w.GetPartyIndex()), int(w.GetMaxBatch())
	require.Equal(t, a.spec.PartyIndex(name), a.idx)
	a.p, err = party.New(a.spec, name, records(t, c, a.spec, name), party.Config{})
	require.NoError(t, err)
	a.key, err = envelope.GenerateSessionKey()
	require.NoError(t, err)
	return a
}

func (a *adversary) send(m *mpsiv1.PartyMessage) {
	a.t.Helper()
	require.NoError(a.t, a.stream.Send(m))
}

// trySend sends m, ignoring a stream the coordinator already ended.
func (a *adversary) trySend(m *mpsiv1.PartyMessage) { _ = a.stream.Send(m) }

// readyMsg is a Ready with a valid key and signature for setSize.
func (a *adversary) readyMsg(h *harness, setSize uint64) *mpsiv1.PartyMessage {
	sig, err := envelope.SignSessionKey(h.pki.signer(a.t, a.name), a.spec.ID, a.name, a.key.Public())
	require.NoError(a.t, err)
	return &mpsiv1.PartyMessage{Msg: &mpsiv1.PartyMessage_Ready{Ready: &mpsiv1.Ready{SetSize: setSize, HpkePublicKey: a.key.Public(), Signature: sig,
		Normalization: ident.NormalizationVersion()}}}
}

// ready declares the adversary's real set size and reads the roster.
func (a *adversary) ready(h *harness) {
	a.t.Helper()
	a.send(a.readyMsg(h, uint64(a.p.SetSize())))
	for {
		m, err := a.stream.Recv()
		require.NoError(a.t, err)
		require.Nil(a.t, m.GetAbort(), "aborted before the roster")
		if r := m.GetRoster(); r != nil {
			a.roster = r.GetParties()
			return
		}
	}
}

// expectAbort reads until the coordinator's Abort, then requires the stream
// to end cleanly.
func (a *adversary) expectAbort() string {
	a.t.Helper()
	for {
		m, err := a.stream.Recv()
		require.NoError(a.t, err, "the coordinator must send Abort before ending the stream")
		if ab := m.GetAbort(); ab != nil {
			_, err := a.stream.Recv()
			require.ErrorIs(a.t, err, io.EOF, "stream ends after Abort, got %v", err)
			return ab.GetReason()
		}
		require.Nil(a.t, m.GetResult(), "nothing may be released")
	}
}

// seal seals msg to party to for (round, a → to).
func (a *adversary) seal(round mpsiv1.Round, to int, msg []byte) *mpsiv1.Envelope {
	enc, ct, err := envelope.Seal(a.roster[to].GetHpkePublicKey(), a.spec.ID, uint32(round), uint32(a.idx), uint32(to), msg)
	require.NoError(a.t, err)
	return &mpsiv1.Envelope{Round: round, From: uint32(a.idx), To: uint32(to), Enc: enc, Ciphertext: ct}
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

// playUntilMask plays honestly (seeds, own ring list, hops) until the
// coordinator deals the mask.
func (a *adversary) playUntilMask() { a.playPaced(0) }

// playPaced plays honestly until the mask deal, sending its own list's
// batches pace apart.
func (a *adversary) playPaced(pace time.Duration) {
	a.t.Helper()
	n := len(a.spec.Parties)
	for j := 0; j < n; j++ {
		if j != a.idx {
			s, err := a.p.Seed(j)
			require.NoError(a.t, err)
			a.send(envMsg(a.seal(mpsiv1.Round_ROUND_MASK_SEED, j, s[:])))
		}
	}
	own := a.ring()
	total := len(own) / psi.PointSize
	for off := 0; off < total; off += a.maxBatch {
		time.Sleep(pace)
		end := min(off+a.maxBatch, total)
		a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, a.idx, 0, off, total, own[off*32:end*32]))
	}
	for {
		m, err := a.stream.Recv()
		require.NoError(a.t, err)
		require.Nil(a.t, m.GetAbort(), "aborted while playing honestly")
		if m.GetMask() != nil {
			return
		}
		if b := m.GetBatch(); b != nil && b.GetKind() == mpsiv1.BatchKind_BATCH_KIND_RING {
			pts := make([]psi.Point, len(b.GetData())/32)
			for k := range pts {
				copy(pts[k][:], b.GetData()[k*32:])
			}
			_, err := a.p.Hop(pts)
			require.NoError(a.t, err)
			a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, int(b.GetOwner()), int(b.GetHop()), int(b.GetOffset()), int(b.GetTotal()), pointsBytes(pts)))
		}
	}
}

func hello(id string) *mpsiv1.PartyMessage {
	return &mpsiv1.PartyMessage{Msg: &mpsiv1.PartyMessage_Hello{Hello: &mpsiv1.Hello{SessionId: id}}}
}

func envMsg(e *mpsiv1.Envelope) *mpsiv1.PartyMessage {
	return &mpsiv1.PartyMessage{Msg: &mpsiv1.PartyMessage_Envelope{Envelope: e}}
}

func batchMsg(kind mpsiv1.BatchKind, owner, hop, off, total int, data []byte) *mpsiv1.PartyMessage {
	return &mpsiv1.PartyMessage{Msg: &mpsiv1.PartyMessage_Batch{Batch: &mpsiv1.Batch{
		Kind: kind, Owner: uint32(owner), Hop: uint32(hop), Offset: uint64(off), Total: uint64(total), Data: data}}}
}

func shareMsg(b []byte) *mpsiv1.PartyMessage {
	return &mpsiv1.PartyMessage{Msg: &mpsiv1.PartyMessage_Share{Share: &mpsiv1.Share{Vector: b}}}
}

func vectorBytes(t testing.TB, n int) []byte {
	b, err := make(sharing.Vector, n).MarshalBinary()
	require.NoError(t, err)
	return b
}

func layoutLen(t testing.TB, spec *session.Spec) int {
	l, err := session.NewLayout(spec)
	require.NoError(t, err)
	return l.Len()
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
func recvStatus(stream grpc.BidiStreamingClient[mpsiv1.PartyMessage, mpsiv1.CoordinatorMessage]) error {
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
			_ = stream.Send(hello(id))
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
			require.NoError(t, stream.Send(hello(id)))
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
		require.NoError(t, stream.Send(hello("no-such-session")))
		requireStatus(t, recvStatus(stream), codes.NotFound, `unknown session: "no-such-session"`)
	})

	t.Run("first message is not Hello", func(t *testing.T) {
		for _, m := range []*mpsiv1.PartyMessage{
			{},
			{Msg: &mpsiv1.PartyMessage_Ready{Ready: &mpsiv1.Ready{SetSize: 1}}},
			{Msg: &mpsiv1.PartyMessage_Abort{Abort: &mpsiv1.Abort{Reason: "x"}}},
		} {
			stream, err := h.client(t, "hospital-a").Run(ctx)
			require.NoError(t, err)
			require.NoError(t, stream.Send(m))
			requireStatus(t, recvStatus(stream), codes.InvalidArgument, "the first message must be Hello")
		}
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
		require.NoError(t, stream.Send(hello(id)))
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
	a.send(&mpsiv1.PartyMessage{Msg: &mpsiv1.PartyMessage_Abort{Abort: &mpsiv1.Abort{Reason: "secret-ish operational detail"}}})
	a.expectAbort()
	h.requireAborted(t, id, "secret-ish operational detail")

	stream, err := h.client(t, "outsider").Run(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(hello(id)))
	err = recvStatus(stream)
	require.NotContains(t, status.Convert(err).Message(), "secret-ish", "abort reason leaked to a non-party")
	requireStatus(t, err, codes.PermissionDenied, "not a party")
}

// ================================================================ 2. malformed messages

type advCase struct {
	name string
	// preRoster runs instead of Ready + roster, once the honest parties are ready.
	preRoster func(t *testing.T, h *harness, a *adversary)
	// act runs after the roster.
	act func(t *testing.T, h *harness, a *adversary)
	// reason: substrings of the abort reason.
	reason []string
	// detector, if set, is the honest party that detects the problem itself
	// (its error must wrap detErr); the others get ErrAborted.
	detector string
	detErr   error
}

func TestMalformedMessages(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := getCohort(t, session.ModeDH)
	const ff = 0xff
	allFF := bytes.Repeat([]byte{ff}, 32)
	identity := make([]byte, 32)
	size := func(a *adversary) int { return a.p.SetSize() }

	cases := []advCase{
		// Ring batches.
		{name: "ring point not canonical (all 0xff)", act: func(t *testing.T, h *harness, a *adversary) {
			a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, 0, 0, 0, size(a), bytes.Repeat(allFF, min(size(a), a.maxBatch))))
		}, reason: []string{"invalid group element", "not a canonical encoding"}, detector: "hospital-b", detErr: psi.ErrInvalidPoint},
		{name: "ring point is the identity", act: func(t *testing.T, h *harness, a *adversary) {
			data := a.ring()[:a.maxBatch*32]
			copy(data[3*32:], identity)
			a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, 0, 0, 0, size(a), data))
		}, reason: []string{"invalid group element", "element 3", "identity"}, detector: "hospital-b", detErr: psi.ErrInvalidPoint},
		{name: "data not a multiple of 32", act: func(t *testing.T, h *harness, a *adversary) {
			a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, 0, 0, 0, size(a), a.ring()[:33]))
		}, reason: []string{"party hospital-a", "malformed message", "batch of 33 bytes"}},
		{name: "empty batch", act: func(t *testing.T, h *harness, a *adversary) {
			a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, 0, 0, 0, size(a), nil))
		}, reason: []string{"party hospital-a", "batch of 0 bytes"}},
		{name: "batch above MaxBatch", act: func(t *testing.T, h *harness, a *adversary) {
			a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, 0, 0, 0, size(a), a.ring()[:(testMaxBatch+1)*32]))
		}, reason: []string{"party hospital-a", fmt.Sprintf("batch of %d bytes (limit %d elements", (testMaxBatch+1)*32, testMaxBatch)}},
		{name: "offset gap", act: func(t *testing.T, h *harness, a *adversary) {
			a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, 0, 0, 8, size(a), a.ring()[8*32:16*32]))
		}, reason: []string{"party hospital-a", "batch at offset 8, expected 0"}},
		{name: "offset replay", act: func(t *testing.T, h *harness, a *adversary) {
			data := a.ring()[:8*32]
			a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, 0, 0, 0, size(a), data))
			a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, 0, 0, 0, size(a), data))
		}, reason: []string{"party hospital-a", "batch at offset 0, expected 8"}},
		{name: "list past its total", act: func(t *testing.T, h *harness, a *adversary) {
			own := a.ring()
			n := size(a)
			for off := 0; off < n; off += a.maxBatch {
				a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, 0, 0, off, n, own[off*32:min(off+a.maxBatch, n)*32]))
			}
			a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, 0, 0, n, n, own[:32]))
		}, reason: []string{"party hospital-a", fmt.Sprintf("batch at offset %d, expected %d of %d", testRecords, testRecords, testRecords)}},
		{name: "total differs from the declared size", act: func(t *testing.T, h *harness, a *adversary) {
			a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, 0, 0, 0, size(a)+1, a.ring()[:32]))
		}, reason: []string{"party hospital-a", fmt.Sprintf("batch total %d, declared size %d", testRecords+1, testRecords)}},
		{name: "hop of another party (owner 1 hop 1)", act: func(t *testing.T, h *harness, a *adversary) {
			a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, 1, 1, 0, testRecords, a.ring()[:32]))
		}, reason: []string{"party hospital-a", "ring batch (owner 1, hop 1) not for this party"}},
		{name: "hop of another party (own list, hop 1)", act: func(t *testing.T, h *harness, a *adversary) {
			a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, 0, 1, 0, size(a), a.ring()[:32]))
		}, reason: []string{"ring batch (owner 0, hop 1) not for this party"}},
		{name: "hop 0 of another's list", act: func(t *testing.T, h *harness, a *adversary) {
			a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, 2, 0, 0, testRecords, a.ring()[:32]))
		}, reason: []string{"ring batch (owner 2, hop 0) not for this party"}},
		{name: "hop out of range", act: func(t *testing.T, h *harness, a *adversary) {
			a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, 0, 3, 0, size(a), a.ring()[:32]))
		}, reason: []string{"ring batch (owner 0, hop 3) not for this party"}},
		{name: "owner out of range", act: func(t *testing.T, h *harness, a *adversary) {
			a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, 1<<31, 0, 0, size(a), a.ring()[:32]))
		}, reason: []string{"batch for unknown owner 2147483648"}},
		{name: "token batch in dh mode", act: func(t *testing.T, h *harness, a *adversary) {
			a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_TOKENS, 0, 0, 0, size(a), a.ring()[:32]))
		}, reason: []string{"token batch not allowed here"}},
		{name: "positions batch from a party", act: func(t *testing.T, h *harness, a *adversary) {
			a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_POSITIONS, 0, 0, 0, size(a), make([]byte, 4)))
		}, reason: []string{"batch kind BATCH_KIND_POSITIONS from a party"}},
		{name: "batch kind unspecified", act: func(t *testing.T, h *harness, a *adversary) {
			a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_UNSPECIFIED, 0, 0, 0, size(a), a.ring()[:32]))
		}, reason: []string{"batch kind BATCH_KIND_UNSPECIFIED from a party"}},

		// Envelopes.
		{name: "envelope from another party", act: func(t *testing.T, h *harness, a *adversary) {
			e := a.seal(mpsiv1.Round_ROUND_MASK_SEED, 2, make([]byte, 32))
			e.From = 1
			a.send(envMsg(e))
		}, reason: []string{"party hospital-a", "envelope from 1 to 2 on party 0's stream"}},
		{name: "envelope to itself", act: func(t *testing.T, h *harness, a *adversary) {
			e := a.seal(mpsiv1.Round_ROUND_MASK_SEED, 1, make([]byte, 32))
			e.To = 0
			a.send(envMsg(e))
		}, reason: []string{"envelope from 0 to 0 on party 0's stream"}},
		{name: "envelope to no party", act: func(t *testing.T, h *harness, a *adversary) {
			e := a.seal(mpsiv1.Round_ROUND_MASK_SEED, 1, make([]byte, 32))
			e.To = 3
			a.send(envMsg(e))
		}, reason: []string{"envelope from 0 to 3 on party 0's stream"}},
		{name: "envelope to 2^32-1", act: func(t *testing.T, h *harness, a *adversary) {
			e := a.seal(mpsiv1.Round_ROUND_MASK_SEED, 1, make([]byte, 32))
			e.To = 1<<32 - 1
			a.send(envMsg(e))
		}, reason: []string{"envelope from 0 to 4294967295"}},
		{name: "envelope round unspecified", act: func(t *testing.T, h *harness, a *adversary) {
			e := a.seal(mpsiv1.Round_ROUND_MASK_SEED, 1, make([]byte, 32))
			e.Round = mpsiv1.Round_ROUND_UNSPECIFIED
			a.send(envMsg(e))
		}, reason: []string{"envelope for unknown round 0"}},
		{name: "envelope round unknown", act: func(t *testing.T, h *harness, a *adversary) {
			e := a.seal(mpsiv1.Round_ROUND_MASK_SEED, 1, make([]byte, 32))
			e.Round = 3
			a.send(envMsg(e))
		}, reason: []string{"envelope for unknown round 3"}},
		{name: "key contribution in dh mode", act: func(t *testing.T, h *harness, a *adversary) {
			a.send(envMsg(a.seal(mpsiv1.Round_ROUND_KEY_CONTRIBUTION, 1, make([]byte, 32))))
		}, reason: []string{"key contribution in dh mode"}},
		{name: "enc too short", act: func(t *testing.T, h *harness, a *adversary) {
			e := a.seal(mpsiv1.Round_ROUND_MASK_SEED, 1, make([]byte, 32))
			e.Enc = e.Enc[:31]
			a.send(envMsg(e))
		}, reason: []string{"party hospital-a", "envelope lengths"}},
		{name: "enc too long", act: func(t *testing.T, h *harness, a *adversary) {
			e := a.seal(mpsiv1.Round_ROUND_MASK_SEED, 1, make([]byte, 32))
			e.Enc = append(e.Enc, 0)
			a.send(envMsg(e))
		}, reason: []string{"envelope lengths"}},
		{name: "ciphertext too long", act: func(t *testing.T, h *harness, a *adversary) {
			e := a.seal(mpsiv1.Round_ROUND_MASK_SEED, 1, make([]byte, 32))
			e.Ciphertext = make([]byte, envelope.MaxEnvelopeSealed+1)
			a.send(envMsg(e))
		}, reason: []string{"envelope lengths"}},
		{name: "envelope replayed", act: func(t *testing.T, h *harness, a *adversary) {
			s, err := a.p.Seed(1)
			require.NoError(t, err)
			e := a.seal(mpsiv1.Round_ROUND_MASK_SEED, 1, s[:])
			a.send(envMsg(e))
			a.send(envMsg(e))
		}, reason: []string{"party hospital-a", "envelope replayed"}},
		{name: "envelope tampered (recipient rejects)", act: func(t *testing.T, h *harness, a *adversary) {
			e := a.seal(mpsiv1.Round_ROUND_MASK_SEED, 1, make([]byte, 32))
			e.Ciphertext[0] ^= 1
			a.send(envMsg(e))
		}, reason: []string{"party hospital-b", "envelope from hospital-a", "does not open"}, detector: "hospital-b", detErr: envelope.ErrEnvelope},
		{name: "envelope sealed for another recipient (recipient rejects)", act: func(t *testing.T, h *harness, a *adversary) {
			enc, ct, err := envelope.Seal(a.roster[1].GetHpkePublicKey(), a.spec.ID, uint32(mpsiv1.Round_ROUND_MASK_SEED), 0, 2, make([]byte, 32))
			require.NoError(t, err)
			a.send(envMsg(&mpsiv1.Envelope{Round: mpsiv1.Round_ROUND_MASK_SEED, From: 0, To: 1, Enc: enc, Ciphertext: ct}))
		}, reason: []string{"party hospital-b", "does not open"}, detector: "hospital-b", detErr: envelope.ErrEnvelope},

		// Shares.
		{name: "share before the masks", act: func(t *testing.T, h *harness, a *adversary) {
			a.send(shareMsg(vectorBytes(t, layoutLen(t, a.spec))))
		}, reason: []string{"party hospital-a", "share before masks were dealt"}},
		{name: "share too long", act: func(t *testing.T, h *harness, a *adversary) {
			a.playUntilMask()
			a.send(shareMsg(vectorBytes(t, layoutLen(t, a.spec)+1)))
		}, reason: []string{"party hospital-a", "share:", "maximum"}},
		{name: "share too short", act: func(t *testing.T, h *harness, a *adversary) {
			a.playUntilMask()
			a.send(shareMsg(vectorBytes(t, layoutLen(t, a.spec)-1)))
		}, reason: []string{"party hospital-a", "has length"}},
		{name: "share garbage", act: func(t *testing.T, h *harness, a *adversary) {
			a.playUntilMask()
			a.send(shareMsg([]byte{1, 2, 3}))
		}, reason: []string{"party hospital-a", "share:", "header"}},
		{name: "share header lies", act: func(t *testing.T, h *harness, a *adversary) {
			a.playUntilMask()
			b := vectorBytes(t, layoutLen(t, a.spec))
			a.send(shareMsg(b[:len(b)-1]))
		}, reason: []string{"party hospital-a", "share:"}},
		// "share sent twice" is racy over the network (the first share may
		// complete the session); FuzzPartyMessage's replay check covers it.

		// Join round and stream discipline.
		{name: "Ready sent twice", preRoster: func(t *testing.T, h *harness, a *adversary) {
			a.send(a.readyMsg(h, uint64(a.p.SetSize())))
			a.send(a.readyMsg(h, uint64(a.p.SetSize())))
		}, reason: []string{"party hospital-a", "Ready sent twice"}},
		{name: "different normalisation version", preRoster: func(t *testing.T, h *harness, a *adversary) {
			m := a.readyMsg(h, uint64(a.p.SetSize()))
			m.GetReady().Normalization = "ident/0 unicode/9.0.0"
			a.send(m)
		}, reason: []string{"parties normalise identifiers differently", `"ident/0 unicode/9.0.0"`}},
		{name: "Ready after the roster", act: func(t *testing.T, h *harness, a *adversary) {
			a.send(a.readyMsg(h, 1))
		}, reason: []string{"Ready sent twice"}},
		{name: "set size above max_set_size", preRoster: func(t *testing.T, h *harness, a *adversary) {
			a.send(a.readyMsg(h, session.DefaultMaxSetSize+1))
		}, reason: []string{"party hospital-a", fmt.Sprintf("set size %d exceeds max_set_size %d", session.DefaultMaxSetSize+1, session.DefaultMaxSetSize)}},
		{name: "set size 2^64-1", preRoster: func(t *testing.T, h *harness, a *adversary) {
			a.send(a.readyMsg(h, 1<<64-1))
		}, reason: []string{"exceeds max_set_size"}},
		{name: "Ready with a short key", preRoster: func(t *testing.T, h *harness, a *adversary) {
			m := a.readyMsg(h, 1)
			m.GetReady().HpkePublicKey = m.GetReady().HpkePublicKey[:31]
			a.send(m)
		}, reason: []string{"bad key or signature length"}},
		{name: "Ready without signature", preRoster: func(t *testing.T, h *harness, a *adversary) {
			m := a.readyMsg(h, 1)
			m.GetReady().Signature = nil
			a.send(m)
		}, reason: []string{"bad key or signature length"}},
		{name: "Ready with a forged signature (parties reject the roster)", preRoster: func(t *testing.T, h *harness, a *adversary) {
			m := a.readyMsg(h, uint64(a.p.SetSize()))
			m.GetReady().Signature[len(m.GetReady().Signature)-1] ^= 1
			a.send(m)
		}, reason: []string{"invalid roster", "hospital-a: session key signature does not verify"}, detector: "any", detErr: envelope.ErrRoster},
		{name: "empty message after Hello", preRoster: func(t *testing.T, h *harness, a *adversary) {
			a.send(&mpsiv1.PartyMessage{})
		}, reason: []string{"party hospital-a", "empty message"}},
		{name: "Hello sent twice", preRoster: func(t *testing.T, h *harness, a *adversary) {
			a.send(hello(a.spec.ID))
		}, reason: []string{"party hospital-a", "Hello sent twice"}},
		{name: "envelope before the roster", preRoster: func(t *testing.T, h *harness, a *adversary) {
			a.send(envMsg(&mpsiv1.Envelope{Round: mpsiv1.Round_ROUND_MASK_SEED, From: 0, To: 1, Enc: make([]byte, 32), Ciphertext: make([]byte, 48)}))
		}, reason: []string{"envelope before the roster"}},
		{name: "batch before the roster", preRoster: func(t *testing.T, h *harness, a *adversary) {
			a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, 0, 0, 0, 1, make([]byte, 32)))
		}, reason: []string{"batch outside the token round"}},
		{name: "party aborts", preRoster: func(t *testing.T, h *harness, a *adversary) {
			a.send(&mpsiv1.PartyMessage{Msg: &mpsiv1.PartyMessage_Abort{Abort: &mpsiv1.Abort{Reason: strings.Repeat("x", 1000)}}})
		}, reason: []string{"party hospital-a: aborted: " + strings.Repeat("x", 200) + "…"}},
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
	reason := a.expectAbort()
	for _, s := range tc.reason {
		require.Contains(t, reason, s)
	}
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

// A hop party must not be able to emit the output of a hop whose input it
// has not been given: here hospital-a sends hop 2 of hospital-b's list
// while hospital-c (a silent second adversary) never did hop 1. The
// coordinator accepts it as hospital-b's final token list.
func TestRingHopAheadOfItsInput(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := getCohort(t, session.ModeDH)
	id := h.create(t, specJSON(t, c, newSessionID("ahead"), nil))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b := h.honest(ctx, t, c, id, "hospital-b")
	a := h.join(ctx, t, c, "hospital-a", id)
	cs := h.join(ctx, t, c, "hospital-c", id)
	cs.send(cs.readyMsg(h, uint64(cs.p.SetSize())))
	a.ready(h)
	// hospital-b's list (owner 1): hop 1 is hospital-c's, hop 2 hospital-a's.
	nB := int(a.roster[1].GetSetSize())
	forged := bytes.Repeat(a.ring()[:32], nB)
	for off := 0; off < nB; off += a.maxBatch {
		a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, 1, 2, off, nB, forged[off*32:min(off+a.maxBatch, nB)*32]))
	}
	// A probe on the same stream: if the forged hop was accepted, the
	// session aborts on this instead.
	a.send(&mpsiv1.PartyMessage{})
	reason := a.expectAbort()
	require.NotContains(t, reason, "empty message", "forged hop 2 of a list hop 1 never produced was accepted: %s", reason)
	require.Contains(t, reason, "party hospital-a")
	collect(t, b)
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
		{"silent after Hello", "join", false},
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
			own := a.ring()
			a.send(batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, 0, 0, 0, a.p.SetSize(), own[:a.maxBatch*32]))
			for {
				m, err := a.stream.Recv()
				require.NoError(t, err)
				if m.GetBatch() != nil {
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
	in  chan *mpsiv1.PartyMessage
}

func (f *fakeStream) Context() context.Context { return f.ctx }
func (f *fakeStream) Recv() (*mpsiv1.PartyMessage, error) {
	select {
	case m := <-f.in:
		return m, nil
	case <-f.ctx.Done():
		return nil, status.FromContextError(f.ctx.Err()).Err()
	}
}
func (f *fakeStream) Send(*mpsiv1.CoordinatorMessage) error {
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
	fs := &fakeStream{ctx: peerCtx(ctx, h.pki.cert(t, "hospital-a")), in: make(chan *mpsiv1.PartyMessage, 1)}
	fs.in <- hello(id)
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
			require.NoError(t, stream.Send(hello(id)))
			requireStatus(t, recvStatus(stream), codes.FailedPrecondition, "session is over")
		})
	}
}

// ================================================================ envelopes

// A relay cannot re-address, replay into another round or session, or
// modify an envelope: any change makes it fail to open.
func TestEnvelopeBinding(t *testing.T) {
	t.Parallel()
	b, err := envelope.GenerateSessionKey()
	require.NoError(t, err)
	other, err := envelope.GenerateSessionKey()
	require.NoError(t, err)
	const sid = "cohort-7"
	msg := bytes.Repeat([]byte{0x5a}, 32)
	enc, ct, err := envelope.Seal(b.Public(), sid, 4, 0, 1, msg)
	require.NoError(t, err)
	pt, err := b.Open(sid, 4, 0, 1, enc, ct)
	require.NoError(t, err)
	require.Equal(t, msg, pt)

	flip := func(x []byte, i int) []byte { y := slices.Clone(x); y[i] ^= 0x80; return y }
	for _, tc := range []struct {
		name            string
		key             *envelope.SessionKey
		session         string
		round, from, to uint32
		enc, ct         []byte
	}{
		{"other session", b, "cohort-8", 4, 0, 1, enc, ct},
		{"session prefix", b, "cohort-", 4, 0, 1, enc, ct},
		{"other round", b, sid, 2, 0, 1, enc, ct},
		{"round 0", b, sid, 0, 0, 1, enc, ct},
		{"other sender", b, sid, 4, 2, 1, enc, ct},
		{"other recipient", b, sid, 4, 0, 2, enc, ct},
		{"swapped from/to", b, sid, 4, 1, 0, enc, ct},
		{"other recipient key", other, sid, 4, 0, 1, enc, ct},
		{"enc modified", b, sid, 4, 0, 1, flip(enc, 0), ct},
		{"enc last byte", b, sid, 4, 0, 1, flip(enc, 31), ct},
		{"ciphertext modified", b, sid, 4, 0, 1, enc, flip(ct, 0)},
		{"tag modified", b, sid, 4, 0, 1, enc, flip(ct, len(ct)-1)},
		{"ciphertext extended", b, sid, 4, 0, 1, enc, append(slices.Clone(ct), 0)},
		{"enc and ct swapped", b, sid, 4, 0, 1, ct[:32], enc},
		{"empty", b, sid, 4, 0, 1, nil, nil},
		{"oversized ciphertext", b, sid, 4, 0, 1, enc, make([]byte, envelope.MaxEnvelopeSealed+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pt, err := tc.key.Open(tc.session, tc.round, tc.from, tc.to, tc.enc, tc.ct)
			require.ErrorIs(t, err, envelope.ErrEnvelope)
			require.Nil(t, pt)
		})
	}
	t.Run("every truncation", func(t *testing.T) {
		for i := 0; i < len(enc); i++ {
			_, err := b.Open(sid, 4, 0, 1, enc[:i], ct)
			require.ErrorIs(t, err, envelope.ErrEnvelope, "enc[:%d]", i)
		}
		for i := 0; i < len(ct); i++ {
			_, err := b.Open(sid, 4, 0, 1, enc, ct[:i])
			require.ErrorIs(t, err, envelope.ErrEnvelope, "ct[:%d]", i)
		}
	})
	t.Run("every bit", func(t *testing.T) {
		for i := 0; i < 8*len(ct); i++ {
			y := slices.Clone(ct)
			y[i/8] ^= 1 << (i % 8)
			_, err := b.Open(sid, 4, 0, 1, enc, y)
			require.ErrorIs(t, err, envelope.ErrEnvelope, "ct bit %d", i)
		}
	})
}

// ================================================================ white box

// A party attaching while the session's event queue is full must not wedge
// the session: attach holds the session lock while it blocks on the queue,
// and the session goroutine needs that lock to send anything (here, to
// broadcast the abort caused by a queued message).
func TestAttachWhileEventQueueFull(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := getCohort(t, session.ModeDH)
	id := newSessionID("wedge")
	spec, err := session.ParseSpec(specJSON(t, c, id, nil))
	require.NoError(t, err)
	require.NoError(t, h.st.CreateSession(context.Background(), spec.ID, spec.Canonical(), "admin"))
	// 64 queued "Hello sent twice" messages from hospital-a; hospital-b attaches.
	done, err := h.srv.AttachDuringFullQueue(spec, 0, hello(id), 1, h.pki.cert(t, "hospital-b"))
	require.NoError(t, err)
	select {
	case <-done:
	case <-time.After(testRoundTimeout + deadlineSlack):
		t.Fatalf("session goroutine deadlocked: attach holds live.mu while blocked on a full event queue")
	}
	rec := h.waitFinal(t, id, time.Second)
	require.Equal(t, store.StateAborted, rec.State)
	require.Contains(t, rec.Reason, "Hello sent twice")
}

// One token batch must not make the coordinator allocate for the whole
// declared set size (up to max_set_size, 10M by default: 320 MB).
func TestDeclaredSizeDoesNotPreallocate(t *testing.T) {
	h := newHarness(t)
	c := getCohort(t, session.ModeKeyed)
	id := newSessionID("alloc")
	spec, err := session.ParseSpec(specJSON(t, c, id, nil))
	require.NoError(t, err)
	ts := newTestSession(t, h, spec)
	ctx := context.Background()
	readyAll(t, ts, []uint64{uint64(spec.MaxSetSize), 1, 1})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = ts.Handle(ctx, 0, batchMsg(mpsiv1.BatchKind_BATCH_KIND_TOKENS, 0, 0, 0, spec.MaxSetSize, make([]byte, 32)))
	require.NoError(t, err)
	runtime.ReadMemStats(&after)
	grew := after.TotalAlloc - before.TotalAlloc
	require.Less(t, grew, uint64(64<<20), "one 32-byte token made the coordinator allocate %d MB", grew>>20)
}

func newTestSession(t testing.TB, h *harness, spec *session.Spec) *coordinator.TestSession {
	t.Helper()
	require.NoError(t, h.st.CreateSession(context.Background(), spec.ID, spec.Canonical(), "admin"))
	var certs []*x509.Certificate
	for _, n := range spec.Parties {
		certs = append(certs, h.pki.cert(t, n))
	}
	ts, err := h.srv.NewTestSession(spec, certs)
	require.NoError(t, err)
	for i := range spec.Parties {
		require.NoError(t, ts.Attach(context.Background(), i))
	}
	return ts
}

func readyAll(t testing.TB, ts *coordinator.TestSession, sizes []uint64) {
	t.Helper()
	for i, s := range sizes {
		_, err := ts.Handle(context.Background(), i, &mpsiv1.PartyMessage{Msg: &mpsiv1.PartyMessage_Ready{Ready: &mpsiv1.Ready{
			SetSize: s, HpkePublicKey: make([]byte, 32), Signature: []byte{1}}}})
		require.NoError(t, err)
	}
	require.Equal(t, "tokens", ts.Round())
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
	a.trySend(&mpsiv1.PartyMessage{Msg: &mpsiv1.PartyMessage_Abort{Abort: &mpsiv1.Abort{Reason: "test"}}})
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
