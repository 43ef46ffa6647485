package party

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mpsi-dev/mpsi/psi/clk"
	"github.com/mpsi-dev/mpsi/psi/ident"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// ErrRecords is wrapped by errors about a party's input file as a whole
// (missing column, no rows, too many rows, bad rows under the strict policy).
var ErrRecords = errors.New("party: invalid records")

// ErrDuplicateKey is returned under [DuplicatesReject] when two rows have
// the same normalised match key.
var ErrDuplicateKey = errors.New("party: duplicate match key")

// Duplicates says what loading does with rows whose match key repeats.
type Duplicates int

const (
	// DuplicatesMerge keeps the first row with a key and counts the others.
	DuplicatesMerge Duplicates = iota
	// DuplicatesReject fails the load, naming both lines.
	DuplicatesReject
)

// LoadOptions controls loading.
type LoadOptions struct {
	// Mapping maps logical fields to columns; nil matches by name.
	Mapping Mapping
	// Duplicates is the policy for repeated match keys (default merge).
	Duplicates Duplicates
	// SkipBadRows, if set, rejects rows that fail to parse (counted and
	// listed in the report) instead of failing the whole load.
	SkipBadRows bool
	// MaxErrors bounds the row errors kept in the report (default 100).
	MaxErrors int
}

// RowError is a row that failed to load.
type RowError struct {
	Line  int    // 1-based line number in the file, counting the header (row number for SQL)
	Field string // logical field, if one is to blame
	Err   error
	File  string // the input file, where a source reads several ("" otherwise)
	Unit  string // what Line counts: "line" ("" means line) or "row"
	Ref   string // the resource, e.g. "Patient/123", where the input has ids
}

// Error implements error.
func (e *RowError) Error() string {
	pos := Pos{File: e.File, Line: e.Line, Unit: e.Unit, Ref: e.Ref}
	if e.Field != "" {
		return fmt.Sprintf("%s: field %s: %v", pos, e.Field, e.Err)
	}
	return fmt.Sprintf("%s: %v", pos, e.Err)
}

// Unwrap returns the cause.
func (e *RowError) Unwrap() error { return e.Err }

// Report counts what loading did. Every row read is accounted for:
// Rows = Loaded + Rejected + Duplicates + EmptyIdentifier.
type Report struct {
	Rows            int `json:"rows"`
	Loaded          int `json:"loaded"`
	Rejected        int `json:"rejected"`
	Duplicates      int `json:"duplicates"`
	EmptyIdentifier int `json:"empty_identifier"`
	// MissingKey[k] (several match keys only) counts the loaded records
	// without a value for key k (a field of it empty); they can still be
	// linked on another key.
	MissingKey []int `json:"missing_key,omitempty"`
	// AmbiguousKey[k] (several match keys only) counts the loaded records
	// whose key-k value another of this party's records shares: key k
	// links none of them (doc/DESIGN.md §3, "Match keys").
	AmbiguousKey []int      `json:"ambiguous_key,omitempty"`
	Errors       []RowError `json:"-"`
}

// Records are a party's loaded, normalised rows. Keys are the unambiguous
// encodings of the match fields; they are secret and never leave the party.
// Records are immutable after loading and safe for concurrent reads.
//
// Keys, record ids and attribute values are stored back to back in arenas
// (a few bytes of overhead per record and field), not as one allocation
// each.
type Records struct {
	// keys holds each record's match key; with several match keys, the
	// keys one after the other, each preceded by its length as a uvarint
	// (0: no value), which identifies the record for de-duplication.
	keys  arena[[]byte]
	nkeys int
	clk   bool // mode clk: keys hold the features' values (CLKRecord)
	// ambiguous[k] marks the records whose key k another record shares.
	ambiguous [][]uint64
	fields    []string // attribute fields carried, in order
	// rest holds record i's record_id, then its attribute values in fields
	// order, each preceded by its length as a uvarint.
	rest   arena[string]
	Report Report
}

// Len is the number of records after de-duplication.
func (r *Records) Len() int { return r.keys.len() }

