package party

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	mpsiv1 "github.com/mpsi-dev/mpsi/api/mpsi/v1"
	"github.com/mpsi-dev/mpsi/internal/resend"
	"github.com/mpsi-dev/mpsi/psi/protocol"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// DefaultIdleTimeout is [RemoteConfig.IdleTimeout]'s default.
const DefaultIdleTimeout = 10 * time.Minute

// Errors of [RunRemote] that callers can branch on with errors.Is.
var (
	// ErrAborted reports a session that ended without a Result: the
	// coordinator or a party aborted it, or this party did (its policy, its
	// data, a failed check). The error is a [*protocol.AbortError] with the
	// code and the reason.
	ErrAborted = protocol.ErrAborted
	// ErrRefused reports that the coordinator refused the party: its
	// certificate is not accepted, or it is not a party of the session.
	ErrRefused = errors.New("party: refused by the coordinator")
	// ErrUnavailable reports that the coordinator could not be reached or
	// went away.
	ErrUnavailable = errors.New("party: coordinator unavailable")
	// ErrUnknownSession reports a session the coordinator does not know, or
	// one that is already over.
	ErrUnknownSession = errors.New("party: no such session to join")
)

// RemoteConfig configures [RunRemote].
type RemoteConfig struct {
	// Address of the coordinator, host:port.
	Address string
	// TLS is the party's mutual TLS configuration: its certificate (whose
	// common name is its party name) and the CA that signed everyone's.
	TLS *tls.Config
	// Session is the id of the session to take part in.
	Session string
	// Load reads the party's records once the spec is known.
	Load func(*session.Spec) (*Records, error)
	// Policy, if set, is checked against the spec before loading.
	Policy *Policy
	// Admit, if set, is called after the policy accepts the spec and
	// before the records are loaded or anything is sent: a privacy ledger
	// charges the session's budget there ([ledger.Ledger.Charge] in package
	// party/ledger). An error refuses the session (code policy).
	Admit func(*session.Spec) error
	// Logger receives progress; nil discards it. Secrets are never logged.
	Logger *slog.Logger
	// Progress, if set, is called as ring and token work advances.
	Progress func(phase string, done, total int)
	// Workers bounds token-work goroutines; 0 means GOMAXPROCS.
	Workers int
	// Stats, if set, is filled with phase timings and byte counts.
	Stats *Stats
	// IdleTimeout bounds the time the party waits without any message from
	// the coordinator while it has no local work left: past it the party
	// aborts, naming the coordinator (frozen, or the path black-holed).
	// Zero means DefaultIdleTimeout. It must exceed the coordinator's
	// round timeout, which governs waiting for other parties.
	IdleTimeout time.Duration
	// CoordinatorName is the coordinator's certificate name, pinned: the
	// coordinator must present a certificate with it, and a spec listing it
	// as a party is refused. Empty means protocol.DefaultCoordinatorName.
	CoordinatorName string
	// Observe, if set, is called with every event of the party's state
	// machine (progress, encrypted-aggregation stages, notes, the release
	// or the abort), on the goroutine that runs the session.
	Observe func(protocol.Event)
	// ReconnectWithin bounds the time the party spends reconnecting after
	// its stream to the coordinator broke (not an abort, not a clean end):
	// it redials with backoff and resumes the session where each side
	// left off, for at most the coordinator's reconnect grace (which the
	// coordinator announces; without one, a break ends the session) and at
	// most ReconnectWithin when positive. Negative never reconnects.
	ReconnectWithin time.Duration
}

