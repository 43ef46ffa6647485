package fhir

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/mpsi-dev/mpsi/party"
)

// ErrInput is wrapped by errors about the NDJSON files as a whole (no
// Patient file, a resource of the wrong type, a malformed Condition line).
var ErrInput = errors.New("fhir: invalid input")

// maxLine bounds one NDJSON line (one resource).
const maxLine = 64 << 20

// Source streams the Patients of FHIR R4 bulk-export NDJSON files as a
// [party.RowSource]: one row per Patient, one column per mapped field. It
// holds one line at a time, plus (only when a Condition field is read) the
// Condition values of every patient, gathered before the first Patient.
// A Source is not safe for concurrent use.
type Source struct {
	ctx        context.Context
	patients   []input
	conditions []input
	mapping    Mapping
	cols       []string
	paths      []*Path
	roots      map[string]bool // top-level Patient elements any path reads
	required   []bool          // column is a match field: absent is an error

	condCols []int               // columns read from Conditions
	condVals map[string][]string // patient id -> per condCols, its values joined by ';'
	file     int                 // index in patients
	f        io.ReadCloser
	sc       *bufio.Scanner
	pos      party.Pos
	row      []string
	shape    *shape // of Patient lines, made at the first
	res      map[string]any
	started  bool
}

// Open makes a Source over the given files and bulk-export directories,
// with the mapping m (nil: [DefaultMapping]). A file is a Patient or a
// Condition file by its name (Patient.000.ndjson, Condition.ndjson); a
// directory contributes its *.ndjson files whose names start with Patient
// or Condition and ignores the other resource types. Nothing is read
// until the first call to Next. The context bounds the reading.
func Open(ctx context.Context, inputs []string, m Mapping) (*Source, error) {
	if m == nil {
		m = DefaultMapping()
	}
	s := &Source{ctx: ctx, mapping: m, roots: map[string]bool{}}
	for _, in := range inputs {
		st, err := os.Stat(in)
		if err != nil {
			return nil, fmt.Errorf("fhir: %w", err)
		}
		if st.IsDir() {
			ents, err := os.ReadDir(in)
			if err != nil {
				return nil, fmt.Errorf("fhir: %w", err)
			}
			for _, e := range ents {
				if e.IsDir() || !strings.HasSuffix(e.Name(), ".ndjson") {
					continue
				}
				switch kind(e.Name()) {
				case "Patient":
					s.patients = append(s.patients, fileInput(filepath.Join(in, e.Name())))
				case "Condition":
					s.conditions = append(s.conditions, fileInput(filepath.Join(in, e.Name())))
				}
			}
			continue
		}
		switch kind(filepath.Base(in)) {
		case "Patient":
			s.patients = append(s.patients, fileInput(in))
		case "Condition":
			s.conditions = append(s.conditions, fileInput(in))
		default:
			return nil, fmt.Errorf("%w: %s: not a Patient or Condition file (the name must start with Patient or Condition)", ErrInput, filepath.Base(in))
		}
	}
	if len(s.patients) == 0 {
		return nil, fmt.Errorf("%w: no Patient file among %s", ErrInput, strings.Join(inputs, ", "))
	}
	s.init()
	return s, nil
}

// input is a named NDJSON stream.
type input struct {
	name string
	open func() (io.ReadCloser, error)
}

func fileInput(path string) input {
	return input{filepath.Base(path), func() (io.ReadCloser, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("fhir: %w", err)
		}
		return f, nil
	}}
}

// NewReader makes a Source over one stream of Patient NDJSON (no
// Conditions); name is used in error messages.
func NewReader(ctx context.Context, name string, patients io.Reader, m Mapping) *Source {
	if m == nil {
		m = DefaultMapping()
	}
	s := &Source{ctx: ctx, mapping: m, roots: map[string]bool{}}
	s.patients = []input{{name, func() (io.ReadCloser, error) { return io.NopCloser(patients), nil }}}
	s.init()
	return s
}

func (s *Source) init() {
	s.cols = slices.Sorted(maps.Keys(s.mapping))
	for i, c := range s.cols {
		p := s.mapping[c]
		s.paths = append(s.paths, p)
		if p.condition {
			s.condCols = append(s.condCols, i)
		}
	}
	s.required = make([]bool, len(s.cols))
	s.row = make([]string, len(s.cols))
}

// kind is the resource type a bulk-export file name announces.
func kind(name string) string {
	for _, k := range []string{"Patient", "Condition"} {
		if strings.HasPrefix(name, k) {
			return k
		}
	}
	return ""
}