// Key returns record i's match key (shared with the Records: do not
// modify; its capacity ends with it, so appending to it copies).
func (r *Records) Key(i int) []byte {
	k := r.keys.item(i)
	return k[:len(k):len(k)]
}

// Keys is the number of match keys of the spec the records were loaded
// for.
func (r *Records) Keys() int { return max(r.nkeys, 1) }

// KeyAt returns record i's match key k, or nil when the record has no
// value for key k (a field of it was empty) or shares it with another of
// the party's records (ambiguous: counted in Report.AmbiguousKey). With one
// key, KeyAt(0, i) is Key(i). The slice is shared: do not modify it.
func (r *Records) KeyAt(k, i int) []byte {
	if r.nkeys <= 1 {
		if k != 0 {
			return nil
		}
		return r.Key(i)
	}
	if k < 0 || k >= r.nkeys || r.ambiguous[k][i/64]&(1<<(i%64)) != 0 {
		return nil
	}
	return keyPart(r.keys.item(i), k)
}

// CLKRecord returns, in mode clk, record i's values of the schema's
// features in schema order (ignored features as ""), as read: the CLK
// encoder's input. They are secret and never leave the party.
func (r *Records) CLKRecord(i int) []string {
	if !r.clk {
		return nil
	}
	var out []string
	b := r.keys.item(i)
	for len(b) > 0 {
		n, w := binary.Uvarint(b)
		out = append(out, string(b[w:w+int(n)]))
		b = b[w+int(n):]
	}
	return out
}

// keyPart returns key k of a record's concatenated keys (nil if empty).
func keyPart(b []byte, k int) []byte {
	for {
		n, w := binary.Uvarint(b)
		if k == 0 {
			if n == 0 {
				return nil
			}
			return b[w : w+int(n) : w+int(n)]
		}
		b = b[w+int(n):]
		k--
	}
}

// ID returns record i's record_id.
func (r *Records) ID(i int) string {
	v := r.rest.item(i)
	n, w := uvarintString(v)
	return v[w : w+n]
}

// Value returns record i's normalised value of a logical attribute field.
func (r *Records) Value(i int, field string) string {
	f := slices.Index(r.fields, field)
	if f < 0 {
		return ""
	}
	v := r.rest.item(i)
	f++ // the record_id comes first
	for {
		n, w := uvarintString(v)
		if f == 0 {
			return v[w : w+n]
		}
		v = v[w+n:]
		f--
	}
}

// uvarintString decodes a uvarint written by binary.AppendUvarint at the
// start of s: the value and its width.
func uvarintString(s string) (int, int) {
	var x uint64
	for i := 0; ; i++ {
		b := s[i]
		x |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			return int(x), i + 1
		}
	}
}

// LoadCSV reads a party's CSV file for the session spec. It applies the
// mapping, normalises every field and checks every value the party will
// contribute (range, scale) before anything is sent. Errors name the file,
// the line and the field.
func LoadCSV(path string, spec *session.Spec, partyName string, opt LoadOptions) (*Records, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("party: %w", err)
	}
	defer f.Close()
	r, err := ReadCSV(f, spec, partyName, opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return r, nil
}

type colSpec struct {
	field  string
	typ    ident.Type
	col    int
	layout ident.Layout
	format string // the mapping's date format, "" for the default
	sep    string
	sex    *ident.SexCodes // the mapping's sex_codes, nil for none
}

// ReadCSV is [LoadCSV] on a reader.
func ReadCSV(in io.Reader, spec *session.Spec, partyName string, opt LoadOptions) (*Records, error) {
	src := newCSVSource(in)
	if size := inputSize(in); size > 0 {
		return ReadRows(&sizedCSVSource{src, size}, spec, partyName, opt)
	}
	return ReadRows(src, spec, partyName, opt)
}

// rowEstimator is a [RowSource] that can estimate how many rows it holds
// in all, from the first rows read.
type rowEstimator interface {
	estimateRows(read int) int
}

// utf8Checker is a [RowSource] that knows whether the row it returned last
// is valid UTF-8 throughout (when not, the columns read are checked one by
// one: an invalid byte in a column no field reads costs no row).
type utf8Checker interface {
	validUTF8() bool
}

