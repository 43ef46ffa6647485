package upload

import (
	"context"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/mpsi-dev/mpsi/examples/ecgupload/ecgpb"
)

// Defaults of Config and ClientConfig.
const (
	DefaultWindow           = 12 * time.Hour
	DefaultMaxClockSkew     = 5 * time.Minute
	DefaultThreshold        = 4 << 20
	DefaultPoolSize         = 4
	DefaultHighPriority     = 5
	DefaultPriorityBoost    = 2
	DefaultMaxRecordingSize = 1 << 30
	DefaultMaxSpoolBytes    = 2 << 30
	DefaultMaxReplayEntries = 1 << 20
	DefaultJobTTL           = time.Hour
	DefaultResumeGrace      = 5 * time.Second
	DefaultMinPool          = 1
	DefaultIngestBudget     = 400e6 // bytes per second
)

// ServiceName is the gRPC service name, also used for health checks.
const ServiceName = "mpsi.examples.ecgupload.v1.Upload"

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	// StoreDir is where recordings are stored (required, must exist).
	StoreDir string
	// Credentials maps client ids to their credentials, roles and expiry
	// dates (required). The server keeps only SHA-256 digests of the
	// secrets. A job's urgency is the role's (a client may ask for less).
	Credentials map[string]Credential
	// StateDir holds the durable state: the key epoch, open jobs with their
	// sealed chunks, and the replay cache, in a SQLite file (StateDBName),
	// and the key that seals data keys at rest (StateKeyName). A server
	// restarted on the same directory resumes every unfinished job and still
	// refuses replayed requests. If empty, the state is an in-memory
	// database that dies with the process (tests).
	StateDir string
	// Window is how old a request may be; if zero, DefaultWindow.
	Window time.Duration
	// MaxClockSkew is how far in the future a request time may lie; if
	// zero, DefaultMaxClockSkew.
	MaxClockSkew time.Duration
	// Threshold is the largest sealed recording accepted in one unary call;
	// if zero, DefaultThreshold. Larger recordings must be streamed.
	Threshold int
	// PoolSize is the largest number of concurrent stream transfers; if
	// zero, DefaultPoolSize. The pool starts at this size.
	PoolSize int
	// MinPool is the smallest the pool shrinks to when the measured ingest
	// of the running transfers exceeds IngestBudget; if zero,
	// DefaultMinPool. Equal to PoolSize, the pool never resizes.
	MinPool int
	// IngestBudget is the server's ingest capacity in bytes per second;
	// if zero, DefaultIngestBudget. The pool shrinks while the running
	// transfers' measured throughput exceeds it and grows back (up to
	// PoolSize) while transfers wait and it is below 70 % of it.
	IngestBudget float64
	// HighPriority is the priority from which a waiting transfer may
	// preempt lower ones; if zero, DefaultHighPriority.
	HighPriority int
	// PriorityBoost is added to a preempted job's priority; if zero,
	// DefaultPriorityBoost.
	PriorityBoost int
	// MaxRecordingSize bounds one recording; if zero,
	// DefaultMaxRecordingSize.
	MaxRecordingSize int64
	// MaxSpoolBytes bounds the sealed chunks held in the state database
	// across open jobs (reserved when a job begins); if
	// zero, DefaultMaxSpoolBytes.
	MaxSpoolBytes int64
	// MaxReplayEntries bounds the replay cache; if zero,
	// DefaultMaxReplayEntries. When full, new requests are refused with
	// ErrBusy until entries expire.
	MaxReplayEntries int
	// JobTTL is how long an unfinished job is kept; if zero, DefaultJobTTL.
	JobTTL time.Duration
	// ResumeGrace is how long a slot stays reserved for a preempted job
	// whose turn comes before its client is back; if zero,
	// DefaultResumeGrace.
	ResumeGrace time.Duration
	// Logger receives structured logs; if nil, logs are discarded. No
	// secret is ever logged.
	Logger *slog.Logger
}

