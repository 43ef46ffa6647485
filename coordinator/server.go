package coordinator

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	mpsiv1 "github.com/mpsi-dev/mpsi/api/mpsi/v1"
	"github.com/mpsi-dev/mpsi/coordinator/store"
	"github.com/mpsi-dev/mpsi/internal/resend"
	"github.com/mpsi-dev/mpsi/psi"
	"github.com/mpsi-dev/mpsi/psi/join"
	"github.com/mpsi-dev/mpsi/psi/protocol"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// Defaults for [Config].
const (
	DefaultRoundTimeout = 2 * time.Minute
	DefaultAdminName    = "admin"
)

// Errors the service maps to status codes.
var (
	ErrUnauthenticated = errors.New("coordinator: no verified client certificate")
	ErrForbidden       = errors.New("coordinator: certificate name not allowed")
	ErrUnknownSession  = errors.New("coordinator: unknown session")
	ErrShuttingDown    = errors.New("coordinator: shutting down")
)

// Config configures a [Server]. Store and Signer are required.
type Config struct {
	Store  *store.Store
	Signer crypto.Signer // the coordinator's TLS key; signs tallies and released Results
	// Name is the coordinator's certificate name: no session may list it as
	// a party. Empty means protocol.DefaultCoordinatorName.
	Name string
	// Logger receives structured logs; nil discards them. Secrets are never logged.
	Logger *slog.Logger
	// RoundTimeout bounds the time a session may go without progress (no
	// message accepted from any party) in any round; zero means
	// DefaultRoundTimeout.
	RoundTimeout time.Duration
	// AdminNames are the certificate names allowed to create sessions;
	// empty means {DefaultAdminName}.
	AdminNames []string
	// MaxBatch bounds the elements in one Batch; zero means
	// protocol.DefaultMaxBatch.
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
	// PrivacyBudget, if set, refuses sessions at creation that would
	// exceed it for a party (advisory; see [PrivacyBudget]).
	PrivacyBudget *PrivacyBudget
	// MaxSessions, if positive, caps the live sessions: CreateSession
	// beyond it fails at once with codes.ResourceExhausted ([ErrOverloaded]).
	MaxSessions int
	// MaxStreams, if positive, caps the open party streams (Run calls):
	// one beyond it fails at once with codes.ResourceExhausted.
	MaxStreams int
	// ReconnectGrace, if positive, is how long a session waits for a party
	// whose stream broke (not ended cleanly) to reconnect and resume it
	// (same certificate; doc/PROTOCOL.md, "Reconnect"): frames are resent
	// from the last each side received and the session goes on. Past the
	// grace it aborts (code disconnected, naming the party). Round
	// deadlines keep running meanwhile. Zero aborts at once, as a party
	// that vanished cannot be told apart from one that broke; the frames
	// sent are then not kept for resending.
	ReconnectGrace time.Duration
}

// Server is the coordinator's gRPC service. It is safe for concurrent use
// and serves many sessions at once; each live session is owned by one
// goroutine that drives a [protocol.Coordinator] machine and carries out its
// events: frames to the parties, the store, the audit log, metrics.
type Server struct {
	mpsiv1.UnimplementedCoordinatorServer
	cfg Config
	log *slog.Logger

	mu       sync.Mutex // guards sessions, pending, streams, closing
	sessions map[string]*live
	pending  int // sessions being created, counted against MaxSessions
	streams  int // open Run streams, counted against MaxStreams
	closing  bool
	// unrecorded holds the aborts the store refused (disk full, I/O error)
	// by session id, until a retry records them; GetResult and Ready
	// report them meanwhile, so no such session looks "running".
	unrecorded map[string]unrecordedAbort
	retrying   bool           // the retry goroutine runs
	quit       chan struct{}  // closed by Shutdown
	wg         sync.WaitGroup // live session goroutines
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
		cfg.MaxBatch = protocol.DefaultMaxBatch
	}
	if cfg.Name == "" {
		cfg.Name = protocol.DefaultCoordinatorName
	}
	if cfg.MaxBatch < 0 || cfg.MaxBatch > protocol.MaxBatchLimit {
		return nil, fmt.Errorf("coordinator: MaxBatch %d outside [1, %d]", cfg.MaxBatch, protocol.MaxBatchLimit)
	}
	return &Server{cfg: cfg, log: cfg.Logger, sessions: map[string]*live{}, unrecorded: map[string]unrecordedAbort{}, quit: make(chan struct{})}, nil
}

