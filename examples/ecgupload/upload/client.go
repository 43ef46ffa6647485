package upload

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/mpsi-dev/mpsi/examples/ecgupload/ecgpb"
)

// Client defaults.
const (
	DefaultMaxAttempts = 8
	DefaultCallTimeout = 30 * time.Second
)

// ClientConfig configures a Client. Zero values take the documented
// defaults.
type ClientConfig struct {
	// ClientID and Credential identify the client to the server (required).
	// The credential is secret: it only travels sealed under a data key.
	ClientID   string
	Credential []byte
	// Threshold is the largest sealed recording sent in one unary call; if
	// zero, DefaultThreshold. It must not exceed the server's.
	Threshold int
	// ChunkSize is the plaintext size of a stream chunk. If zero, it is
	// picked for each upload from the link (ChunkSizeFor): from the
	// throughput measured over this client's earlier transfers, or, before
	// any, from Link's expected rate.
	ChunkSize int
	// Link is the network the client is on; it is reported to the server
	// with every transfer, for the scheduler's time estimate.
	Link LinkType
	// ChunkInterval is a pause after each chunk, to limit the bandwidth a
	// transfer takes; zero means no pause.
	ChunkInterval time.Duration
	// MaxAttempts bounds the transfer attempts of a job that fail (broken
	// connection, busy server); preemptions do not count. If zero,
	// DefaultMaxAttempts.
	MaxAttempts int
	// CallTimeout is the deadline of each unary call; if zero,
	// DefaultCallTimeout.
	CallTimeout time.Duration
	// Now is the client's clock; if nil, time.Now.
	Now func() time.Time
	// Logger receives structured logs; if nil, logs are discarded.
	Logger *slog.Logger
}

// waitForReady makes calls wait for a (re)connection instead of failing at
// once while the connection is down; every call still has a deadline or a
// caller's context.
func waitForReady() grpc.CallOption { return grpc.WaitForReady(true) }

// Client uploads recordings. It is safe for concurrent use.
type Client struct {
	cfg ClientConfig
	rpc ecgpb.UploadClient
	log *slog.Logger

	mu   sync.Mutex
	rate float64 // measured upload throughput, bytes/s; guarded by mu

	readNonce func([]byte) (int, error) // crypto/rand.Read; tests may fix job ids
}

// chunkSize is the chunk size for the next upload.
func (c *Client) chunkSize() int {
	if c.cfg.ChunkSize != 0 {
		return c.cfg.ChunkSize
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return ChunkSizeFor(c.cfg.Link, c.rate)
}

// Rate returns the upload throughput measured so far (bytes per second;
// 0 before any stream transfer).
func (c *Client) Rate() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rate
}

func (c *Client) observe(n int, d time.Duration) {
	if n == 0 || d <= 0 {
		return
	}
	c.mu.Lock()
	c.rate = ewma(c.rate, float64(n)/d.Seconds())
	c.mu.Unlock()
}

// Receipt confirms a stored recording.
type Receipt struct {
	JobID    [JobIDSize]byte
	StoredAs string
	Digest   [DigestSize]byte
	Size     uint64
	Mode     Mode
	Suite    Suite
}

