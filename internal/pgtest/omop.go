package pgtest

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mpsi-dev/mpsi/internal/patients"
)

// OMOPSchema is the OMOP CDM v5.4 subset the tests load (person, death,
// condition_occurrence, with their CDM column names), plus
// person_identity: the OMOP CDM keeps no names or national identifiers,
// so a site that links records keeps them in a local table keyed by
// person_id.
const OMOPSchema = `
CREATE TABLE person (
	person_id bigint PRIMARY KEY,
	gender_concept_id integer NOT NULL,
	year_of_birth integer NOT NULL,
	month_of_birth integer,
	day_of_birth integer,
	birth_datetime timestamp,
	race_concept_id integer NOT NULL DEFAULT 0,
	ethnicity_concept_id integer NOT NULL DEFAULT 0,
	person_source_value varchar(50),
	gender_source_value varchar(50)
);
CREATE TABLE death (
	person_id bigint NOT NULL REFERENCES person,
	death_date date NOT NULL
);
CREATE TABLE condition_occurrence (
	condition_occurrence_id bigint PRIMARY KEY,
	person_id bigint NOT NULL REFERENCES person,
	condition_concept_id integer NOT NULL,
	condition_start_date date NOT NULL,
	condition_type_concept_id integer NOT NULL,
	condition_source_value varchar(50)
);
CREATE TABLE person_identity (
	person_id bigint PRIMARY KEY REFERENCES person,
	given_name text NOT NULL,
	family_name text NOT NULL,
	maiden_name text,
	ssn text,
	mrn text,
	postal_code text
);
`

// OMOPQuery reads one row per person with the codes aggregated into an
// array, in the logical field names (no mapping needed).
const OMOPQuery = `
SELECT p.person_source_value AS record_id, i.given_name, i.family_name, p.birth_datetime::date AS birth_date,
       p.gender_source_value AS sex, d.person_id IS NOT NULL AS deceased,
       array_agg(co.condition_source_value ORDER BY co.condition_occurrence_id)
         FILTER (WHERE co.condition_source_value IS NOT NULL) AS condition_codes
FROM person p
JOIN person_identity i USING (person_id)
LEFT JOIN death d USING (person_id)
LEFT JOIN condition_occurrence co USING (person_id)
GROUP BY p.person_id, i.person_id, d.person_id
ORDER BY p.person_id`

// OMOPPersonQuery and OMOPCodesQuery read the same with the codes from a
// second query.
const (
	OMOPPersonQuery = `
SELECT p.person_source_value AS record_id, i.given_name, i.family_name, p.birth_datetime::date AS birth_date,
       p.gender_source_value AS sex, d.person_id IS NOT NULL AS deceased
FROM person p JOIN person_identity i USING (person_id) LEFT JOIN death d USING (person_id)
ORDER BY p.person_id`
	OMOPCodesQuery = `
SELECT p.person_source_value, co.condition_source_value AS condition_codes
FROM condition_occurrence co JOIN person p USING (person_id)
ORDER BY co.condition_occurrence_id`
)

// LoadOMOP creates the [OMOPSchema] tables and copies people into them.
func LoadOMOP(ctx context.Context, c *pgx.Conn, people []patients.Person) error {
	if _, err := c.Exec(ctx, OMOPSchema); err != nil {
		return fmt.Errorf("pgtest: schema: %w", err)
	}
	gender := map[string]int32{"M": 8507, "F": 8532}
	var persons, ids, deaths, conds [][]any
	cid := int64(0)
	for i := range people {
		p := &people[i]
		pid := int64(i + 1)
		bd, err := time.Parse(time.DateOnly, p.BirthDate)
		if err != nil {
			return fmt.Errorf("pgtest: person %d: %w", i, err)
		}
		persons = append(persons, []any{pid, gender[p.Sex], int32(bd.Year()), int32(bd.Month()), int32(bd.Day()), bd, p.ID, p.Sex})
		ids = append(ids, []any{pid, p.Given, p.Family, nullable(p.Maiden), nullable(p.SSN), nullable(p.MRN), nullable(p.Postal)})
		if p.Deceased {
			deaths = append(deaths, []any{pid, bd.AddDate(70, 0, 0)})
		}
		for _, code := range p.Codes {
			cid++
			concept, _ := strconv.Atoi(code)
			conds = append(conds, []any{cid, pid, int32(concept % 2000000000), bd.AddDate(20, 0, 0), int32(32020), code})
		}
	}
	for _, t := range []struct {
		name string
		cols []string
		rows [][]any
	}{
		{"person", []string{"person_id", "gender_concept_id", "year_of_birth", "month_of_birth", "day_of_birth", "birth_datetime", "person_source_value", "gender_source_value"}, persons},
		{"person_identity", []string{"person_id", "given_name", "family_name", "maiden_name", "ssn", "mrn", "postal_code"}, ids},
		{"death", []string{"person_id", "death_date"}, deaths},
		{"condition_occurrence", []string{"condition_occurrence_id", "person_id", "condition_concept_id", "condition_start_date", "condition_type_concept_id", "condition_source_value"}, conds},
	} {
		if _, err := c.CopyFrom(ctx, pgx.Identifier{t.name}, t.cols, pgx.CopyFromRows(t.rows)); err != nil {
			return fmt.Errorf("pgtest: copying %s: %w", t.name, err)
		}
	}
	_, err := c.Exec(ctx, "ANALYZE")
	return err
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
