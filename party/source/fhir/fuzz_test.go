package fhir_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/party/source/fhir"
)

// FuzzPatientNDJSON feeds arbitrary NDJSON to the decoder: it returns rows
// or errors that name a line, never panics, and never quotes the input.
func FuzzPatientNDJSON(f *testing.F) {
	for _, s := range []string{ada, bob, ada + "\n" + bob, `{"resourceType":"Patient"}`, `{"resourceType":"Patient","name":[{"given":[1,true,null,{"a":[]}]}]}`,
		`{"resourceType":"Observation","id":"x"}`, `{"resourceType":`, `[]`, `null`, "\n\n", `{"resourceType":"Patient","id":7}`,
		`{"resourceType":"Patient","id":"q","birthDate":["x"],"deceasedBoolean":"yes","identifier":{"value":"x"}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s := fhir.NewReader(context.Background(), "Patient.ndjson", strings.NewReader(in), nil)
		cols, err := s.Columns()
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; ; n++ {
			row, err := s.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				var re *party.RowError
				if !errors.As(err, &re) && !errors.Is(err, fhir.ErrInput) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				if !strings.Contains(err.Error(), "line ") {
					t.Fatalf("error names no line: %v", err)
				}
				if re != nil {
					continue
				}
				return
			}
			if len(row) != len(cols) {
				t.Fatalf("%d values for %d columns", len(row), len(cols))
			}
			for _, v := range row {
				if !utf8.ValidString(v) && utf8.ValidString(in) {
					t.Fatalf("invalid UTF-8 %q from valid input", v)
				}
			}
			if n > len(in) {
				t.Fatal("more rows than bytes")
			}
		}
	})
}

// FuzzParsePath: any string parses or fails with ErrPath, never panics.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"birthDate", "name[use=official].given[0] | name[0].given[0]", "identifier[type.coding.code=MR].value",
		"deceasedBoolean | deceasedDateTime.exists()", "a[", "a[b[c=d]=e]", "a.[0]", "a[99999999999999999999]", "|", "a..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := fhir.ParsePath(s)
		if err != nil {
			if !errors.Is(err, fhir.ErrPath) {
				t.Fatalf("error without ErrPath: %v", err)
			}
			return
		}
		if p.String() != s {
			t.Fatalf("String() = %q, want %q", p.String(), s)
		}
	})
}
