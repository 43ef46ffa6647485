package access

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/mpsi-dev/mpsi/examples/recordsharing/internal/rpcerr"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/internal/rpcnet"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/protocol"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/session"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/sharingpb"
)

// Defaults.
const (
	DefaultSessionTTL      = 10 * time.Minute
	DefaultMaxSessions     = 1024
	DefaultContractTimeout = 10 * time.Second
)

// Config configures a Layer.
type Config struct {
	Key            *protocol.KeyPair        // required: signatures 3 and 5, session grants
	Rotations      [][]byte                 // the access key rotations since deployment, oldest first; the last must end at Key
	AppKey         protocol.Key             // required: the app's key (signature 2)
	ContractKey    protocol.Key             // required: the contract's key (signature 4)
	Contract       sharingpb.ContractClient // required
	AllowedSources []netip.Addr             // required: addresses the app may call from
	SessionTTL     time.Duration            // if zero, DefaultSessionTTL
	MaxSessions    int                      // if zero, DefaultMaxSessions
	Window         time.Duration            // replay window; if zero, protocol.DefaultWindow
	MaxNonces      int                      // if zero, protocol.DefaultMaxNonces
	Now            func() time.Time         // if nil, time.Now
	Log            *slog.Logger             // if nil, logs are discarded
}

// Layer is the access layer and its gRPC service. It is safe for concurrent
// use.
type Layer struct {
	sharingpb.UnimplementedAccessLayerServer

	keyMu     sync.RWMutex      // held for reading while a request uses key; for writing while it is replaced
	key       *protocol.KeyPair // guarded by keyMu
	rotations [][]byte          // guarded by keyMu

	app         protocol.Key
	contractKey protocol.Key
	contract    sharingpb.ContractClient
	allowed     []netip.Addr
	ttl         time.Duration
	maxSessions int
	guard       *protocol.ReplayGuard
	now         func() time.Time
	log         *slog.Logger

	mu       sync.Mutex                          // guards sessions
	sessions map[protocol.SessionID]*sessionInfo // guarded by mu
}

type sessionInfo struct {
	s       *session.Session
	source  netip.Addr
	expires time.Time
}

var _ sharingpb.AccessLayerServer = (*Layer)(nil)

// New checks cfg and returns a Layer.
func New(cfg Config) (*Layer, error) {
	if cfg.Key == nil || cfg.AppKey.IsZero() || cfg.ContractKey.IsZero() || cfg.Contract == nil {
		return nil, errors.New("access: Key, AppKey, ContractKey and Contract are required")
	}
	if len(cfg.AllowedSources) == 0 {
		return nil, errors.New("access: AllowedSources is empty; no app could call")
	}
	if len(cfg.Rotations) > 0 {
		var first protocol.SignedAccessRotation
		if err := first.UnmarshalBinary(cfg.Rotations[0]); err != nil {
			return nil, fmt.Errorf("access: rotation 0: %w", err)
		}
		r, err := first.Verify()
		if err != nil {
			return nil, fmt.Errorf("access: rotation 0: %w", err)
		}
		end, err := protocol.FollowRotations(r.Old, cfg.Rotations)
		if err != nil {
			return nil, fmt.Errorf("access: %w", err)
		}
		if end != cfg.Key.Public() {
			return nil, fmt.Errorf("access: the rotations end at %s, not at the key %s", end, cfg.Key.Public())
		}
	}
	l := &Layer{
		key:         cfg.Key,
		rotations:   slices.Clone(cfg.Rotations),
		app:         cfg.AppKey,
		contractKey: cfg.ContractKey,
		contract:    cfg.Contract,
		ttl:         cfg.SessionTTL,
		maxSessions: cfg.MaxSessions,
		guard:       protocol.NewReplayGuard(cfg.Window, cfg.MaxNonces),
		now:         cfg.Now,
		log:         cfg.Log,
		sessions:    make(map[protocol.SessionID]*sessionInfo),
	}
	for _, a := range cfg.AllowedSources {
		l.allowed = append(l.allowed, a.Unmap())
	}
	if l.ttl <= 0 {
		l.ttl = DefaultSessionTTL
	}
	if l.maxSessions <= 0 {
		l.maxSessions = DefaultMaxSessions
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return l, nil
}

// Public returns the access layer's current public key.
func (l *Layer) Public() protocol.Key {
	l.keyMu.RLock()
	defer l.keyMu.RUnlock()
	return l.key.Public()
}

// RotateKey replaces the access layer's key by newKey (the seed's periodic
// replacement of key pairs 2 to 4, here for the access layer). Both keys
// sign the rotation; the contract appends it to the ledger and accepts
// signature 3 only under newKey from then on. Requests in flight finish
// first. Every session ends, because its answers were to be checked under
// the old key: apps open a new session and learn the new key by following
// the signed chain of rotations that comes with the grant. It returns the
// encoded signed rotation, for the caller to store beside the new key. The
// old key pair is not destroyed; the caller owns it.
func (l *Layer) RotateKey(ctx context.Context, newKey *protocol.KeyPair) ([]byte, error) {
	l.keyMu.Lock()
	defer l.keyMu.Unlock()
	r := protocol.AccessRotation{Old: l.key.Public(), New: newKey.Public(), Time: l.now().UnixNano()}
	if _, err := rand.Read(r.Nonce[:]); err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	enc, err := r.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	signed := protocol.SignAccessRotation(l.key, newKey, enc)
	b, err := signed.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, DefaultContractTimeout)
	defer cancel()
	ack, err := l.contract.RotateAccessKey(cctx, &sharingpb.AccessKeyRotation{Rotation: b})
	if err != nil {
		return nil, fmt.Errorf("access: rotating key: %w", rpcerr.FromStatus(err))
	}
	l.key = newKey
	l.rotations = append(l.rotations, b)
	l.mu.Lock()
	n := len(l.sessions)
	clear(l.sessions)
	l.mu.Unlock()
	l.log.Info("access: key replaced; the contract logged the rotation; sessions ended",
		"old", r.Old, "new", r.New, "ledger_seq", ack.GetSeq(), "sessions_ended", n)
	return b, nil
}

