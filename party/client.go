package party

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	mpsiv1 "github.com/mpsi-dev/mpsi/api/mpsi/v1"
	"github.com/mpsi-dev/mpsi/internal/envelope"
	"github.com/mpsi-dev/mpsi/psi"
	"github.com/mpsi-dev/mpsi/psi/ident"
	"github.com/mpsi-dev/mpsi/psi/session"
	"github.com/mpsi-dev/mpsi/sharing"
)

// ErrAborted reports a session that the coordinator aborted; the error
// text carries the reason.
var ErrAborted = errors.New("party: session aborted")

// MaxMessageSize is the gRPC message size limit.
const MaxMessageSize = 16 << 20

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
	// Logger receives progress; nil discards it. Secrets are never logged.
	Logger *slog.Logger
	// Progress, if set, is called as ring and token work advances.
	Progress func(phase string, done, total int)
	// Workers bounds token-work goroutines; 0 means GOMAXPROCS.
	Workers int
	// Stats, if set, is filled with phase timings and byte counts.
	Stats *Stats
	// Stage, if set, is called as aggregation encrypted passes its stages
	// (StageKeysSent, StagePublicKey, StageCiphertextsSent, StageKeySwitch),
	// on the goroutine that runs the session: for progress displays, and for
	// fault-injection tests that make the party vanish at a given stage.
	Stage func(stage string)
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

// RunRemote takes part in a session over gRPC and returns the party's own
// Result (with members under reveal: membership), after checking the
// coordinator's signature over it. It returns when the session is released
// or aborted, or when ctx is done.
func RunRemote(ctx context.Context, cfg RemoteConfig) (*session.Result, error) {
	if cfg.TLS == nil || len(cfg.TLS.Certificates) == 0 {
		return nil, errors.New("party: RunRemote needs a TLS config with the party's certificate")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	leaf, err := x509.ParseCertificate(cfg.TLS.Certificates[0].Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("party: own certificate: %w", err)
	}
	name := leaf.Subject.CommonName
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
	cc, err := grpc.NewClient(cfg.Address, grpc.WithTransportCredentials(credentials.NewTLS(tcfg)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize), grpc.MaxCallSendMsgSize(MaxMessageSize)))
	if err != nil {
		return nil, fmt.Errorf("party: connecting to %s: %w", cfg.Address, err)
	}
	defer cc.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := mpsiv1.NewCoordinatorClient(cc).Run(ctx)
	if err != nil {
		return nil, mapStatus(err)
	}
	c := &client{cfg: cfg, log: log, name: name, signer: signer, stream: stream, roots: tcfg.RootCAs}
	start := time.Now()
	defer func() {
		if cfg.Stats != nil {
			c.st.Total = time.Since(start)
			*cfg.Stats = c.st
		}
	}()
	coordinatorCert := func() *x509.Certificate {
		coordMu.Lock()
		defer coordMu.Unlock()
		return coordCert
	}
	res, err := c.run(ctx, coordinatorCert)
	if err != nil {
		// Tell the coordinator why, so that the others learn it.
		_ = stream.Send(&mpsiv1.PartyMessage{Msg: &mpsiv1.PartyMessage_Abort{Abort: &mpsiv1.Abort{Reason: truncate(err.Error(), 300)}}})
		_ = stream.CloseSend()
		// Cancelling now could reset the stream before the coordinator
		// reads the Abort: wait (briefly) for it to end the stream.
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			for {
				if _, rerr := stream.Recv(); rerr != nil {
					return
				}
			}
		}()
		select {
		case <-drained:
		case <-time.After(5 * time.Second):
		}
		return nil, err
	}
	_ = stream.CloseSend()
	return res, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// mapStatus turns gRPC status errors into errors callers can branch on
// without importing grpc.
func mapStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.PermissionDenied, codes.Unauthenticated:
		return fmt.Errorf("party: refused by the coordinator: %s", st.Message())
	case codes.NotFound:
		return fmt.Errorf("party: %s", st.Message())
	case codes.DeadlineExceeded:
		return fmt.Errorf("party: %w: %s", context.DeadlineExceeded, st.Message())
	case codes.Unavailable:
		return fmt.Errorf("party: coordinator unavailable: %s", st.Message())
	default:
		return fmt.Errorf("party: coordinator: %s: %s", st.Code(), st.Message())
	}
}

