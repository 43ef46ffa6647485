package patients_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/internal/patients"
	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/party/source/fhir"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// The same people written as CSV and as FHIR load to the same records.
func TestCSVAndFHIRAgree(t *testing.T) {
	people, err := patients.Synthea(patients.SyntheaDir("."))
	if err != nil {
		people = patients.Generate(500, 1)
	}
	t.Logf("%d people", len(people))
	spec, err := session.ParseSpec([]byte(`{"id":"x","parties":["a","b"],
	"fields":{"given_name":"name","family_name":"name","birth_date":"date","sex":"sex","ssn":"id","maiden_name":"name","deceased":"number","condition_codes":"codes"},
	"match":{"fields":["given_name","family_name","birth_date","sex"]},"reveal":["cardinality","aggregates"],
	"aggregates":[{"name":"dead","kind":"sum","field":"deceased","min":0,"max":1,"from":["a"]},
	{"name":"diabetes","kind":"count_if","field":"condition_codes","contains":"44054006","from":["a"]}]}`))
	require.NoError(t, err)
	var csvb bytes.Buffer
	require.NoError(t, patients.WriteCSV(&csvb, people))
	fromCSV, err := party.ReadCSV(&csvb, spec, "a", party.LoadOptions{})
	require.NoError(t, err)

	dir := t.TempDir()
	var pb, cb bytes.Buffer
	require.NoError(t, patients.WriteFHIR(&pb, &cb, people))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Patient.000.ndjson"), pb.Bytes(), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Condition.000.ndjson"), cb.Bytes(), 0o644))
	src, err := fhir.Open(context.Background(), []string{dir}, nil)
	require.NoError(t, err)
	defer src.Close()
	fromFHIR, err := party.ReadRows(src, spec, "a", party.LoadOptions{})
	require.NoError(t, err)

	require.Equal(t, fromCSV.Report, fromFHIR.Report)
	require.Equal(t, fromCSV.Len(), fromFHIR.Len())
	diabetic := 0
	for i := range fromCSV.Len() {
		require.Equal(t, fromCSV.Key(i), fromFHIR.Key(i))
		require.Equal(t, fromCSV.ID(i), fromFHIR.ID(i))
		for _, f := range []string{"deceased", "condition_codes"} {
			require.Equal(t, fromCSV.Value(i, f), fromFHIR.Value(i, f), f)
		}
		if bytes.Contains([]byte(fromCSV.Value(i, "condition_codes")), []byte(patients.DiabetesCode)) {
			diabetic++
		}
	}
	require.Greater(t, diabetic, 0)
}
