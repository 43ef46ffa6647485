package upload

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/protobuf/proto"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/mpsi-dev/mpsi/examples/ecgupload/ecgpb"
)

// Files of a state directory.
const (
	StateDBName  = "state.db"  // SQLite: key epoch, jobs, sealed chunks, replay cache
	StateKeyName = "state.key" // 32 random bytes, mode 0600: seals data keys at rest
)

const labelStateKey = "mpsi/ecgupload/v1/state-data-key"

const stateSchema = `
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
	id         BLOB PRIMARY KEY,
	request    BLOB NOT NULL,    -- canonical request, credential zeroed
	suite      INTEGER NOT NULL,
	data_key   BLOB NOT NULL,    -- sealed under the state key
	urgency    INTEGER NOT NULL, -- as the server assigned it
	link       INTEGER NOT NULL,
	created    INTEGER NOT NULL, -- Unix ns
	state      INTEGER NOT NULL, -- 0 open, 1 stored, 2 failed
	receipt    BLOB,
	failure    TEXT
);
CREATE TABLE IF NOT EXISTS chunks (
	job    BLOB NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
	idx    INTEGER NOT NULL,
	sealed BLOB NOT NULL,
	PRIMARY KEY (job, idx)
);
CREATE TABLE IF NOT EXISTS replay (nonce BLOB PRIMARY KEY, expires INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS replay_expires ON replay(expires);
`

// Job states in the jobs table.
const (
	jobOpen   = 0
	jobStored = 1
	jobFailed = 2
)

// state is the server's durable state: a SQLite database (modernc.org/sqlite,
// pure Go) and the key that seals data keys at rest. With no directory it
// is an in-memory database, which does not survive the process.
type state struct {
	db   *sql.DB
	seal cipher.AEAD
}

func openState(dir string) (*state, error) {
	var dsn string
	key := make([]byte, 32)
	if dir == "" {
		dsn = "file:ecgupload-state?mode=memory&cache=private"
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
	} else {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("upload: state: %w", err)
		}
		k, err := loadOrCreateKey(filepath.Join(dir, StateKeyName))
		if err != nil {
			return nil, err
		}
		key = k
		dsn = "file:" + filepath.Join(dir, StateDBName) + "?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"
	}
	block, err := aes.NewCipher(key)
	clear(key)
	if err != nil {
		return nil, err
	}
	seal, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("upload: state: %w", err)
	}
	db.SetMaxOpenConns(1) // one connection: also keeps an in-memory database alive
	if _, err := db.Exec(stateSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("upload: state: %w", err)
	}
	if dir == "" {
		if _, err := db.Exec(`PRAGMA foreign_keys = ON`); err != nil {
			db.Close()
			return nil, err
		}
	}
	return &state{db: db, seal: seal}, nil
}

// loadOrCreateKey reads a 32-byte key file, or creates one (mode 0600).
func loadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) != 32 {
			return nil, fmt.Errorf("upload: state key %s is %d bytes, want 32", path, len(b))
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("upload: state key: %w", err)
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("upload: state key: %w", err)
	}
	_, werr := f.Write(b)
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return nil, fmt.Errorf("upload: state key: %w", err)
	}
	return b, nil
}

func (st *state) close() error { return st.db.Close() }

// nextEpoch returns the epoch after the last one used and records it, so
// that a restarted server never reuses an epoch number.
func (st *state) nextEpoch(ctx context.Context) (uint64, error) {
	var e int64
	err := st.db.QueryRowContext(ctx, `INSERT INTO meta(name, value) VALUES ('epoch', 1)
		ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value`).Scan(&e)
	if err != nil {
		return 0, fmt.Errorf("upload: state: epoch: %w", err)
	}
	return uint64(e), nil
}