type client struct {
	cfg    RemoteConfig
	log    *slog.Logger
	name   string
	signer crypto.Signer
	stream grpc.BidiStreamingClient[mpsiv1.PartyMessage, mpsiv1.CoordinatorMessage]
	roots  *x509.CertPool
	sendMu sync.Mutex // guards stream.Send and st.BytesSent
	st     Stats

	spec     *session.Spec
	p        *Party
	key      *envelope.SessionKey
	roster   []*mpsiv1.RosterEntry
	maxBatch int
	enc      *encClient // aggregation encrypted only

	ringStart, aggStart time.Time
}

// send is safe for concurrent use: the own-list sender and the main loop
// share the stream.
func (c *client) send(m *mpsiv1.PartyMessage) error {
	c.sendMu.Lock()
	c.st.BytesSent += int64(proto.Size(m))
	err := c.stream.Send(m)
	c.sendMu.Unlock()
	if err != nil {
		return c.recvErr(err)
	}
	return nil
}

// sendNoRecv sends without reading the stream on failure, for goroutines
// other than the receive loop (only one goroutine may call Recv); a failed
// send returns io.EOF and the receive loop surfaces the Abort or status.
func (c *client) sendNoRecv(m *mpsiv1.PartyMessage) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	c.st.BytesSent += int64(proto.Size(m))
	return c.stream.Send(m)
}

// recvErr surfaces why a send failed: an Abort the coordinator queued
// before closing the stream, or the stream's status.
func (c *client) recvErr(err error) error {
	for {
		m, rerr := c.stream.Recv()
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return fmt.Errorf("party: coordinator closed the stream: %w", err)
			}
			return mapStatus(rerr)
		}
		if a := m.GetAbort(); a != nil {
			return fmt.Errorf("%w: %s", ErrAborted, a.GetReason())
		}
	}
}

func (c *client) recv() (*mpsiv1.CoordinatorMessage, error) {
	m, err := c.stream.Recv()
	if err == nil {
		c.st.BytesReceived += int64(proto.Size(m))
	}
	if errors.Is(err, io.EOF) {
		return nil, errors.New("party: coordinator ended the session without a result")
	}
	if err != nil {
		return nil, mapStatus(err)
	}
	if a := m.GetAbort(); a != nil {
		return nil, fmt.Errorf("%w: %s", ErrAborted, a.GetReason())
	}
	return m, nil
}

func (c *client) run(ctx context.Context, pr func() *x509.Certificate) (*session.Result, error) {
	if err := c.send(&mpsiv1.PartyMessage{Msg: &mpsiv1.PartyMessage_Hello{Hello: &mpsiv1.Hello{SessionId: c.cfg.Session}}}); err != nil {
		return nil, err
	}
	m, err := c.recv()
	if err != nil {
		return nil, err
	}
	w := m.GetWelcome()
	if w == nil {
		return nil, fmt.Errorf("party: expected Welcome from the coordinator")
	}
	spec, err := session.ParseSpec(w.GetSpecJson())
	if err != nil {
		return nil, fmt.Errorf("party: coordinator's spec: %w", err)
	}
	if spec.ID != c.cfg.Session || spec.PartyIndex(c.name) != int(w.GetPartyIndex()) {
		return nil, fmt.Errorf("party: coordinator sent a spec for session %q with us at index %d", spec.ID, w.GetPartyIndex())
	}
	if err := c.cfg.Policy.Check(spec); err != nil {
		return nil, err
	}
	c.spec, c.maxBatch = spec, int(w.GetMaxBatch())
	if c.maxBatch <= 0 || c.maxBatch > 1<<20 {
		return nil, fmt.Errorf("party: coordinator's batch limit %d is out of range", c.maxBatch)
	}
	loadStart := time.Now()
	recs, err := c.cfg.Load(spec)
	c.st.Load = time.Since(loadStart)
	if err != nil {
		return nil, err
	}
	rp := recs.Report
	c.log.Info("records loaded", "rows", rp.Rows, "loaded", rp.Loaded, "rejected", rp.Rejected, "duplicates", rp.Duplicates, "empty_identifier", rp.EmptyIdentifier)
	if c.p, err = New(spec, c.name, recs, Config{Workers: c.cfg.Workers}); err != nil {
		return nil, err
	}
	if c.key, err = envelope.GenerateSessionKey(); err != nil {
		return nil, err
	}
	sig, err := envelope.SignSessionKey(c.signer, spec.ID, c.name, c.key.Public())
	if err != nil {
		return nil, err
	}
	if err := c.send(&mpsiv1.PartyMessage{Msg: &mpsiv1.PartyMessage_Ready{Ready: &mpsiv1.Ready{
		SetSize: uint64(c.p.SetSize()), HpkePublicKey: c.key.Public(), Signature: sig,
		Normalization: ident.NormalizationVersion()}}}); err != nil {
		return nil, err
	}
	if m, err = c.recv(); err != nil {
		return nil, err
	}
	if m.GetRoster() == nil {
		return nil, errors.New("party: expected the roster")
	}
	if err := c.checkRoster(m.GetRoster()); err != nil {
		return nil, err
	}
	c.log.Info("roster verified", "parties", spec.Parties)
	return c.rounds(ctx, pr)
}