func (c *Config) fill() error {
	if c.StoreDir == "" {
		return errors.New("upload: Config.StoreDir is required")
	}
	if st, err := os.Stat(c.StoreDir); err != nil || !st.IsDir() {
		return fmt.Errorf("upload: store directory %s is not a directory", c.StoreDir)
	}
	if len(c.Credentials) == 0 {
		return errors.New("upload: Config.Credentials is empty")
	}
	for id, cred := range c.Credentials {
		if !validName(id) || len(cred.Secret) < MinCredentialSize || len(cred.Secret) > MaxCredentialSize {
			return fmt.Errorf("upload: invalid credential entry for %q", id)
		}
		if cred.Role.MaxUrgency() == 0 {
			return fmt.Errorf("upload: credential of %q has no valid role", id)
		}
		if cred.Expires.IsZero() {
			return fmt.Errorf("upload: credential of %q has no expiry", id)
		}
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = DefaultMaxClockSkew
	}
	if c.JobTTL == 0 {
		c.JobTTL = DefaultJobTTL
	}
	if c.ResumeGrace == 0 {
		c.ResumeGrace = DefaultResumeGrace
	}
	if c.MaxRecordingSize == 0 {
		c.MaxRecordingSize = DefaultMaxRecordingSize
	}
	if c.MaxSpoolBytes == 0 {
		c.MaxSpoolBytes = DefaultMaxSpoolBytes
	}
	def(&c.Threshold, DefaultThreshold)
	def(&c.PoolSize, DefaultPoolSize)
	def(&c.MinPool, min(DefaultMinPool, c.PoolSize))
	if c.IngestBudget == 0 {
		c.IngestBudget = DefaultIngestBudget
	}
	if c.MinPool > c.PoolSize || c.IngestBudget < 0 {
		return errors.New("upload: MinPool above PoolSize, or a negative IngestBudget")
	}
	def(&c.HighPriority, DefaultHighPriority)
	def(&c.PriorityBoost, DefaultPriorityBoost)
	def(&c.MaxReplayEntries, DefaultMaxReplayEntries)
	if c.Window < 0 || c.MaxClockSkew < 0 || c.Threshold < 0 || c.Threshold > 64<<20 || c.PoolSize < 0 ||
		c.PriorityBoost < 0 || c.MaxRecordingSize < 0 || c.MaxSpoolBytes < 0 || c.MaxReplayEntries < 0 || c.JobTTL < 0 || c.ResumeGrace < 0 {
		return errors.New("upload: negative or oversized Config value")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Server is the receiving side: it holds the epoch key pair, checks upload
// requests, schedules stream transfers and stores recordings. It is safe for
// concurrent use. Register it on a grpc.Server (see NewGRPCServer).
type Server struct {
	ecgpb.UnimplementedUploadServer

	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	sched   *scheduler
	st      *state
	creds   map[string]serverCred // read-only

	mu    sync.Mutex
	key   *keyPair                 // guarded by mu
	jobs  map[[JobIDSize]byte]*job // guarded by mu
	spool int64                    // sealed bytes reserved by open jobs; guarded by mu
}

// serverCred is what the server keeps of a credential.
type serverCred struct {
	digest  [sha256.Size]byte
	role    Role
	expires time.Time
}

var _ ecgpb.UploadServer = (*Server)(nil)

// job is one upload. Its data key lives in aead, and sealed under the
// state key in the state database; its sealed chunks are in the state
// database too.
type job struct {
	id      [JobIDSize]byte
	req     *Request // Credential cleared; Urgency as assigned
	aead    cipher.AEAD
	suite   Suite
	count   uint32
	reserve int64
	created time.Time
	urgency int      // assigned from the credential's role
	link    LinkType // as the client last reported it; guarded by scheduler.mu
	prio    int      // guarded by scheduler.mu
	rate    float64  // measured bytes per second, 0 until measured; guarded by scheduler.mu

	remaining atomic.Int64 // plaintext bytes not yet received

	mu      sync.Mutex
	have    []bool         // chunks received (and stored); guarded by mu
	busy    bool           // a Transfer is attached; guarded by mu
	receipt *ecgpb.Receipt // set when stored; guarded by mu
	failed  error          // guarded by mu
}

func (j *job) name() string { return j.req.Record + "/" + hex.EncodeToString(j.id[:4]) }

func (j *job) attrs() slog.Attr {
	return slog.Group("job", slog.String("id", hex.EncodeToString(j.id[:4])), slog.String("record", j.req.Record),
		slog.String("client", j.req.ClientID), slog.Uint64("size", j.req.TotalSize()))
}

// missing lists the chunk indexes not yet received. The caller holds j.mu.
func (j *job) missingLocked() []uint32 {
	var out []uint32
	for i, ok := range j.have {
		if !ok {
			out = append(out, uint32(i))
		}
	}
	return out
}

// New validates cfg, opens the state (resuming the jobs a previous server
// left unfinished), generates the key pair of the next epoch and returns a
// Server. Call Close when done.
func New(cfg Config) (*Server, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	st, err := openState(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger, metrics: &Metrics{}, st: st,
		creds: map[string]serverCred{},
		jobs:  map[[JobIDSize]byte]*job{},
	}
	for id, c := range cfg.Credentials {
		s.creds[id] = serverCred{digest: sha256.Sum256(c.Secret), role: c.Role, expires: c.Expires}
	}
	s.cfg.Credentials = nil
	s.sched = newScheduler(schedConfig{capacity: cfg.PoolSize, min: cfg.MinPool, budget: cfg.IngestBudget,
		high: cfg.HighPriority, boost: cfg.PriorityBoost, grace: cfg.ResumeGrace}, s.log, s.metrics)
	ctx := context.Background()
	epoch, err := st.nextEpoch(ctx)
	if err != nil {
		st.close()
		return nil, err
	}
	kp, err := generateKeyPair(epoch)
	if err != nil {
		st.close()
		return nil, err
	}
	s.key = kp
	s.log.Info("key pair generated", slog.Uint64("epoch", kp.epoch), slog.String("suite", kp.suite.String()))
	if err := s.restore(ctx); err != nil {
		st.close()
		return nil, err
	}
	return s, nil
}

// restore rebuilds the jobs recorded in the state database.
func (s *Server) restore(ctx context.Context) error {
	stored, err := s.st.loadJobs(ctx)
	if err != nil {
		return err
	}
	for _, sj := range stored {
		count := sj.req.ChunkCount()
		j := &job{id: sj.req.JobID, req: sj.req, aead: sj.aead, suite: sj.suite, count: count,
			reserve: int64(sj.req.TotalSize()) + int64(count)*Overhead, created: sj.created,
			urgency: sj.urgency, link: sj.link, prio: sj.urgency, have: make([]bool, count), receipt: sj.receipt}
		switch sj.state {
		case jobFailed:
			j.failed = fmt.Errorf("%w: %s", ErrDigest, sj.failure)
		case jobOpen:
			rem := int64(sj.req.TotalSize())
			for _, i := range sj.have {
				if i < count && !j.have[i] {
					j.have[i] = true
					rem -= int64(sj.req.chunkLen(i))
				}
			}
			j.remaining.Store(rem)
			s.spool += j.reserve
			s.log.Info("job restored from the state database", j.attrs(), slog.Int("missing", len(j.missingLocked())), slog.Uint64("chunks", uint64(count)))
		}
		s.jobs[j.id] = j
	}
	return nil
}

// Close closes the state database. Call it after the gRPC server stopped.
func (s *Server) Close() error { return s.st.close() }

// Metrics returns the server's metrics.
func (s *Server) Metrics() *Metrics { return s.metrics }

// Epoch returns the current key epoch.
func (s *Server) Epoch() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.key.epoch
}

// Suite returns the suite clients derive from the current public key.
func (s *Server) Suite() Suite {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.key.suite
}

// Rotate replaces the key pair with a fresh one under the next epoch. The
// old private key is dropped; handshakes under it fail with ErrStaleKey.
// Jobs already open keep their data keys.
func (s *Server) Rotate(reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rotateLocked(reason)
}

// rotateFrom rotates only if epoch is still current, so that concurrent
// rejections under one key cause a single rotation.
func (s *Server) rotateFrom(epoch uint64, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key.epoch != epoch {
		return nil
	}
	return s.rotateLocked(reason)
}

func (s *Server) rotateLocked(reason string) error {
	kp, err := generateKeyPair(s.key.epoch + 1)
	if err != nil {
		return err
	}
	s.key = kp
	s.metrics.KeyRotations.Add(1)
	s.log.Warn("key pair rotated", slog.String("reason", reason), slog.Uint64("epoch", kp.epoch), slog.String("suite", kp.suite.String()))
	return nil
}

// ServerOptions returns the gRPC options the service needs: message size
// limits derived from the threshold.
func (s *Server) ServerOptions() []grpc.ServerOption {
	limit := s.cfg.Threshold + MaxChunkSize/4 + 64<<10
	limit = max(limit, MaxChunkSize+64<<10)
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(limit),
		grpc.MaxSendMsgSize(1 << 20),
		grpc.ChainUnaryInterceptor(recoverUnary(s.log)),
		grpc.ChainStreamInterceptor(recoverStream(s.log)),
	}
}

