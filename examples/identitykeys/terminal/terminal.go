// Package terminal is a patient or doctor terminal (the seed's 患者终端 and
// 医生终端). A patient terminal derives the patient's keys obliviously from
// the identity the patient types, one per hospital on the platform, fetches
// and decrypts the patient's bundles from the cloud, and seals the keys to a
// doctor. A doctor terminal opens grants from its mailbox, reads the bundles
// they unlock, and may seal them on to a colleague.
//
// What a terminal sends: to each relay, blinded elements (uniformly random
// to the relay); to the cloud, indexes it fetches and sealed grants. What it
// learns: its own patient's keys and bundles, and the grants sealed to it.
package terminal

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/mpsi-dev/mpsi/examples/identitykeys/identity"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/identitypb"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/recordkey"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/records"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultRetry is how long a terminal waits before asking a relay again when
// the relay's link is on the hospital side.
const DefaultRetry = 50 * time.Millisecond

// DefaultCallTimeout bounds each call to a relay or the cloud.
const DefaultCallTimeout = 10 * time.Second

// Errors callers branch on. Check with errors.Is.
var (
	// ErrUnknownTerminal reports a grant to or from a terminal missing from
	// the directory.
	ErrUnknownTerminal = errors.New("terminal: unknown terminal")
	// ErrRelay reports a relay refusing a query (rate limit, bad request).
	ErrRelay = errors.New("terminal: relay refused the query")
	// ErrCloud reports a cloud call that failed.
	ErrCloud = errors.New("terminal: cloud request failed")
	// ErrDenied reports the cloud refusing a fetch, grant or revocation:
	// no valid signature by the bundle's access key, or a grant that is not
	// the caller's, was revoked or has expired.
	ErrDenied = errors.New("terminal: the cloud refused")
	// ErrBundle reports a bundle that failed to decrypt or decode, or that
	// claims another hospital than the one it was fetched from.
	ErrBundle = errors.New("terminal: bad bundle")
)

// Hospital is a directory entry: a hospital's name and its relay's pinned
// OPRF public key.
type Hospital struct {
	Name    string
	OPRFKey []byte
	Relay   identitypb.RelayClient
}

// Config configures a [Terminal].
type Config struct {
	Name        string                 // the terminal's certificate name; required
	Key         *recordkey.TerminalKey // required
	Hospitals   []Hospital             // every hospital on the platform
	Terminals   map[string][]byte      // terminal name → HPKE public key
	Cloud       identitypb.CloudClient // required
	Retry       time.Duration          // if zero, DefaultRetry
	CallTimeout time.Duration          // if zero, DefaultCallTimeout
	Now         func() time.Time       // if nil, time.Now (signed fetches, grant expiries)
	// Trace, if not nil, is told each message the terminal sends or
	// receives, in one line without secrets.
	Trace func(format string, args ...any)
}

// Terminal is a patient or doctor terminal. It is safe for concurrent use.
type Terminal struct {
	cfg Config
}

// New checks cfg and returns a terminal.
func New(cfg Config) (*Terminal, error) {
	if cfg.Name == "" || cfg.Key == nil || cfg.Cloud == nil {
		return nil, errors.New("terminal: Name, Key and Cloud are required")
	}
	for _, h := range cfg.Hospitals {
		if _, err := recordkey.ParsePublicKey(h.OPRFKey); err != nil {
			return nil, fmt.Errorf("terminal: hospital %q: %w", h.Name, err)
		}
		if h.Relay == nil {
			return nil, fmt.Errorf("terminal: hospital %q has no relay client", h.Name)
		}
	}
	if cfg.Retry == 0 {
		cfg.Retry = DefaultRetry
	}
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Retry < 0 || cfg.CallTimeout < 0 {
		return nil, errors.New("terminal: negative Retry or CallTimeout")
	}
	return &Terminal{cfg: cfg}, nil
}

// Name returns the terminal's name.
func (t *Terminal) Name() string { return t.cfg.Name }

// call bounds one RPC by the call timeout.
func call[Req, Resp any](ctx context.Context, t *Terminal, f func(context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) (Resp, error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.CallTimeout)
	defer cancel()
	return f(ctx, req)
}

