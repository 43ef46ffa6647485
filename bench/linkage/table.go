package linkage

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/psi/ident"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// Column says where a logical field is in a CSV file and how to read it.
type Column struct {
	Name   string // the CSV header
	Type   ident.Type
	Layout ident.Layout // dates only
}

// Table is one party's records as match keys, a [Source].
type Table struct {
	ids  []string
	keys [][][]byte // keys[k][i]
	// Invalid counts, per logical field, values that did not normalise
	// (they count as missing).
	Invalid map[string]int
	// Withdrawn counts, per key, the records whose value another record
	// of the party shares.
	Withdrawn []int
}

// Len implements [Source].
func (t *Table) Len() int { return len(t.ids) }

// Keys implements [Source].
func (t *Table) Keys() int { return len(t.keys) }

// KeyAt implements [Source].
func (t *Table) KeyAt(k, i int) []byte { return t.keys[k][i] }

// ID is record i's id.
func (t *Table) ID(i int) string { return t.ids[i] }

// ReadCSV reads a party's CSV export (named name in errors): idColumn
// holds the record id, cols maps each logical field the keys use to its
// column. Values that are empty or do not normalise are missing; a header
// without a needed column, a short row or a CSV syntax error is an error
// naming the file, line or column.
func ReadCSV(in io.Reader, name, idColumn string, cols map[string]Column, keys [][]ident.KeyField) (*Table, error) {
	r := csv.NewReader(in)
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("linkage: %s: header: %w", name, err)
	}
	index := map[string]int{}
	for i, h := range header {
		index[h] = i
	}
	idCol, ok := index[idColumn]
	if !ok {
		return nil, fmt.Errorf("linkage: %s: no column %q for the record id", name, idColumn)
	}
	// The fields the keys use, each read once per row.
	type use struct {
		field string
		col   int
		c     Column
	}
	var uses []use
	fieldAt := map[string]int{}
	for k, key := range keys {
		for f, kf := range key {
			if _, ok := fieldAt[kf.Field]; ok {
				continue
			}
			c, ok := cols[kf.Field]
			if !ok {
				return nil, fmt.Errorf("linkage: %s: match.keys[%d][%d]: no column for field %q", name, k, f, kf.Field)
			}
			if !kf.Transform.Accepts(c.Type) {
				return nil, fmt.Errorf("linkage: %s: match.keys[%d][%d]: transform %q does not apply to field %q of type %s", name, k, f, kf.Transform, kf.Field, c.Type)
			}
			ci, ok := index[c.Name]
			if !ok {
				return nil, fmt.Errorf("linkage: %s: no column %q for field %q", name, c.Name, kf.Field)
			}
			fieldAt[kf.Field] = len(uses)
			uses = append(uses, use{kf.Field, ci, c})
		}
	}
	t := &Table{keys: make([][][]byte, len(keys)), Invalid: map[string]int{}, Withdrawn: make([]int, len(keys))}
	vals := make([]string, len(uses))
	have := make([]bool, len(uses))
	var buf, tv []byte
	for {
		row, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("linkage: %s: %w", name, err) // csv.ParseError names the line
		}
		line, _ := r.FieldPos(0)
		if len(row) != len(header) {
			return nil, fmt.Errorf("linkage: %s: line %d has %d fields, the header %d", name, line, len(row), len(header))
		}
		t.ids = append(t.ids, row[idCol])
		for u, us := range uses {
			have[u] = false
			if row[us.col] == "" {
				continue
			}
			v, err := ident.Normalize(us.c.Type, us.c.Layout, row[us.col])
			if err != nil {
				t.Invalid[us.field]++
				continue
			}
			vals[u], have[u] = v, true
		}
		for k, key := range keys {
			buf = append(buf[:0], ident.KeyVersion)
			ok := true
			for _, kf := range key {
				u := fieldAt[kf.Field]
				if !have[u] {
					ok = false
					break
				}
				var err error
				if tv, err = kf.Transform.Append(tv[:0], vals[u]); err != nil {
					ok = false // nothing left after the transform: no value
					break
				}
				buf = ident.AppendKeyField(buf, kf.String(), tv)
			}
			if !ok {
				t.keys[k] = append(t.keys[k], nil)
				continue
			}
			t.keys[k] = append(t.keys[k], append([]byte(nil), buf...))
		}
	}
	// A value shared by two records of the party is withdrawn from both.
	for k := range t.keys {
		count := map[string]int{}
		for _, key := range t.keys[k] {
			if key != nil {
				count[string(key)]++
			}
		}
		for i, key := range t.keys[k] {
			if key != nil && count[string(key)] > 1 {
				t.keys[k][i] = nil
				t.Withdrawn[k]++
			}
		}
	}
	return t, nil
}

