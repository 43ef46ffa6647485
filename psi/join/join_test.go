package join_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"testing"

	"github.com/mpsi-dev/mpsi/psi/join"
)

// mapJoin is the reference hash join: the test oracle for join.Join and
// the baseline of BenchmarkJoin. It supports up to 64 lists.
//
// It records, per distinct token, the set of lists holding it as a bit
// mask; a token whose mask is full is in I. Scanning each list in order
// then yields its positions already sorted.
func mapJoin(lists [][]join.Token, pairwise bool) (*join.Result, error) {
	n := len(lists)
	if n == 0 {
		return nil, join.ErrNoLists
	}
	if n > 64 {
		panic("mapJoin: more than 64 lists")
	}
	total := 0
	for _, l := range lists {
		total += len(l)
	}
	masks := make(map[join.Token]uint64, total)
	var dup []int
	for i, l := range lists {
		bit := uint64(1) << i
		for _, t := range l {
			m := masks[t]
			if m&bit != 0 && (len(dup) == 0 || dup[len(dup)-1] != i) {
				dup = append(dup, i)
			}
			masks[t] = m | bit
		}
	}
	if len(dup) > 0 {
		return nil, &join.ListError{List: dup[0], Err: join.ErrDuplicateToken}
	}
	full := uint64(1)<<n - 1
	if n == 64 {
		full = ^uint64(0)
	}
	res := &join.Result{Positions: make([][]uint32, n)}
	for i, l := range lists {
		res.Positions[i] = []uint32{}
		for p, t := range l {
			if masks[t] == full {
				res.Positions[i] = append(res.Positions[i], uint32(p))
			}
		}
	}
	res.Intersection = len(res.Positions[0])
	if pairwise {
		res.Pairwise = make([][]int, n)
		for i := range n {
			res.Pairwise[i] = make([]int, n)
			res.Pairwise[i][i] = len(lists[i])
		}
		for _, m := range masks {
			for i := range n {
				if m&(1<<i) == 0 {
					continue
				}
				for j := i + 1; j < n; j++ {
					if m&(1<<j) != 0 {
						res.Pairwise[i][j]++
						res.Pairwise[j][i]++
					}
				}
			}
		}
	}
	return res, nil
}

// gen draws test inputs from a seeded ChaCha8 stream. math/rand is used for
// generating test and benchmark inputs only.
type gen struct{ r *rand.Rand }

func newGen(seed uint64) *gen {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	s[2], s[3] = byte(seed>>16), byte(seed>>24)
	return &gen{rand.New(rand.NewChaCha8(s))}
}

func (g *gen) token() join.Token {
	var t join.Token
	for i := 0; i < join.TokenSize; i += 8 {
		v := g.r.Uint64()
		for k := range 8 {
			t[i+k] = byte(v >> (8 * k))
		}
	}
	return t
}

func (g *gen) tokens(n int) []join.Token {
	ts := make([]join.Token, n)
	for i := range ts {
		ts[i] = g.token()
	}
	return ts
}

func (g *gen) shuffle(ts []join.Token) {
	g.r.Shuffle(len(ts), func(i, j int) { ts[i], ts[j] = ts[j], ts[i] })
}

// planted builds n lists of size at least common with exactly common tokens
// in all lists, pairOnly[i][j] (i < j) tokens in exactly lists i and j, and
// own tokens in each list alone, shuffled.
func (g *gen) planted(n, common int, pairOnly [][]int, own int) [][]join.Token {
	lists := make([][]join.Token, n)
	for _, t := range g.tokens(common) {
		for i := range lists {
			lists[i] = append(lists[i], t)
		}
	}
	for i := range n {
		for j := i + 1; j < n; j++ {
			if pairOnly == nil {
				continue
			}
			for _, t := range g.tokens(pairOnly[i][j]) {
				lists[i] = append(lists[i], t)
				lists[j] = append(lists[j], t)
			}
		}
		lists[i] = append(lists[i], g.tokens(own)...)
	}
	for _, l := range lists {
		g.shuffle(l)
	}
	return lists
}

