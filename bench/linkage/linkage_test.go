package linkage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/psi/link"
	"github.com/stretchr/testify/require"
)

// fake is a Source of hand-written keys: keys[k][i], "" for none.
type fake [][]string

func (f fake) Len() int  { return len(f[0]) }
func (f fake) Keys() int { return len(f) }
func (f fake) KeyAt(k, i int) []byte {
	if f[k][i] == "" {
		return nil
	}
	return []byte(f[k][i])
}

// A hand-made example with every case: three parties, two keys.
//
//	patient A: at all three, linked by key 0          → found
//	patient B: at all three, a's record agrees only on key 1, with b's → found (pass 2)
//	patient C: at all three, c's record has no key    → missed
//	patient D: at a and b only; c's record of E agrees with them on key 1
//	           → a complete group that is not one patient
//	patient E: at c only (its record is in D's group)
//	patient F: at all three, but a and b hold it under one key and c under another, never agreeing → missed
func TestEvaluateHandMade(t *testing.T) {
	a := fake{{"kA", "", "kC", "", "f0"}, {"", "jB", "", "jD", ""}}
	b := fake{{"kA", "kB", "kC", "", "f0"}, {"", "jB", "", "jD", ""}}
	c := fake{{"kA", "kB", "", "", "f1"}, {"", "", "", "jD", ""}}
	entity := [][]string{
		{"A", "B", "C", "D", "F"},
		{"A", "B", "C", "D", "F"},
		{"A", "B", "C", "E", "F"},
	}
	q, err := Evaluate([]Source{a, b, c}, entity)
	require.NoError(t, err)
	// All-party patients: A, B, C, F (D is not at c, E only at c).
	require.Equal(t, 4, q.Entities)
	// Complete groups: {A,A,A}, {B,B,B} (b–c by key 0, a–b by key 1), {D,D,E}.
	require.Equal(t, 3, q.Complete)
	require.Equal(t, 2, q.Pure)
	require.Equal(t, 2, q.Found)
	require.Equal(t, []int{1, 2}, q.Completed)
	require.InDelta(t, 0.5, q.Recall(), 1e-12)
	require.InDelta(t, 2.0/3, q.Precision(), 1e-12)
}

func TestScoreByHand(t *testing.T) {
	entity := [][]string{{"x", "y", ""}, {"y", "x", "z"}}
	res := &link.Result{Complete: 3, Completed: []int{3}, Groups: [][]link.Member{
		{{Party: 0, Pos: 0}, {Party: 1, Pos: 1}}, // x, x: pure
		{{Party: 0, Pos: 1}, {Party: 1, Pos: 0}}, // y, y: pure
		{{Party: 0, Pos: 2}, {Party: 1, Pos: 2}}, // unknown, z: not pure
	}}
	q, err := Score(res, entity)
	require.NoError(t, err)
	require.Equal(t, Quality{Entities: 2, Found: 2, Complete: 3, Pure: 2, Completed: []int{3}}, q)
	// A result without groups, or with groups outside the truth, is refused.
	_, err = Score(&link.Result{Complete: 1}, entity)
	require.ErrorIs(t, err, ErrShape)
	res.Groups[2][1].Pos = 9
	_, err = Score(res, entity)
	require.ErrorIs(t, err, ErrShape)
	// No all-party patient, no complete group: recall and precision 1.
	require.Equal(t, 1.0, Quality{}.Recall())
	require.Equal(t, 1.0, Quality{}.Precision())
}

