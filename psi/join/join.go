package join

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
)

// TokenSize is the size in bytes of a [Token].
const TokenSize = 32

// A Token is one pseudorandom value the coordinator receives for one record
// position of one party. Tokens are compared as byte strings; the join
// assumes nothing about their distribution for correctness, only for speed.
type Token [TokenSize]byte

// MaxListLen is the largest number of tokens one list may hold: positions
// are reported as uint32.
const MaxListLen = math.MaxUint32

var (
	// ErrNoLists is returned by [Join] when it is given no lists. It is a
	// programmer or session-configuration error: a session has at least one
	// party.
	ErrNoLists = errors.New("join: no lists")

	// ErrDuplicateToken reports a token that occurs twice in one party's
	// list. It is always wrapped in a [*ListError] naming the list. The
	// protocol requires distinct tokens per party (parties de-duplicate
	// their keys before hashing), so the caller should reject that party's
	// submission and abort the session; retrying will not help.
	ErrDuplicateToken = errors.New("join: duplicate token")

	// ErrListTooLarge reports a list longer than [MaxListLen]. It is always
	// wrapped in a [*ListError] naming the list. The caller should reject
	// that party's submission.
	ErrListTooLarge = errors.New("join: list too large")

	// ErrInvalidOptions is returned by [Join] for an [Options] value that
	// cannot be used (a negative worker count). It is a programmer error.
	ErrInvalidOptions = errors.New("join: invalid options")
)

// A ListError reports a problem with one of the lists given to [Join] or
// fed to a [Spiller]. Its message names the list by index and never
// contains token bytes, e.g. "join: duplicate token in list 2".
type ListError struct {
	List int   // index of the offending list in the lists given to Join or declared to NewSpiller
	Err  error // ErrDuplicateToken or ErrListTooLarge; for a Spiller also ErrTooManyTokens, ErrMissingTokens or ErrBatchOrder
}

// Error returns the sentinel's text followed by the list index.
func (e *ListError) Error() string { return fmt.Sprintf("%v in list %d", e.Err, e.List) }

// Unwrap returns e.Err, so errors.Is(err, ErrDuplicateToken) works.
func (e *ListError) Unwrap() error { return e.Err }

// Options controls a [Join]. The zero value is valid: no pairwise matrix and
// one worker per GOMAXPROCS.
type Options struct {
	// Pairwise asks for the n×n matrix of pairwise overlaps in
	// [Result.Pairwise]. It costs O(k²) per distinct token present in k
	// lists, on top of the join itself, so leave it off unless the session
	// reveals "pairwise".
	Pairwise bool

	// Workers bounds the number of goroutines Join uses to sort lists and
	// merge key ranges in parallel. If zero, runtime.GOMAXPROCS(0) is used;
	// 1 makes Join run entirely on the calling goroutine. Negative values
	// are rejected with ErrInvalidOptions.
	Workers int
}

// Result is the outcome of a [Join] over n lists. Position values are
// indices into the lists as given to Join, i.e. into each party's shuffled
// order.
type Result struct {
	// Intersection is |I|, the number of tokens present in all n lists.
	Intersection int

	// Pairwise is the n×n matrix of pairwise overlaps: Pairwise[i][j] is
	// the number of tokens present in both list i and list j. It is
	// symmetric and Pairwise[i][i] = len(lists[i]). It is nil unless
	// Options.Pairwise was set.
	Pairwise [][]int

	// Positions[i] lists, in increasing order, the positions p such that
	// lists[i][p] is in I. Every Positions[i] has length Intersection; the
	// k-th entries of different parties generally refer to different
	// tokens (each list is in its own party's order).
	Positions [][]uint32
}

// Join computes the intersection I of the token lists, the positions of I
// in each list and, if opt.Pairwise is set, the pairwise overlap matrix.
// With one list, I is that list.
//
// Each list must hold distinct tokens; a repeated token within a list is
// reported as a [*ListError] wrapping [ErrDuplicateToken] (the lowest such
// list index is reported). Empty lists are allowed and make I empty. Zero
// lists is [ErrNoLists].
//
// Join does not modify or retain lists; they must not be modified during
// the call. It allocates about 16.7 bytes per input token plus 4 bytes per
// element of I per list (see the package documentation) and runs in
// expected linear time on uniform tokens, O(N log N) on any input. It may
// start up to opt.Workers goroutines, all of which have returned when Join
// returns. Join is safe for concurrent use; calls share no state.
func Join(lists [][]Token, opt Options) (*Result, error) {
	n := len(lists)
	if n == 0 {
		return nil, ErrNoLists
	}
	if opt.Workers < 0 {
		return nil, fmt.Errorf("%w: negative Workers %d", ErrInvalidOptions, opt.Workers)
	}
	workers := opt.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	total := 0
	for i, l := range lists {
		if uint64(len(l)) > MaxListLen {
			return nil, &ListError{List: i, Err: ErrListTooLarge}
		}
		total += len(l)
	}

	// The merge is split into one key range per worker, as long as each
	// range is large enough to pay for the split.
	parts := 1
	if workers > 1 {
		parts = max(1, min(workers, total/minRangeTokens))
	}
	return run(lists, opt.Pairwise, workers, parts)
}

