package party_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// A researcher runs a whole two-hospital session in one process.
func ExampleRunLocal() {
	spec, _ := session.ParseSpec([]byte(`{"id": "demo", "parties": ["a", "b"],
	  "fields": {"name": "name", "dob": "date", "visits": "number"},
	  "match": {"fields": ["name", "dob"]}, "reveal": ["cardinality", "aggregates"],
	  "aggregates": [{"name": "visits", "kind": "sum", "field": "visits", "min": 0, "max": 100}]}`))
	a, _ := party.ReadCSV(strings.NewReader("name,dob,visits\nAda Lovelace,1815-12-10,3\nAlan Turing,1912-06-23,5\n"), spec, "a", party.LoadOptions{})
	b, _ := party.ReadCSV(strings.NewReader("name,dob,visits\nADA  LOVELACE,1815-12-10,4\nGrace Hopper,1906-12-09,1\n"), spec, "b", party.LoadOptions{})

	out, err := party.RunLocal(context.Background(), spec, []party.Input{{Name: "a", Records: a}, {Name: "b", Records: b}}, party.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	visits, _ := out.Result.Aggregates.Get("visits")
	fmt.Println("shared patients:", *out.Result.Intersection)
	fmt.Println("their visits:", visits.Value)
	// Output:
	// shared patients: 1
	// their visits: 7
}
