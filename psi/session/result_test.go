package session_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/psi/session"
)

func designLayout(t *testing.T) *session.Layout {
	s, err := session.LoadSpec("testdata/cohort.json")
	require.NoError(t, err)
	l, err := session.NewLayout(s)
	require.NoError(t, err)
	return l
}

// The Result marshals to the shape in the issue, in spec order.
func TestReleaseJSONShape(t *testing.T) {
	l := designLayout(t)
	// shared | visits Σ,# | age Σ,# | bands ×4 | diabetes
	sum := []uint64{1234, 5678, 3600, 64552, 1234, 0, 120, 600, 514, 7}
	r, err := l.Release(1234, [][]int{{5000, 2100, 1900}, {2100, 4000, 1500}, {1900, 1500, 3000}}, sum)
	require.NoError(t, err)
	b, err := json.Marshal(r)
	require.NoError(t, err)
	want := `{"session":"cohort-2026-11","parties":["hospital-a","hospital-b","hospital-c"],"match_mode":"dh","intersection":1234,` +
		`"pairwise":[[5000,2100,1900],[2100,4000,1500],[1900,1500,3000]],` +
		`"aggregates":{"shared":{"kind":"count","value":1234},"visits":{"kind":"sum","value":5678},` +
		`"age":{"kind":"mean","value":52.31118314424636,"contributions":1234},` +
		`"age_bands":{"kind":"histogram","edges":[0,18,40,65,130],"counts":[0,120,600,514]},` +
		`"diabetes":{"kind":"count_if","suppressed":true}}}`
	require.Equal(t, want, string(b))

	var back session.Result
	require.NoError(t, json.Unmarshal(b, &back))
	b2, err := json.Marshal(&back)
	require.NoError(t, err)
	require.Equal(t, string(b), string(b2), "Result JSON round-trips")
}

func TestReleaseSuppression(t *testing.T) {
	l := designLayout(t)
	pw := [][]int{{50, 10, 20}, {10, 40, 11}, {20, 11, 30}}
	cases := []struct {
		name  string
		inter int
		sum   []uint64
		check func(t *testing.T, r *session.Result)
	}{
		{"intersection below min_cell suppresses everything derived", 10, []uint64{10, 100, 20, 500, 10, 0, 0, 10, 0, 12}, func(t *testing.T, r *session.Result) {
			require.Nil(t, r.Intersection)
			require.True(t, r.IntersectionSuppressed)
			require.Nil(t, r.Pairwise[0][1])
			require.Equal(t, int64(50), *r.Pairwise[0][0], "diagonal is public")
			for _, a := range r.Aggregates {
				if a.Kind == session.KindHistogram {
					for _, c := range a.Counts {
						require.Nil(t, c)
					}
					continue
				}
				require.True(t, a.Suppressed, a.Name)
				require.Nil(t, a.Value, a.Name)
			}
		}},
		{"exactly min_cell is released", 11, []uint64{11, 100, 22, 500, 11, 0, 5, 11, 0, 11}, func(t *testing.T, r *session.Result) {
			require.Equal(t, int64(11), *r.Intersection)
			require.Nil(t, r.Pairwise[0][1], "overlap 10 < 11")
			require.Equal(t, int64(11), *r.Pairwise[1][2])
			d, _ := r.Aggregates.Get("diabetes")
			require.Equal(t, "11", d.Value.String())
			v, _ := r.Aggregates.Get("visits")
			require.Equal(t, "100", v.Value.String())
			a, _ := r.Aggregates.Get("age")
			require.Equal(t, "45.45454545454545", a.Value.String())
			h, _ := r.Aggregates.Get("age_bands")
			require.Equal(t, int64(0), *h.Counts[0], "zero is not suppressed")
			require.Nil(t, h.Counts[1], "5 < 11")
			require.Nil(t, h.Counts[2], "complementary: 11 = contributions − 0 − 5 − 0 would give the 5 back")
			require.Equal(t, int64(0), *h.Counts[3])
		}},
		{"zero intersection is released, mean has no value", 0, make([]uint64, 10), func(t *testing.T, r *session.Result) {
			require.Equal(t, int64(0), *r.Intersection)
			a, _ := r.Aggregates.Get("age")
			require.Nil(t, a.Value)
			require.False(t, a.Suppressed)
			require.Equal(t, int64(0), *a.Contributions)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := l.Release(tc.inter, pw, tc.sum)
			require.NoError(t, err)
			tc.check(t, r)
		})
	}
}

