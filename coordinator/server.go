package coordinator

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	mpsiv1 "github.com/mpsi-dev/mpsi/api/mpsi/v1"
	"github.com/mpsi-dev/mpsi/coordinator/store"
	"github.com/mpsi-dev/mpsi/internal/envelope"
	"github.com/mpsi-dev/mpsi/psi"
	"github.com/mpsi-dev/mpsi/psi/join"
	"github.com/mpsi-dev/mpsi/psi/session"
	"github.com/mpsi-dev/mpsi/sharing"
)

// Defaults for [Config].
const (
	DefaultRoundTimeout = 2 * time.Minute
	DefaultMaxBatch     = 8192
	DefaultAdminName    = "admin"
	// MaxMessageSize is the gRPC message size limit on both sides.
	MaxMessageSize = 16 << 20
)

// Errors the service maps to status codes.
var (
	ErrUnauthenticated = errors.New("coordinator: no verified client certificate")
	ErrForbidden       = errors.New("coordinator: certificate name not allowed")
	ErrUnknownSession  = errors.New("coordinator: unknown session")
	ErrSessionOver     = errors.New("coordinator: session is over")
)

// Config configures a [Server]. Store and Signer are required.
type Config struct {
	Store  *store.Store
	Signer crypto.Signer // the coordinator's TLS key; signs released Results
	// Logger receives structured logs; nil discards them. Secrets are never logged.
	Logger *slog.Logger
	// RoundTimeout bounds the time a session may go without progress (no
	// message accepted from any party) in any round; zero means
	// DefaultRoundTimeout.
	RoundTimeout time.Duration
	// AdminNames are the certificate names allowed to create sessions;
	// empty means {DefaultAdminName}.
	AdminNames []string
	// MaxBatch bounds the elements in one Batch; zero means DefaultMaxBatch.
	MaxBatch int
	// Workers bounds the goroutines of the join; zero means GOMAXPROCS.
	Workers int
	// Metrics, if set, is updated as sessions run.
	Metrics *Metrics
	// JoinBudget, if positive, bounds the memory of each session's join in
	// bytes: tokens go to spill files as they arrive and the join runs one
	// token-prefix partition at a time ([join.Spiller]). Zero keeps every
	// token list in memory (32 bytes per token plus the join's ~18).
	JoinBudget int64
	// SpillDir is where spill files are made; empty means os.TempDir().
	SpillDir string
}

// Server is the coordinator's gRPC service. It is safe for concurrent use
// and serves many sessions at once; each live session is owned by one
// goroutine that drives an [Engine].
type Server struct {
	mpsiv1.UnimplementedCoordinatorServer
	cfg Config
	log *slog.Logger

	mu       sync.Mutex // guards sessions
	sessions map[string]*live
	closing  bool
	wg       sync.WaitGroup // live session goroutines
}

var _ mpsiv1.CoordinatorServer = (*Server)(nil)

// New validates cfg and returns a Server. Call [Server.Recover] once at
// start-up to abort sessions interrupted by a restart.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Signer == nil {
		return nil, errors.New("coordinator: Config.Store and Config.Signer are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RoundTimeout == 0 {
		cfg.RoundTimeout = DefaultRoundTimeout
	}
	if len(cfg.AdminNames) == 0 {
		cfg.AdminNames = []string{DefaultAdminName}
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	return &Server{cfg: cfg, log: cfg.Logger, sessions: map[string]*live{}}, nil
}

// Register adds the service to a gRPC server.
func (s *Server) Register(g *grpc.Server) { mpsiv1.RegisterCoordinatorServer(g, s) }

// Recover marks sessions left created or running by a previous process as
// aborted, so that none is ever half-released, and returns their ids. With
// an explicit [Config.SpillDir] it also removes the spill directories those
// sessions left behind.
func (s *Server) Recover(ctx context.Context) ([]string, error) {
	ids, err := s.cfg.Store.AbortInterrupted(ctx, "coordinator restarted during the session")
	s.cfg.Metrics.SessionsInterrupted(len(ids))
	for _, id := range ids {
		s.log.Warn("session aborted by restart", "session", id)
	}
	if s.cfg.SpillDir != "" {
		// Spill files of sessions a crash interrupted (the directory is the
		// coordinator's own: it is only cleaned when set explicitly).
		stale, gerr := filepath.Glob(filepath.Join(s.cfg.SpillDir, join.SpillDirPattern))
		for _, d := range stale {
			if rerr := os.RemoveAll(d); rerr != nil {
				gerr = errors.Join(gerr, rerr)
			} else {
				s.log.Warn("removed spill files of an interrupted session", "dir", d)
			}
		}
		err = errors.Join(err, gerr)
	}
	return ids, err
}