func (l *Layer) source(ctx context.Context) (netip.Addr, error) {
	src, ok := rpcnet.PeerAddr(ctx)
	if !ok {
		return netip.Addr{}, fmt.Errorf("access: no peer address: %w", protocol.ErrSourceAddress)
	}
	if !slices.Contains(l.allowed, src) {
		l.log.Info("access: refused caller: source address not allowed", "source", src)
		return netip.Addr{}, fmt.Errorf("access: %s: %w", src, protocol.ErrSourceAddress)
	}
	return src, nil
}

// OpenSession implements sharingpb.AccessLayerServer: it seals a fresh
// session key to the app's temporary public key and signs the grant.
func (l *Layer) OpenSession(ctx context.Context, in *sharingpb.OpenSessionRequest) (*sharingpb.OpenSessionResponse, error) {
	out, err := l.openSession(ctx, in)
	if err != nil {
		l.log.Info("access: session refused", "err", err)
		return nil, rpcerr.ToStatus(err)
	}
	return out, nil
}

func (l *Layer) openSession(ctx context.Context, in *sharingpb.OpenSessionRequest) (*sharingpb.OpenSessionResponse, error) {
	src, err := l.source(ctx)
	if err != nil {
		return nil, err
	}
	var id protocol.SessionID
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	now := l.now()
	s, grant, err := session.Grant(in.GetEphemeralPublicKey(), id, now)
	if err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	enc, err := grant.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	l.keyMu.RLock()
	sig := protocol.SignGrant(l.key, enc)
	chain := slices.Clone(l.rotations)
	l.keyMu.RUnlock()

	l.mu.Lock()
	defer l.mu.Unlock()
	for k, v := range l.sessions {
		if now.After(v.expires) {
			delete(l.sessions, k)
		}
	}
	if len(l.sessions) >= l.maxSessions {
		return nil, fmt.Errorf("access: %d sessions open: %w", len(l.sessions), protocol.ErrBusy)
	}
	l.sessions[id] = &sessionInfo{s: s, source: src, expires: now.Add(l.ttl)}
	l.log.Info("access: session key sealed to the app's temporary key (HPKE) and grant signed",
		"session", id, "source", src, "enc_bytes", len(grant.Enc), "sealed_key_bytes", len(grant.SealedKey))
	return &sharingpb.OpenSessionResponse{Grant: enc, Signature: sig[:], KeyRotations: chain}, nil
}

// Submit implements sharingpb.AccessLayerServer: it opens the sealed
// request, runs Forward and seals the answer.
func (l *Layer) Submit(ctx context.Context, in *sharingpb.SealedMessage) (*sharingpb.SealedMessage, error) {
	out, err := l.submit(ctx, in)
	if err != nil {
		l.log.Info("access: request refused", "err", err)
		return nil, rpcerr.ToStatus(err)
	}
	return out, nil
}