func TestReleaseRefusesWrongShapes(t *testing.T) {
	l := designLayout(t)
	_, err := l.Release(1, [][]int{{1, 1, 1}, {1, 1, 1}, {1, 1, 1}}, make([]uint64, 3))
	require.Error(t, err)
	_, err = l.Release(1, [][]int{{1}}, make([]uint64, l.Len()))
	require.Error(t, err)
}

func TestContribute(t *testing.T) {
	l := designLayout(t)
	rec := map[string]string{"visits": "12", "age": "70", "condition_codes": "1" + session.CodeSeparator + "44054006"}
	get := func(f string) string { return rec[f] }
	// hospital-a: shared(1), visits(12,1), age(70,1), band 65-130, no diabetes (not from).
	v := make([]uint64, l.Len())
	require.NoError(t, l.Contribute(0, get, v))
	require.Equal(t, []uint64{1, 12, 1, 70, 1, 0, 0, 0, 1, 0}, v)
	// hospital-b: visits and diabetes only.
	v = make([]uint64, l.Len())
	require.NoError(t, l.Contribute(1, get, v))
	require.Equal(t, []uint64{0, 12, 1, 0, 0, 0, 0, 0, 0, 1}, v)
	// Edges: 130 goes in the last (closed) bin, 18 in the second.
	for _, tc := range []struct {
		age string
		bin int
	}{{"0", 0}, {"17", 0}, {"18", 1}, {"64", 2}, {"65", 3}, {"130", 3}} {
		rec["age"] = tc.age
		v = make([]uint64, l.Len())
		require.NoError(t, l.Contribute(0, get, v))
		require.Equal(t, uint64(1), v[5+tc.bin], tc.age)
	}
	// Out of range and malformed values are errors and leave v unchanged.
	for _, bad := range []string{"131", "-1", "12.5", "old"} {
		rec["age"] = bad
		v = make([]uint64, l.Len())
		err := l.Contribute(0, get, v)
		require.ErrorIs(t, err, session.ErrValue, bad)
		require.Equal(t, make([]uint64, l.Len()), v)
	}
	rec["visits"], rec["age"] = "10001", "1"
	require.ErrorIs(t, l.Contribute(1, get, make([]uint64, l.Len())), session.ErrValue)
	// An empty cell is no contribution.
	rec["visits"], rec["age"] = "", ""
	v = make([]uint64, l.Len())
	require.NoError(t, l.Contribute(0, get, v))
	require.Equal(t, []uint64{1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, v)
}

// A ValueChecker refuses exactly what Contribute refuses, with the same
// error, for every party and a grid of good, bad and empty values.
func TestValueCheckerAgreesWithContribute(t *testing.T) {
	l := designLayout(t)
	values := []string{"", "0", "12", "130", "131", "-1", "12.5", "old", "10000", "10001", "1" + session.CodeSeparator + "44054006"}
	for _, visits := range values {
		for _, age := range values {
			for _, codes := range []string{"", "44054006", "x"} {
				rec := map[string]string{"visits": visits, "age": age, "condition_codes": codes}
				get := func(f string) string { return rec[f] }
				for party := range 3 {
					want := l.Contribute(party, get, make([]uint64, l.Len()))
					// Fields in two orders.
					fields := []string{"visits", "age", "condition_codes"}
					byChecker := l.Checker(party, fields).Check([]string{visits, age, codes})
					reversed := l.Checker(party, []string{fields[2], fields[1], fields[0]}).Check([]string{codes, age, visits})
					if want == nil {
						require.NoError(t, byChecker, "%v party %d", rec, party)
						require.NoError(t, reversed, "%v party %d", rec, party)
						continue
					}
					require.EqualError(t, byChecker, want.Error(), "%v party %d", rec, party)
					require.ErrorIs(t, byChecker, session.ErrValue)
					require.EqualError(t, reversed, want.Error(), "%v party %d", rec, party)
				}
			}
		}
	}
}

// An aggregate whose every contributing party is missing (left out under
// leave_out) is released as unavailable with a reason, never as the zero
// its slots hold; the others are released as usual.
func TestReleaseWithoutMissingParties(t *testing.T) {
	l := designLayout(t)
	// shared | visits Σ,# | age Σ,# | bands ×4 | diabetes (from hospital-b only)
	sum := []uint64{1234, 5678, 3600, 64552, 1234, 0, 120, 600, 514, 0}
	pairwise := [][]int{{5000, 2100, 1900}, {2100, 4000, 1500}, {1900, 1500, 3000}}
	for _, tc := range []struct {
		name        string
		missing     []int
		unavailable []string
	}{
		{"none", nil, nil},
		{"hospital-b", []int{1}, []string{"diabetes"}},
		{"hospital-c", []int{2}, nil},
		{"hospital-a", []int{0}, []string{"shared", "age", "age_bands"}},
		{"all", []int{0, 1, 2}, []string{"shared", "visits", "age", "age_bands", "diabetes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := l.ReleaseWithout(1234, pairwise, sum, tc.missing)
			require.NoError(t, err)
			require.Len(t, r.Aggregates, 5)
			for _, a := range r.Aggregates {
				if !slicesContains(tc.unavailable, a.Name) {
					require.False(t, a.Unavailable, a.Name)
					continue
				}
				require.True(t, a.Unavailable, a.Name)
				require.Nil(t, a.Value, a.Name)
				require.Nil(t, a.Contributions, a.Name)
				require.Nil(t, a.Counts, a.Name)
				require.Contains(t, a.Reason, "left out", a.Name)
			}
			b, err := json.Marshal(r)
			require.NoError(t, err)
			if slicesContains(tc.unavailable, "diabetes") {
				require.Contains(t, string(b), `"diabetes":{"kind":"count_if","unavailable":true,"reason":"every contributing party was left out: hospital-b"}`)
			}
		})
	}
	_, err := l.ReleaseWithout(1234, pairwise, sum, []int{3})
	require.Error(t, err)
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// A party left out does not widen the bound that count_if's complement is
// checked against: with hospital-c gone, "95 of the 100 shared patients
// have diabetes" over hospital-b alone says 5 do not, a small cell.
func TestReleaseWithoutComplementBound(t *testing.T) {
	s, err := session.ParseSpec([]byte(`{"id":"x","parties":["hospital-a","hospital-b","hospital-c"],
		"fields":{"given_name":"name","condition_codes":"codes"},
		"match":{"fields":["given_name"],"mode":"dh"},"reveal":["cardinality","aggregates"],
		"aggregates":[{"name":"diabetes","kind":"count_if","field":"condition_codes","contains":"44054006","from":["hospital-b","hospital-c"]}],
		"min_cell":11}`))
	require.NoError(t, err)
	l, err := session.NewLayout(s)
	require.NoError(t, err)
	r, err := l.ReleaseWithout(100, nil, []uint64{95}, nil)
	require.NoError(t, err)
	d, _ := r.Aggregates.Get("diabetes")
	require.False(t, d.Suppressed, "with both parties the bound is 200: not small")
	r, err = l.ReleaseWithout(100, nil, []uint64{95}, []int{2})
	require.NoError(t, err)
	d, _ = r.Aggregates.Get("diabetes")
	require.True(t, d.Suppressed, "with hospital-c left out the complement is 5")
	require.Nil(t, d.Value)
}
