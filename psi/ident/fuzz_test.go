package ident_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/mpsi-dev/mpsi/psi/ident"
)

var nameSeeds = []string{
	"José Álvarez-Núñez", "  MÜLLER  ", "O'Brien", "Zoë", "Ångström", "Straße",
	"张 伟", "ＺＨＡＮＧ", "ｶﾞﾝﾀﾞﾑ", "Fredric73", "Gómez206", "İlkay", "ǅemal",
	"أحمد", "महेश", "김 민준", "a\u0301", "カ-\u3099", "\u0301", "Jos\xe9", "",
	"Ann © ® ™ *", "ⅻ", "①", "ﷺ", "\u1e9b\u0323", "カ\u3099\u0323", "क\u094d\u093c\u0947", "한\u0301국",
}

// FuzzNormalizeName checks that NormalizeName never panics, returns valid
// UTF-8, is idempotent, and that the ASCII fast path agrees with the
// general path.
func FuzzNormalizeName(f *testing.F) {
	for _, s := range nameSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ident.NormalizeName(s)
		checkAppend(t, "AppendName", ident.AppendName, s, got, err)
		if err != nil {
			if got != "" || !(errors.Is(err, ident.ErrEmpty) || errors.Is(err, ident.ErrInvalidUTF8)) {
				t.Fatalf("NormalizeName(%q) = %q, %v", s, got, err)
			}
			return
		}
		if got == "" || !utf8.ValidString(got) {
			t.Fatalf("NormalizeName(%q) = %q, not valid non-empty UTF-8", s, got)
		}
		if strings.HasPrefix(got, " ") || strings.HasSuffix(got, " ") || strings.Contains(got, "  ") {
			t.Fatalf("NormalizeName(%q) = %q, spaces not collapsed", s, got)
		}
		again, err := ident.NormalizeName(got)
		if err != nil || again != got {
			t.Fatalf("NormalizeName(%q) = %q, but NormalizeName(%q) = %q, %v", s, got, got, again, err)
		}
		if fast, ok := ident.ASCIIName(s); ok && fast != got {
			t.Fatalf("ASCIIName(%q) = %q, NormalizeName = %q", s, fast, got)
		}
		if slow, err := ident.GeneralName(s); err != nil || slow != got {
			t.Fatalf("GeneralName(%q) = %q, %v, NormalizeName = %q", s, slow, err, got)
		}
		if ref, err := ident.ReferenceName(s); err != nil || ref != got {
			t.Fatalf("ReferenceName(%q) = %q, %v, NormalizeName = %q", s, ref, err, got)
		}
		if fast, ok := ident.LatinName(nil, s); ok && string(fast) != got {
			t.Fatalf("LatinName(%q) = %q, NormalizeName = %q", s, fast, got)
		}
	})
}

// checkAppend checks that an Append function agrees with its Normalize
// function on s (which returned want, wantErr): the same bytes after a
// prefix it keeps, or the same error with the prefix unchanged.
func checkAppend(t *testing.T, name string, appendFn func([]byte, string) ([]byte, error), s, want string, wantErr error) {
	t.Helper()
	prefix := []byte("prefix:")
	got, err := appendFn(prefix[:len(prefix):len(prefix)], s)
	if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("%s(%q) error %v, Normalize error %v", name, s, err, wantErr)
	}
	if err != nil {
		if string(got) != string(prefix) {
			t.Fatalf("%s(%q) failed but returned %q", name, s, got)
		}
		return
	}
	if string(got) != string(prefix)+want {
		t.Fatalf("%s(%q) = %q, want %q after the prefix", name, s, got, want)
	}
}

// FuzzNormalizeID checks that NormalizeID never panics, returns valid
// UTF-8 and is idempotent.
func FuzzNormalizeID(f *testing.F) {
	for _, s := range append(nameSeeds, "999-12-3456", "９９９－１２", "S99984236") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ident.NormalizeID(s)
		checkAppend(t, "AppendID", ident.AppendID, s, got, err)
		if slow, slowErr := ident.GeneralID(s); slow != got || (slowErr == nil) != (err == nil) {
			t.Fatalf("GeneralID(%q) = %q, %v, NormalizeID = %q, %v", s, slow, slowErr, got, err)
		}
		if err != nil {
			if got != "" || !(errors.Is(err, ident.ErrEmpty) || errors.Is(err, ident.ErrInvalidUTF8)) {
				t.Fatalf("NormalizeID(%q) = %q, %v", s, got, err)
			}
			return
		}
		if !utf8.ValidString(got) {
			t.Fatalf("NormalizeID(%q) = %q, not valid UTF-8", s, got)
		}
		again, err := ident.NormalizeID(got)
		if err != nil || again != got {
			t.Fatalf("NormalizeID(%q) = %q, but NormalizeID(%q) = %q, %v", s, got, got, again, err)
		}
	})
}

