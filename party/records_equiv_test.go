package party

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/psi/session"
)

const equivSpec = `{"id":"r","parties":["a","b"],"fields":{"given":"name","dob":"date","sex":"sex","nid":"id","visits":"number","dx":"codes"},
"match":{"fields":["given","dob","sex","nid"]},"reveal":["cardinality","aggregates"],"max_set_size":%d,
"aggregates":[{"name":"v","kind":"sum","field":"visits","min":0,"max":100},{"name":"d","kind":"count_if","field":"dx","contains":"E11","from":["a"]}]}`

func equivSpecT(t testing.TB, maxSetSize int) *session.Spec {
	s, err := session.ParseSpec([]byte(fmt.Sprintf(equivSpec, maxSetSize)))
	require.NoError(t, err)
	return s
}

// requireSameLoad loads in with ReadCSV and with the loader it replaced and
// requires the same records, report and error.
func requireSameLoad(t testing.TB, in []byte, spec *session.Spec, name string, opt LoadOptions) {
	t.Helper()
	want, werr := refReadCSV(bytes.NewReader(in), spec, name, opt)
	got, gerr := ReadCSV(bytes.NewReader(in), spec, name, opt)
	if werr != nil || gerr != nil {
		require.Error(t, werr, "the reference loader accepted what ReadCSV refused: %v", gerr)
		require.Error(t, gerr, "ReadCSV accepted what the reference loader refused: %v", werr)
		require.Nil(t, got)
		require.Equal(t, werr.Error(), gerr.Error())
		for _, target := range []error{ErrRecords, ErrDuplicateKey, ErrMapping, session.ErrValue} {
			require.Equal(t, errors.Is(werr, target), errors.Is(gerr, target), "errors.Is(%v)", target)
		}
		return
	}
	require.Equal(t, want.Report, got.Report)
	require.Equal(t, len(want.keys), got.Len())
	for i := range want.keys {
		require.Equal(t, want.keys[i], got.Key(i), "record %d", i)
		require.Equal(t, want.ids[i], got.ID(i), "record %d", i)
		for f, field := range want.fields {
			require.Equal(t, want.values[i][f], got.Value(i, field), "record %d field %s", i, field)
		}
		require.Equal(t, "", got.Value(i, "no such field"))
	}
}

func allOptions(m Mapping) []LoadOptions {
	var opts []LoadOptions
	for _, dup := range []Duplicates{DuplicatesMerge, DuplicatesReject} {
		for _, skip := range []bool{false, true} {
			opts = append(opts, LoadOptions{Mapping: m, Duplicates: dup, SkipBadRows: skip}, LoadOptions{Mapping: m, Duplicates: dup, SkipBadRows: skip, MaxErrors: 1})
		}
	}
	return opts
}

// Generated cohorts (identifier noise, every party's layout, duplicate
// rows) load exactly as before.
func TestReadCSVMatchesReferenceOnCohorts(t *testing.T) {
	for n := 2; n <= 5; n++ {
		c, err := cohort.Generate(cohort.Config{Seed: uint64(n), Parties: n, Records: 3000, SharedAll: 0.3, SharedPair: 0.1, Noise: true, Duplicates: 40})
		require.NoError(t, err)
		spec, err := session.ParseSpec(c.Spec)
		require.NoError(t, err)
		for _, p := range c.Parties {
			m, err := ParseMapping(p.Mapping)
			require.NoError(t, err)
			for _, opt := range allOptions(m) {
				t.Run(fmt.Sprintf("n=%d/%s/dup=%d/skip=%v/maxerr=%d", n, p.Name, opt.Duplicates, opt.SkipBadRows, opt.MaxErrors), func(t *testing.T) {
					requireSameLoad(t, p.CSV, spec, p.Name, opt)
				})
			}
		}
	}
}

