package ledger

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/cryptobyte"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// HashSize is the size of an entry hash.
const HashSize = sha256.Size

// MaxPayloadSize bounds one entry's payload.
const MaxPayloadSize = 8 << 20

const (
	labelGenesis    = "mpsi/examples/recordsharing/v1/ledger-genesis"
	labelEntry      = "mpsi/examples/recordsharing/v1/ledger-entry"
	labelCheckpoint = "mpsi/examples/recordsharing/v1/ledger-checkpoint"
)

const schema = `
CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE entries (
	seq     INTEGER PRIMARY KEY,
	kind    INTEGER NOT NULL,
	payload BLOB    NOT NULL,
	prev    BLOB    NOT NULL,
	hash    BLOB    NOT NULL
);
CREATE TABLE checkpoint (
	id        INTEGER PRIMARY KEY CHECK (id = 1),
	size      INTEGER NOT NULL,
	head      BLOB    NOT NULL,
	signature BLOB    NOT NULL
);
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger: entries are append-only'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger: entries are append-only'); END;
`

// Errors. Verify reports problems wrapping one of these.
var (
	// ErrExists reports that Create was given an existing file.
	ErrExists = errors.New("ledger: file already exists")
	// ErrAltered reports an entry whose stored hash does not match its
	// contents.
	ErrAltered = errors.New("ledger: entry altered")
	// ErrBrokenChain reports an entry that does not link to the one before
	// it: entries were reordered or removed.
	ErrBrokenChain = errors.New("ledger: hash chain broken")
	// ErrMissing reports a gap in the sequence numbers.
	ErrMissing = errors.New("ledger: entries missing")
	// ErrCheckpoint reports a missing or badly signed checkpoint, or one
	// that does not match the entries (entries removed at the end).
	ErrCheckpoint = errors.New("ledger: checkpoint does not match")
	// ErrWrongKey reports a ledger made under another contract key than the
	// one expected.
	ErrWrongKey = errors.New("ledger: contract key does not match")
	// ErrBadEntry reports an entry whose payload the caller's check refused.
	ErrBadEntry = errors.New("ledger: entry payload invalid")
)

// Hash is an entry hash.
type Hash [HashSize]byte

// String returns a short hexadecimal form of h.
func (h Hash) String() string { return hex.EncodeToString(h[:6]) }

// Entry is one ledger entry.
type Entry struct {
	Seq     uint64 // 1, 2, ...
	Kind    uint8  // chosen by the caller
	Payload []byte
	Prev    Hash
	Hash    Hash
}

// Genesis returns H_0 for a contract key.
func Genesis(pub ed25519.PublicKey) Hash {
	return Hash(sha256.Sum256(frame(labelGenesis, pub)))
}

// EntryHash returns H_n for the given fields.
func EntryHash(seq uint64, kind uint8, prev Hash, payload []byte) Hash {
	var b cryptobyte.Builder
	b.AddUint64(seq)
	b.AddUint8(kind)
	return Hash(sha256.Sum256(frame(labelEntry, b.BytesOrPanic(), prev[:], payload)))
}

func checkpointMessage(pub ed25519.PublicKey, size uint64, head Hash) []byte {
	var b cryptobyte.Builder
	b.AddUint64(size)
	return frame(labelCheckpoint, pub, b.BytesOrPanic(), head[:])
}

func frame(label string, parts ...[]byte) []byte {
	var b cryptobyte.Builder
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(label)) })
	for _, p := range parts {
		b.AddUint32LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(p) })
	}
	return b.BytesOrPanic() // parts are bounded by MaxPayloadSize
}

// Ledger is an open ledger file. It is safe for concurrent use.
type Ledger struct {
	db   *sql.DB
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey

	mu   sync.Mutex // serialises appends
	size uint64     // guarded by mu
	head Hash       // guarded by mu
}

