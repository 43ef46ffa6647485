package cohort

import (
	"bytes"
	"encoding/csv"
	"math"
	"slices"
	"strconv"
	"testing"

	"github.com/mpsi-dev/mpsi/psi/ident"
	"github.com/stretchr/testify/require"
)

func realistic(cfg Config) Config {
	e := DefaultErrors()
	cfg.Realistic = &e
	return cfg
}

// withinBinomial requires k successes of n trials to be within 4.5
// standard deviations of n·p (a false failure about once in 150,000
// checks; the seed is fixed, so the test is deterministic anyway).
func withinBinomial(t *testing.T, what string, k, n int, p float64) {
	t.Helper()
	require.Positive(t, n, "%s: no eligible record", what)
	mean, sd := float64(n)*p, math.Sqrt(float64(n)*p*(1-p))
	require.LessOrEqual(t, math.Abs(float64(k)-mean), 4.5*sd+1e-9, "%s: %d of %d, expected %.1f ± %.1f", what, k, n, mean, sd)
}

// Each kind of error appears at its configured rate among the records it
// can apply to, and changes exactly the fields it should.
func TestRealisticErrorRates(t *testing.T) {
	errs := DefaultErrors()
	// Larger rates for the rare kinds, so that the check has power.
	errs.DayMonthSwap, errs.DateOffByOne, errs.SSNTransposition = 0.05, 0.04, 0.06
	id, err := newIdentities(7, errs, 30000)
	require.NoError(t, err)
	kinds := []struct {
		kind noise
		name string
		rate float64
	}{
		{noiseGivenTypo, "given typo", errs.Typo}, {noiseSurnameTypo, "surname typo", errs.Typo},
		{noiseNickname, "nickname", errs.Nickname}, {noiseMaiden, "maiden name", errs.MaidenName},
		{noiseGivenAccent, "given accent", errs.Accent}, {noiseSurnameAccent, "surname accent", errs.Accent},
		{noiseDayMonthSwap, "day/month swap", errs.DayMonthSwap}, {noiseOffByOne, "date off by one", errs.DateOffByOne},
		{noiseMissingSSN, "missing SSN", errs.MissingSSN},
		// Transposition is drawn among records whose SSN is not missing.
		{noiseSSNTransposition, "SSN transposition", errs.SSNTransposition},
	}
	hits, elig := map[noise]int{}, map[noise]int{}
	const entities, parties = 30000, 3
	for e := range uint32(entities) {
		tr := id.truth(e)
		for i := range parties {
			r, applied, eligible := id.record(i, e, tr)
			require.Zero(t, applied&^eligible, "an error applied where it cannot be")
			for _, k := range kinds {
				if eligible&k.kind != 0 {
					elig[k.kind]++
					if applied&k.kind != 0 {
						hits[k.kind]++
					}
				}
			}
			// Fields change exactly when one of their errors applied.
			given := applied & (noiseNickname | noiseGivenAccent | noiseGivenTypo)
			require.Equal(t, given != 0, r.given != tr.given, "given %q → %q (%b)", tr.given, r.given, applied)
			surname := applied & (noiseMaiden | noiseSurnameAccent | noiseSurnameTypo)
			require.Equal(t, surname != 0, r.surname != tr.surname, "surname %q → %q (%b)", tr.surname, r.surname, applied)
			date := applied & (noiseDayMonthSwap | noiseOffByOne)
			// (A swap moves a date by a month at least, so a day off
			// after it never brings it back.)
			require.Equal(t, date != 0, !r.birth.Equal(tr.birth), "birth (%b)", applied)
			require.Equal(t, applied&(noiseMissingSSN|noiseSSNTransposition) != 0, r.ssn != tr.ssn)
			require.Equal(t, applied&noiseMissingSSN != 0, r.ssn == "")
			// Kinds that apply alone to their field have their exact effect.
			switch {
			case given == noiseNickname:
				require.Contains(t, nicknames[tr.given], r.given)
			case given == noiseGivenTypo:
				require.Equal(t, 1, editDistance(tr.given, r.given), "%q → %q", tr.given, r.given)
			case given == noiseGivenAccent:
				require.True(t, isASCII(r.given))
			}
			switch {
			case surname == noiseMaiden:
				require.Equal(t, tr.maiden, r.surname)
			case surname == noiseSurnameTypo:
				require.Equal(t, 1, editDistance(tr.surname, r.surname), "%q → %q", tr.surname, r.surname)
				require.Equal(t, []rune(tr.surname)[0], []rune(r.surname)[0], "a typo never touches the first letter")
			}
			switch date {
			case noiseDayMonthSwap:
				require.Equal(t, tr.birth.Day(), int(r.birth.Month()))
				require.Equal(t, int(tr.birth.Month()), r.birth.Day())
			case noiseOffByOne:
				d := r.birth.Sub(tr.birth).Hours() / 24
				require.True(t, d == 1 || d == -1, "off by %v days", d)
			}
			if applied&noiseSSNTransposition != 0 {
				a, b := []byte(tr.ssn), []byte(r.ssn)
				slices.Sort(a)
				slices.Sort(b)
				require.Equal(t, a, b, "a transposition keeps the digits")
				require.Equal(t, 2, hamming(tr.ssn, r.ssn))
			}
		}
	}
	for _, k := range kinds {
		withinBinomial(t, k.name, hits[k.kind], elig[k.kind], k.rate)
	}
	// The eligible populations are what they should be: every record for
	// typos, dates and SSNs; a share for the others.
	require.Equal(t, entities*parties, elig[noiseGivenTypo])
	require.Equal(t, entities*parties, elig[noiseMissingSSN])
	require.Equal(t, elig[noiseMissingSSN]-hits[noiseMissingSSN], elig[noiseSSNTransposition])
	require.Less(t, elig[noiseMaiden], entities*parties/2)
	require.Greater(t, elig[noiseMaiden], entities*parties/5)
	// Day ≤ 12 ≠ month: about 12·11/365 of dates.
	withinBinomial(t, "dates with day ≤ 12 ≠ month", elig[noiseDayMonthSwap], entities*parties, 132.0/365)
}

