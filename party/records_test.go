package party_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/psi/ident"
	"github.com/mpsi-dev/mpsi/psi/session"
)

const recSpec = `{"id":"r","parties":["a","b"],"fields":{"given":"name","dob":"date","sex":"sex","nid":"id","visits":"number","dx":"codes"},
"match":{"fields":["given","dob","sex","nid"]},"reveal":["cardinality","aggregates"],
"aggregates":[{"name":"v","kind":"sum","field":"visits","min":0,"max":100},{"name":"d","kind":"count_if","field":"dx","contains":"E11","from":["a"]}]}`

func recSpecT(t *testing.T) *session.Spec {
	s, err := session.ParseSpec([]byte(recSpec))
	require.NoError(t, err)
	return s
}

// Bad input gets an error naming the file, line and field; nothing is
// returned half-loaded.
func TestReadCSVErrors(t *testing.T) {
	spec := recSpecT(t)
	hdr := "given,dob,sex,nid,visits,dx\n"
	cases := []struct {
		name, csv, mapping, want string
		wantErr                  error
	}{
		{"missing mapped column", "given,dob,sex,visits,dx\nAda,1815-12-10,F,3,\n", "", `no column "nid" for field nid`, party.ErrRecords},
		{"mapped column absent", hdr + "Ada,1815-12-10,F,1,3,\n", `{"given":{"column":"FIRST"}}`, `no column "FIRST" for field given`, party.ErrRecords},
		{"non-UTF-8 row", hdr + "Ada,1815-12-10,F,1,3,\nB\xffob,1815-12-10,M,2,3,\n", "", "line 3: column 1 (given) is not valid UTF-8", party.ErrRecords},
		{"date not in the declared layout", hdr + "Ada,10/12/1815,F,1,3,\n", `{"dob":{"column":"dob","format":"DD.MM.YYYY"}}`, "line 2: field dob", party.ErrRecords},
		{"date in wrong default layout", hdr + "Ada,12/10/1815,F,1,3,\n", "", "line 2: field dob", party.ErrRecords},
		{"out of range value", hdr + "Ada,1815-12-10,F,1,101,\n", "", "line 2: ", session.ErrValue},
		{"not a number", hdr + "Ada,1815-12-10,F,1,three,\n", "", `aggregate "v", field "visits"`, session.ErrValue},
		{"bad sex", hdr + "Ada,1815-12-10,Q,1,3,\n", "", "line 2: field sex", party.ErrRecords},
		{"wrong field count", hdr + "Ada,1815-12-10,F\n", "", "line 2", party.ErrRecords},
		{"bare quote", hdr + "A\"da,1815-12-10,F,1,3,\n", "", "line 2", party.ErrRecords},
		{"empty file", "", "", "empty file", party.ErrRecords},
		{"header only", hdr, "", "no data rows", party.ErrRecords},
		{"duplicate rejected", hdr + "Ada,1815-12-10,F,1,3,\nADA,1815-12-10,f,1,4,\n", "reject", "line 3 repeats the match key of line 2", party.ErrDuplicateKey},
		{"mapping names an unknown field", hdr + "Ada,1815-12-10,F,1,3,\n", `{"weight":{"column":"w"}}`, `"weight" is not a field`, party.ErrMapping},
		{"format on a non-date", hdr + "Ada,1815-12-10,F,1,3,\n", `{"given":{"column":"given","format":"YYYY"}}`, "format", party.ErrMapping},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opt := party.LoadOptions{}
			if tc.mapping == "reject" {
				opt.Duplicates = party.DuplicatesReject
			} else if tc.mapping != "" {
				m, err := party.ParseMapping([]byte(tc.mapping))
				if err != nil {
					require.ErrorIs(t, err, tc.wantErr)
					require.Contains(t, err.Error(), tc.want)
					return
				}
				opt.Mapping = m
			}
			recs, err := party.ReadCSV(strings.NewReader(tc.csv), spec, "a", opt)
			require.Error(t, err)
			require.Nil(t, recs)
			require.ErrorIs(t, err, tc.wantErr)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestLoadCSVNamesFileAndCounts(t *testing.T) {
	spec := recSpecT(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "hospital.csv")
	require.NoError(t, os.WriteFile(p, []byte("given,dob,sex,nid,visits,dx\nAda,1815-12-10,F,1,3,\n,1815-12-10,F,2,3,\nBob,1815-12-10,X,3,oops,\n"), 0o644))
	_, err := party.LoadCSV(p, spec, "a", party.LoadOptions{})
	require.Error(t, err)
	require.True(t, strings.HasPrefix(err.Error(), "hospital.csv: "), err.Error())
	require.Contains(t, err.Error(), "line 4")

	// With SkipBadRows, the bad row is rejected, counted and listed.
	recs, err := party.LoadCSV(p, spec, "a", party.LoadOptions{SkipBadRows: true})
	require.NoError(t, err)
	rp := recs.Report
	require.Equal(t, party.Report{Rows: 3, Loaded: 1, Rejected: 1, EmptyIdentifier: 1, Errors: rp.Errors}, rp)
	require.Len(t, rp.Errors, 1)
	require.Equal(t, 4, rp.Errors[0].Line)
	require.True(t, errors.Is(&rp.Errors[0], session.ErrValue))
}

// Mapping with formats, separators, a BOM and case-insensitive headers.
func TestReadCSVMapping(t *testing.T) {
	spec := recSpecT(t)
	m, err := party.ParseMapping([]byte(`{"record_id":{"column":"MRN"},"given":{"column":"FIRST"},"dob":{"column":"BIRTHDATE","format":"MM/DD/YYYY"},
	"sex":{"column":"GENDER"},"nid":{"column":"SSN"},"visits":{"column":"N"},"dx":{"column":"CODES","separator":"|"}}`))
	require.NoError(t, err)
	csv := "\ufeffmrn,First,BirthDate,gender,ssn,n,codes\nM1, José ,12/10/1815,female,999-12-3456,7,I10| E11 \nM2,Zoë,01/02/1990,male,999123457,,\n"
	recs, err := party.ReadCSV(strings.NewReader(csv), spec, "a", party.LoadOptions{Mapping: m})
	require.NoError(t, err)
	require.Equal(t, 2, recs.Len())
	require.Equal(t, "M1", recs.ID(0))
	require.Equal(t, "I10"+session.CodeSeparator+"E11", recs.Value(0, "dx"))
	require.Equal(t, "", recs.Value(1, "visits"))
	// The same person exported differently gives the same key.
	other := "given,dob,sex,nid,visits,dx\nJOSE,1815-12-10,F,999 12 3456,1,\n"
	r2, err := party.ReadCSV(strings.NewReader(other), spec, "b", party.LoadOptions{})
	require.NoError(t, err)
	require.Equal(t, recs.Key(0), r2.Key(0))
}

func FuzzParseMapping(f *testing.F) {
	f.Add([]byte(`{"record_id":{"column":"MRN"},"dob":{"column":"B","format":"MM/DD/YYYY"}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"x":{"column":""}}`))
	f.Add([]byte(`{"sex":{"column":"SEXO","sex_codes":{"H":"M","M":"F"}}}`))
	f.Add([]byte(`{"sex":{"column":"s","sex_codes":{"H":"M","h":"F"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := party.ParseMapping(b)
		if err != nil {
			require.Nil(t, m)
		}
	})
}

func FuzzReadCSV(f *testing.F) {
	f.Add("given,dob,sex,nid,visits,dx\nAda,1815-12-10,F,1,3,E11\n")
	f.Add("given,dob,sex,nid,visits,dx\n\"a\nb\",1815-12-10,F,1,3,\n")
	f.Add("x\n")
	f.Add("given,dob,sex,nid,visits,dx\nAda,1815-12-10,h,1,3,\n")
	f.Add("given,dob,sex,nid,visits,dx\n\"Ada,1815-12-10,F,1,3,\nBo\"b,1815-12-10,F,1,3,\n")
	f.Fuzz(func(t *testing.T, csv string) {
		spec, err := session.ParseSpec([]byte(recSpec))
		require.NoError(t, err)
		recs, err := party.ReadCSV(strings.NewReader(csv), spec, "a", party.LoadOptions{SkipBadRows: true})
		if err != nil {
			require.Nil(t, recs)
			return
		}
		rp := recs.Report
		require.Equal(t, rp.Rows, rp.Loaded+rp.Rejected+rp.Duplicates+rp.EmptyIdentifier, "every row is accounted for")
		require.Equal(t, recs.Len(), rp.Loaded)
	})
}

// A CSV quote fault is reported at the line where its record starts, not
// where encoding/csv noticed it (for an unterminated quote, the end of the
// file). One within a line is a bad row that SkipBadRows goes on past; one
// in a record spanning lines stops the load even then, since where the next
// row starts is unknown.
func TestReadCSVQuoteErrorsAtRecordStart(t *testing.T) {
	spec := recSpecT(t)
	hdr := "given,dob,sex,nid,visits,dx\n"
	good := "Ada,1815-12-10,F,1,3,\n"
	cases := []struct {
		name, csv string
		skip      bool
		want      string // in the error; "" for a load that succeeds
		rejected  int
		errLine   int
	}{
		{"unterminated multi-line quote", hdr + good + "\"Bob\nSmith,1815-12-10,M,2,3,\nCy,1815-12-10,M,3,3,\n", false,
			"line 3: extraneous or missing \" in quoted-field (in the record starting on this line; found on line 5, column 22", 0, 0},
		{"unterminated multi-line quote, skipping", hdr + good + "\"Bob\nSmith,1815-12-10,M,2,3,\nCy,1815-12-10,M,3,3,\n", true,
			"line 3: extraneous or missing", 0, 0},
		{"fault after a multi-line field", hdr + good + "\"Bob\nSmith\"x,1815-12-10,M,2,3,\nCy,1815-12-10,M,3,3,\n", true,
			"line 3: extraneous or missing \" in quoted-field (in the record starting on this line; found on line 4, column 6)", 0, 0},
		{"bare quote, skipping", hdr + good + "B\"ob,1815-12-10,M,2,3,\nCy,1815-12-10,M,3,3,\n", true, "", 1, 3},
		{"fault in a one-line quoted field, skipping", hdr + good + "\"Bob\"x,1815-12-10,M,2,3,\nCy,1815-12-10,M,3,3,\n", true, "", 1, 3},
		{"multi-line field, well quoted", hdr + good + "\"Bob\nSmith\",1815-12-10,M,2,3,\nCy,1815-12-10,M,3,3,\n", false, "", 0, 0},
		{"quote fault in the header", "given,\"dob\n,sex\n", false, "header: line 1: extraneous or missing \" in quoted-field (in the record starting on this line; found on line 2, column 6)", 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := party.ReadCSV(strings.NewReader(tc.csv), spec, "a", party.LoadOptions{SkipBadRows: tc.skip})
			if tc.want != "" {
				require.ErrorIs(t, err, party.ErrRecords)
				require.Nil(t, recs)
				require.Contains(t, err.Error(), tc.want)
				require.NotContains(t, err.Error(), "Bob", "the record's text is not quoted")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.rejected, recs.Report.Rejected)
			require.Equal(t, 3-tc.rejected, recs.Report.Loaded)
			if tc.rejected > 0 {
				require.Equal(t, tc.errLine, recs.Report.Errors[0].Line)
			}
		})
	}
}

// A mapping's sex_codes say what an export's own letters mean; without
// them the ambiguous letters h, v and d stop the load, even when bad rows
// are skipped, because the file's other codes are probably misread too.
func TestReadCSVSexCodes(t *testing.T) {
	spec := recSpecT(t)
	// A Spanish H/M export: H hombre, M mujer.
	es := "given,dob,sex,nid,visits,dx\nAda,1815-12-10,M,1,3,\nBob,1815-12-11,H,2,4,\nCy,1815-12-12,mujer,3,5,\nDi,1815-12-13,Männlich,4,6,\n"
	for _, skip := range []bool{false, true} {
		recs, err := party.ReadCSV(strings.NewReader(es), spec, "a", party.LoadOptions{SkipBadRows: skip})
		require.ErrorIs(t, err, ident.ErrAmbiguousSex, "skip=%v", skip)
		require.ErrorIs(t, err, party.ErrRecords)
		require.Nil(t, recs)
		require.Contains(t, err.Error(), "line 3: field sex: ident: ambiguous sex code")
		require.Contains(t, err.Error(), `"sex_codes"`)
	}
	m, err := party.ParseMapping([]byte(`{"sex":{"column":"sex","sex_codes":{"H":"M","M":"F"}}}`))
	require.NoError(t, err)
	recs, err := party.ReadCSV(strings.NewReader(es), spec, "a", party.LoadOptions{Mapping: m})
	require.NoError(t, err)
	require.Equal(t, 4, recs.Len())
	// The same patients exported with the built-in codes give the same keys.
	std := "given,dob,sex,nid,visits,dx\nAda,1815-12-10,F,1,3,\nBob,1815-12-11,male,2,4,\nCy,1815-12-12,f,3,5,\nDi,1815-12-13,M,4,6,\n"
	want, err := party.ReadCSV(strings.NewReader(std), spec, "b", party.LoadOptions{})
	require.NoError(t, err)
	for i := range 4 {
		require.Equal(t, want.Key(i), recs.Key(i), "row %d", i)
	}

	// A sex field carried as an attribute is read with the codes too.
	attrSpec, err := session.ParseSpec([]byte(`{"id":"r","parties":["a","b"],"fields":{"given":"name","sex":"sex"},
"match":{"fields":["given"]},"reveal":["aggregates"],"aggregates":[{"name":"women","kind":"count_if","field":"sex","equals":"F"}]}`))
	require.NoError(t, err)
	recs, err = party.ReadCSV(strings.NewReader("given,sex\nAda,M\nBob,H\n"), attrSpec, "a", party.LoadOptions{Mapping: m})
	require.NoError(t, err)
	require.Equal(t, "F", recs.Value(0, "sex"))
	require.Equal(t, "M", recs.Value(1, "sex"))
	_, err = party.ReadCSV(strings.NewReader("given,sex\nAda,M\nBob,H\n"), attrSpec, "a", party.LoadOptions{})
	require.ErrorIs(t, err, ident.ErrAmbiguousSex)

	for _, tc := range []struct{ mapping, want string }{
		{`{"sex":{"column":"sex","sex_codes":{"H":"hombre"}}}`, `sex.sex_codes: ident: sex code "H": value "hombre" is not M, F or U`},
		{`{"sex":{"column":"sex","sex_codes":{"H":"M","h":"F"}}}`, `sex.sex_codes: ident: sex codes "H" and "h" are the same code with different values`},
		{`{"given":{"column":"given","sex_codes":{"H":"M"}}}`, `given.sex_codes: field has type name, not sex`},
		{`{"record_id":{"column":"id","sex_codes":{"H":"M"}}}`, `record_id: format/separator/sex_codes do not apply`},
	} {
		m, err := party.ParseMapping([]byte(tc.mapping))
		if err == nil {
			_, err = party.ReadCSV(strings.NewReader(es), spec, "a", party.LoadOptions{Mapping: m})
		}
		require.ErrorIs(t, err, party.ErrMapping, tc.mapping)
		require.ErrorContains(t, err, tc.want)
	}
}

// RowError.Summary names the line, the field and the kind of fault, never
// the value, which Error may quote.
func TestRowErrorSummaryHoldsNoValue(t *testing.T) {
	spec := recSpecT(t)
	in := "given,dob,sex,nid,visits,dx\n" +
		"Ada,1815-12-10,F,1,3,\n" +
		"Bob,1815-13-41,M,2,4,\n" + // line 3: no calendar date
		"Cy,1815-12-12,QZ9,3,3,\n" + // line 4: unknown sex code
		"Di,1815-12-13,F,4,171,\n" + // line 5: outside [0, 100]
		"Ed,1815-12-14,M,5,x7q,\n" + // line 6: not a number
		"Fay,1815-12-15,F,6,2.5,\n" + // line 7: more decimals than scale 0
		"Gil,1815-12-16,M,7,99999999999999999999,\n" + // line 8: too large
		"H\xffal,1815-12-17,M,8,1,\n" + // line 9: not UTF-8
		"Ivy,1815-12-18,F,9\n" + // line 10: too few fields
		"J\"o,1815-12-19,F,10,1,\n" + // line 11: bare quote
		"Kim,1815-12-20,F,11,1,\"E11\x1fQZ7\"\n" // line 12: a code with a control character
	recs, err := party.ReadCSV(strings.NewReader(in), spec, "a", party.LoadOptions{SkipBadRows: true})
	require.NoError(t, err)
	require.Equal(t, 10, recs.Report.Rejected)
	want := []string{
		"line 3: field dob: not a date in the column's format, or not a calendar date in 1800..2200",
		"line 4: field sex: ident: unrecognised sex code",
		`line 5: aggregate "v": outside [min, max]`,
		`line 6: aggregate "v": not a number`,
		`line 7: aggregate "v": more decimals than the scale`,
		`line 8: aggregate "v": beyond ±2^62 at the scale`,
		"line 9: column 1 (given) is not valid UTF-8",
		"line 10: wrong number of fields",
		`line 11: bare " in non-quoted-field`,
		"line 12: field dx: invalid value",
	}
	secrets := []string{"13-41", "QZ9", "171", "x7q", "2.5", "99999", "\xff", "J\"o", "QZ7"}
	require.Len(t, recs.Report.Errors, len(want))
	for i, e := range recs.Report.Errors {
		s := e.Summary()
		require.True(t, strings.HasPrefix(s, want[i]), "%q, want %q", s, want[i])
		for _, v := range secrets {
			require.NotContains(t, s, v)
		}
	}
	require.Contains(t, recs.Report.Errors[0].Error(), "1815-13-41", "Error itself may quote a date, to fix the export")
}

// Only the columns read must be valid UTF-8: a free-text column in another
// encoding, which no field maps, costs no row.
func TestReadCSVUnusedColumnNotUTF8(t *testing.T) {
	in := "given,dob,sex,nid,visits,dx,notes\nAda,1815-12-10,F,1,3,,caf\xe9\nBob,1815-12-11,M,2,4,,ok\n"
	recs, err := party.ReadCSV(strings.NewReader(in), recSpecT(t), "a", party.LoadOptions{})
	require.NoError(t, err)
	require.Equal(t, 2, recs.Len())
	_, err = party.ReadCSV(strings.NewReader(strings.Replace(in, "Bob", "B\xffb", 1)), recSpecT(t), "a", party.LoadOptions{})
	require.ErrorContains(t, err, "line 3: column 1 (given) is not valid UTF-8")
}
