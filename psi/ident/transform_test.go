package ident_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/psi/ident"
)

func TestTransformAppend(t *testing.T) {
	tests := []struct {
		tr      ident.Transform
		in      string // a normal form
		want    string
		wantErr error
	}{
		// Soundex: the National Archives' examples and edge cases.
		{ident.TransformSoundex, "robert", "r163", nil},
		{ident.TransformSoundex, "rupert", "r163", nil},
		{ident.TransformSoundex, "rubin", "r150", nil},
		{ident.TransformSoundex, "ashcraft", "a261", nil},
		{ident.TransformSoundex, "ashcroft", "a261", nil},
		{ident.TransformSoundex, "tymczak", "t522", nil},
		{ident.TransformSoundex, "pfister", "p236", nil},
		{ident.TransformSoundex, "honeyman", "h555", nil},
		{ident.TransformSoundex, "lee", "l000", nil},
		{ident.TransformSoundex, "a", "a000", nil},
		{ident.TransformSoundex, "gutierrez", "g362", nil},
		{ident.TransformSoundex, "jackson", "j250", nil},
		{ident.TransformSoundex, "van der berg", "v500 d600 b620", nil},
		{ident.TransformSoundex, "fredric73", "f636", nil}, // Synthea's digits are skipped
		{ident.TransformSoundex, "张伟", "张伟", nil},          // no letter a–z: kept
		{ident.TransformSoundex, "иванов", "иванов", nil},
		{ident.TransformSoundex, "muller", "m460", nil},
		{ident.TransformSoundex, "mueller", "m460", nil},
		{ident.TransformInitial, "jose alvarez", "j", nil},
		{ident.TransformInitial, "a", "a", nil},
		{ident.TransformInitial, "张伟", "张", nil},
		{ident.TransformInitial, "élise", "é", nil},
		{ident.TransformInitial, "", "", ident.ErrEmpty},
		{ident.TransformYear, "1984-03-07", "1984", nil},
		{ident.TransformYearMonth, "1984-03-07", "1984-03", nil},
		{ident.TransformDayMonthUnordered, "1984-03-07", "1984-03-07", nil},
		{ident.TransformDayMonthUnordered, "1984-07-03", "1984-03-07", nil},
		{ident.TransformDayMonthUnordered, "1984-12-31", "1984-12-31", nil},
		{ident.TransformDayMonthUnordered, "1984-05-05", "1984-05-05", nil},
		{ident.TransformYear, "1984-3-7", "", ident.ErrBadTransform},
		{ident.TransformYear, "", "", ident.ErrBadTransform},
		{ident.TransformDigits, "ab12345", "12345", nil},
		{ident.TransformDigits, "abc", "", ident.ErrEmpty},
		{ident.TransformDigits, "", "", ident.ErrEmpty},
		{ident.TransformLast4, "999123456", "3456", nil},
		{ident.TransformLast4, "x1234", "1234", nil},
		{ident.TransformLast4, "123", "", ident.ErrEmpty},
		{ident.TransformLast4, "a1b2c3d4e5", "2345", nil},
		{ident.TransformNone, "anything", "anything", nil},
	}
	for _, tt := range tests {
		t.Run(string(tt.tr)+"/"+tt.in, func(t *testing.T) {
			prefix := []byte("pre:")
			got, err := tt.tr.Append(prefix, tt.in)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Equal(t, "pre:", string(got), "dst unchanged on error")
				assert.NotContains(t, err.Error(), tt.in+"x", "errors never quote the value")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "pre:"+tt.want, string(got))
		})
	}
}

