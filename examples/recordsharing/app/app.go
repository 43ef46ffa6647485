package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/mpsi-dev/mpsi/examples/recordsharing/internal/rpcerr"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/protocol"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/session"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/sharingpb"
)

// DefaultTimeout bounds each call to the access layer when ctx has no
// earlier deadline.
const DefaultTimeout = 30 * time.Second

// Config configures an App.
type Config struct {
	Key       *protocol.KeyPair           // required: signature 2
	AccessKey protocol.Key                // required: the access layer's key at deployment (signature 5, grants); signed rotations lead from it to the current key
	Client    sharingpb.AccessLayerClient // required
	Window    time.Duration               // accepted clock skew of answers; if zero, protocol.DefaultWindow
	Now       func() time.Time            // if nil, time.Now
	Log       *slog.Logger                // if nil, logs are discarded
}

// App is the information-sharing app. It is safe for concurrent use.
type App struct {
	key    *protocol.KeyPair
	access protocol.Key
	client sharingpb.AccessLayerClient
	window time.Duration
	now    func() time.Time
	log    *slog.Logger

	mu      sync.Mutex       // guards sess and sessKey
	sess    *session.Session // guarded by mu; nil until OpenSession
	sessKey protocol.Key     // the access key that granted sess; guarded by mu
}

// ErrNoSession reports a request made before OpenSession.
var ErrNoSession = errors.New("app: no session; call OpenSession first")