// NewClient returns a client calling the server over conn.
func NewClient(conn grpc.ClientConnInterface, cfg ClientConfig) (*Client, error) {
	if !validName(cfg.ClientID) {
		return nil, errors.New("upload: ClientConfig.ClientID is invalid")
	}
	if len(cfg.Credential) < MinCredentialSize || len(cfg.Credential) > MaxCredentialSize {
		return nil, errors.New("upload: ClientConfig.Credential has an invalid size")
	}
	if cfg.Threshold == 0 {
		cfg.Threshold = DefaultThreshold
	}
	if cfg.Link > LinkPoor {
		return nil, fmt.Errorf("upload: unknown link type %d", cfg.Link)
	}
	if cfg.ChunkSize != 0 && (cfg.ChunkSize < MinChunkSize || cfg.ChunkSize > MaxChunkSize) {
		return nil, fmt.Errorf("upload: chunk size must be between %d and %d", MinChunkSize, MaxChunkSize)
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Credential = append([]byte(nil), cfg.Credential...)
	return &Client{cfg: cfg, rpc: ecgpb.NewUploadClient(conn), log: cfg.Logger}, nil
}

// Dial connects to a server at addr over tlsCfg (TLS 1.3 with a client
// certificate, as devcert.ClientConfig makes) with message size limits and
// a short reconnection backoff.
func Dial(addr string, tlsCfg *tls.Config) (*grpc.ClientConn, error) {
	if tlsCfg == nil || tlsCfg.MinVersion < tls.VersionTLS13 || len(tlsCfg.Certificates) == 0 {
		return nil, errors.New("upload: client TLS config must require TLS 1.3 and carry a client certificate")
	}
	bc := backoff.DefaultConfig
	bc.BaseDelay, bc.MaxDelay = 50*time.Millisecond, time.Second
	return grpc.NewClient(addr,
		grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg)),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bc, MinConnectTimeout: 20 * time.Second}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<20), grpc.MaxCallSendMsgSize(64<<20)),
	)
}

// fromStatus maps a gRPC status back to the package's sentinels.
func fromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	var sentinel error
	switch st.Code() {
	case codes.FailedPrecondition:
		sentinel = ErrStaleKey
	case codes.PermissionDenied:
		for _, why := range []error{ErrForged, ErrExpired, ErrReplay} {
			if strings.Contains(st.Message(), why.Error()) {
				return fmt.Errorf("%w: %w (server: %s)", ErrRejected, why, st.Message())
			}
		}
		sentinel = ErrRejected
	case codes.InvalidArgument:
		sentinel = ErrMalformed
		if strings.HasPrefix(st.Message(), ErrBadChunk.Error()) {
			sentinel = ErrBadChunk
		}
	case codes.DataLoss:
		sentinel = ErrDigest
	case codes.NotFound:
		sentinel = ErrUnknownJob
	case codes.Aborted:
		sentinel = ErrPreempted
	case codes.ResourceExhausted:
		sentinel = ErrBusy
	case codes.AlreadyExists:
		sentinel = ErrExists
	case codes.Internal:
		sentinel = ErrInternal
	default:
		return err
	}
	return fmt.Errorf("%w (server: %s)", sentinel, st.Message())
}

// Upload sends rec with the given urgency (0 to MaxUrgency): in one unary
// call if the sealed recording is at most the threshold, otherwise as a
// stream job that is resumed after broken connections and preemptions.
func (c *Client) Upload(ctx context.Context, rec *Recording, urgency uint8) (*Receipt, error) {
	if rec.Size()+Overhead <= c.cfg.Threshold {
		return c.Put(ctx, rec, urgency)
	}
	j, err := c.Begin(ctx, rec, urgency)
	if err != nil {
		return nil, err
	}
	return j.Run(ctx)
}

type handshake struct {
	hs    *ecgpb.Handshake
	req   *Request
	aead  cipher.AEAD
	suite Suite
}

