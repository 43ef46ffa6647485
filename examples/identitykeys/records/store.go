package records

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/mpsi-dev/mpsi/examples/identitykeys/identity"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/recordkey"
)

// Errors of the hospital database. Check with errors.Is.
var (
	// ErrWrongHospital reports a database file made for another hospital.
	ErrWrongHospital = errors.New("records: database belongs to another hospital")
	// ErrNotPatient reports an enrolment for an identity with no patient
	// row in this hospital's database.
	ErrNotPatient = errors.New("records: no patient with this identity")
)

const storeSchema = `
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS patients (
	local_id    TEXT PRIMARY KEY,
	identity    BLOB NOT NULL,
	given       TEXT NOT NULL,
	family      TEXT NOT NULL,
	birth_date  TEXT NOT NULL,
	national_id TEXT NOT NULL,
	sex         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS patients_identity ON patients(identity);
CREATE TABLE IF NOT EXISTS conditions (
	local_id    TEXT NOT NULL REFERENCES patients(local_id),
	seq         INTEGER NOT NULL,
	start       TEXT NOT NULL,
	stop        TEXT NOT NULL,
	code        TEXT NOT NULL,
	description TEXT NOT NULL,
	PRIMARY KEY (local_id, seq)
);
CREATE TABLE IF NOT EXISTS enrolments (
	identity   BLOB PRIMARY KEY,
	credential BLOB NOT NULL
);
`

// Store is one hospital's database in a SQLite file (modernc.org/sqlite,
// pure Go): its patients, their conditions, and the enrolment credentials
// it issued. It never leaves the hospital; the relay reads it only while its
// link is on the hospital side. It is safe for concurrent use.
type Store struct {
	Hospital string
	db       *sql.DB
}

