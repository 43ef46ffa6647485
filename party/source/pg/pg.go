// Package pg reads a party's records from PostgreSQL (for example an OMOP
// CDM research warehouse) as a [party.RowSource]: the result columns of a
// query are mapped, normalised and checked exactly as CSV columns are
// ([party.ReadRows]).
//
// The query runs in a read-only transaction behind a server-side cursor
// (DECLARE … NO SCROLL CURSOR, FETCH FORWARD n), so the rows are streamed
// in batches and neither side holds the whole result. Values arrive in
// PostgreSQL's text form; a column's type must suit its field (a date
// field takes date, timestamp or a text column in the mapping's format; a
// number takes integer, numeric, float, boolean or text; a codes field
// takes a text or integer array, or text split on the mapping's
// separator; names, identifiers and sex take text or integers), and the
// query may return no column that is not a field of the session (the
// columns of fields this party does not contribute are not read). Codes may come from an
// aggregated column (array_agg, string_agg) or from a second query
// ([Config.CodesQuery]) whose rows (record id, code) are gathered by record
// id before the first row.
//
// The password never comes from the command line: a password in the URL is
// refused; it comes from PGPASSWORD, a pgpass file (PGPASSFILE) or
// [Config.PasswordFile]. Errors name the server as user@host/database,
// never the password or a patient's value.
package pg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/psi/ident"
)

var (
	// ErrConnect is wrapped by errors connecting to the server.
	ErrConnect = errors.New("pg: cannot connect")
	// ErrQuery is wrapped by errors about the query: it fails, returns a
	// column no field reads, or a column of a type its field cannot take.
	ErrQuery = errors.New("pg: bad query")
	// ErrPasswordInURL is returned for a URL that carries a password.
	ErrPasswordInURL = errors.New("pg: password in the URL")
)

// DefaultFetch is the number of rows a FETCH asks for.
const DefaultFetch = 10000

// Config says where and what to read.
type Config struct {
	// URL is a postgres:// or postgresql:// URL without a password, e.g.
	// postgres://reader@db.example/warehouse?sslmode=verify-full or, on a
	// local socket, postgres:///warehouse?host=/run/postgresql.
	URL string
	// Query returns one row per patient.
	Query string
	// CodesQuery, if set, returns (record id, code) rows; its second
	// column (named as the codes field's mapping says) is added to the
	// rows of Query, matched on their record_id column.
	CodesQuery string
	// PasswordFile, if set, holds the password (trailing newline ignored).
	PasswordFile string
	// Fetch is the batch size (default DefaultFetch).
	Fetch int
}

// Source streams the rows of a query. It is not safe for concurrent use.
type Source struct {
	ctx    context.Context
	cfg    Config
	where  string
	conn   *pgx.Conn
	tx     pgx.Tx
	fields []pgconnField
	cols   []string
	kinds  []kind
	seps   []string
	plans  []pgtype.ScanPlan // per array column, made at its first value
	nMain  int               // columns of the main query; a codes column follows

	codesField []pgconnField
	codes      map[string][]string
	idCol      int

	batch   pgx.Rows
	inBatch int
	row     []string
	n       int
	done    bool
	started bool
}

type pgconnField struct {
	name string
	oid  uint32
}

type kind int

const (
	kindText kind = iota
	kindBool
	kindDate      // date: ISO text
	kindTimestamp // timestamp without time zone: the date part
	kindArray
	kindUnused
)

// Connect connects to the server (so that an unreachable database fails
// before anything else happens) and checks the configuration.
func Connect(ctx context.Context, cfg Config) (*Source, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, fmt.Errorf("%w: want a postgres:// URL", ErrConnect)
	}
	if _, has := u.User.Password(); has || u.Query().Has("password") {
		return nil, fmt.Errorf("%w: it would show in process listings and shell history: give it in PGPASSWORD, a pgpass file (PGPASSFILE) or a password file", ErrPasswordInURL)
	}
	if strings.TrimSpace(cfg.Query) == "" {
		return nil, fmt.Errorf("%w: no query", ErrQuery)
	}
	if cfg.Fetch <= 0 {
		cfg.Fetch = DefaultFetch
	}
	pc, err := pgx.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConnect, err)
	}
	if cfg.PasswordFile != "" {
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("%w: password file: %w", ErrConnect, err)
		}
		pc.Password = strings.TrimRight(string(b), "\r\n")
	}
	pc.RuntimeParams["DateStyle"] = "ISO, YMD"
	pc.RuntimeParams["application_name"] = "mpsi"
	s := &Source{ctx: ctx, cfg: cfg, where: fmt.Sprintf("%s@%s/%s", pc.User, pc.Host, pc.Database), idCol: -1}
	conn, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConnect, s.where, err)
	}
	s.conn = conn
	return s, nil
}

// Where names the server as user@host/database.
func (s *Source) Where() string { return s.where }

// Close ends the transaction and the connection.
func (s *Source) Close() error {
	if s.batch != nil {
		s.batch.Close()
		s.batch = nil
	}
	ctx := context.WithoutCancel(s.ctx)
	if s.tx != nil {
		_ = s.tx.Rollback(ctx)
		s.tx = nil
	}
	if s.conn != nil {
		err := s.conn.Close(ctx)
		s.conn = nil
		return err
	}
	return nil
}