func (c *client) checkRoster(r *mpsiv1.Roster) error {
	if len(r.GetParties()) != len(c.spec.Parties) {
		return fmt.Errorf("%w: %d entries for %d parties", envelope.ErrRoster, len(r.GetParties()), len(c.spec.Parties))
	}
	for j, e := range r.GetParties() {
		if e.GetName() != c.spec.Parties[j] {
			return fmt.Errorf("%w: entry %d names %q", envelope.ErrRoster, j, e.GetName())
		}
		if err := envelope.VerifySessionKey(c.roots, e.GetCertificate(), c.spec.ID, e.GetName(), e.GetHpkePublicKey(), e.GetSignature()); err != nil {
			return err
		}
	}
	if string(r.GetParties()[c.p.Index()].GetHpkePublicKey()) != string(c.key.Public()) {
		return fmt.Errorf("%w: our own key was replaced", envelope.ErrRoster)
	}
	c.roster = r.GetParties()
	return nil
}

func (c *client) seal(round mpsiv1.Round, to int, msg []byte) error {
	enc, ct, err := envelope.Seal(c.roster[to].GetHpkePublicKey(), c.spec.ID, uint32(round), uint32(c.p.Index()), uint32(to), msg)
	if err != nil {
		return err
	}
	return c.sendEnvelope(round, to, enc, ct)
}

// sealBulk seals a large payload (a key share) to party to.
func sealBulk(c *client, round mpsiv1.Round, to int, msg []byte) (enc, ct []byte, err error) {
	return envelope.SealBulk(c.roster[to].GetHpkePublicKey(), c.spec.ID, uint32(round), uint32(c.p.Index()), uint32(to), msg)
}

func (c *client) sendEnvelope(round mpsiv1.Round, to int, enc, ct []byte) error {
	return c.send(&mpsiv1.PartyMessage{Msg: &mpsiv1.PartyMessage_Envelope{Envelope: &mpsiv1.Envelope{
		Round: round, From: uint32(c.p.Index()), To: uint32(to), Enc: enc, Ciphertext: ct}}})
}