// Shutdown aborts every live session with a reason and waits for their
// goroutines, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for _, l := range s.sessions {
		l.abortAsync("coordinator shutting down")
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// peerName returns the common name of the verified client certificate.
func peerName(ctx context.Context) (string, *x509.Certificate, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", nil, ErrUnauthenticated
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return "", nil, ErrUnauthenticated
	}
	c := ti.State.VerifiedChains[0][0]
	return c.Subject.CommonName, c, nil
}

// toStatus maps errors to gRPC status codes in one place; unknown errors
// become Internal with a generic message (the full error is logged).
func (s *Server) toStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnauthenticated):
		return status.Error(codes.Unauthenticated, err.Error())
	case errors.Is(err, ErrForbidden):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, ErrUnknownSession), errors.Is(err, store.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, store.ErrExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, session.ErrInvalidSpec), errors.Is(err, ErrBadMessage), errors.Is(err, psi.ErrInvalidPoint):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrWrongRound), errors.Is(err, ErrSessionOver):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "round timed out")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "canceled")
	default:
		s.log.Error("internal error", "err", err)
		return status.Error(codes.Internal, "internal error")
	}
}

// CreateSession registers a spec and starts its session goroutine.
func (s *Server) CreateSession(ctx context.Context, req *mpsiv1.CreateSessionRequest) (*mpsiv1.CreateSessionResponse, error) {
	name, _, err := peerName(ctx)
	if err != nil {
		return nil, s.toStatus(err)
	}
	if !slices.Contains(s.cfg.AdminNames, name) {
		return nil, s.toStatus(fmt.Errorf("%w: %q may not create sessions (admin names: %v)", ErrForbidden, name, s.cfg.AdminNames))
	}
	spec, err := session.ParseSpec(req.GetSpecJson())
	if err != nil {
		return nil, s.toStatus(err)
	}
	if err := s.cfg.Store.CreateSession(ctx, spec.ID, spec.Canonical(), name); err != nil {
		return nil, s.toStatus(err)
	}
	if err := s.start(spec); err != nil {
		return nil, s.toStatus(err)
	}
	s.log.Info("session created", "session", spec.ID, "by", name, "parties", spec.Parties, "mode", spec.Match.Mode)
	s.cfg.Metrics.SessionCreated()
	return &mpsiv1.CreateSessionResponse{SessionId: spec.ID}, nil
}

// GetResult returns a session's state and released Result.
func (s *Server) GetResult(ctx context.Context, req *mpsiv1.GetResultRequest) (*mpsiv1.GetResultResponse, error) {
	name, _, err := peerName(ctx)
	if err != nil {
		return nil, s.toStatus(err)
	}
	rec, err := s.cfg.Store.Session(ctx, req.GetSessionId())
	if err != nil {
		return nil, s.toStatus(err)
	}
	spec, err := session.ParseSpec(rec.Spec)
	if err != nil {
		return nil, s.toStatus(err)
	}
	if !slices.Contains(s.cfg.AdminNames, name) && spec.PartyIndex(name) < 0 {
		return nil, s.toStatus(fmt.Errorf("%w: %q is neither an admin nor a party of %s", ErrForbidden, name, rec.ID))
	}
	resp := &mpsiv1.GetResultResponse{SessionId: rec.ID, State: rec.State, Reason: rec.Reason}
	if rec.State == store.StateCompleted {
		resp.ResultJson, resp.Signature, err = s.cfg.Store.Result(ctx, rec.ID)
		if err != nil {
			return nil, s.toStatus(err)
		}
	}
	return resp, nil
}