func TestReadCSV(t *testing.T) {
	keys, err := ParseKeys([][]string{{"ssn"}, {"family_name|soundex", "birth_date"}})
	require.NoError(t, err)
	cols := map[string]Column{
		"ssn":         {Name: "SSN", Type: "id"},
		"family_name": {Name: "LAST", Type: "name"},
		"birth_date":  {Name: "DOB", Type: "date", Layout: mustLayout("MM/DD/YYYY")},
	}
	in := "MRN,LAST,DOB,SSN\n" +
		"r1,Smith,01/02/1990,999-12-3456\n" +
		"r2,Smyth,01/02/1990,999-12-3457\n" + // same soundex and date as r1: key 1 withdrawn from both
		"r3,Jones,13/45/1990,\n" + // invalid date, no SSN: no key at all
		"r4,Brown,03/04/1970,999123458\n"
	tb, err := ReadCSV(strings.NewReader(in), "x.csv", "MRN", cols, keys)
	require.NoError(t, err)
	require.Equal(t, 4, tb.Len())
	require.Equal(t, "r3", tb.ID(2))
	require.NotNil(t, tb.KeyAt(0, 0))
	require.Nil(t, tb.KeyAt(0, 2))
	require.Nil(t, tb.KeyAt(1, 0))
	require.Nil(t, tb.KeyAt(1, 1))
	require.Nil(t, tb.KeyAt(1, 2))
	require.NotNil(t, tb.KeyAt(1, 3))
	require.Equal(t, map[string]int{"birth_date": 1}, tb.Invalid)
	require.Equal(t, []int{0, 2}, tb.Withdrawn)
	// Keys of different fields or transforms never agree: r4's SSN key is
	// not its other key.
	require.NotEqual(t, tb.KeyAt(0, 3), tb.KeyAt(1, 3))

	// Errors name the file and line or column, never a value.
	for _, c := range []struct{ in, want string }{
		{"MRN,LAST,DOB\nr1,Smith,01/02/1990\n", `no column "SSN"`},
		{"LAST,DOB,SSN\n", `no column "MRN"`},
		{"MRN,LAST,DOB,SSN\nr1,\"Sm\"ith,01/02/1990,1\n", "line 2"},
		{"MRN,LAST,DOB,SSN\nr1,Secretname,01/02/1990\n", "line 2 has 3 fields"},
	} {
		_, err := ReadCSV(strings.NewReader(c.in), "x.csv", "MRN", cols, keys)
		require.ErrorContains(t, err, c.want)
		require.ErrorContains(t, err, "x.csv")
		require.NotContains(t, err.Error(), "Secretname")
	}
}

func TestParseKeysErrors(t *testing.T) {
	_, err := ParseKeys(nil)
	require.ErrorContains(t, err, "no key")
	_, err = ParseKeys([][]string{{"ssn"}, {}})
	require.ErrorContains(t, err, "match.keys[1]: no field")
	_, err = ParseKeys([][]string{{"ssn"}, {"a"}, {"family_name|sounde"}})
	require.ErrorContains(t, err, `match.keys[2][0]`)
	require.ErrorContains(t, err, `"sounde"`)
}

// On a generated cohort, the SSN key finds exactly the all-party patients
// whose SSN every party recorded intact (an oracle from the generator's
// own records: SSNs are unique, and a transposed one matches no other at
// this size), with no false group; the ordered keys find more.
func TestLoadCohortSSNOracle(t *testing.T) {
	errs := cohort.DefaultErrors()
	cfg := cohort.Config{Seed: 4, Parties: 3, Records: 2000, SharedAll: 0.4, SharedPair: 0.1, Noise: true, Realistic: &errs}
	dir := t.TempDir()
	truth, err := cohort.GenerateDir(cfg, dir)
	require.NoError(t, err)
	keys, err := ParseKeys([][]string{{"ssn"}})
	require.NoError(t, err)
	d, err := LoadCohort(dir, keys)
	require.NoError(t, err)
	q, err := d.Evaluate()
	require.NoError(t, err)
	require.Equal(t, truth.Intersection, q.Entities)
	// The oracle: per all-party patient, is the SSN the same at every party?
	ssnAt := map[string][]string{}
	for p, tb := range d.Parties {
		for i := range tb.Len() {
			k := tb.KeyAt(0, i)
			e := d.Entity[p][i]
			ssnAt[e] = append(ssnAt[e], string(k))
		}
	}
	intact := 0
	for _, ks := range ssnAt {
		if len(ks) == cfg.Parties && ks[0] != "" && ks[1] == ks[0] && ks[2] == ks[0] {
			intact++
		}
	}
	require.Equal(t, intact, q.Found)
	require.Equal(t, q.Found, q.Complete)
	require.Less(t, q.Recall(), 0.8, "about 0.89³ of patients keep their SSN everywhere")

	keys, err = ParseKeys(Recommended)
	require.NoError(t, err)
	d, err = LoadCohort(dir, keys)
	require.NoError(t, err)
	q2, err := d.Evaluate()
	require.NoError(t, err)
	require.Greater(t, q2.Found, q.Found)
	require.Equal(t, q.Found, q2.Completed[0], "the first pass is the SSN key alone")
}