func (t *Terminal) trace(format string, args ...any) {
	if t.cfg.Trace != nil {
		t.cfg.Trace(format, args...)
	}
}

// DeriveKeys normalises the typed identity and derives the patient's key at
// every hospital that enrolled the patient (creds holds the enrolment
// credential each hospital issued) through its relay's OPRF, checking each
// relay's proof against its pinned key. The credential enters the OPRF
// input beside the identity, so a terminal without it derives a key that
// finds nothing. A relay whose link is on the hospital side is asked again
// after the retry interval until ctx ends.
func (t *Terminal) DeriveKeys(ctx context.Context, typed identity.Fields, creds map[string]recordkey.Credential) ([]*recordkey.Key, error) {
	enc, err := identity.Encode(typed)
	if err != nil {
		return nil, fmt.Errorf("terminal: %w", err)
	}
	keys := make([]*recordkey.Key, 0, len(t.cfg.Hospitals))
	for _, h := range t.cfg.Hospitals {
		c, ok := creds[h.Name]
		if !ok {
			continue
		}
		k, err := t.query(ctx, h, recordkey.Input(enc, c))
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func (t *Terminal) query(ctx context.Context, h Hospital, enc []byte) (*recordkey.Key, error) {
	for {
		q, blinded, err := recordkey.NewQuery(h.Name, h.OPRFKey, enc)
		if err != nil {
			return nil, fmt.Errorf("terminal: %w", err)
		}
		t.trace("→ relay %s: Evaluate(%d blinded element(s), %d bytes)", h.Name, len(blinded), 32*len(blinded))
		resp, err := call(ctx, t, h.Relay.Evaluate, &identitypb.EvaluateRequest{Blinded: blinded})
		if status.Code(err) == codes.Unavailable {
			t.trace("← relay %s: unavailable (link on the hospital side); retrying in %v", h.Name, t.cfg.Retry)
			select {
			case <-time.After(t.cfg.Retry):
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("terminal: waiting for relay %s: %w", h.Name, ctx.Err())
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrRelay, h.Name, status.Convert(err).Message())
		}
		t.trace("← relay %s: %d evaluated element(s) + %d-byte DLEQ proof", h.Name, len(resp.GetEvaluated()), len(resp.GetProof()))
		k, err := q.Finalize(resp.GetEvaluated(), resp.GetProof())
		if err != nil {
			return nil, fmt.Errorf("terminal: relay %s: %w", h.Name, err)
		}
		t.trace("  proof verified against %s's pinned key; key derived", h.Name)
		return k, nil
	}
}

// Fetched is one bundle a terminal fetched and opened.
type Fetched struct {
	Hospital   string
	Key        *recordkey.Key // the patient's key; nil for a doctor
	Read       recordkey.Read // the read key (and, for a doctor, the grant used)
	Bundle     *records.Bundle
	Ciphertext int // bytes received
}

// Fetch gets and opens the bundle of every key from the cloud, proving to
// the cloud with each key's access key that the terminal is the patient. A
// hospital with no bundle at the key's index is skipped (the patient has no
// records there). A bundle that does not open wraps [ErrBundle].
func (t *Terminal) Fetch(ctx context.Context, keys []*recordkey.Key) ([]Fetched, error) {
	var out []Fetched
	for _, k := range keys {
		ix := k.Index()
		now := t.cfg.Now().Unix()
		sig := ed25519.Sign(k.AccessKey(), recordkey.FetchMessage(t.cfg.Name, k.Hospital(), ix, now))
		t.trace("→ cloud: Get(%s, index %x…, signed with the access key)", k.Hospital(), ix[:6])
		f, ok, err := t.get(ctx, &identitypb.GetRequest{Hospital: k.Hospital(), Index: ix[:], Time: now, Signature: sig}, k.ReadKey())
		if err != nil {
			return nil, err
		}
		if ok {
			f.Key, f.Read = k, recordkey.Read{Key: k.ReadKey()}
			out = append(out, f)
		}
	}
	return out, nil
}

// FetchGranted gets and opens the bundles of a grant a doctor received. The
// cloud serves each only while its grant is active; a refusal wraps
// [ErrDenied].
func (t *Terminal) FetchGranted(ctx context.Context, reads []recordkey.Read) ([]Fetched, error) {
	var out []Fetched
	for _, r := range reads {
		ix := r.Key.Index()
		t.trace("→ cloud: Get(%s, index %x…, grant %x…)", r.Key.Hospital(), ix[:6], r.ID[:4])
		f, ok, err := t.get(ctx, &identitypb.GetRequest{Hospital: r.Key.Hospital(), Index: ix[:], GrantId: r.ID[:]}, r.Key)
		if err != nil {
			return nil, err
		}
		if ok {
			f.Read = r
			out = append(out, f)
		}
	}
	return out, nil
}

func (t *Terminal) get(ctx context.Context, req *identitypb.GetRequest, rk *recordkey.ReadKey) (Fetched, bool, error) {
	resp, err := call(ctx, t, t.cfg.Cloud.Get, req)
	switch status.Code(err) {
	case codes.OK:
	case codes.NotFound:
		t.trace("← cloud: nothing at that index for %s", req.GetHospital())
		return Fetched{}, false, nil
	case codes.PermissionDenied:
		t.trace("← cloud: refused: %s", status.Convert(err).Message())
		return Fetched{}, false, fmt.Errorf("%w: %s", ErrDenied, status.Convert(err).Message())
	default:
		return Fetched{}, false, fmt.Errorf("%w: get: %v", ErrCloud, status.Convert(err).Message())
	}
	ct := resp.GetCiphertext()
	t.trace("← cloud: %d-byte ciphertext", len(ct))
	pt, err := recordkey.OpenRead(rk, ct)
	if err != nil {
		return Fetched{}, false, fmt.Errorf("%w: %s: %w", ErrBundle, rk.Hospital(), err)
	}
	b, err := records.ParseBundle(pt)
	if err != nil {
		return Fetched{}, false, fmt.Errorf("%w: %s: %w", ErrBundle, rk.Hospital(), err)
	}
	if b.Hospital != rk.Hospital() {
		return Fetched{}, false, fmt.Errorf("%w: fetched from %s but claims %q", ErrBundle, rk.Hospital(), b.Hospital)
	}
	return Fetched{Hospital: rk.Hospital(), Bundle: b, Ciphertext: len(ct)}, true, nil
}

// Share gives the terminal named to read access to the patient's bundles
// until expires: for each key it signs a grant with the key's access key
// and stores it at the cloud, then seals the read keys and grant ids to the
// doctor (HPKE) and posts them through the cloud's mailbox. If delegable,
// the doctor may pass the grants on to colleagues. The doctor never gets
// the access keys, so the patient can revoke the grants ([Terminal.Revoke]).
func (t *Terminal) Share(ctx context.Context, to string, keys []*recordkey.Key, expires time.Time, delegable bool) ([]recordkey.Read, error) {
	var reads []recordkey.Read
	for _, k := range keys {
		id, err := recordkey.NewGrantID()
		if err != nil {
			return nil, err
		}
		p := recordkey.Permit{ID: id, Hospital: k.Hospital(), Index: k.Index(), Grantee: to, Expires: expires.Unix(), Delegable: delegable}
		t.trace("→ cloud: Permit(%s may read %s index %x… until %s, delegable %v; signed with the access key)",
			to, k.Hospital(), p.Index[:6], expires.UTC().Format(time.DateTime), delegable)
		if _, err := call(ctx, t, t.cfg.Cloud.Permit, &identitypb.PermitRequest{
			Id: id[:], Hospital: p.Hospital, Index: p.Index[:], Grantee: to, Expires: p.Expires, Delegable: delegable, Signature: p.Sign(k),
		}); err != nil {
			return nil, fmt.Errorf("%w: permit: %v", ErrCloud, status.Convert(err).Message())
		}
		reads = append(reads, recordkey.Read{Key: k.ReadKey(), ID: id})
	}
	return reads, t.send(ctx, to, reads)
}

// PassOn passes a doctor's delegable grants on to the colleague named to,
// until expires (no later than the grants run): the cloud records the new
// grants under the doctor's, so the patient's revocation ends both.
func (t *Terminal) PassOn(ctx context.Context, to string, reads []recordkey.Read, expires time.Time) ([]recordkey.Read, error) {
	var out []recordkey.Read
	for _, r := range reads {
		id, err := recordkey.NewGrantID()
		if err != nil {
			return nil, err
		}
		t.trace("→ cloud: Delegate(grant %x… to %s)", r.ID[:4], to)
		if _, err := call(ctx, t, t.cfg.Cloud.Delegate, &identitypb.DelegateRequest{ParentId: r.ID[:], Id: id[:], Grantee: to, Expires: expires.Unix()}); err != nil {
			if status.Code(err) == codes.PermissionDenied {
				return nil, fmt.Errorf("%w: %s", ErrDenied, status.Convert(err).Message())
			}
			return nil, fmt.Errorf("%w: delegate: %v", ErrCloud, status.Convert(err).Message())
		}
		out = append(out, recordkey.Read{Key: r.Key, ID: id})
	}
	return out, t.send(ctx, to, out)
}

// Revoke revokes the grant id the patient made for k's bundle, signing the
// revocation with k's access key. The doctor, and every colleague the grant
// was passed on to, can no longer fetch the bundle.
func (t *Terminal) Revoke(ctx context.Context, k *recordkey.Key, id recordkey.GrantID) error {
	now := t.cfg.Now().Unix()
	sig := ed25519.Sign(k.AccessKey(), recordkey.RevokeMessage(id, now))
	t.trace("→ cloud: Revoke(grant %x…, signed with the access key)", id[:4])
	if _, err := call(ctx, t, t.cfg.Cloud.Revoke, &identitypb.RevokeRequest{Id: id[:], Time: now, Signature: sig}); err != nil {
		if status.Code(err) == codes.PermissionDenied {
			return fmt.Errorf("%w: %s", ErrDenied, status.Convert(err).Message())
		}
		return fmt.Errorf("%w: revoke: %v", ErrCloud, status.Convert(err).Message())
	}
	return nil
}

func (t *Terminal) send(ctx context.Context, to string, reads []recordkey.Read) error {
	pub, ok := t.cfg.Terminals[to]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTerminal, to)
	}
	sealed, err := recordkey.SealGrant(t.cfg.Key, t.cfg.Name, to, pub, &recordkey.Grant{Reads: reads})
	if err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	t.trace("→ cloud: Send(to %s, %d-byte sealed grant)", to, len(sealed))
	if _, err := call(ctx, t, t.cfg.Cloud.Send, &identitypb.SendRequest{To: to, Sealed: sealed}); err != nil {
		return fmt.Errorf("%w: send: %v", ErrCloud, status.Convert(err).Message())
	}
	return nil
}

