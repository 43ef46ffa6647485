package fhir_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/party/source/fhir"
	"github.com/mpsi-dev/mpsi/psi/session"
)

const spec = `{"id":"f","parties":["a","b"],
"fields":{"given_name":"name","family_name":"name","birth_date":"date","sex":"sex","ssn":"id","deceased":"number","condition_codes":"codes"},
"match":{"fields":["given_name","family_name","birth_date","sex"]},"reveal":["cardinality","aggregates"],
"aggregates":[{"name":"dead","kind":"sum","field":"deceased","min":0,"max":1,"from":["a"]},
{"name":"diabetes","kind":"count_if","field":"condition_codes","contains":"44054006","from":["a"]}]}`

func specT(t testing.TB) *session.Spec {
	s, err := session.ParseSpec([]byte(spec))
	require.NoError(t, err)
	return s
}

const (
	ada = `{"resourceType":"Patient","id":"p1","identifier":[{"type":{"coding":[{"code":"MR"}]},"value":"M1"},{"system":"http://hl7.org/fhir/sid/us-ssn","value":"999-11-2222"}],` +
		`"name":[{"use":"maiden","family":"Byron","given":["Ada"]},{"use":"official","family":"Lovelace","given":["Ada","Augusta"]}],"gender":"female","birthDate":"1815-12-10","deceasedDateTime":"1852-11-27"}`
	bob = `{"resourceType":"Patient","id":"p2","name":[{"family":"Smith","given":["Bob"]}],"gender":"male","birthDate":"1950-01-02","deceasedBoolean":false,"address":[{"use":"work","postalCode":"1"},{"use":"home","postalCode":"67216"}]}`
	c1  = `{"resourceType":"Condition","id":"c1","code":{"coding":[{"system":"http://snomed.info/sct","code":"44054006"},{"system":"http://hl7.org/fhir/sid/icd-10","code":"E11"}]},"subject":{"reference":"Patient/p1"}}`
	c2  = `{"resourceType":"Condition","id":"c2","code":{"coding":[{"system":"http://snomed.info/sct","code":"38341003"}]},"subject":{"reference":"urn:uuid:p1"}}`
	c3  = `{"resourceType":"Condition","id":"c3","code":{"coding":[{"system":"http://snomed.info/sct","code":"44054006"}]},"subject":{"reference":"Patient/p1"}}`
)

func write(t testing.TB, dir, name string, lines ...string) string {
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	return p
}

// rows reads every row of a Source without the load pipeline.
func rows(t *testing.T, s *fhir.Source) map[string]map[string]string {
	cols, err := s.Columns()
	require.NoError(t, err)
	out := map[string]map[string]string{}
	for {
		row, err := s.Next()
		if err != nil {
			require.ErrorContains(t, err, "EOF")
			return out
		}
		m := map[string]string{}
		for i, c := range cols {
			m[c] = row[i]
		}
		out[m["record_id"]] = m
	}
}

func TestDefaultMapping(t *testing.T) {
	dir := t.TempDir()
	pf := write(t, dir, "Patient.000.ndjson", ada, "", bob)
	cf := write(t, dir, "Condition.000.ndjson", c1, c2, c3)
	s, err := fhir.Open(context.Background(), []string{pf, cf}, nil)
	require.NoError(t, err)
	defer s.Close()
	got := rows(t, s)
	require.Equal(t, map[string]string{
		"record_id": "p1", "given_name": "Ada", "family_name": "Lovelace", "maiden_name": "Byron",
		"birth_date": "1815-12-10", "sex": "female", "ssn": "999-11-2222", "mrn": "M1", "postal_code": "",
		"deceased": "1", "condition_codes": "44054006;38341003",
	}, got["p1"])
	require.Equal(t, map[string]string{
		"record_id": "p2", "given_name": "Bob", "family_name": "Smith", "maiden_name": "",
		"birth_date": "1950-01-02", "sex": "male", "ssn": "", "mrn": "", "postal_code": "67216",
		"deceased": "0", "condition_codes": "",
	}, got["p2"])
}