// Records is a [Source] whose records have ids: [Table], and the parties'
// own party.Records.
type Records interface {
	Source
	// ID is record i's record id.
	ID(i int) string
}

// Dataset is the parties' records with the truth.
type Dataset struct {
	Names   []string
	Parties []Records
	Entity  [][]string // Entity[p][i]: the patient of party p's record i
	// AllParty is the number of patients with a record at every party in
	// the truth: a record a loader drops (party.Records drops records
	// without a value for a one-key spec) still counts.
	AllParty int
}

// Evaluate links the dataset's keys and scores the outcome; Entities is
// the truth's AllParty.
func (d *Dataset) Evaluate() (Quality, error) {
	src := make([]Source, len(d.Parties))
	for i, t := range d.Parties {
		src[i] = t
	}
	q, err := Evaluate(src, d.Entity)
	if err != nil {
		return q, err
	}
	if q.Entities > d.AllParty {
		return q, fmt.Errorf("%w: %d all-party patients loaded, %d in the truth", ErrShape, q.Entities, d.AllParty)
	}
	q.Entities = d.AllParty
	return q, nil
}

// allParty counts the entities present at every party of truth.
func allParty(truth map[string]map[string]string, parties []string) int {
	at := map[string]int{}
	for _, name := range parties {
		seen := map[string]bool{}
		for _, e := range truth[name] {
			if !seen[e] {
				seen[e] = true
				at[e]++
			}
		}
	}
	n := 0
	for _, c := range at {
		if c == len(parties) {
			n++
		}
	}
	return n
}

// add appends a party's records with their patients from truth.
func (d *Dataset) add(name string, r Records, truth map[string]string) error {
	ents := make([]string, r.Len())
	for i := range ents {
		e, ok := truth[r.ID(i)]
		if !ok {
			return fmt.Errorf("linkage: %s: record %q of %s is not in it", cohort.TruthGroupsFile, r.ID(i), name)
		}
		ents[i] = e
	}
	d.Names = append(d.Names, name)
	d.Parties = append(d.Parties, r)
	d.Entity = append(d.Entity, ents)
	return nil
}

