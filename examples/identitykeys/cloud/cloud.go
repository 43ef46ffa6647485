// Package cloud is the platform's cloud store (the seed's 平台云虚拟服务器):
// it keeps the relays' ciphertexts by (hospital, index) and a mailbox of
// sealed grants between terminals. It holds no key and never decrypts.
//
// What the cloud learns: per hospital, how many bundles and their padded
// sizes; which indexes terminals fetch and when; who sends sealed grants to
// whom, and their sizes. An index reveals nothing about an identity without
// the hospital's OPRF key, so the cloud cannot test guessed identities.
package cloud

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/mpsi-dev/mpsi/examples/identitykeys/identitypb"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/internal/authn"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/recordkey"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Limits on what the cloud accepts.
const (
	MaxEntriesPerPut = 1024
	MaxSealedGrant   = 4096
	MaxMailbox       = 64
	maxName          = 255
)

// Errors callers branch on. Check with errors.Is.
var (
	// ErrInvalid reports a malformed request; it is not retried.
	ErrInvalid = errors.New("cloud: invalid request")
	// ErrForbidden reports a caller not allowed to do this.
	ErrForbidden = errors.New("cloud: forbidden")
	// ErrNotFound reports no bundle at an index.
	ErrNotFound = errors.New("cloud: no bundle at this index")
	// ErrMailboxFull reports a recipient with too much pending mail.
	ErrMailboxFull = errors.New("cloud: mailbox full")
)

// Config configures a [Store].
type Config struct {
	// Hospitals lists the relays allowed to Put; a relay's certificate name
	// is its hospital's name, and it may only store entries for it.
	Hospitals []string
}

// Item is one stored bundle.
type Item struct {
	Hospital   string
	Index      recordkey.Index
	Ciphertext []byte
}

// Mail is one sealed grant waiting in a mailbox.
type Mail struct {
	From, To string
	Sealed   []byte
}

// Store is the cloud. It is safe for concurrent use.
type Store struct {
	identitypb.UnimplementedCloudServer
	hospitals map[string]bool

	mu      sync.Mutex                            // guards the fields below
	bundles map[string]map[recordkey.Index][]byte // hospital → index → ciphertext
	mail    map[string][]Mail                     // recipient → pending mail
}

var _ identitypb.CloudServer = (*Store)(nil)

// New returns an empty store.
func New(cfg Config) (*Store, error) {
	if len(cfg.Hospitals) == 0 {
		return nil, errors.New("cloud: no hospitals configured")
	}
	h := map[string]bool{}
	for _, name := range cfg.Hospitals {
		if err := recordkey.CheckHospital(name); err != nil {
			return nil, fmt.Errorf("cloud: %w", err)
		}
		h[name] = true
	}
	return &Store{hospitals: h, bundles: map[string]map[recordkey.Index][]byte{}, mail: map[string][]Mail{}}, nil
}

// Register registers the Cloud service on s.
func (s *Store) Register(g *grpc.Server) { identitypb.RegisterCloudServer(g, s) }

// Snapshot returns a copy of everything the cloud holds, for inspection.
func (s *Store) Snapshot() (items []Item, mail []Mail) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, m := range s.bundles {
		for ix, ct := range m {
			items = append(items, Item{Hospital: h, Index: ix, Ciphertext: slices.Clone(ct)})
		}
	}
	for _, ms := range s.mail {
		for _, m := range ms {
			mail = append(mail, Mail{From: m.From, To: m.To, Sealed: slices.Clone(m.Sealed)})
		}
	}
	return items, mail
}

func checkIndex(b []byte) (recordkey.Index, error) {
	var ix recordkey.Index
	if len(b) != recordkey.IndexSize {
		return ix, fmt.Errorf("%w: index is %d bytes, want %d", ErrInvalid, len(b), recordkey.IndexSize)
	}
	copy(ix[:], b)
	return ix, nil
}