// rounds runs tokens, positions, shares and the result.
func (c *client) rounds(ctx context.Context, pr func() *x509.Certificate) (*session.Result, error) {
	n, me := len(c.spec.Parties), c.p.Index()
	keyed := c.spec.Match.Mode == session.ModeKeyed
	encrypted := c.spec.Aggregation == session.AggregationEncrypted
	c.ringStart = time.Now()
	// Mask seeds (masked aggregation) and keyed-mode contributions to every
	// other party.
	for j := 0; j < n; j++ {
		if j == me {
			continue
		}
		if !encrypted {
			s, err := c.p.Seed(j)
			if err != nil {
				return nil, err
			}
			if err := c.seal(mpsiv1.Round_ROUND_MASK_SEED, j, s[:]); err != nil {
				return nil, err
			}
		}
		if keyed {
			kc := c.p.KeyContribution()
			if err := c.seal(mpsiv1.Round_ROUND_KEY_CONTRIBUTION, j, kc[:]); err != nil {
				return nil, err
			}
		}
	}
	// dh: the own list is computed and sent batch by batch by a goroutine,
	// so that the next party starts its hop at once, while this loop serves
	// the hops asked of this party.
	ownErr := make(chan error, 1)
	ownDone := keyed
	if !keyed {
		ownCtx, stopOwn := context.WithCancel(ctx)
		go func() { ownErr <- c.sendOwnList(ownCtx) }()
		defer func() {
			stopOwn()
			if !ownDone {
				<-ownErr
			}
		}()
	}
	// Encryption keys once the token work is under way (the own list is
	// being sent, or the key contributions are out), so that key generation
	// does not delay the other parties.
	if encrypted {
		if err := c.startEncrypted(); err != nil {
			return nil, err
		}
	}
	seeds := make([]sharing.Seed, n)
	haveSeed := make([]bool, n)
	if encrypted {
		for j := range haveSeed {
			haveSeed[j] = true // no mask seeds in this mode
		}
	}
	contribs := make([]psi.KeyContribution, n)
	haveContrib := make([]bool, n)
	contribs[me], haveContrib[me], haveSeed[me] = c.p.KeyContribution(), true, true
	sentTokens := false
	var positions []uint32
	var mask sharing.Vector
	hopsDone := map[int]uint64{}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !ownDone {
			select {
			case err := <-ownErr:
				ownDone = true
				// io.EOF: the coordinator ended the stream; recv below
				// returns its Abort or status.
				if err != nil && !errors.Is(err, io.EOF) {
					return nil, err
				}
			default:
			}
		}
		m, err := c.recv()
		if err != nil {
			return nil, err
		}
		switch x := m.Msg.(type) {
		case *mpsiv1.CoordinatorMessage_Envelope:
			e := x.Envelope
			from := int(e.GetFrom())
			if from >= n || from == me || int(e.GetTo()) != me {
				return nil, fmt.Errorf("party: envelope from %d to %d misrouted", from, e.GetTo())
			}
			open := c.key.Open
			if e.GetRound() == mpsiv1.Round_ROUND_THRESHOLD_SHARE {
				open = c.key.OpenBulk
			}
			pt, err := open(c.spec.ID, uint32(e.GetRound()), e.GetFrom(), e.GetTo(), e.GetEnc(), e.GetCiphertext())
			if err != nil {
				return nil, fmt.Errorf("party: envelope from %s: %w", c.spec.Parties[from], err)
			}
			switch e.GetRound() {
			case mpsiv1.Round_ROUND_THRESHOLD_SHARE:
				if err := c.onThresholdShare(from, pt); err != nil {
					return nil, err
				}
			case mpsiv1.Round_ROUND_MASK_SEED:
				if encrypted || haveSeed[from] || len(pt) != sharing.SeedSize {
					return nil, fmt.Errorf("party: mask seed from %s replayed or malformed", c.spec.Parties[from])
				}
				copy(seeds[from][:], pt)
				haveSeed[from] = true
			case mpsiv1.Round_ROUND_KEY_CONTRIBUTION:
				if !keyed || haveContrib[from] || len(pt) != psi.KeySize {
					return nil, fmt.Errorf("party: key contribution from %s replayed or malformed", c.spec.Parties[from])
				}
				copy(contribs[from][:], pt)
				haveContrib[from] = true
			default:
				return nil, fmt.Errorf("party: envelope for unknown round %d", e.GetRound())
			}
			if keyed && !sentTokens && all(haveContrib) {
				t0 := time.Now()
				data, err := c.p.keyedTokenBytes(contribs)
				c.st.Tokens = time.Since(t0)
				if err != nil {
					return nil, err
				}
				if err := c.sendList(mpsiv1.BatchKind_BATCH_KIND_TOKENS, me, 0, data); err != nil {
					return nil, err
				}
				sentTokens = true
				c.progress("tokens", 1, 1)
			}
		case *mpsiv1.CoordinatorMessage_Batch:
			b := x.Batch
			switch b.GetKind() {
			case mpsiv1.BatchKind_BATCH_KIND_RING:
				if keyed {
					return nil, errors.New("party: ring batch in keyed mode")
				}
				owner, hop := int(b.GetOwner()), int(b.GetHop())
				if owner >= n || hop < 1 || hop >= n || (owner+hop)%n != me {
					return nil, fmt.Errorf("party: ring batch (owner %d, hop %d) is not ours", owner, hop)
				}
				data := b.GetData()
				if len(data)%psi.PointSize != 0 || len(data)/psi.PointSize > c.maxBatch || b.GetOffset() != hopsDone[owner] {
					return nil, fmt.Errorf("party: malformed ring batch")
				}
				pts := make([]psi.Point, len(data)/psi.PointSize)
				for k := range pts {
					copy(pts[k][:], data[k*psi.PointSize:])
				}
				if _, err := c.p.Hop(pts); err != nil {
					// Name who produced the bad elements: the owner (hop 1) or
					// the party that did the previous hop.
					from := c.spec.Parties[(owner+hop-1)%n]
					return nil, fmt.Errorf("party: list of %s as sent by %s: %w", c.spec.Parties[owner], from, err)
				}
				hopsDone[owner] += uint64(len(pts))
				c.progress(fmt.Sprintf("hop on %s", c.spec.Parties[owner]), int(hopsDone[owner]), int(b.GetTotal()))
				if err := c.send(&mpsiv1.PartyMessage{Msg: &mpsiv1.PartyMessage_Batch{Batch: &mpsiv1.Batch{
					Kind: mpsiv1.BatchKind_BATCH_KIND_RING, Owner: uint32(owner), Hop: uint32(hop), Offset: b.GetOffset(), Total: b.GetTotal(), Data: pointsBytes(pts)}}}); err != nil {
					return nil, err
				}
				if hopsDone[owner] == b.GetTotal() {
					c.progress("ring", len(hopsDone)+1, n)
				}
			case mpsiv1.BatchKind_BATCH_KIND_POSITIONS:
				if encrypted {
					return nil, errors.New("party: positions sent with aggregation encrypted")
				}
				if c.st.Ring == 0 {
					c.st.Ring = time.Since(c.ringStart)
				}
				data := b.GetData()
				if len(data)%4 != 0 || b.GetOffset() != uint64(len(positions)) || b.GetTotal() > uint64(c.p.SetSize()) {
					return nil, errors.New("party: malformed positions batch")
				}
				for k := 0; k < len(data); k += 4 {
					positions = append(positions, binary.LittleEndian.Uint32(data[k:]))
				}
			default:
				return nil, fmt.Errorf("party: unexpected batch kind %v", b.GetKind())
			}
		case *mpsiv1.CoordinatorMessage_Mhe:
			if err := c.onMhe(x.Mhe); err != nil {
				return nil, err
			}
		case *mpsiv1.CoordinatorMessage_Mask:
			if encrypted {
				return nil, errors.New("party: mask dealt with aggregation encrypted")
			}
			if !ownDone {
				if err := <-ownErr; err != nil {
					return nil, err
				}
				ownDone = true
			}
			if c.st.Ring == 0 {
				c.st.Ring = time.Since(c.ringStart)
			}
			c.aggStart = time.Now()
			if mask != nil {
				return nil, errors.New("party: mask dealt twice")
			}
			if mask, err = sharing.UnmarshalVector(x.Mask.GetMask(), sharing.MaxLen); err != nil {
				return nil, fmt.Errorf("party: mask: %w", err)
			}
			if !all(haveSeed) {
				return nil, errors.New("party: masks dealt before every mask seed arrived")
			}
			z, err := c.p.Share(positions, mask, seeds)
			if err != nil {
				return nil, err
			}
			zb, err := z.MarshalBinary()
			if err != nil {
				return nil, err
			}
			if err := c.send(&mpsiv1.PartyMessage{Msg: &mpsiv1.PartyMessage_Share{Share: &mpsiv1.Share{Vector: zb}}}); err != nil {
				return nil, err
			}
			c.log.Info("masked share sent", "shared_records", len(positions))
		case *mpsiv1.CoordinatorMessage_Result:
			if (!encrypted && mask == nil) || (encrypted && !c.enc.pk) {
				return nil, errors.New("party: result before our share or ciphertexts")
			}
			if err := c.verifyResult(pr, x.Result); err != nil {
				return nil, err
			}
			var r session.Result
			if err := json.Unmarshal(x.Result.GetResultJson(), &r); err != nil {
				return nil, fmt.Errorf("party: result: %w", err)
			}
			c.st.Aggregate = time.Since(c.aggStart)
			c.st.Records = c.p.SetSize()
			return c.p.OwnResult(&r, positions)
		default:
			return nil, fmt.Errorf("party: unexpected message %T", m.Msg)
		}
	}
}