// Stats are a party's measurements of one session, for benchmarks.
type Stats struct {
	// Load is reading, normalising and checking the records.
	Load time.Duration `json:"load_ns"`
	// Tokens is computing the party's own list (hash-to-group and the first
	// exponentiation in dh mode; the keyed tokens in keyed mode).
	Tokens time.Duration `json:"tokens_ns"`
	// Ring is from the roster until the party's positions arrive (the
	// public key, with aggregation encrypted): the other parties' hops on
	// its list, its own hops, and the coordinator's join.
	Ring time.Duration `json:"ring_ns"`
	// Aggregate is from the mask deal (the public key) to the released
	// Result.
	Aggregate time.Duration `json:"aggregate_ns"`
	// Total is the whole session from Hello to the Result.
	Total         time.Duration `json:"total_ns"`
	BytesSent     int64         `json:"bytes_sent"`
	BytesReceived int64         `json:"bytes_received"`
	Records       int           `json:"records"`
	// PeakRSS is the process's peak resident set size in bytes, filled by
	// the caller (the mpsi command reads VmHWM on Linux).
	PeakRSS int64 `json:"peak_rss"`
}

// RunRemote takes part in a session over gRPC: it drives a [protocol.Party]
// machine with the coordinator's frames, loads the party's records once the
// spec is offered and accepted by its policy, and returns the party's own
// Result (with members under reveal: membership), after the machine has
// checked the coordinator's signature over it. It returns when the session
// is released or aborted, or when ctx is done. Errors wrap [ErrAborted],
// [ErrRefused], [ErrUnavailable] or [ErrUnknownSession] where they apply.
func RunRemote(ctx context.Context, cfg RemoteConfig) (*session.Result, error) {
	if cfg.TLS == nil || len(cfg.TLS.Certificates) == 0 {
		return nil, errors.New("party: RunRemote needs a TLS config with the party's certificate")
	}
	if cfg.Load == nil {
		return nil, errors.New("party: RunRemote needs RemoteConfig.Load")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	leaf, err := x509.ParseCertificate(cfg.TLS.Certificates[0].Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("party: own certificate: %w", err)
	}
	signer, ok := cfg.TLS.Certificates[0].PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("party: own TLS key cannot sign")
	}
	tcfg := cfg.TLS.Clone()
	tcfg.MinVersion = tls.VersionTLS13
	// Remember the coordinator's certificate to check its signature over
	// the released Result.
	var coordMu sync.Mutex
	var coordCert *x509.Certificate
	prev := tcfg.VerifyConnection
	tcfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if prev != nil {
			if err := prev(cs); err != nil {
				return err
			}
		}
		if len(cs.PeerCertificates) > 0 {
			coordMu.Lock()
			coordCert = cs.PeerCertificates[0]
			coordMu.Unlock()
		}
		return nil
	}
	coordName := cfg.CoordinatorName
	if coordName == "" {
		coordName = protocol.DefaultCoordinatorName
	}
	machine, err := protocol.NewParty(protocol.PartyConfig{Session: cfg.Session, Name: leaf.Subject.CommonName, Signer: signer,
		Roots: tcfg.RootCAs, Workers: cfg.Workers, CoordinatorName: coordName, Coordinator: func() *x509.Certificate {
			coordMu.Lock()
			defer coordMu.Unlock()
			return coordCert
		}})
	if err != nil {
		return nil, err
	}
	// Keepalive pings detect a dead path even while no message is due.
	cc, err := grpc.NewClient(cfg.Address, grpc.WithTransportCredentials(credentials.NewTLS(tcfg)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 20 * time.Second}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(protocol.MaxMessageSize), grpc.MaxCallSendMsgSize(protocol.MaxMessageSize)))
	if err != nil {
		return nil, fmt.Errorf("party: connecting to %s: %w", cfg.Address, err)
	}
	defer cc.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	client := mpsiv1.NewCoordinatorClient(cc)
	stream, err := client.Run(ctx)
	if err != nil {
		return nil, mapStatus(err)
	}
	idle := cfg.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	d := &driver{cfg: cfg, log: log, p: machine, client: client, stream: stream, start: time.Now(), idle: idle, out: resend.NewOutbox(0)}
	defer func() {
		if cfg.Stats != nil {
			d.st.Total = time.Since(d.start)
			*cfg.Stats = d.st
		}
	}()
	d.inbox = d.read(stream)
	res, err := d.run(ctx)
	_ = d.stream.CloseSend()
	if err != nil && !d.streamEnded {
		// Let the coordinator read our Abort before the stream is cancelled:
		// wait (briefly) for it to end the stream.
		select {
		case <-d.readDone():
		case <-time.After(5 * time.Second):
		}
	}
	return res, err
}