// estimateAfter is the number of rows read before a rowEstimator is asked.
const estimateAfter = 1024

// sizedCSVSource is a CSV source whose input size is known: the number of
// rows is the size over the mean size of the rows read so far.
type sizedCSVSource struct {
	*csvSource
	size int64
}

func (s *sizedCSVSource) estimateRows(read int) int {
	off := s.r.InputOffset() + s.fastBytes
	if off <= 0 || read <= 0 {
		return 0
	}
	// One part in eight over the mean, for rows longer than the first.
	return int(min(float64(s.size)*float64(read)/float64(off)*9/8, 1<<40))
}

// inputSize is the number of bytes left in in when it says so (an
// in-memory reader, or a regular file read from its start), otherwise 0.
func inputSize(in io.Reader) int64 {
	switch r := in.(type) {
	case interface{ Len() int }: // bytes.Reader, strings.Reader, bytes.Buffer
		return int64(r.Len())
	case *os.File:
		fi, err := r.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return 0
		}
		if off, err := r.Seek(0, io.SeekCurrent); err == nil && off < fi.Size() {
			return fi.Size() - off
		}
	}
	return 0
}

// ReadRows loads a party's records from any [RowSource]: CSV, FHIR NDJSON
// and SQL inputs all come through here, so that mapping, normalisation,
// value checks, de-duplication and error reporting are the same for all.
// Columns are matched to fields as [LoadCSV] does; a source that
// implements [ColumnChecker] is shown the columns the load reads before the
// first row.
func ReadRows(src RowSource, spec *session.Spec, partyName string, opt LoadOptions) (*Records, error) {
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
	header, err := src.Columns()
	if err != nil {
		return nil, err
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
				c.format = m.Format
			}
			if m.Separator != "" {
				c.sep = m.Separator
			}
			if m.SexCodes != nil {
				c.sex, _ = ident.NewSexCodes(m.SexCodes) // checked by Mapping.check
			}
		}
		c.col = find(name)
		if c.col < 0 && required {
			return c, fmt.Errorf("%w: no column %q for field %s in the header (columns: %s)", ErrRecords, name, field, strings.Join(header, ", "))
		}
		return c, nil
	}
	// The match fields, each once, and the keys as indices into them; in
	// mode clk, the column of each of the schema's features instead.
	var match []colSpec
	var clkCols []int
	var clkTyped []*colSpec // per feature: normalise first when the spec types it
	var clkCheck *clk.Encoder
	if sc := spec.CLKSchema(); sc != nil {
		if _, ok := src.(ColumnChecker); ok {
			return nil, fmt.Errorf("%w: mode clk reads CSV exports only", ErrRecords)
		}
		for _, f := range sc.Features {
			col := -1
			var typed *colSpec
			if !f.Ignored {
				c, err := resolve(f.Identifier, true)
				if err != nil {
					return nil, err
				}
				col = c.col
				if t, ok := spec.FieldType(f.Identifier); ok && t.Matchable() {
					c.typ = t
					typed = &c
				}
			}
			clkCols = append(clkCols, col)
			clkTyped = append(clkTyped, typed)
		}
		// Values are checked as they load, with an encoder under a
		// throwaway secret (the session's CLK secret exists only once
		// every party has joined).
		var secret [32]byte
		if _, err := rand.Read(secret[:]); err != nil {
			return nil, err
		}
		if clkCheck, err = clk.NewEncoder(sc, secret[:]); err != nil {
			return nil, err
		}
	}
	for _, f := range spec.MatchFieldNames() {
		if clkCols != nil {
			break
		}
		c, err := resolve(f, true)
		if err != nil {
			return nil, err
		}
		c.typ, _ = spec.FieldType(f)
		match = append(match, c)
	}
	keySpecs := spec.MatchKeys()
	type keyField struct {
		name  string // as written in the spec: the field's name in the key
		field int    // index into match
		tr    ident.Transform
	}
	keyFields := make([][]keyField, len(keySpecs))
	for k, key := range keySpecs {
		for _, kf := range key {
			f := slices.IndexFunc(match, func(c colSpec) bool { return c.field == kf.Field })
			keyFields[k] = append(keyFields[k], keyField{name: kf.String(), field: f, tr: kf.Transform})
		}
	}
	multi := len(keySpecs) > 1
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
	if cc, ok := src.(ColumnChecker); ok {
		var use []ColumnUse
		for _, c := range match {
			use = append(use, ColumnUse{Field: c.field, Type: c.typ, Column: c.col, Name: header[c.col], Match: true, Format: c.format})
		}
		for _, c := range attrs {
			use = append(use, ColumnUse{Field: c.field, Type: c.typ, Column: c.col, Name: header[c.col], Format: c.format, Separator: c.sep})
		}
		if idCol.col >= 0 {
			use = append(use, ColumnUse{Field: RecordIDField, Column: idCol.col, Name: header[idCol.col]})
		}
		// Columns of the spec's other fields, which this party does not read.
		for _, f := range slices.Sorted(maps.Keys(spec.Fields)) {
			if slices.ContainsFunc(use, func(u ColumnUse) bool { return u.Field == f }) {
				continue
			}
			if c, _ := resolve(f, false); c.col >= 0 {
				typ, _ := spec.FieldType(f)
				use = append(use, ColumnUse{Field: f, Type: typ, Column: c.col, Name: header[c.col], Unread: true})
			}
		}
		if err := cc.CheckColumns(use); err != nil {
			return nil, err
		}
	}

	// The columns read: only they must be valid UTF-8 (an export's free
	// text in another encoding, in a column no field maps, costs no row).
	var used []int
	for _, c := range append(append(slices.Clone(match), attrs...), idCol) {
		if c.col >= 0 && !slices.Contains(used, c.col) {
			used = append(used, c.col)
		}
	}
	for _, col := range clkCols {
		if col >= 0 && !slices.Contains(used, col) {
			used = append(used, col)
		}
	}
	slices.Sort(used)
	recs := &Records{nkeys: len(keySpecs), clk: clkCols != nil}
	for _, a := range attrs {
		recs.fields = append(recs.fields, a.field)
	}
	rep := &recs.Report
	seen := newKeySet(0)
	est, _ := src.(rowEstimator)
	checked, _ := src.(utf8Checker)
	// The position of every record, to name the first of two rows with the
	// same key; kept only while loading, and only if duplicates fail it.
	var poss []Pos
	vals := make([]string, len(attrs))
	checker := layout.Checker(pi, recs.fields)
	var key, val, one, line []byte
	var attrText textBlock // normalised attribute values, until they are packed
	var clkRow []string
	norm := make([][]byte, len(match)) // this row's normal form of each match field
	present := make([]bool, len(match))
	reject := func(re RowError) error {
		rep.Rejected++
		if len(rep.Errors) < opt.MaxErrors {
			rep.Errors = append(rep.Errors, re)
		}
		// An ambiguous sex code stops the load even when skipping: the
		// file's other codes are probably misread too (h for male means
		// m is female).
		if !opt.SkipBadRows || errors.Is(re.Err, ident.ErrAmbiguousSex) {
			return fmt.Errorf("%w: %w", ErrRecords, &re)
		}
		return nil
	}
	// fail rejects the row the source returned last.
	fail := func(field string, err error) error {
		pos := src.Pos()
		return reject(RowError{Line: pos.Line, File: pos.File, Unit: pos.Unit, Ref: pos.Ref, Field: field, Err: err})
	}
	// Rows whose keys are looked up are batched, so that the table's
	// cache misses of a batch overlap (one row at a time, each waits for
	// its own); rows are still de-duplicated, and errors reported, in
	// input order.
	var batch keyBatchRows
	flush := func() error {
		defer batch.reset()
		var near uint64
		for i := range batch.rows {
			near += seen.near(batch.rows[i].tag)
		}
		seen.sink = near
		for i := range batch.rows {
			p := &batch.rows[i]
			key := batch.keys[p.key:batch.end(i, func(q pendingRow) int { return q.key }, len(batch.keys))]
			first := seen.findTag(&recs.keys, key, p.tag)
			if first >= 0 {
				if opt.Duplicates == DuplicatesReject {
					return fmt.Errorf("%w: %s repeats the match key of %s", ErrDuplicateKey, batch.poss[i], poss[first])
				}
				rep.Duplicates++
				continue
			}
			recs.keys.add(key)
			seen.insert(recs.keys.len()-1, p.tag)
			if opt.Duplicates == DuplicatesReject {
				poss = append(poss, batch.poss[i])
			}
			recs.rest.add(batch.rest[p.rest:batch.end(i, func(q pendingRow) int { return q.rest }, len(batch.rest))])
			rep.Loaded++
		}
		return nil
	}
	load := func() error {
		for {
			row, err := src.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				var re *RowError
				if !errors.As(err, &re) {
					return err
				}
				rep.Rows++
				if e := reject(*re); e != nil {
					return e
				}
				continue
			}
			rep.Rows++
			if est != nil && rep.Rows == estimateAfter {
				// Size the key table once for the whole input, so that it
				// does not grow (and move every slot) log2(n) times.
				seen.reserve(min(est.estimateRows(rep.Rows), spec.MaxSetSize))
			}
			if rep.Rows > spec.MaxSetSize {
				return fmt.Errorf("%w: more than max_set_size = %d rows", ErrRecords, spec.MaxSetSize)
			}
			if len(row) != len(header) {
				return fmt.Errorf("%w: %s: %d columns, want %d", ErrRecords, src.Pos(), len(row), len(header))
			}
			bad := false
			if checked == nil || !checked.validUTF8() { // else the whole row is
				for _, i := range used {
					if c := row[i]; !utf8.ValidString(c) {
						if e := fail("", valueFree(fmt.Sprintf("column %d (%s) is not valid UTF-8", i+1, header[i]))); e != nil {
							return e
						}
						bad = true
						break
					}
				}
				if bad {
					continue
				}
			}
			if clkCols != nil {
				// Mode clk: the features' values for the encoder: as read,
				// or the normal form when the spec declares the feature as
				// a typed field (so hospitals' spellings and date layouts
				// agree before encoding; an empty one is "").
				key = key[:0]
				clkRow = clkRow[:0]
				empty := true
				for fi, col := range clkCols {
					v := ""
					if col >= 0 {
						v = row[col]
					}
					if c := clkTyped[fi]; c != nil {
						nv, err := c.appendNormalized(val[:0], strings.TrimSpace(v))
						switch {
						case strings.TrimSpace(v) == "" || errors.Is(err, ident.ErrEmpty):
							v = ""
						case err != nil:
							if e := fail(c.field, err); e != nil {
								return e
							}
							bad = true
						default:
							val, v = nv, string(nv)
						}
						if bad {
							break
						}
					}
					empty = empty && (col < 0 || strings.TrimSpace(v) == "")
					key = binary.AppendUvarint(key, uint64(len(v)))
					key = append(key, v...)
					clkRow = append(clkRow, v)
				}
				if bad {
					continue
				}
				if empty {
					rep.EmptyIdentifier++
					continue
				}
				if _, err := clkCheck.Encode(clkRow); err != nil {
					var re *clk.RecordError
					field := ""
					if errors.As(err, &re) {
						field = re.Feature
					}
					if e := fail(field, err); e != nil {
						return e
					}
					continue
				}
			} else {
				// Normalise each match field once; an empty one leaves the
				// keys that use it without a value.
				clear(present)
				for f := range match {
					c := &match[f] // not a copy: a colSpec holds a date layout
					raw := row[c.col]
					if !ident.Trimmed(raw) {
						raw = strings.TrimSpace(raw)
					}
					if raw == "" {
						if !multi {
							break // one key: the row is an empty identifier, whatever follows
						}
						continue
					}
					var err error
					if norm[f], err = c.appendNormalized(norm[f][:0], raw); err == nil {
						present[f] = true
						continue
					}
					if errors.Is(err, ident.ErrEmpty) {
						if !multi {
							break
						}
						continue
					}
					if e := fail(c.field, err); e != nil {
						return e
					}
					bad = true
					break
				}
				if bad {
					continue
				}
				// Each key is ident.AppendKey's bytes over its (transformed)
				// fields, named as the spec writes them; with one key and no
				// transform, exactly the bytes of the fields' normal forms.
				key = key[:0]
				complete := 0
				for _, kfs := range keyFields {
					if !multi {
						one, key = key, one // one key: built where it is read
					}
					one = append(one[:0], ident.KeyVersion)
					ok := true
					for j := range kfs {
						kf := &kfs[j]
						if !present[kf.field] {
							ok = false
							break
						}
						if kf.tr == ident.TransformNone {
							one = ident.AppendKeyField(one, kf.name, norm[kf.field])
							continue
						}
						var err error
						if val, err = kf.tr.Append(val[:0], string(norm[kf.field])); err != nil {
							ok = false // nothing left after the transform
							break
						}
						one = ident.AppendKeyField(one, kf.name, val)
					}
					switch {
					case !multi && ok:
						one, key = key, one
					case !multi:
						one, key = key, one[:0]
					case ok:
						key = binary.AppendUvarint(key, uint64(len(one)))
						key = append(key, one...)
					default:
						key = binary.AppendUvarint(key, 0)
					}
					if ok {
						complete++
					}
				}
				if complete == 0 {
					rep.EmptyIdentifier++
					continue
				}
			}
			for i := range attrs { // sets every vals[i]
				c := &attrs[i]
				v, err := normalizeAttr(c, row[c.col], &val, &attrText)
				if err != nil {
					if e := fail(c.field, err); e != nil {
						return e
					}
					bad = true
					break
				}
				vals[i] = v
			}
			if bad {
				continue
			}
			if err := checker.Check(vals); err != nil {
				if e := fail("", err); e != nil {
					return e
				}
				continue
			}
			// The row is good: it waits in the batch for its key to be looked
			// up.
			p := pendingRow{tag: seen.tag(key), key: len(batch.keys)}
			if opt.Duplicates == DuplicatesReject {
				batch.poss = append(batch.poss, src.Pos()) // to name the rows of a repeated key
			}
			batch.keys = append(batch.keys, key...)
			p.rest = len(batch.rest)
			if idCol.col >= 0 {
				id := row[idCol.col]
				if !ident.Trimmed(id) {
					id = strings.TrimSpace(id)
				}
				batch.rest = binary.AppendUvarint(batch.rest, uint64(len(id)))
				batch.rest = append(batch.rest, id...)
			} else {
				line = strconv.AppendInt(line[:0], int64(src.Pos().Line), 10)
				batch.rest = binary.AppendUvarint(batch.rest, uint64(len(line)))
				batch.rest = append(batch.rest, line...)
			}
			for _, v := range vals {
				batch.rest = binary.AppendUvarint(batch.rest, uint64(len(v)))
				batch.rest = append(batch.rest, v...)
			}
			batch.rows = append(batch.rows, p)
			if len(batch.rows) == keyBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err = load()
	// The rows before an error come first: a duplicate among them is
	// the error reported.
	if e := flush(); e != nil {
		return nil, e
	}
	if err != nil {
		return nil, err
	}
	if rep.Loaded == 0 && rep.Rows == 0 {
		return nil, fmt.Errorf("%w: no data rows", ErrRecords)
	}
	recs.keys.seal()
	recs.rest.seal()
	if multi {
		recs.markAmbiguous()
	}
	return recs, nil
}