// run is Join after argument checks, with the merge split into parts key
// ranges.
func run(lists [][]Token, pairwise bool, workers, parts int) (*Result, error) {
	n := len(lists)

	// Phase 1: sort every list into (key, position) records, in parallel
	// across lists, and detect duplicates.
	recs := make([][]rec, n)
	dup := make([]bool, n)
	parallel(workers, n, func(i int) {
		recs[i] = make([]rec, len(lists[i]))
		dup[i] = sortList(lists[i], recs[i])
	})
	for i, d := range dup {
		if d {
			return nil, &ListError{List: i, Err: ErrDuplicateToken}
		}
	}

	// Phase 2: n-way merge, split into disjoint key ranges merged in
	// parallel. A range is a contiguous interval of the 64-bit key space, so
	// equal tokens always fall in the same range.
	// bounds[p][i] is the index of the first record of range p in list i;
	// they are all found before any merge writes to a record.
	bounds := make([][]int, parts+1)
	for p := range parts + 1 {
		bounds[p] = make([]int, n)
		for i := range n {
			switch {
			case p == parts:
				bounds[p][i] = len(recs[i])
			case p > 0:
				bounds[p][i] = searchKey(recs[i], rangeStart(p, parts))
			}
		}
	}
	partials := make([]partial, parts)
	parallel(workers, parts, func(p int) {
		m := &partials[p]
		m.init(n, pairwise)
		m.merge(lists, recs, bounds[p], bounds[p+1])
	})

	// Phase 3: combine the ranges.
	res := &Result{Positions: make([][]uint32, n)}
	for p := range partials {
		res.Intersection += partials[p].count
	}
	if pairwise {
		res.Pairwise = make([][]int, n)
		flat := make([]int, n*n)
		for i := range n {
			res.Pairwise[i] = flat[i*n : (i+1)*n : (i+1)*n]
		}
		for p := range partials {
			for i := range n {
				for j := i + 1; j < n; j++ {
					res.Pairwise[i][j] += partials[p].pair[i*n+j]
				}
			}
		}
		for i := range n {
			res.Pairwise[i][i] = len(lists[i])
			for j := i + 1; j < n; j++ {
				res.Pairwise[j][i] = res.Pairwise[i][j]
			}
		}
	}
	// The merge marked the records of I, which are in key order; put their
	// positions in increasing order with a bitmap over the list's positions
	// (len/8 bytes, linear time).
	parallel(workers, n, func(i int) {
		res.Positions[i] = sortedPositions(lists[i], recs[i], res.Intersection)
	})
	return res, nil
}

// minRangeTokens is the smallest number of tokens (over all lists) per key
// range worth merging on its own: each range costs a binary search per list.
const minRangeTokens = 1 << 14

// rangeStart returns the first 64-bit key of range p when the key space is
// cut into parts ranges of equal width (p < parts).
func rangeStart(p, parts int) uint64 {
	return uint64(p) * (math.MaxUint64/uint64(parts) + 1)
}

// sortedPositions returns the positions of the records of list marked inI,
// in increasing order. want is their number.
func sortedPositions(list []Token, recs []rec, want int) []uint32 {
	out := make([]uint32, 0, want)
	if want == 0 {
		return out
	}
	if want == len(list) {
		// Every position is in I (n = 1, or identical lists).
		for p := range list {
			out = append(out, uint32(p))
		}
		return out
	}
	bitmap := make([]uint64, (len(list)+63)/64)
	for _, r := range recs {
		if r.inI {
			bitmap[r.pos/64] |= 1 << (r.pos % 64)
		}
	}
	return appendSetBits(out, bitmap)
}

// appendSetBits appends to out, in increasing order, the indices of the
// bits set in bitmap (bit i is bitmap[i/64]>>(i%64)&1).
func appendSetBits(out []uint32, bitmap []uint64) []uint32 {
	for w, word := range bitmap {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			out = append(out, uint32(w*64+b))
			word &= word - 1
		}
	}
	return out
}

// parallel calls f(0), …, f(tasks-1) on at most workers goroutines and
// returns when all calls have returned. With one worker or one task it runs
// on the calling goroutine.
func parallel(workers, tasks int, f func(task int)) {
	if workers <= 1 || tasks <= 1 {
		for t := range tasks {
			f(t)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, tasks) {
		wg.Go(func() {
			for {
				t := int(next.Add(1) - 1)
				if t >= tasks {
					return
				}
				f(t)
			}
		})
	}
	wg.Wait()
}
