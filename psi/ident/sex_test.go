package ident_test

import (
	"testing"

	"github.com/mpsi-dev/mpsi/psi/ident"
	"github.com/stretchr/testify/require"
)

func TestNormalizeSex(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr error
	}{
		{"M", "M", nil}, {"m", "M", nil}, {"male", "M", nil}, {"Male", "M", nil},
		{"MALE", "M", nil}, {" man ", "M", nil}, {"1", "M", nil}, {"男", "M", nil},
		{"Ｍ", "M", nil},
		{"F", "F", nil}, {"f", "F", nil}, {"female", "F", nil}, {"Female", "F", nil},
		{"WOMAN", "F", nil}, {"2", "F", nil}, {"女", "F", nil}, {"ｆｅｍａｌｅ", "F", nil},
		{"U", "U", nil}, {"unknown", "U", nil}, {"Other", "U", nil}, {"x", "U", nil},
		{"0", "U", nil}, {"9", "U", nil},
		{"", "", ident.ErrEmpty},
		{"  ", "", ident.ErrEmpty},
		{"mals", "", ident.ErrBadSex}, // anonlink typo
		{"3", "", ident.ErrBadSex},
		{"m f", "", ident.ErrBadSex},
		{"males", "", ident.ErrBadSex},
		{"unknownx", "", ident.ErrBadSex},
		{"男性化", "", ident.ErrBadSex},
		{"\xff", "", ident.ErrInvalidUTF8},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ident.NormalizeSex(tc.in)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				if tc.wantErr == ident.ErrBadSex {
					require.NotContains(t, err.Error(), `"`+tc.in+`"`)
				}
				return
			}
			require.NoError(t, err)
			if got != tc.want {
				t.Errorf("NormalizeSex(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	allocs := testing.AllocsPerRun(100, func() { ident.NormalizeSex("Female") })
	if allocs != 0 {
		t.Errorf("NormalizeSex allocates %v times, want 0", allocs)
	}
}

func TestType(t *testing.T) {
	tests := []struct {
		in        string
		matchable bool
		wantErr   error
	}{
		{"name", true, nil}, {"date", true, nil}, {"sex", true, nil}, {"id", true, nil},
		{"number", false, nil}, {"codes", false, nil},
		{"Name", false, ident.ErrBadType}, {"", false, ident.ErrBadType}, {"string", false, ident.ErrBadType},
	}
	for _, tc := range tests {
		typ, err := ident.ParseType(tc.in)
		if tc.wantErr != nil {
			require.ErrorIs(t, err, tc.wantErr)
			require.ErrorContains(t, err, `"`+tc.in+`"`)
			continue
		}
		require.NoError(t, err)
		if string(typ) != tc.in || typ.Matchable() != tc.matchable {
			t.Errorf("ParseType(%q) = %q with Matchable %v, want Matchable %v", tc.in, typ, typ.Matchable(), tc.matchable)
		}
	}
}

func TestNormalize(t *testing.T) {
	us, err := ident.ParseLayout("MM/DD/YYYY")
	require.NoError(t, err)
	tests := []struct {
		typ     ident.Type
		layout  ident.Layout
		in      string
		want    string
		wantErr error
	}{
		{ident.TypeName, ident.Layout{}, "Zoë", "zoe", nil},
		{ident.TypeDate, us, "05/25/1989", "1989-05-25", nil},
		{ident.TypeDate, ident.Layout{}, "1989-05-25", "1989-05-25", nil},
		{ident.TypeDate, ident.Layout{}, "05/25/1989", "", ident.ErrBadDate},
		{ident.TypeSex, ident.Layout{}, "female", "F", nil},
		{ident.TypeID, ident.Layout{}, "999-12-3456", "999123456", nil},
		{ident.TypeNumber, ident.Layout{}, "42", "", ident.ErrNotMatchable},
		{ident.TypeCodes, ident.Layout{}, "a;b", "", ident.ErrNotMatchable},
		{ident.Type("blob"), ident.Layout{}, "x", "", ident.ErrBadType},
	}
	for _, tc := range tests {
		got, err := ident.Normalize(tc.typ, tc.layout, tc.in)
		if tc.wantErr != nil {
			require.ErrorIs(t, err, tc.wantErr)
			continue
		}
		require.NoError(t, err)
		if got != tc.want {
			t.Errorf("Normalize(%s, %s, %q) = %q, want %q", tc.typ, tc.layout, tc.in, got, tc.want)
		}
	}
}
