package join_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpsi-dev/mpsi/psi/join"
)

// sizesOf returns the lengths of lists.
func sizesOf(lists [][]join.Token) []int {
	sizes := make([]int, len(lists))
	for i, l := range lists {
		sizes[i] = len(l)
	}
	return sizes
}

// budgetFor returns a budget that makes NewSpiller choose exactly parts
// partitions for the given sizes and options, or 0 if no budget does
// (for tiny inputs). Budgets are searched by bisection: the number of
// partitions does not grow with the budget.
func budgetFor(t testing.TB, sizes []int, opt join.SpillOptions, parts int) int64 {
	t.Helper()
	partitions := func(budget int64) int { // 1<<30 when the budget is too small
		p, err := join.ChoosePartitions(sizes, budget, opt.Workers)
		if err != nil {
			if !errors.Is(err, join.ErrInvalidOptions) {
				t.Fatalf("ChoosePartitions(budget %d): %v", budget, err)
			}
			return 1 << 30
		}
		return p
	}
	lo, hi := int64(1), int64(1)<<40 // partitions(hi) <= parts
	for lo < hi {
		mid := lo + (hi-lo)/2
		if partitions(mid) <= parts {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if partitions(hi) != parts {
		return 0
	}
	return hi
}

// spillJoin feeds lists to a new Spiller in batches of random sizes (up to
// maxBatch, some empty), interleaving the lists at random as concurrent
// streams would, and joins them. The Spiller is closed before returning.
func spillJoin(t testing.TB, g *gen, lists [][]join.Token, opt join.SpillOptions, maxBatch int) (*join.Result, error) {
	t.Helper()
	s, err := join.NewSpiller(sizesOf(lists), opt)
	if err != nil {
		t.Fatalf("NewSpiller: %v", err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	next := make([]int, len(lists))
	for {
		open := []int{}
		for i, l := range lists {
			if next[i] < len(l) {
				open = append(open, i)
			}
		}
		if len(open) == 0 {
			break
		}
		i := open[g.r.IntN(len(open))]
		k := min(g.r.IntN(maxBatch+1), len(lists[i])-next[i])
		if err := s.Add(i, uint64(next[i]), lists[i][next[i]:next[i]+k]); err != nil {
			t.Fatalf("Add(%d, %d, %d tokens): %v", i, next[i], k, err)
		}
		next[i] += k
	}
	return s.Join(context.Background())
}

// TestSpillProperty compares Spiller.Join with Join on random inputs: 1 to
// 6 lists of up to 5000 tokens with planted overlaps (tokens in all lists,
// in pairs of lists, in one list only), budgets chosen to force 1, 2, 16
// and 256 partitions, random batch sizes, with and without the pairwise
// matrix, on one and three workers.
func TestSpillProperty(t *testing.T) {
	iters := 10
	if testing.Short() {
		iters = 3
	}
	g := newGen(40) // math/rand: test inputs only
	dir := t.TempDir()
	for _, parts := range []int{1, 2, 16, 256} {
		tested := 0
		for it := 0; it < iters || tested == 0; it++ {
			if it > 2*iters+20 {
				t.Fatalf("no input found for %d partitions", parts)
			}
			n := 1 + g.r.IntN(6)
			size := g.r.IntN(5001)
			common := g.r.IntN(size + 1)
			pair := g.r.IntN((size-common)/max(n-1, 1) + 1)
			own := g.r.IntN(size - common - (n-1)*pair + 1)
			lists := g.planted(n, common, pairMatrix(n, pair), own)
			if g.r.IntN(4) == 0 {
				lists[g.r.IntN(n)] = nil // an empty list
			}
			want, err := join.Join(lists, join.Options{Pairwise: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, workers := range []int{1, 3} {
				opt := join.SpillOptions{Dir: dir, Workers: workers}
				if opt.Budget = budgetFor(t, sizesOf(lists), opt, parts); opt.Budget == 0 {
					continue
				}
				for _, pairwise := range []bool{false, true} {
					opt.Pairwise = pairwise
					got, err := spillJoin(t, g, lists, opt, 1+g.r.IntN(700))
					if err != nil {
						t.Fatalf("parts=%d n=%d sizes=%v %+v: Join: %v", parts, n, sizesOf(lists), opt, err)
					}
					w := *want
					if !pairwise {
						w.Pairwise = nil
					}
					if !reflect.DeepEqual(got, &w) {
						t.Fatalf("parts=%d n=%d sizes=%v %+v: Spiller.Join = %+v, want %+v", parts, n, sizesOf(lists), opt, got, &w)
					}
				}
				tested++
			}
		}
		t.Logf("%d partitions: %d runs with and without Pairwise", parts, tested)
	}
	checkDirEmpty(t, dir)
}

// TestSpillSkewed gives the Spiller tokens that all share a long prefix,
// so that they all fall in one partition, which must be split again (on
// the bits after the prefix) to fit a small budget.
func TestSpillSkewed(t *testing.T) {
	g := newGen(41)
	for _, prefix := range []int{1, 8, 20, 31} {
		t.Run(fmt.Sprintf("prefix=%d", prefix), func(t *testing.T) {
			lists := g.planted(3, 3000, pairMatrix(3, 500), 2000)
			for _, l := range lists {
				for k := range l {
					copy(l[k][:prefix], "0123456789abcdefghijklmnopqrstuvwxyz")
				}
			}
			// With 31 shared bytes only 256 tokens are distinct.
			for i, l := range lists {
				slices.SortFunc(l, func(a, b join.Token) int { return slices.Compare(a[:], b[:]) })
				lists[i] = slices.Compact(l)
				g.shuffle(lists[i])
			}
			want, err := join.Join(lists, join.Options{Pairwise: true})
			if err != nil {
				t.Fatal(err)
			}
			opt := join.SpillOptions{Workers: 2, Pairwise: true, Dir: t.TempDir()}
			opt.Budget = budgetFor(t, sizesOf(lists), opt, 16)
			got, err := spillJoin(t, g, lists, opt, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Spiller.Join = %+v, want %+v", got, want)
			}
			checkDirEmpty(t, opt.Dir)
		})
	}
}

// TestSpillDuplicate checks that a token repeated within a list is
// reported as by Join: a *ListError wrapping ErrDuplicateToken naming the
// lowest such list, whichever partitions the duplicates fall in.
func TestSpillDuplicate(t *testing.T) {
	g := newGen(42)
	base := g.tokens(3000)
	withDup := func(l []join.Token, from, to int) []join.Token {
		l = slices.Clone(l)
		l[to] = l[from]
		return l
	}
	skewed := slices.Clone(base)
	for k := range skewed {
		copy(skewed[k][:24], "all the same first bytes")
	}
	tests := []struct {
		name  string
		lists [][]join.Token
	}{
		{"one-list", [][]join.Token{withDup(base, 5, 6)}},
		{"last-list", [][]join.Token{base, base, withDup(base, 100, 2999)}},
		{"lowest-reported", [][]join.Token{base, withDup(base, 1, 2), withDup(base, 0, 9)}},
		{"lowest-reported-many", [][]join.Token{base, base, withDup(withDup(base, 7, 8), 100, 200), withDup(base, 3, 4)}},
		{"all-same", [][]join.Token{base[:10], slices.Repeat(base[:1], 500)}},
		{"skewed", [][]join.Token{skewed, withDup(skewed, 10, 2000)}},
		{"skewed-all-same", [][]join.Token{skewed, slices.Repeat(skewed[:1], 3000)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, wantErr := join.Join(tc.lists, join.Options{})
			if !errors.Is(wantErr, join.ErrDuplicateToken) {
				t.Fatalf("Join error = %v, want a duplicate", wantErr)
			}
			for _, parts := range []int{1, 16} {
				for _, workers := range []int{1, 3} {
					opt := join.SpillOptions{Workers: workers, Dir: t.TempDir()}
					if opt.Budget = budgetFor(t, sizesOf(tc.lists), opt, parts); opt.Budget == 0 {
						t.Fatalf("no budget for %d partitions", parts)
					}
					res, err := spillJoin(t, g, tc.lists, opt, 500)
					var le *join.ListError
					if res != nil || !errors.Is(err, join.ErrDuplicateToken) || !errors.As(err, &le) || err.Error() != wantErr.Error() {
						t.Fatalf("parts=%d workers=%d: Spiller.Join = %v, %v; want %v", parts, workers, res, err, wantErr)
					}
					checkDirEmpty(t, opt.Dir)
				}
			}
		})
	}
}

func TestSpillErrors(t *testing.T) {
	g := newGen(43)
	ctx := context.Background()
	dir := t.TempDir()
	opt := join.SpillOptions{Budget: 1 << 20, Dir: dir, Workers: 1}
	toks := g.tokens(10)

	t.Run("new", func(t *testing.T) {
		tests := []struct {
			name  string
			sizes []int
			opt   join.SpillOptions
			want  error
		}{
			{"no-lists", nil, opt, join.ErrNoLists},
			{"zero-budget", []int{1}, join.SpillOptions{}, join.ErrInvalidOptions},
			{"negative-budget", []int{1}, join.SpillOptions{Budget: -1}, join.ErrInvalidOptions},
			{"budget-too-small", []int{1000, 1000}, join.SpillOptions{Budget: 1000}, join.ErrInvalidOptions},
			{"budget-too-small-for-bitmaps", []int{1 << 30}, join.SpillOptions{Budget: 100 << 20, Workers: 1}, join.ErrInvalidOptions},
			{"negative-workers", []int{1}, join.SpillOptions{Budget: 1 << 20, Workers: -1}, join.ErrInvalidOptions},
			{"negative-size", []int{1, -1}, opt, join.ErrInvalidOptions},
			{"too-large", []int{1, join.MaxListLen + 1}, opt, join.ErrListTooLarge},
			{"no-dir", []int{1}, join.SpillOptions{Budget: 1 << 20, Dir: filepath.Join(dir, "missing")}, fs.ErrNotExist},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				s, err := join.NewSpiller(tc.sizes, tc.opt)
				if !errors.Is(err, tc.want) || s != nil {
					t.Fatalf("NewSpiller() = %v, %v; want %v", s, err, tc.want)
				}
				t.Log(err)
			})
		}
	})

	t.Run("add", func(t *testing.T) {
		s, err := join.NewSpiller([]int{10, 5}, opt)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		mustAdd := func(list int, first uint64, batch []join.Token) {
			t.Helper()
			if err := s.Add(list, first, batch); err != nil {
				t.Fatalf("Add(%d, %d): %v", list, first, err)
			}
		}
		wantErr := func(err, want error, list int) {
			t.Helper()
			var le *join.ListError
			if !errors.Is(err, want) {
				t.Fatalf("error = %v, want %v", err, want)
			}
			if list >= 0 && (!errors.As(err, &le) || le.List != list) {
				t.Fatalf("error = %v, want a *ListError for list %d", err, list)
			}
			t.Log(err)
		}
		mustAdd(0, 0, toks[:4])
		wantErr(s.Add(0, 3, toks[4:5]), join.ErrBatchOrder, 0)
		wantErr(s.Add(0, 5, toks[4:5]), join.ErrBatchOrder, 0)
		wantErr(s.Add(1, 1, toks[:1]), join.ErrBatchOrder, 1)
		wantErr(s.Add(1, 0, toks[:6]), join.ErrTooManyTokens, 1)
		wantErr(s.Add(2, 0, toks[:1]), join.ErrNoSuchList, -1)
		wantErr(s.Add(-1, 0, toks[:1]), join.ErrNoSuchList, -1)
		mustAdd(1, 0, toks[:0])
		mustAdd(1, 0, toks[5:10])
		wantErr(s.Add(1, 5, toks[:1]), join.ErrTooManyTokens, 1)
		mustAdd(1, 5, nil)
		_, err = s.Join(ctx)
		wantErr(err, join.ErrMissingTokens, 0)
		mustAdd(0, 4, toks[4:9]) // rejected batches changed nothing
		_, err = s.Join(ctx)
		wantErr(err, join.ErrMissingTokens, 0)
		mustAdd(0, 9, toks[9:])

		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Join(cancelled); !errors.Is(err, context.Canceled) {
			t.Fatalf("Join(cancelled) error = %v, want %v", err, context.Canceled)
		}
		want, err := join.Join([][]join.Token{toks, toks[5:]}, join.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // Join may be repeated
			got, err := s.Join(ctx)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("Join() = %+v, %v; want %+v", got, err, want)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		checkDirEmpty(t, dir)
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		wantErr(s.Add(0, 10, nil), join.ErrClosed, -1)
		_, err = s.Join(ctx)
		wantErr(err, join.ErrClosed, -1)
	})

	t.Run("close-after-errors", func(t *testing.T) {
		s, err := join.NewSpiller([]int{10, 10}, opt)
		if err != nil {
			t.Fatal(err)
		}
		spill := onlyEntry(t, dir)
		if fi, err := os.Stat(spill); err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("spill directory: %v, %v; want mode 0700", fi.Mode(), err)
		}
		if err := s.Add(0, 0, toks); err != nil {
			t.Fatal(err)
		}
		entries, err := os.ReadDir(spill)
		if err != nil || len(entries) == 0 {
			t.Fatalf("no spill file written: %v", err)
		}
		for _, e := range entries {
			if fi, err := e.Info(); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("spill file %s: %v, %v; want mode 0600", e.Name(), fi.Mode(), err)
			}
		}
		if err := s.Add(1, 1, toks); err == nil {
			t.Fatal("out-of-order Add succeeded")
		}
		if _, err := s.Join(ctx); err == nil {
			t.Fatal("Join of an incomplete list succeeded")
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(spill); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("spill directory after Close: %v", err)
		}
	})

	t.Run("cancel-during-join", func(t *testing.T) {
		// The context reports cancellation from its 5th check on: Join
		// stops between partitions and returns the context's error.
		lists := g.planted(2, 2000, nil, 2000)
		for _, workers := range []int{1, 2} {
			o := join.SpillOptions{Dir: dir, Workers: workers}
			o.Budget = budgetFor(t, sizesOf(lists), o, 16)
			s, err := join.NewSpiller(sizesOf(lists), o)
			if err != nil {
				t.Fatal(err)
			}
			for i, l := range lists {
				if err := s.Add(i, 0, l); err != nil {
					t.Fatal(err)
				}
			}
			cctx := &countdownCtx{Context: ctx}
			cctx.left.Store(5)
			if res, err := s.Join(cctx); res != nil || !errors.Is(err, context.Canceled) {
				t.Fatalf("Join = %v, %v; want %v", res, err, context.Canceled)
			}
			if n := cctx.left.Load(); n > 0 {
				t.Fatalf("Join checked its context %d times, want at least 5", 5-n)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		checkDirEmpty(t, dir)
	})
}

// countdownCtx is a context whose Err reports cancellation once it has
// been called left times.
type countdownCtx struct {
	context.Context
	left atomic.Int64
}

func (c *countdownCtx) Err() error {
	if c.left.Add(-1) < 0 {
		return context.Canceled
	}
	return c.Context.Err()
}

// TestSpillEmpty joins lists that are all empty, and one list alone.
func TestSpillEmpty(t *testing.T) {
	g := newGen(44)
	for _, lists := range [][][]join.Token{
		{nil},
		{nil, nil, nil},
		{g.tokens(100)},
		{g.tokens(100), nil},
	} {
		want, err := join.Join(lists, join.Options{Pairwise: true})
		if err != nil {
			t.Fatal(err)
		}
		got, err := spillJoin(t, g, lists, join.SpillOptions{Budget: 1 << 20, Pairwise: true, Dir: t.TempDir()}, 10)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("sizes %v: Spiller.Join = %+v, %v; want %+v", sizesOf(lists), got, err, want)
		}
	}
}

// ExampleSpiller joins the lists of Example with a Spiller, fed one batch
// at a time as the tokens arrive.
func ExampleSpiller() {
	tok := func(s string) join.Token {
		var t join.Token
		copy(t[:], s)
		return t
	}
	a := []join.Token{tok("ann"), tok("bob"), tok("cid"), tok("dan")}
	b := []join.Token{tok("dan"), tok("eve"), tok("bob")}
	c := []join.Token{tok("bob"), tok("fay"), tok("dan"), tok("ann"), tok("gus")}

	s, err := join.NewSpiller([]int{len(a), len(b), len(c)}, join.SpillOptions{Budget: 64 << 20, Pairwise: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	// Batches of one list come in order; lists may interleave.
	for _, add := range []struct {
		list  int
		first uint64
		batch []join.Token
	}{
		{0, 0, a[:2]}, {2, 0, c[:3]}, {1, 0, b}, {0, 2, a[2:]}, {2, 3, c[3:]},
	} {
		if err := s.Add(add.list, add.first, add.batch); err != nil {
			fmt.Println(err)
			return
		}
	}
	res, err := s.Join(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("intersection:", res.Intersection)
	fmt.Println("pairwise:", res.Pairwise)
	for i, ps := range res.Positions {
		fmt.Printf("party %c positions: %v\n", 'A'+i, ps)
	}
	// Output:
	// intersection: 2
	// pairwise: [[4 2 3] [2 3 2] [3 2 5]]
	// party A positions: [1 3]
	// party B positions: [0 2]
	// party C positions: [0 2]
}

// onlyEntry returns the path of the only entry of dir.
func onlyEntry(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("%s holds %d entries (%v), want 1", dir, len(entries), err)
	}
	return filepath.Join(dir, entries[0].Name())
}

// checkDirEmpty fails if dir, the parent of Spillers' directories, holds
// anything: every Spiller has been closed.
func checkDirEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("%s holds %d entries after Close, want none", dir, len(entries))
	}
}

// heapPeak samples the heap in use (the runtime/metrics equivalent of
// MemStats.HeapInuse, read without stopping the world) every 200µs until
// stop is called, which returns the largest value seen above the first.
func heapPeak() (stop func() uint64) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
	}
	read := func() uint64 {
		metrics.Read(samples)
		return samples[0].Value.Uint64() + samples[1].Value.Uint64()
	}
	base := read()
	var peak atomic.Uint64
	peak.Store(base)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if v := read(); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		return max(peak.Load(), read()) - base
	}
}

// dirBytes returns the total size of the files under dir.
func dirBytes(b *testing.B, dir string) int64 {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		total += fi.Size()
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return total
}

// BenchmarkSpill runs the Spiller on BenchmarkJoin's largest input (3
// lists of 10^6 tokens, half of each list in all three, a tenth shared
// with each other list only) with budgets of 16 and 64 MiB, feeding it
// batches of 4096 tokens from the lists in turn, and the in-memory Join on
// the same input for comparison. It reports ns/token, the time per input
// token (for the Spiller from NewSpiller to Join's return, also split into
// add-ns and join-ns); peak-B/token, the peak heap in use above the heap
// before the run (which holds the input lists) per token; and for the
// Spiller disk-B/token, the spill file's size.
//
// Run it once: go test -run '^$' -bench BenchmarkSpill -benchtime 1x ./psi/join/
func BenchmarkSpill(b *testing.B) {
	const parties, size, batch = 3, 1_000_000, 4096
	g := newGen(size) // the seed of BenchmarkJoin's input of this size
	common, pair := size/2, size/10
	lists := g.planted(parties, common, pairMatrix(parties, pair), size-common-2*pair)
	total := float64(parties * size)
	for _, pw := range []bool{false, true} {
		for _, mib := range []int64{16, 64} {
			b.Run(fmt.Sprintf("impl=spill/parties=%d/n=%d/budget=%dMiB/pairwise=%t", parties, size, mib, pw), func(b *testing.B) {
				benchSpill(b, lists, mib<<20, batch, pw)
			})
		}
		b.Run(fmt.Sprintf("impl=join/parties=%d/n=%d/pairwise=%t", parties, size, pw), func(b *testing.B) {
			var peak uint64
			var elapsed time.Duration
			for b.Loop() {
				runtime.GC()
				stop := heapPeak()
				start := time.Now()
				if _, err := join.Join(lists, join.Options{Pairwise: pw}); err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(start)
				peak = max(peak, stop())
			}
			b.ReportMetric(float64(elapsed.Nanoseconds())/(total*float64(b.N)), "ns/token")
			b.ReportMetric(float64(peak)/total, "peak-B/token")
		})
	}
}

// benchSpill is BenchmarkSpill's run of the Spiller.
func benchSpill(b *testing.B, lists [][]join.Token, budget int64, batch int, pw bool) {
	var total int
	for _, l := range lists {
		total += len(l)
	}
	var addTime, joinTime time.Duration
	var peak uint64
	var disk int64
	parts := 0
	for b.Loop() {
		runtime.GC()
		stop := heapPeak()
		start := time.Now()
		dir := b.TempDir()
		s, err := join.NewSpiller(sizesOf(lists), join.SpillOptions{Budget: budget, Dir: dir, Pairwise: pw})
		if err != nil {
			b.Fatal(err)
		}
		parts = s.Partitions()
		for k := 0; k < len(lists[0]); k += batch {
			for i, l := range lists {
				if err := s.Add(i, uint64(k), l[k:min(k+batch, len(l))]); err != nil {
					b.Fatal(err)
				}
			}
		}
		mid := time.Now()
		disk = dirBytes(b, dir)
		if _, err := s.Join(context.Background()); err != nil {
			b.Fatal(err)
		}
		joinTime += time.Since(mid)
		addTime += mid.Sub(start)
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		peak = max(peak, stop())
	}
	n := float64(total) * float64(b.N)
	b.ReportMetric(float64((addTime+joinTime).Nanoseconds())/n, "ns/token")
	b.ReportMetric(float64(addTime.Nanoseconds())/n, "add-ns/token")
	b.ReportMetric(float64(joinTime.Nanoseconds())/n, "join-ns/token")
	b.ReportMetric(float64(peak)/float64(total), "peak-B/token")
	b.ReportMetric(float64(disk)/float64(total), "disk-B/token")
	b.ReportMetric(float64(parts), "partitions")
}
