package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/internal/devcert"
	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/psi/session"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stdout)
	parties := fs.Int("parties", 3, "number of hospitals (2..26)")
	records := fs.Int("records", 2000, "records per hospital")
	overlap := fs.Float64("overlap", 0.3, "fraction of each hospital's records shared by all")
	mode := fs.String("mode", "dh", "match mode: dh or keyed")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "cohort generator seed")
	asJSON := fs.Bool("json", false, "print the Result JSON instead of a table")
	inproc := fs.Bool("inproc", false, "run every party and the coordinator in this process instead of over gRPC")
	aggregation := fs.String("aggregation", session.AggregationMasked, "aggregation mode: masked; oblivious (no party learns which of its records are shared, symmetric-key work only); or encrypted (multiparty BGV, same guarantee)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *aggregation != session.AggregationMasked && *aggregation != session.AggregationOblivious && *aggregation != session.AggregationEncrypted {
		return usageError(fs, fmt.Errorf("--aggregation %q", *aggregation), "use --aggregation masked, oblivious or encrypted")
	}
	if *mode != session.ModeDH && *mode != session.ModeKeyed {
		return usageError(fs, fmt.Errorf("--mode %q", *mode), "use --mode dh or --mode keyed")
	}
	pair := 0.1
	if *overlap+pair > 1 {
		pair = 1 - *overlap
	}
	c, err := cohort.Generate(cohort.Config{Seed: *seed, Parties: *parties, Records: *records, SharedAll: *overlap, SharedPair: pair, Noise: true, Mode: *mode, MinCell: 11, Duplicates: 2, Aggregation: *aggregation})
	if err != nil {
		return err
	}
	spec, err := session.ParseSpec(c.Spec)
	if err != nil {
		return err
	}
	if !*inproc {
		return runNetworkDemo(ctx, c, *asJSON, stdout, stderr)
	}
	ins, err := cohortInputs(c, spec)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "mpsi: demo: %d hospitals × %d records, mode %s, %s aggregation, in process\n", *parties, *records, *mode, *aggregation)
	start := time.Now()
	out, err := party.RunLocal(ctx, spec, ins, party.Config{})
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	if *asJSON {
		if err := writeJSON(stdout, out.Result); err != nil {
			return err
		}
	} else {
		printTable(stdout, out.Result)
		fmt.Fprintf(stdout, "session time: %s\n", elapsed.Round(time.Millisecond))
	}
	return reportTruth(out.Result, c.Truth, spec.MinCell, *asJSON, stdout, stderr)
}

// reportTruth prints whether r matches the ground truth: on stdout after
// the table, on stderr with --json (stdout then holds JSON only).
func reportTruth(r *session.Result, t cohort.Truth, minCell int, asJSON bool, stdout, stderr io.Writer) error {
	w := stdout
	if asJSON {
		w = stderr
	}
	if err := checkTruth(r, t, minCell); err != nil {
		fmt.Fprintf(w, "check against plaintext computation: MISMATCH: %v\n", err)
		return errors.New("result does not match the plaintext computation")
	}
	fmt.Fprintln(w, "check against plaintext computation: OK (result matches the ground truth)")
	return nil
}

// checkTruth compares a Result with a cohort's ground truth.
func checkTruth(r *session.Result, t cohort.Truth, minCell int) error {
	small := func(c int) bool { return c > 0 && c < minCell }
	if small(t.Intersection) {
		if !r.IntersectionSuppressed {
			return fmt.Errorf("intersection %d should be suppressed", t.Intersection)
		}
		return nil
	}
	if r.Intersection == nil || *r.Intersection != int64(t.Intersection) {
		got := "none"
		if r.Intersection != nil {
			got = fmt.Sprint(*r.Intersection)
		}
		return fmt.Errorf("intersection: got %s, want %d", got, t.Intersection)
	}
	for i := range t.Pairwise {
		for j, want := range t.Pairwise[i] {
			got := r.Pairwise[i][j]
			if i != j && (small(want) || small(want-t.Intersection)) {
				if got != nil {
					return fmt.Errorf("pairwise[%d][%d] should be suppressed", i, j)
				}
				continue
			}
			if got == nil || *got != int64(want) {
				return fmt.Errorf("pairwise[%d][%d]: got %s, want %d", i, j, cell(got), want)
			}
		}
	}
	eq := func(name string, want float64) error {
		a, ok := r.Aggregates.Get(name)
		if !ok {
			return fmt.Errorf("aggregate %s missing", name)
		}
		if a.Suppressed {
			return nil
		}
		if a.Unavailable || a.Value == nil {
			return fmt.Errorf("%s: no value released (%s)", name, a.Reason)
		}
		got, err := a.Value.Float64()
		if err != nil || got < want-1e-9*max(1, want) || got > want+1e-9*max(1, want) {
			return fmt.Errorf("%s: got %v, want %v", name, a.Value.String(), want)
		}
		return nil
	}
	if err := eq("shared", float64(t.Intersection)); err != nil {
		return err
	}
	if err := eq("visits", float64(t.VisitsSum)); err != nil {
		return err
	}
	if t.Intersection > 0 {
		if err := eq("age", float64(t.AgeSum)/float64(t.Intersection)); err != nil {
			return err
		}
	}
	if !small(int(t.Diabetes)) {
		if err := eq("diabetes", float64(t.Diabetes)); err != nil {
			return err
		}
	}
	// Released bins are exact and never small; a small bin is suppressed,
	// with complementary bins when needed (see session.Layout.Release).
	bands, _ := r.Aggregates.Get("age_bands")
	for b, want := range t.AgeBands {
		got := bands.Counts[b]
		switch {
		case got == nil && !small(int(want)) && !anySmall(t.AgeBands, small):
			return fmt.Errorf("age_bands[%d]: %d suppressed without a small bin", b, want)
		case got != nil && (small(int(want)) || *got != want):
			return fmt.Errorf("age_bands[%d]: got %s, want %d", b, cell(got), want)
		}
	}
	return nil
}