// ServerOptions are the gRPC server options the service needs beside the
// transport credentials: the protocol's message limit, and keepalives that
// detect a dead path while permitting the hospitals' own pings (every 30 s,
// party.RunRemote).
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(protocol.MaxMessageSize), grpc.MaxSendMsgSize(protocol.MaxMessageSize),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 15 * time.Second}),
	}
}

// Register adds the service to a gRPC server.
func (s *Server) Register(g *grpc.Server) { mpsiv1.RegisterCoordinatorServer(g, s) }

// Recover marks sessions left created or running by a previous process as
// aborted, so that none is ever half-released, and returns their ids. It
// also removes the spill directories crashed coordinators left in
// [Config.SpillDir] or the default temporary directory (see
// join.RemoveStaleSpillDirs).
func (s *Server) Recover(ctx context.Context) ([]string, error) {
	ids, err := s.cfg.Store.AbortInterrupted(ctx, "coordinator restarted during the session")
	s.cfg.Metrics.SessionsInterrupted(len(ids))
	for _, id := range ids {
		s.log.Warn("session aborted by restart", "session", id)
	}
	// Spill files of sessions a crash interrupted, in SpillDir or the
	// default temporary directory: only ours (named by the pattern, owned
	// by our user, not locked by a live join of another process).
	removed, gerr := join.RemoveStaleSpillDirs(s.cfg.SpillDir)
	for _, d := range removed {
		s.log.Warn("removed spill files of an interrupted session", "dir", d)
	}
	err = errors.Join(err, gerr)
	return ids, err
}

// Shutdown aborts every live session with a reason, cancels their
// session contexts (a join in progress, spilling or not, stops) and waits
// for their goroutines, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		close(s.quit)
	}
	s.closing = true
	for _, l := range s.sessions {
		l.abortAsync(protocol.CodeShutdown, "coordinator shutting down")
		l.cancel()
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
	case errors.Is(err, session.ErrInvalidSpec), errors.Is(err, protocol.ErrBadMessage), errors.Is(err, protocol.ErrMalformed), errors.Is(err, psi.ErrInvalidPoint):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, protocol.ErrWrongRound), errors.Is(err, protocol.ErrSessionOver), errors.Is(err, errNotResumable):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, ErrShuttingDown):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, ErrOverloaded):
		return status.Error(codes.ResourceExhausted, err.Error())
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
	if spec.PartyIndex(s.cfg.Name) >= 0 {
		return nil, s.toStatus(fmt.Errorf("%w: parties: the coordinator %q cannot be a party of its own session", session.ErrInvalidSpec, s.cfg.Name))
	}
	release, err := s.reserveSession()
	if err != nil {
		return nil, s.toStatus(err)
	}
	defer release()
	unlock, err := s.cfg.PrivacyBudget.admit(ctx, s, spec)
	if err != nil {
		return nil, s.toStatus(err)
	}
	defer unlock()
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
	resp := &mpsiv1.GetResultResponse{SessionId: rec.ID, State: rec.State, Reason: rec.Reason, SpecJson: rec.Spec}
	if u, ok := s.unrecordedAbort(rec.ID); ok && (rec.State == store.StateCreated || rec.State == store.StateRunning) {
		resp.State = store.StateAborted
		resp.Reason = fmt.Sprintf("%s (not yet recorded: the coordinator's store failed: %v)", u.reason, u.err)
	}
	if rec.State == store.StateCompleted {
		resp.ResultJson, resp.Signature, err = s.cfg.Store.Result(ctx, rec.ID)
		if err != nil {
			return nil, s.toStatus(err)
		}
	}
	return resp, nil
}

