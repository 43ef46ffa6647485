package ident_test

import (
	"testing"

	"github.com/mpsi-dev/mpsi/psi/ident"
)

func BenchmarkNormalizeName(b *testing.B) {
	inputs := []struct{ name, in string }{
		{"ascii-normal", "mary ann smith"},
		{"ascii-synthea", "Fredric73"},
		{"ascii-punct", "  O'Brien-Smith, Jr. "},
		{"latin-accents", "José Álvarez-Núñez"},
		{"latin-fold", "STRAßE"},
		{"cjk", "张 伟"},
		{"full-width", "ＺＨＡＮＧ　Ｗｅｉ"},
	}
	for _, in := range inputs {
		b.Run("input="+in.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in.in)))
			for b.Loop() {
				if _, err := ident.NormalizeName(in.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNormalizeID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ident.NormalizeID("999-76-6866"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLayoutNormalize(b *testing.B) {
	for _, in := range []struct{ layout, in string }{
		{"YYYY-MM-DD", "1989-05-25"},
		{"MM/DD/YYYY", "05/25/1989"},
		{"DD-MM-YYYY", "27-08-1941"},
	} {
		l, err := ident.ParseLayout(in.layout)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("layout="+in.layout, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := l.Normalize(in.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendKey(b *testing.B) {
	fields := []ident.Field{
		{"given_name", "jose eduardo"},
		{"family_name", "alvarez nunez"},
		{"birth_date", "1989-05-25"},
		{"sex", "M"},
		{"national_id", "999766866"},
	}
	b.Run("fields=5", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = ident.AppendKey(buf[:0], fields)
		}
		b.SetBytes(int64(len(buf)))
	})
}

func BenchmarkNormalizeSex(b *testing.B) {
	for _, in := range []string{"M", "Female", "weiblich", "FÉMININ"} {
		b.Run("input="+in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ident.NormalizeSex(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