func TestMappingFileOverrides(t *testing.T) {
	m, err := fhir.ParseMapping([]byte(`{"ssn":"identifier[type.coding.code=MR].value","given_name":"name[use=official].given[1]","maiden_name":"","condition_codes":"Condition:code.coding[system=http://hl7.org/fhir/sid/icd-10].code"}`))
	require.NoError(t, err)
	dir := t.TempDir()
	s, err := fhir.Open(context.Background(), []string{write(t, dir, "Patient.ndjson", ada), write(t, dir, "Condition.ndjson", c1, c2)}, m)
	require.NoError(t, err)
	got := rows(t, s)["p1"]
	require.Equal(t, "M1", got["ssn"])
	require.Equal(t, "Augusta", got["given_name"])
	require.Equal(t, "E11", got["condition_codes"])
	_, has := got["maiden_name"]
	require.False(t, has)

	for _, bad := range []string{`{"ssn":"identifier[system=x"}`, `{"ssn":"a..b"}`, `{"ssn":"name[-1]"}`, `{"record_id":""}`, `{"ssn":3}`, `{}{}`} {
		_, err := fhir.ParseMapping([]byte(bad))
		require.ErrorIs(t, err, fhir.ErrMapping, bad)
	}
}

// The whole pipeline: FHIR rows are normalised, checked and counted as CSV
// rows are.
func TestLoadThroughPipeline(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "Patient.000.ndjson", ada)
	write(t, dir, "Patient.001.ndjson", bob)
	write(t, dir, "Condition.000.ndjson", c1, c2)
	write(t, dir, "Observation.000.ndjson", `{"resourceType":"Observation"}`)
	s, err := fhir.Open(context.Background(), []string{dir}, nil)
	require.NoError(t, err)
	defer s.Close()
	recs, err := party.ReadRows(s, specT(t), "a", party.LoadOptions{})
	require.NoError(t, err)
	require.Equal(t, 2, recs.Len())
	require.Equal(t, "p1", recs.ID(0))
	require.Equal(t, "1", recs.Value(0, "deceased"))
	require.Equal(t, "44054006\x1f38341003", recs.Value(0, "condition_codes"))
	require.Equal(t, "p2", recs.ID(1))
}

// Bad input: an error naming the file, the line and the resource.
func TestErrors(t *testing.T) {
	noBirth := strings.Replace(bob, `"birthDate":"1950-01-02",`, "", 1)
	cases := []struct {
		name        string
		patients    []string
		conditions  []string
		want        string
		wantErr     error
		skipBadRows bool
	}{
		{"non-Patient in a Patient file", []string{ada, `{"resourceType":"Observation","id":"o1"}`}, nil, "Patient.000.ndjson: line 2 (Observation/o1): fhir: invalid input: a Observation resource in a Patient file", fhir.ErrInput, false},
		{"malformed JSON", []string{ada, `{"resourceType":"Patient","id":"p2",`}, nil, "Patient.000.ndjson: line 2: malformed JSON: syntax error", party.ErrRecords, false},
		{"not an object", []string{`[1,2]`}, nil, "Patient.000.ndjson: line 1: malformed JSON", party.ErrRecords, false},
		{"missing birthDate", []string{ada, noBirth}, nil, "Patient.000.ndjson: line 2 (Patient/p2): field birth_date: the Patient has no value at birthDate", party.ErrRecords, false},
		{"bad birthDate", []string{strings.Replace(ada, "1815-12-10", "1815-13-10", 1)}, nil, "Patient.000.ndjson: line 1 (Patient/p1): field birth_date", party.ErrRecords, false},
		{"no resourceType", []string{`{"id":"x"}`}, nil, "line 1: no resourceType", party.ErrRecords, false},
		{"Patient in a Condition file", []string{ada}, []string{c1, ada}, "Condition.000.ndjson: line 2 (Patient/p1): fhir: invalid input: a Patient resource in a Condition file", fhir.ErrInput, false},
		{"Condition without a subject", []string{ada}, []string{`{"resourceType":"Condition","id":"c9"}`}, "Condition.000.ndjson: line 1 (Condition/c9): subject.reference", fhir.ErrInput, false},
		{"code with the separator", []string{ada}, []string{strings.Replace(c1, "44054006", "44;054006", 1)}, "Condition.000.ndjson: line 1 (Condition/c1): fhir: invalid input: a value contains ';'", fhir.ErrInput, false},
		{"malformed Condition", []string{ada}, []string{`{"resourceType":`}, "Condition.000.ndjson: line 1: malformed JSON", fhir.ErrInput, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			in := []string{write(t, dir, "Patient.000.ndjson", tc.patients...)}
			if tc.conditions != nil {
				in = append(in, write(t, dir, "Condition.000.ndjson", tc.conditions...))
			}
			s, err := fhir.Open(context.Background(), in, nil)
			require.NoError(t, err)
			defer s.Close()
			recs, err := party.ReadRows(s, specT(t), "a", party.LoadOptions{SkipBadRows: tc.skipBadRows})
			require.Nil(t, recs)
			require.ErrorIs(t, err, tc.wantErr)
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "Lovelace", "no patient value in errors")
		})
	}
}