// newHandshake fetches the server's public key and seals a fresh data key
// and the upload request.
func (c *Client) newHandshake(ctx context.Context, rec *Recording, infos []FileInfo, digest [DigestSize]byte, mode Mode, urgency uint8) (*handshake, error) {
	cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	pk, err := c.rpc.PublicKey(cctx, &ecgpb.PublicKeyRequest{}, waitForReady())
	if err != nil {
		return nil, fmt.Errorf("upload: fetching public key: %w", fromStatus(err))
	}
	enc, sealedKey, aead, suite, err := encapsulateKey(pk.GetEpoch(), pk.GetPublicKey())
	if err != nil {
		return nil, err
	}
	req := &Request{
		ClientID: c.cfg.ClientID, Credential: c.cfg.Credential, Time: c.cfg.Now(),
		Mode: mode, Urgency: urgency, Record: rec.Name, Files: infos, Digest: digest,
	}
	if mode == ModeStream {
		req.ChunkSize = uint32(c.chunkSize())
	}
	readNonce := c.readNonce
	if readNonce == nil {
		readNonce = rand.Read
	}
	if _, err := readNonce(req.JobID[:]); err != nil {
		return nil, err
	}
	sealedReq, err := sealRequest(aead, pk.GetEpoch(), enc, req)
	if err != nil {
		return nil, err
	}
	req.Credential = nil
	return &handshake{
		hs:  &ecgpb.Handshake{Epoch: pk.GetEpoch(), Enc: enc, SealedKey: sealedKey, SealedRequest: sealedReq},
		req: req, aead: aead, suite: suite,
	}, nil
}

// withFreshKey runs call with a new handshake, starting again with the new
// key when the server reports a stale epoch (it rotated in between).
func (c *Client) withFreshKey(ctx context.Context, rec *Recording, payloadInfos []FileInfo, digest [DigestSize]byte, mode Mode, urgency uint8, call func(*handshake) error) (*handshake, error) {
	var err error
	for range 3 {
		var h *handshake
		h, err = c.newHandshake(ctx, rec, payloadInfos, digest, mode, urgency)
		if err != nil {
			return nil, err
		}
		err = call(h)
		if errors.Is(err, ErrStaleKey) {
			c.log.Info("server key rotated; fetching the new key", slog.String("record", rec.Name))
			continue
		}
		if err != nil {
			return nil, err
		}
		return h, nil
	}
	return nil, err
}