// Run carries one party's stream.
func (s *Server) Run(stream grpc.BidiStreamingServer[mpsiv1.PartyMessage, mpsiv1.CoordinatorMessage]) error {
	ctx := stream.Context()
	name, cert, err := peerName(ctx)
	if err != nil {
		return s.toStatus(err)
	}
	// The first message must come within a round's time.
	type recvd struct {
		m   *mpsiv1.PartyMessage
		err error
	}
	firstc := make(chan recvd, 1)
	go func() {
		m, err := stream.Recv()
		firstc <- recvd{m, err}
	}()
	var first *mpsiv1.PartyMessage
	select {
	case r := <-firstc:
		if r.err != nil {
			return r.err
		}
		first = r.m
	case <-time.After(s.cfg.RoundTimeout):
		return status.Error(codes.DeadlineExceeded, "no Hello within the round deadline")
	case <-ctx.Done():
		return ctx.Err()
	}
	hello := first.GetHello()
	if hello == nil {
		return s.toStatus(fmt.Errorf("%w: the first message must be Hello", ErrBadMessage))
	}
	s.mu.Lock()
	l := s.sessions[hello.GetSessionId()]
	s.mu.Unlock()
	if l == nil {
		rec, err := s.cfg.Store.Session(ctx, hello.GetSessionId())
		if err != nil {
			return s.toStatus(fmt.Errorf("%w: %q", ErrUnknownSession, truncate(hello.GetSessionId(), 140)))
		}
		if spec, err := session.ParseSpec(rec.Spec); err != nil || spec.PartyIndex(name) < 0 {
			return s.toStatus(fmt.Errorf("%w: certificate name %q is not a party of session %s", ErrForbidden, name, rec.ID))
		}
		return s.toStatus(fmt.Errorf("%w: session %s is %s %s", ErrSessionOver, rec.ID, rec.State, rec.Reason))
	}
	idx := l.spec.PartyIndex(name)
	if idx < 0 {
		s.log.Warn("refused party not in spec", "session", l.spec.ID, "name", name)
		return s.toStatus(fmt.Errorf("%w: certificate name %q is not a party of session %s", ErrForbidden, name, l.spec.ID))
	}
	c, err := l.attach(idx, cert)
	if err != nil {
		return s.toStatus(err)
	}
	_ = s.cfg.Store.Append(ctx, "party.joined", l.spec.ID, name, "")
	s.log.Info("party joined", "session", l.spec.ID, "party", name)
	// Sender: drain the connection's queue onto the stream.
	sendErr := make(chan error, 1)
	go func() { sendErr <- c.pump(stream) }()
	// Reader: forward messages to the session goroutine.
	readErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				// Through the session's queue, after the party's last
				// messages (an Abort it sent just before closing).
				select {
				case l.events <- event{from: idx, gone: err}:
				case <-l.done:
				}
				readErr <- err
				return
			}
			select {
			case l.events <- event{from: idx, msg: m}:
			case <-l.done:
				// The session is over. Keep reading (and dropping) what the
				// party still sends: a party blocked in a large Send (key
				// shares, ciphertexts) on flow control would otherwise never
				// read the Abort or Result queued for it, and the final
				// message would never flush (both sides blocked sending).
				for {
					if _, err := stream.Recv(); err != nil {
						readErr <- err
						return
					}
				}
			}
		}
	}()
	// flush lets the sender deliver a final Result or Abort, for a while.
	flush := func() error {
		select {
		case err := <-sendErr:
			return err
		case <-time.After(5 * time.Second):
			return nil
		}
	}
	select {
	case <-readErr:
		return flush()
	case <-l.done:
		return flush()
	case err := <-sendErr:
		if err != nil {
			// The session decides what a vanished party means.
			select {
			case l.events <- event{from: idx, gone: err}:
			case <-l.done:
			}
		}
		return err
	}
}

// start creates the live session and its goroutine.
func (s *Server) start(spec *session.Spec) error {
	l, err := s.newLive(spec)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		s.cfg.Metrics.SessionFinished(l.round, OutcomeAborted, ReasonShutdown, time.Since(l.created))
		return errors.New("coordinator: shutting down")
	}
	s.sessions[spec.ID] = l
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		l.run()
		s.mu.Lock()
		delete(s.sessions, spec.ID)
		s.mu.Unlock()
	}()
	return nil
}

// newLive makes a session's state in the join round; its run goroutine is
// not started.
func (s *Server) newLive(spec *session.Spec) (*live, error) {
	eng, err := NewEngine(spec)
	if err != nil {
		return nil, err
	}
	n := len(spec.Parties)
	l := &live{
		srv: s, spec: spec, eng: eng, n: n,
		events: make(chan event, 64), done: make(chan struct{}), abortCh: make(chan string, 1),
		conns:   make([]*conn, n),
		ready:   make([]*mpsiv1.Ready, n),
		envSeen: map[[3]uint32]bool{},
		streams: map[[2]uint32]*listState{},
		tokDone: make([]bool, n),
		created: time.Now(),
	}
	l.setRound("join")
	return l, nil
}

func newConn(cert *x509.Certificate) *conn {
	c := &conn{cert: cert}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// conn is the coordinator's side of one party's stream. Messages to the
// party are queued without bound so that the session goroutine never
// blocks on a slow party (the ring would otherwise deadlock); the queue
// holds at most the lists in flight.
type conn struct {
	cert *x509.Certificate
	mu   sync.Mutex // guards q, closed
	cond *sync.Cond
	q    []*mpsiv1.CoordinatorMessage
	// closed: no more messages will be queued; pump returns when q drains.
	closed bool
	// sent, if set, is called (by the session goroutine) for each message
	// queued, for the metrics.
	sent func(*mpsiv1.CoordinatorMessage)
}

func (c *conn) send(m *mpsiv1.CoordinatorMessage) {
	if c.sent != nil {
		c.sent(m)
	}
	c.mu.Lock()
	if !c.closed {
		c.q = append(c.q, m)
	}
	c.mu.Unlock()
	c.cond.Signal()
}

func (c *conn) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cond.Broadcast()
}

