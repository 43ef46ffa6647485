// Package fhir reads FHIR R4 bulk-export NDJSON (Patient files and,
// optionally, Condition files) as a [party.RowSource], so that a hospital's
// FHIR export is mapped, normalised and checked exactly as a CSV file is
// ([party.ReadRows]).
//
// Each Patient is one row; its columns are logical fields picked out of the
// resource by a [Path] (a small documented subset of FHIRPath). The
// default mapping ([DefaultMapping]) gives record_id, given_name,
// family_name, maiden_name, birth_date, sex, ssn, mrn, postal_code,
// deceased and condition_codes; a mapping file ([LoadMapping]) overrides
// any of them. Paths that start with "Condition:" are read from the
// patient's Condition resources (linked by subject.reference).
//
// Decoding uses encoding/json on a documented subset rather than a FHIR
// model library: only the top-level elements a path reads are decoded, one
// line at a time, so a 10 GB export is streamed in constant memory (the
// Condition values of every patient are the one thing held, and only when
// a Condition field is read).
//
// Errors name the file, the line and the resource (Patient/<id>), never a
// value: a malformed line, or a Patient missing an element a match field
// needs, is a bad row (the load fails, or with SkipBadRows the row is
// counted as rejected); a resource of the wrong type in a Patient or
// Condition file fails the load.
package fhir
