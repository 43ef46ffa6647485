package clk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// randomParties makes n parties of CLKs around a shared pool of entities,
// each copy with a few bits flipped, so that true matches sit at Dice 0.7–1
// and unrelated pairs near 0.5. Seeded PRG: deterministic test data.
func randomParties(rng *rand.Rand, n, entities, perParty, L, flips int) [][][]byte {
	nb := (L + 7) / 8
	base := make([][]byte, entities)
	for e := range base {
		base[e] = make([]byte, nb)
		for i := 0; i < L; i++ {
			if rng.IntN(2) == 0 {
				base[e][i/8] |= 0x80 >> (i % 8)
			}
		}
	}
	out := make([][][]byte, n)
	for p := range out {
		for range perParty {
			c := slices.Clone(base[rng.IntN(entities)])
			for range rng.IntN(flips + 1) {
				i := rng.IntN(L)
				c[i/8] ^= 0x80 >> (i % 8)
			}
			out[p] = append(out[p], c)
		}
	}
	return out
}

// oracleDice works on the bytes, bit by bit.
func oracleDice(a, b []byte) float64 {
	var pa, pb, ab int
	for i := range a {
		pa += bits.OnesCount8(a[i])
		pb += bits.OnesCount8(b[i])
		ab += bits.OnesCount8(a[i] & b[i])
	}
	if pa+pb == 0 {
		return 0
	}
	return float64(2*ab) / float64(pa+pb)
}

// oracleLink compares every pair and groups by the rule stated in Link's
// documentation, checked literally: at each candidate (in order), merge the
// two groups if every cross pair is a candidate already taken (at or before
// this position) and no party appears in both.
func oracleLink(parties [][][]byte, t float64) []Group {
	type cand struct {
		sim  float64
		a, b Record
	}
	var cs []cand
	for pa := range parties {
		for pb := pa + 1; pb < len(parties); pb++ {
			for i, x := range parties[pa] {
				for j, y := range parties[pb] {
					if s := oracleDice(x, y); s >= t {
						cs = append(cs, cand{s, Record{pa, i}, Record{pb, j}})
					}
				}
			}
		}
	}
	sort.SliceStable(cs, func(i, j int) bool {
		x, y := cs[i], cs[j]
		if x.sim != y.sim {
			return x.sim > y.sim
		}
		if x.a.Party != y.a.Party {
			return x.a.Party < y.a.Party
		}
		if x.b.Party != y.b.Party {
			return x.b.Party < y.b.Party
		}
		if x.a.Index != y.a.Index {
			return x.a.Index < y.a.Index
		}
		return x.b.Index < y.b.Index
	})
	rank := map[[2]Record]int{}
	for k, c := range cs {
		rank[[2]Record{c.a, c.b}] = k
		rank[[2]Record{c.b, c.a}] = k
	}
	group := map[Record][]Record{}
	find := func(r Record) []Record {
		if g, ok := group[r]; ok {
			return g
		}
		return []Record{r}
	}
	for k, c := range cs {
		ga, gb := find(c.a), find(c.b)
		if slices.Contains(ga, c.b) {
			continue
		}
		ok := true
		for _, x := range ga {
			for _, y := range gb {
				if x.Party == y.Party {
					ok = false
				}
				if r, seen := rank[[2]Record{x, y}]; !seen || r > k {
					ok = false
				}
			}
		}
		if ok {
			m := append(slices.Clone(ga), gb...)
			for _, r := range m {
				group[r] = m
			}
		}
	}
	var out []Group
	seen := map[Record]bool{}
	for _, g := range group {
		if seen[g[0]] {
			continue
		}
		for _, r := range g {
			seen[r] = true
		}
		gg := Group(slices.Clone(g))
		slices.SortFunc(gg, func(x, y Record) int {
			if x.Party != y.Party {
				return x.Party - y.Party
			}
			return x.Index - y.Index
		})
		out = append(out, gg)
	}
	slices.SortFunc(out, func(x, y Group) int {
		if x[0].Party != y[0].Party {
			return x[0].Party - y[0].Party
		}
		return x[0].Index - y[0].Index
	})
	return out
}

func toSets(t testing.TB, parties [][][]byte, L int) []*Set {
	t.Helper()
	var sets []*Set
	for _, p := range parties {
		s, err := NewSet(L, p)
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, s)
	}
	return sets
}

func TestLinkAgainstOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 1)) // seeded: deterministic test data
	for trial := 0; trial < 60; trial++ {
		n := 2 + trial%4
		L := []int{64, 100, 256, 1024}[(trial/3)%4] // 1024: the unrolled scan
		t0 := []float64{0.6, 0.75, 0.9}[trial%3]
		parties := randomParties(rng, n, 4+rng.IntN(8), 3+rng.IntN(10), L, L/8)
		want := oracleLink(parties, t0)
		res, err := Link(t.Context(), toSets(t, parties, L), LinkOptions{Threshold: t0, Blocking: BlockingNone, Workers: 1 + trial%3})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(res.Groups) != fmt.Sprint(want) {
			t.Fatalf("trial %d (n=%d, L=%d, t=%v):\n got %v\nwant %v", trial, n, L, t0, res.Groups, want)
		}
		for _, g := range res.Groups {
			for k := 1; k < len(g); k++ {
				if g[k].Party == g[k-1].Party {
					t.Fatalf("group %v has two records of party %d", g, g[k].Party)
				}
			}
		}
	}
}

// TestLSHFindsSubsetWithHighRecall checks that LSH blocking only returns
// true candidates (same similarities as the exhaustive search) and finds
// nearly all of them on data whose matches sit well above the threshold.
func TestLSHFindsSubsetWithHighRecall(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 2)) // seeded: deterministic test data
	parties := randomParties(rng, 3, 300, 400, 1024, 60)
	sets := toSets(t, parties, 1024)
	opt := LinkOptions{Threshold: 0.85, Blocking: BlockingNone}
	all, _, err := FindCandidates(t.Context(), sets, opt)
	if err != nil {
		t.Fatal(err)
	}
	opt.Blocking = BlockingLSH
	got, st, err := FindCandidates(t.Context(), sets, opt)
	if err != nil {
		t.Fatal(err)
	}
	// The number of goroutines changes nothing.
	for _, w := range []int{1, 3} {
		opt.Workers = w
		again, st2, err := FindCandidates(t.Context(), sets, opt)
		if err != nil || !slices.Equal(again, got) || st2 != st {
			t.Fatalf("Workers %d: %d candidates, stats %+v; want %d, %+v (%v)", w, len(again), st2, len(got), st, err)
		}
	}
	index := map[[2]Record]float64{}
	for _, c := range all {
		index[[2]Record{c.A, c.B}] = c.Sim
	}
	for _, c := range got {
		if s, ok := index[[2]Record{c.A, c.B}]; !ok || s != c.Sim {
			t.Fatalf("LSH candidate %v not in the exhaustive set", c)
		}
	}
	if len(all) < 500 || float64(len(got)) < 0.97*float64(len(all)) {
		t.Fatalf("LSH found %d of %d candidates (bands %d × %d bits, model recall %.3f)", len(got), len(all), st.Bands, st.BandBits, st.EstimatedRecall)
	}
	if st.Comparisons >= int64(3*400*400) {
		t.Fatalf("LSH made %d comparisons, no fewer than all pairs", st.Comparisons)
	}
}