func anySmall(v []int64, small func(int) bool) bool {
	for _, x := range v {
		if small(int(x)) {
			return true
		}
	}
	return false
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	return enc.Encode(v)
}

func printTable(w io.Writer, r *session.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "session\t%s (%s)\n", r.Session, r.MatchMode)
	if len(r.LeftOut) > 0 {
		fmt.Fprintf(tw, "left out\t%s (gone before their ciphertexts were in: not in any aggregate)\n", strings.Join(r.LeftOut, ", "))
	}
	if r.Intersection != nil {
		fmt.Fprintf(tw, "shared by all\t%d\n", *r.Intersection)
	} else if r.IntersectionSuppressed {
		fmt.Fprintf(tw, "shared by all\tsuppressed (below min_cell)\n")
	}
	if r.Pairwise != nil {
		fmt.Fprintf(tw, "pairwise\t%s\n", strings.Join(r.Parties, "  "))
		for i, row := range r.Pairwise {
			cells := make([]string, len(row))
			for j, c := range row {
				cells[j] = "—"
				if c != nil {
					cells[j] = fmt.Sprint(*c)
				}
			}
			fmt.Fprintf(tw, "  %s\t%s\n", r.Parties[i], strings.Join(cells, "  "))
		}
	}
	for _, a := range r.Aggregates {
		var v string
		switch {
		case a.Unavailable:
			v = "unavailable (" + a.Reason + ")"
		case a.Suppressed && a.Kind != session.KindHistogram:
			v = "suppressed (below min_cell)"
		case a.Kind == session.KindHistogram:
			var parts []string
			for k, c := range a.Counts {
				s := "—"
				if c != nil {
					s = fmt.Sprint(*c)
				}
				parts = append(parts, fmt.Sprintf("[%v,%v%s %s", a.Edges[k], a.Edges[k+1], map[bool]string{true: "]", false: ")"}[k == len(a.Counts)-1], s))
			}
			v = strings.Join(parts, "  ")
		case a.Value == nil:
			v = "no contributions"
		default:
			v = a.Value.String()
			if a.Contributions != nil {
				v += fmt.Sprintf(" (%d contributions)", *a.Contributions)
			}
		}
		fmt.Fprintf(tw, "%s\t%s: %s\n", a.Name, a.Kind, v)
	}
	tw.Flush()
}

// pairFlag collects repeated NAME=FILE flags.
type pairFlag map[string]string

func (p pairFlag) String() string { return fmt.Sprint(map[string]string(p)) }
func (p pairFlag) Set(v string) error {
	name, file, ok := strings.Cut(v, "=")
	if !ok || name == "" || file == "" {
		return fmt.Errorf("want NAME=FILE, got %q", v)
	}
	if _, dup := p[name]; dup {
		return fmt.Errorf("%s given twice", name)
	}
	p[name] = file
	return nil
}