// LoadAnonlink reads the five files' layout (DD-MM-YYYY dates, typos in
// sex, empty values) and takes the id column as the truth.
func TestLoadAnonlinkLayout(t *testing.T) {
	dir := t.TempDir()
	rows := []string{
		"0,tara,hilton,27-08-1941,male,canberra,84052.973,08 2210 0298",
		"7,oliver,paciorek,10-02-1959,mals,sydney,31750.893,04 4210 5949",
	}
	for p := 1; p <= 5; p++ {
		body := "id,givenname,surname,dob,gender,city,income,phone number\n" + strings.Join(rows, "\n") + "\n"
		if p == 3 {
			body = strings.Replace(body, "10-02-1959", "", 1) // no date at party 3
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, "dataset-"+string(rune('0'+p))+".csv"), []byte(body), 0o644))
	}
	keys, err := ParseKeys([][]string{{"given_name", "family_name", "birth_date"}, {"given_name", "family_name", "sex"}})
	require.NoError(t, err)
	d, err := LoadAnonlink(dir, keys)
	require.NoError(t, err)
	require.Equal(t, 1, d.Parties[0].(*Table).Invalid["sex"], `"mals" is no sex code`)
	q, err := d.Evaluate()
	require.NoError(t, err)
	// Tara links on key 0; Oliver has no date at party 3 and no valid sex.
	require.Equal(t, Quality{Entities: 2, Found: 1, Complete: 1, Pure: 1, Completed: []int{1, 0}}, q)
	_, err = LoadAnonlink(t.TempDir(), keys)
	require.ErrorContains(t, err, "dataset-1.csv")
}

// The keys built here are the parties' own: on a generated cohort,
// party.Records.KeyAt and Table.KeyAt agree record by record (as equality
// classes: the bytes differ only in framing), and give the same quality.
func TestTableKeysAreThePartiesKeys(t *testing.T) {
	errs := cohort.DefaultErrors()
	cfg := cohort.Config{Seed: 8, Parties: 3, Records: 1500, SharedAll: 0.3, SharedPair: 0.1, Noise: true, Realistic: &errs}
	dir := t.TempDir()
	_, err := cohort.GenerateDir(cfg, dir)
	require.NoError(t, err)
	for _, set := range CohortKeySets {
		keys, err := ParseKeys(set.Keys)
		require.NoError(t, err)
		mine, err := LoadCohort(dir, keys)
		require.NoError(t, err)
		theirs, err := LoadCohortRecords(dir, set.Keys)
		require.NoError(t, err, set.Name)
		// Equality classes of keys, per key, over all parties, by record id.
		for k := range keys {
			classOf := func(d *Dataset) map[string]string {
				id := map[string]string{} // key bytes → first record id
				out := map[string]string{}
				for p, r := range d.Parties {
					for i := range r.Len() {
						key := r.KeyAt(k, i)
						rec := d.Names[p] + "/" + r.ID(i)
						if key == nil {
							out[rec] = ""
							continue
						}
						if _, ok := id[string(key)]; !ok {
							id[string(key)] = rec
						}
						out[rec] = id[string(key)]
					}
				}
				return out
			}
			cm, ct := classOf(mine), classOf(theirs)
			for rec, c := range cm {
				if _, ok := ct[rec]; !ok {
					// party.Records drops a record without a value for
					// a one-key spec: here it has no key.
					require.Empty(t, c, "%s key %d: %s", set.Name, k, rec)
					require.Len(t, keys, 1)
					delete(cm, rec)
				}
			}
			require.Equal(t, ct, cm, "%s key %d", set.Name, k)
		}
		q1, err := mine.Evaluate()
		require.NoError(t, err)
		q2, err := theirs.Evaluate()
		require.NoError(t, err)
		require.Equal(t, q2, q1, set.Name)
	}
}