// LoadCohortRecords is [LoadCohort] through the parties' own loader: the
// cohort's spec with match.keys set to keys, each party's file read by
// party.LoadCSV with its mapping, the keys those of party.Records.KeyAt,
// byte for byte what the parties tokenise.
func LoadCohortRecords(dir string, keys [][]string) (*Dataset, error) {
	var raw map[string]any
	if err := readJSON(filepath.Join(dir, "spec.json"), &raw); err != nil {
		return nil, err
	}
	match, _ := raw["match"].(map[string]any)
	if match == nil {
		return nil, fmt.Errorf("linkage: spec.json: no match")
	}
	delete(match, "fields")
	match["keys"] = keys
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	spec, err := session.ParseSpec(b)
	if err != nil {
		return nil, fmt.Errorf("linkage: spec.json with the keys: %w", err)
	}
	truth, err := readTruthGroups(filepath.Join(dir, cohort.TruthGroupsFile))
	if err != nil {
		return nil, err
	}
	d := &Dataset{AllParty: allParty(truth, spec.Parties)}
	for _, name := range spec.Parties {
		m, err := party.LoadMapping(filepath.Join(dir, name+".map.json"))
		if err != nil {
			return nil, fmt.Errorf("linkage: %w", err)
		}
		r, err := party.LoadCSV(filepath.Join(dir, name+".csv"), spec, name, party.LoadOptions{Mapping: m})
		if err != nil {
			return nil, fmt.Errorf("linkage: %s.csv: %w", name, err)
		}
		if err := d.add(name, r, truth[name]); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// LoadCohort reads a cohort written by bench/cohort with Config.Realistic
// (spec.json, each party's CSV and mapping, truth_groups.csv) and builds
// every party's keys.
func LoadCohort(dir string, keys [][]ident.KeyField) (*Dataset, error) {
	var spec struct {
		Parties []string          `json:"parties"`
		Fields  map[string]string `json:"fields"`
	}
	if err := readJSON(filepath.Join(dir, "spec.json"), &spec); err != nil {
		return nil, err
	}
	truth, err := readTruthGroups(filepath.Join(dir, cohort.TruthGroupsFile))
	if err != nil {
		return nil, err
	}
	d := &Dataset{AllParty: allParty(truth, spec.Parties)}
	for _, name := range spec.Parties {
		var mapping map[string]struct {
			Column string `json:"column"`
			Format string `json:"format"`
		}
		if err := readJSON(filepath.Join(dir, name+".map.json"), &mapping); err != nil {
			return nil, err
		}
		cols := map[string]Column{}
		for field, typ := range spec.Fields {
			t, err := ident.ParseType(typ)
			if err != nil {
				return nil, fmt.Errorf("linkage: spec.json: fields.%s: %w", field, err)
			}
			m, ok := mapping[field]
			if !ok || !t.Matchable() {
				continue
			}
			c := Column{Name: m.Column, Type: t}
			if t == ident.TypeDate && m.Format != "" {
				if c.Layout, err = ident.ParseLayout(m.Format); err != nil {
					return nil, fmt.Errorf("linkage: %s.map.json: %s.format: %w", name, field, err)
				}
			}
			cols[field] = c
		}
		tb, err := loadCSV(filepath.Join(dir, name+".csv"), name+".csv", mapping["record_id"].Column, cols, keys)
		if err != nil {
			return nil, err
		}
		if err := d.add(name, tb, truth[name]); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// AnonlinkColumns are the columns of the anonlink five-party files
// (id,givenname,surname,dob,gender,city,income,phone number) as logical
// fields.
var AnonlinkColumns = map[string]Column{
	"given_name":  {Name: "givenname", Type: ident.TypeName},
	"family_name": {Name: "surname", Type: ident.TypeName},
	"birth_date":  {Name: "dob", Type: ident.TypeDate, Layout: mustLayout("DD-MM-YYYY")},
	"sex":         {Name: "gender", Type: ident.TypeSex},
	"city":        {Name: "city", Type: ident.TypeName},
	"phone":       {Name: "phone number", Type: ident.TypeID},
}

func mustLayout(s string) ident.Layout {
	l, err := ident.ParseLayout(s)
	if err != nil {
		panic(err)
	}
	return l
}

// LoadAnonlink reads the anonlink five-party set (dataset-1.csv ..
// dataset-5.csv in dir, as in data61/anonlink-entity-service's tutorial
// data), whose id column is the true entity.
func LoadAnonlink(dir string, keys [][]ident.KeyField) (*Dataset, error) {
	d := &Dataset{}
	for p := 1; p <= 5; p++ {
		name := "dataset-" + strconv.Itoa(p) + ".csv"
		tb, err := loadCSV(filepath.Join(dir, name), name, "id", AnonlinkColumns, keys)
		if err != nil {
			return nil, err
		}
		ents := make([]string, tb.Len())
		for i := range ents {
			ents[i] = tb.ID(i)
		}
		d.Names = append(d.Names, name)
		d.Parties = append(d.Parties, tb)
		d.Entity = append(d.Entity, ents)
	}
	// Every row is a record here: the truth is the records' ids.
	truth := map[string]map[string]string{}
	for p, name := range d.Names {
		truth[name] = map[string]string{}
		for i, e := range d.Entity[p] {
			truth[name][strconv.Itoa(i)] = e
		}
	}
	d.AllParty = allParty(truth, d.Names)
	return d, nil
}

func loadCSV(path, name, idColumn string, cols map[string]Column, keys [][]ident.KeyField) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("linkage: %w", err)
	}
	defer f.Close()
	return ReadCSV(f, name, idColumn, cols, keys)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("linkage: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("linkage: %s: %w", filepath.Base(path), err)
	}
	return nil
}

// readTruthGroups reads truth_groups.csv: party → record_id → entity.
func readTruthGroups(path string) (map[string]map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("linkage: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = 3
	out := map[string]map[string]string{}
	if _, err := r.Read(); err != nil {
		return nil, fmt.Errorf("linkage: %s: header: %w", filepath.Base(path), err)
	}
	for {
		row, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("linkage: %s: %w", filepath.Base(path), err)
		}
		if out[row[0]] == nil {
			out[row[0]] = map[string]string{}
		}
		out[row[0]][row[1]] = row[2]
	}
}