func trimQuery(q string) string {
	return strings.TrimRight(strings.TrimSpace(q), "; \t\r\n")
}

// describe declares a cursor for q and returns its columns.
func (s *Source) describe(cursor, q string) ([]pgconnField, error) {
	if _, err := s.tx.Exec(s.ctx, "DECLARE "+cursor+" NO SCROLL CURSOR FOR "+trimQuery(q), pgx.QueryExecModeSimpleProtocol); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrQuery, s.where, err)
	}
	rows, err := s.tx.Query(s.ctx, "FETCH FORWARD 0 FROM "+cursor, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrQuery, s.where, err)
	}
	defer rows.Close()
	var fs []pgconnField
	for _, f := range rows.FieldDescriptions() {
		fs = append(fs, pgconnField{f.Name, f.DataTypeOID})
	}
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrQuery, s.where, err)
	}
	return fs, nil
}

// Columns starts the read-only transaction, declares the cursors and
// returns the result columns (and the codes query's code column).
func (s *Source) Columns() ([]string, error) {
	tx, err := s.conn.BeginTx(s.ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConnect, s.where, err)
	}
	s.tx = tx
	// Every row is read: plan for all of them, not for a fast first 10%.
	if _, err := tx.Exec(s.ctx, "SET LOCAL cursor_tuple_fraction = 1.0", pgx.QueryExecModeSimpleProtocol); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrQuery, s.where, err)
	}
	if s.fields, err = s.describe("mpsi_rows", s.cfg.Query); err != nil {
		return nil, err
	}
	s.nMain = len(s.fields)
	if s.cfg.CodesQuery != "" {
		if s.codesField, err = s.describe("mpsi_codes", s.cfg.CodesQuery); err != nil {
			return nil, err
		}
		if len(s.codesField) != 2 {
			return nil, fmt.Errorf("%w: the codes query returns %d columns, want 2 (record id, code)", ErrQuery, len(s.codesField))
		}
		s.fields = append(s.fields, s.codesField[1])
	}
	for _, f := range s.fields {
		s.cols = append(s.cols, f.name)
	}
	s.kinds = make([]kind, len(s.cols))
	s.seps = make([]string, len(s.cols))
	s.plans = make([]pgtype.ScanPlan, len(s.cols))
	s.row = make([]string, len(s.cols))
	return s.cols, nil
}

func (s *Source) typeName(oid uint32) string {
	if t, ok := s.conn.TypeMap().TypeForOID(oid); ok {
		return t.Name
	}
	return "oid " + strconv.FormatUint(uint64(oid), 10)
}

// CheckColumns refuses a column no field reads, and a column whose type
// cannot hold its field.
func (s *Source) CheckColumns(use []party.ColumnUse) error {
	used := make([]bool, len(s.cols))
	for _, u := range use {
		used[u.Column] = true
		if u.Unread {
			s.kinds[u.Column] = kindUnused
			continue
		}
		oid := s.fields[u.Column].oid
		k, ok := compatible(u.Type, oid)
		if !ok {
			return fmt.Errorf("%w: column %q has type %s, which field %s (%s) cannot take", ErrQuery, u.Name, s.typeName(oid), u.Field, typeOrID(u.Type))
		}
		if u.Format != "" && k != kindText {
			return fmt.Errorf("%w: field %s has a date format in the mapping but column %q has type %s, not text", ErrQuery, u.Field, u.Name, s.typeName(oid))
		}
		s.kinds[u.Column] = k
		s.seps[u.Column] = u.Separator
		if u.Field == party.RecordIDField {
			s.idCol = u.Column
		}
	}
	for i, c := range s.cols {
		if !used[i] {
			return fmt.Errorf("%w: the query returns column %q, which is no field of the session: leave it out of the query, or map it", ErrQuery, c)
		}
	}
	if s.cfg.CodesQuery != "" && s.idCol < 0 {
		return fmt.Errorf("%w: a codes query needs a record_id column in the main query", ErrQuery)
	}
	if s.cfg.CodesQuery != "" {
		if _, ok := compatible(ident.TypeID, s.codesField[0].oid); !ok {
			return fmt.Errorf("%w: the codes query's record id column %q has type %s", ErrQuery, s.codesField[0].name, s.typeName(s.codesField[0].oid))
		}
		if s.kinds[s.nMain] == kindArray {
			return fmt.Errorf("%w: the codes query returns arrays; return one code a row", ErrQuery)
		}
	}
	return nil
}

func typeOrID(t ident.Type) string {
	if t == "" {
		return "record id"
	}
	return string(t)
}