// checkJoin runs join.Join with several option sets and compares every
// result with the oracle and with the Result invariants.
func checkJoin(t *testing.T, lists [][]join.Token) {
	t.Helper()
	want, wantErr := mapJoin(lists, true)
	for _, opt := range []join.Options{
		{Pairwise: true, Workers: 1},
		{Pairwise: false, Workers: 1},
		{Pairwise: true, Workers: 3},
		{Pairwise: false},
	} {
		got, err := join.Join(lists, opt)
		if wantErr != nil {
			if err == nil || err.Error() != wantErr.Error() || !errors.Is(err, join.ErrDuplicateToken) {
				t.Fatalf("Join(%+v) error = %v, want %v", opt, err, wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Join(%+v) error = %v", opt, err)
		}
		w := *want
		if !opt.Pairwise {
			w.Pairwise = nil
		}
		if !reflect.DeepEqual(got, &w) {
			t.Fatalf("Join(%+v) = %+v, want %+v", opt, got, &w)
		}
		checkInvariants(t, lists, got)
	}
}

// checkInvariants checks a Result against its documented properties
// without the oracle: positions strictly increasing, in range, pointing at
// tokens present in every list, and the same token set for every party.
func checkInvariants(t *testing.T, lists [][]join.Token, res *join.Result) {
	t.Helper()
	n := len(lists)
	if len(res.Positions) != n {
		t.Fatalf("len(Positions) = %d, want %d", len(res.Positions), n)
	}
	sets := make([]map[join.Token]bool, n)
	for i, l := range lists {
		sets[i] = make(map[join.Token]bool, len(l))
		for _, tok := range l {
			sets[i][tok] = true
		}
	}
	var first map[join.Token]bool
	for i, ps := range res.Positions {
		if len(ps) != res.Intersection {
			t.Fatalf("len(Positions[%d]) = %d, want Intersection %d", i, len(ps), res.Intersection)
		}
		if !slices.IsSorted(ps) || len(slices.Compact(slices.Clone(ps))) != len(ps) {
			t.Fatalf("Positions[%d] not strictly increasing", i)
		}
		got := make(map[join.Token]bool, len(ps))
		for _, p := range ps {
			if int(p) >= len(lists[i]) {
				t.Fatalf("Positions[%d] holds %d, list length %d", i, p, len(lists[i]))
			}
			tok := lists[i][p]
			for j := range n {
				if !sets[j][tok] {
					t.Fatalf("Positions[%d] holds %d whose token is not in list %d", i, p, j)
				}
			}
			got[tok] = true
		}
		if first == nil {
			first = got
		} else if !reflect.DeepEqual(got, first) {
			t.Fatalf("Positions[%d] and Positions[0] select different token sets", i)
		}
	}
	if res.Pairwise != nil {
		for i := range n {
			if res.Pairwise[i][i] != len(lists[i]) {
				t.Fatalf("Pairwise[%d][%d] = %d, want %d", i, i, res.Pairwise[i][i], len(lists[i]))
			}
			for j := range n {
				if res.Pairwise[i][j] != res.Pairwise[j][i] {
					t.Fatalf("Pairwise not symmetric at %d,%d", i, j)
				}
				if res.Pairwise[i][j] < res.Intersection {
					t.Fatalf("Pairwise[%d][%d] = %d < Intersection %d", i, j, res.Pairwise[i][j], res.Intersection)
				}
			}
		}
	}
}

func TestJoin(t *testing.T) {
	g := newGen(1)
	a, b, c := g.token(), g.token(), g.token()
	for n := 1; n <= 6; n++ {
		tests := []struct {
			name  string
			lists [][]join.Token
		}{
			{"all-empty", repeat(n, func(int) []join.Token { return nil })},
			{"one-empty", repeat(n, func(i int) []join.Token {
				if i == n-1 {
					return []join.Token{}
				}
				return []join.Token{a, b}
			})},
			{"disjoint", repeat(n, func(int) []join.Token { return g.tokens(50) })},
			{"identical", func() [][]join.Token {
				base := g.tokens(100)
				return repeat(n, func(int) []join.Token {
					l := slices.Clone(base)
					g.shuffle(l)
					return l
				})
			}()},
			{"one-element-same", repeat(n, func(int) []join.Token { return []join.Token{c} })},
			{"one-element-different", repeat(n, func(int) []join.Token { return g.tokens(1) })},
			{"random", func() [][]join.Token {
				pool := g.tokens(300)
				return repeat(n, func(int) []join.Token { return pick(g, pool, g.r.IntN(250)) })
			}()},
			{"planted", g.planted(n, 200, pairMatrix(n, 30), 100)},
		}
		for _, tc := range tests {
			t.Run(fmt.Sprintf("n=%d/%s", n, tc.name), func(t *testing.T) {
				checkJoin(t, tc.lists)
			})
		}
	}
}

// TestJoinPlanted checks exact, known answers on large inputs with planted
// overlaps: a part common to all lists and parts shared by one pair only.
func TestJoinPlanted(t *testing.T) {
	if testing.Short() {
		t.Skip("large inputs")
	}
	for _, n := range []int{2, 3, 4, 6} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			g := newGen(uint64(100 + n))
			const common, own = 8000, 10000 // n=2 still gets a parallel merge
			pairs := pairMatrix(n, 500)
			lists := g.planted(n, common, pairs, own)
			for _, workers := range []int{1, 2, 5} {
				res, err := join.Join(lists, join.Options{Pairwise: true, Workers: workers})
				if err != nil {
					t.Fatal(err)
				}
				wantI := common
				if n == 2 {
					wantI += pairs[0][1] // with two parties a pair is everyone
				}
				if res.Intersection != wantI {
					t.Errorf("workers=%d: Intersection = %d, want %d", workers, res.Intersection, wantI)
				}
				for i := range n {
					for j := range n {
						want := common + pairs[min(i, j)][max(i, j)]
						if i == j {
							want = len(lists[i])
						}
						if res.Pairwise[i][j] != want {
							t.Errorf("workers=%d: Pairwise[%d][%d] = %d, want %d", workers, i, j, res.Pairwise[i][j], want)
						}
					}
				}
			}
			checkJoin(t, lists)
		})
	}
}