// Put sends rec in one unary call, whatever its size (the server refuses it
// above its threshold).
func (c *Client) Put(ctx context.Context, rec *Recording, urgency uint8) (*Receipt, error) {
	payload, infos, digest := rec.payload()
	var rc *ecgpb.Receipt
	h, err := c.withFreshKey(ctx, rec, infos, digest, ModeUnary, urgency, func(h *handshake) error {
		total := uint64(len(payload))
		sealed := sealChunk(h.aead, nil, h.req.JobID, 0, 1, total, payload)
		cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
		defer cancel()
		resp, err := c.rpc.Put(cctx, &ecgpb.PutRequest{Handshake: h.hs, SealedPayload: sealed}, waitForReady())
		if err != nil {
			return fromStatus(err)
		}
		rc = resp.GetReceipt()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("upload: put %s: %w", rec.Name, err)
	}
	c.log.Info("uploaded", slog.String("record", rec.Name), slog.String("mode", "unary"), slog.String("suite", h.suite.String()), slog.Int("bytes", len(payload)))
	return receipt(rc, ModeUnary, h.suite)
}

func receipt(rc *ecgpb.Receipt, mode Mode, s Suite) (*Receipt, error) {
	if rc == nil || len(rc.GetJobId()) != JobIDSize || len(rc.GetDigest()) != DigestSize {
		return nil, fmt.Errorf("%w: receipt", ErrMalformed)
	}
	return &Receipt{JobID: [JobIDSize]byte(rc.GetJobId()), StoredAs: rc.GetStoredAs(), Digest: [DigestSize]byte(rc.GetDigest()),
		Size: rc.GetSize(), Mode: mode, Suite: s}, nil
}

// Job is an open stream upload. It is not safe for concurrent use.
type Job struct {
	c       *Client
	rec     *Recording
	payload []byte
	h       *handshake
	count   uint32

	// Sent counts the chunks sent over all attempts.
	Sent int
	// Attempts counts the transfer attempts.
	Attempts int
	// Preemptions counts the attempts the server preempted.
	Preemptions int
}

// Begin opens a stream job for rec on the server.
func (c *Client) Begin(ctx context.Context, rec *Recording, urgency uint8) (*Job, error) {
	payload, infos, digest := rec.payload()
	var count uint32
	h, err := c.withFreshKey(ctx, rec, infos, digest, ModeStream, urgency, func(h *handshake) error {
		cctx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
		defer cancel()
		resp, err := c.rpc.Begin(cctx, &ecgpb.BeginRequest{Handshake: h.hs}, waitForReady())
		if err != nil {
			return fromStatus(err)
		}
		id := resp.GetJobId()
		if resp.GetChunkCount() != h.req.ChunkCount() || len(id) != JobIDSize || [JobIDSize]byte(id) != h.req.JobID {
			return fmt.Errorf("%w: begin response does not match the request", ErrMalformed)
		}
		count = resp.GetChunkCount()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("upload: begin %s: %w", rec.Name, err)
	}
	return &Job{c: c, rec: rec, payload: payload, h: h, count: count}, nil
}

// ID returns the job id.
func (j *Job) ID() [JobIDSize]byte { return j.h.req.JobID }

// Chunks returns the number of chunks.
func (j *Job) Chunks() int { return int(j.count) }

// Suite returns the data-key suite.
func (j *Job) Suite() Suite { return j.h.suite }

// JobStatus is what the server reports about a job.
type JobStatus struct {
	State    ecgpb.JobState
	Missing  []uint32
	Priority int
}

// Status asks the server for the job's state and the chunks it lacks.
func (j *Job) Status(ctx context.Context) (*JobStatus, error) {
	cctx, cancel := context.WithTimeout(ctx, j.c.cfg.CallTimeout)
	defer cancel()
	id := j.ID()
	resp, err := j.c.rpc.Status(cctx, &ecgpb.StatusRequest{JobId: id[:]}, waitForReady())
	if err != nil {
		return nil, fromStatus(err)
	}
	return &JobStatus{State: resp.GetState(), Missing: resp.GetMissing(), Priority: int(resp.GetPriority())}, nil
}

// sealedChunk returns the sealed chunk i.
func (j *Job) sealedChunk(i uint32) []byte {
	cs := uint64(j.h.req.ChunkSize)
	start := uint64(i) * cs
	end := min(start+cs, uint64(len(j.payload)))
	return sealChunk(j.h.aead, nil, j.h.req.JobID, i, j.count, uint64(len(j.payload)), j.payload[start:end])
}

// Run transfers the job until the server stores it: after a broken
// connection or a busy server it waits, asks which chunks are missing and
// sends only those; after a preemption it rejoins the queue at once.
func (j *Job) Run(ctx context.Context) (*Receipt, error) {
	failures := 0
	delay := 50 * time.Millisecond
	for {
		rc, err := j.Transfer(ctx)
		if err == nil {
			j.c.log.Info("uploaded", slog.String("record", j.rec.Name), slog.String("mode", "stream"), slog.String("suite", j.h.suite.String()),
				slog.Int("bytes", len(j.payload)), slog.Int("chunks", int(j.count)), slog.Int("sent", j.Sent), slog.Int("attempts", j.Attempts))
			return receipt(rc, ModeStream, j.h.suite)
		}
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, ErrPreempted):
			j.Preemptions++
			j.c.log.Info("transfer preempted; re-queueing", slog.String("record", j.rec.Name))
			continue
		case errors.Is(err, ErrIncomplete):
			// The server lacks chunks (it refused none); resend them.
		case retryable(err):
		default:
			return nil, fmt.Errorf("upload: %s: %w", j.rec.Name, err)
		}
		failures++
		if failures >= j.c.cfg.MaxAttempts {
			return nil, fmt.Errorf("upload: %s: giving up after %d attempts: %w", j.rec.Name, failures, err)
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		delay = min(2*delay, 2*time.Second)
		if st, serr := j.Status(ctx); serr == nil {
			j.c.log.Info("resuming transfer", slog.String("record", j.rec.Name), slog.String("after", err.Error()),
				slog.Int("missing", len(st.Missing)), slog.Int("chunks", int(j.count)))
		}
	}
}

func retryable(err error) bool {
	if errors.Is(err, ErrBusy) {
		return true
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.Unavailable, codes.Canceled, codes.DeadlineExceeded, codes.Unknown:
			return true
		}
	}
	return errors.Is(err, io.ErrUnexpectedEOF)
}