// markAmbiguous finds, for each key, the values that two or more records
// share (records that agree on every key were merged while loading), marks
// those records ambiguous for that key and counts them, with the records
// missing each key, in the Report. It sorts (hash, record) pairs, 16 bytes
// a record, rather than building a map of the values.
func (r *Records) markAmbiguous() {
	n, keys := r.Len(), r.nkeys
	r.Report.MissingKey = make([]int, keys)
	r.Report.AmbiguousKey = make([]int, keys)
	r.ambiguous = make([][]uint64, keys)
	type hashed struct {
		h uint64
		i uint32
	}
	seed := maphash.MakeSeed()
	hs := make([]hashed, 0, n)
	for k := range keys {
		r.ambiguous[k] = make([]uint64, (n+63)/64)
		hs = hs[:0]
		for i := range n {
			v := keyPart(r.keys.item(i), k)
			if v == nil {
				r.Report.MissingKey[k]++
				continue
			}
			hs = append(hs, hashed{maphash.Bytes(seed, v), uint32(i)})
		}
		slices.SortFunc(hs, func(a, b hashed) int { return cmp.Compare(a.h, b.h) })
		mark := func(i uint32) {
			if r.ambiguous[k][i/64]&(1<<(i%64)) == 0 {
				r.ambiguous[k][i/64] |= 1 << (i % 64)
				r.Report.AmbiguousKey[k]++
			}
		}
		for a := 0; a < len(hs); {
			b := a + 1
			for b < len(hs) && hs[b].h == hs[a].h {
				b++
			}
			// Equal hashes: sort the run by value and compare neighbours
			// (a collision is not a shared value; a coarse key may give
			// long runs, so never all pairs).
			if run := hs[a:b]; len(run) > 1 {
				val := func(h hashed) []byte { return keyPart(r.keys.item(int(h.i)), k) }
				slices.SortFunc(run, func(x, y hashed) int { return bytes.Compare(val(x), val(y)) })
				for x := 1; x < len(run); x++ {
					if bytes.Equal(val(run[x-1]), val(run[x])) {
						mark(run[x-1].i)
						mark(run[x].i)
					}
				}
			}
			a = b
		}
	}
}

