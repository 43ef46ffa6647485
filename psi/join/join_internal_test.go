package join

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

func randomTokens(seed uint64, n int) []Token {
	r := rand.New(rand.NewPCG(seed, 0))
	ts := make([]Token, n)
	for i := range ts {
		for k := 0; k < TokenSize; k += 8 {
			binary.LittleEndian.PutUint64(ts[i][k:], r.Uint64())
		}
	}
	return ts
}

// checkSorted reports whether recs of list are a permutation of the list's
// positions in strictly increasing token order.
func checkSorted(t *testing.T, list []Token, recs []rec) {
	t.Helper()
	seen := make([]bool, len(list))
	for i, r := range recs {
		if r.key != keyOf(&list[r.pos]) || seen[r.pos] {
			t.Fatalf("record %d = %+v is not a fresh record of the list", i, r)
		}
		seen[r.pos] = true
		if i > 0 && bytes.Compare(list[recs[i-1].pos][:], list[r.pos][:]) >= 0 {
			t.Fatalf("records %d and %d out of order", i-1, i)
		}
	}
}

func TestSortList(t *testing.T) {
	for _, n := range []int{0, 1, 2, 15, 16, 17, 31, 32, 100, 1000, 70000} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			list := randomTokens(uint64(n), n)
			recs := make([]rec, n)
			if sortList(list, recs) {
				t.Fatal("sortList reports a duplicate in distinct tokens")
			}
			checkSorted(t, list, recs)
		})
	}
}

// TestSortListSkewed gives sortList adversarial tokens: all equal in the
// bucketed bits, or in the whole 8-byte key, so one bucket holds
// everything and ties fall to the token tail.
func TestSortListSkewed(t *testing.T) {
	for _, keyBytes := range []int{2, 8} {
		list := randomTokens(7, 20000)
		for i := range list {
			clear(list[i][:keyBytes])
		}
		recs := make([]rec, len(list))
		if sortList(list, recs) {
			t.Fatal("sortList reports a duplicate in distinct tokens")
		}
		checkSorted(t, list, recs)
		list[123] = list[19999]
		if !sortList(list, recs) {
			t.Fatal("sortList misses a duplicate")
		}
	}
}

func TestRangeStart(t *testing.T) {
	for parts := 1; parts <= 9; parts++ {
		if got := rangeStart(0, parts); got != 0 {
			t.Fatalf("rangeStart(0, %d) = %#x, want 0", parts, got)
		}
		for p := 1; p < parts; p++ {
			lo, prev := rangeStart(p, parts), rangeStart(p-1, parts)
			if lo <= prev {
				t.Fatalf("rangeStart(%d, %d) = %#x <= rangeStart(%d, %d) = %#x", p, parts, lo, p-1, parts, prev)
			}
		}
		// The last range must not be empty of keys: it covers up to 2^64-1.
		if last := rangeStart(parts-1, parts); parts > 1 && last < 1<<63 {
			t.Fatalf("rangeStart(%d, %d) = %#x, want >= 2^63", parts-1, parts, last)
		}
	}
}

// TestRunParts checks that splitting the merge into any number of key
// ranges gives the same result as one range, on inputs far below the size
// at which Join splits by itself.
func TestRunParts(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	pool := randomTokens(9, 3000)
	for _, keyTies := range []bool{false, true} {
		if keyTies {
			for i := range pool {
				pool[i][0], pool[i][1] = 0x80, 0
				copy(pool[i][2:8], "abcdef") // every token has the same key
			}
		}
		for n := 1; n <= 5; n++ {
			lists := make([][]Token, n)
			for i := range lists {
				perm := r.Perm(len(pool))[:r.IntN(len(pool))]
				for _, j := range perm {
					lists[i] = append(lists[i], pool[j])
				}
			}
			for _, pairwise := range []bool{false, true} {
				want, err := run(lists, pairwise, 1, 1)
				if err != nil {
					t.Fatal(err)
				}
				for parts := 2; parts <= 9; parts++ {
					got, err := run(lists, pairwise, 3, parts)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("run(n=%d, pairwise=%t, parts=%d) = %+v, want %+v", n, pairwise, parts, got, want)
					}
				}
			}
		}
	}
}

// BenchmarkSortList compares ways of sorting one list of uniform tokens:
//
//   - radix: sortList (counting pass on the leading key bits, then
//     insertion sort per bucket);
//   - pdq-key: slices.SortFunc over the same records, comparing the 8-byte
//     key first and the token tail only on ties;
//   - pdq-bytes: slices.SortFunc over the same records, comparing whole
//     tokens with bytes.Compare through the list.
func BenchmarkSortList(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		list := randomTokens(uint64(n), n)
		recs := make([]rec, n)
		fill := func() {
			for i := range list {
				recs[i] = rec{key: keyOf(&list[i]), pos: uint32(i)}
			}
		}
		strategies := []struct {
			name string
			sort func()
		}{
			{"radix", func() { sortList(list, recs) }},
			{"pdq-key", func() {
				fill()
				slices.SortFunc(recs, func(a, b rec) int { return cmpRec(list, a, list, b) })
			}},
			{"pdq-bytes", func() {
				fill()
				slices.SortFunc(recs, func(a, b rec) int { return bytes.Compare(list[a.pos][:], list[b.pos][:]) })
			}},
		}
		for _, s := range strategies {
			b.Run(fmt.Sprintf("strategy=%s/n=%d", s.name, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					s.sort()
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
			})
		}
	}
}