func (c *conn) pump(stream grpc.BidiStreamingServer[mpsiv1.PartyMessage, mpsiv1.CoordinatorMessage]) error {
	for {
		c.mu.Lock()
		for len(c.q) == 0 && !c.closed {
			c.cond.Wait()
		}
		if len(c.q) == 0 && c.closed {
			c.mu.Unlock()
			return nil
		}
		m := c.q[0]
		c.q[0] = nil
		c.q = c.q[1:]
		c.mu.Unlock()
		if err := stream.Send(m); err != nil {
			return err
		}
	}
}

type event struct {
	from int
	msg  *mpsiv1.PartyMessage
	gone error // the party's stream ended with this error
}

func goneReason(name string, err error) string {
	if errors.Is(err, io.EOF) {
		return fmt.Sprintf("party %s closed its stream before the end", name)
	}
	return fmt.Sprintf("party %s disconnected: %v", name, status.Convert(err).Message())
}

// live is a running session, owned by its run goroutine.
type live struct {
	srv     *Server
	spec    *session.Spec
	eng     *Engine
	n       int
	events  chan event
	done    chan struct{}
	abortCh chan string

	mu    sync.Mutex // guards conns
	conns []*conn

	// Owned by run.
	ready    []*mpsiv1.Ready
	rostered bool
	envSeen  map[[3]uint32]bool
	streams  map[[2]uint32]*listState // (owner, hop done) -> progress
	tokBuf   []join.Token             // reused for each final batch
	tokDone  []bool
	dealt    bool // token round over: masks dealt, or (encrypted) joined
	enc      *encState
	running  bool
	round    string
	started  time.Time // the current round's start
	created  time.Time // the session's registration
}

// listState tracks one streamed list.
type listState struct {
	next  uint64
	total uint64
}

func (l *live) attach(idx int, cert *x509.Certificate) (*conn, error) {
	l.mu.Lock()
	select {
	case <-l.done:
		l.mu.Unlock()
		return nil, fmt.Errorf("%w: session %s", ErrSessionOver, l.spec.ID)
	default:
	}
	if l.conns[idx] != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("%w: party %s is already connected", ErrWrongRound, l.spec.Parties[idx])
	}
	c := newConn(cert)
	c.sent = func(m *mpsiv1.CoordinatorMessage) { l.srv.cfg.Metrics.MessageOut(l.round, proto.Size(m)) }
	l.conns[idx] = c
	// Not under l.mu: the session goroutine needs it to drain the queue.
	l.mu.Unlock()
	// The session goroutine sends Welcome when it sees the party.
	select {
	case l.events <- event{from: idx}:
	case <-l.done:
		return nil, fmt.Errorf("%w: session %s", ErrSessionOver, l.spec.ID)
	}
	return c, nil
}

func (l *live) abortAsync(reason string) {
	select {
	case l.abortCh <- reason:
	default:
	}
}

func (l *live) conn(i int) *conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[i]
}

func (l *live) broadcast(m *mpsiv1.CoordinatorMessage) {
	for i := 0; i < l.n; i++ {
		if c := l.conn(i); c != nil {
			c.send(m)
		}
	}
}

// run is the session goroutine: it owns the Engine and every round.
func (l *live) run() {
	defer close(l.done)
	defer func() {
		if err := l.eng.Close(); err != nil {
			l.srv.log.Error("removing spill files", "session", l.spec.ID, "err", err)
		}
	}()
	defer func() {
		l.mu.Lock()
		for _, c := range l.conns {
			if c != nil {
				c.close()
			}
		}
		l.mu.Unlock()
	}()
	ctx := context.Background()
	log := l.srv.log.With("session", l.spec.ID)
	// The join round waits for parties for as long as a round may take.
	timer := time.NewTimer(l.srv.cfg.RoundTimeout)
	defer timer.Stop()
	abort := func(code, reason string) {
		log.Warn("session aborted", "reason", reason, "code", code, "round", l.round, "duration", time.Since(l.created))
		l.srv.cfg.Metrics.SessionFinished(l.round, OutcomeAborted, code, time.Since(l.created))
		if err := l.srv.cfg.Store.Abort(ctx, l.spec.ID, reason); err != nil {
			log.Error("recording abort", "err", err)
		}
		l.broadcast(&mpsiv1.CoordinatorMessage{Msg: &mpsiv1.CoordinatorMessage_Abort{Abort: &mpsiv1.Abort{Reason: reason}}})
	}
	for {
		select {
		case reason := <-l.abortCh:
			abort(ReasonShutdown, reason)
			return
		case <-timer.C:
			abort(ReasonDeadline, fmt.Sprintf("deadline exceeded in round %s after %s (waiting for %s)", l.round, l.srv.cfg.RoundTimeout, l.waitingFor()))
			return
		case ev := <-l.events:
			if ev.msg != nil {
				l.srv.cfg.Metrics.MessageIn(l.round, proto.Size(ev.msg))
			}
			var finished bool
			if ev.gone != nil {
				reason := goneReason(l.spec.Parties[ev.from], ev.gone)
				if l.enc == nil || !l.enc.pkSent || l.spec.Threshold >= l.n {
					abort(ReasonPartyDisconnected, reason)
					return
				}
				if finished, reason = l.onGoneEncrypted(ctx, ev.from, reason); reason != "" {
					abort(ReasonPartyDisconnected, reason)
					return
				}
			} else {
				var err error
				if finished, err = l.handle(ctx, ev); err != nil {
					abort(AbortReasonCode(err), fmt.Sprintf("party %s: %v", l.spec.Parties[ev.from], err))
					return
				}
			}
			if finished {
				l.srv.cfg.Metrics.SessionFinished(l.round, OutcomeCompleted, ReasonNone, time.Since(l.created))
				log.Info("session released", "duration", time.Since(l.created), "last_round", time.Since(l.started))
				return
			}
			// The deadline is RoundTimeout without progress: every accepted
			// message (and every new round) restarts it, so that a large
			// session whose rounds take longer than RoundTimeout but keep
			// moving is not cut off, while a silent party still is.
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			timer.Reset(l.srv.cfg.RoundTimeout)
		}
	}
}