// recvd is one frame from the coordinator, decoded, or the stream's end.
type recvd struct {
	m        protocol.Message
	n        int
	seq, ack uint64 // the frame's numbers; seq 0: a pure acknowledgement
	grace    time.Duration
	bad      error // the frame did not decode
	err      error // the stream ended
}

// driver carries one party's machine over the gRPC stream.
type driver struct {
	cfg    RemoteConfig
	log    *slog.Logger
	p      *protocol.Party
	client mpsiv1.CoordinatorClient
	stream grpc.BidiStreamingClient[mpsiv1.Frame, mpsiv1.Frame]
	inbox  chan recvd
	st     Stats
	start  time.Time

	// The link's numbering (doc/PROTOCOL.md, "Reconnect"): frames sent,
	// kept until the coordinator acknowledges them; frames received.
	out     *resend.Outbox
	in      resend.Inbox
	unacked int           // frames received since an acknowledgement was sent
	hello   []byte        // the Hello, which opens a resumed stream
	grace   time.Duration // the coordinator's reconnect grace
	// cancelStream ends a resumed stream's context once it is replaced.
	cancelStream context.CancelFunc

	idle        time.Duration
	sendFailed  bool // a Send failed: the stream's end says why
	streamEnded bool
	rosterAt    time.Time
	aggAt       time.Time
}

// read forwards the frames of stream to a new inbox until the stream
// ends, then closes it. The first frame carries the coordinator's
// reconnect grace (a response header).
func (d *driver) read(stream grpc.BidiStreamingClient[mpsiv1.Frame, mpsiv1.Frame]) chan recvd {
	inbox := make(chan recvd, 64)
	go func() {
		defer close(inbox)
		first := true
		for {
			f, err := stream.Recv()
			if err != nil {
				inbox <- recvd{err: err}
				return
			}
			r := recvd{n: len(f.GetData()), seq: f.GetSeq(), ack: f.GetAck()}
			if first {
				first = false
				if md, err := stream.Header(); err == nil {
					if v := md.Get(resend.GraceHeader); len(v) == 1 {
						r.grace, _ = time.ParseDuration(v[0])
					}
				}
			}
			if len(f.GetData()) > 0 || f.GetSeq() != 0 || f.GetResume() {
				r.m, r.bad = protocol.Decode(f.GetData())
				if f.GetResume() {
					r.bad = fmt.Errorf("%w: resume set on a frame of an open stream", protocol.ErrBadMessage)
				}
			}
			inbox <- r
		}
	}()
	return inbox
}

// readDone returns a channel closed once the reader has seen the stream end
// (draining the inbox meanwhile).
func (d *driver) readDone() <-chan struct{} {
	done := make(chan struct{})
	go func() {
		for range d.inbox {
		}
		close(done)
	}()
	return done
}