// OpenStore opens (creating if needed) the database of hospital at path. A
// file made for another hospital is refused with ErrWrongHospital.
func OpenStore(ctx context.Context, path, hospital string) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("records: unsupported database file name %q", path)
	}
	if err := recordkey.CheckHospital(hospital); err != nil {
		return nil, fmt.Errorf("records: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)")
	if err != nil {
		return nil, fmt.Errorf("records: opening %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	s := &Store{Hospital: hospital, db: db}
	if err := s.init(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("records: %s: %w", path, err)
	}
	return s, nil
}

func (s *Store) init(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, storeSchema); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO meta(name, value) VALUES ('hospital', ?)`, s.Hospital); err != nil {
		return err
	}
	var h string
	if err := s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE name = 'hospital'`).Scan(&h); err != nil {
		return err
	}
	if h != s.Hospital {
		return fmt.Errorf("%w: made for %q, opened for %q", ErrWrongHospital, h, s.Hospital)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Import adds the rows of db (which must be this hospital's) in one
// transaction: all of them or none. A row whose identity does not
// normalise, or whose local id is taken, fails the import; the error names
// the row by its position, never by its contents.
func (s *Store) Import(ctx context.Context, db *DB) error {
	if db.Hospital != s.Hospital {
		return fmt.Errorf("%w: rows of %q imported into %q", ErrWrongHospital, db.Hospital, s.Hospital)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("records: %w", err)
	}
	defer tx.Rollback()
	for i, p := range db.Patients {
		enc, err := identity.Encode(p.Identity)
		if err != nil {
			return fmt.Errorf("records: importing row %d: %w", i+1, err)
		}
		id := p.LocalID
		if id == "" {
			id = fmt.Sprintf("row-%d", i+1)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO patients(local_id, identity, given, family, birth_date, national_id, sex) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			id, enc, p.Identity.Given, p.Identity.Family, p.Identity.BirthDate, p.Identity.NationalID, p.Sex); err != nil {
			return fmt.Errorf("records: importing row %d (local id taken?): %w", i+1, err)
		}
		for k, c := range p.Conditions {
			if _, err := tx.ExecContext(ctx, `INSERT INTO conditions(local_id, seq, start, stop, code, description) VALUES (?, ?, ?, ?, ?, ?)`,
				id, k, c.Start, c.Stop, c.Code, c.Description); err != nil {
				return fmt.Errorf("records: importing condition %d of row %d: %w", k+1, i+1, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("records: %w", err)
	}
	return nil
}

// Enrol registers the patient with identity fields: it issues a fresh
// enrolment credential, stores it (replacing any earlier one, which stops
// working at the next sync) and returns it for the patient's terminal. An
// identity with no patient row fails with ErrNotPatient.
func (s *Store) Enrol(ctx context.Context, fields identity.Fields) (recordkey.Credential, error) {
	enc, err := identity.Encode(fields)
	if err != nil {
		return recordkey.Credential{}, fmt.Errorf("records: enrolment: %w", err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM patients WHERE identity = ?`, enc).Scan(&n); err != nil {
		return recordkey.Credential{}, fmt.Errorf("records: enrolment: %w", err)
	}
	if n == 0 {
		return recordkey.Credential{}, fmt.Errorf("records: enrolment at %s: %w", s.Hospital, ErrNotPatient)
	}
	c, err := recordkey.NewCredential()
	if err != nil {
		return c, err
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO enrolments(identity, credential) VALUES (?, ?)
		ON CONFLICT(identity) DO UPDATE SET credential = excluded.credential`, enc, c[:]); err != nil {
		return recordkey.Credential{}, fmt.Errorf("records: enrolment: %w", err)
	}
	return c, nil
}

// Row is a patient row as the relay reads it: the patient, the identity
// encoding, and the enrolment credential if the patient is enrolled.
type Row struct {
	Patient  Patient
	Identity []byte
	Enrolled bool
	Cred     recordkey.Credential
}

// Rows reads every patient with their conditions and credential, in
// local-id order.
func (s *Store) Rows(ctx context.Context) ([]Row, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT p.local_id, p.identity, p.given, p.family, p.birth_date, p.national_id, p.sex, e.credential
		FROM patients p LEFT JOIN enrolments e ON e.identity = p.identity ORDER BY p.local_id`)
	if err != nil {
		return nil, fmt.Errorf("records: reading patients: %w", err)
	}
	var out []Row
	byID := map[string]int{}
	for rows.Next() {
		var r Row
		var cred []byte
		f := &r.Patient.Identity
		if err := rows.Scan(&r.Patient.LocalID, &r.Identity, &f.Given, &f.Family, &f.BirthDate, &f.NationalID, &r.Patient.Sex, &cred); err != nil {
			rows.Close()
			return nil, fmt.Errorf("records: reading patients: %w", err)
		}
		if cred != nil {
			if len(cred) != recordkey.CredentialSize {
				rows.Close()
				return nil, fmt.Errorf("records: patient row %d: stored credential is %d bytes", len(out)+1, len(cred))
			}
			r.Enrolled = true
			copy(r.Cred[:], cred)
		}
		byID[r.Patient.LocalID] = len(out)
		out = append(out, r)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("records: reading patients: %w", err)
	}
	crows, err := s.db.QueryContext(ctx, `SELECT local_id, start, stop, code, description FROM conditions ORDER BY local_id, seq`)
	if err != nil {
		return nil, fmt.Errorf("records: reading conditions: %w", err)
	}
	defer crows.Close()
	for crows.Next() {
		var id string
		var c Condition
		if err := crows.Scan(&id, &c.Start, &c.Stop, &c.Code, &c.Description); err != nil {
			return nil, fmt.Errorf("records: reading conditions: %w", err)
		}
		i, ok := byID[id]
		if !ok {
			return nil, errors.New("records: a condition row names no patient")
		}
		out[i].Patient.Conditions = append(out[i].Patient.Conditions, c)
	}
	if err := crows.Err(); err != nil {
		return nil, fmt.Errorf("records: reading conditions: %w", err)
	}
	return out, nil
}

// EnrolAll enrols, in one transaction, every patient identity that has no
// credential yet (a hospital registering the patients it already has). It
// returns how many it enrolled. The credentials stay in the database; the
// hospital hands each to its patient's terminal at the desk.
func (s *Store) EnrolAll(ctx context.Context) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("records: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT p.identity FROM patients p LEFT JOIN enrolments e ON e.identity = p.identity WHERE e.identity IS NULL`)
	if err != nil {
		return 0, fmt.Errorf("records: %w", err)
	}
	var ids [][]byte
	for rows.Next() {
		var id []byte
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("records: %w", err)
		}
		ids = append(ids, id)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, fmt.Errorf("records: %w", err)
	}
	for _, id := range ids {
		c, err := recordkey.NewCredential()
		if err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO enrolments(identity, credential) VALUES (?, ?)`, id, c[:]); err != nil {
			return 0, fmt.Errorf("records: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("records: %w", err)
	}
	return len(ids), nil
}