// NewGRPCServer returns a grpc.Server over tlsCfg (which must demand TLS 1.3
// and client certificates, as devcert.ServerConfig does) with s and the
// health service registered.
func NewGRPCServer(s *Server, tlsCfg *tls.Config) (*grpc.Server, error) {
	if tlsCfg == nil || tlsCfg.MinVersion < tls.VersionTLS13 || tlsCfg.ClientAuth != tls.RequireAndVerifyClientCert {
		return nil, errors.New("upload: server TLS config must require TLS 1.3 and verified client certificates")
	}
	opts := append([]grpc.ServerOption{grpc.Creds(credentials.NewTLS(tlsCfg))}, s.ServerOptions()...)
	g := grpc.NewServer(opts...)
	ecgpb.RegisterUploadServer(g, s)
	h := health.NewServer()
	h.SetServingStatus(ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(g, h)
	return g, nil
}

func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic in handler", slog.String("method", info.FullMethod), slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return h(ctx, req)
	}
}

func recoverStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic in handler", slog.String("method", info.FullMethod), slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return h(srv, ss)
	}
}

// toStatus maps an error to a gRPC status in one place. Unknown errors
// become Internal with a generic message; the details go only to the log.
func (s *Server) toStatus(method string, err error) error {
	if err == nil {
		return nil
	}
	var code codes.Code
	switch {
	case errors.Is(err, ErrStaleKey):
		code = codes.FailedPrecondition
	case errors.Is(err, ErrRejected):
		code = codes.PermissionDenied
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrBadChunk), errors.Is(err, ErrDecrypt):
		code = codes.InvalidArgument
	case errors.Is(err, ErrDigest):
		code = codes.DataLoss
	case errors.Is(err, ErrUnknownJob):
		code = codes.NotFound
	case errors.Is(err, ErrPreempted):
		code = codes.Aborted
	case errors.Is(err, ErrBusy):
		code = codes.ResourceExhausted
	case errors.Is(err, ErrExists):
		code = codes.AlreadyExists
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	default:
		s.log.Error("request failed", slog.String("method", method), slog.String("err", err.Error()))
		return status.Error(codes.Internal, "internal error")
	}
	s.log.Info("request refused", slog.String("method", method), slog.String("code", code.String()), slog.String("err", err.Error()))
	return status.Error(code, err.Error())
}

