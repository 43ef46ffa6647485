package link_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/mpsi-dev/mpsi/psi/join"
	"github.com/mpsi-dev/mpsi/psi/link"
)

// BenchmarkGroup links n parties × m records over three keys, with half of
// each party's records shared by all on key 0 and a further tenth only on
// key 1 (uniform tokens; inputs from a fixed-seed PRG). It reports the time
// and the bytes allocated per input token (TotalAlloc over n·m·keys).
func BenchmarkGroup(b *testing.B) {
	for _, m := range []int{100_000, 1_000_000} {
		const n, keys = 3, 3
		b.Run(fmt.Sprintf("n=%d/m=%d/keys=%d", n, m, keys), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			lists := make([][][]join.Token, keys)
			for k := range lists {
				lists[k] = make([][]join.Token, n)
				for p := range n {
					lists[k][p] = make([]join.Token, m)
					for i := range m {
						t := &lists[k][p][i]
						switch {
						case k == 0 && i < m/2, k == 1 && i < m/2+m/10:
							binary.LittleEndian.PutUint64(t[:], uint64(i)) // shared
							t[8] = byte(k)
						default:
							binary.LittleEndian.PutUint64(t[:], r.Uint64())
							binary.LittleEndian.PutUint64(t[8:], r.Uint64())
							t[31] = 1
						}
					}
				}
			}
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			for b.Loop() {
				res, err := link.Group(lists, link.Options{Pairwise: true})
				if err != nil || res.Complete != m/2+m/10 {
					b.Fatalf("complete %d, err %v", res.Complete, err)
				}
			}
			runtime.ReadMemStats(&ms1)
			b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(b.N)/float64(n*m*keys), "B/token")
		})
	}
}