func TestJoinErrors(t *testing.T) {
	g := newGen(2)
	small := g.tokens(10)
	large := g.tokens(5000)
	withDup := func(l []join.Token, from, to int) []join.Token {
		l = slices.Clone(l)
		l[to] = l[from]
		return l
	}
	tests := []struct {
		name    string
		lists   [][]join.Token
		opt     join.Options
		wantErr error
		wantMsg string
	}{
		{"no-lists", nil, join.Options{}, join.ErrNoLists, "join: no lists"},
		{"empty-slice", [][]join.Token{}, join.Options{}, join.ErrNoLists, "join: no lists"},
		{"negative-workers", [][]join.Token{small}, join.Options{Workers: -1}, join.ErrInvalidOptions, "join: invalid options: negative Workers -1"},
		{"dup-small", [][]join.Token{small, small, withDup(small, 3, 7)}, join.Options{}, join.ErrDuplicateToken, "join: duplicate token in list 2"},
		{"dup-adjacent", [][]join.Token{withDup(small, 0, 1)}, join.Options{}, join.ErrDuplicateToken, "join: duplicate token in list 0"},
		{"dup-large", [][]join.Token{large, withDup(large, 10, 4000)}, join.Options{Pairwise: true}, join.ErrDuplicateToken, "join: duplicate token in list 1"},
		{"dup-lowest-list-reported", [][]join.Token{small, withDup(large, 1, 2), withDup(small, 0, 9)}, join.Options{Workers: 3}, join.ErrDuplicateToken, "join: duplicate token in list 1"},
		{"dup-all-same", [][]join.Token{{small[0], small[0], small[0]}}, join.Options{}, join.ErrDuplicateToken, "join: duplicate token in list 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := join.Join(tc.lists, tc.opt)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Join() error = %v, want %v", err, tc.wantErr)
			}
			if err.Error() != tc.wantMsg {
				t.Errorf("Join() error text = %q, want %q", err, tc.wantMsg)
			}
			if res != nil {
				t.Errorf("Join() result = %+v with error, want nil", res)
			}
			var le *join.ListError
			if errors.Is(err, join.ErrDuplicateToken) && !errors.As(err, &le) {
				t.Errorf("Join() error %T is not a *ListError", err)
			}
		})
	}
}

