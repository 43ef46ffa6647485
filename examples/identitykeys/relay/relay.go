// Package relay is a hospital relay (the seed's 医院中转服务器): it reads
// its hospital's database while its link is on the hospital side, derives
// each patient's key with the hospital's OPRF and seals their bundle, and
// while the link is on the cloud side uploads the ciphertexts and answers
// terminals' blinded OPRF queries, rate-limited per terminal.
//
// What the relay learns: its own database (it is the hospital's), and of a
// terminal's query only that the terminal (named by its mTLS certificate)
// asked, when, and how many identities; not which identity. What it sends the
// cloud: hospital name, indexes and ciphertexts.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mpsi-dev/mpsi/examples/identitykeys/identitypb"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/internal/authn"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/link"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/recordkey"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/records"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Defaults for [Config].
const (
	DefaultRateBurst = 3
	DefaultRateEvery = 10 * time.Second
	// UploadBatch is the most entries per Put call.
	UploadBatch = 256
	// UploadBatchBytes bounds the ciphertext bytes per Put call, well under
	// gRPC's default 4 MiB message limit.
	UploadBatchBytes = 2 << 20
	// PutTimeout bounds each Put call.
	PutTimeout = 30 * time.Second
)

// ErrRateLimited reports a terminal over its query budget. The terminal
// should wait and retry.
var ErrRateLimited = errors.New("relay: too many queries from this terminal")

// Config configures a [Relay].
type Config struct {
	Evaluator *recordkey.Evaluator // required: the hospital's OPRF key
	Link      *link.Switch         // required: the relay's switch
	DB        *records.Store       // required: the hospital database (LAN side)
	// DialCloud opens the uplink to the cloud; it is called only while the
	// link is on the cloud side, and the connection is closed before the
	// switch can move. Required for Upload.
	DialCloud func(ctx context.Context) (identitypb.CloudClient, func() error, error)
	RateBurst int              // if zero, DefaultRateBurst
	RateEvery time.Duration    // if zero, DefaultRateEvery
	Now       func() time.Time // if nil, time.Now (for the rate limiter)
	Logger    *slog.Logger     // if nil, logs are discarded
}

// SyncReport says what a [Relay.Sync] did. It holds counts only.
type SyncReport struct {
	Patients   int // rows read
	Bundles    int // bundles sealed (one per distinct identity)
	Merged     int // rows whose identity repeated another row's and were merged into it
	Unenrolled int // rows of patients without an enrolment credential: not sealed, not uploaded
	Conditions int // condition rows sealed
	Bytes      int // total ciphertext bytes
}

// Relay is one hospital's relay. It is safe for concurrent use.
type Relay struct {
	identitypb.UnimplementedRelayServer
	cfg     Config
	limiter *Limiter
	log     *slog.Logger

	mu      sync.Mutex          // guards pending
	pending []*identitypb.Entry // sealed, not yet uploaded
}

var _ identitypb.RelayServer = (*Relay)(nil)