func (l *Layer) submit(ctx context.Context, in *sharingpb.SealedMessage) (*sharingpb.SealedMessage, error) {
	// The session lookup and the answer's signature 5 must see the same
	// key: a rotation ends every session.
	l.keyMu.RLock()
	defer l.keyMu.RUnlock()
	src, err := l.source(ctx)
	if err != nil {
		return nil, err
	}
	if len(in.GetSessionId()) != protocol.SessionIDSize {
		return nil, fmt.Errorf("access: session id: %w", protocol.ErrMalformed)
	}
	id := protocol.SessionID(in.GetSessionId())
	l.mu.Lock()
	info, ok := l.sessions[id]
	if ok && l.now().After(info.expires) {
		delete(l.sessions, id)
		ok = false
	}
	l.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("access: session %s: %w", id, protocol.ErrNoSession)
	}
	if info.source != src {
		return nil, fmt.Errorf("access: session %s opened from %s, used from %s: %w", id, info.source, src, protocol.ErrSourceAddress)
	}
	pt, err := info.s.Open(in.GetNonce(), in.GetCiphertext())
	if err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	var sr protocol.SignedRequest
	if err := sr.UnmarshalBinary(pt); err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	l.log.Info("access: opened sealed request", "session", id, "source", src, "sealed_bytes", len(in.GetCiphertext()))
	resp, err := l.forward(ctx, id, sr)
	if err != nil {
		return nil, err
	}
	enc, err := resp.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	nonce, ct, err := info.s.Seal(enc)
	if err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	l.log.Info("access: sending sealed answer to the app", "session", id, "sealed_bytes", len(ct))
	return &sharingpb.SealedMessage{SessionId: id[:], Nonce: nonce, Ciphertext: ct}, nil
}

// Forward checks a request received in session sid (signature 2 in in.Hop,
// freshness), forwards it with signature 3 to the contract, checks the
// answer (signature 4, that it answers this request) and returns it with
// signature 5 in Hop.
func (l *Layer) Forward(ctx context.Context, sid protocol.SessionID, in protocol.SignedRequest) (*protocol.SignedResponse, error) {
	l.keyMu.RLock()
	defer l.keyMu.RUnlock()
	return l.forward(ctx, sid, in)
}

// forward is Forward with keyMu held for reading.
func (l *Layer) forward(ctx context.Context, sid protocol.SessionID, in protocol.SignedRequest) (*protocol.SignedResponse, error) {
	if err := protocol.VerifyApp(l.app, sid, in.Request, in.Requester, in.Hop); err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	var req protocol.Request
	if err := req.UnmarshalBinary(in.Request); err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	if err := l.guard.Check(l.now(), req.Time, req.Nonce); err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	l.log.Info("access: signature 2 valid, request fresh", "type", req.Type, "app", l.app, "sig2", in.Hop)

	sig3 := protocol.SignAccess(l.key, l.contractKey, in.Request, in.Requester)
	l.log.Info("access: forwarding request, signature 1 and signature 3 to the contract", "type", req.Type, "sig3", sig3)
	cctx, cancel := context.WithTimeout(ctx, DefaultContractTimeout)
	defer cancel()
	out, err := l.contract.Submit(cctx, &sharingpb.ContractRequest{
		Request:            in.Request,
		RequesterSignature: in.Requester[:],
		AccessSignature:    sig3[:],
	})
	if err != nil {
		return nil, fmt.Errorf("access: %w", rpcerr.FromStatus(err))
	}
	sig4, err := protocol.ParseSignature(out.GetContractSignature())
	if err != nil {
		return nil, fmt.Errorf("access: %s: %w", protocol.Sig4, err)
	}
	if err := protocol.VerifyContract(l.contractKey, l.key.Public(), out.GetResponse(), sig4); err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	var resp protocol.Response
	if err := resp.UnmarshalBinary(out.GetResponse()); err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	if resp.Request != protocol.DigestRequest(in.Request) || resp.Type != req.Type {
		return nil, fmt.Errorf("access: %w", protocol.ErrMismatch)
	}
	sig5 := protocol.SignAccessResponse(l.key, sid, out.GetResponse())
	l.log.Info("access: signature 4 valid, answer countersigned (signature 5)", "type", resp.Type, "sig4", sig4, "sig5", sig5)
	return &protocol.SignedResponse{Response: out.GetResponse(), Hop: sig5}, nil
}