// PublicKey returns the current public key.
func (s *Server) PublicKey(ctx context.Context, _ *ecgpb.PublicKeyRequest) (*ecgpb.PublicKeyResponse, error) {
	s.mu.Lock()
	kp := s.key
	s.mu.Unlock()
	resp := &ecgpb.PublicKeyResponse{Epoch: kp.epoch, PublicKey: append([]byte(nil), kp.pub...)}
	for _, su := range Suites() {
		resp.Aeads = append(resp.Aeads, uint32(su))
	}
	return resp, nil
}

// handshake opens the data key and the upload request of hs and checks the
// credential, the time and the nonce. On a failed check it rotates the key
// pair (seed document [0077]) and returns an error wrapping ErrRejected.
//
// It returns the data key too, for a stream job to keep sealed at rest; the
// caller clears it. The request's Urgency is the one the server assigns:
// the credential's role's, or less if the client asked for less.
func (s *Server) handshake(ctx context.Context, hs *ecgpb.Handshake, mode Mode) (req *Request, aead cipher.AEAD, su Suite, dataKey []byte, err error) {
	if hs == nil {
		return nil, nil, 0, nil, fmt.Errorf("%w: no handshake", ErrMalformed)
	}
	s.mu.Lock()
	kp := s.key
	s.mu.Unlock()
	if hs.GetEpoch() != kp.epoch {
		return nil, nil, 0, nil, fmt.Errorf("%w: epoch %d, current %d", ErrStaleKey, hs.GetEpoch(), kp.epoch)
	}
	aead, key, err := kp.openKey(hs.GetEnc(), hs.GetSealedKey())
	if err != nil {
		return nil, nil, 0, nil, s.reject(kp, "undecryptable key", ErrForged, err)
	}
	defer func() {
		if err != nil {
			clear(key)
		}
	}()
	req, aead, su, err = s.checkRequest(ctx, kp, aead, hs, mode)
	return req, aead, su, key, err
}

