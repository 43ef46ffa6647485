// Package sources holds the loading benchmarks of issue 17: rows per
// second per core for CSV, FHIR NDJSON and PostgreSQL inputs of the same
// patients, each against the floor of a plain decode of the same data
// (encoding/csv, encoding/json into the needed subset, pgx rows). See
// bench/README.md for the command and the figures.
package sources