func (d *driver) run(ctx context.Context) (*session.Result, error) {
	for {
		if err := d.flush(); err != nil {
			return nil, err
		}
		switch d.p.State() {
		case protocol.StateDone:
			d.st.Aggregate = time.Since(d.aggAt)
			d.st.Records = d.p.SetSize()
			return d.p.Result(), nil
		case protocol.StateOffered:
			if err := d.accept(); err != nil {
				_ = d.flush()
				return nil, err
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			d.p.Abort(protocol.CodePartyAborted, "party cancelled")
			_ = d.flush()
			return nil, err
		}
		var r recvd
		var ok bool
		select {
		case r, ok = <-d.inbox:
		default:
			// Nothing to read: do a piece of local work, or wait.
			did, err := d.p.Step()
			if err != nil {
				_ = d.flush()
				return nil, err
			}
			if did {
				continue
			}
			idle := time.NewTimer(d.idle)
			select {
			case r, ok = <-d.inbox:
				idle.Stop()
			case <-ctx.Done():
				idle.Stop()
				continue
			case <-idle.C:
				reason := fmt.Sprintf("no message from the coordinator for %s in state %s (frozen, or the path to it is down)", d.idle, d.p.State())
				d.p.Abort(protocol.CodeTimeout, reason)
				_ = d.flush()
				return nil, fmt.Errorf("%w: %s", ErrUnavailable, reason)
			}
		}
		if !ok || r.err != nil {
			if d.mayResume(r.err) {
				if err := d.reconnect(ctx, r.err); err != nil {
					d.streamEnded = true
					return nil, err
				}
				continue
			}
			d.streamEnded = true
			return nil, d.ended(r.err)
		}
		d.st.BytesReceived += int64(r.n)
		if r.grace > 0 {
			d.grace = r.grace
		}
		if r.bad == nil && r.ack > 0 {
			if err := d.out.Ack(r.ack); err != nil {
				r.bad = err
			}
		}
		if r.bad == nil && r.m == nil {
			continue // a pure acknowledgement
		}
		if r.bad == nil {
			// Drop a resent duplicate; refuse a gap.
			fresh, err := d.in.Accept(r.seq)
			if err != nil {
				r.bad = err
			} else if !fresh {
				continue
			}
		}
		if r.bad != nil {
			d.p.Abort(protocol.CodeBadMessage, fmt.Sprintf("coordinator sent an undecodable frame: %v", r.bad))
			_ = d.flush()
			return nil, fmt.Errorf("party: coordinator: %w", r.bad)
		}
		if d.unacked++; d.unacked >= resend.AckEvery {
			d.sendFrame(&mpsiv1.Frame{Ack: d.in.Last()})
		}
		if err := d.p.Receive(r.m); err != nil {
			_ = d.flush()
			if d.p.State() == protocol.StateAborted && errors.Is(err, protocol.ErrAborted) {
				return nil, fmt.Errorf("party: %w", err)
			}
			return nil, err
		}
	}
}

// mayResume reports whether a stream that ended with err (nil: the inbox
// closed) is worth resuming: it broke (the transport failed, no status
// from the coordinator), the session is not over for the machine, the
// coordinator announced a reconnect grace, and the session had begun (the
// Welcome came, so there is something to resume).
func (d *driver) mayResume(err error) bool {
	if err == nil || errors.Is(err, io.EOF) || d.cfg.ReconnectWithin < 0 || d.grace <= 0 || d.in.Last() == 0 || d.hello == nil {
		return false
	}
	if st := d.p.State(); st == protocol.StateDone || st == protocol.StateAborted {
		return false
	}
	return status.Code(err) == codes.Unavailable
}

// reconnect redials the coordinator after the stream broke with cause and
// resumes the session on a new stream: it says which frames it has
// received, the coordinator answers likewise, and each side resends the
// rest. Attempts back off from 100 ms to 2 s, for at most the
// coordinator's grace (and RemoteConfig.ReconnectWithin). A refusal ends
// the attempts at once.
func (d *driver) reconnect(ctx context.Context, cause error) error {
	budget := d.grace
	if w := d.cfg.ReconnectWithin; w > 0 {
		budget = min(budget, w)
	}
	start := time.Now()
	deadline := start.Add(budget)
	d.log.Warn("stream to the coordinator broke; reconnecting", "err", status.Convert(cause).Message(), "within", budget)
	backoff := 100 * time.Millisecond
	var last error
	for attempt := 1; ; attempt++ {
		stream, ack, cancel, err := d.resumeStream(ctx, deadline)
		if err == nil {
			if err := d.out.Resume(ack); err != nil {
				cancel()
				reason := fmt.Sprintf("coordinator's resume point: %v", err)
				d.p.Abort(protocol.CodeBadMessage, reason)
				return fmt.Errorf("party: %s", reason)
			}
			if d.cancelStream != nil {
				d.cancelStream() // the broken stream before
			}
			d.stream, d.sendFailed, d.cancelStream = stream, false, cancel
			d.inbox = d.read(stream)
			resent := d.out.Pending()
			d.sendQueued()
			d.log.Info("reconnected", "attempt", attempt, "after", time.Since(start).Round(time.Millisecond), "resent", resent, "received", d.in.Last())
			return nil
		}
		last = err
		if status.Code(err) != codes.Unavailable && !errors.Is(err, context.DeadlineExceeded) {
			// Refused: the session is over, or the coordinator cannot
			// resume it.
			return fmt.Errorf("reconnecting after the stream broke (%s): %w", status.Convert(cause).Message(), mapStatus(err))
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		wait := min(backoff, time.Until(deadline))
		if wait <= 0 {
			break
		}
		d.log.Info("reconnect attempt failed", "attempt", attempt, "err", status.Convert(err).Message())
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(2*backoff, 2*time.Second)
	}
	return fmt.Errorf("%w: stream broke (%s) and reconnecting failed within %s: %v", ErrUnavailable, status.Convert(cause).Message(), budget, status.Convert(last).Message())
}

// resumeStream opens a stream and resumes the session on it, by deadline:
// it returns the stream, the last seq the coordinator received, and the
// stream's cancel.
func (d *driver) resumeStream(ctx context.Context, deadline time.Time) (grpc.BidiStreamingClient[mpsiv1.Frame, mpsiv1.Frame], uint64, context.CancelFunc, error) {
	sctx, cancel := context.WithCancel(ctx)
	// The stream lives on past the deadline; only the handshake is bounded.
	timer := time.AfterFunc(time.Until(deadline), cancel)
	fail := func(err error) (grpc.BidiStreamingClient[mpsiv1.Frame, mpsiv1.Frame], uint64, context.CancelFunc, error) {
		expired := !timer.Stop()
		cancel()
		if expired && ctx.Err() == nil {
			err = fmt.Errorf("%w: %v", context.DeadlineExceeded, err)
		}
		return nil, 0, nil, err
	}
	stream, err := d.client.Run(sctx, grpc.WaitForReady(true))
	if err != nil {
		return fail(err)
	}
	if err := stream.Send(&mpsiv1.Frame{Resume: true, Data: d.hello, Ack: d.in.Last()}); err != nil {
		_, err = stream.Recv() // the status says why
		return fail(err)
	}
	f, err := stream.Recv()
	if err != nil {
		return fail(err)
	}
	if !timer.Stop() {
		return fail(status.Error(codes.DeadlineExceeded, "resume handshake past the deadline"))
	}
	if !f.GetResume() || len(f.GetData()) > 0 {
		cancel()
		return nil, 0, nil, status.Error(codes.Internal, "coordinator did not answer the resume with a resume frame")
	}
	return stream, f.GetAck(), cancel, nil
}

// ended explains the end of the stream before a Result.
func (d *driver) ended(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: coordinator ended the session without a result", ErrUnavailable)
	}
	return mapStatus(err)
}

// accept checks the offered spec against the local policy and loads the
// records; a refusal or a load failure aborts the session with a code (the
// reason names the check or the file, never a record's value).
func (d *driver) accept() error {
	spec := d.p.Spec()
	if err := d.cfg.Policy.Check(spec); err != nil {
		d.p.Abort(protocol.CodePolicy, err.Error())
		return err
	}
	if d.cfg.Admit != nil {
		if err := d.cfg.Admit(spec); err != nil {
			d.p.Abort(protocol.CodePolicy, err.Error())
			return err
		}
	}
	loadStart := time.Now()
	recs, err := d.cfg.Load(spec)
	d.st.Load = time.Since(loadStart)
	if err != nil {
		// The error names the file, line and field, and may quote the
		// value: it stays here; the others get the code and a reference.
		r := protocol.Redact(protocol.CodeInput, spec.Parties[d.p.Index()], err)
		d.p.Abort(r.Code, r.Public)
		return r
	}
	rp := recs.Report
	d.log.Info("records loaded", "rows", rp.Rows, "loaded", rp.Loaded, "rejected", rp.Rejected, "duplicates", rp.Duplicates, "empty_identifier", rp.EmptyIdentifier)
	if rp.MissingKey != nil {
		// Several match keys: per key, the records without a value and
		// those whose value another record here shares (these stay local).
		d.log.Info("match keys", "missing_key", rp.MissingKey, "ambiguous_key", rp.AmbiguousKey)
	}
	return d.p.Accept(recs)
}

// flush carries out the machine's events: frames to the coordinator,
// progress, observations.
func (d *driver) flush() error {
	for _, ev := range d.p.Events() {
		if d.cfg.Observe != nil {
			d.cfg.Observe(ev)
		}
		switch e := ev.(type) {
		case protocol.Send:
			b, err := protocol.Encode(e.Msg)
			if err != nil {
				return err
			}
			d.st.BytesSent += int64(len(b))
			if e.Msg.Type() == protocol.TypeHello {
				d.hello = b
			}
			// Numbered and kept until acknowledged: a resumed stream
			// resends it if this one breaks.
			d.out.Push(b)
			d.sendQueued()
		case protocol.Progress:
			d.progress(e)
		case protocol.Info:
			if e.Msg == "roster verified" {
				d.rosterAt = time.Now()
			}
			d.log.Info(e.Msg, e.Args...)
		case protocol.StageReached:
			d.log.Info("stage", "stage", e.Stage)
		case protocol.Aborted:
			d.log.Warn("session aborted", "code", e.Code.String(), "reason", e.Reason)
		}
	}
	return nil
}

// sendQueued sends the frames of the outbox not yet sent on the current
// stream, each acknowledging what was received.
func (d *driver) sendQueued() {
	for !d.sendFailed {
		f, ok := d.out.Next()
		if !ok {
			return
		}
		d.sendFrame(&mpsiv1.Frame{Data: f.Data, Seq: f.Seq, Ack: d.in.Last()})
	}
}

// sendFrame sends one frame on the current stream unless a Send already
// failed on it (the stream's end, through the reader, says why).
func (d *driver) sendFrame(f *mpsiv1.Frame) {
	if d.sendFailed {
		return
	}
	if err := d.stream.Send(f); err != nil {
		d.sendFailed = true
		return
	}
	d.unacked = 0
}

// progress records phase timings and reports progress.
func (d *driver) progress(e protocol.Progress) {
	switch {
	case (e.Phase == "own list" || e.Phase == "tokens") && e.Done >= e.Total:
		d.st.Tokens = time.Since(d.rosterAt)
	case e.Phase == "aggregate":
		d.st.Ring = time.Since(d.rosterAt)
		d.aggAt = time.Now()
	}
	if e.Done >= e.Total && e.Phase != "aggregate" {
		d.log.Info("progress", "phase", e.Phase, "done", e.Done, "total", e.Total)
	}
	if d.cfg.Progress != nil {
		d.cfg.Progress(e.Phase, e.Done, e.Total)
	}
}

// mapStatus turns gRPC status errors into errors callers can branch on
// without importing grpc.
func mapStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.PermissionDenied, codes.Unauthenticated, codes.FailedPrecondition:
		return fmt.Errorf("%w: %s", ErrRefused, st.Message())
	case codes.NotFound:
		return fmt.Errorf("%w: %s", ErrUnknownSession, st.Message())
	case codes.DeadlineExceeded:
		return fmt.Errorf("party: %w: %s", context.DeadlineExceeded, st.Message())
	case codes.Unavailable:
		return fmt.Errorf("%w: %s", ErrUnavailable, st.Message())
	case codes.Canceled:
		return fmt.Errorf("party: %w", context.Canceled)
	default:
		return fmt.Errorf("party: coordinator: %s: %s", st.Code(), st.Message())
	}
}
