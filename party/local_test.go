package party_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/psi/session"
)

func loadCohort(t *testing.T, c *cohort.Cohort) (*session.Spec, []party.Input) {
	t.Helper()
	spec, err := session.ParseSpec(c.Spec)
	require.NoError(t, err)
	var ins []party.Input
	for _, p := range c.Parties {
		m, err := party.ParseMapping(p.Mapping)
		require.NoError(t, err)
		recs, err := party.ReadCSV(bytes.NewReader(p.CSV), spec, p.Name, party.LoadOptions{Mapping: m})
		require.NoError(t, err, p.Name)
		ins = append(ins, party.Input{Name: p.Name, Records: recs})
	}
	return spec, ins
}

func num(t *testing.T, n *json.Number) float64 {
	t.Helper()
	require.NotNil(t, n)
	f, err := n.Float64()
	require.NoError(t, err)
	return f
}

// Results equal the generator's ground truth (from entity ids, independent
// of matching) for n = 2..6 in both modes, through identifier noise that
// normalisation must undo.
func TestRunLocalMatchesGroundTruth(t *testing.T) {
	for n := 2; n <= 6; n++ {
		for _, mode := range []string{session.ModeDH, session.ModeKeyed} {
			t.Run(fmt.Sprintf("n=%d/mode=%s", n, mode), func(t *testing.T) {
				c, err := cohort.Generate(cohort.Config{Seed: uint64(n), Parties: n, Records: 120, SharedAll: 0.4, SharedPair: 0.2, Noise: true, Mode: mode, Duplicates: 3})
				require.NoError(t, err)
				spec, ins := loadCohort(t, c)
				for _, in := range ins {
					require.Equal(t, 3, in.Records.Report.Duplicates, "duplicates are merged and counted")
				}
				out, err := party.RunLocal(context.Background(), spec, ins, party.Config{})
				require.NoError(t, err)
				r := out.Result
				require.Equal(t, int64(c.Truth.Intersection), *r.Intersection)
				for i := range c.Truth.Pairwise {
					for j := range c.Truth.Pairwise[i] {
						require.Equal(t, int64(c.Truth.Pairwise[i][j]), *r.Pairwise[i][j], "pairwise[%d][%d]", i, j)
					}
				}
				shared, _ := r.Aggregates.Get("shared")
				require.Equal(t, float64(c.Truth.Intersection), num(t, shared.Value))
				visits, _ := r.Aggregates.Get("visits")
				require.Equal(t, float64(c.Truth.VisitsSum), num(t, visits.Value))
				age, _ := r.Aggregates.Get("age")
				require.InDelta(t, float64(c.Truth.AgeSum)/float64(c.Truth.Intersection), num(t, age.Value), 1e-9)
				bands, _ := r.Aggregates.Get("age_bands")
				for b, want := range c.Truth.AgeBands {
					require.Equal(t, want, *bands.Counts[b], "band %d", b)
				}
				diab, _ := r.Aggregates.Get("diabetes")
				require.Equal(t, float64(c.Truth.Diabetes), num(t, diab.Value))
				for _, pr := range out.Parties {
					require.Nil(t, pr.Members, "no membership without reveal: membership")
				}
			})
		}
	}
}

// oracle computes a spec's release in plaintext from the parties' records,
// by brute force over normalised keys, without tokens, masks or Layout.
type oracleOut struct {
	inter    int
	pairwise [][]int
	counts   map[string]int64 // count, count_if, and contributions
	sums     map[string]int64
	hist     map[string][]int64
}

func oracle(spec *session.Spec, ins []party.Input) oracleOut {
	n := len(spec.Parties)
	idx := make([]map[string]int, n)
	for i, in := range ins {
		idx[i] = map[string]int{}
		for k := range in.Records.Len() {
			idx[i][string(in.Records.Key(k))] = k
		}
	}
	o := oracleOut{pairwise: make([][]int, n), counts: map[string]int64{}, sums: map[string]int64{}, hist: map[string][]int64{}}
	for i := range o.pairwise {
		o.pairwise[i] = make([]int, n)
		for j := range o.pairwise[i] {
			for k := range idx[i] {
				if _, ok := idx[j][k]; ok {
					o.pairwise[i][j]++
				}
			}
		}
	}
	for key := range idx[0] {
		all := true
		for i := 1; i < n; i++ {
			_, ok := idx[i][key]
			all = all && ok
		}
		if !all {
			continue
		}
		o.inter++
		for _, a := range spec.Aggregates {
			if a.Kind == session.KindCount && a.Field == "" {
				o.counts[a.Name]++
				continue
			}
			for _, p := range a.From {
				i := spec.PartyIndex(p)
				v := ins[i].Records.Value(idx[i][key], a.Field)
				if v == "" {
					continue
				}
				o.counts[a.Name+"#"]++
				switch a.Kind {
				case session.KindCount:
					o.counts[a.Name]++
				case session.KindCountIf:
					if a.Contains != nil && strings.Contains(session.CodeSeparator+v+session.CodeSeparator, session.CodeSeparator+*a.Contains+session.CodeSeparator) || a.Equals != nil && v == *a.Equals {
						o.counts[a.Name]++
					}
				case session.KindSum, session.KindMean:
					x, _ := session.ParseFixed(v, a.Scale)
					o.sums[a.Name] += x
				case session.KindHistogram:
					x, _ := session.ParseFixed(v, a.Scale)
					if o.hist[a.Name] == nil {
						o.hist[a.Name] = make([]int64, len(a.Edges)-1)
					}
					for b := 0; b < len(a.Edges)-1; b++ {
						if float64(x) < a.Edges[b+1] || b == len(a.Edges)-2 {
							o.hist[a.Name][b]++
							break
						}
					}
				}
			}
		}
	}
	return o
}