// TestJoinPrefixTies uses tokens that share their first 8 bytes, so every
// comparison falls through to the remaining 24 bytes.
func TestJoinPrefixTies(t *testing.T) {
	g := newGen(3)
	pool := g.tokens(400)
	for i := range pool {
		copy(pool[i][:8], "samepfx!")
		if i%3 == 0 {
			pool[i][31] = 0 // differences only in the last bytes
		}
	}
	pool = slices.CompactFunc(pool, func(a, b join.Token) bool { return a == b })
	for n := 1; n <= 4; n++ {
		lists := repeat(n, func(int) []join.Token { return pick(g, pool, 300) })
		checkJoin(t, lists)
	}
}

// TestJoinProperty compares Join with the oracle on many random inputs:
// random n, sizes, pool sizes (so overlaps range from none to all), worker
// counts and options.
func TestJoinProperty(t *testing.T) {
	iters := 300
	if testing.Short() {
		iters = 50
	}
	g := newGen(4)
	for it := range iters {
		n := 1 + g.r.IntN(6)
		pool := g.tokens(1 + g.r.IntN(400))
		lists := repeat(n, func(int) []join.Token {
			return pick(g, pool, g.r.IntN(len(pool)+1))
		})
		opt := join.Options{Pairwise: g.r.IntN(2) == 0, Workers: g.r.IntN(5)}
		want, _ := mapJoin(lists, opt.Pairwise)
		got, err := join.Join(lists, opt)
		if err != nil {
			t.Fatalf("iteration %d: Join error = %v", it, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("iteration %d (n=%d, %+v): Join = %+v, want %+v", it, n, opt, got, want)
		}
	}
}

func TestJoinDoesNotModifyInput(t *testing.T) {
	g := newGen(5)
	lists := g.planted(3, 1000, pairMatrix(3, 100), 2000)
	orig := make([][]join.Token, len(lists))
	for i := range lists {
		orig[i] = slices.Clone(lists[i])
	}
	if _, err := join.Join(lists, join.Options{Pairwise: true}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(lists, orig) {
		t.Fatal("Join modified its input")
	}
}

// FuzzJoin decodes the fuzz input into up to 5 small lists over a small
// alphabet of tokens, some of which share their first 8 bytes, and compares
// Join with the oracle, including duplicate detection.
func FuzzJoin(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add([]byte{2, 1, 2, 3, 0xff, 1, 2, 4})
	f.Add([]byte{3, 7, 7, 0xff, 7, 0xff, 7, 9})
	f.Add([]byte{1, 5, 5})
	f.Add([]byte{4, 1, 2, 3, 4, 5, 0xff, 2, 3, 4, 0xff, 0xff, 3, 4, 5, 6})
	f.Fuzz(func(t *testing.T, data []byte) {
		lists := decodeLists(data)
		want, wantErr := mapJoin(lists, true)
		for _, opt := range []join.Options{{Pairwise: true, Workers: 1}, {Workers: 2}} {
			got, err := join.Join(lists, opt)
			if wantErr != nil {
				if err == nil || err.Error() != wantErr.Error() {
					t.Fatalf("Join(%+v) error = %v, want %v", opt, err, wantErr)
				}
				continue
			}
			if err != nil {
				t.Fatalf("Join(%+v) error = %v", opt, err)
			}
			w := *want
			if !opt.Pairwise {
				w.Pairwise = nil
			}
			if !reflect.DeepEqual(got, &w) {
				t.Fatalf("Join(%+v) = %+v, want %+v", opt, got, &w)
			}
		}
	})
}

// decodeLists turns fuzz bytes into lists: the first byte gives the number
// of lists (0 to 5), each following byte adds the token it names to the
// current list, and 0xff moves on to the next list. Token v has first
// 8 bytes v&3 and last byte v, so many tokens tie on their key.
func decodeLists(data []byte) [][]join.Token {
	if len(data) == 0 {
		return nil
	}
	n := int(data[0] % 6)
	lists := make([][]join.Token, n)
	if n == 0 {
		return lists
	}
	cur := 0
	for _, v := range data[1:] {
		if v == 0xff {
			cur = (cur + 1) % n
			continue
		}
		var tok join.Token
		tok[7] = v & 3
		tok[31] = v
		lists[cur] = append(lists[cur], tok)
	}
	return lists
}

// Example joins the token lists of three parties. In the protocol the
// lists are the outputs of the token round, one token per record position
// in each party's shuffled order.
func Example() {
	tok := func(s string) join.Token {
		var t join.Token
		copy(t[:], s)
		return t
	}
	// Party A, B and C: their token lists as received by the coordinator.
	a := []join.Token{tok("ann"), tok("bob"), tok("cid"), tok("dan")}
	b := []join.Token{tok("dan"), tok("eve"), tok("bob")}
	c := []join.Token{tok("bob"), tok("fay"), tok("dan"), tok("ann"), tok("gus")}

	// Coordinator: join, then send Positions[i] to party i.
	res, err := join.Join([][]join.Token{a, b, c}, join.Options{Pairwise: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("intersection:", res.Intersection)
	fmt.Println("pairwise:", res.Pairwise)
	for i, ps := range res.Positions {
		fmt.Printf("party %c positions: %v\n", 'A'+i, ps)
	}

	// A party that sends the same token twice is rejected.
	_, err = join.Join([][]join.Token{a, b, {tok("x"), tok("y"), tok("x")}}, join.Options{})
	fmt.Println(err)
	// Output:
	// intersection: 2
	// pairwise: [[4 2 3] [2 3 2] [3 2 5]]
	// party A positions: [1 3]
	// party B positions: [0 2]
	// party C positions: [0 2]
	// join: duplicate token in list 2
}

// BenchmarkJoin compares the sort join with the map join for 3 parties,
// each list half shared by all, a tenth shared with each other party only
// (pairs), the rest its own. It reports tokens/s over all lists and B/token, the
// heap allocated per input token (runtime.MemStats.TotalAlloc).
func BenchmarkJoin(b *testing.B) {
	type impl struct {
		name string
		join func([][]join.Token, bool) (*join.Result, error)
	}
	impls := []impl{
		{"sort", func(l [][]join.Token, pw bool) (*join.Result, error) {
			return join.Join(l, join.Options{Pairwise: pw})
		}},
		{"sort-1worker", func(l [][]join.Token, pw bool) (*join.Result, error) {
			return join.Join(l, join.Options{Pairwise: pw, Workers: 1})
		}},
		{"map", mapJoin},
	}
	const parties = 3
	for _, size := range []int{100_000, 1_000_000} {
		g := newGen(uint64(size))
		common, pair := size/2, size/10
		pairs := pairMatrix(parties, pair)
		lists := g.planted(parties, common, pairs, size-common-2*pair)
		total := 0
		for _, l := range lists {
			total += len(l)
		}
		for _, pw := range []bool{false, true} {
			for _, im := range impls {
				name := fmt.Sprintf("impl=%s/parties=%d/n=%d/pairwise=%t", im.name, parties, size, pw)
				b.Run(name, func(b *testing.B) {
					b.ReportAllocs()
					var before, after runtime.MemStats
					runtime.GC()
					runtime.ReadMemStats(&before)
					for b.Loop() {
						if _, err := im.join(lists, pw); err != nil {
							b.Fatal(err)
						}
					}
					runtime.ReadMemStats(&after)
					tokens := float64(total) * float64(b.N)
					b.ReportMetric(tokens/b.Elapsed().Seconds(), "tokens/s")
					b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/tokens, "B/token")
				})
			}
		}
	}
}

// repeat returns n lists built by f(0), …, f(n-1).
func repeat(n int, f func(i int) []join.Token) [][]join.Token {
	lists := make([][]join.Token, n)
	for i := range lists {
		lists[i] = f(i)
	}
	return lists
}

// pick returns k distinct tokens of pool in random order (k <= len(pool)).
func pick(g *gen, pool []join.Token, k int) []join.Token {
	idx := g.r.Perm(len(pool))[:k]
	out := make([]join.Token, k)
	for i, j := range idx {
		out[i] = pool[j]
	}
	return out
}

// pairMatrix returns an n×n matrix with v in its upper triangle.
func pairMatrix(n, v int) [][]int {
	m := make([][]int, n)
	for i := range m {
		m[i] = make([]int, n)
		for j := i + 1; j < n; j++ {
			m[i][j] = v
		}
	}
	return m
}
