package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/party/source/fhir"
	"github.com/mpsi-dev/mpsi/party/source/pg"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// Input formats of --data.
const (
	formatAuto     = "auto"
	formatCSV      = "csv"
	formatFHIR     = "fhir"
	formatPostgres = "postgres"
)

// listFlag collects a repeated flag's values.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// input is where one party's records are and how to read them.
type input struct {
	data         []string // files, a bulk-export directory, or a postgres:// URL
	mapPath      string
	format       string
	query        string // SQL, or @FILE
	codesQuery   string // SQL, or @FILE
	passwordFile string
}

// inputFlags are the flags of `mpsi party` that say how to read --data.
type inputFlags struct {
	format, query, queryFile, codesQuery, codesQueryFile, passwordFile *string
}

func addInputFlags(fs *flag.FlagSet) *inputFlags {
	return &inputFlags{
		format:         fs.String("format", formatAuto, "input format: auto (by --data: postgres:// URL, *.ndjson or a directory, else CSV), csv, fhir or postgres"),
		query:          fs.String("query", "", "postgres: the SQL query returning one row per patient"),
		queryFile:      fs.String("query-file", "", "postgres: a file holding the query"),
		codesQuery:     fs.String("codes-query", "", "postgres: optional second query returning (record id, code) rows"),
		codesQueryFile: fs.String("codes-query-file", "", "postgres: a file holding the codes query"),
		passwordFile:   fs.String("password-file", "", "postgres: a file holding the password (else PGPASSWORD or PGPASSFILE; never in the URL)"),
	}
}

func (f *inputFlags) input(data []string, mapPath string) (input, error) {
	in := input{data: data, mapPath: mapPath, format: *f.format, passwordFile: *f.passwordFile}
	var err error
	if in.query, err = oneOf("--query", *f.query, *f.queryFile); err != nil {
		return in, err
	}
	if in.codesQuery, err = oneOf("--codes-query", *f.codesQuery, *f.codesQueryFile); err != nil {
		return in, err
	}
	return in, nil
}

// oneOf returns the SQL given inline or read from a file.
func oneOf(name, inline, file string) (string, error) {
	if inline != "" && file != "" {
		return "", fmt.Errorf("give %s or %s-file, not both", name, name)
	}
	if file == "" {
		return inline, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s-file: %w", name, err)
	}
	return string(b), nil
}

// isDatabaseURL reports whether a --data value is a postgres:// URL.
func isDatabaseURL(d string) bool {
	return strings.HasPrefix(d, "postgres://") || strings.HasPrefix(d, "postgresql://")
}

// datasetName names an input in the privacy ledger: the first file's base
// name, or a database URL's host and path (never its query or user).
func datasetName(data []string) string {
	if len(data) == 0 {
		return ""
	}
	if isDatabaseURL(data[0]) {
		if u, err := url.Parse(data[0]); err == nil {
			return u.Host + u.Path
		}
	}
	return filepath.Base(data[0])
}

// detectFormat picks the format of --data when it is auto.
func detectFormat(data []string) string {
	if len(data) == 1 && isDatabaseURL(data[0]) {
		return formatPostgres
	}
	for _, d := range data {
		if st, err := os.Stat(d); err == nil && st.IsDir() || strings.HasSuffix(d, ".ndjson") {
			return formatFHIR
		}
	}
	return formatCSV
}

// loader loads one party's records once the session spec is known.
type loader struct {
	load  func(*session.Spec) (*party.Records, error)
	close func()
}

// openInput checks an input and opens what can be opened before the spec
// is known: a database is connected to here, so that an unreachable one
// fails before the coordinator is contacted.
func openInput(ctx context.Context, in input, name string, opt party.LoadOptions) (*loader, error) {
	if len(in.data) == 0 {
		return nil, errors.New("--data is required")
	}
	format := in.format
	if format == "" || format == formatAuto {
		format = detectFormat(in.data)
	}
	if format != formatPostgres && (in.query != "" || in.codesQuery != "" || in.passwordFile != "") {
		return nil, hintError{fmt.Errorf("--query, --codes-query and --password-file apply to a postgres:// --data, not to %s input", format), "give --data postgres://user@host/db"}
	}
	nop := func() {}
	switch format {
	case formatCSV:
		if len(in.data) != 1 {
			return nil, hintError{errors.New("CSV input takes one --data file"), "FHIR input takes several: name them *.ndjson or give --format fhir"}
		}
		if _, err := os.Stat(in.data[0]); err != nil {
			return nil, fmt.Errorf("--data: %w", err)
		}
		if in.mapPath != "" {
			m, err := party.LoadMapping(in.mapPath)
			if err != nil {
				return nil, err
			}
			opt.Mapping = m
		}
		return &loader{func(s *session.Spec) (*party.Records, error) { return party.LoadCSV(in.data[0], s, name, opt) }, nop}, nil
	case formatFHIR:
		var m fhir.Mapping
		if in.mapPath != "" {
			var err error
			if m, err = fhir.LoadMapping(in.mapPath); err != nil {
				return nil, err
			}
		}
		src, err := fhir.Open(ctx, in.data, m)
		if err != nil {
			return nil, err
		}
		return &loader{func(s *session.Spec) (*party.Records, error) {
			defer src.Close()
			return party.ReadRows(src, s, name, opt)
		}, func() { src.Close() }}, nil
	case formatPostgres:
		if len(in.data) != 1 {
			return nil, errors.New("postgres input takes one --data URL")
		}
		if in.query == "" {
			return nil, hintError{errors.New("postgres input needs --query or --query-file"), "e.g. --query 'SELECT person_source_value AS record_id, … FROM person'"}
		}
		if in.mapPath != "" {
			m, err := party.LoadMapping(in.mapPath)
			if err != nil {
				return nil, err
			}
			opt.Mapping = m
		}
		src, err := pg.Connect(ctx, pg.Config{URL: in.data[0], Query: in.query, CodesQuery: in.codesQuery, PasswordFile: in.passwordFile})
		if err != nil {
			return nil, err
		}
		return &loader{func(s *session.Spec) (*party.Records, error) {
			defer src.Close()
			r, err := party.ReadRows(src, s, name, opt)
			if err != nil {
				return nil, fmt.Errorf("postgres %s: %w", src.Where(), err)
			}
			return r, nil
		}, func() { src.Close() }}, nil
	}
	return nil, hintError{fmt.Errorf("--format %q", format), "use auto, csv, fhir or postgres"}
}