func (s *Server) checkRequest(ctx context.Context, kp *keyPair, aead cipher.AEAD, hs *ecgpb.Handshake, mode Mode) (*Request, cipher.AEAD, Suite, error) {
	req, err := openRequest(aead, kp.epoch, hs.GetEnc(), hs.GetSealedRequest())
	if errors.Is(err, ErrDecrypt) {
		return nil, nil, 0, s.reject(kp, "undecryptable request", ErrForged, err)
	}
	if err != nil {
		return nil, nil, 0, err
	}
	if req.Mode != mode {
		return nil, nil, 0, fmt.Errorf("%w: request for %s mode sent in %s call", ErrMalformed, req.Mode, mode)
	}
	// Compare credential digests in constant time; an unknown client is
	// compared against a dummy so both paths cost the same.
	got := sha256.Sum256(req.Credential)
	clear(req.Credential)
	req.Credential = nil
	cred, known := s.creds[req.ClientID]
	if !hmac.Equal(got[:], cred.digest[:]) || !known {
		return nil, nil, 0, s.reject(kp, "forged credential", ErrForged, fmt.Errorf("client %q", req.ClientID))
	}
	now := time.Now()
	if !now.Before(cred.expires) {
		return nil, nil, 0, s.reject(kp, "credential expired", ErrExpired,
			fmt.Errorf("client %q, credential expired %s", req.ClientID, cred.expires.UTC().Format(time.RFC3339)))
	}
	if req.Time.Before(now.Add(-s.cfg.Window)) || req.Time.After(now.Add(s.cfg.MaxClockSkew)) {
		return nil, nil, 0, s.reject(kp, "request outside validity window", ErrExpired,
			fmt.Errorf("client %q, request time %s", req.ClientID, req.Time.UTC().Format(time.RFC3339)))
	}
	seen, err := s.st.checkReplay(ctx, req.JobID, now, req.Time.Add(s.cfg.Window+s.cfg.MaxClockSkew), s.cfg.MaxReplayEntries)
	if err != nil {
		return nil, nil, 0, err
	}
	if seen {
		return nil, nil, 0, s.reject(kp, "replayed request", ErrReplay, fmt.Errorf("client %q", req.ClientID))
	}
	// The urgency is the role's; the client's word can only lower it.
	if top := cred.role.MaxUrgency(); req.Urgency > top {
		s.log.Info("urgency set by the credential's role", slog.String("client", req.ClientID), slog.String("role", cred.role.String()),
			slog.Int("asked", int(req.Urgency)), slog.Int("assigned", int(top)))
		req.Urgency = top
	}
	return req, aead, kp.suite, nil
}

// reject counts a failed check, rotates the key pair if kp is still current,
// and returns an error wrapping ErrRejected and reason.
func (s *Server) reject(kp *keyPair, what string, reason, detail error) error {
	switch reason {
	case ErrForged:
		s.metrics.RejectedForged.Add(1)
	case ErrExpired:
		s.metrics.RejectedExpired.Add(1)
	case ErrReplay:
		s.metrics.RejectedReplay.Add(1)
	}
	s.log.Warn("upload request rejected", slog.String("check", what), slog.String("detail", detail.Error()), slog.Uint64("epoch", kp.epoch))
	if err := s.rotateFrom(kp.epoch, what); err != nil {
		return fmt.Errorf("%w: %w (rotation failed: %v)", ErrRejected, reason, err)
	}
	return fmt.Errorf("%w: %w", ErrRejected, reason)
}

// Put receives a small recording in one call.
func (s *Server) Put(ctx context.Context, in *ecgpb.PutRequest) (*ecgpb.PutResponse, error) {
	r, err := s.put(ctx, in)
	return r, s.toStatus("Put", err)
}

func (s *Server) put(ctx context.Context, in *ecgpb.PutRequest) (*ecgpb.PutResponse, error) {
	req, aead, suite, key, err := s.handshake(ctx, in.GetHandshake(), ModeUnary)
	clear(key)
	if err != nil {
		return nil, err
	}
	total := req.TotalSize()
	if total+Overhead > uint64(s.cfg.Threshold) {
		return nil, fmt.Errorf("%w: %d bytes above the unary threshold %d", ErrMalformed, total+Overhead, s.cfg.Threshold)
	}
	sealed := in.GetSealedPayload()
	if uint64(len(sealed)) != total+Overhead {
		return nil, fmt.Errorf("%w: sealed payload of %d bytes, want %d", ErrMalformed, len(sealed), total+Overhead)
	}
	payload, err := openChunk(aead, make([]byte, 0, total), req.JobID, 0, 1, total, sealed)
	if err != nil {
		return nil, err
	}
	rc, err := s.finish(req, suite, payload)
	if err != nil {
		return nil, err
	}
	s.metrics.UploadsUnary.Add(1)
	return &ecgpb.PutResponse{Receipt: rc}, nil
}

