package ident_test

import (
	"testing"

	"github.com/mpsi-dev/mpsi/psi/ident"
)

func BenchmarkAppendNameCohort(b *testing.B) {
	names := []string{"Yuki718", "Novák", "müller", "Wei735", "Ilse520", "Rossi", "van der berg", "GARCÍA", "Søren432", "KIM"}
	buf := make([]byte, 0, 64)
	for b.Loop() {
		for _, n := range names {
			var err error
			if buf, err = ident.AppendName(buf[:0], n); err != nil {
				b.Fatal(err)
			}
		}
	}
}