func runLocal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", stdout)
	specPath := fs.String("spec", "", "session spec file (JSON or YAML)")
	data, maps := pairFlag{}, pairFlag{}
	fs.Var(data, "data", "NAME=FILE: a party's records (repeat for every party): a CSV file, a FHIR NDJSON file or bulk-export directory, or a postgres:// URL with --query NAME=SQL")
	fs.Var(maps, "map", "NAME=FILE: a party's column mapping (optional; for FHIR, field paths)")
	queries, queryFiles, codesQueries, passwordFiles := pairFlag{}, pairFlag{}, pairFlag{}, pairFlag{}
	fs.Var(queries, "query", "NAME=SQL: a postgres party's query")
	fs.Var(queryFiles, "query-file", "NAME=FILE: a postgres party's query, from a file")
	fs.Var(codesQueries, "codes-query", "NAME=SQL: a postgres party's (record id, code) query (optional)")
	fs.Var(passwordFiles, "password-file", "NAME=FILE: a postgres party's password file (else PGPASSWORD or PGPASSFILE)")
	outPath := fs.String("out", "", "write the Result JSON here instead of stdout")
	rejectDup := fs.Bool("reject-duplicates", false, "fail on repeated match keys instead of merging them")
	skipBad := fs.Bool("skip-bad-rows", false, "reject rows that fail to parse or check (counted; each listed by line, field and kind of fault, never the value) instead of stopping at the first")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *specPath == "" {
		return usageError(fs, errors.New("--spec is required"), "mpsi gen-cohorts writes an example spec.json")
	}
	spec, err := session.LoadSpec(*specPath)
	if err != nil {
		return err
	}
	// Refuse every name that is not a party and every file that is not
	// there before reading anything.
	for _, f := range []struct {
		flag  string
		pairs pairFlag
	}{{"--data", data}, {"--map", maps}} {
		for _, name := range sortedNames(f.pairs) {
			if spec.PartyIndex(name) < 0 {
				return usageError(fs, fmt.Errorf("%s %s: not a party of session %s", f.flag, name, spec.ID), "the spec's parties are "+strings.Join(spec.Parties, ", "))
			}
			if isDatabaseURL(f.pairs[name]) {
				continue // connected to by openInput, before anything is read
			}
			if _, err := os.Stat(f.pairs[name]); err != nil {
				return fmt.Errorf("%s %s: %w", f.flag, name, err)
			}
		}
	}
	var ins []party.Input
	for _, name := range spec.Parties {
		file, ok := data[name]
		if !ok {
			return usageError(fs, fmt.Errorf("no --data for party %s", name), "give --data NAME=FILE for every party in the spec")
		}
		opt := party.LoadOptions{SkipBadRows: *skipBad}
		if *rejectDup {
			opt.Duplicates = party.DuplicatesReject
		}
		in := input{data: []string{file}, mapPath: maps[name], query: queries[name], codesQuery: codesQueries[name], passwordFile: passwordFiles[name]}
		if in.query, err = oneOf("--query "+name, in.query, queryFiles[name]); err != nil {
			return err
		}
		l, err := openInput(ctx, in, name, opt)
		if err != nil {
			return err
		}
		recs, err := l.load(spec)
		l.close()
		if err != nil {
			return err
		}
		rp := recs.Report
		printRejected(stderr, name, rp)
		fmt.Fprintf(stderr, "mpsi: %s: %d rows read, %d loaded, %d rejected, %d duplicates merged, %d with an empty identifier\n", name, rp.Rows, rp.Loaded, rp.Rejected, rp.Duplicates, rp.EmptyIdentifier)
		ins = append(ins, party.Input{Name: name, Records: recs})
	}
	out, err := party.RunLocal(ctx, spec, ins, party.Config{})
	if err != nil {
		return err
	}
	if *outPath == "" {
		return writeJSON(stdout, out.Result)
	}
	return writeFileAtomic(*outPath, out.Result)
}

// printRejected lists the rows a load rejected (--skip-bad-rows) by line
// number, field and kind of fault, on this hospital's own terminal only,
// and never with a value ([party.RowError.Summary]).
func printRejected(w io.Writer, name string, rp party.Report) {
	for _, e := range rp.Errors {
		fmt.Fprintf(w, "mpsi: %s: rejected %s\n", name, e.Summary())
	}
	if more := rp.Rejected - len(rp.Errors); more > 0 {
		fmt.Fprintf(w, "mpsi: %s: %d more rows rejected (not listed)\n", name, more)
	}
}

// cohortInputs loads every party of a generated cohort with its mapping.
func cohortInputs(c *cohort.Cohort, spec *session.Spec) ([]party.Input, error) {
	var ins []party.Input
	for _, p := range c.Parties {
		m, err := party.ParseMapping(p.Mapping)
		if err != nil {
			return nil, err
		}
		recs, err := party.ReadCSV(bytes.NewReader(p.CSV), spec, p.Name, party.LoadOptions{Mapping: m})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name, err)
		}
		ins = append(ins, party.Input{Name: p.Name, Records: recs})
	}
	return ins, nil
}