// Run carries one party's stream: frames in, decoded and checked by the
// protocol codec, go to the session's machine; the machine's frames for the
// party go out through the party's queue.
func (s *Server) Run(stream grpc.BidiStreamingServer[mpsiv1.Frame, mpsiv1.Frame]) error {
	ctx := stream.Context()
	name, cert, err := peerName(ctx)
	if err != nil {
		return s.toStatus(err)
	}
	release, err := s.reserveStream(name)
	if err != nil {
		return s.toStatus(err)
	}
	defer release()
	// The first message must come within a round's time.
	type recvd struct {
		f   *mpsiv1.Frame
		err error
	}
	firstc := make(chan recvd, 1)
	go func() {
		f, err := stream.Recv()
		firstc <- recvd{f, err}
	}()
	var first *mpsiv1.Frame
	select {
	case r := <-firstc:
		if r.err != nil {
			return r.err
		}
		first = r.f
	case <-time.After(s.cfg.RoundTimeout):
		return status.Error(codes.DeadlineExceeded, "no Hello within the round deadline")
	case <-ctx.Done():
		return ctx.Err()
	}
	m, err := protocol.Decode(first.GetData())
	if err != nil {
		return s.toStatus(err)
	}
	hello, ok := m.(*protocol.Hello)
	if !ok {
		return s.toStatus(fmt.Errorf("%w: the first message must be Hello, not %s", protocol.ErrBadMessage, m.Type()))
	}
	id := hello.Session
	s.mu.Lock()
	l := s.sessions[id]
	s.mu.Unlock()
	if l == nil {
		rec, err := s.cfg.Store.Session(ctx, id)
		if err != nil {
			return s.toStatus(fmt.Errorf("%w: %q", ErrUnknownSession, truncate(id, 140)))
		}
		if spec, err := session.ParseSpec(rec.Spec); err != nil || spec.PartyIndex(name) < 0 {
			return s.toStatus(fmt.Errorf("%w: certificate name %q is not a party of session %s", ErrForbidden, name, rec.ID))
		}
		return s.toStatus(fmt.Errorf("%w: session %s is %s %s", protocol.ErrSessionOver, rec.ID, rec.State, rec.Reason))
	}
	idx := l.spec.PartyIndex(name)
	if idx < 0 {
		s.log.Warn("refused party not in spec", "session", l.spec.ID, "name", name)
		return s.toStatus(fmt.Errorf("%w: certificate name %q is not a party of session %s", ErrForbidden, name, l.spec.ID))
	}
	if s.cfg.ReconnectGrace > 0 {
		_ = stream.SetHeader(metadata.Pairs(resend.GraceHeader, s.cfg.ReconnectGrace.String()))
	}
	var c *conn
	var sl *slot
	if first.GetResume() {
		var ack uint64
		c, sl, ack, err = l.resume(idx, cert, first.GetAck())
		if errors.Is(err, protocol.ErrSessionOver) {
			// Over while the party was away: say how.
			if rec, serr := s.cfg.Store.Session(ctx, id); serr == nil && rec.State != store.StateRunning {
				err = fmt.Errorf("%w: session %s is %s %s", protocol.ErrSessionOver, rec.ID, rec.State, rec.Reason)
			}
		}
		if err != nil {
			return s.toStatus(err)
		}
		if err := stream.Send(&mpsiv1.Frame{Resume: true, Ack: ack}); err != nil {
			c.release(sl)
			return err
		}
	} else {
		if first.GetSeq() != 1 || first.GetAck() != 0 {
			return s.toStatus(fmt.Errorf("%w: the Hello must be frame 1 with nothing acknowledged (seq %d, ack %d)", protocol.ErrBadMessage, first.GetSeq(), first.GetAck()))
		}
		c, sl, err = l.attach(idx, cert)
		if err != nil {
			return s.toStatus(err)
		}
		s.log.Info("party joined", "session", l.spec.ID, "party", name)
	}
	gen := sl.gen
	// Sender: drain the connection's queue onto the stream.
	sendErr := make(chan error, 1)
	go func() { sendErr <- c.pump(stream, sl) }()
	// Reader: decode frames and forward them to the session goroutine.
	readErr := make(chan error, 1)
	go func() {
		for {
			f, err := stream.Recv()
			var ev event
			if err != nil {
				ev = event{from: idx, gen: gen, gone: err}
			} else {
				ev = readFrame(c, idx, gen, f)
				if ev.pureAck {
					continue
				}
			}
			// Through the session's queue, after the party's last messages
			// (an Abort it sent just before closing).
			select {
			case l.events <- ev:
			case <-l.done:
				// The session is over. Keep reading (and dropping) what the
				// party still sends: a party blocked in a large Send (key
				// shares, ciphertexts) on flow control would otherwise never
				// read the Abort or Result queued for it, and the final
				// message would never flush (both sides blocked sending).
				for err == nil {
					_, err = stream.Recv()
				}
			}
			if err != nil {
				readErr <- err
				return
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
	case err := <-readErr:
		if s.cfg.ReconnectGrace > 0 && broken(err) {
			// The session waits for a resume on a new stream; this one is
			// done.
			c.release(sl)
			return err
		}
		return flush()
	case <-l.done:
		return flush()
	case <-sl.gone:
		return status.Error(codes.Aborted, "stream replaced by a resumed one")
	case err := <-sendErr:
		if errors.Is(err, errSuperseded) {
			return status.Error(codes.Aborted, "stream replaced by a resumed one")
		}
		if err != nil {
			c.release(sl)
			// The session decides what a vanished party means.
			select {
			case l.events <- event{from: idx, gen: gen, gone: err}:
			case <-l.done:
			}
		}
		return err
	}
}

// readFrame checks a frame's numbers and decodes its message into an event
// for the session goroutine; acknowledgements are applied to the outbox
// here.
func readFrame(c *conn, idx int, gen uint64, f *mpsiv1.Frame) event {
	size := len(f.GetData())
	if f.GetResume() {
		return event{from: idx, gen: gen, bad: fmt.Errorf("%w: frame: resume set on a frame that does not open a stream", protocol.ErrBadMessage), size: size}
	}
	if a := f.GetAck(); a > 0 {
		if err := c.peerAck(a); err != nil {
			return event{from: idx, gen: gen, bad: fmt.Errorf("%w: frame: %v", protocol.ErrBadMessage, err), size: size}
		}
	}
	if size == 0 && f.GetSeq() == 0 {
		return event{pureAck: true}
	}
	m, derr := protocol.Decode(f.GetData())
	return event{from: idx, gen: gen, seq: f.GetSeq(), msg: m, bad: derr, size: size}
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
		l.cancel()
		return ErrShuttingDown
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

// newLive makes a session's machine and state; its run goroutine is not
// started.
func (s *Server) newLive(spec *session.Spec) (*live, error) {
	m, err := protocol.NewCoordinator(spec, protocol.CoordinatorConfig{Signer: s.cfg.Signer, Name: s.cfg.Name, MaxBatch: s.cfg.MaxBatch,
		Workers: s.cfg.Workers, JoinBudget: s.cfg.JoinBudget, SpillDir: s.cfg.SpillDir})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := len(spec.Parties)
	return &live{
		srv: s, spec: spec, m: m, n: n, ctx: ctx, cancel: cancel,
		events: make(chan event, 64), done: make(chan struct{}), abortCh: make(chan abortReq, 1),
		conns: make([]*conn, n), links: make([]linkState, n), log: s.log.With("session", spec.ID),
	}, nil
}

// event is what a party's stream delivers to its session goroutine.
type event struct {
	from    int
	gen     uint64            // the stream it came from (see conn.attachStream)
	seq     uint64            // the frame's number (msg or bad)
	attach  *x509.Certificate // the party attached
	msg     protocol.Message
	bad     error      // the frame did not decode
	gone    error      // the party's stream ended with this error
	resume  *resumeReq // the party resumes on a new stream
	expired bool       // the reconnect grace of stream gen ran out
	pureAck bool       // an acknowledgement only (not sent to the session)
	size    int        // bytes of the frame (msg or bad)
}

type abortReq struct {
	code   protocol.Code
	reason string
}

func goneReason(err error) string {
	if errors.Is(err, io.EOF) {
		return "closed its stream before the end"
	}
	return fmt.Sprintf("disconnected: %v", status.Convert(err).Message())
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// live is a running session, owned by its run goroutine.
type live struct {
	srv     *Server
	spec    *session.Spec
	m       *protocol.Coordinator
	n       int
	log     *slog.Logger
	ctx     context.Context // cancelled by Shutdown: a join in progress stops
	cancel  context.CancelFunc
	events  chan event
	done    chan struct{}
	abortCh chan abortReq

	mu    sync.Mutex // guards conns
	conns []*conn

	// Owned by run.
	links      []linkState
	running    bool
	round      protocol.Round
	roundStart time.Time
	started    time.Time
	finished   bool // released or aborted: counted in the metrics
}

func (l *live) attach(idx int, cert *x509.Certificate) (*conn, *slot, error) {
	l.mu.Lock()
	select {
	case <-l.done:
		l.mu.Unlock()
		return nil, nil, fmt.Errorf("%w: session %s", protocol.ErrSessionOver, l.spec.ID)
	default:
	}
	if l.conns[idx] != nil {
		l.mu.Unlock()
		return nil, nil, fmt.Errorf("%w: party %s is already connected", protocol.ErrWrongRound, l.spec.Parties[idx])
	}
	c := newConn(cert, l.srv.cfg.ReconnectGrace > 0, l.log)
	sl := c.attachStream()
	l.conns[idx] = c
	// Not under l.mu: the session goroutine needs it to drain the queue.
	l.mu.Unlock()
	// The session goroutine attaches the party to the machine, which
	// answers with the Welcome.
	select {
	case l.events <- event{from: idx, gen: sl.gen, attach: cert}:
	case <-l.done:
		return nil, nil, fmt.Errorf("%w: session %s", protocol.ErrSessionOver, l.spec.ID)
	}
	return c, sl, nil
}

func (l *live) abortAsync(code protocol.Code, reason string) {
	select {
	case l.abortCh <- abortReq{code, reason}:
	default:
	}
}

func (l *live) conn(i int) *conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[i]
}

// run is the session goroutine: it owns the machine, feeds it the parties'
// events and carries out what it asks.
func (l *live) run() {
	defer close(l.done)
	defer l.cancel()
	defer func() {
		if err := l.m.Close(); err != nil {
			l.log.Error("removing spill files", "err", err)
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
	l.started, l.roundStart = time.Now(), time.Now()
	l.srv.cfg.Metrics.RoundEntered("", l.round.String())
	// The deadline is RoundTimeout without progress: every event restarts
	// it, so that a large session whose rounds take longer than
	// RoundTimeout but keep moving is not cut off, while a silent party
	// still is.
	timer := time.NewTimer(l.srv.cfg.RoundTimeout)
	defer timer.Stop()
	for !l.m.Over() {
		select {
		case a := <-l.abortCh:
			l.m.Abort(a.code, a.reason)
		case <-timer.C:
			l.m.Expire(l.srv.cfg.RoundTimeout.String())
		case ev := <-l.events:
			// Progress restarts the deadline; a stream breaking, resuming
			// or its grace running out does not.
			if l.feed(ev) {
				timer.Reset(l.srv.cfg.RoundTimeout)
			}
		}
		l.apply()
	}
}

// feed gives one stream event to the machine; it reports whether the
// event was progress (a party joined or sent a message).
func (l *live) feed(ev event) (progress bool) {
	st := &l.links[ev.from]
	switch {
	case ev.resume != nil:
		ev.resume.reply <- l.doResume(ev.from, ev.resume)
		return false
	case ev.attach == nil && ev.gen != st.gen:
		return false // from a stream a resume replaced
	case ev.expired:
		l.graceExpired(ev.from, ev.gen)
		return false
	case ev.gone != nil:
		l.streamGone(ev.from, ev.gone)
		return false
	case ev.attach == nil:
		// A frame: drop a resent duplicate, refuse a gap.
		fresh, err := st.in.Accept(ev.seq)
		if err != nil {
			l.m.Refuse(ev.from, fmt.Errorf("%w: frame: %v", protocol.ErrBadMessage, err))
			return false
		}
		if !fresh {
			return false
		}
		if c := l.conn(ev.from); c != nil {
			c.received(ev.seq)
		}
	}
	switch {
	case ev.attach != nil:
		st.gen = ev.gen
		_, _ = st.in.Accept(1) // the Hello
		if c := l.conn(ev.from); c != nil {
			c.received(1)
		}
		if !l.running {
			l.running = true
			if err := l.srv.cfg.Store.SetRunning(l.ctx, l.spec.ID); err != nil {
				l.m.Abort(protocol.CodeInternal, fmt.Sprintf("coordinator's store failed: %v", err))
				return true
			}
		}
		if err := l.m.Attach(ev.from, ev.attach.Raw); err != nil {
			l.log.Warn("attach refused", "party", l.spec.Parties[ev.from], "err", err)
			return true
		}
		_ = l.srv.cfg.Store.Append(l.ctx, "party.joined", l.spec.ID, l.spec.Parties[ev.from], "")
	case ev.bad != nil:
		l.srv.cfg.Metrics.MessageIn(l.round.String(), ev.size)
		// The machine names the party and the check, and aborts.
		l.m.Refuse(ev.from, ev.bad)
	default:
		l.srv.cfg.Metrics.MessageIn(l.round.String(), ev.size)
		_ = l.m.Receive(l.ctx, ev.from, ev.msg)
	}
	return true
}

// apply carries out the machine's events in order.
func (l *live) apply() {
	for evs := l.m.Events(); len(evs) > 0; evs = l.m.Events() {
		for k := 0; k < len(evs); k++ {
			switch e := evs[k].(type) {
			case protocol.Send:
				b, err := protocol.Encode(e.Msg)
				if err != nil {
					l.m.Abort(protocol.CodeInternal, fmt.Sprintf("coordinator: encoding %s for %s: %v", e.Msg.Type(), l.spec.Parties[e.To], err))
					evs = dropResults(evs[k+1:])
					k = -1
					continue
				}
				if c := l.conn(e.To); c != nil {
					l.srv.cfg.Metrics.MessageOut(l.round.String(), len(b))
					c.send(b)
				}
			case protocol.RoundEntered:
				if !l.finished {
					l.srv.cfg.Metrics.RoundFinished(l.round.String(), time.Since(l.roundStart))
					l.srv.cfg.Metrics.RoundEntered(l.round.String(), e.Round.String())
				}
				l.round, l.roundStart = e.Round, time.Now()
				l.log.Info("round", "round", e.Round.String())
			case protocol.Audit:
				_ = l.srv.cfg.Store.Append(l.ctx, e.Kind, l.spec.ID, e.Party, e.Detail)
			case protocol.Info:
				l.log.Info(e.Msg, e.Args...)
			case protocol.Disconnect:
				if c := l.conn(e.Party); c != nil {
					c.close()
				}
			case protocol.Aborted:
				l.log.Warn("session aborted", "code", e.Code.String(), "reason", e.Reason, "round", e.Round.String(), "duration", time.Since(l.started))
				l.finish(OutcomeAborted, e.Code.String())
				// Not the session context: the abort must be recorded even
				// when a shutdown cancelled the session.
				l.srv.recordAbort(l.spec.ID, e.Reason)
			case protocol.Released:
				if err := l.srv.cfg.Store.Complete(context.Background(), l.spec.ID, e.JSON, e.Signature); err != nil {
					// Never send a Result that is not stored: abort instead
					// and drop the Result frames that follow.
					l.m.Abort(protocol.CodeInternal, fmt.Sprintf("coordinator's store failed: %v", err))
					evs = dropResults(evs[k+1:])
					k = -1
					continue
				}
				l.finish(OutcomeCompleted, ReasonNone)
				l.log.Info("session released", "duration", time.Since(l.started), "last_round", time.Since(l.roundStart))
			}
		}
	}
}

// dropResults removes the Result frames from evs.
func dropResults(evs []protocol.Event) []protocol.Event {
	out := make([]protocol.Event, 0, len(evs))
	for _, ev := range evs {
		if e, ok := ev.(protocol.Send); ok && e.Msg.Type() == protocol.TypeResult {
			continue
		}
		out = append(out, ev)
	}
	return out
}