func editDistance(a, b string) int {
	x, y := []rune(a), []rune(b)
	prev := make([]int, len(y)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(x); i++ {
		cur := make([]int, len(y)+1)
		cur[0] = i
		for j := 1; j <= len(y); j++ {
			c := 1
			if x[i-1] == y[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
			// Adjacent transposition (optimal string alignment) counts as one.
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] && x[i-1] != x[i-2] {
				cur[j] = min(cur[j], prevPrev(x, y, i, j))
			}
		}
		prev = cur
	}
	return prev[len(y)]
}

// prevPrev is the transposition case for editDistance: a and b equal but
// for one transposition at the end.
func prevPrev(x, y []rune, i, j int) int {
	if string(x[:i-2]) == string(y[:j-2]) {
		return 1
	}
	return math.MaxInt
}

func hamming(a, b string) int {
	d := 0
	for i := range a {
		if a[i] != b[i] {
			d++
		}
	}
	return d
}

// Names follow their tables: the most common surname and given names come
// up at their published rates.
func TestRealisticNameFrequencies(t *testing.T) {
	id, err := newIdentities(3, DefaultErrors(), 200000)
	require.NoError(t, err)
	const n = 200000
	smith, james, female := 0, 0, 0
	for e := range uint32(n) {
		p := id.truth(e)
		if p.surname == "Smith" {
			smith++
		}
		if p.female {
			female++
		} else if p.given == "James" {
			james++
		}
	}
	withinBinomial(t, "Smith", smith, n, 828.0/surnameTotal)
	withinBinomial(t, "female", female, n, 0.5)
	withinBinomial(t, "James among men", james, n-female, 4764.0/givenTotal)
}

func TestRealisticDeterministic(t *testing.T) {
	cfg := realistic(Config{Seed: 11, Parties: 3, Records: 300, SharedAll: 0.4, SharedPair: 0.1, Noise: true, Duplicates: 3})
	a, err := Generate(cfg)
	require.NoError(t, err)
	b, err := Generate(cfg)
	require.NoError(t, err)
	require.Equal(t, a, b)
	// GenerateDir writes the same bytes as Generate and WriteDir.
	d1, d2 := t.TempDir(), t.TempDir()
	_, err = GenerateDir(cfg, d1)
	require.NoError(t, err)
	require.NoError(t, a.WriteDir(d2))
	require.Equal(t, readDir(t, d1), readDir(t, d2))
	require.Contains(t, readDir(t, d1), TruthGroupsFile)
	cfg.Seed = 12
	c, err := Generate(cfg)
	require.NoError(t, err)
	require.NotEqual(t, string(a.Parties[0].CSV), string(c.Parties[0].CSV))
	// An unrealistic cohort written over it leaves no stale truth groups.
	_, err = GenerateDir(Config{Seed: 1, Parties: 3, Records: 10}, d1)
	require.NoError(t, err)
	require.NotContains(t, readDir(t, d1), TruthGroupsFile)
}

func TestRealisticRejectsBadRates(t *testing.T) {
	for _, e := range []Errors{{Typo: 1.5}, {MissingSSN: -0.1}, {Accent: math.NaN()}} {
		_, err := Generate(Config{Seed: 1, Parties: 2, Records: 10, Realistic: &e})
		require.Error(t, err)
	}
}

// truth_groups.csv is consistent with the files: every row of every party
// is listed once, with the patient whose record (as the generator draws
// it) the row holds, and the intersection and pairwise counts of
// truth.json are those of the groups.
func TestTruthGroupsMatchFiles(t *testing.T) {
	cfg := realistic(Config{Seed: 5, Parties: 4, Records: 400, SharedAll: 0.3, SharedPair: 0.2, Noise: true, Duplicates: 2})
	c, err := Generate(cfg)
	require.NoError(t, err)
	g, err := newGenerator(cfg)
	require.NoError(t, err)
	groups, err := csv.NewReader(bytes.NewReader(c.Groups)).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"party", "record_id", "entity"}, groups[0])
	entityOf := map[string]map[string]uint32{}
	for _, row := range groups[1:] {
		if entityOf[row[0]] == nil {
			entityOf[row[0]] = map[string]uint32{}
		}
		_, dup := entityOf[row[0]][row[1]]
		require.False(t, dup, "record %s listed twice", row[1])
		e, err := strconv.ParseUint(row[2], 10, 32)
		require.NoError(t, err)
		entityOf[row[0]][row[1]] = uint32(e)
	}
	at := map[uint32]map[int]bool{}
	for i, p := range c.Parties {
		rows, err := csv.NewReader(bytes.NewReader(p.CSV)).ReadAll()
		require.NoError(t, err)
		require.Len(t, entityOf[p.Name], len(rows)-1)
		st := g.style(i)
		var layout ident.Layout // the zero Layout is YYYY-MM-DD
		if st.dateLayout != "" {
			layout, err = ident.ParseLayout(st.dateLayout)
			require.NoError(t, err)
		}
		for _, row := range rows[1:] {
			e, ok := entityOf[p.Name][row[0]]
			require.True(t, ok, row[0])
			r, _, _ := g.id.record(i, e, g.id.truth(e))
			norm := func(typ ident.Type, l ident.Layout, s string) string {
				if s == "" {
					return ""
				}
				v, err := ident.Normalize(typ, l, s)
				require.NoError(t, err)
				return v
			}
			require.Equal(t, norm(ident.TypeName, ident.Layout{}, r.given), norm(ident.TypeName, ident.Layout{}, row[1]))
			require.Equal(t, norm(ident.TypeName, ident.Layout{}, r.surname), norm(ident.TypeName, ident.Layout{}, row[2]))
			require.Equal(t, r.birth.Format("2006-01-02"), norm(ident.TypeDate, layout, row[3]))
			require.Equal(t, r.ssn, norm(ident.TypeID, ident.Layout{}, row[8]))
			if at[e] == nil {
				at[e] = map[int]bool{}
			}
			at[e][i] = true
		}
	}
	pairwise := make([][]int, cfg.Parties)
	for i := range pairwise {
		pairwise[i] = make([]int, cfg.Parties)
	}
	all := 0
	for _, ps := range at {
		if len(ps) == cfg.Parties {
			all++
		}
		for i := range ps {
			for j := range ps {
				pairwise[i][j]++
			}
		}
	}
	require.Equal(t, c.Truth.Intersection, all)
	require.Equal(t, c.Truth.Pairwise, pairwise)
	// The spec declares the SSN and the mapping maps it.
	require.Contains(t, string(c.Spec), `"ssn": "id"`)
	require.Contains(t, string(c.Parties[1].Mapping), `"SSN"`)
}

// Twins come at their rate: pairs (j, j + half) sharing their birth surname
// and birth date with different given names and SSNs.
func TestRealisticTwins(t *testing.T) {
	const pairs = 100000
	id, err := newIdentities(9, DefaultErrors(), 2*pairs+1)
	require.NoError(t, err)
	twins, sameSex := 0, 0
	birthName := func(p person) string {
		if p.maiden != "" {
			return p.maiden
		}
		return p.surname
	}
	for j := range uint32(pairs) {
		a, b := id.truth(j), id.truth(j+pairs)
		require.NotEqual(t, a.ssn, b.ssn)
		if birthName(a) == birthName(b) && a.birth.Equal(b.birth) {
			twins++
			require.NotEqual(t, a.given, b.given)
			if a.female == b.female {
				sameSex++
			}
		}
	}
	// Chance coincidences of surname and birth date between unrelated
	// pairs are far rarer than the tolerance.
	withinBinomial(t, "twin pairs", twins, pairs, twinShare)
	withinBinomial(t, "same-sex twin pairs", sameSex, twins, sameSexTwins)
}
