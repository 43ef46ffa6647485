package pg_test

import (
	"context"
	"fmt"

	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/party/source/pg"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// Load a party's records from an OMOP CDM warehouse: the password comes
// from PGPASSWORD (or PGPASSFILE, or Config.PasswordFile), never the URL.
// (Not run: it needs a server; internal/pgtest starts one for the tests.)
func ExampleConnect() {
	ctx := context.Background()
	spec, err := session.LoadSpec("spec.json")
	if err != nil {
		fmt.Println(err)
		return
	}
	src, err := pg.Connect(ctx, pg.Config{
		URL: "postgres://reader@warehouse.example/omop?sslmode=verify-full",
		Query: `SELECT p.person_source_value AS record_id, i.given_name, i.family_name,
		               p.birth_datetime::date AS birth_date, p.gender_source_value AS sex
		        FROM person p JOIN person_identity i USING (person_id)`,
		CodesQuery: `SELECT p.person_source_value, co.condition_source_value AS condition_codes
		             FROM condition_occurrence co JOIN person p USING (person_id)`,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close()
	recs, err := party.ReadRows(src, spec, "hospital-a", party.LoadOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(recs.Len(), "records")
}
