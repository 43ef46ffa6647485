package protocol

import (
	"context"
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/psi/session"
)

// With reveal: membership, a party's own Result lists its shared records
// only when |I| is not below min_cell; otherwise it says they are
// suppressed, as the intersection is.
func TestMembershipSuppressed(t *testing.T) {
	for _, tc := range []struct {
		shared     int
		suppressed bool
	}{{3, true}, {5, false}, {0, false}} {
		spec, err := session.ParseSpec([]byte(`{"id":"members","parties":["hospital-a","hospital-b"],
		"fields":{"name":"name","visits":"number"},"match":{"mode":"keyed","fields":["name"]},
		"reveal":["cardinality","membership"],"min_cell":5}`))
		require.NoError(t, err)
		out, err := RunLocal(context.Background(), spec, []LocalInput{
			{Name: "hospital-a", Records: people(0, 20)}, {Name: "hospital-b", Records: people(20-tc.shared, 40)}}, LocalConfig{Workers: 1})
		require.NoError(t, err)
		require.Equal(t, tc.suppressed, out.Result.IntersectionSuppressed)
		for name, r := range out.Parties {
			require.Equal(t, tc.suppressed, r.MembersSuppressed, name)
			if tc.suppressed {
				require.Empty(t, r.Members, name)
			} else {
				require.Len(t, r.Members, tc.shared, name)
			}
		}
	}
}

// The differencing attack of issue 12: two sessions whose inputs differ by
// one patient (visits = 5) released that patient's value by subtraction.
// With privacy, every party adds its discrete Gaussian noise before
// masking: over many pairs of runs the difference of the released sums is
// the patient's value plus noise of variance 2·n·σ² (what the Result
// states), and it equals the value in only a small fraction of them.
func TestDifferencingWithPrivacy(t *testing.T) {
	for _, agg := range []string{session.AggregationMasked, session.AggregationOblivious} {
		t.Run(agg, func(t *testing.T) { testDifferencingWithPrivacy(t, agg) })
	}
}

func testDifferencingWithPrivacy(t *testing.T, aggregation string) {
	spec, err := session.ParseSpec([]byte(`{"id":"dp","parties":["hospital-a","hospital-b","hospital-c"],
	"fields":{"name":"name","visits":"number"},"match":{"mode":"keyed","fields":["name"]},
	"reveal":["aggregates"],"aggregates":[{"name":"visits","kind":"sum","field":"visits","min":0,"max":10,"from":["hospital-a"]}],
	"privacy":{"epsilon":1,"delta":1e-6},"aggregation":"` + aggregation + `"}`))
	require.NoError(t, err)
	// memRecords: person k has visits k mod 7; person 12 has 5.
	with := []LocalInput{{"hospital-a", people(0, 20)}, {"hospital-b", people(0, 20)}, {"hospital-c", people(0, 20)}}
	without := []LocalInput{{"hospital-a", memRecords{ids: append(people(0, 12).ids, people(13, 20).ids...)}}, with[1], with[2]}
	visits := func(in []LocalInput) (int64, *session.PrivacyRelease) {
		out, err := RunLocal(context.Background(), spec, in, LocalConfig{Workers: 1})
		require.NoError(t, err)
		v, _ := out.Result.Aggregates.Get("visits")
		x, err := v.Value.Int64()
		require.NoError(t, err)
		return x, out.Result.Privacy
	}
	const runs = 120
	var sum, sq float64
	exact := 0
	var pr *session.PrivacyRelease
	for range runs {
		a, p := visits(with)
		b, _ := visits(without)
		pr = p
		d := float64(a - b)
		sum += d
		sq += (d - 5) * (d - 5)
		if a-b == 5 {
			exact++
		}
	}
	require.NotNil(t, pr)
	s2, err := strconv.ParseFloat(pr.Aggregates["visits"].Sigma2[0], 64)
	require.NoError(t, err)
	want := 2 * 3 * s2 // two sessions, three parties' noise each
	require.InDelta(t, 5, sum/runs, 5*math.Sqrt(want/runs), "the difference is unbiased")
	require.InDelta(t, want, sq/runs, 5*want*math.Sqrt(2.0/runs), "with the stated variance")
	require.Less(t, exact, runs/10, "the exact value comes out in few runs (σ ≈ %.0f)", math.Sqrt(want))
}

// With privacy in aggregation encrypted, every party encrypts one more
// row, its noise, which the coordinator's indicator always counts: the
// released sum is the true one plus the parties' noise (here, a handful of
// runs: the value differs from the truth in almost all of them and the
// Result states the mechanism), and no party's noise is left out.
func TestEncryptedWithPrivacy(t *testing.T) {
	spec, err := session.ParseSpec([]byte(`{"id":"dp-enc","parties":["hospital-a","hospital-b","hospital-c"],
	"fields":{"name":"name","visits":"number"},"match":{"mode":"keyed","fields":["name"]},
	"reveal":["cardinality","aggregates"],"aggregates":[{"name":"visits","kind":"sum","field":"visits","min":0,"max":10}],
	"privacy":{"epsilon":1,"delta":1e-6},"aggregation":"encrypted"}`))
	require.NoError(t, err)
	require.Equal(t, 1, spec.NoiseRows())
	in := []LocalInput{{"hospital-a", people(0, 20)}, {"hospital-b", people(5, 25)}, {"hospital-c", people(0, 30)}}
	var truth int64
	for id := 5; id < 20; id++ {
		truth += 3 * int64(id%7) // the sum over I of every party's visits
	}
	differ := 0
	const runs = 4
	for range runs {
		out, err := RunLocal(context.Background(), spec, in, LocalConfig{Workers: 1})
		require.NoError(t, err)
		require.EqualValues(t, 15, *out.Result.Intersection, "the counts are exact")
		require.NotNil(t, out.Result.Privacy, "the Result states the mechanism")
		v, _ := out.Result.Aggregates.Get("visits")
		x, err := v.Value.Int64()
		require.NoError(t, err)
		s2, err := strconv.ParseFloat(out.Result.Privacy.Aggregates["visits"].Sigma2[0], 64)
		require.NoError(t, err)
		require.Less(t, math.Abs(float64(x-truth)), 12*math.Sqrt(3*s2), "within the noise's clipping bound")
		if x != truth {
			differ++
		}
	}
	require.GreaterOrEqual(t, differ, runs-1, "noise is added")
}