// Received is a grant opened from the mailbox.
type Received struct {
	From  string
	Reads []recordkey.Read
}

// Inbox takes the terminal's mail from the cloud and opens each grant with
// the sender's directory key. Mail that does not open is reported in err
// (joined) and left out; the rest is returned.
func (t *Terminal) Inbox(ctx context.Context) ([]Received, error) {
	t.trace("→ cloud: Receive()")
	resp, err := call(ctx, t, t.cfg.Cloud.Receive, &identitypb.ReceiveRequest{})
	if err != nil {
		return nil, fmt.Errorf("%w: receive: %v", ErrCloud, status.Convert(err).Message())
	}
	var out []Received
	var errs []error
	for _, m := range resp.GetMail() {
		t.trace("← cloud: %d-byte sealed grant from %s", len(m.GetSealed()), m.GetFrom())
		pub, ok := t.cfg.Terminals[m.GetFrom()]
		if !ok {
			errs = append(errs, fmt.Errorf("%w: mail from %q", ErrUnknownTerminal, m.GetFrom()))
			continue
		}
		g, err := recordkey.OpenGrant(t.cfg.Key, m.GetFrom(), t.cfg.Name, pub, m.GetSealed())
		if err != nil {
			errs = append(errs, fmt.Errorf("terminal: mail from %q: %w", m.GetFrom(), err))
			continue
		}
		out = append(out, Received{From: m.GetFrom(), Reads: g.Reads})
	}
	return out, errors.Join(errs...)
}
