package ident_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mpsi-dev/mpsi/psi/ident"
	"github.com/stretchr/testify/require"
)

func TestParseLayout(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string // canonical String()
		wantErr string // substring of the error; ErrBadLayout is implied
	}{
		{"iso", "YYYY-MM-DD", "YYYY-MM-DD", ""},
		{"us", "MM/DD/YYYY", "MM/DD/YYYY", ""},
		{"german", "DD.MM.YYYY", "DD.MM.YYYY", ""},
		{"compact", "YYYYMMDD", "YYYYMMDD", ""},
		{"anonlink", "DD-MM-YYYY", "DD-MM-YYYY", ""},
		{"unpadded us", "M/D/YYYY", "M/D/YYYY", ""},
		{"lower case", "yyyy-mm-dd", "YYYY-MM-DD", ""},
		{"space and dot", "DD. MM. YYYY", "DD. MM. YYYY", ""},
		{"slashes iso", "YYYY/MM/DD", "YYYY/MM/DD", ""},
		{"two-digit year", "DD/MM/YY", "", "ambiguous"},
		{"three Y", "YYY-MM-DD", "", `"YYY"`},
		{"five Y", "YYYYY-MM-DD", "", `"YYYYY"`},
		{"triple M", "YYYY-MMM-DD", "", `"MMM"`},
		{"missing day", "YYYY-MM", "", "missing DD"},
		{"missing year", "MM/DD", "", "missing YYYY"},
		{"month twice", "MM-MM-YYYY", "", "MM appears twice"},
		{"M adjacent", "YYYYMD", "", "separator"},
		{"D adjacent to MM", "MMDYYYY", "", "separator"},
		{"time", "YYYY-MM-DDThh", "", "unexpected"},
		{"digit", "YYYY-MM-D1", "", "unexpected"},
		{"non-ascii separator", "YYYY–MM–DD", "", "unexpected"},
		{"too long", "YYYY - MM - DD - ", "", "longer"},
		{"empty", "", "", "missing"},
		{"trailing space", "YYYY-MM-DD ", "", "trailing space"},
		{"leading space", " DD.MM.YYYY", "", "leading"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ident.ParseLayout(tc.in)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, ident.ErrBadLayout)
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			if got := l.String(); got != tc.want {
				t.Errorf("ParseLayout(%q).String() = %q, want %q", tc.in, got, tc.want)
			}
			again, err := ident.ParseLayout(l.String())
			require.NoError(t, err)
			if again != l {
				t.Errorf("ParseLayout(%q) != ParseLayout(%q)", l.String(), tc.in)
			}
		})
	}
	iso, err := ident.ParseLayout(ident.DefaultLayout)
	require.NoError(t, err)
	if iso != (ident.Layout{}) {
		t.Errorf("ParseLayout(DefaultLayout) is not the zero Layout")
	}
	if got := (ident.Layout{}).String(); got != ident.DefaultLayout {
		t.Errorf("Layout{}.String() = %q, want %q", got, ident.DefaultLayout)
	}
}