// TestSoundexProperties checks, on every name of up to three letters
// drawn from a small alphabet, that a code is one letter then three
// digits, and that the code is a function of the consonant classes: two
// names whose letters map to the same classes get the same code.
func TestSoundexProperties(t *testing.T) {
	alpha := "abhrcksw"
	var names []string
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		if prefix != "" {
			names = append(names, prefix)
		}
		if n == 0 {
			return
		}
		for _, c := range alpha {
			gen(prefix+string(c), n-1)
		}
	}
	gen("", 4)
	for _, n := range names {
		got, err := ident.TransformSoundex.Append(nil, n)
		require.NoError(t, err)
		require.Len(t, got, 4, n)
		assert.Equal(t, n[0], got[0], n)
		for _, c := range got[1:] {
			assert.True(t, c >= '0' && c <= '6', "%s: %s", n, got)
		}
		// c and k share a class, as do s: swapping them keeps the code.
		swapped := []byte(n)
		for i := 1; i < len(swapped); i++ {
			if swapped[i] == 'c' {
				swapped[i] = 'k'
			}
		}
		again, err := ident.TransformSoundex.Append(nil, string(swapped))
		require.NoError(t, err)
		assert.Equal(t, string(got), string(again), n)
	}
}

func TestParseKeyField(t *testing.T) {
	tests := []struct {
		in      string
		want    ident.KeyField
		wantErr string
	}{
		{"surname", ident.KeyField{Field: "surname"}, ""},
		{"surname|soundex", ident.KeyField{Field: "surname", Transform: ident.TransformSoundex}, ""},
		{"birth_date|day_month_unordered", ident.KeyField{Field: "birth_date", Transform: ident.TransformDayMonthUnordered}, ""},
		{"ssn|last4", ident.KeyField{Field: "ssn", Transform: ident.TransformLast4}, ""},
		{"surname|sounde", ident.KeyField{}, `bad transform "sounde"`},
		{"surname|", ident.KeyField{}, "empty transform"},
		{"|soundex", ident.KeyField{}, "no field name"},
		{"", ident.KeyField{}, "no field name"},
		{"a|soundex|year", ident.KeyField{}, `bad transform "soundex|year"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ident.ParseKeyField(tt.in)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.True(t, errors.Is(err, ident.ErrBadTransform))
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.in, got.String(), "round trip")
		})
	}
}

func TestTransformAccepts(t *testing.T) {
	assert.True(t, ident.TransformSoundex.Accepts(ident.TypeName))
	assert.False(t, ident.TransformSoundex.Accepts(ident.TypeDate))
	assert.True(t, ident.TransformYear.Accepts(ident.TypeDate))
	assert.False(t, ident.TransformYear.Accepts(ident.TypeID))
	assert.True(t, ident.TransformLast4.Accepts(ident.TypeID))
	assert.True(t, ident.TransformNone.Accepts(ident.TypeSex))
	assert.False(t, ident.TransformNone.Accepts(ident.TypeNumber))
	assert.False(t, ident.Transform("nope").Accepts(ident.TypeName))
}

// FuzzParseKeyField checks that the key-field parser never panics, that
// an accepted field round-trips through String, and that applying its
// transform to any normalised name, date or identifier never panics.
func FuzzParseKeyField(f *testing.F) {
	for _, s := range []string{"surname", "surname|soundex", "dob|year", "x|", "|y", "a|b|c", "ssn|last4", "\xff|soundex"} {
		f.Add(s, "robert")
	}
	f.Fuzz(func(t *testing.T, s, value string) {
		kf, err := ident.ParseKeyField(s)
		if err != nil {
			return
		}
		if kf.String() != s {
			t.Fatalf("%q parsed to %+v, which writes as %q", s, kf, kf.String())
		}
		for _, typ := range []ident.Type{ident.TypeName, ident.TypeID, ident.TypeDate} {
			v, err := ident.Normalize(typ, ident.Layout{}, value)
			if err != nil || !kf.Transform.Accepts(typ) {
				continue
			}
			out, err := kf.Transform.Append(nil, v)
			if err == nil && len(out) == 0 && kf.Transform != ident.TransformNone {
				t.Fatalf("%s of a normal %s gave an empty value without error", kf.Transform, typ)
			}
		}
	})
}
