package fhir_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/party/source/fhir"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// Load a party's records from Patient NDJSON with the default mapping.
func ExampleNewReader() {
	spec, _ := session.ParseSpec([]byte(`{"id":"x","parties":["a","b"],
	"fields":{"given_name":"name","family_name":"name","birth_date":"date","sex":"sex"},
	"match":{"fields":["given_name","family_name","birth_date","sex"]},"reveal":["cardinality"]}`))
	ndjson := `{"resourceType":"Patient","id":"p1","name":[{"use":"official","family":"Lovelace","given":["Ada"]}],"gender":"female","birthDate":"1815-12-10"}
{"resourceType":"Patient","id":"p2","name":[{"family":"Smith","given":["Bob"]}],"gender":"male"}
`
	src := fhir.NewReader(context.Background(), "Patient.ndjson", strings.NewReader(ndjson), nil)
	_, err := party.ReadRows(src, spec, "a", party.LoadOptions{})
	fmt.Println(err)
	src = fhir.NewReader(context.Background(), "Patient.ndjson", strings.NewReader(ndjson), nil)
	recs, err := party.ReadRows(src, spec, "a", party.LoadOptions{SkipBadRows: true})
	fmt.Println(recs.Len(), recs.ID(0), recs.Report.Rejected, err)
	// Output:
	// party: invalid records: Patient.ndjson: line 2 (Patient/p2): field birth_date: the Patient has no value at birthDate
	// 1 p1 1 <nil>
}