// Columns returns the mapped field names, sorted.
func (s *Source) Columns() ([]string, error) { return s.cols, nil }

// CheckColumns notes the match fields (a Patient without one is a bad
// row: FHIR leaves absent elements out, so there is no empty cell to
// count) and reads only the elements the load needs.
func (s *Source) CheckColumns(use []party.ColumnUse) error {
	used := make([]bool, len(s.cols))
	for _, u := range use {
		if u.Unread {
			continue
		}
		used[u.Column] = true
		if u.Match {
			if s.paths[u.Column].condition {
				return fmt.Errorf("%w: match field %s cannot come from Conditions", ErrMapping, u.Field)
			}
			s.required[u.Column] = true
		}
	}
	s.condCols = slices.DeleteFunc(s.condCols, func(c int) bool { return !used[c] })
	for i := range s.paths {
		if !used[i] {
			s.paths[i] = nil
		}
	}
	return nil
}

// Pos names the Patient Next returned last.
func (s *Source) Pos() party.Pos { return s.pos }

// Close closes the file being read.
func (s *Source) Close() error {
	if s.f != nil {
		err := s.f.Close()
		s.f = nil
		return err
	}
	return nil
}

// Next returns the next Patient's row.
func (s *Source) Next() ([]string, error) {
	if !s.started {
		s.started = true
		for _, p := range s.paths {
			if p != nil && !p.condition {
				p.roots(s.roots)
			}
		}
		if p, ok := s.mapping["record_id"]; ok && len(s.condCols) > 0 {
			p.roots(s.roots)
		}
		if len(s.condCols) > 0 {
			if err := s.readConditions(); err != nil {
				return nil, err
			}
		}
	}
	for {
		if err := s.ctx.Err(); err != nil {
			return nil, err
		}
		if s.sc == nil {
			if s.file == len(s.patients) {
				return nil, io.EOF
			}
			if err := s.openNext(); err != nil {
				return nil, err
			}
		}
		if !s.sc.Scan() {
			if err := s.sc.Err(); err != nil {
				return nil, fmt.Errorf("%w: %s: after line %d: %v", ErrInput, s.pos.File, s.pos.Line, err)
			}
			s.Close()
			s.sc = nil
			s.file++
			continue
		}
		s.pos.Line++
		s.pos.Ref = ""
		line := s.sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		return s.patient(line)
	}
}

func (s *Source) openNext() error {
	f, err := s.patients[s.file].open()
	if err != nil {
		return err
	}
	s.f = f
	s.sc = bufio.NewScanner(f)
	s.sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	s.pos = party.Pos{File: s.patients[s.file].name}
	return nil
}

// shape decodes a line in one pass into a struct type made at run time:
// resourceType, id, and an any-typed field for each top-level element a
// path reads. The decoder skips every other element (narrative,
// extensions) without building anything for it. (encoding/json matches
// member names exactly first, else case-insensitively.)
type shape struct {
	names []string      // element of field i+2
	ptr   reflect.Value // *struct, reused line after line
}

func newShape(roots map[string]bool) *shape {
	anyT := reflect.TypeFor[any]()
	fields := []reflect.StructField{
		{Name: "ResourceType", Type: anyT, Tag: `json:"resourceType"`},
		{Name: "ID", Type: anyT, Tag: `json:"id"`},
	}
	sh := &shape{}
	for _, n := range slices.Sorted(maps.Keys(roots)) {
		if n == "resourceType" || n == "id" {
			continue
		}
		fields = append(fields, reflect.StructField{Name: fmt.Sprintf("F%d", len(sh.names)), Type: anyT, Tag: reflect.StructTag(`json:"` + n + `"`)})
		sh.names = append(sh.names, n)
	}
	sh.ptr = reflect.New(reflect.StructOf(fields))
	return sh
}