func openDB(path string, readOnly bool) (*sql.DB, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("ledger: unsupported file name %q", path)
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(5000)"
	if readOnly {
		dsn += "&mode=ro"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("ledger: opening %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// Create makes a new ledger file at path for the contract key priv. It
// refuses an existing file with ErrExists.
func Create(ctx context.Context, path string, priv ed25519.PrivateKey) (*Ledger, error) {
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrExists, path)
	}
	db, err := openDB(path, false)
	if err != nil {
		return nil, err
	}
	l := &Ledger{db: db, priv: priv, pub: priv.Public().(ed25519.PublicKey)}
	l.head = Genesis(l.pub)
	err = l.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, schema); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO meta(name, value) VALUES ('contract_key', ?)`, []byte(l.pub)); err != nil {
			return err
		}
		return l.writeCheckpoint(ctx, tx, 0, l.head)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger: creating %s: %w", path, err)
	}
	return l, nil
}

// Open opens an existing ledger for the contract key priv after verifying
// it in full; any problem Verify finds is returned.
func Open(ctx context.Context, path string, priv ed25519.PrivateKey) (*Ledger, error) {
	pub := priv.Public().(ed25519.PublicKey)
	rep, err := Verify(ctx, path, VerifyOptions{Key: pub})
	if err != nil {
		return nil, err
	}
	db, err := openDB(path, false)
	if err != nil {
		return nil, err
	}
	return &Ledger{db: db, priv: priv, pub: pub, size: rep.Entries, head: rep.Head}, nil
}

// Close closes the database.
func (l *Ledger) Close() error { return l.db.Close() }

// Head returns the number of entries and the head hash.
func (l *Ledger) Head() (uint64, Hash) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size, l.head
}

func (l *Ledger) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (l *Ledger) writeCheckpoint(ctx context.Context, tx *sql.Tx, size uint64, head Hash) error {
	sig := ed25519.Sign(l.priv, checkpointMessage(l.pub, size, head))
	_, err := tx.ExecContext(ctx,
		`INSERT INTO checkpoint(id, size, head, signature) VALUES (1, ?, ?, ?)
		 ON CONFLICT(id) DO UPDATE SET size = excluded.size, head = excluded.head, signature = excluded.signature`,
		int64(size), head[:], sig)
	return err
}

// Append adds an entry and a new signed checkpoint in one transaction.
func (l *Ledger) Append(ctx context.Context, kind uint8, payload []byte) (Entry, error) {
	if len(payload) > MaxPayloadSize {
		return Entry{}, fmt.Errorf("ledger: payload of %d bytes exceeds %d", len(payload), MaxPayloadSize)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := Entry{Seq: l.size + 1, Kind: kind, Payload: payload, Prev: l.head}
	e.Hash = EntryHash(e.Seq, kind, e.Prev, payload)
	err := l.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO entries(seq, kind, payload, prev, hash) VALUES (?, ?, ?, ?, ?)`,
			int64(e.Seq), int64(kind), payload, e.Prev[:], e.Hash[:]); err != nil {
			return err
		}
		return l.writeCheckpoint(ctx, tx, e.Seq, e.Hash)
	})
	if err != nil {
		return Entry{}, fmt.Errorf("ledger: appending entry %d: %w", e.Seq, err)
	}
	l.size, l.head = e.Seq, e.Hash
	return e, nil
}

// Scan calls fn for every entry in order. It does not check hashes; Open
// has done that.
func (l *Ledger) Scan(ctx context.Context, fn func(Entry) error) error {
	return scan(ctx, l.db, func(e Entry, _ error) error { return fn(e) })
}

// scan reads rows in seq order. A row whose columns do not fit an Entry is
// passed with a non-nil decoding error.
func scan(ctx context.Context, db *sql.DB, fn func(Entry, error) error) error {
	rows, err := db.QueryContext(ctx, `SELECT seq, kind, payload, prev, hash FROM entries ORDER BY seq`)
	if err != nil {
		return fmt.Errorf("ledger: reading entries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			seq, kind        int64
			payload, pv, hsh []byte
		)
		if err := rows.Scan(&seq, &kind, &payload, &pv, &hsh); err != nil {
			return fmt.Errorf("ledger: reading entries: %w", err)
		}
		e := Entry{Seq: uint64(seq), Kind: uint8(kind), Payload: payload}
		var derr error
		if seq <= 0 || kind < 0 || kind > 255 || len(pv) != HashSize || len(hsh) != HashSize || len(payload) > MaxPayloadSize {
			derr = fmt.Errorf("%w: entry %d has malformed columns", ErrAltered, seq)
		}
		copy(e.Prev[:], pv)
		copy(e.Hash[:], hsh)
		if err := fn(e, derr); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger: reading entries: %w", err)
	}
	return nil
}