// New checks cfg and returns an App.
func New(cfg Config) (*App, error) {
	if cfg.Key == nil || cfg.AccessKey.IsZero() || cfg.Client == nil {
		return nil, errors.New("app: Key, AccessKey and Client are required")
	}
	a := &App{key: cfg.Key, access: cfg.AccessKey, client: cfg.Client, window: cfg.Window, now: cfg.Now, log: cfg.Log}
	if a.window <= 0 {
		a.window = protocol.DefaultWindow
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return a, nil
}

func (a *App) fresh(t int64) error {
	ts, now := time.Unix(0, t), a.now()
	if ts.Before(now.Add(-a.window)) || ts.After(now.Add(a.window)) {
		return fmt.Errorf("app: %w", protocol.ErrStale)
	}
	return nil
}

// OpenSession agrees a new session key with the access layer: it makes a
// temporary key pair, sends the public half, checks the access layer's
// signature on the grant, opens the session key and destroys the temporary
// private key.
func (a *App) OpenSession(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	in, err := session.NewInitiator()
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	a.log.Info("app: sending temporary public key to the access layer", "bytes", len(in.PublicKey()))
	out, err := a.client.OpenSession(ctx, &sharingpb.OpenSessionRequest{EphemeralPublicKey: in.PublicKey()})
	if err != nil {
		return fmt.Errorf("app: opening session: %w", rpcerr.FromStatus(err))
	}
	sig, err := protocol.ParseSignature(out.GetSignature())
	if err != nil {
		return fmt.Errorf("app: session grant: %w", err)
	}
	key, err := protocol.FollowRotations(a.access, out.GetKeyRotations())
	if err != nil {
		return fmt.Errorf("app: access key rotations: %w", err)
	}
	if key != a.access {
		a.log.Info("app: followed the signed access key rotations", "deployed", a.access, "current", key, "rotations", len(out.GetKeyRotations()))
	}
	if err := protocol.VerifyGrant(key, out.GetGrant(), sig); err != nil {
		return fmt.Errorf("app: %w", err)
	}
	var g protocol.SessionGrant
	if err := g.UnmarshalBinary(out.GetGrant()); err != nil {
		return fmt.Errorf("app: %w", err)
	}
	if err := a.fresh(g.Time); err != nil {
		return err
	}
	s, err := in.Finish(&g)
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	a.mu.Lock()
	a.sess, a.sessKey = s, key
	a.mu.Unlock()
	a.log.Info("app: grant signature valid; session key opened, temporary private key destroyed", "session", g.Session)
	return nil
}

// Approver is the registration authority: it approves a key as a user
// with a role (and, for a patient, a patient id). The contract refuses any
// registration without its approval.
type Approver interface {
	Approve(ctx context.Context, role protocol.Role, key protocol.Key, patient protocol.PatientID) (protocol.Signature, error)
}

// Register makes a key pair for a new patient (with patient id patient) or
// doctor (patient zero), has ra approve it and registers its public key on
// the ledger. The returned key pair belongs to the user; the app keeps no
// copy.
func (a *App) Register(ctx context.Context, role protocol.Role, patient protocol.PatientID, ra Approver) (*protocol.KeyPair, *protocol.Response, error) {
	user, err := protocol.GenerateKeyPair()
	if err != nil {
		return nil, nil, fmt.Errorf("app: %w", err)
	}
	approval, err := ra.Approve(ctx, role, user.Public(), patient)
	if err != nil {
		user.Destroy()
		return nil, nil, fmt.Errorf("app: registration approval: %w", err)
	}
	resp, err := a.Submit(ctx, user, protocol.Request{Type: protocol.TypeRegister, Role: role, Patient: patient, Approval: approval})
	if err != nil {
		user.Destroy()
		return nil, nil, err
	}
	return user, resp, nil
}

// RotateKey replaces user's key by a new key pair, which takes over the
// user's records and authorisations. The old key signs the request, the
// new key proves possession; signatures the old key made stay verifiable
// in the ledger. The caller should destroy the old key pair afterwards.
func (a *App) RotateKey(ctx context.Context, user *protocol.KeyPair) (*protocol.KeyPair, *protocol.Response, error) {
	next, err := protocol.GenerateKeyPair()
	if err != nil {
		return nil, nil, fmt.Errorf("app: %w", err)
	}
	resp, err := a.Submit(ctx, user, protocol.Request{
		Type: protocol.TypeRotate, NewKey: next.Public(), Approval: protocol.SignPossession(next, user.Public()),
	})
	if err != nil {
		next.Destroy()
		return nil, nil, err
	}
	return next, resp, nil
}

// Upload stores data, a record naming patient, as a new record and returns
// its id. owner must hold the key registered for patient: the contract
// makes that key the owner and checks signature 1 under it.
func (a *App) Upload(ctx context.Context, owner *protocol.KeyPair, patient protocol.PatientID, data []byte) (protocol.RecordID, *protocol.Response, error) {
	var id protocol.RecordID
	if _, err := rand.Read(id[:]); err != nil {
		return id, nil, fmt.Errorf("app: %w", err)
	}
	resp, err := a.Submit(ctx, owner, protocol.Request{Type: protocol.TypeUpload, Record: id, Patient: patient, Data: data})
	return id, resp, err
}

// Authorize lets doctor view record; owner must own it.
func (a *App) Authorize(ctx context.Context, owner *protocol.KeyPair, record protocol.RecordID, doctor protocol.Key) (*protocol.Response, error) {
	return a.Submit(ctx, owner, protocol.Request{Type: protocol.TypeAuthorize, Record: record, Doctor: doctor})
}

// Revoke withdraws doctor's authorisation for record; owner must own it.
func (a *App) Revoke(ctx context.Context, owner *protocol.KeyPair, record protocol.RecordID, doctor protocol.Key) (*protocol.Response, error) {
	return a.Submit(ctx, owner, protocol.Request{Type: protocol.TypeRevoke, Record: record, Doctor: doctor})
}

// View returns the data of record; user must own it or be authorised.
func (a *App) View(ctx context.Context, user *protocol.KeyPair, record protocol.RecordID) ([]byte, *protocol.Response, error) {
	resp, err := a.Submit(ctx, user, protocol.Request{Type: protocol.TypeView, Record: record})
	if err != nil {
		return nil, nil, err
	}
	return resp.Data, resp, nil
}

// Submit completes req (requester, timestamp, fresh nonce), signs it with
// user's key (signature 1) and sends it with Send.
func (a *App) Submit(ctx context.Context, user *protocol.KeyPair, req protocol.Request) (*protocol.Response, error) {
	req.Requester = user.Public()
	req.Time = a.now().UnixNano()
	if _, err := rand.Read(req.Nonce[:]); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	enc, err := req.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	sig1 := protocol.SignRequester(user, enc)
	a.log.Info("app: user signed request (signature 1)", "type", req.Type, "requester", req.Requester,
		"record", req.Record, "data_bytes", len(req.Data), "sig1", sig1)
	return a.Send(ctx, enc, sig1)
}

// Send sends an encoded request with its signature 1: it adds signature 2,
// seals both under the session key, and checks the answer's signature 5
// and that it answers this request.
func (a *App) Send(ctx context.Context, request []byte, sig1 protocol.Signature) (*protocol.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	a.mu.Lock()
	s, access := a.sess, a.sessKey
	a.mu.Unlock()
	if s == nil {
		return nil, ErrNoSession
	}
	sid := s.ID()
	sr := protocol.SignedRequest{Request: request, Requester: sig1, Hop: protocol.SignApp(a.key, sid, request, sig1)}
	pt, err := sr.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	nonce, ct, err := s.Seal(pt)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	a.log.Info("app: sending sealed request with signatures 1 and 2 to the access layer",
		"session", sid, "sig2", sr.Hop, "sealed_bytes", len(ct))
	out, err := a.client.Submit(ctx, &sharingpb.SealedMessage{SessionId: sid[:], Nonce: nonce, Ciphertext: ct})
	if err != nil {
		return nil, fmt.Errorf("app: %w", rpcerr.FromStatus(err))
	}
	if string(out.GetSessionId()) != string(sid[:]) {
		return nil, fmt.Errorf("app: answer for another session: %w", protocol.ErrMismatch)
	}
	plain, err := s.Open(out.GetNonce(), out.GetCiphertext())
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	var sresp protocol.SignedResponse
	if err := sresp.UnmarshalBinary(plain); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	if err := protocol.VerifyAccessResponse(access, sid, sresp.Response, sresp.Hop); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	var resp protocol.Response
	if err := resp.UnmarshalBinary(sresp.Response); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	if resp.Request != protocol.DigestRequest(request) {
		return nil, fmt.Errorf("app: %w", protocol.ErrMismatch)
	}
	if err := a.fresh(resp.Time); err != nil {
		return nil, err
	}
	a.log.Info("app: signature 5 valid, answer is for this request", "type", resp.Type, "record", resp.Record,
		"ledger_seq", resp.Seq, "ledger_entry", resp.Entry, "data_bytes", len(resp.Data), "sig5", sresp.Hop)
	return &resp, nil
}

// KeyApprover is an Approver that holds the registration authority's key
// pair in the calling process (the hospital's registration desk).
type KeyApprover struct {
	Key *protocol.KeyPair
}

// Approve signs the approval.
func (k KeyApprover) Approve(_ context.Context, role protocol.Role, key protocol.Key, patient protocol.PatientID) (protocol.Signature, error) {
	return protocol.SignApproval(k.Key, role, key, patient), nil
}
