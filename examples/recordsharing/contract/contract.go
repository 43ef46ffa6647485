package contract

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/mpsi-dev/mpsi/examples/recordsharing/ledger"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/protocol"
)

// Config configures a Contract.
type Config struct {
	Key       *protocol.KeyPair // required: signature 4
	AccessKey protocol.Key      // required: the access layer's key (signature 3)
	Ledger    *ledger.Ledger    // required; it must be made under Key
	Window    time.Duration     // replay window; if zero, protocol.DefaultWindow
	MaxNonces int               // replay cache size; if zero, protocol.DefaultMaxNonces
	Now       func() time.Time  // if nil, time.Now
	Log       *slog.Logger      // if nil, logs are discarded
}

// Contract is the ledger contract. It is safe for concurrent use; requests
// are handled one at a time.
type Contract struct {
	key    *protocol.KeyPair
	access protocol.Key
	ledger *ledger.Ledger
	guard  *protocol.ReplayGuard
	now    func() time.Time
	log    *slog.Logger

	mu      sync.Mutex                     // guards users and records, and orders ledger appends
	users   map[protocol.Key]protocol.Role // guarded by mu
	records map[protocol.RecordID]*record  // guarded by mu
}

type record struct {
	owner      protocol.Key
	data       []byte
	authorised map[protocol.Key]bool
}