// compatible says whether a column of type oid can hold a field of type t,
// and how its text is read.
func compatible(t ident.Type, oid uint32) (kind, bool) {
	text := oid == pgtype.TextOID || oid == pgtype.VarcharOID || oid == pgtype.BPCharOID || oid == pgtype.NameOID || oid == pgtype.QCharOID
	integer := oid == pgtype.Int2OID || oid == pgtype.Int4OID || oid == pgtype.Int8OID
	switch t {
	case ident.TypeDate:
		switch {
		case oid == pgtype.DateOID:
			return kindDate, true
		case oid == pgtype.TimestampOID:
			return kindTimestamp, true
		}
		return kindText, text
	case ident.TypeNumber:
		if oid == pgtype.BoolOID {
			return kindBool, true
		}
		return kindText, text || integer || oid == pgtype.NumericOID || oid == pgtype.Float4OID || oid == pgtype.Float8OID
	case ident.TypeCodes:
		switch oid {
		case pgtype.TextArrayOID, pgtype.VarcharArrayOID, pgtype.BPCharArrayOID, pgtype.Int4ArrayOID, pgtype.Int8ArrayOID:
			return kindArray, true
		}
		return kindText, text || integer
	default: // name, id, sex, record_id
		return kindText, text || integer || oid == pgtype.UUIDOID
	}
}

// Pos names the row Next returned last.
func (s *Source) Pos() party.Pos { return party.Pos{Unit: "row", Line: s.n} }

// Next returns the next row.
func (s *Source) Next() ([]string, error) {
	if !s.started {
		s.started = true
		if s.cfg.CodesQuery != "" {
			if err := s.readCodes(); err != nil {
				return nil, err
			}
		}
	}
	for {
		if s.batch == nil {
			if s.done {
				return nil, io.EOF
			}
			rows, err := s.tx.Query(s.ctx, "FETCH FORWARD "+strconv.Itoa(s.cfg.Fetch)+" FROM mpsi_rows", pgx.QueryExecModeSimpleProtocol)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: after row %d: %v", ErrQuery, s.where, s.n, err)
			}
			s.batch, s.inBatch = rows, 0
		}
		if !s.batch.Next() {
			err := s.batch.Err()
			s.batch.Close()
			s.batch = nil
			if err != nil {
				return nil, fmt.Errorf("%w: %s: after row %d: %v", ErrQuery, s.where, s.n, err)
			}
			if s.inBatch < s.cfg.Fetch {
				s.done = true
			}
			continue
		}
		s.inBatch++
		s.n++
		raw := s.batch.RawValues()
		for i, v := range raw {
			if err := s.value(i, v); err != nil {
				return nil, &party.RowError{Unit: "row", Line: s.n, Field: "", Err: fmt.Errorf("column %q: %w", s.cols[i], err)}
			}
		}
		if s.cfg.CodesQuery != "" {
			s.row[s.nMain] = strings.Join(s.codes[s.row[s.idCol]], s.sep(s.nMain))
		}
		return s.row, nil
	}
}

func (s *Source) sep(i int) string {
	if s.seps[i] == "" {
		return ";"
	}
	return s.seps[i]
}

// value sets s.row[i] from a column's text (nil: NULL).
func (s *Source) value(i int, v []byte) error {
	if v == nil {
		s.row[i] = ""
		return nil
	}
	switch s.kinds[i] {
	case kindUnused:
		s.row[i] = ""
	case kindBool:
		s.row[i] = "0"
		if len(v) > 0 && v[0] == 't' {
			s.row[i] = "1"
		}
	case kindTimestamp:
		d, _, _ := strings.Cut(string(v), " ")
		s.row[i] = d
	case kindArray:
		var items []*string
		if s.plans[i] == nil {
			s.plans[i] = s.conn.TypeMap().PlanScan(s.fields[i].oid, pgtype.TextFormatCode, &items)
		}
		if err := s.plans[i].Scan(v, &items); err != nil {
			return errors.New("malformed array")
		}
		var b strings.Builder
		sep := s.sep(i)
		for _, it := range items {
			if it == nil || *it == "" {
				continue
			}
			if strings.Contains(*it, sep) {
				return fmt.Errorf("an array element contains the separator %q", sep)
			}
			if b.Len() > 0 {
				b.WriteString(sep)
			}
			b.WriteString(*it)
		}
		s.row[i] = b.String()
	default:
		s.row[i] = string(v)
	}
	return nil
}

// readCodes gathers the codes query's (record id, code) rows.
func (s *Source) readCodes() error {
	s.codes = map[string][]string{}
	sep := s.sep(s.nMain)
	n := 0
	for {
		rows, err := s.tx.Query(s.ctx, "FETCH FORWARD "+strconv.Itoa(s.cfg.Fetch)+" FROM mpsi_codes", pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			return fmt.Errorf("%w: %s: codes query: %v", ErrQuery, s.where, err)
		}
		got := 0
		for rows.Next() {
			got++
			n++
			raw := rows.RawValues()
			if raw[0] == nil || raw[1] == nil {
				continue
			}
			code := string(raw[1])
			if strings.Contains(code, sep) {
				rows.Close()
				return fmt.Errorf("%w: codes query row %d: the code contains the separator %q", ErrQuery, n, sep)
			}
			id := string(raw[0])
			if cs := s.codes[id]; !containsStr(cs, code) {
				s.codes[id] = append(cs, code)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("%w: %s: codes query: %v", ErrQuery, s.where, err)
		}
		if got < s.cfg.Fetch {
			return nil
		}
	}
}

func containsStr(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