// writeFileAtomic writes v as JSON (and a newline) atomically, see
// writeBytesAtomic.
func writeFileAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeBytesAtomic(path, append(b, '\n'))
}

// writeBytesAtomic writes b to a temporary file beside path, syncs it and
// renames it into place, so that no partial output is ever visible.
func writeBytesAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".mpsi-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func runGenCohorts(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("gen-cohorts", stdout)
	out := fs.String("out", "", "directory to write into")
	parties := fs.Int("parties", 3, "number of hospitals")
	records := fs.Int("records", 1000, "records per hospital")
	overlap := fs.Float64("overlap", 0.3, "fraction shared by all")
	pair := fs.Float64("pair-overlap", 0.1, "fraction shared with exactly one other hospital")
	seed := fs.Uint64("seed", 1, "generator seed (same seed, same files)")
	mode := fs.String("mode", "dh", "match mode written into the spec")
	minCell := fs.Int("min-cell", 11, "min_cell written into the spec")
	realistic := fs.Bool("realistic", false, "realistic identities (names by frequency, SSNs) with identifier errors (typos, nicknames, maiden names, date and SSN errors), and truth_groups.csv")
	keys := fs.String("keys", "", `match keys written into the spec as JSON, e.g. '[["ssn"],["family_name|soundex","given_name|initial","birth_date"]]'`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usageError(fs, errors.New("--out is required"), "")
	}
	if *mode != session.ModeDH && *mode != session.ModeKeyed {
		return usageError(fs, fmt.Errorf("--mode %q", *mode), "use --mode dh or --mode keyed")
	}
	cfg := cohort.Config{Seed: *seed, Parties: *parties, Records: *records, SharedAll: *overlap, SharedPair: *pair, Noise: true, Mode: *mode, MinCell: *minCell}
	if *realistic {
		errs := cohort.DefaultErrors()
		cfg.Realistic = &errs
	}
	if *keys != "" {
		if err := json.Unmarshal([]byte(*keys), &cfg.Keys); err != nil || len(cfg.Keys) == 0 {
			return usageError(fs, errors.New("--keys is not a JSON list of keys"), `e.g. --keys '[["ssn"],["given_name","family_name","birth_date"]]'`)
		}
	}
	if _, err := cohort.GenerateDir(cfg, *out); err != nil {
		return err
	}
	files := "spec.json and truth.json"
	if *realistic {
		files = "spec.json, truth.json and " + cohort.TruthGroupsFile
	}
	fmt.Fprintf(stdout, "wrote %d parties, %s to %s\n", *parties, files, *out)
	return nil
}

func runDevCerts(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dev-certs", stdout)
	out := fs.String("out", "", "directory to write ca.pem, NAME.pem and NAME-key.pem into")
	names := fs.String("names", "coordinator,admin,hospital-a,hospital-b,hospital-c", "comma-separated certificate names")
	validFor := fs.String("valid-for", "7d", "how long the CA and certificates are valid: a Go duration (72h) or days (30d)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usageError(fs, errors.New("--out is required"), "mpsi dev-certs --out ./certs")
	}
	validity, err := parseValidity(*validFor)
	if err != nil {
		return usageError(fs, fmt.Errorf("--valid-for: %w", err), "")
	}
	list := strings.Split(*names, ",")
	for i := range list {
		list[i] = strings.TrimSpace(list[i])
	}
	notAfter, err := devcert.WriteDirFor(*out, list, validity)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote ca.pem and certificates for %s to %s (development only)\n", strings.Join(list, ", "), *out)
	span := validity.String()
	if validity%(24*time.Hour) == 0 {
		span = fmt.Sprintf("%d days", validity/(24*time.Hour))
	}
	fmt.Fprintf(stdout, "they expire at %s (in %s; --valid-for sets this)\n", notAfter.UTC().Format(time.RFC3339), span)
	return nil
}

// parseValidity reads a certificate lifetime: a Go duration or a number of
// days ("30d"), between a minute and ten years.
func parseValidity(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(strings.TrimSpace(s), "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 3660 {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(strings.TrimSpace(s)); err != nil {
			return 0, fmt.Errorf("%q is not a duration (e.g. 72h or 30d)", s)
		}
	}
	if d < time.Minute || d > 3660*24*time.Hour {
		return 0, fmt.Errorf("%s is not between 1m and 3660d", s)
	}
	return d, nil
}

func cell(p *int64) string {
	if p == nil {
		return "suppressed"
	}
	return fmt.Sprint(*p)
}