// Transfer makes one transfer attempt: it opens a stream, waits for a slot,
// sends the chunks the server lacks and reports the outcome. It returns the
// receipt when the recording is stored, an error wrapping ErrIncomplete when
// chunks are still missing, ErrPreempted when the server preempted it.
func (j *Job) Transfer(ctx context.Context) (*ecgpb.Receipt, error) {
	j.Attempts++
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := j.c.rpc.Transfer(sctx, waitForReady())
	if err != nil {
		return nil, fromStatus(err)
	}
	id := j.ID()
	if err := stream.Send(&ecgpb.TransferMsg{Msg: &ecgpb.TransferMsg_JobId{JobId: id[:]}, Link: &ecgpb.LinkReport{Type: uint32(j.c.cfg.Link)}}); err != nil {
		return nil, streamErr(stream, err)
	}
	first, err := stream.Recv()
	if err != nil {
		return nil, fromStatus(err)
	}
	if d := first.GetDone(); d != nil && d.GetComplete() {
		return d.GetReceipt(), nil
	}
	grant := first.GetGrant()
	if grant == nil {
		return nil, fmt.Errorf("%w: expected a grant", ErrMalformed)
	}
	start, sent := time.Now(), 0
	defer func() { j.c.observe(sent, time.Since(start)) }()
	for _, idx := range grant.GetMissing() {
		if idx >= j.count {
			return nil, fmt.Errorf("%w: grant names chunk %d of %d", ErrMalformed, idx, j.count)
		}
		sealed := j.sealedChunk(idx)
		if err := j.sendChunk(stream, idx, sealed); err != nil {
			return nil, err
		}
		sent += len(sealed)
		if j.c.cfg.ChunkInterval > 0 {
			select {
			case <-time.After(j.c.cfg.ChunkInterval):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	return j.finishTransfer(stream)
}

func (j *Job) sendChunk(stream ecgpb.Upload_TransferClient, idx uint32, sealed []byte) error {
	if err := stream.Send(&ecgpb.TransferMsg{Msg: &ecgpb.TransferMsg_Chunk{Chunk: &ecgpb.Chunk{Index: idx, Sealed: sealed}}}); err != nil {
		return streamErr(stream, err)
	}
	j.Sent++
	return nil
}

func (j *Job) finishTransfer(stream ecgpb.Upload_TransferClient) (*ecgpb.Receipt, error) {
	if err := stream.CloseSend(); err != nil {
		return nil, streamErr(stream, err)
	}
	last, err := stream.Recv()
	if err != nil {
		return nil, fromStatus(err)
	}
	d := last.GetDone()
	if d == nil {
		return nil, fmt.Errorf("%w: expected done", ErrMalformed)
	}
	if !d.GetComplete() {
		return nil, fmt.Errorf("%w: %d of %d chunks", ErrIncomplete, len(d.GetMissing()), j.count)
	}
	return d.GetReceipt(), nil
}

// streamErr turns a Send error into the stream's status: grpc reports a
// terminated stream as io.EOF on Send and the real status on Recv.
func streamErr(stream ecgpb.Upload_TransferClient, err error) error {
	if err == io.EOF {
		for {
			if _, rerr := stream.Recv(); rerr != nil {
				return fromStatus(rerr)
			}
		}
	}
	return fromStatus(err)
}

// String summarises the receipt for logs and output.
func (r *Receipt) String() string {
	return fmt.Sprintf("%s (%d bytes, %s, %s, sha256 %s…)", r.StoredAs, r.Size, r.Mode, r.Suite, hex.EncodeToString(r.Digest[:6]))
}