func (c *client) verifyResult(pr func() *x509.Certificate, r *mpsiv1.Result) error {
	cert := pr()
	if cert == nil {
		return errors.New("party: no coordinator certificate to check the result against")
	}
	return envelope.VerifyResult(cert, c.spec.ID, r.GetResultJson(), r.GetSignature())
}

// progress reports advancing work to the Progress callback, and to the log
// when a phase completes.
func (c *client) progress(phase string, done, total int) {
	if done >= total {
		c.log.Info("progress", "phase", phase, "done", done, "total", total)
	}
	if c.cfg.Progress != nil {
		c.cfg.Progress(phase, done, total)
	}
}

func (c *client) sendList(kind mpsiv1.BatchKind, owner, hop int, data []byte) error {
	const es = psi.TokenSize
	total := len(data) / es
	last := time.Now()
	for off := 0; off < total; off += c.maxBatch {
		end := min(off+c.maxBatch, total)
		if err := c.send(&mpsiv1.PartyMessage{Msg: &mpsiv1.PartyMessage_Batch{Batch: &mpsiv1.Batch{
			Kind: kind, Owner: uint32(owner), Hop: uint32(hop), Offset: uint64(off), Total: uint64(total), Data: data[off*es : end*es]}}}); err != nil {
			return err
		}
		if time.Since(last) > 2*time.Second {
			last = time.Now()
			c.log.Info("sending list", "sent", end, "total", total)
		}
	}
	return nil
}