func TestLayoutNormalize(t *testing.T) {
	type io struct {
		in      string
		want    string
		wantErr string // substring; ErrBadDate is implied
	}
	tests := []struct {
		layout string
		cases  []io
	}{
		{"YYYY-MM-DD", []io{
			{"1989-05-25", "1989-05-25", ""},
			{" 1989-05-25\t", "1989-05-25", ""},
			{"2000-02-29", "2000-02-29", ""},
			{"1800-01-01", "1800-01-01", ""},
			{"2200-12-31", "2200-12-31", ""},
			{"1989/05/25", "", "does not match layout YYYY-MM-DD"},
			{"1989-5-25", "", "does not match"},
			{"1989-05-250", "", "does not match"},
			{"1900-02-29", "", "day 29 outside 1..28 for 1900-02"},
			{"2001-02-29", "", "day 29 outside 1..28"},
			{"1989-13-01", "", "month 13 outside 1..12"},
			{"1989-00-01", "", "month 0"},
			{"1989-04-31", "", "day 31 outside 1..30"},
			{"1989-04-00", "", "day 0"},
			{"1799-12-31", "", "year 1799 outside 1800..2200"},
			{"1989-05-25T00:00:00", "", "does not match"},
			{"１９８９-05-25", "", "does not match"},
		}},
		{"MM/DD/YYYY", []io{
			{"05/25/1989", "1989-05-25", ""},
			{"02/29/2024", "2024-02-29", ""},
			{"5/25/1989", "", "does not match layout MM/DD/YYYY"},
			{"05-25-1989", "", "does not match"},
			{"25/05/1989", "", "month 25"},
			{"02/29/2023", "", "day 29"},
			{"05/25/89", "", "does not match"},
		}},
		{"M/D/YYYY", []io{
			{"5/3/2020", "2020-05-03", ""},
			{"05/03/2020", "2020-05-03", ""},
			{"12/31/1999", "1999-12-31", ""},
			{"123/1/1999", "", "does not match"},
			{"/1/1999", "", "does not match"},
			{"2/30/2020", "", "day 30"},
		}},
		{"DD.MM.YYYY", []io{
			{"25.05.1989", "1989-05-25", ""},
			{"29.02.2000", "2000-02-29", ""},
			{"25-05-1989", "", "does not match layout DD.MM.YYYY"},
			{"25.05.1989.", "", "does not match"},
			{"29.02.2100", "", "day 29"},
			{"01.13.1989", "", "month 13"},
		}},
		{"YYYYMMDD", []io{
			{"19890525", "1989-05-25", ""},
			{"20240229", "2024-02-29", ""},
			{"1989052", "", "does not match layout YYYYMMDD"},
			{"198905251", "", "does not match"},
			{"1989-05-25", "", "does not match"},
			{"19891325", "", "month 13"},
			{"20230229", "", "day 29"},
		}},
		{"DD-MM-YYYY", []io{ // anonlink
			{"27-08-1941", "1941-08-27", ""},
			{"22-12-2972", "", "year 2972"},
			{"27/08/1941", "", "does not match layout DD-MM-YYYY"},
			{"29-02-1941", "", "day 29"},
			{"27-8-1941", "", "does not match"},
			{"", "", ""}, // ErrEmpty, checked below
		}},
		{"DD/MM/YYYY", []io{
			{"31/12/1999", "1999-12-31", ""},
			{"31/06/1999", "", "day 31 outside 1..30"},
			{"31/12/19999", "", "does not match"},
		}},
	}
	for _, tl := range tests {
		l, err := ident.ParseLayout(tl.layout)
		require.NoError(t, err)
		for _, tc := range tl.cases {
			t.Run(tl.layout+"/"+tc.in, func(t *testing.T) {
				got, err := l.Normalize(tc.in)
				switch {
				case tc.in == "":
					require.ErrorIs(t, err, ident.ErrEmpty)
				case tc.wantErr != "":
					require.ErrorIs(t, err, ident.ErrBadDate)
					require.ErrorContains(t, err, tc.wantErr)
					require.ErrorContains(t, err, strconv.Quote(tc.in))
				default:
					require.NoError(t, err)
					if got != tc.want {
						t.Errorf("ParseLayout(%q).Normalize(%q) = %q, want %q", tl.layout, tc.in, got, tc.want)
					}
					iso, err := ident.Layout{}.Normalize(got)
					if err != nil || iso != got {
						t.Errorf("Layout{}.Normalize(%q) = %q, %v, want it unchanged", got, iso, err)
					}
				}
			})
		}
	}
}

func TestLayoutNormalizeNoAllocISO(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := (ident.Layout{}).Normalize("1989-05-25"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Layout{}.Normalize(ISO date) allocates %v times, want 0", allocs)
	}
}

// daysIn agrees with package time over the accepted years.
func TestDaysIn(t *testing.T) {
	for y := ident.MinYear; y <= ident.MaxYear; y++ {
		for m := 1; m <= 12; m++ {
			want := time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
			if got := ident.DaysIn(y, m); got != want {
				t.Fatalf("daysIn(%d, %d) = %d, want %d", y, m, got, want)
			}
		}
	}
}

// trimmed never claims a string is trimmed when strings.TrimSpace would
// change it, for every first and last byte (with and without a middle, and
// multi-byte white space at either end), and says so for plain values.
func TestTrimmedAgreesWithTrimSpace(t *testing.T) {
	for a := range 256 {
		for b := range 256 {
			for _, s := range []string{string([]byte{byte(a)}), string([]byte{byte(a), byte(b)}), string([]byte{byte(a)}) + "x\u00a0y" + string([]byte{byte(b)})} {
				if ident.Trimmed(s) && strings.TrimSpace(s) != s {
					t.Fatalf("trimmed(%q) but TrimSpace changes it", s)
				}
			}
		}
	}
	for _, s := range []string{"\u00a0x", "x\u00a0", "\u2003x", "x\u3000", " x", "x\t", ""} {
		if ident.Trimmed(s) {
			t.Fatalf("trimmed(%q)", s)
		}
	}
	for _, s := range []string{"x", "Müller", "05/25/1989", "a b"} {
		if !ident.Trimmed(s) {
			t.Fatalf("!trimmed(%q)", s)
		}
	}
}