// decode decodes a line into res, checks its type and names it in pos.
func (sh *shape) decode(line []byte, want string, pos *party.Pos, res map[string]any) error {
	v := sh.ptr.Elem()
	v.SetZero()
	clear(res)
	if err := json.Unmarshal(line, sh.ptr.Interface()); err != nil {
		return fmt.Errorf("malformed JSON: %v", jsonErr(err))
	}
	var h [2]string
	for i, name := range []string{"resourceType", "id"} {
		f := v.Field(i).Interface()
		if f == nil {
			continue
		}
		str, ok := f.(string)
		if !ok {
			return fmt.Errorf("%s is not a string", name)
		}
		h[i] = str
		res[name] = str
	}
	for i, n := range sh.names {
		if f := v.Field(i + 2).Interface(); f != nil {
			res[n] = f
		}
	}
	if h[0] == "" {
		return errors.New("no resourceType: not a FHIR resource")
	}
	pos.Ref = h[0]
	if h[1] != "" {
		pos.Ref += "/" + h[1]
	}
	if h[0] != want {
		return fmt.Errorf("%w: a %s resource in a %s file", ErrInput, h[0], want)
	}
	return nil
}

// jsonErr drops the decoder's quote of the input (a patient's value) from
// a syntax or type error, keeping its kind and offset.
func jsonErr(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("a JSON %s where an object was expected", te.Value)
	}
	return "not a JSON object"
}

func (s *Source) patient(line []byte) ([]string, error) {
	bad := func(field string, err error) error {
		return &party.RowError{File: s.pos.File, Line: s.pos.Line, Ref: s.pos.Ref, Field: field, Err: err}
	}
	if s.shape == nil {
		s.shape, s.res = newShape(s.roots), map[string]any{}
	}
	if err := s.shape.decode(line, "Patient", &s.pos, s.res); err != nil {
		if errors.Is(err, ErrInput) {
			return nil, fmt.Errorf("%s: %w", s.pos, err)
		}
		return nil, bad("", err)
	}
	id := ""
	if p, ok := s.mapping["record_id"]; ok {
		id = p.first(s.res)
	}
	for i, p := range s.paths {
		s.row[i] = ""
		if p == nil || p.condition {
			continue
		}
		s.row[i] = p.first(s.res)
		if s.row[i] == "" && s.required[i] {
			return nil, bad(s.cols[i], fmt.Errorf("the Patient has no value at %s", p))
		}
	}
	if len(s.condCols) > 0 {
		if vals := s.condVals[id]; vals != nil {
			for j, c := range s.condCols {
				s.row[c] = vals[j]
			}
		}
	}
	return s.row, nil
}

// readConditions gathers the Condition values of every patient.
func (s *Source) readConditions() error {
	s.condVals = map[string][]string{}
	subject := mustPath("subject.reference")
	roots := map[string]bool{"subject": true}
	for _, c := range s.condCols {
		s.paths[c].roots(roots)
	}
	for _, name := range s.conditions {
		if err := s.readConditionFile(name, subject, roots); err != nil {
			return err
		}
	}
	return nil
}

func (s *Source) readConditionFile(in input, subject *Path, roots map[string]bool) error {
	f, err := in.open()
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	pos := party.Pos{File: in.name}
	sh, res := newShape(roots), map[string]any{}
	for sc.Scan() {
		pos.Line++
		pos.Ref = ""
		if pos.Line%4096 == 0 {
			if err := s.ctx.Err(); err != nil {
				return err
			}
		}
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if err := sh.decode(line, "Condition", &pos, res); err != nil {
			if errors.Is(err, ErrInput) {
				return fmt.Errorf("%s: %w", pos, err)
			}
			return fmt.Errorf("%w: %s: %v", ErrInput, pos, err)
		}
		ref := subject.first(res)
		id, ok := strings.CutPrefix(ref, "Patient/")
		if !ok {
			id, ok = strings.CutPrefix(ref, "urn:uuid:")
		}
		if !ok || id == "" {
			return fmt.Errorf("%w: %s: subject.reference is not Patient/<id> or urn:uuid:<id>", ErrInput, pos)
		}
		vals := s.condVals[id]
		if vals == nil {
			vals = make([]string, len(s.condCols))
			s.condVals[id] = vals
		}
		semicolon := false
		for j, c := range s.condCols {
			s.paths[c].all(res, func(v string) {
				switch {
				case strings.Contains(v, ";"):
					semicolon = true
				case vals[j] == "":
					vals[j] = v
				case !hasItem(vals[j], v):
					vals[j] += ";" + v
				}
			})
		}
		if semicolon {
			return fmt.Errorf("%s: %w: a value contains ';', which separates codes", pos, ErrInput)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: %s: after line %d: %v", ErrInput, pos.File, pos.Line, err)
	}
	return nil
}

// hasItem reports whether the ';'-separated list holds v.
func hasItem(list, v string) bool {
	for item := range strings.SplitSeq(list, ";") {
		if item == v {
			return true
		}
	}
	return false
}