// finish checks the digests of payload and stores it.
func (s *Server) finish(req *Request, suite Suite, payload []byte) (*ecgpb.Receipt, error) {
	sum := sha256.Sum256(payload)
	if subtle.ConstantTimeCompare(sum[:], req.Digest[:]) != 1 {
		return nil, fmt.Errorf("%w: recording %s", ErrDigest, req.Record)
	}
	off := uint64(0)
	for _, f := range req.Files {
		fs := sum // a single file's digest is the recording's
		if len(req.Files) > 1 {
			fs = sha256.Sum256(payload[off : off+f.Size])
		}
		if subtle.ConstantTimeCompare(fs[:], f.SHA256[:]) != 1 {
			return nil, fmt.Errorf("%w: file %s", ErrDigest, f.Name)
		}
		off += f.Size
	}
	name, err := storeRecording(s.cfg.StoreDir, req, suite, payload, time.Now())
	if errors.Is(err, ErrExists) {
		// A server that crashed after storing this job but before marking
		// it stored finds its own recording: the same job id and digest.
		if m, _, rerr := ReadStored(s.cfg.StoreDir, storedName(req)); rerr == nil &&
			m.JobID == hex.EncodeToString(req.JobID[:]) && m.SHA256 == hex.EncodeToString(sum[:]) {
			s.log.Info("recording was already stored before a restart", slog.String("record", req.Record))
			return &ecgpb.Receipt{JobId: req.JobID[:], StoredAs: storedName(req), Digest: sum[:], Size: uint64(len(payload))}, nil
		}
	}
	if err != nil {
		return nil, err
	}
	s.metrics.BytesStored.Add(int64(len(payload)))
	s.log.Info("recording stored", slog.String("record", req.Record), slog.String("client", req.ClientID),
		slog.String("mode", req.Mode.String()), slog.String("suite", suite.String()), slog.Int("bytes", len(payload)), slog.String("as", name))
	return &ecgpb.Receipt{JobId: req.JobID[:], StoredAs: name, Digest: sum[:], Size: uint64(len(payload))}, nil
}

// Begin opens a stream job.
func (s *Server) Begin(ctx context.Context, in *ecgpb.BeginRequest) (*ecgpb.BeginResponse, error) {
	r, err := s.begin(ctx, in)
	return r, s.toStatus("Begin", err)
}

func (s *Server) begin(ctx context.Context, in *ecgpb.BeginRequest) (*ecgpb.BeginResponse, error) {
	req, aead, suite, key, err := s.handshake(ctx, in.GetHandshake(), ModeStream)
	defer clear(key)
	if err != nil {
		return nil, err
	}
	total := req.TotalSize()
	if total > uint64(s.cfg.MaxRecordingSize) {
		return nil, fmt.Errorf("%w: recording of %d bytes above %d", ErrMalformed, total, s.cfg.MaxRecordingSize)
	}
	count := req.ChunkCount()
	reserve := int64(total) + int64(count)*Overhead
	now := time.Now()
	var expired [][JobIDSize]byte
	s.mu.Lock()
	for id, old := range s.jobs {
		if now.Sub(old.created) > s.cfg.JobTTL && old.mu.TryLock() {
			if !old.busy {
				delete(s.jobs, id)
				if old.receipt == nil && old.failed == nil {
					s.spool -= old.reserve
				}
				old.have = nil
				expired = append(expired, id)
			}
			old.mu.Unlock()
		}
	}
	if s.spool+reserve > s.cfg.MaxSpoolBytes {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: spool full", ErrBusy)
	}
	s.spool += reserve
	j := &job{id: req.JobID, req: req, aead: aead, suite: suite, count: count, reserve: reserve,
		created: now, urgency: int(req.Urgency), prio: int(req.Urgency), have: make([]bool, count)}
	j.remaining.Store(int64(total))
	s.jobs[j.id] = j
	s.mu.Unlock()
	for _, id := range expired {
		if err := s.st.dropJob(ctx, id); err != nil {
			s.log.Warn("dropping an expired job", slog.String("err", err.Error()))
		}
	}
	if err := s.st.addJob(ctx, j, key); err != nil {
		s.mu.Lock()
		delete(s.jobs, j.id)
		s.spool -= reserve
		s.mu.Unlock()
		return nil, err
	}
	s.log.Info("job opened", j.attrs(), slog.Int("urgency", int(req.Urgency)), slog.Uint64("chunks", uint64(count)), slog.String("suite", suite.String()))
	return &ecgpb.BeginResponse{JobId: j.id[:], ChunkCount: count}, nil
}

