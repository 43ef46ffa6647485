// Package peers_test measures mpsi's own two-party throughput for the peer
// comparison in bench/peers/README.md: the same set sizes and overlap as the
// OpenMined PSI run in bench/peers/psijs, on one core.
//
// It holds benchmarks only (no Test functions), so `go test ./...` runs
// nothing here. Run it with
//
//	GOMAXPROCS=1 taskset -c 0 go test -run XXX -bench TwoParty -benchtime 1x ./bench/peers/
//
// and add `-args -maxn 262144` (or 1048576) for the larger sizes.
package peers_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/psi/session"
)

var maxN = flag.Int("maxn", 1<<16, "largest set size per party for BenchmarkTwoParty (sizes 2^12, 2^16, 2^18, 2^20 up to this)")

// twoPartySets returns two sets of n identifiers with n/2 in common, in
// independent orders. The randomness is math/rand/v2 with a fixed seed:
// benchmark inputs, never secrets.
func twoPartySets(n int) (a, b []string) {
	rng := rand.New(rand.NewPCG(4, uint64(n)))
	seen := make(map[uint64]bool, n+n/2)
	all := make([]string, 0, n+n/2)
	for len(all) < n+n/2 {
		v := rng.Uint64()
		if seen[v] {
			continue
		}
		seen[v] = true
		all = append(all, strconv.FormatUint(v, 10))
	}
	a = all[:n]
	b = append([]string(nil), all[n/2:]...)
	rng.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
	return a, b
}

func csvOf(ids []string) string {
	var sb strings.Builder
	sb.Grow(len(ids) * 21)
	sb.WriteString("id\n")
	for _, id := range ids {
		sb.WriteString(id)
		sb.WriteByte('\n')
	}
	return sb.String()
}

func twoPartySpec(b *testing.B, mode string) *session.Spec {
	spec, err := session.ParseSpec([]byte(fmt.Sprintf(`{"id": "peer-bench", "parties": ["a", "b"],
	  "fields": {"id": "id"}, "match": {"fields": ["id"], "mode": %q},
	  "reveal": ["cardinality"]}`, mode)))
	if err != nil {
		b.Fatal(err)
	}
	return spec
}

// BenchmarkTwoParty runs a whole two-party session in one process
// (party.RunLocal with one worker): both parties' token rounds, the
// coordinator's join, the masked-aggregation round and the release. Loading
// the CSV (parsing and normalising the identifiers) is outside the timed
// region; the OpenMined PSI run likewise starts from arrays of strings.
// elems/s/party is the set size per party divided by the session's time.
func BenchmarkTwoParty(b *testing.B) {
	for _, mode := range []string{session.ModeDH, session.ModeKeyed} {
		b.Run("mode="+mode, func(b *testing.B) {
			for _, n := range []int{1 << 12, 1 << 16, 1 << 18, 1 << 20} {
				if n > *maxN {
					continue
				}
				b.Run("n="+strconv.Itoa(n), func(b *testing.B) {
					benchTwoParty(b, mode, n)
				})
			}
		})
	}
}

func benchTwoParty(b *testing.B, mode string, n int) {
	spec := twoPartySpec(b, mode)
	ids := [2][]string{}
	ids[0], ids[1] = twoPartySets(n)
	csvs := [2]string{csvOf(ids[0]), csvOf(ids[1])}
	names := [2]string{"a", "b"}
	ctx := context.Background()
	var elapsed time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		inputs := make([]party.Input, 2)
		for i := range inputs {
			recs, err := party.ReadCSV(strings.NewReader(csvs[i]), spec, names[i], party.LoadOptions{})
			if err != nil {
				b.Fatal(err)
			}
			inputs[i] = party.Input{Name: names[i], Records: recs}
		}
		b.StartTimer()
		start := time.Now()
		out, err := party.RunLocal(ctx, spec, inputs, party.Config{Workers: 1})
		elapsed += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if out.Result.Intersection == nil || *out.Result.Intersection != int64(n/2) {
			b.Fatalf("intersection %v, want %d", out.Result.Intersection, n/2)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/elapsed.Seconds(), "elems/s/party")
}