// checkReplay records nonce until expires, or reports that it was seen
// (and not yet expired). It refuses with ErrBusy when max live entries are
// held.
func (st *state) checkReplay(ctx context.Context, nonce [JobIDSize]byte, now, expires time.Time, max int) (seen bool, err error) {
	tx, err := st.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("upload: state: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM replay WHERE expires < ?`, now.UnixNano()); err != nil {
		return false, fmt.Errorf("upload: state: %w", err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM replay WHERE nonce = ?`, nonce[:]).Scan(&n); err != nil {
		return false, fmt.Errorf("upload: state: %w", err)
	}
	if n > 0 {
		return true, nil
	}
	var live int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM replay`).Scan(&live); err != nil {
		return false, fmt.Errorf("upload: state: %w", err)
	}
	if live >= max {
		return false, fmt.Errorf("%w: replay cache full", ErrBusy)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO replay(nonce, expires) VALUES (?, ?)`, nonce[:], expires.UnixNano()); err != nil {
		return false, fmt.Errorf("upload: state: %w", err)
	}
	return false, tx.Commit()
}

func (st *state) sealKey(id [JobIDSize]byte, dataKey []byte) []byte {
	n := make([]byte, st.seal.NonceSize())
	if _, err := rand.Read(n); err != nil {
		panic("upload: crypto/rand failed: " + err.Error())
	}
	return st.seal.Seal(n, n, dataKey, append([]byte(labelStateKey), id[:]...))
}

func (st *state) openKey(id [JobIDSize]byte, sealed []byte) ([]byte, error) {
	ns := st.seal.NonceSize()
	if len(sealed) < ns {
		return nil, fmt.Errorf("%w: stored data key", ErrDecrypt)
	}
	k, err := st.seal.Open(nil, sealed[:ns], sealed[ns:], append([]byte(labelStateKey), id[:]...))
	if err != nil {
		return nil, fmt.Errorf("%w: stored data key (another state key?)", ErrDecrypt)
	}
	return k, nil
}

// addJob records a new stream job with its data key sealed at rest.
func (st *state) addJob(ctx context.Context, j *job, dataKey []byte) error {
	enc, err := encodeStoredRequest(j.req)
	if err != nil {
		return err
	}
	_, err = st.db.ExecContext(ctx, `INSERT INTO jobs(id, request, suite, data_key, urgency, link, created, state) VALUES (?, ?, ?, ?, ?, ?, ?, 0)`,
		j.id[:], enc, int(j.suite), st.sealKey(j.id, dataKey), j.urgency, int(j.link), j.created.UnixNano())
	if err != nil {
		return fmt.Errorf("upload: state: recording job: %w", err)
	}
	return nil
}

func encodeStoredRequest(r *Request) ([]byte, error) {
	c := *r
	c.Credential = make([]byte, MinCredentialSize) // the real credential is never stored
	return c.MarshalBinary()
}

// addChunk stores a sealed chunk; it reports false if the chunk was
// already stored.
func (st *state) addChunk(ctx context.Context, id [JobIDSize]byte, idx uint32, sealed []byte) (bool, error) {
	res, err := st.db.ExecContext(ctx, `INSERT INTO chunks(job, idx, sealed) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, id[:], int64(idx), sealed)
	if err != nil {
		return false, fmt.Errorf("upload: state: storing chunk: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// chunks calls fn with every stored chunk of a job in index order.
func (st *state) chunks(ctx context.Context, id [JobIDSize]byte, fn func(idx uint32, sealed []byte) error) error {
	rows, err := st.db.QueryContext(ctx, `SELECT idx, sealed FROM chunks WHERE job = ? ORDER BY idx`, id[:])
	if err != nil {
		return fmt.Errorf("upload: state: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var idx int64
		var sealed []byte
		if err := rows.Scan(&idx, &sealed); err != nil {
			return fmt.Errorf("upload: state: %w", err)
		}
		if err := fn(uint32(idx), sealed); err != nil {
			return err
		}
	}
	return rows.Err()
}

// finishJob marks a job stored (with its receipt) or failed, and drops its
// chunks and its data key.
func (st *state) finishJob(ctx context.Context, id [JobIDSize]byte, rc *ecgpb.Receipt, failure error) error {
	tx, err := st.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("upload: state: %w", err)
	}
	defer tx.Rollback()
	if rc != nil {
		b, err := proto.Marshal(rc)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE jobs SET state = 1, receipt = ?, data_key = x'' WHERE id = ?`, b, id[:])
		if err != nil {
			return fmt.Errorf("upload: state: %w", err)
		}
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE jobs SET state = 2, failure = ?, data_key = x'' WHERE id = ?`, failure.Error(), id[:])
		if err != nil {
			return fmt.Errorf("upload: state: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM chunks WHERE job = ?`, id[:]); err != nil {
		return fmt.Errorf("upload: state: %w", err)
	}
	return tx.Commit()
}

// dropJobsBefore deletes jobs created before t (and their chunks), except
// those in keep.
func (st *state) dropJob(ctx context.Context, id [JobIDSize]byte) error {
	_, err := st.db.ExecContext(ctx, `DELETE FROM jobs WHERE id = ?`, id[:])
	if err != nil {
		return fmt.Errorf("upload: state: %w", err)
	}
	return nil
}

// storedJob is a job row read back at start-up.
type storedJob struct {
	req     *Request
	suite   Suite
	aead    cipher.AEAD
	urgency int
	link    LinkType
	created time.Time
	state   int
	receipt *ecgpb.Receipt
	failure string
	have    []uint32
}

// loadJobs reads every job: open ones with their data key and the indexes
// of their stored chunks.
func (st *state) loadJobs(ctx context.Context) ([]storedJob, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT id, request, suite, data_key, urgency, link, created, state, receipt, failure FROM jobs ORDER BY created`)
	if err != nil {
		return nil, fmt.Errorf("upload: state: %w", err)
	}
	var out []storedJob
	for rows.Next() {
		var (
			id, reqEnc, sealedKey, rcb []byte
			suite, urgency, link, st0  int
			created                    int64
			failure                    sql.NullString
		)
		if err := rows.Scan(&id, &reqEnc, &suite, &sealedKey, &urgency, &link, &created, &st0, &rcb, &failure); err != nil {
			rows.Close()
			return nil, fmt.Errorf("upload: state: %w", err)
		}
		req, err := UnmarshalRequest(reqEnc)
		if err != nil || len(id) != JobIDSize || req.JobID != [JobIDSize]byte(id) {
			rows.Close()
			return nil, fmt.Errorf("upload: state: stored job %d: %w", len(out)+1, ErrMalformed)
		}
		req.Credential = nil
		sj := storedJob{req: req, suite: Suite(suite), urgency: urgency, link: LinkType(link), created: time.Unix(0, created), state: st0, failure: failure.String}
		if st0 == jobOpen {
			key, err := st.openKey(req.JobID, sealedKey)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("upload: state: job of %s: %w", req.Record, err)
			}
			sj.aead, err = newAEAD(sj.suite, key)
			clear(key)
			if err != nil {
				rows.Close()
				return nil, err
			}
		}
		if st0 == jobStored {
			sj.receipt = &ecgpb.Receipt{}
			if err := proto.Unmarshal(rcb, sj.receipt); err != nil {
				rows.Close()
				return nil, fmt.Errorf("upload: state: receipt of %s: %w", req.Record, err)
			}
		}
		out = append(out, sj)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("upload: state: %w", err)
	}
	for i := range out {
		if out[i].state != jobOpen {
			continue
		}
		crow, err := st.db.QueryContext(ctx, `SELECT idx FROM chunks WHERE job = ?`, out[i].req.JobID[:])
		if err != nil {
			return nil, fmt.Errorf("upload: state: %w", err)
		}
		for crow.Next() {
			var idx int64
			if err := crow.Scan(&idx); err != nil {
				crow.Close()
				return nil, fmt.Errorf("upload: state: %w", err)
			}
			out[i].have = append(out[i].have, uint32(idx))
		}
		if err := errors.Join(crow.Err(), crow.Close()); err != nil {
			return nil, fmt.Errorf("upload: state: %w", err)
		}
	}
	return out, nil
}