const oracleSpec = `{"id":"oracle","parties":%s,"fields":{"name":"name","dob":"date","sex":"sex","v":"number","dx":"codes"},
"match":{"fields":["name","dob","sex"],"mode":%q},"reveal":["cardinality","pairwise","aggregates","membership"],
"aggregates":[{"name":"n","kind":"count"},{"name":"s","kind":"sum","field":"v","min":-50,"max":50},
{"name":"m","kind":"mean","field":"v","min":-50,"max":50},{"name":"h","kind":"histogram","field":"v","edges":[-50,0,10,50]},
{"name":"c","kind":"count_if","field":"dx","contains":"E11"},{"name":"k","kind":"count","field":"v"}],"min_cell":%d}`

// randomInput makes a party's CSV from a universe of people: each person is
// included with probability p; values at the bounds and empty cells occur.
func randomInput(rng *rand.Rand, universe int, p float64, dup bool) []byte {
	var b strings.Builder
	b.WriteString("record_id,name,dob,sex,v,dx\n")
	row := 0
	for u := 0; u < universe; u++ {
		if rng.Float64() >= p {
			continue
		}
		v := []string{"-50", "50", "0", "", "7", "-3", "49"}[rng.IntN(7)]
		dx := []string{"E11;I10", "I10", "", "E11"}[rng.IntN(4)]
		line := fmt.Sprintf("r%d,Person %d,1970-01-%02d,%s,%s,%s\n", row, u, 1+u%28, []string{"M", "F"}[u%2], v, dx)
		b.WriteString(line)
		row++
		if dup && rng.IntN(5) == 0 {
			fmt.Fprintf(&b, "r%d,PERSON  %d,1970-01-%02d,%s,%s,%s\n", row, u, 1+u%28, []string{"m", "f"}[u%2], v, dx)
			row++
		}
	}
	return []byte(b.String())
}

// Results equal a plaintext brute force on random sets for n = 2..6 in both
// modes, including empty, disjoint, identical and one-element sets,
// duplicates and min_cell boundaries.
func TestRunLocalMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7)) // test inputs only
	shapes := []struct {
		name     string
		universe int
		p        []float64 // per-party inclusion probability; cycled
		minCell  int
	}{
		{"random", 60, []float64{0.7}, 0},
		{"empty party", 30, []float64{0.8, 0}, 0},
		{"identical", 25, []float64{1}, 0},
		{"one element", 1, []float64{1}, 0},
		{"sparse, min_cell", 80, []float64{0.6}, 5},
	}
	for n := 2; n <= 6; n++ {
		for _, mode := range []string{session.ModeDH, session.ModeKeyed} {
			for _, sh := range shapes {
				t.Run(fmt.Sprintf("n=%d/%s/%s", n, mode, sh.name), func(t *testing.T) {
					names := make([]string, n)
					for i := range names {
						names[i] = fmt.Sprintf("p%d", i)
					}
					pj, _ := json.Marshal(names)
					spec, err := session.ParseSpec([]byte(fmt.Sprintf(oracleSpec, pj, mode, sh.minCell)))
					require.NoError(t, err)
					var ins []party.Input
					for i, name := range names {
						csv := randomInput(rng, sh.universe, sh.p[i%len(sh.p)], true)
						recs, err := party.ReadCSV(bytes.NewReader(csv), spec, name, party.LoadOptions{})
						if sh.p[i%len(sh.p)] == 0 {
							require.ErrorIs(t, err, party.ErrRecords, "a file without rows is refused")
							recs, err = party.ReadCSV(strings.NewReader("record_id,name,dob,sex,v,dx\n,,,,,\n"), spec, name, party.LoadOptions{})
							require.NoError(t, err)
							require.Equal(t, 1, recs.Report.EmptyIdentifier)
						}
						require.NoError(t, err)
						ins = append(ins, party.Input{Name: name, Records: recs})
					}
					out, err := party.RunLocal(context.Background(), spec, ins, party.Config{Workers: 2})
					require.NoError(t, err)
					o := oracle(spec, ins)
					checkAgainstOracle(t, spec, out, o, ins)
				})
			}
		}
	}
}

