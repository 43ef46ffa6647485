// Package cloud is the platform's cloud store (the seed's 平台云虚拟服务器):
// it keeps the relays' ciphertexts by (hospital, index) with each bundle's
// access public key, the doctors' grants, and a mailbox of sealed grants
// between terminals, all in a SQLite file (modernc.org/sqlite, pure Go). It
// holds no key that opens a bundle and never decrypts.
//
// It serves a bundle only to the patient, who signs the fetch with the
// bundle's access key (derived from the OPRF output, so only a terminal
// that derived the key can), or to a doctor named in an unrevoked,
// unexpired grant that the patient signed with that key (or that the
// grantee of a delegable grant passed on). Revoking a grant revokes the
// grants passed on from it.
//
// What the cloud learns: per hospital, how many bundles and their padded
// sizes; which indexes terminals fetch and when; which terminal holds a
// grant for which index, until when, and who passed it on; who sends sealed
// grants to whom, and their sizes. An index reveals nothing about an
// identity without the hospital's OPRF key and the patient's enrolment
// credential.
package cloud

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"

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
	// DefaultWindow is how far a signed fetch or revocation's time may be
	// from the cloud's clock.
	DefaultWindow = 2 * time.Minute
	// MaxGrantLife bounds a grant's lifetime.
	MaxGrantLife = 366 * 24 * time.Hour
)

// Errors callers branch on. Check with errors.Is.
var (
	// ErrInvalid reports a malformed request; it is not retried.
	ErrInvalid = errors.New("cloud: invalid request")
	// ErrForbidden reports a caller not allowed to do this: not a relay, a
	// signature that does not verify under the bundle's access key, a grant
	// to someone else.
	ErrForbidden = errors.New("cloud: forbidden")
	// ErrRevoked reports a grant that was revoked or has expired, or one
	// passed on from such a grant.
	ErrRevoked = errors.New("cloud: grant revoked or expired")
	// ErrNotFound reports no bundle at an index, or no such grant.
	ErrNotFound = errors.New("cloud: not found")
	// ErrMailboxFull reports a recipient with too much pending mail.
	ErrMailboxFull = errors.New("cloud: mailbox full")
)

// Config configures a [Store].
type Config struct {
	// Hospitals lists the relays allowed to Put; a relay's certificate name
	// is its hospital's name, and it may only store entries for it.
	Hospitals []string
	// Path is the SQLite file; it is created if absent, and its bundles,
	// grants and mail survive a restart. Required.
	Path   string
	Window time.Duration    // if zero, DefaultWindow
	Now    func() time.Time // if nil, time.Now
}

// Item is one stored bundle.
type Item struct {
	Hospital   string
	Index      recordkey.Index
	Ciphertext []byte
	AccessKey  []byte
}

// Mail is one sealed grant waiting in a mailbox.
type Mail struct {
	From, To string
	Sealed   []byte
}

const schema = `
CREATE TABLE IF NOT EXISTS bundles (
	hospital   TEXT NOT NULL,
	idx        BLOB NOT NULL,
	ciphertext BLOB NOT NULL,
	access_key BLOB NOT NULL,
	PRIMARY KEY (hospital, idx)
);
CREATE TABLE IF NOT EXISTS grants (
	id        BLOB PRIMARY KEY,
	hospital  TEXT NOT NULL,
	idx       BLOB NOT NULL,
	grantee   TEXT NOT NULL,
	granter   TEXT NOT NULL,
	parent    BLOB REFERENCES grants(id),
	expires   INTEGER NOT NULL,
	delegable INTEGER NOT NULL,
	revoked   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS mail (
	seq       INTEGER PRIMARY KEY AUTOINCREMENT,
	sender    TEXT NOT NULL,
	recipient TEXT NOT NULL,
	sealed    BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS mail_recipient ON mail(recipient);
`

// Store is the cloud. It is safe for concurrent use.
type Store struct {
	identitypb.UnimplementedCloudServer
	hospitals map[string]bool
	db        *sql.DB
	window    time.Duration
	now       func() time.Time
}

var _ identitypb.CloudServer = (*Store)(nil)

