package pg_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/internal/patients"
	"github.com/mpsi-dev/mpsi/internal/pgtest"
	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/party/source/pg"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// srv is the one server of this package's tests, when switched on.
var srv *pgtest.Server

func TestMain(m *testing.M) {
	if pgtest.Enabled() {
		s, err := pgtest.New()
		if err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			os.Exit(1)
		}
		srv = s
	}
	code := m.Run()
	if srv != nil {
		if err := srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

// server returns the test server, skipping when the tests are off.
func server(t *testing.T) *pgtest.Server {
	if srv == nil {
		t.Skipf("PostgreSQL integration test: set %s=1", pgtest.Env)
	}
	return srv
}

const specJSON = `{"id":"x","parties":["a","b"],
"fields":{"given_name":"name","family_name":"name","birth_date":"date","sex":"sex","deceased":"number","condition_codes":"codes"},
"match":{"fields":["given_name","family_name","birth_date","sex"]},"reveal":["cardinality","aggregates"],
"aggregates":[{"name":"dead","kind":"sum","field":"deceased","min":0,"max":1,"from":["a"]},
{"name":"diabetes","kind":"count_if","field":"condition_codes","contains":"44054006","from":["a"]}]}`

func specT(t testing.TB) *session.Spec {
	s, err := session.ParseSpec([]byte(specJSON))
	require.NoError(t, err)
	return s
}

func people() []patients.Person {
	p, err := patients.Synthea(patients.SyntheaDir("."))
	if err != nil {
		return patients.Generate(1000, 7)
	}
	return p
}

var loaded = map[string]bool{}

// omopDB returns a database holding the OMOP tables of people().
func omopDB(t *testing.T) string {
	s := server(t)
	const db = "omop"
	if !loaded[db] {
		ctx := context.Background()
		require.NoError(t, s.CreateDB(ctx, db))
		c, err := s.Connect(ctx, db)
		require.NoError(t, err)
		defer c.Close(ctx)
		require.NoError(t, pgtest.LoadOMOP(ctx, c, people()))
		_, err = c.Exec(ctx, "CREATE TABLE odd (record_id text, given_name text, family_name text, birth_date text, sex text, deceased boolean, condition_codes text[], blob bytea)")
		require.NoError(t, err)
		_, err = c.Exec(ctx, `INSERT INTO odd VALUES ('r1','Ada','Lovelace','1815-12-10','F',true,'{44054006}','\x00'),('r2','Bob','Smith','1950-13-40','M',false,NULL,NULL)`)
		require.NoError(t, err)
		loaded[db] = true
	}
	return s.URL(db)
}

func open(t *testing.T, cfg pg.Config) *pg.Source {
	if cfg.PasswordFile == "" {
		t.Setenv("PGPASSWORD", srv.Password)
	}
	s, err := pg.Connect(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func fromCSV(t *testing.T) *party.Records {
	var b bytes.Buffer
	require.NoError(t, patients.WriteCSV(&b, people()))
	r, err := party.ReadCSV(&b, specT(t), "a", party.LoadOptions{})
	require.NoError(t, err)
	return r
}

func requireSame(t *testing.T, want, got *party.Records) {
	t.Helper()
	require.Equal(t, want.Report, got.Report)
	require.Equal(t, want.Len(), got.Len())
	for i := range want.Len() {
		require.Equal(t, want.Key(i), got.Key(i), i)
		require.Equal(t, want.ID(i), got.ID(i))
		require.Equal(t, want.Value(i, "deceased"), got.Value(i, "deceased"))
		require.Equal(t, want.Value(i, "condition_codes"), got.Value(i, "condition_codes"))
	}
}

// The OMOP tables loaded from the Synthea sample read to the same records
// as the CSV of the same people: codes aggregated into an array, or from a
// second query, in batches of any size.
func TestOMOPMatchesCSV(t *testing.T) {
	url := omopDB(t)
	want := fromCSV(t)
	for _, tc := range []struct {
		name string
		cfg  pg.Config
	}{
		{"array_agg", pg.Config{URL: url, Query: pgtest.OMOPQuery}},
		{"codes query", pg.Config{URL: url, Query: pgtest.OMOPPersonQuery, CodesQuery: pgtest.OMOPCodesQuery}},
		{"small batches", pg.Config{URL: url, Query: pgtest.OMOPQuery + ";", Fetch: 7}},
		{"integer array", pg.Config{URL: url, Query: strings.Replace(pgtest.OMOPQuery, "array_agg(co.condition_source_value ORDER BY co.condition_occurrence_id)\n         FILTER (WHERE co.condition_source_value IS NOT NULL)", "array_agg(co.condition_source_value::bigint ORDER BY co.condition_occurrence_id)\n         FILTER (WHERE co.condition_source_value IS NOT NULL)", 1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "integer array" {
				require.Contains(t, tc.cfg.Query, "::bigint")
			}
			got, err := party.ReadRows(open(t, tc.cfg), specT(t), "a", party.LoadOptions{})
			require.NoError(t, err)
			requireSame(t, want, got)
		})
	}
}

// string_agg into text, split on the mapping's separator.
func TestStringAggWithMapping(t *testing.T) {
	url := omopDB(t)
	q := strings.Replace(pgtest.OMOPQuery, "array_agg(co.condition_source_value ORDER BY co.condition_occurrence_id)", "string_agg(co.condition_source_value, '|' ORDER BY co.condition_occurrence_id)", 1)
	q = strings.Replace(q, "AS condition_codes", "AS dx", 1)
	m, err := party.ParseMapping([]byte(`{"condition_codes":{"column":"dx","separator":"|"}}`))
	require.NoError(t, err)
	got, err := party.ReadRows(open(t, pg.Config{URL: url, Query: q}), specT(t), "a", party.LoadOptions{Mapping: m})
	require.NoError(t, err)
	requireSame(t, fromCSV(t), got)
}

func TestPasswordFile(t *testing.T) {
	url := omopDB(t)
	pf := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pf, []byte(srv.Password+"\n"), 0o600))
	t.Setenv("PGPASSWORD", "")
	s, err := pg.Connect(context.Background(), pg.Config{URL: url, Query: pgtest.OMOPQuery, PasswordFile: pf})
	require.NoError(t, err)
	s.Close()

	require.NoError(t, os.WriteFile(pf, []byte("not-the-password\n"), 0o600))
	_, err = pg.Connect(context.Background(), pg.Config{URL: url, Query: pgtest.OMOPQuery, PasswordFile: pf})
	require.ErrorIs(t, err, pg.ErrConnect)
	require.ErrorContains(t, err, "mpsi@"+srv.Socket+"/omop")
	require.NotContains(t, err.Error(), "not-the-password")
}

// Bad queries: a clear error naming the column, the row or the server.
func TestQueryErrors(t *testing.T) {
	url := omopDB(t)
	cases := []struct {
		name, query, want string
		wantErr           error
	}{
		{"unmapped column", "SELECT record_id, given_name, family_name, birth_date, sex, deceased, condition_codes, blob FROM odd", `column "blob", which is no field of the session`, pg.ErrQuery},
		{"wrong type", "SELECT record_id, given_name, family_name, blob AS birth_date, sex, deceased, condition_codes FROM odd", `column "birth_date" has type bytea, which field birth_date (date) cannot take`, pg.ErrQuery},
		{"number from an array", "SELECT record_id, given_name, family_name, birth_date, sex, condition_codes AS deceased, condition_codes FROM odd", `column "deceased" has type _text`, pg.ErrQuery},
		{"missing column", "SELECT record_id, given_name, family_name, sex, deceased, condition_codes FROM odd", `no column "birth_date"`, party.ErrRecords},
		{"bad value", "SELECT record_id, given_name, family_name, birth_date, sex, deceased, condition_codes FROM odd ORDER BY record_id", "row 2: field birth_date", party.ErrRecords},
		{"syntax error", "SELEC 1", `syntax error`, pg.ErrQuery},
		{"no such table", "SELECT * FROM nowhere", `"nowhere" does not exist`, pg.ErrQuery},
		{"a write", "DELETE FROM odd", "syntax error", pg.ErrQuery},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := party.ReadRows(open(t, pg.Config{URL: url, Query: tc.query}), specT(t), "a", party.LoadOptions{})
			require.Nil(t, recs)
			require.ErrorIs(t, err, tc.wantErr)
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), srv.Password)
		})
	}
}