var equivCases = map[string]string{
	"empty file":  "",
	"header only": "given,dob,sex,nid,visits,dx\n",
	"blank lines": "given,dob,sex,nid,visits,dx\n\n\n",
	"bom":         "\ufeffgiven,dob,sex,nid,visits,dx\nAda,1815-12-10,F,1,3,E11\n",
	"duplicates, first kept": "given,dob,sex,nid,visits,dx\nAda,1815-12-10,F,1,3,E11\nBob,1815-12-11,M,2,4,\n" +
		"ADA,1815-12-10,f,1,9,I10\nada ,1815-12-10,F,0001,1,\nBob,1815-12-11,M,2,4,\n",
	// A quoted field spanning lines: line numbers are the file's.
	"duplicate after a multi-line field": "given,dob,sex,nid,visits,dx\n\"Ada\nLovelace\",1815-12-10,F,1,3,\"E11;\nI10\"\nBob,1815-12-11,M,2,4,\n\"ADA\nLOVELACE\",1815-12-10,F,1,5,\n",
	"no record_id: ids are lines":        "given,dob,sex,nid,visits,dx\n\"A\nB\",1815-12-10,F,1,3,\nCy,1815-12-12,F,3,3,\n",
	"record_id column":                   "record_id,given,dob,sex,nid,visits,dx\n  r1 ,Ada,1815-12-10,F,1,3,\n,Bob,1815-12-11,M,2,4,\n",
	"empty identifiers":                  "given,dob,sex,nid,visits,dx\n,1815-12-10,F,1,3,\nAda,,F,1,3,\nAda,1815-12-10,F,1,3,\n   ,1815-12-10,F,1,3,\n",
	"bad rows":                           "given,dob,sex,nid,visits,dx\nAda,1815-12-10,F,1,3,\nBob,1815-13-40,M,2,4,\nCy,1815-12-12,Q,3,3,\nDi,1815-12-13,F,4,200,\nEd,1815-12-14,M,5,x,\nFay,1815-12-15,F,6,1,\n",
	"wrong field count":                  "given,dob,sex,nid,visits,dx\nAda,1815-12-10,F,1,3,\nBob,1815-12-11\nCy,1815-12-12,F,3,3,\n",
	"bare quote":                         "given,dob,sex,nid,visits,dx\nAda,1815-12-10,F,1,3,\nB\"ob,1815-12-11,M,2,4,\n",
	"non-UTF-8":                          "given,dob,sex,nid,visits,dx\nAda,1815-12-10,F,1,3,\nB\xffob,1815-12-11,M,2,4,\nCy,1815-12-12,F,3,3,\n",
	"codes":                              "given,dob,sex,nid,visits,dx\nAda,1815-12-10,F,1,3, E11 ;; I10 ;\nBob,1815-12-11,M,2,,\nCy,1815-12-12,F,3,3,E11\x1fX\n",
	// A duplicate waiting in the key batch when a later row fails: the
	// duplicate, being first, is the error (when duplicates are refused).
	"duplicate then bad date":      "given,dob,sex,nid,visits,dx\nAda,1815-12-10,F,1,3,\nADA,1815-12-10,F,1,3,\nBob,1815-13-40,M,2,4,\n",
	"duplicate then field count":   "given,dob,sex,nid,visits,dx\nAda,1815-12-10,F,1,3,\nADA,1815-12-10,F,1,3,\nBob,1815-12-11\n",
	"duplicate then bare quote":    "given,dob,sex,nid,visits,dx\nAda,1815-12-10,F,1,3,\nADA,1815-12-10,F,1,3,\nB\"ob,1815-12-11,M,2,4,\n",
	"duplicate then non-UTF-8":     "given,dob,sex,nid,visits,dx\nAda,1815-12-10,F,1,3,\nADA,1815-12-10,F,1,3,\nB\xffob,1815-12-11,M,2,4,\n",
	"duplicate then bad value":     "given,dob,sex,nid,visits,dx\nAda,1815-12-10,F,1,3,\nADA,1815-12-10,F,1,3,\nDi,1815-12-13,F,4,200,\n",
	"duplicate then too many rows": "given,dob,sex,nid,visits,dx\nA,1815-12-10,F,1,1,\nB,1815-12-10,F,2,1,\nA,1815-12-10,F,1,1,\nD,1815-12-10,F,4,1,\nE,1815-12-10,F,5,1,\n",
	"missing column":               "given,dob,sex,visits,dx\nAda,1815-12-10,F,3,\n",
	"too many rows":                "given,dob,sex,nid,visits,dx\nA,1815-12-10,F,1,1,\nB,1815-12-10,F,2,1,\nC,1815-12-10,F,3,1,\nD,1815-12-10,F,4,1,\nE,1815-12-10,F,5,1,\n",
}

// Edge cases — empty files, duplicates merged or rejected, bad rows
// skipped or fatal, line numbers across multi-line fields — load exactly
// as before, with the same errors.
func TestReadCSVMatchesReferenceOnEdgeCases(t *testing.T) {
	for name, in := range equivCases {
		for _, maxSet := range []int{4, 1000} {
			spec := equivSpecT(t, maxSet)
			for _, opt := range allOptions(nil) {
				t.Run(fmt.Sprintf("%s/max=%d/dup=%d/skip=%v/maxerr=%d", name, maxSet, opt.Duplicates, opt.SkipBadRows, opt.MaxErrors), func(t *testing.T) {
					requireSameLoad(t, []byte(in), spec, "a", opt)
					requireSameLoad(t, []byte(in), spec, "b", opt)
				})
			}
		}
	}
}

// Enough rows, with long identifiers and duplicates far apart, that the
// arenas span many chunks.
func TestReadCSVMatchesReferenceAcrossChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	var b strings.Builder
	b.WriteString("record_id,given,dob,sex,nid,visits,dx\n")
	for k := 0; k < 60000; k++ {
		u := rng.IntN(50000)
		fmt.Fprintf(&b, "%s-%d,Person %d,1970-01-%02d,%s,%d,%d,%s\n", strings.Repeat("x", rng.IntN(40)), k, u, 1+u%28, []string{"M", "F"}[u%2], u, rng.IntN(101), []string{"E11", "", "I10;E11"}[rng.IntN(3)])
	}
	spec := equivSpecT(t, 1_000_000)
	for _, opt := range []LoadOptions{{}, {Duplicates: DuplicatesReject}} {
		requireSameLoad(t, []byte(b.String()), spec, "a", opt)
	}
	recs, err := ReadCSV(strings.NewReader(b.String()), spec, "a", LoadOptions{})
	require.NoError(t, err)
	require.Greater(t, len(recs.keys.first), 3, "the keys span several chunks")
}

func FuzzReadCSVMatchesReference(f *testing.F) {
	for _, in := range equivCases {
		f.Add(in, uint8(0))
	}
	f.Fuzz(func(t *testing.T, in string, o uint8) {
		opt := LoadOptions{Duplicates: Duplicates(o & 1), SkipBadRows: o&2 != 0, MaxErrors: int(o >> 2 & 3)}
		requireSameLoad(t, []byte(in), equivSpecT(t, 3+int(o>>4)), "a", opt)
	})
}
