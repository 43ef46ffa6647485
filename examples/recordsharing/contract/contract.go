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
	AccessKey protocol.Key      // required: the access layer's key at deployment (signature 3); rotations in the ledger replace it
	Authority protocol.Key      // required: the registration authority's key, which approves every registration
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
	ra     protocol.Key
	ledger *ledger.Ledger
	guard  *protocol.ReplayGuard
	now    func() time.Time
	log    *slog.Logger

	mu       sync.Mutex                          // guards the fields below, and orders ledger appends
	access   protocol.Key                        // the access layer's current key; guarded by mu
	users    map[protocol.Key]*user              // every key ever registered, replaced ones included; guarded by mu
	patients map[protocol.PatientID]protocol.Key // patient id -> the patient's current key; guarded by mu
	records  map[protocol.RecordID]*record       // guarded by mu
}

type user struct {
	role     protocol.Role
	patient  protocol.PatientID // patients only
	replaced bool               // the key was rotated out and signs nothing more
}

type record struct {
	owner      protocol.Key
	data       []byte
	authorised map[protocol.Key]bool
}

// New builds the contract's state by replaying every ledger entry.
func New(ctx context.Context, cfg Config) (*Contract, error) {
	if cfg.Key == nil || cfg.AccessKey.IsZero() || cfg.Authority.IsZero() || cfg.Ledger == nil {
		return nil, errors.New("contract: Key, AccessKey, Authority and Ledger are required")
	}
	c := &Contract{
		key:      cfg.Key,
		access:   cfg.AccessKey,
		ra:       cfg.Authority,
		ledger:   cfg.Ledger,
		guard:    protocol.NewReplayGuard(cfg.Window, cfg.MaxNonces),
		now:      cfg.Now,
		log:      cfg.Log,
		users:    make(map[protocol.Key]*user),
		patients: make(map[protocol.PatientID]protocol.Key),
		records:  make(map[protocol.RecordID]*record),
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	err := cfg.Ledger.Scan(ctx, func(e ledger.Entry) error {
		if e.Kind == KindAccessRotation {
			r, err := decodeRotation(e)
			if err != nil {
				return fmt.Errorf("entry %d: %w", e.Seq, err)
			}
			if r.Old != c.access {
				return fmt.Errorf("entry %d: rotation replaces %s, the access key then was %s: %w", e.Seq, r.Old, c.access, protocol.ErrBadSignature)
			}
			c.access = r.New
			return nil
		}
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

// AccessKey returns the access layer key the contract accepts now.
func (c *Contract) AccessKey() protocol.Key {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.access
}

// KindAccessRotation is the ledger entry kind of an access key rotation.
// Request entries use the request type as their kind.
const KindAccessRotation uint8 = 16

func decodeRotation(e ledger.Entry) (*protocol.AccessRotation, error) {
	var m protocol.SignedAccessRotation
	if err := m.UnmarshalBinary(e.Payload); err != nil {
		return nil, err
	}
	return m.Verify()
}

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
// request entry must decode to a signed request whose signature 1 is valid
// under the key in the request (replaced keys included: their signatures
// stay valid for what they signed), and each rotation entry must be signed
// by both its keys. If access is not zero (the access key at deployment),
// the check also follows the rotations and checks every signature 3 for
// the contract key contract under the access key of its time. The check
// keeps state: use a new one for each Verify, which calls it in order.
func CheckEntry(access, contract protocol.Key) func(ledger.Entry) error {
	cur := access
	return func(e ledger.Entry) error {
		if e.Kind == KindAccessRotation {
			r, err := decodeRotation(e)
			if err != nil {
				return err
			}
			if !cur.IsZero() {
				if r.Old != cur {
					return fmt.Errorf("rotation replaces %s, the access key then was %s: %w", r.Old, cur, protocol.ErrBadSignature)
				}
				cur = r.New
			}
			return nil
		}
		req, sr, err := decodeEntry(e)
		if err != nil {
			return err
		}
		if err := protocol.VerifyRequester(req.Requester, sr.Request, sr.Requester); err != nil {
			return err
		}
		if !cur.IsZero() {
			return protocol.VerifyAccess(cur, contract, sr.Request, sr.Requester, sr.Hop)
		}
		return nil
	}
}

// RotateAccess replaces the access layer's key. in must be signed by the
// key the contract accepts now and by the new key, and be fresh. The
// rotation is appended to the ledger; from then on signature 3 must be made
// with the new key, and signature 4 names it as the audience.
func (c *Contract) RotateAccess(ctx context.Context, in protocol.SignedAccessRotation) (seq uint64, err error) {
	r, err := in.Verify()
	if err != nil {
		return 0, fmt.Errorf("contract: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Old != c.access {
		return 0, fmt.Errorf("contract: rotation replaces %s, the access key is %s: %w", r.Old, c.access, protocol.ErrBadSignature)
	}
	if err := c.guard.Check(c.now(), r.Time, r.Nonce); err != nil {
		return 0, fmt.Errorf("contract: %w", err)
	}
	payload, err := in.MarshalBinary()
	if err != nil {
		return 0, fmt.Errorf("contract: %w", err)
	}
	entry, err := c.ledger.Append(ctx, KindAccessRotation, payload)
	if err != nil {
		return 0, fmt.Errorf("contract: %w", err)
	}
	c.access = r.New
	c.log.Info("contract: access layer key replaced; rotation appended to the ledger", "old", r.Old, "new", r.New, "seq", entry.Seq)
	return entry.Seq, nil
}

// Handle runs one request that carries signature 1 and signature 3 (in
// in.Hop) and returns the answer with signature 4.
func (c *Contract) Handle(ctx context.Context, in protocol.SignedRequest) (*protocol.SignedResponse, error) {
	access := c.AccessKey()
	if err := protocol.VerifyAccess(access, c.key.Public(), in.Request, in.Requester, in.Hop); err != nil {
		return nil, fmt.Errorf("contract: %w", err)
	}
	var req protocol.Request
	if err := req.UnmarshalBinary(in.Request); err != nil {
		return nil, fmt.Errorf("contract: %w", err)
	}
	c.log.Info("contract: signature 3 valid", "type", req.Type, "access", access, "sig3", in.Hop)
	if err := protocol.VerifyRequester(req.Requester, in.Request, in.Requester); err != nil {
		return nil, fmt.Errorf("contract: %s request by %s: %w", req.Type, req.Requester, err)
	}
	c.log.Info("contract: signature 1 valid", "type", req.Type, "requester", req.Requester, "sig1", in.Requester)
	if err := c.guard.Check(c.now(), req.Time, req.Nonce); err != nil {
		return nil, fmt.Errorf("contract: %w", err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.access != access {
		return nil, fmt.Errorf("contract: the access key was replaced while the request was checked: %w", protocol.ErrBadSignature)
	}
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
	if req.Type == protocol.TypeRegister {
		if _, ok := c.users[req.Requester]; ok {
			return fmt.Errorf("%w: key %s is registered", protocol.ErrExists, req.Requester)
		}
		if err := protocol.VerifyApproval(c.ra, req.Role, req.Requester, req.Patient, req.Approval); err != nil {
			return fmt.Errorf("%s %s: %w", req.Role, req.Requester, err)
		}
		if _, ok := c.patients[req.Patient]; ok && req.Role == protocol.RolePatient {
			return fmt.Errorf("%w: patient id %s has a registered key", protocol.ErrExists, req.Patient)
		}
		return nil
	}
	// Every other request needs a registered key that was not replaced.
	u, ok := c.users[req.Requester]
	if !ok {
		return fmt.Errorf("%w: %s", protocol.ErrNotRegistered, req.Requester)
	}
	if u.replaced {
		return fmt.Errorf("%w: %s was replaced by its holder", protocol.ErrRetired, req.Requester)
	}
	switch req.Type {
	case protocol.TypeRotate:
		if _, ok := c.users[req.NewKey]; ok {
			return fmt.Errorf("%w: new key %s is registered", protocol.ErrExists, req.NewKey)
		}
		return protocol.VerifyPossession(req.NewKey, req.Requester, req.Approval)
	case protocol.TypeUpload:
		// Seed claim 2: the owner is the registered patient the record
		// names, and signature 1 (already checked under Requester) must be
		// that patient's.
		owner, ok := c.patients[req.Patient]
		if !ok {
			return fmt.Errorf("%w: the record names patient %s, who is not registered", protocol.ErrNotRegistered, req.Patient)
		}
		if owner != req.Requester {
			return fmt.Errorf("%w: the record names patient %s; %s is not that patient's key", protocol.ErrForbidden, req.Patient, req.Requester)
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
		return c.activeDoctor(req.Doctor)
	case protocol.TypeView:
		if req.Requester != r.owner && !r.authorised[req.Requester] {
			return fmt.Errorf("%w: %s is neither owner nor authorised for record %s", protocol.ErrForbidden, req.Requester, req.Record)
		}
		return nil
	}
	return fmt.Errorf("%w: type %s", protocol.ErrMalformed, req.Type)
}

func (c *Contract) activeDoctor(k protocol.Key) error {
	u, ok := c.users[k]
	switch {
	case !ok:
		return fmt.Errorf("%w: %s", protocol.ErrNotRegistered, k)
	case u.role != protocol.RoleDoctor:
		return fmt.Errorf("%w: %s is a %s, not a doctor", protocol.ErrForbidden, k, u.role)
	case u.replaced:
		return fmt.Errorf("%w: doctor key %s was replaced", protocol.ErrRetired, k)
	}
	return nil
}

// apply changes the state for a permitted request.
func (c *Contract) apply(req *protocol.Request) {
	switch req.Type {
	case protocol.TypeRegister:
		c.users[req.Requester] = &user{role: req.Role, patient: req.Patient}
		if req.Role == protocol.RolePatient {
			c.patients[req.Patient] = req.Requester
		}
	case protocol.TypeUpload:
		c.records[req.Record] = &record{owner: req.Requester, data: req.Data, authorised: map[protocol.Key]bool{}}
	case protocol.TypeAuthorize:
		c.records[req.Record].authorised[req.Doctor] = true
	case protocol.TypeRevoke:
		delete(c.records[req.Record].authorised, req.Doctor)
	case protocol.TypeRotate:
		// The new key takes over everything the old one held: the patient
		// id, the records it owns, the authorisations it was given.
		old := c.users[req.Requester]
		old.replaced = true
		c.users[req.NewKey] = &user{role: old.role, patient: old.patient}
		if old.role == protocol.RolePatient {
			c.patients[old.patient] = req.NewKey
		}
		for _, r := range c.records {
			if r.owner == req.Requester {
				r.owner = req.NewKey
			}
			if r.authorised[req.Requester] {
				delete(r.authorised, req.Requester)
				r.authorised[req.NewKey] = true
			}
		}
	}
}