// PutEntries stores entries on behalf of caller (a relay's certificate name).
func (s *Store) PutEntries(caller string, entries []*identitypb.Entry) (int, error) {
	if !s.hospitals[caller] {
		return 0, fmt.Errorf("%w: %q is not a hospital relay", ErrForbidden, caller)
	}
	if len(entries) == 0 || len(entries) > MaxEntriesPerPut {
		return 0, fmt.Errorf("%w: %d entries, want 1 to %d", ErrInvalid, len(entries), MaxEntriesPerPut)
	}
	type kv struct {
		ix recordkey.Index
		ct []byte
	}
	checked := make([]kv, 0, len(entries))
	for i, e := range entries {
		if e.GetHospital() != caller {
			return 0, fmt.Errorf("%w: entry %d is for hospital %q, caller is %q", ErrForbidden, i, e.GetHospital(), caller)
		}
		ix, err := checkIndex(e.GetIndex())
		if err != nil {
			return 0, fmt.Errorf("entry %d: %w", i, err)
		}
		ct := e.GetCiphertext()
		if n := len(ct); n < recordkey.Overhead+recordkey.PadBlock || n > recordkey.Overhead+recordkey.MaxBundle+recordkey.PadBlock {
			return 0, fmt.Errorf("%w: entry %d ciphertext is %d bytes", ErrInvalid, i, n)
		}
		checked = append(checked, kv{ix, slices.Clone(ct)})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.bundles[caller]
	if m == nil {
		m = map[recordkey.Index][]byte{}
		s.bundles[caller] = m
	}
	for _, e := range checked {
		m[e.ix] = e.ct
	}
	return len(checked), nil
}

// GetBundle returns the ciphertext at (hospital, index).
func (s *Store) GetBundle(hospital string, index []byte) ([]byte, error) {
	ix, err := checkIndex(index)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ct, ok := s.bundles[hospital][ix]
	if !ok {
		return nil, ErrNotFound
	}
	return slices.Clone(ct), nil
}

// Post queues a sealed grant from caller to a terminal.
func (s *Store) Post(caller, to string, sealed []byte) error {
	if to == "" || len(to) > maxName {
		return fmt.Errorf("%w: recipient name of %d bytes", ErrInvalid, len(to))
	}
	if len(sealed) == 0 || len(sealed) > MaxSealedGrant {
		return fmt.Errorf("%w: sealed grant of %d bytes", ErrInvalid, len(sealed))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.mail[to]) >= MaxMailbox {
		return fmt.Errorf("%w: %q", ErrMailboxFull, to)
	}
	s.mail[to] = append(s.mail[to], Mail{From: caller, To: to, Sealed: slices.Clone(sealed)})
	return nil
}

// Take removes and returns caller's pending mail.
func (s *Store) Take(caller string) []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.mail[caller]
	delete(s.mail, caller)
	return m
}

// Put implements the Cloud service.
func (s *Store) Put(ctx context.Context, req *identitypb.PutRequest) (*identitypb.PutResponse, error) {
	caller, err := authn.PeerName(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	n, err := s.PutEntries(caller, req.GetEntries())
	if err != nil {
		return nil, toStatus(err)
	}
	return &identitypb.PutResponse{Stored: uint32(n)}, nil
}

// Get implements the Cloud service.
func (s *Store) Get(ctx context.Context, req *identitypb.GetRequest) (*identitypb.GetResponse, error) {
	if _, err := authn.PeerName(ctx); err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	ct, err := s.GetBundle(req.GetHospital(), req.GetIndex())
	if err != nil {
		return nil, toStatus(err)
	}
	return &identitypb.GetResponse{Ciphertext: ct}, nil
}

// Send implements the Cloud service.
func (s *Store) Send(ctx context.Context, req *identitypb.SendRequest) (*identitypb.SendResponse, error) {
	caller, err := authn.PeerName(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	if err := s.Post(caller, req.GetTo(), req.GetSealed()); err != nil {
		return nil, toStatus(err)
	}
	return &identitypb.SendResponse{}, nil
}

// Receive implements the Cloud service.
func (s *Store) Receive(ctx context.Context, _ *identitypb.ReceiveRequest) (*identitypb.ReceiveResponse, error) {
	caller, err := authn.PeerName(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	var out []*identitypb.Mail
	for _, m := range s.Take(caller) {
		out = append(out, &identitypb.Mail{From: m.From, Sealed: m.Sealed})
	}
	return &identitypb.ReceiveResponse{Mail: out}, nil
}

func toStatus(err error) error {
	switch {
	case errors.Is(err, ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrForbidden):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ErrMailboxFull):
		return status.Error(codes.ResourceExhausted, err.Error())
	}
	return status.Error(codes.Internal, "cloud: internal error")
}