func (s *Server) lookup(id []byte) (*job, error) {
	if len(id) != JobIDSize {
		return nil, fmt.Errorf("%w: job id of %d bytes", ErrMalformed, len(id))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[[JobIDSize]byte(id)]
	if !ok {
		return nil, ErrUnknownJob
	}
	return j, nil
}

// Status reports a job's state and missing chunks.
func (s *Server) Status(ctx context.Context, in *ecgpb.StatusRequest) (*ecgpb.StatusResponse, error) {
	j, err := s.lookup(in.GetJobId())
	if err != nil {
		return nil, s.toStatus("Status", err)
	}
	active, queued, prio := s.sched.state(j)
	j.mu.Lock()
	defer j.mu.Unlock()
	resp := &ecgpb.StatusResponse{Priority: int32(prio), Receipt: j.receipt}
	switch {
	case j.receipt != nil:
		resp.State = ecgpb.JobState_JOB_STATE_COMPLETE
	case j.failed != nil:
		resp.State = ecgpb.JobState_JOB_STATE_FAILED
	case active:
		resp.State = ecgpb.JobState_JOB_STATE_ACTIVE
	case queued:
		resp.State = ecgpb.JobState_JOB_STATE_QUEUED
	default:
		resp.State = ecgpb.JobState_JOB_STATE_IDLE
	}
	if j.receipt == nil && j.failed == nil {
		resp.Missing = j.missingLocked()
	}
	return resp, nil
}

// Transfer receives the chunks of a job while the job holds a pool slot.
func (s *Server) Transfer(stream ecgpb.Upload_TransferServer) error {
	return s.toStatus("Transfer", s.transfer(stream))
}

func (s *Server) transfer(stream ecgpb.Upload_TransferServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	j, err := s.lookup(first.GetJobId())
	if err != nil {
		return err
	}
	if lr := first.GetLink(); lr != nil {
		if LinkType(lr.GetType()) > LinkPoor {
			return fmt.Errorf("%w: link type %d", ErrMalformed, lr.GetType())
		}
		s.sched.report(j, LinkType(lr.GetType()))
	}
	j.mu.Lock()
	switch {
	case j.receipt != nil:
		rc := j.receipt
		j.mu.Unlock()
		return stream.Send(&ecgpb.TransferReply{Msg: &ecgpb.TransferReply_Done{Done: &ecgpb.Done{Complete: true, Receipt: rc}}})
	case j.failed != nil:
		err := j.failed
		j.mu.Unlock()
		return err
	case j.busy:
		j.mu.Unlock()
		return fmt.Errorf("%w: job %s already has a transfer", ErrBusy, j.name())
	}
	j.busy = true
	j.mu.Unlock()
	defer func() {
		j.mu.Lock()
		j.busy = false
		j.mu.Unlock()
	}()

	l, err := s.sched.acquire(ctx, j)
	if err != nil {
		return err
	}
	defer s.sched.release(l)

	j.mu.Lock()
	missing := j.missingLocked()
	j.mu.Unlock()
	if err := stream.Send(&ecgpb.TransferReply{Msg: &ecgpb.TransferReply_Grant{Grant: &ecgpb.Grant{Missing: missing}}}); err != nil {
		return err
	}

	type recvd struct {
		m   *ecgpb.TransferMsg
		err error
	}
	msgs := make(chan recvd)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			m, err := stream.Recv()
			select {
			case msgs <- recvd{m, err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	scratch := make([]byte, 0, j.req.ChunkSize)
	last := time.Now()
	for {
		select {
		case <-l.preempted:
			s.log.Info("transfer stopped for preemption", j.attrs())
			return fmt.Errorf("%w: job %s", ErrPreempted, j.name())
		case <-ctx.Done():
			return ctx.Err()
		case r := <-msgs:
			if r.err == io.EOF {
				return s.complete(stream, j)
			}
			if r.err != nil {
				s.log.Info("transfer broken", j.attrs(), slog.String("err", r.err.Error()))
				return r.err
			}
			c := r.m.GetChunk()
			if c == nil {
				return fmt.Errorf("%w: expected a chunk", ErrMalformed)
			}
			if err := s.receiveChunk(ctx, j, c, scratch); err != nil {
				s.metrics.ChunksRefused.Add(1)
				return err
			}
			now := time.Now()
			s.sched.observe(j, len(c.GetSealed()), now.Sub(last), now)
			last = now
		}
	}
}

// receiveChunk checks a chunk's index, size and tag and keeps it sealed.
func (s *Server) receiveChunk(ctx context.Context, j *job, c *ecgpb.Chunk, scratch []byte) error {
	idx := c.GetIndex()
	if idx >= j.count {
		return fmt.Errorf("%w: index %d of %d", ErrBadChunk, idx, j.count)
	}
	if want := j.req.chunkLen(idx) + Overhead; len(c.GetSealed()) != want {
		return fmt.Errorf("%w: chunk %d of %d bytes, want %d", ErrBadChunk, idx, len(c.GetSealed()), want)
	}
	j.mu.Lock()
	dup := j.have[idx]
	j.mu.Unlock()
	if dup {
		return fmt.Errorf("%w: duplicate chunk %d", ErrBadChunk, idx)
	}
	// Authenticate now so a bad chunk is refused at once; the plaintext is
	// discarded and only the ciphertext is kept until every chunk is in.
	pt, err := openChunk(j.aead, scratch[:0], j.id, idx, j.count, j.req.TotalSize(), c.GetSealed())
	clear(pt)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadChunk, err)
	}
	// Durable before acknowledged: the chunk is in the state database
	// before the next one is read, so a crash loses no accepted chunk.
	added, err := s.st.addChunk(ctx, j.id, idx, c.GetSealed())
	if err != nil {
		return err
	}
	if !added {
		return fmt.Errorf("%w: duplicate chunk %d", ErrBadChunk, idx)
	}
	j.mu.Lock()
	j.have[idx] = true
	j.mu.Unlock()
	j.remaining.Add(-int64(j.req.chunkLen(idx)))
	s.metrics.ChunksReceived.Add(1)
	return nil
}

// complete runs when the client half-closes: if every chunk is in, it
// merges, decrypts, verifies and stores the recording.
func (s *Server) complete(stream ecgpb.Upload_TransferServer, j *job) error {
	j.mu.Lock()
	missing := j.missingLocked()
	j.mu.Unlock()
	if len(missing) > 0 {
		s.log.Info("transfer ended incomplete", j.attrs(), slog.Int("missing", len(missing)))
		return stream.Send(&ecgpb.TransferReply{Msg: &ecgpb.TransferReply_Done{Done: &ecgpb.Done{Missing: missing}}})
	}
	total := j.req.TotalSize()
	payload := make([]byte, 0, total)
	next := uint32(0)
	err := s.st.chunks(stream.Context(), j.id, func(idx uint32, sealed []byte) error {
		if idx != next {
			return fmt.Errorf("%w: stored chunk %d, expected %d", ErrBadChunk, idx, next)
		}
		next++
		var err error
		payload, err = openChunk(j.aead, payload, j.id, idx, j.count, total, sealed)
		return err
	})
	if err == nil && next != j.count {
		err = fmt.Errorf("%w: %d of %d chunks stored", ErrBadChunk, next, j.count)
	}
	if err != nil {
		clear(payload)
		if errors.Is(err, ErrDecrypt) || errors.Is(err, ErrBadChunk) {
			return s.fail(j, err)
		}
		return err
	}
	rc, err := s.finish(j.req, j.suite, payload)
	clear(payload)
	if err != nil {
		if errors.Is(err, ErrDigest) {
			return s.fail(j, err)
		}
		return err
	}
	if err := s.st.finishJob(stream.Context(), j.id, rc, nil); err != nil {
		s.log.Error("recording stored but the job not marked stored", j.attrs(), slog.String("err", err.Error()))
	}
	j.mu.Lock()
	j.receipt = rc
	j.have = nil
	j.aead = nil
	j.mu.Unlock()
	s.mu.Lock()
	s.spool -= j.reserve
	s.mu.Unlock()
	s.metrics.UploadsStream.Add(1)
	return stream.Send(&ecgpb.TransferReply{Msg: &ecgpb.TransferReply_Done{Done: &ecgpb.Done{Complete: true, Receipt: rc}}})
}

func (s *Server) fail(j *job, err error) error {
	if serr := s.st.finishJob(context.Background(), j.id, nil, err); serr != nil {
		s.log.Error("job failed and not marked failed", j.attrs(), slog.String("err", serr.Error()))
	}
	j.mu.Lock()
	j.failed = err
	j.have = nil
	j.aead = nil
	j.mu.Unlock()
	s.mu.Lock()
	s.spool -= j.reserve
	s.mu.Unlock()
	s.log.Warn("job failed", j.attrs(), slog.String("err", err.Error()))
	return err
}