func TestLinkInputErrors(t *testing.T) {
	a, _ := NewSet(64, [][]byte{make([]byte, 8)})
	b, _ := NewSet(128, [][]byte{make([]byte, 16)})
	for name, tc := range map[string]struct {
		sets []*Set
		t    float64
	}{
		"one party":      {[]*Set{a}, 0.8},
		"threshold zero": {[]*Set{a, a}, 0},
		"threshold > 1":  {[]*Set{a, a}, 1.5},
		"lengths differ": {[]*Set{a, b}, 0.8},
		"nil set":        {[]*Set{a, nil}, 0.8},
	} {
		if _, err := Link(t.Context(), tc.sets, LinkOptions{Threshold: tc.t}); !errors.Is(err, ErrLink) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	empty, _ := NewSet(64, nil)
	for _, bl := range []Blocking{BlockingNone, BlockingLSH} {
		res, err := Link(t.Context(), []*Set{a, empty, a}, LinkOptions{Threshold: 0.5, Blocking: bl})
		if err != nil || len(res.Groups) != 0 {
			t.Errorf("blocking %d with an empty party: %v, %v", bl, res, err)
		}
	}
	if _, err := Solve([]int{1, 1}, []Candidate{{Sim: 1, A: Record{0, 0}, B: Record{1, 5}}}); !errors.Is(err, ErrLink) {
		t.Errorf("out of range candidate: %v", err)
	}
}

func TestDecodeSet(t *testing.T) {
	tests := []struct {
		bits int
		data []byte
		n    int
		ok   bool
	}{
		{1024, make([]byte, 256), 2, true},
		{1024, make([]byte, 255), 0, false},
		{7, []byte{0xfe, 0x02}, 2, true},
		{7, []byte{0xff}, 0, false}, // padding bit set
		{0, nil, 0, false},
		{12, []byte{0xff, 0xf0, 0xab, 0xc0}, 2, true},
		{12, []byte{0xff, 0xf8}, 0, false},
		{64, nil, 0, true},
	}
	for _, tt := range tests {
		s, err := DecodeSet(tt.bits, tt.data)
		if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrCLK)) {
			t.Errorf("DecodeSet(%d, %x): %v", tt.bits, tt.data, err)
			continue
		}
		if err == nil && s.Len() != tt.n {
			t.Errorf("DecodeSet(%d, %x): %d CLKs, want %d", tt.bits, tt.data, s.Len(), tt.n)
		}
	}
	s, _ := DecodeSet(12, []byte{0xff, 0xf0, 0xab, 0xc0})
	if s.Popcount(0) != 12 || s.Popcount(1) != 7 {
		t.Fatal(s.Popcount(0), s.Popcount(1))
	}
	if _, err := NewSet(16, [][]byte{{1, 2, 3}}); !errors.Is(err, ErrCLK) {
		t.Fatal(err)
	}
}

func FuzzDecodeSet(f *testing.F) {
	f.Add(uint16(1024), make([]byte, 128))
	f.Add(uint16(7), []byte{0xfe, 0x00})
	f.Add(uint16(12), []byte{0xff, 0xf0, 0x12})
	f.Fuzz(func(t *testing.T, bits uint16, data []byte) {
		s, err := DecodeSet(int(bits), data)
		if err != nil {
			if !errors.Is(err, ErrCLK) {
				t.Fatalf("error %v does not wrap ErrCLK", err)
			}
			return
		}
		n := (int(bits) + 7) / 8
		if s.Len()*n != len(data) {
			t.Fatalf("%d CLKs of %d bytes from %d bytes", s.Len(), n, len(data))
		}
		for i := 0; i < s.Len(); i++ {
			c := data[i*n : (i+1)*n]
			if p := s.Popcount(i); p != int(oracleDice(c, c)*float64(p)+0.5) && p != 0 {
				t.Fatalf("popcount %d", p)
			}
			var pop int
			for _, x := range c {
				pop += bitsOnes(x)
			}
			if pop != s.Popcount(i) {
				t.Fatalf("CLK %d popcount %d, bytes say %d", i, s.Popcount(i), pop)
			}
			if d := Dice(s, i, s, i); pop > 0 && d != 1 {
				t.Fatalf("self-similarity %v", d)
			}
			// Re-encoding the words gives the bytes back.
			w := s.clk(i)
			var back bytes.Buffer
			for _, x := range w {
				for k := 7; k >= 0; k-- {
					back.WriteByte(byte(x >> (8 * k)))
				}
			}
			if !bytes.Equal(back.Bytes()[:n], c) {
				t.Fatalf("CLK %d does not round-trip", i)
			}
		}
	})
}

func bitsOnes(x byte) int { return bits.OnesCount8(x) }

func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	rng := rand.New(rand.NewPCG(16, 4)) // seeded: deterministic test data
	sets := toSets(t, randomParties(rng, 2, 10, 20, 1024, 50), 1024)
	for _, bl := range []Blocking{BlockingNone, BlockingLSH} {
		if _, err := Link(ctx, sets, LinkOptions{Threshold: 0.8, Blocking: bl}); !errors.Is(err, context.Canceled) {
			t.Errorf("blocking %d: %v", bl, err)
		}
	}
	s, _ := ParseSchema([]byte(minimalSchema))
	enc, _ := NewEncoder(s, []byte("k"))
	if _, err := enc.EncodeAll(ctx, [][]string{{"1", "a"}}, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("EncodeAll: %v", err)
	}
}
