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
// model library (such as the generated R4 structs of
// github.com/fastenhealth/gofhir-models): a full model decodes every element
// of every resource into typed values, where a load reads a dozen elements
// chosen by the mapping's paths at run time. Instead each line is decoded
// once into a struct type made at run time with a field for each
// top-level element a path reads, so the narrative, extensions and every
// other element are skipped without being built. Files are read one
// line at a time, so a 10 GB export is streamed in constant memory (the
// Condition values of every patient are the one thing held, joined into
// one string per patient, and only when a Condition field is read).
// Member names are matched as encoding/json matches them: exactly first,
// else case-insensitively.
//
// The reader's errors name the file, the line and the resource
// (Patient/<id>), never a value (JSON syntax errors give a byte offset): a malformed line, or a Patient missing an element a match field
// needs, is a bad row (the load fails, or with SkipBadRows the row is
// counted as rejected); a resource of the wrong type in a Patient or
// Condition file fails the load.
package fhir