func (l *live) setRound(r string) {
	if l.round != "" {
		l.srv.cfg.Metrics.RoundFinished(l.round, time.Since(l.started))
	}
	l.srv.cfg.Metrics.RoundEntered(l.round, r)
	l.round, l.started = r, time.Now()
	l.srv.log.Info("round", "session", l.spec.ID, "round", r)
}

func (l *live) waitingFor() string {
	var w []string
	for i, p := range l.spec.Parties {
		switch l.round {
		case "join":
			if l.ready[i] == nil {
				w = append(w, p)
			}
		case "tokens":
			if l.owesTokens(i) {
				w = append(w, p)
			}
		case "shares":
			if l.eng.shares[i] == nil {
				w = append(w, p)
			}
		case "keys":
			if l.enc.ckg[i] == nil || l.enc.gkg[i] == nil || l.owesEnvelopes(i, mpsiv1.Round_ROUND_THRESHOLD_SHARE) {
				w = append(w, p)
			}
		case "ciphertexts":
			if l.enc.cts[i] < l.enc.want[i] && !l.enc.gone[i] {
				w = append(w, p)
			}
		case "key-switch":
			if slices.Contains(l.enc.active, i) && l.enc.shares[i] == nil {
				w = append(w, p)
			}
		}
	}
	if len(w) == 0 {
		return "parties"
	}
	return fmt.Sprint(w)
}

// owesTokens reports whether party i has not yet sent something the token
// round is waiting for: its envelopes to every other party, or the next hop
// of a list (dh) or its own token list (keyed).
func (l *live) owesTokens(i int) bool {
	keyed := l.spec.Match.Mode == session.ModeKeyed
	if l.enc == nil && l.owesEnvelopes(i, mpsiv1.Round_ROUND_MASK_SEED) {
		return true
	}
	if keyed && l.owesEnvelopes(i, mpsiv1.Round_ROUND_KEY_CONTRIBUTION) {
		return true
	}
	hops := l.n
	if keyed {
		hops = 1
	}
	for owner := 0; owner < l.n; owner++ {
		if l.tokDone[owner] {
			continue
		}
		for hop := 0; hop < hops; hop++ {
			st := l.streams[[2]uint32{uint32(owner), uint32(hop)}]
			if st == nil || st.next < st.total {
				if RingTarget(l.n, owner, hop) == i {
					return true
				}
				break
			}
		}
	}
	return false
}

// owesEnvelopes reports whether party i has not yet sent its envelope of
// round r to every other party (only rounds the session uses: the threshold
// round only with a threshold).
func (l *live) owesEnvelopes(i int, r mpsiv1.Round) bool {
	if r == mpsiv1.Round_ROUND_THRESHOLD_SHARE && (l.enc == nil || !l.enc.x.Params().IsThreshold()) {
		return false
	}
	for to := 0; to < l.n; to++ {
		if to != i && !l.envSeen[[3]uint32{uint32(r), uint32(i), uint32(to)}] {
			return true
		}
	}
	return false
}

