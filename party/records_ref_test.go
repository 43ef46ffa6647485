package party

// The loader as it was before records moved into arenas, frozen as the
// oracle for equivalence tests.

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mpsi-dev/mpsi/psi/ident"
	"github.com/mpsi-dev/mpsi/psi/session"
)

type refRecords struct {
	keys   [][]byte
	ids    []string
	fields []string
	values [][]string
	Report Report
}

// refReadCSV is ReadCSV before records moved into arenas, verbatim but for
// the result type.
func refReadCSV(in io.Reader, spec *session.Spec, partyName string, opt LoadOptions) (*refRecords, error) {
	pi := spec.PartyIndex(partyName)
	if pi < 0 {
		return nil, fmt.Errorf("%w: %q is not a party of session %s", ErrRecords, partyName, spec.ID)
	}
	layout, err := session.NewLayout(spec)
	if err != nil {
		return nil, err
	}
	if err := opt.Mapping.check(spec); err != nil {
		return nil, err
	}
	if opt.MaxErrors == 0 {
		opt.MaxErrors = 100
	}
	cr := csv.NewReader(in)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = 0
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%w: empty file, expected a header line", ErrRecords)
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			start, fault := csvFault(pe)
			return nil, fmt.Errorf("%w: header: line %d: %w", ErrRecords, start, fault)
		}
		return nil, fmt.Errorf("%w: %v", ErrRecords, err)
	}
	header = slices.Clone(header)
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	find := func(name string) int {
		for i, h := range header {
			if strings.EqualFold(strings.TrimSpace(h), name) {
				return i
			}
		}
		return -1
	}
	iso, _ := ident.ParseLayout(ident.DefaultLayout)
	resolve := func(field string, required bool) (colSpec, error) {
		c := colSpec{field: field, col: -1, layout: iso, sep: ";"}
		name := field
		if m, ok := opt.Mapping[field]; ok {
			name = m.Column
			if m.Format != "" {
				c.layout, _ = ident.ParseLayout(m.Format)
			}
			if m.Separator != "" {
				c.sep = m.Separator
			}
		}
		c.col = find(name)
		if c.col < 0 && required {
			return c, fmt.Errorf("%w: no column %q for field %s in the header (columns: %s)", ErrRecords, name, field, strings.Join(header, ", "))
		}
		return c, nil
	}
	var match []colSpec
	for _, f := range spec.Match.Fields {
		c, err := resolve(f, true)
		if err != nil {
			return nil, err
		}
		c.typ, _ = spec.FieldType(f)
		match = append(match, c)
	}
	// Attribute fields this party needs: those of aggregates it contributes to.
	var attrs []colSpec
	for _, a := range spec.Aggregates {
		if a.Field == "" || !slices.Contains(a.From, partyName) || slices.ContainsFunc(attrs, func(c colSpec) bool { return c.field == a.Field }) {
			continue
		}
		c, err := resolve(a.Field, true)
		if err != nil {
			return nil, err
		}
		c.typ, _ = spec.FieldType(a.Field)
		attrs = append(attrs, c)
	}
	idCol, _ := resolve(RecordIDField, false)
	if _, mapped := opt.Mapping[RecordIDField]; mapped && idCol.col < 0 {
		return nil, fmt.Errorf("%w: no column %q for record_id in the header", ErrRecords, opt.Mapping[RecordIDField].Column)
	}

	// The columns read: only they must be valid UTF-8.
	var used []int
	for _, c := range append(append(slices.Clone(match), attrs...), idCol) {
		if c.col >= 0 && !slices.Contains(used, c.col) {
			used = append(used, c.col)
		}
	}
	slices.Sort(used)
	recs := &refRecords{}
	for _, a := range attrs {
		recs.fields = append(recs.fields, a.field)
	}
	rep := &recs.Report
	seen := map[string]int{} // key -> line
	kf := make([]ident.Field, len(match))
	scratch := make([]uint64, layout.Len())
	fail := func(line int, field string, err error) error {
		re := RowError{Line: line, Field: field, Err: err}
		rep.Rejected++
		if len(rep.Errors) < opt.MaxErrors {
			rep.Errors = append(rep.Errors, re)
		}
		// Since issue 13 part 6 (a deliberate change, ported here): an
		// ambiguous sex code stops the load even when skipping bad rows.
		if !opt.SkipBadRows || errors.Is(err, ident.ErrAmbiguousSex) {
			return &re
		}
		return nil
	}
	for {
		row, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return nil, fmt.Errorf("%w: %v", ErrRecords, err)
			}
			// Which faults are row errors, and at which line, is
			// csvRowError's (tested on its own in records_test.go).
			var re *RowError
			if !errors.As(csvRowError(pe), &re) {
				return nil, csvRowError(pe)
			}
			rep.Rows++
			if e := fail(re.Line, "", re.Err); e != nil {
				return nil, fmt.Errorf("%w: %w", ErrRecords, e)
			}
			continue
		}
		line, _ := cr.FieldPos(0)
		rep.Rows++
		if rep.Rows > spec.MaxSetSize {
			return nil, fmt.Errorf("%w: more than max_set_size = %d rows", ErrRecords, spec.MaxSetSize)
		}
		bad := false
		for _, i := range used {
			if !utf8.ValidString(row[i]) {
				if e := fail(line, "", valueFree(fmt.Sprintf("column %d (%s) is not valid UTF-8", i+1, header[i]))); e != nil {
					return nil, fmt.Errorf("%w: %w", ErrRecords, e)
				}
				bad = true
				break
			}
		}
		if bad {
			continue
		}
		empty := false
		for i, c := range match {
			raw := strings.TrimSpace(row[c.col])
			if raw == "" {
				empty = true
				break
			}
			v, err := ident.Normalize(c.typ, c.layout, raw)
			if errors.Is(err, ident.ErrEmpty) {
				empty = true
				break
			}
			if err != nil {
				if e := fail(line, c.field, err); e != nil {
					return nil, fmt.Errorf("%w: %w", ErrRecords, e)
				}
				bad = true
				break
			}
			kf[i] = ident.Field{Name: c.field, Value: v}
		}
		if bad {
			continue
		}
		if empty {
			rep.EmptyIdentifier++
			continue
		}
		vals := make([]string, len(attrs))
		for i, c := range attrs {
			v, err := refNormalizeAttr(c, row[c.col])
			if err != nil {
				if e := fail(line, c.field, err); e != nil {
					return nil, fmt.Errorf("%w: %w", ErrRecords, e)
				}
				bad = true
				break
			}
			vals[i] = v
		}
		if bad {
			continue
		}
		get := func(field string) string {
			if f := slices.Index(recs.fields, field); f >= 0 {
				return vals[f]
			}
			return ""
		}
		clear(scratch)
		if err := layout.Contribute(pi, get, scratch); err != nil {
			if e := fail(line, "", err); e != nil {
				return nil, fmt.Errorf("%w: %w", ErrRecords, e)
			}
			continue
		}
		key := ident.AppendKey(nil, kf)
		if first, dup := seen[string(key)]; dup {
			if opt.Duplicates == DuplicatesReject {
				return nil, fmt.Errorf("%w: line %d repeats the match key of line %d", ErrDuplicateKey, line, first)
			}
			rep.Duplicates++
			continue
		}
		seen[string(key)] = line
		id := strconv.Itoa(line)
		if idCol.col >= 0 {
			id = strings.TrimSpace(row[idCol.col])
		}
		recs.keys = append(recs.keys, key)
		recs.ids = append(recs.ids, id)
		recs.values = append(recs.values, vals)
		rep.Loaded++
	}
	if rep.Loaded == 0 && rep.Rows == 0 {
		return nil, fmt.Errorf("%w: no data rows", ErrRecords)
	}
	return recs, nil
}

// refNormalizeAttr is normalizeAttr before it reused a buffer, verbatim.
func refNormalizeAttr(c colSpec, raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", nil
	}
	switch c.typ {
	case ident.TypeCodes:
		var codes []string
		for _, code := range strings.Split(raw, c.sep) {
			code = strings.TrimSpace(code)
			if strings.Contains(code, session.CodeSeparator) {
				return "", fmt.Errorf("code contains a control character")
			}
			if code != "" {
				codes = append(codes, code)
			}
		}
		return strings.Join(codes, session.CodeSeparator), nil
	case ident.TypeNumber:
		return raw, nil
	default:
		return ident.Normalize(c.typ, c.layout, raw)
	}
}