func checkAgainstOracle(t *testing.T, spec *session.Spec, out *party.Outcome, o oracleOut, ins []party.Input) {
	t.Helper()
	r := out.Result
	small := func(c int64) bool { return c > 0 && c < int64(spec.MinCell) }
	supAll := small(int64(o.inter))
	if supAll {
		require.Nil(t, r.Intersection)
		require.True(t, r.IntersectionSuppressed)
	} else {
		require.Equal(t, int64(o.inter), *r.Intersection)
	}
	for i := range o.pairwise {
		for j := range o.pairwise[i] {
			if i != j && (supAll || small(int64(o.pairwise[i][j])) || small(int64(o.pairwise[i][j]-o.inter))) {
				require.Nil(t, r.Pairwise[i][j])
				continue
			}
			require.Equal(t, int64(o.pairwise[i][j]), *r.Pairwise[i][j])
		}
	}
	for _, a := range spec.Aggregates {
		got, ok := r.Aggregates.Get(a.Name)
		require.True(t, ok, a.Name)
		contrib := o.counts[a.Name+"#"]
		switch a.Kind {
		case session.KindCount, session.KindCountIf:
			c := o.counts[a.Name]
			// count_if: its complement against |I| times its parties is a
			// cell too (the spec has no count over the same field).
			complement := a.Kind == session.KindCountIf && small(int64(len(a.From)*o.inter)-c)
			if supAll || small(c) || complement {
				require.True(t, got.Suppressed, a.Name)
				require.Nil(t, got.Value)
			} else {
				require.Equal(t, float64(c), num(t, got.Value), a.Name)
			}
		case session.KindSum:
			if supAll || small(contrib) {
				require.True(t, got.Suppressed, a.Name)
			} else {
				require.Equal(t, float64(o.sums[a.Name]), num(t, got.Value), a.Name)
			}
		case session.KindMean:
			if supAll || small(contrib) {
				require.True(t, got.Suppressed, a.Name)
			} else if contrib == 0 {
				require.Nil(t, got.Value)
			} else {
				require.InDelta(t, float64(o.sums[a.Name])/float64(contrib), num(t, got.Value), 1e-9, a.Name)
				require.Equal(t, contrib, *got.Contributions)
			}
		case session.KindHistogram:
			// Released bins are exact; small bins are suppressed, with
			// complementary ones so that the suppressed bins are at least
			// two and not small together; a small total suppresses all.
			var total, supSum int64
			supN := 0
			for b := range got.Counts {
				var want int64
				if o.hist[a.Name] != nil {
					want = o.hist[a.Name][b]
				}
				total += want
				if got.Counts[b] == nil {
					supN, supSum = supN+1, supSum+want
					continue
				}
				require.False(t, supAll || small(want), "%s bin %d", a.Name, b)
				require.Equal(t, want, *got.Counts[b])
			}
			if supAll || small(total) {
				require.True(t, got.Suppressed, a.Name)
				require.Equal(t, len(got.Counts), supN)
			} else if supN > 0 {
				require.GreaterOrEqual(t, supN, 2, a.Name)
				require.False(t, small(supSum), a.Name)
			}
		}
	}
	// Membership: each party's members are exactly its rows whose key is in
	// every other party's set.
	for i, in := range ins {
		var want []string
		for k := range in.Records.Len() {
			key := in.Records.Key(k)
			all := true
			for j, other := range ins {
				if j == i {
					continue
				}
				found := false
				for o := range other.Records.Len() {
					if bytes.Equal(other.Records.Key(o), key) {
						found = true
						break
					}
				}
				all = all && found
			}
			if all {
				want = append(want, in.Records.ID(k))
			}
		}
		own := out.Parties[spec.Parties[i]]
		if small(int64(o.inter)) {
			require.True(t, own.MembersSuppressed, "members of %s: |I| below min_cell", spec.Parties[i])
			require.Empty(t, own.Members)
			continue
		}
		require.ElementsMatch(t, want, own.Members, "members of %s", spec.Parties[i])
		require.Nil(t, r.Members, "the coordinator's Result never holds members")
	}
}