func (l *live) handle(ctx context.Context, ev event) (bool, error) {
	m := ev.msg
	i := ev.from
	if m == nil { // a party attached
		if !l.running {
			l.running = true
			if err := l.srv.cfg.Store.SetRunning(ctx, l.spec.ID); err != nil {
				return false, err
			}
		}
		l.conn(i).send(&mpsiv1.CoordinatorMessage{Msg: &mpsiv1.CoordinatorMessage_Welcome{Welcome: &mpsiv1.Welcome{
			SpecJson: l.spec.Canonical(), PartyIndex: uint32(i), MaxBatch: uint32(l.srv.cfg.MaxBatch)}}})
		return false, nil
	}
	switch x := m.Msg.(type) {
	case *mpsiv1.PartyMessage_Ready:
		return false, l.onReady(ctx, i, x.Ready)
	case *mpsiv1.PartyMessage_Envelope:
		return false, l.onEnvelope(i, x.Envelope)
	case *mpsiv1.PartyMessage_Batch:
		return false, l.onBatch(i, x.Batch)
	case *mpsiv1.PartyMessage_Share:
		return l.onShare(ctx, i, x.Share)
	case *mpsiv1.PartyMessage_Mhe:
		return l.onMhe(ctx, i, x.Mhe)
	case *mpsiv1.PartyMessage_Abort:
		return false, fmt.Errorf("%w: %s", errPartyAborted, truncate(x.Abort.GetReason(), 200))
	case *mpsiv1.PartyMessage_Hello:
		return false, fmt.Errorf("%w: Hello sent twice", ErrWrongRound)
	default:
		return false, fmt.Errorf("%w: empty message", ErrBadMessage)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func (l *live) onReady(ctx context.Context, i int, r *mpsiv1.Ready) error {
	if l.ready[i] != nil || l.rostered {
		return fmt.Errorf("%w: Ready sent twice", ErrWrongRound)
	}
	if len(r.GetHpkePublicKey()) != 32 || len(r.GetSignature()) == 0 || len(r.GetSignature()) > 512 {
		return fmt.Errorf("%w: Ready: bad key or signature length", ErrBadMessage)
	}
	if r.GetSetSize() > uint64(l.spec.MaxSetSize) {
		return fmt.Errorf("%w: set size %d exceeds max_set_size %d", ErrBadMessage, r.GetSetSize(), l.spec.MaxSetSize)
	}
	if err := l.eng.Declare(i, int(r.GetSetSize())); err != nil {
		return err
	}
	if len(r.GetNormalization()) > 100 {
		return fmt.Errorf("%w: Ready: normalization version too long", ErrBadMessage)
	}
	l.ready[i] = r
	_ = l.srv.cfg.Store.Append(ctx, "party.ready", l.spec.ID, l.spec.Parties[i], fmt.Sprintf("set_size=%d normalization=%q", r.GetSetSize(), r.GetNormalization()))
	for _, x := range l.ready {
		if x == nil {
			return nil
		}
	}
	for j, x := range l.ready {
		if x.GetNormalization() != l.ready[0].GetNormalization() {
			return fmt.Errorf("%w: parties normalise identifiers differently (%s: %q, %s: %q); equal identifiers could fail to match — upgrade to the same mpsi version",
				ErrBadMessage, l.spec.Parties[0], l.ready[0].GetNormalization(), l.spec.Parties[j], x.GetNormalization())
		}
	}
	roster := &mpsiv1.Roster{}
	for j, x := range l.ready {
		roster.Parties = append(roster.Parties, &mpsiv1.RosterEntry{Name: l.spec.Parties[j], SetSize: x.GetSetSize(),
			HpkePublicKey: x.GetHpkePublicKey(), Signature: x.GetSignature(), Certificate: l.conn(j).cert.Raw})
	}
	l.rostered = true
	if l.srv.cfg.JoinBudget > 0 {
		if err := l.eng.Spill(join.SpillOptions{Budget: l.srv.cfg.JoinBudget, Dir: l.srv.cfg.SpillDir, Workers: l.srv.cfg.Workers}); err != nil {
			return err
		}
	}
	if l.spec.Aggregation == session.AggregationEncrypted {
		if err := l.startEncrypted(); err != nil {
			return err
		}
	}
	l.broadcast(&mpsiv1.CoordinatorMessage{Msg: &mpsiv1.CoordinatorMessage_Roster{Roster: roster}})
	l.setRound("tokens")
	// Empty lists complete at once.
	for j := range l.tokDone {
		if l.eng.Size(j) == 0 {
			if err := l.finishTokens(j); err != nil {
				return err
			}
		}
	}
	return l.maybeJoin()
}

func (l *live) onEnvelope(i int, e *mpsiv1.Envelope) error {
	if !l.rostered {
		return fmt.Errorf("%w: envelope before the roster", ErrWrongRound)
	}
	maxSealed := envelope.MaxEnvelopeSealed
	switch e.GetRound() {
	case mpsiv1.Round_ROUND_MASK_SEED:
		if l.enc != nil {
			return fmt.Errorf("%w: mask seed with aggregation %s", ErrBadMessage, l.spec.Aggregation)
		}
	case mpsiv1.Round_ROUND_THRESHOLD_SHARE:
		if l.enc == nil || !l.enc.x.Params().IsThreshold() || l.enc.pkSent {
			return fmt.Errorf("%w: threshold share outside a threshold session's key round", ErrBadMessage)
		}
		maxSealed = envelope.MaxBulkSealed
	case mpsiv1.Round_ROUND_KEY_CONTRIBUTION:
		if l.spec.Match.Mode != session.ModeKeyed {
			return fmt.Errorf("%w: key contribution in %s mode", ErrBadMessage, l.spec.Match.Mode)
		}
	default:
		return fmt.Errorf("%w: envelope for unknown round %d", ErrBadMessage, e.GetRound())
	}
	if e.GetFrom() != uint32(i) || int(e.GetTo()) >= l.n || e.GetTo() == e.GetFrom() {
		return fmt.Errorf("%w: envelope from %d to %d on party %d's stream", ErrBadMessage, e.GetFrom(), e.GetTo(), i)
	}
	if len(e.GetEnc()) != envelope.EncSize || len(e.GetCiphertext()) > maxSealed {
		return fmt.Errorf("%w: envelope lengths", ErrBadMessage)
	}
	k := [3]uint32{uint32(e.GetRound()), e.GetFrom(), e.GetTo()}
	if l.envSeen[k] {
		return fmt.Errorf("%w: envelope replayed", ErrWrongRound)
	}
	l.envSeen[k] = true
	l.conn(int(e.GetTo())).send(&mpsiv1.CoordinatorMessage{Msg: &mpsiv1.CoordinatorMessage_Envelope{Envelope: e}})
	if e.GetRound() == mpsiv1.Round_ROUND_THRESHOLD_SHARE {
		// Cannot finish: no ciphertext can be in before the public key.
		_, err := l.maybePublicKey(context.Background())
		return err
	}
	return nil
}

func (l *live) onBatch(i int, b *mpsiv1.Batch) error {
	if !l.rostered || l.dealt {
		return fmt.Errorf("%w: batch outside the token round", ErrWrongRound)
	}
	owner, hop := int(b.GetOwner()), int(b.GetHop())
	if owner >= l.n {
		return fmt.Errorf("%w: batch for unknown owner %d", ErrBadMessage, owner)
	}
	want := psi.TokenSize
	switch b.GetKind() {
	case mpsiv1.BatchKind_BATCH_KIND_RING:
		if l.spec.Match.Mode != session.ModeDH {
			return fmt.Errorf("%w: ring batch in %s mode", ErrBadMessage, l.spec.Match.Mode)
		}
		if hop >= l.n || (hop == 0 && owner != i) || (hop > 0 && RingTarget(l.n, owner, hop) != i) {
			return fmt.Errorf("%w: ring batch (owner %d, hop %d) not for this party", ErrBadMessage, owner, hop)
		}
	case mpsiv1.BatchKind_BATCH_KIND_TOKENS:
		if l.spec.Match.Mode != session.ModeKeyed || owner != i || hop != 0 {
			return fmt.Errorf("%w: token batch not allowed here", ErrBadMessage)
		}
	default:
		return fmt.Errorf("%w: batch kind %v from a party", ErrBadMessage, b.GetKind())
	}
	data := b.GetData()
	if len(data)%want != 0 || len(data)/want > l.srv.cfg.MaxBatch || len(data) == 0 {
		return fmt.Errorf("%w: batch of %d bytes (limit %d elements of %d bytes)", ErrBadMessage, len(data), l.srv.cfg.MaxBatch, want)
	}
	size := uint64(l.eng.Size(owner))
	if b.GetTotal() != size {
		return fmt.Errorf("%w: batch total %d, declared size %d", ErrBadMessage, b.GetTotal(), size)
	}
	key := [2]uint32{uint32(owner), uint32(hop)}
	st := l.streams[key]
	if st == nil {
		st = &listState{total: size}
		l.streams[key] = st
	}
	cnt := uint64(len(data) / want)
	if b.GetOffset() != st.next || st.next+cnt > st.total {
		return fmt.Errorf("%w: batch at offset %d, expected %d of %d", ErrBadMessage, b.GetOffset(), st.next, st.total)
	}
	if hop > 0 {
		if in := l.streams[[2]uint32{uint32(owner), uint32(hop - 1)}]; in == nil || st.next+cnt > in.next {
			return fmt.Errorf("%w: ring batch (owner %d, hop %d) ahead of its input", ErrWrongRound, owner, hop)
		}
	}
	st.next += cnt
	l.srv.cfg.Metrics.Elements(int(cnt))
	final := b.GetKind() == mpsiv1.BatchKind_BATCH_KIND_TOKENS || hop == l.n-1
	if !final {
		next := RingTarget(l.n, owner, hop+1)
		l.conn(next).send(&mpsiv1.CoordinatorMessage{Msg: &mpsiv1.CoordinatorMessage_Batch{Batch: &mpsiv1.Batch{
			Kind: mpsiv1.BatchKind_BATCH_KIND_RING, Owner: uint32(owner), Hop: uint32(hop + 1), Offset: b.GetOffset(), Total: size, Data: data}}})
		return nil
	}
	l.tokBuf = l.tokBuf[:0]
	for k := 0; k < len(data); k += want {
		l.tokBuf = append(l.tokBuf, join.Token(data[k:k+want]))
	}
	if err := l.eng.AddTokens(owner, b.GetOffset(), l.tokBuf); err != nil {
		return err
	}
	if st.next == st.total {
		if err := l.finishTokens(owner); err != nil {
			return err
		}
		return l.maybeJoin()
	}
	return nil
}

func (l *live) finishTokens(owner int) error {
	if l.tokDone[owner] {
		return nil
	}
	l.tokDone[owner] = true
	if l.eng.Size(owner) == 0 {
		return l.eng.AddTokens(owner, 0, nil) // completes the empty list
	}
	return nil
}

func (l *live) maybeJoin() error {
	for _, d := range l.tokDone {
		if !d {
			return nil
		}
	}
	l.setRound("join-tokens")
	joinStart := time.Now()
	jr, err := l.eng.Join(context.Background(), l.srv.cfg.Workers)
	if err != nil {
		return err
	}
	joinTime := time.Since(joinStart)
	if l.enc != nil {
		// No positions and no masks: the keys (if complete) and then the
		// public key, after which the parties encrypt every record.
		l.srv.log.Info("intersection computed", "session", l.spec.ID, "size", jr.Intersection, "join_seconds", joinTime.Seconds())
		l.dealt = true
		l.setRound("keys")
		_, err := l.maybePublicKey(context.Background()) // cannot finish: no ciphertext yet
		return err
	}
	masks, err := l.eng.Masks()
	if err != nil {
		return err
	}
	l.srv.log.Info("intersection computed", "session", l.spec.ID, "size", jr.Intersection, "join_seconds", joinTime.Seconds())
	for i := 0; i < l.n; i++ {
		c := l.conn(i)
		pos := jr.Positions[i]
		for off := 0; off < len(pos); off += l.srv.cfg.MaxBatch {
			end := min(off+l.srv.cfg.MaxBatch, len(pos))
			data := make([]byte, 0, 4*(end-off))
			for _, p := range pos[off:end] {
				data = binary.LittleEndian.AppendUint32(data, p)
			}
			c.send(&mpsiv1.CoordinatorMessage{Msg: &mpsiv1.CoordinatorMessage_Batch{Batch: &mpsiv1.Batch{
				Kind: mpsiv1.BatchKind_BATCH_KIND_POSITIONS, Owner: uint32(i), Offset: uint64(off), Total: uint64(len(pos)), Data: data}}})
		}
		mb, err := masks[i].MarshalBinary()
		if err != nil {
			return err
		}
		c.send(&mpsiv1.CoordinatorMessage{Msg: &mpsiv1.CoordinatorMessage_Mask{Mask: &mpsiv1.MaskDeal{Mask: mb}}})
	}
	l.dealt = true
	l.setRound("shares")
	return nil
}

func (l *live) onShare(ctx context.Context, i int, sh *mpsiv1.Share) (bool, error) {
	if !l.dealt || l.enc != nil {
		return false, fmt.Errorf("%w: share before masks were dealt, or with aggregation encrypted", ErrWrongRound)
	}
	z, err := sharing.UnmarshalVector(sh.GetVector(), l.eng.Layout().Len())
	if err != nil {
		return false, fmt.Errorf("%w: share: %v", ErrBadMessage, err)
	}
	if err := l.eng.AddShare(i, z); err != nil {
		return false, err
	}
	for _, s := range l.eng.shares {
		if s == nil {
			return false, nil
		}
	}
	res, err := l.eng.Release()
	if err != nil {
		return false, err
	}
	return true, l.publish(ctx, res)
}

// publish signs, stores and sends the released Result.
func (l *live) publish(ctx context.Context, res *session.Result) error {
	b, err := jsonMarshal(res)
	if err != nil {
		return err
	}
	sig, err := envelope.SignResult(l.srv.cfg.Signer, l.spec.ID, b)
	if err != nil {
		return err
	}
	if err := l.srv.cfg.Store.Complete(ctx, l.spec.ID, b, sig); err != nil {
		return err
	}
	l.setRound("released")
	l.broadcast(&mpsiv1.CoordinatorMessage{Msg: &mpsiv1.CoordinatorMessage_Result{Result: &mpsiv1.Result{ResultJson: b, Signature: sig}}})
	return nil
}