// New opens the store's database (creating it if absent).
func New(cfg Config) (*Store, error) {
	if len(cfg.Hospitals) == 0 {
		return nil, errors.New("cloud: no hospitals configured")
	}
	if cfg.Path == "" || strings.ContainsAny(cfg.Path, "?#") {
		return nil, fmt.Errorf("cloud: unsupported database file name %q", cfg.Path)
	}
	h := map[string]bool{}
	for _, name := range cfg.Hospitals {
		if err := recordkey.CheckHospital(name); err != nil {
			return nil, fmt.Errorf("cloud: %w", err)
		}
		h[name] = true
	}
	db, err := sql.Open("sqlite", "file:"+cfg.Path+"?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)")
	if err != nil {
		return nil, fmt.Errorf("cloud: opening %s: %w", cfg.Path, err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("cloud: %s: %w", cfg.Path, err)
	}
	s := &Store{hospitals: h, db: db, window: cfg.Window, now: cfg.Now}
	if s.window <= 0 {
		s.window = DefaultWindow
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Register registers the Cloud service on g.
func (s *Store) Register(g *grpc.Server) { identitypb.RegisterCloudServer(g, s) }

// Snapshot returns a copy of everything the cloud holds, for inspection.
func (s *Store) Snapshot(ctx context.Context) (items []Item, mail []Mail, err error) {
	rows, err := s.db.QueryContext(ctx, `SELECT hospital, idx, ciphertext, access_key FROM bundles ORDER BY hospital, idx`)
	if err != nil {
		return nil, nil, fmt.Errorf("cloud: %w", err)
	}
	for rows.Next() {
		var it Item
		var ix []byte
		if err := rows.Scan(&it.Hospital, &ix, &it.Ciphertext, &it.AccessKey); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("cloud: %w", err)
		}
		copy(it.Index[:], ix)
		items = append(items, it)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, nil, fmt.Errorf("cloud: %w", err)
	}
	mrows, err := s.db.QueryContext(ctx, `SELECT sender, recipient, sealed FROM mail ORDER BY seq`)
	if err != nil {
		return nil, nil, fmt.Errorf("cloud: %w", err)
	}
	defer mrows.Close()
	for mrows.Next() {
		var m Mail
		if err := mrows.Scan(&m.From, &m.To, &m.Sealed); err != nil {
			return nil, nil, fmt.Errorf("cloud: %w", err)
		}
		mail = append(mail, m)
	}
	return items, mail, mrows.Err()
}

func checkIndex(b []byte) (recordkey.Index, error) {
	var ix recordkey.Index
	if len(b) != recordkey.IndexSize {
		return ix, fmt.Errorf("%w: index is %d bytes, want %d", ErrInvalid, len(b), recordkey.IndexSize)
	}
	copy(ix[:], b)
	return ix, nil
}

func checkGrantID(b []byte) (recordkey.GrantID, error) {
	var id recordkey.GrantID
	if len(b) != recordkey.GrantIDSize {
		return id, fmt.Errorf("%w: grant id is %d bytes, want %d", ErrInvalid, len(b), recordkey.GrantIDSize)
	}
	copy(id[:], b)
	return id, nil
}

func checkName(what, n string) error {
	if n == "" || len(n) > maxName {
		return fmt.Errorf("%w: %s name of %d bytes", ErrInvalid, what, len(n))
	}
	return nil
}

// PutEntries stores entries on behalf of caller (a relay's certificate
// name), in one transaction: all or none.
func (s *Store) PutEntries(ctx context.Context, caller string, entries []*identitypb.Entry) (int, error) {
	if !s.hospitals[caller] {
		return 0, fmt.Errorf("%w: %q is not a hospital relay", ErrForbidden, caller)
	}
	if len(entries) == 0 || len(entries) > MaxEntriesPerPut {
		return 0, fmt.Errorf("%w: %d entries, want 1 to %d", ErrInvalid, len(entries), MaxEntriesPerPut)
	}
	for i, e := range entries {
		if e.GetHospital() != caller {
			return 0, fmt.Errorf("%w: entry %d is for hospital %q, caller is %q", ErrForbidden, i, e.GetHospital(), caller)
		}
		if _, err := checkIndex(e.GetIndex()); err != nil {
			return 0, fmt.Errorf("entry %d: %w", i, err)
		}
		if n := len(e.GetCiphertext()); n < recordkey.Overhead+recordkey.PadBlock || n > recordkey.Overhead+recordkey.MaxBundle+recordkey.PadBlock {
			return 0, fmt.Errorf("%w: entry %d ciphertext is %d bytes", ErrInvalid, i, n)
		}
		if len(e.GetAccessKey()) != recordkey.AccessKeySize {
			return 0, fmt.Errorf("%w: entry %d access key is %d bytes", ErrInvalid, i, len(e.GetAccessKey()))
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("cloud: %w", err)
	}
	defer tx.Rollback()
	for _, e := range entries {
		if _, err := tx.ExecContext(ctx, `INSERT INTO bundles(hospital, idx, ciphertext, access_key) VALUES (?, ?, ?, ?)
			ON CONFLICT(hospital, idx) DO UPDATE SET ciphertext = excluded.ciphertext, access_key = excluded.access_key`,
			caller, e.GetIndex(), e.GetCiphertext(), e.GetAccessKey()); err != nil {
			return 0, fmt.Errorf("cloud: storing: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("cloud: %w", err)
	}
	return len(entries), nil
}

func (s *Store) bundle(ctx context.Context, hospital string, ix recordkey.Index) (ct, access []byte, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT ciphertext, access_key FROM bundles WHERE hospital = ? AND idx = ?`, hospital, ix[:]).Scan(&ct, &access)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("cloud: %w", err)
	}
	return ct, access, nil
}

func (s *Store) fresh(unix int64) error {
	d := s.now().Sub(time.Unix(unix, 0))
	if d > s.window || d < -s.window {
		return fmt.Errorf("%w: signed time is %v away from the cloud's clock", ErrForbidden, d.Round(time.Second))
	}
	return nil
}

// grant is a stored grant.
type grant struct {
	id                recordkey.GrantID
	hospital          string
	ix                recordkey.Index
	grantee, granter  string
	parent            []byte
	expires           int64
	delegable, revoke bool
}

func (s *Store) grant(ctx context.Context, id []byte) (*grant, error) {
	g := &grant{}
	var ix []byte
	err := s.db.QueryRowContext(ctx, `SELECT id, hospital, idx, grantee, granter, parent, expires, delegable, revoked FROM grants WHERE id = ?`, id).
		Scan(&id, &g.hospital, &ix, &g.grantee, &g.granter, &g.parent, &g.expires, &g.delegable, &g.revoke)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: grant", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("cloud: %w", err)
	}
	copy(g.id[:], id)
	copy(g.ix[:], ix)
	return g, nil
}

// active checks g and every grant it was passed on from.
func (s *Store) active(ctx context.Context, g *grant) error {
	now := s.now().Unix()
	for depth := 0; ; depth++ {
		if g.revoke {
			return fmt.Errorf("%w: revoked", ErrRevoked)
		}
		if g.expires <= now {
			return fmt.Errorf("%w: expired", ErrRevoked)
		}
		if g.parent == nil {
			return nil
		}
		if depth > 8 {
			return fmt.Errorf("%w: grant chain too long", ErrForbidden)
		}
		p, err := s.grant(ctx, g.parent)
		if err != nil {
			return err
		}
		g = p
	}
}

// Fetch returns the ciphertext req asks for if caller may read it: the
// patient with a fresh signature by the bundle's access key, or the
// grantee of an active grant for the bundle.
func (s *Store) Fetch(ctx context.Context, caller string, req *identitypb.GetRequest) ([]byte, error) {
	ix, err := checkIndex(req.GetIndex())
	if err != nil {
		return nil, err
	}
	ct, access, err := s.bundle(ctx, req.GetHospital(), ix)
	if err != nil {
		return nil, err
	}
	if len(req.GetGrantId()) > 0 {
		if len(req.GetSignature()) > 0 {
			return nil, fmt.Errorf("%w: both a grant and a signature", ErrInvalid)
		}
		id, err := checkGrantID(req.GetGrantId())
		if err != nil {
			return nil, err
		}
		g, err := s.grant(ctx, id[:])
		if err != nil {
			return nil, err
		}
		if g.grantee != caller || g.hospital != req.GetHospital() || g.ix != ix {
			return nil, fmt.Errorf("%w: the grant is not for this caller and bundle", ErrForbidden)
		}
		if err := s.active(ctx, g); err != nil {
			return nil, err
		}
		return ct, nil
	}
	if err := s.fresh(req.GetTime()); err != nil {
		return nil, err
	}
	if !ed25519.Verify(access, recordkey.FetchMessage(caller, req.GetHospital(), ix, req.GetTime()), req.GetSignature()) {
		return nil, fmt.Errorf("%w: the fetch is not signed by the bundle's access key", ErrForbidden)
	}
	return ct, nil
}

// AddPermit stores a grant the patient signed with the bundle's access key.
func (s *Store) AddPermit(ctx context.Context, caller string, req *identitypb.PermitRequest) error {
	id, err := checkGrantID(req.GetId())
	if err != nil {
		return err
	}
	ix, err := checkIndex(req.GetIndex())
	if err != nil {
		return err
	}
	if err := checkName("grantee", req.GetGrantee()); err != nil {
		return err
	}
	now := s.now()
	if exp := time.Unix(req.GetExpires(), 0); !exp.After(now) || exp.After(now.Add(MaxGrantLife)) {
		return fmt.Errorf("%w: grant expiry outside (now, now + %v]", ErrInvalid, MaxGrantLife)
	}
	_, access, err := s.bundle(ctx, req.GetHospital(), ix)
	if err != nil {
		return err
	}
	p := recordkey.Permit{ID: id, Hospital: req.GetHospital(), Index: ix, Grantee: req.GetGrantee(), Expires: req.GetExpires(), Delegable: req.GetDelegable()}
	if !ed25519.Verify(access, p.Message(), req.GetSignature()) {
		return fmt.Errorf("%w: the grant is not signed by the bundle's access key", ErrForbidden)
	}
	return s.insertGrant(ctx, &grant{id: id, hospital: p.Hospital, ix: ix, grantee: p.Grantee, granter: caller, expires: p.Expires, delegable: p.Delegable})
}

func (s *Store) insertGrant(ctx context.Context, g *grant) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO grants(id, hospital, idx, grantee, granter, parent, expires, delegable) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		g.id[:], g.hospital, g.ix[:], g.grantee, g.granter, g.parent, g.expires, g.delegable)
	if err != nil {
		var n int
		if s.db.QueryRowContext(ctx, `SELECT count(*) FROM grants WHERE id = ?`, g.id[:]).Scan(&n) == nil && n > 0 {
			return fmt.Errorf("%w: grant id taken", ErrInvalid)
		}
		return fmt.Errorf("cloud: storing grant: %w", err)
	}
	return nil
}

// PassOn lets caller, the grantee of an active delegable grant, pass it
// on to a colleague, no longer than the grant runs. The new grant cannot be
// passed on again.
func (s *Store) PassOn(ctx context.Context, caller string, req *identitypb.DelegateRequest) error {
	parentID, err := checkGrantID(req.GetParentId())
	if err != nil {
		return err
	}
	id, err := checkGrantID(req.GetId())
	if err != nil {
		return err
	}
	if err := checkName("grantee", req.GetGrantee()); err != nil {
		return err
	}
	parent, err := s.grant(ctx, parentID[:])
	if err != nil {
		return err
	}
	if parent.grantee != caller {
		return fmt.Errorf("%w: the grant is not the caller's", ErrForbidden)
	}
	if !parent.delegable {
		return fmt.Errorf("%w: the grant may not be passed on", ErrForbidden)
	}
	if err := s.active(ctx, parent); err != nil {
		return err
	}
	if req.GetExpires() <= s.now().Unix() || req.GetExpires() > parent.expires {
		return fmt.Errorf("%w: expiry must be in the future and within the grant's", ErrInvalid)
	}
	return s.insertGrant(ctx, &grant{id: id, hospital: parent.hospital, ix: parent.ix, grantee: req.GetGrantee(), granter: caller,
		parent: parentID[:], expires: req.GetExpires()})
}

// RevokeGrant revokes a grant: the patient signs the revocation with the
// bundle's access key; a doctor who passed a grant on may revoke that one
// without a signature. Grants passed on from a revoked grant stop working
// with it.
func (s *Store) RevokeGrant(ctx context.Context, caller string, req *identitypb.RevokeRequest) error {
	id, err := checkGrantID(req.GetId())
	if err != nil {
		return err
	}
	g, err := s.grant(ctx, id[:])
	if err != nil {
		return err
	}
	if !(g.parent != nil && g.granter == caller) {
		if err := s.fresh(req.GetTime()); err != nil {
			return err
		}
		_, access, err := s.bundle(ctx, g.hospital, g.ix)
		if err != nil {
			return err
		}
		if !ed25519.Verify(access, recordkey.RevokeMessage(id, req.GetTime()), req.GetSignature()) {
			return fmt.Errorf("%w: the revocation is not signed by the bundle's access key", ErrForbidden)
		}
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE grants SET revoked = 1 WHERE id = ?`, id[:]); err != nil {
		return fmt.Errorf("cloud: %w", err)
	}
	return nil
}

// Post queues a sealed grant from caller to a terminal.
func (s *Store) Post(ctx context.Context, caller, to string, sealed []byte) error {
	if err := checkName("recipient", to); err != nil {
		return err
	}
	if len(sealed) == 0 || len(sealed) > MaxSealedGrant {
		return fmt.Errorf("%w: sealed grant of %d bytes", ErrInvalid, len(sealed))
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cloud: %w", err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM mail WHERE recipient = ?`, to).Scan(&n); err != nil {
		return fmt.Errorf("cloud: %w", err)
	}
	if n >= MaxMailbox {
		return fmt.Errorf("%w: %q", ErrMailboxFull, to)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO mail(sender, recipient, sealed) VALUES (?, ?, ?)`, caller, to, sealed); err != nil {
		return fmt.Errorf("cloud: %w", err)
	}
	return tx.Commit()
}

// Take removes and returns caller's pending mail.
func (s *Store) Take(ctx context.Context, caller string) ([]Mail, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("cloud: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT sender, sealed FROM mail WHERE recipient = ? ORDER BY seq`, caller)
	if err != nil {
		return nil, fmt.Errorf("cloud: %w", err)
	}
	var out []Mail
	for rows.Next() {
		m := Mail{To: caller}
		if err := rows.Scan(&m.From, &m.Sealed); err != nil {
			rows.Close()
			return nil, fmt.Errorf("cloud: %w", err)
		}
		out = append(out, m)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("cloud: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM mail WHERE recipient = ?`, caller); err != nil {
		return nil, fmt.Errorf("cloud: %w", err)
	}
	return out, tx.Commit()
}

func caller(ctx context.Context) (string, error) {
	name, err := authn.PeerName(ctx)
	if err != nil {
		return "", status.Error(codes.Unauthenticated, err.Error())
	}
	return name, nil
}

// Put implements the Cloud service.
func (s *Store) Put(ctx context.Context, req *identitypb.PutRequest) (*identitypb.PutResponse, error) {
	who, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	n, err := s.PutEntries(ctx, who, req.GetEntries())
	if err != nil {
		return nil, toStatus(err)
	}
	return &identitypb.PutResponse{Stored: uint32(n)}, nil
}

// Get implements the Cloud service.
func (s *Store) Get(ctx context.Context, req *identitypb.GetRequest) (*identitypb.GetResponse, error) {
	who, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	ct, err := s.Fetch(ctx, who, req)
	if err != nil {
		return nil, toStatus(err)
	}
	return &identitypb.GetResponse{Ciphertext: ct}, nil
}

// Permit implements the Cloud service.
func (s *Store) Permit(ctx context.Context, req *identitypb.PermitRequest) (*identitypb.PermitResponse, error) {
	who, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.AddPermit(ctx, who, req); err != nil {
		return nil, toStatus(err)
	}
	return &identitypb.PermitResponse{}, nil
}

// Delegate implements the Cloud service.
func (s *Store) Delegate(ctx context.Context, req *identitypb.DelegateRequest) (*identitypb.DelegateResponse, error) {
	who, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.PassOn(ctx, who, req); err != nil {
		return nil, toStatus(err)
	}
	return &identitypb.DelegateResponse{}, nil
}

// Revoke implements the Cloud service.
func (s *Store) Revoke(ctx context.Context, req *identitypb.RevokeRequest) (*identitypb.RevokeResponse, error) {
	who, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.RevokeGrant(ctx, who, req); err != nil {
		return nil, toStatus(err)
	}
	return &identitypb.RevokeResponse{}, nil
}

// Send implements the Cloud service.
func (s *Store) Send(ctx context.Context, req *identitypb.SendRequest) (*identitypb.SendResponse, error) {
	who, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.Post(ctx, who, req.GetTo(), req.GetSealed()); err != nil {
		return nil, toStatus(err)
	}
	return &identitypb.SendResponse{}, nil
}

// Receive implements the Cloud service.
func (s *Store) Receive(ctx context.Context, _ *identitypb.ReceiveRequest) (*identitypb.ReceiveResponse, error) {
	who, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	mail, err := s.Take(ctx, who)
	if err != nil {
		return nil, toStatus(err)
	}
	var out []*identitypb.Mail
	for _, m := range mail {
		out = append(out, &identitypb.Mail{From: m.From, Sealed: m.Sealed})
	}
	return &identitypb.ReceiveResponse{Mail: out}, nil
}

func toStatus(err error) error {
	switch {
	case errors.Is(err, ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrForbidden), errors.Is(err, ErrRevoked):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ErrMailboxFull):
		return status.Error(codes.ResourceExhausted, err.Error())
	}
	return status.Error(codes.Internal, "cloud: internal error")
}