// Under SkipBadRows a Patient missing a match element is counted as
// rejected and the others load.
func TestSkipBadRows(t *testing.T) {
	dir := t.TempDir()
	noBirth := strings.Replace(bob, `"birthDate":"1950-01-02",`, "", 1)
	s, err := fhir.Open(context.Background(), []string{write(t, dir, "Patient.ndjson", ada, noBirth, `{"bad json`)}, nil)
	require.NoError(t, err)
	recs, err := party.ReadRows(s, specT(t), "a", party.LoadOptions{SkipBadRows: true})
	require.NoError(t, err)
	require.Equal(t, party.Report{Rows: 3, Loaded: 1, Rejected: 2, Errors: recs.Report.Errors}, recs.Report)
	require.Equal(t, "Patient.ndjson: line 2 (Patient/p2): field birth_date: the Patient has no value at birthDate", recs.Report.Errors[0].Error())
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := fhir.Open(context.Background(), []string{write(t, dir, "Observation.ndjson", "{}")}, nil)
	require.ErrorIs(t, err, fhir.ErrInput)
	_, err = fhir.Open(context.Background(), []string{write(t, dir, "Condition.ndjson", c1)}, nil)
	require.ErrorContains(t, err, "no Patient file")
	_, err = fhir.Open(context.Background(), []string{filepath.Join(dir, "missing.ndjson")}, nil)
	require.Error(t, err)
}

// The Synthea bulk export in ../shared, when present: every Patient loads
// and the Conditions attach.
func TestSyntheaBulk(t *testing.T) {
	dir := "../../../../shared/data/synthea/fhir_bulk_10"
	if _, err := os.Stat(dir); err != nil {
		t.Skip("no ../shared/data (a fresh clone); the other tests cover the reader")
	}
	s, err := fhir.Open(context.Background(), []string{dir}, nil)
	require.NoError(t, err)
	defer s.Close()
	recs, err := party.ReadRows(s, specT(t), "a", party.LoadOptions{})
	require.NoError(t, err)
	require.Equal(t, 13, recs.Report.Rows)
	require.Equal(t, 13, recs.Len())
	withCodes := 0
	for i := range recs.Len() {
		if recs.Value(i, "condition_codes") != "" {
			withCodes++
		}
	}
	require.Greater(t, withCodes, 5)
}

// The 1,144 Synthea patients of the larger bulk export: every one loads,
// and the deceased field counts the 144 the data's README lists.
func TestSyntheaBulk1000(t *testing.T) {
	file := "../../../../shared/data/synthea/fhir_bulk_1000/Patient.000.ndjson"
	if _, err := os.Stat(file); err != nil {
		t.Skip("no ../shared/data (a fresh clone); the other tests cover the reader")
	}
	s, err := fhir.Open(context.Background(), []string{file}, nil)
	require.NoError(t, err)
	defer s.Close()
	recs, err := party.ReadRows(s, specT(t), "a", party.LoadOptions{})
	require.NoError(t, err)
	require.Equal(t, party.Report{Rows: 1144, Loaded: 1144}, recs.Report)
	dead := 0
	for i := range recs.Len() {
		if recs.Value(i, "deceased") == "1" {
			dead++
		}
	}
	require.Equal(t, 144, dead)
}