// keyBatch is the number of rows whose keys are looked up together.
const keyBatch = 32

// keyBatchRows are rows waiting for their keys to be looked up: their
// keys, and their record ids and attribute values packed as in
// Records.rest, back to back.
type keyBatchRows struct {
	rows       []pendingRow
	poss       []Pos // the rows' positions, when duplicates are refused
	keys, rest []byte
}

// pendingRow is a row of a keyBatchRows: where its parts start.
type pendingRow struct {
	tag       uint32
	key, rest int
}

// end returns where row i's part ends: the start of row i+1's (off), or n
// for the last row.
func (b *keyBatchRows) end(i int, off func(pendingRow) int, n int) int {
	if i+1 < len(b.rows) {
		return off(b.rows[i+1])
	}
	return n
}

func (b *keyBatchRows) reset() {
	b.rows, b.poss, b.keys, b.rest = b.rows[:0], b.poss[:0], b.keys[:0], b.rest[:0]
}

// normalizeAttr normalises an attribute value; buf is scratch space kept
// between calls, and a value that is not raw's text is made a string in
// blk.
func normalizeAttr(c *colSpec, raw string, buf *[]byte, blk *textBlock) (string, error) {
	if !ident.Trimmed(raw) {
		raw = strings.TrimSpace(raw)
	}
	if raw == "" {
		return "", nil
	}
	switch c.typ {
	case ident.TypeCodes:
		// The non-empty trimmed codes split at c.sep, joined with
		// session.CodeSeparator.
		b := (*buf)[:0]
		for rest, more := raw, true; more; {
			var code string
			code, rest, more = strings.Cut(rest, c.sep) // c.sep is never empty
			if !ident.Trimmed(code) {
				code = strings.TrimSpace(code)
			}
			if strings.Contains(code, session.CodeSeparator) {
				return "", fmt.Errorf("code contains a control character")
			}
			if code == "" {
				continue
			}
			if len(b) > 0 {
				b = append(b, session.CodeSeparator...)
			}
			b = append(b, code...)
		}
		*buf = b
		if len(b) == len(raw) && string(b) == raw {
			return raw, nil // one code: no copy
		}
		return blk.text(b), nil
	case ident.TypeNumber:
		return raw, nil
	default:
		b, err := c.appendNormalized((*buf)[:0], raw)
		if err != nil {
			return "", err
		}
		*buf = b
		return blk.text(b), nil
	}
}
