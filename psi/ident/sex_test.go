package ident_test

import (
	"os"
	"regexp"
	"strings"
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
		// The table of ident/1 before other languages were added.
		{"M", "M", nil}, {"m", "M", nil}, {"male", "M", nil}, {"Male", "M", nil},
		{"MALE", "M", nil}, {" man ", "M", nil}, {"1", "M", nil}, {"男", "M", nil},
		{"Ｍ", "M", nil},
		{"F", "F", nil}, {"f", "F", nil}, {"female", "F", nil}, {"Female", "F", nil},
		{"WOMAN", "F", nil}, {"2", "F", nil}, {"女", "F", nil}, {"ｆｅｍａｌｅ", "F", nil},
		{"U", "U", nil}, {"unknown", "U", nil}, {"Other", "U", nil}, {"x", "U", nil},
		{"0", "U", nil}, {"9", "U", nil},
		// German m/w/d (d is ambiguous, below).
		{"männlich", "M", nil}, {"MÄNNLICH", "M", nil}, {"Maennlich", "M", nil}, {"mannlich", "M", nil}, {"Mann", "M", nil},
		{"W", "F", nil}, {"weiblich", "F", nil}, {"Frau", "F", nil},
		{"divers", "U", nil}, {"Unbekannt", "U", nil}, {"unbestimmt", "U", nil},
		// French, accents optional; decomposed accents too.
		{"masculin", "M", nil}, {"Homme", "M", nil},
		{"féminin", "F", nil}, {"FÉMININ", "F", nil}, {"fe\u0301minin", "F", nil}, {"feminin", "F", nil}, {"femme", "F", nil},
		{"inconnu", "U", nil}, {"autre", "U", nil}, {"Indéterminé", "U", nil},
		// Spanish.
		{"masculino", "M", nil}, {"hombre", "M", nil}, {"varón", "M", nil}, {"VARON", "M", nil},
		{"femenino", "F", nil}, {"Mujer", "F", nil},
		{"desconocido", "U", nil}, {"otro", "U", nil}, {"indeterminado", "U", nil},
		// Portuguese (masculino and indeterminado as Spanish).
		{"homem", "M", nil}, {"feminino", "F", nil}, {"mulher", "F", nil},
		{"desconhecido", "U", nil}, {"outro", "U", nil}, {"ignorado", "U", nil}, {"I", "U", nil},
		// Italian.
		{"maschio", "M", nil}, {"maschile", "M", nil}, {"uomo", "M", nil},
		{"femmina", "F", nil}, {"femminile", "F", nil}, {"donna", "F", nil},
		{"sconosciuto", "U", nil}, {"altro", "U", nil}, {"indeterminato", "U", nil},
		// Dutch M/V (v is ambiguous, below).
		{"mannelijk", "M", nil}, {"vrouwelijk", "F", nil}, {"Vrouw", "F", nil},
		{"onbekend", "U", nil}, {"anders", "U", nil}, {"overig", "U", nil},
		// English abbreviations and words.
		{"masc", "M", nil}, {"Masculine", "M", nil}, {"fem", "F", nil}, {"feminine", "F", nil},
		{"unspecified", "U", nil}, {"undetermined", "U", nil}, {"indeterminate", "U", nil},
		// Letters that mean different sexes in different code lists.
		{"h", "", ident.ErrAmbiguousSex}, {"H", "", ident.ErrAmbiguousSex}, {"Ｈ", "", ident.ErrAmbiguousSex},
		{"v", "", ident.ErrAmbiguousSex}, {"V", "", ident.ErrAmbiguousSex},
		{"d", "", ident.ErrAmbiguousSex}, {" D ", "", ident.ErrAmbiguousSex},
		// Refused.
		{"", "", ident.ErrEmpty},
		{"  ", "", ident.ErrEmpty},
		{"\u3000", "", ident.ErrEmpty},
		{"mals", "", ident.ErrBadSex}, // anonlink typo
		{"3", "", ident.ErrBadSex},
		{"6", "", ident.ErrBadSex}, // Spain's INE codes women 6: declare it
		{"m f", "", ident.ErrBadSex},
		{"males", "", ident.ErrBadSex},
		{"unknownx", "", ident.ErrBadSex},
		{"M.", "", ident.ErrBadSex}, // punctuation is not dropped
		{"-1", "", ident.ErrBadSex},
		{"k", "", ident.ErrBadSex}, // Polish kobieta: not in the table
		{"männer", "", ident.ErrBadSex},
		{"男性化", "", ident.ErrBadSex},
		{"femininfemininfemininfemininfeminin", "", ident.ErrBadSex}, // longer than any code
		{strings.Repeat("é", 40), "", ident.ErrBadSex},
		{"\xff", "", ident.ErrInvalidUTF8},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ident.NormalizeSex(tc.in)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				if tc.wantErr == ident.ErrAmbiguousSex {
					require.ErrorIs(t, err, ident.ErrBadSex, "redacted as a sex error")
				}
				if tc.wantErr == ident.ErrBadSex {
					require.NotErrorIs(t, err, ident.ErrAmbiguousSex)
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
	for _, in := range []string{"Female", "weiblich", "h", "mals"} {
		allocs := testing.AllocsPerRun(100, func() { ident.NormalizeSex(in) })
		if allocs != 0 {
			t.Errorf("NormalizeSex(%q) allocates %v times, want 0", in, allocs)
		}
	}
}

// The error for an ambiguous letter is the same for each, so it does not
// tell which one the row held.
func TestAmbiguousSexErrorHidesTheLetter(t *testing.T) {
	_, eh := ident.NormalizeSex("h")
	_, ev := ident.NormalizeSex("V")
	_, ed := ident.NormalizeSex("d")
	require.Equal(t, eh.Error(), ev.Error())
	require.Equal(t, eh.Error(), ed.Error())
	require.Contains(t, eh.Error(), `"sex_codes": {"H": "M", "M": "F"}`)
}

func TestSexCodes(t *testing.T) {
	// A Spanish H/M export: h is hombre, m mujer; words keep their meaning.
	es, err := ident.NewSexCodes(map[string]string{"H": "M", " m ": "f", "6": "F"})
	require.NoError(t, err)
	for in, want := range map[string]string{
		"H": "M", "h": "M", "M": "F", "m": "F", "Ｍ": "F", "6": "F",
		"hombre": "M", "mujer": "F", "male": "M", "F": "F", "1": "M", "U": "U",
	} {
		got, err := es.Normalize(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	_, err = es.Normalize("v")
	require.ErrorIs(t, err, ident.ErrAmbiguousSex, "letters it does not list stay ambiguous")
	b, err := es.Append([]byte("x"), "h")
	require.NoError(t, err)
	require.Equal(t, "xM", string(b))
	b, err = es.Append([]byte("x"), "q")
	require.ErrorIs(t, err, ident.ErrBadSex)
	require.Equal(t, "x", string(b))
	allocs := testing.AllocsPerRun(100, func() { es.Normalize("M") })
	require.Zero(t, allocs)

	// German m/w/d and Dutch M/V, accents and case in the codes folded.
	de, err := ident.NewSexCodes(map[string]string{"D": "U", "Ö": "u"})
	require.NoError(t, err)
	for in, want := range map[string]string{"m": "M", "w": "F", "d": "U", "o": "U", "ö": "U"} {
		got, err := de.Normalize(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	nl, err := ident.NewSexCodes(map[string]string{"V": "F"})
	require.NoError(t, err)
	got, err := nl.Normalize("v")
	require.NoError(t, err)
	require.Equal(t, "F", got)

	var none *ident.SexCodes
	got, err = none.Normalize("weiblich")
	require.NoError(t, err)
	require.Equal(t, "F", got)

	for _, tc := range []struct {
		codes map[string]string
		want  string
	}{
		{map[string]string{"H": "male"}, `sex code "H": value "male" is not M, F or U`},
		{map[string]string{"H": ""}, `sex code "H": value "" is not M, F or U`},
		{map[string]string{" ": "M"}, `sex code " ": empty`},
		{map[string]string{strings.Repeat("a", 33): "M"}, "longer than 32 bytes"},
		{map[string]string{"\xff": "M"}, "not valid UTF-8"},
		{map[string]string{"H": "M", "h": "F"}, `sex codes "H" and "h" are the same code with different values`},
		{map[string]string{"É": "M", "e": "F"}, `sex codes "e" and "É" are the same code with different values`},
	} {
		_, err := ident.NewSexCodes(tc.codes)
		require.ErrorContains(t, err, tc.want)
	}
	_, err = ident.NewSexCodes(map[string]string{"H": "M", "h": "m"})
	require.NoError(t, err, "the same code twice with the same value")
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

// The table in the package documentation is the table the code uses:
// every code listed there maps to its column's sex, and every code of the
// built-in table is listed.
func TestSexTableDocumented(t *testing.T) {
	b, err := os.ReadFile("doc.go")
	require.NoError(t, err)
	doc := string(b)
	start := strings.Index(doc, "//\tlang ")
	require.GreaterOrEqual(t, start, 0, "the table's header")
	listed := map[string]string{}
	sep := regexp.MustCompile(`\s{2,}`)
	for _, line := range strings.Split(doc[start:], "\n")[1:] {
		if !strings.HasPrefix(line, "//\t") {
			break
		}
		cols := sep.Split(strings.TrimPrefix(line, "//\t"), -1)
		require.GreaterOrEqual(t, len(cols), 4, "%q", line)
		// Initials are separated by two spaces, words by one.
		if cols[0] == "-" {
			var sexes []string
			for _, c := range cols[1:] {
				switch c {
				case "m", "f", "u":
					sexes = append(sexes, strings.ToUpper(c))
				}
				listed[c] = sexes[len(sexes)-1]
			}
			continue
		}
		for i, sex := range []string{"M", "F", "U"} {
			for _, code := range strings.Fields(cols[1+i]) {
				listed[code] = sex
			}
		}
	}
	folded := map[string]string{}
	for code, sex := range listed {
		got, err := ident.NormalizeSex(code)
		require.NoError(t, err, code)
		require.Equal(t, sex, got, code)
		folded[fold(code)] = sex
	}
	require.Equal(t, ident.SexTable, folded, "the documented table, lowered and without accents, is the built-in one")
	for code := range ident.AmbiguousSex {
		_, err := ident.NormalizeSex(code)
		require.ErrorIs(t, err, ident.ErrAmbiguousSex, code)
		require.NotContains(t, listed, code)
	}
}

// fold lowers a documented code and removes the accents of the
// documentation's few accented words, as the table's keys are written.
func fold(code string) string {
	return strings.NewReplacer("ä", "a", "é", "e", "ó", "o").Replace(strings.ToLower(code))
}

// The fast path (short ASCII codes, one character or words) gives what the
// general path gives (forced here by hospital codes that list another code), for
// every ASCII byte and every code of the table.
func TestNormalizeSexFastPathAgrees(t *testing.T) {
	other, err := ident.NewSexCodes(map[string]string{"zz": "M"})
	require.NoError(t, err)
	inputs := []string{"femalex", "MALE\x00", "unknown1", "Mannlich", "12345678", "123456789"}
	for b := 0; b < 0x80; b++ {
		inputs = append(inputs, string(rune(b)))
	}
	// The short-word fast path, on every code of the table as written, in
	// capitals and with a letter changed.
	for code := range ident.SexTable {
		inputs = append(inputs, code, strings.ToUpper(code), code+"x", "x"+code[1:])
	}
	for _, s := range inputs {
		got, gerr := ident.NormalizeSex(s)
		want, werr := other.Normalize(s)
		require.Equal(t, want, got, "%q", s)
		require.Equal(t, werr == nil, gerr == nil, "%q: %v / %v", s, gerr, werr)
		if werr != nil {
			require.Equal(t, werr.Error(), gerr.Error(), "%q", s)
		}
	}
}