// FuzzLayoutNormalize checks that layouts and dates never panic, that an
// accepted date is a valid ISO date that the default layout accepts as
// is, and that a layout's String parses back to it.
func FuzzLayoutNormalize(f *testing.F) {
	for _, s := range [][2]string{
		{"YYYY-MM-DD", "1989-05-25"}, {"MM/DD/YYYY", "05/25/1989"},
		{"DD.MM.YYYY", "29.02.2000"}, {"YYYYMMDD", "20230229"},
		{"DD-MM-YYYY", "22-12-2972"}, {"M/D/YYYY", "5/3/2020"}, {"DD/MM/YY", "01/01/01"},
		{"MM/DD/YYYY", "13/25/1989"}, {"MM/DD/YYYY", " 05/25/1989\t"}, {"MM/DD/YYYY", "05-25-1989"},
		{"YYYYMMDD", "2023022"}, {"YYYYMMDD", "202302281"}, {"DD.MM.YYYY", "29.02.2001"},
		{"YYYY MM DD", "1989 05 2x"}, {"MM/DD/YYYY", "05/25/1799"}, {"DD/MM/YYYY", "００/01/2000"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, layout, s string) {
		l, err := ident.ParseLayout(layout)
		if err != nil {
			if !errors.Is(err, ident.ErrBadLayout) {
				t.Fatalf("ParseLayout(%q) error %v does not wrap ErrBadLayout", layout, err)
			}
			return
		}
		if again, err := ident.ParseLayout(l.String()); err != nil || again != l {
			t.Fatalf("ParseLayout(%q) does not round-trip through %q: %v", layout, l.String(), err)
		}
		got, err := l.Normalize(s)
		checkAppend(t, "Layout.Append", l.Append, s, got, err)
		// A fixed-width layout's fast path agrees with the general one.
		want, werr := ident.VariableWidth(l).Normalize(s)
		if got != want || fmt.Sprint(err) != fmt.Sprint(werr) {
			t.Fatalf("Normalize(%q) with %s = %q, %v; the general path gives %q, %v", s, l, got, err, want, werr)
		}
		if err != nil {
			if got != "" || !(errors.Is(err, ident.ErrBadDate) || errors.Is(err, ident.ErrEmpty)) {
				t.Fatalf("Normalize(%q) with %s = %q, %v", s, l, got, err)
			}
			return
		}
		if iso, err := (ident.Layout{}).Normalize(got); err != nil || iso != got || len(got) != 10 {
			t.Fatalf("Normalize(%q) with %s = %q, not a valid ISO date: %v", s, l, got, err)
		}
	})
}

// FuzzDecodeKey checks that DecodeKey never panics, that an accepted input
// re-encodes to identical bytes, and that a rejection returns nil fields
// and ErrMalformedKey.
func FuzzDecodeKey(f *testing.F) {
	f.Add([]byte{ident.KeyVersion})
	f.Add(ident.AppendKey(nil, []ident.Field{{"given_name", "jose"}, {"birth_date", "1989-05-25"}}))
	f.Add(ident.AppendKey(nil, []ident.Field{{"", ""}, {strings.Repeat("x", 200), "y"}}))
	f.Add([]byte{1, 0x80, 0x00, 0})
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, b []byte) {
		fields, err := ident.DecodeKey(b)
		if err != nil {
			if fields != nil || !errors.Is(err, ident.ErrMalformedKey) {
				t.Fatalf("DecodeKey(%x) = %q, %v", b, fields, err)
			}
			return
		}
		if re := ident.AppendKey(nil, fields); !bytes.Equal(re, b) {
			t.Fatalf("DecodeKey(%x) = %q, which encodes to %x", b, fields, re)
		}
	})
}