// VerifyOptions tune Verify. The zero value trusts the key stored in the
// file and checks no payloads.
type VerifyOptions struct {
	// Key, if set, is the contract key the ledger must be made under.
	// Without it Verify trusts the key stored in the file, which someone
	// able to rewrite the whole file could replace.
	Key ed25519.PublicKey
	// CheckEntry, if set, is called for every entry whose hash is right and
	// may refuse its payload.
	CheckEntry func(Entry) error
}

// Problem is one finding of Verify.
type Problem struct {
	Seq uint64 // the entry concerned; 0 for the checkpoint or the file
	Err error  // wraps one of the package's sentinel errors
}

// Error names the entry and the problem.
func (p Problem) Error() string {
	if p.Seq == 0 {
		return p.Err.Error()
	}
	return fmt.Sprintf("entry %d: %v", p.Seq, p.Err)
}

// Unwrap returns the underlying error.
func (p Problem) Unwrap() error { return p.Err }

// Report is the result of Verify.
type Report struct {
	Entries     uint64            // rows read
	Head        Hash              // hash of the last row
	ContractKey ed25519.PublicKey // the key stored in the file
	Problems    []Problem
}

// Verify checks the ledger file at path: every entry's hash, every link,
// the sequence numbers and the signed checkpoint. It returns a report and,
// if anything is wrong, an error joining all problems (each wraps a sentinel
// such as ErrAltered). The file is opened read-only.
func Verify(ctx context.Context, path string, opts VerifyOptions) (*Report, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	db, err := openDB(path, true)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rep := &Report{}
	var key []byte
	if err := db.QueryRowContext(ctx, `SELECT value FROM meta WHERE name = 'contract_key'`).Scan(&key); err != nil {
		return nil, fmt.Errorf("ledger: reading contract key: %w", err)
	}
	if len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: stored key is %d bytes", ErrWrongKey, len(key))
	}
	rep.ContractKey = key
	if opts.Key != nil && !opts.Key.Equal(rep.ContractKey) {
		return rep, fmt.Errorf("%w: file has %x", ErrWrongKey, key)
	}
	prev := Genesis(rep.ContractKey)
	want := uint64(1)
	add := func(seq uint64, err error) { rep.Problems = append(rep.Problems, Problem{Seq: seq, Err: err}) }
	err = scan(ctx, db, func(e Entry, derr error) error {
		rep.Entries++
		if derr != nil {
			add(e.Seq, derr)
			prev = e.Hash
			want = e.Seq + 1
			return nil
		}
		if e.Seq != want {
			add(e.Seq, fmt.Errorf("%w: expected entry %d next", ErrMissing, want))
		}
		if e.Prev != prev {
			add(e.Seq, fmt.Errorf("%w: does not link to the entry before it", ErrBrokenChain))
		}
		if EntryHash(e.Seq, e.Kind, e.Prev, e.Payload) != e.Hash {
			add(e.Seq, fmt.Errorf("%w: contents do not match stored hash", ErrAltered))
		} else if opts.CheckEntry != nil {
			if err := opts.CheckEntry(e); err != nil {
				add(e.Seq, fmt.Errorf("%w: %w", ErrBadEntry, err))
			}
		}
		prev = e.Hash
		want = e.Seq + 1
		return ctx.Err()
	})
	if err != nil {
		return rep, err
	}
	rep.Head = prev
	var (
		size      int64
		head, sig []byte
	)
	err = db.QueryRowContext(ctx, `SELECT size, head, signature FROM checkpoint WHERE id = 1`).Scan(&size, &head, &sig)
	switch {
	case err != nil:
		add(0, fmt.Errorf("%w: no checkpoint: %v", ErrCheckpoint, err))
	case size < 0 || len(head) != HashSize ||
		!ed25519.Verify(rep.ContractKey, checkpointMessage(rep.ContractKey, uint64(size), Hash(head)), sig):
		add(0, fmt.Errorf("%w: checkpoint signature invalid", ErrCheckpoint))
	case uint64(size) != rep.Entries || Hash(head) != rep.Head:
		add(0, fmt.Errorf("%w: signed checkpoint has %d entries, head %x; file has %d entries, head %x",
			ErrCheckpoint, size, head[:6], rep.Entries, rep.Head[:6]))
	}
	if len(rep.Problems) > 0 {
		errs := make([]error, len(rep.Problems))
		for i, p := range rep.Problems {
			errs[i] = p
		}
		return rep, errors.Join(errs...)
	}
	return rep, nil
}