// New checks cfg and returns a relay.
func New(cfg Config) (*Relay, error) {
	if cfg.Evaluator == nil || cfg.Link == nil || cfg.DB == nil {
		return nil, errors.New("relay: Evaluator, Link and DB are required")
	}
	if cfg.DB.Hospital != cfg.Evaluator.Hospital() {
		return nil, fmt.Errorf("relay: database of %q behind the relay of %q", cfg.DB.Hospital, cfg.Evaluator.Hospital())
	}
	if cfg.RateBurst == 0 {
		cfg.RateBurst = DefaultRateBurst
	}
	if cfg.RateEvery == 0 {
		cfg.RateEvery = DefaultRateEvery
	}
	if cfg.RateBurst < 0 || cfg.RateEvery < 0 {
		return nil, errors.New("relay: negative rate limit")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Relay{cfg: cfg, limiter: NewLimiter(cfg.RateBurst, cfg.RateEvery, cfg.Now), log: log}, nil
}

// Hospital returns the relay's hospital name.
func (r *Relay) Hospital() string { return r.cfg.Evaluator.Hospital() }

// Register registers the relay's gRPC service on s.
func (r *Relay) Register(s *grpc.Server) { identitypb.RegisterRelayServer(s, r) }

// Sync waits until the link is on the hospital side, reads the database,
// and seals one bundle per distinct identity. The plaintext never leaves
// this call; the ciphertexts wait for [Relay.Upload].
func (r *Relay) Sync(ctx context.Context) (SyncReport, error) {
	var rep SyncReport
	var entries []*identitypb.Entry
	err := r.cfg.Link.UseWhen(ctx, link.Hospital, func(ctx context.Context) error {
		type group struct {
			key    *recordkey.Key
			bundle *records.Bundle
		}
		rows, err := r.cfg.DB.Rows(ctx)
		if err != nil {
			return err
		}
		byIdentity := map[string]*group{}
		var order []string
		for i := range rows {
			if err := ctx.Err(); err != nil {
				return err
			}
			row := &rows[i]
			rep.Patients++
			if !row.Enrolled {
				// Without the credential the patient's terminal could not
				// derive the key: nothing to upload.
				rep.Unenrolled++
				continue
			}
			enc := row.Identity
			if g, ok := byIdentity[string(enc)]; ok {
				g.bundle.Conditions = append(g.bundle.Conditions, row.Patient.Conditions...)
				rep.Merged++
				continue
			}
			k, err := r.cfg.Evaluator.Derive(recordkey.Input(enc, row.Cred))
			if err != nil {
				return err
			}
			byIdentity[string(enc)] = &group{key: k, bundle: records.NewBundle(r.Hospital(), &row.Patient)}
			order = append(order, string(enc))
		}
		for _, id := range order {
			g := byIdentity[id]
			pt, err := g.bundle.MarshalBinary()
			if err != nil {
				return fmt.Errorf("relay: encoding bundle: %w", err)
			}
			ct, err := recordkey.Seal(g.key, pt)
			if err != nil {
				return err
			}
			ix := g.key.Index()
			entries = append(entries, &identitypb.Entry{Hospital: r.Hospital(), Index: ix[:], Ciphertext: ct, AccessKey: g.key.AccessPublicKey()})
			rep.Bundles++
			rep.Conditions += len(g.bundle.Conditions)
			rep.Bytes += len(ct)
		}
		return nil
	})
	if err != nil {
		return SyncReport{}, fmt.Errorf("relay %s: sync: %w", r.Hospital(), err)
	}
	r.mu.Lock()
	r.pending = entries
	r.mu.Unlock()
	r.log.Info("synced", "hospital", r.Hospital(), "patients", rep.Patients, "bundles", rep.Bundles, "merged", rep.Merged, "unenrolled", rep.Unenrolled)
	return rep, nil
}

// Upload waits until the link is on the cloud side, then sends the pending
// ciphertexts to the cloud in batches and returns how many were stored.
func (r *Relay) Upload(ctx context.Context) (int, error) {
	if r.cfg.DialCloud == nil {
		return 0, errors.New("relay: no DialCloud configured")
	}
	r.mu.Lock()
	pending := r.pending
	r.mu.Unlock()
	stored := 0
	err := r.cfg.Link.UseWhen(ctx, link.Cloud, func(ctx context.Context) error {
		client, closeFn, err := r.cfg.DialCloud(ctx)
		if err != nil {
			return fmt.Errorf("dialing cloud: %w", err)
		}
		defer closeFn()
		for len(pending) > 0 {
			n, size := 0, 0
			for n < len(pending) && n < UploadBatch && (n == 0 || size+len(pending[n].Ciphertext) <= UploadBatchBytes) {
				size += len(pending[n].Ciphertext)
				n++
			}
			pctx, cancel := context.WithTimeout(ctx, PutTimeout)
			resp, err := client.Put(pctx, &identitypb.PutRequest{Entries: pending[:n]})
			cancel()
			if err != nil {
				return fmt.Errorf("put: %w", err)
			}
			stored += int(resp.GetStored())
			pending = pending[n:]
		}
		return nil
	})
	if err != nil {
		return stored, fmt.Errorf("relay %s: upload: %w", r.Hospital(), err)
	}
	r.mu.Lock()
	r.pending = nil
	r.mu.Unlock()
	return stored, nil
}

// Evaluate implements the Relay service: it answers only while the link is
// on the cloud side, after the rate limit for the calling terminal.
func (r *Relay) Evaluate(ctx context.Context, req *identitypb.EvaluateRequest) (*identitypb.EvaluateResponse, error) {
	name, err := authn.PeerName(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	var resp *identitypb.EvaluateResponse
	err = r.cfg.Link.Use(ctx, link.Cloud, func(context.Context) error {
		var err error
		resp, err = r.evaluate(name, req.GetBlinded())
		return err
	})
	if err != nil {
		r.log.Info("evaluate refused", "hospital", r.Hospital(), "terminal", name, "err", err)
		return nil, toStatus(err)
	}
	return resp, nil
}

// evaluate is Evaluate without the transport: rate limit, then OPRF.
func (r *Relay) evaluate(terminal string, blinded [][]byte) (*identitypb.EvaluateResponse, error) {
	// Charge one token per identity, so batching buys no extra guesses. A
	// malformed request is charged too (at least one token).
	if !r.limiter.Allow(terminal, max(1, min(len(blinded), recordkey.MaxBatch))) {
		return nil, fmt.Errorf("%w: %q", ErrRateLimited, terminal)
	}
	ev, proof, err := r.cfg.Evaluator.Evaluate(blinded)
	if err != nil {
		return nil, err
	}
	return &identitypb.EvaluateResponse{Evaluated: ev, Proof: proof}, nil
}

func toStatus(err error) error {
	switch {
	case errors.Is(err, recordkey.ErrMalformed):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrRateLimited):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, link.ErrDisconnected):
		return status.Error(codes.Unavailable, "relay: link is on the hospital side; retry later")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "relay: deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "relay: canceled")
	}
	return status.Error(codes.Internal, "relay: internal error")
}