// New builds the contract's state by replaying every ledger entry.
func New(ctx context.Context, cfg Config) (*Contract, error) {
	if cfg.Key == nil || cfg.AccessKey.IsZero() || cfg.Ledger == nil {
		return nil, errors.New("contract: Key, AccessKey and Ledger are required")
	}
	c := &Contract{
		key:     cfg.Key,
		access:  cfg.AccessKey,
		ledger:  cfg.Ledger,
		guard:   protocol.NewReplayGuard(cfg.Window, cfg.MaxNonces),
		now:     cfg.Now,
		log:     cfg.Log,
		users:   make(map[protocol.Key]protocol.Role),
		records: make(map[protocol.RecordID]*record),
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	err := cfg.Ledger.Scan(ctx, func(e ledger.Entry) error {
		req, _, err := decodeEntry(e)
		if err != nil {
			return fmt.Errorf("entry %d: %w", e.Seq, err)
		}
		if err := c.permit(req); err != nil {
			return fmt.Errorf("entry %d: %w", e.Seq, err)
		}
		c.apply(req)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("contract: replaying ledger: %w", err)
	}
	return c, nil
}

// Public returns the contract's public key.
func (c *Contract) Public() protocol.Key { return c.key.Public() }

func decodeEntry(e ledger.Entry) (*protocol.Request, *protocol.SignedRequest, error) {
	var sr protocol.SignedRequest
	if err := sr.UnmarshalBinary(e.Payload); err != nil {
		return nil, nil, err
	}
	var req protocol.Request
	if err := req.UnmarshalBinary(sr.Request); err != nil {
		return nil, nil, err
	}
	if uint8(req.Type) != e.Kind {
		return nil, nil, fmt.Errorf("%w: entry kind %d, request type %s", protocol.ErrMalformed, e.Kind, req.Type)
	}
	return &req, &sr, nil
}

// CheckEntry returns a check for ledger.VerifyOptions.CheckEntry: each
// entry must decode to a signed request whose signature 1 is valid and, if
// access is not zero, whose signature 3 is valid for the contract key
// contract.
func CheckEntry(access, contract protocol.Key) func(ledger.Entry) error {
	return func(e ledger.Entry) error {
		req, sr, err := decodeEntry(e)
		if err != nil {
			return err
		}
		if err := protocol.VerifyRequester(req.Requester, sr.Request, sr.Requester); err != nil {
			return err
		}
		if !access.IsZero() {
			return protocol.VerifyAccess(access, contract, sr.Request, sr.Requester, sr.Hop)
		}
		return nil
	}
}

// Handle runs one request that carries signature 1 and signature 3 (in
// in.Hop) and returns the answer with signature 4.
func (c *Contract) Handle(ctx context.Context, in protocol.SignedRequest) (*protocol.SignedResponse, error) {
	if err := protocol.VerifyAccess(c.access, c.key.Public(), in.Request, in.Requester, in.Hop); err != nil {
		return nil, fmt.Errorf("contract: %w", err)
	}
	var req protocol.Request
	if err := req.UnmarshalBinary(in.Request); err != nil {
		return nil, fmt.Errorf("contract: %w", err)
	}
	c.log.Info("contract: signature 3 valid", "type", req.Type, "access", c.access, "sig3", in.Hop)
	if err := protocol.VerifyRequester(req.Requester, in.Request, in.Requester); err != nil {
		return nil, fmt.Errorf("contract: %s request by %s: %w", req.Type, req.Requester, err)
	}
	c.log.Info("contract: signature 1 valid", "type", req.Type, "requester", req.Requester, "sig1", in.Requester)
	if err := c.guard.Check(c.now(), req.Time, req.Nonce); err != nil {
		return nil, fmt.Errorf("contract: %w", err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.permit(&req); err != nil {
		c.log.Info("contract: refused", "type", req.Type, "requester", req.Requester, "record", req.Record, "reason", err)
		return nil, fmt.Errorf("contract: %w", err)
	}
	payload, err := in.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("contract: %w", err)
	}
	entry, err := c.ledger.Append(ctx, uint8(req.Type), payload)
	if err != nil {
		return nil, fmt.Errorf("contract: %w", err)
	}
	c.apply(&req)
	resp := protocol.Response{
		Type:    req.Type,
		Request: protocol.DigestRequest(in.Request),
		Record:  req.Record,
		Seq:     entry.Seq,
		Entry:   protocol.Digest(entry.Hash),
		Time:    c.now().UnixNano(),
	}
	if r := c.records[req.Record]; r != nil {
		resp.Owner = r.owner
		if req.Type == protocol.TypeView {
			resp.Data = r.data
		}
	}
	enc, err := resp.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("contract: %w", err)
	}
	sig4 := protocol.SignContract(c.key, c.access, enc)
	c.log.Info("contract: accepted, ledger entry appended, answer signed (signature 4)",
		"type", req.Type, "record", req.Record, "seq", entry.Seq, "entry", entry.Hash, "data_bytes", len(resp.Data), "sig4", sig4)
	return &protocol.SignedResponse{Response: enc, Hop: sig4}, nil
}

// permit checks req against the state; c.mu is held (or the contract is
// being built).
func (c *Contract) permit(req *protocol.Request) error {
	switch req.Type {
	case protocol.TypeRegister:
		if _, ok := c.users[req.Requester]; ok {
			return fmt.Errorf("%w: key %s is registered", protocol.ErrExists, req.Requester)
		}
		return nil
	case protocol.TypeUpload:
		if err := c.role(req.Requester, protocol.RolePatient); err != nil {
			return err
		}
		if _, ok := c.records[req.Record]; ok {
			return fmt.Errorf("%w: record %s", protocol.ErrExists, req.Record)
		}
		return nil
	}
	r, ok := c.records[req.Record]
	if !ok {
		return fmt.Errorf("%w: %s", protocol.ErrNotFound, req.Record)
	}
	switch req.Type {
	case protocol.TypeAuthorize, protocol.TypeRevoke:
		if req.Requester != r.owner {
			return fmt.Errorf("%w: %s is not the owner of record %s", protocol.ErrForbidden, req.Requester, req.Record)
		}
		if req.Type == protocol.TypeRevoke {
			if !r.authorised[req.Doctor] {
				return fmt.Errorf("%w: doctor %s holds no authorisation for record %s", protocol.ErrNotFound, req.Doctor, req.Record)
			}
			return nil
		}
		return c.role(req.Doctor, protocol.RoleDoctor)
	case protocol.TypeView:
		if req.Requester != r.owner && !r.authorised[req.Requester] {
			return fmt.Errorf("%w: %s is neither owner nor authorised for record %s", protocol.ErrForbidden, req.Requester, req.Record)
		}
		return nil
	}
	return fmt.Errorf("%w: type %s", protocol.ErrMalformed, req.Type)
}

func (c *Contract) role(k protocol.Key, want protocol.Role) error {
	got, ok := c.users[k]
	if !ok {
		return fmt.Errorf("%w: %s", protocol.ErrNotRegistered, k)
	}
	if got != want {
		return fmt.Errorf("%w: %s is a %s, not a %s", protocol.ErrForbidden, k, got, want)
	}
	return nil
}

// apply changes the state for a permitted request.
func (c *Contract) apply(req *protocol.Request) {
	switch req.Type {
	case protocol.TypeRegister:
		c.users[req.Requester] = req.Role
	case protocol.TypeUpload:
		c.records[req.Record] = &record{owner: req.Requester, data: req.Data, authorised: map[protocol.Key]bool{}}
	case protocol.TypeAuthorize:
		c.records[req.Record].authorised[req.Doctor] = true
	case protocol.TypeRevoke:
		delete(c.records[req.Record].authorised, req.Doctor)
	}
}