// sendOwnList computes the party's own dh list in batches and sends each
// as soon as it is ready.
func (c *client) sendOwnList(ctx context.Context) error {
	t0 := time.Now()
	total := c.p.SetSize()
	buf := make([]psi.Point, c.maxBatch)
	last := time.Now()
	for off := 0; off < total || off == 0; off += c.maxBatch {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := min(off+c.maxBatch, total)
		out := buf[:end-off]
		if err := c.p.StartRingBatch(off, out); err != nil {
			return err
		}
		if len(out) == 0 {
			break
		}
		if err := c.sendNoRecv(&mpsiv1.PartyMessage{Msg: &mpsiv1.PartyMessage_Batch{Batch: &mpsiv1.Batch{
			Kind: mpsiv1.BatchKind_BATCH_KIND_RING, Owner: uint32(c.p.Index()), Hop: 0, Offset: uint64(off), Total: uint64(total), Data: pointsBytes(out)}}}); err != nil {
			return err
		}
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			c.log.Info("own list", "sent", end, "total", total)
		}
		c.progress("own list", end, total)
	}
	c.sendMu.Lock()
	c.st.Tokens = time.Since(t0)
	c.sendMu.Unlock()
	return nil
}

func pointsBytes(p []psi.Point) []byte {
	b := make([]byte, 0, len(p)*psi.PointSize)
	for i := range p {
		b = append(b, p[i][:]...)
	}
	return b
}

func all(b []bool) bool {
	for _, x := range b {
		if !x {
			return false
		}
	}
	return true
}
