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
// every hospital through its relay's OPRF, checking each relay's proof
// against its pinned key. A relay whose link is on the hospital side is
// asked again after the retry interval until ctx ends.
func (t *Terminal) DeriveKeys(ctx context.Context, typed identity.Fields) ([]*recordkey.Key, error) {
	enc, err := identity.Encode(typed)
	if err != nil {
		return nil, fmt.Errorf("terminal: %w", err)
	}
	keys := make([]*recordkey.Key, 0, len(t.cfg.Hospitals))
	for _, h := range t.cfg.Hospitals {
		k, err := t.query(ctx, h, enc)
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
	Key        *recordkey.Key
	Bundle     *records.Bundle
	Ciphertext int // bytes received
}

// Fetch gets and opens the bundle of every key from the cloud. A hospital
// with no bundle at the key's index is skipped (the patient has no records
// there). A bundle that does not open wraps [ErrBundle].
func (t *Terminal) Fetch(ctx context.Context, keys []*recordkey.Key) ([]Fetched, error) {
	var out []Fetched
	for _, k := range keys {
		ix := k.Index()
		t.trace("→ cloud: Get(%s, index %x…)", k.Hospital(), ix[:6])
		resp, err := call(ctx, t, t.cfg.Cloud.Get, &identitypb.GetRequest{Hospital: k.Hospital(), Index: ix[:]})
		if status.Code(err) == codes.NotFound {
			t.trace("← cloud: nothing at that index for %s", k.Hospital())
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%w: get: %v", ErrCloud, status.Convert(err).Message())
		}
		ct := resp.GetCiphertext()
		t.trace("← cloud: %d-byte ciphertext", len(ct))
		pt, err := recordkey.Open(k, ct)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBundle, k.Hospital(), err)
		}
		b, err := records.ParseBundle(pt)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBundle, k.Hospital(), err)
		}
		if b.Hospital != k.Hospital() {
			return nil, fmt.Errorf("%w: fetched from %s but claims %q", ErrBundle, k.Hospital(), b.Hospital)
		}
		out = append(out, Fetched{Key: k, Bundle: b, Ciphertext: len(ct)})
	}
	return out, nil
}

// Share seals keys to the terminal named to and posts the grant through the
// cloud's mailbox.
func (t *Terminal) Share(ctx context.Context, to string, keys []*recordkey.Key) error {
	pub, ok := t.cfg.Terminals[to]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTerminal, to)
	}
	sealed, err := recordkey.SealGrant(t.cfg.Key, t.cfg.Name, to, pub, &recordkey.Grant{Keys: keys})
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
	From string
	Keys []*recordkey.Key
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
		out = append(out, Received{From: m.GetFrom(), Keys: g.Keys})
	}
	return out, errors.Join(errs...)
}