// TestIdempotentAllRunes checks idempotence of NormalizeName and
// NormalizeID, and that NormalizeName equals the reference pipeline, on
// every assigned code point, alone and between a letter and a combining
// mark, which is where normalisation orders interact.
func TestIdempotentAllRunes(t *testing.T) {
	if testing.Short() {
		t.Skip("exhaustive over all code points")
	}
	for r := rune(0); r <= utf8.MaxRune; r++ {
		// Skip surrogates, private use and unassigned code points, and
		// sample the large, uniform Han and Hangul blocks (but not the
		// compatibility ideographs, which decompose).
		if !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.Cc, unicode.Cf) ||
			r%32 != 0 && unicode.In(r, unicode.Han, unicode.Hangul) && norm.NFKD.PropertiesString(string(r)).Decomposition() == nil {
			continue
		}
		for _, s := range []string{string(r), "a" + string(r) + "\u0301", "カ" + string(r) + "\u3099", "张 " + string(r)} {
			for _, fn := range []struct {
				name string
				f    func(string) (string, error)
			}{{"NormalizeName", ident.NormalizeName}, {"NormalizeID", ident.NormalizeID}} {
				got, err := fn.f(s)
				if err != nil {
					continue
				}
				if again, err := fn.f(got); err != nil || again != got {
					t.Fatalf("%s(%q) = %q, but %s(%q) = %q, %v", fn.name, s, got, fn.name, got, again, err)
				}
			}
			got, err := ident.NormalizeName(s)
			ref, refErr := ident.ReferenceName(s)
			if got != ref || (err == nil) != (refErr == nil) {
				t.Fatalf("NormalizeName(%q) = %q, %v; ReferenceName = %q, %v", s, got, err, ref, refErr)
			}
		}
	}
}

// FuzzSexCodes checks that a hospital's sex codes never panic, that every
// accepted value is M, F or U and maps to itself, that surrounding
// whitespace and ASCII case do not matter, and that a table's codes are
// looked up before the built-in ones: declaring code → value makes code
// give value, and leaves every other input as NormalizeSex has it.
func FuzzSexCodes(f *testing.F) {
	for _, s := range []string{"M", "weiblich", "FÉMININ", "h", "V", "d", "Ｍ", "男", "6", "", " ", "\xff", "mals"} {
		f.Add(s, "H", "M")
		f.Add(s, s, "F")
	}
	f.Fuzz(func(t *testing.T, s, code, value string) {
		codes, err := ident.NewSexCodes(map[string]string{code: value})
		if err != nil {
			codes = nil
		}
		got, err := codes.Normalize(s)
		if err != nil {
			if !errors.Is(err, ident.ErrBadSex) && !errors.Is(err, ident.ErrEmpty) && !errors.Is(err, ident.ErrInvalidUTF8) {
				t.Fatalf("Normalize(%q): unexpected error %v", s, err)
			}
		} else {
			if got != ident.SexMale && got != ident.SexFemale && got != ident.SexUnknown {
				t.Fatalf("Normalize(%q) = %q", s, got)
			}
			if again, err := ident.NormalizeSex(got); err != nil || again != got {
				t.Fatalf("NormalizeSex(%q) = %q, %v: not a fixed point", got, again, err)
			}
		}
		for _, v := range []string{" " + s + "\t", strings.ToUpper(s), strings.ToLower(s)} {
			if !isASCII(s) && v != " "+s+"\t" {
				continue // non-ASCII case mappings are the folding's business
			}
			got2, err2 := codes.Normalize(v)
			if got2 != got || (err == nil) != (err2 == nil) {
				t.Fatalf("Normalize(%q) = %q, %v but Normalize(%q) = %q, %v", s, got, err, v, got2, err2)
			}
		}
		if codes == nil {
			return
		}
		if got, err := codes.Normalize(code); err != nil || got != strings.ToUpper(strings.TrimSpace(value)) {
			t.Fatalf("codes {%q: %q}: Normalize(code) = %q, %v", code, value, got, err)
		}
		// Any input the table changes, it changes to the declared value.
		base, berr := ident.NormalizeSex(s)
		if (got != base || (err == nil) != (berr == nil)) && got != strings.ToUpper(strings.TrimSpace(value)) {
			t.Fatalf("codes {%q: %q} change %q from %q, %v to %q, %v", code, value, s, base, berr, got, err)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
