package join

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
)

var (
	// ErrTooManyTokens reports a batch that would take a list past the size
	// declared to [NewSpiller]. It is always wrapped in a [*ListError]
	// naming the list; the batch is rejected whole. The caller should
	// reject that party's submission.
	ErrTooManyTokens = errors.New("join: more tokens than declared")

	// ErrMissingTokens is returned by [Spiller.Join] when a list holds
	// fewer tokens than declared. It is always wrapped in a [*ListError]
	// naming the list (the lowest incomplete one).
	ErrMissingTokens = errors.New("join: fewer tokens than declared")

	// ErrBatchOrder reports a batch whose first position is not the number
	// of tokens already added to its list: batches of one list must arrive
	// in order and without gaps. It is always wrapped in a [*ListError]
	// naming the list; the batch is rejected whole.
	ErrBatchOrder = errors.New("join: batch out of order")

	// ErrNoSuchList reports a list index outside the lists declared to
	// [NewSpiller]. It is a programmer error.
	ErrNoSuchList = errors.New("join: no such list")

	// ErrClosed is returned by [Spiller.Add] and [Spiller.Join] after
	// [Spiller.Close].
	ErrClosed = errors.New("join: spiller closed")
)

// spillDirPrefix names a Spiller's temporary directory.
const spillDirPrefix = "mpsi-join-spill-"

// SpillDirPattern matches (with filepath.Glob, inside SpillOptions.Dir) the
// temporary directories Spillers make, so that an owner of a dedicated spill
// directory can remove what a crashed process left behind.
const SpillDirPattern = spillDirPrefix + "*"

// SpillOptions controls a [Spiller].
type SpillOptions struct {
	// Budget is the memory, in bytes, the Spiller may use for its own
	// working data: the write buffers while tokens are added (but at
	// least 4.5 KiB per list and partition that receives tokens); the
	// position bitmaps and, per worker, one loaded partition and a read
	// buffer while joining. It must be positive, and large enough for the
	// bitmaps (one bit per declared token) plus a minimal partition per
	// worker; NewSpiller reports the minimum otherwise. Not counted: the
	// returned [Result], the index of spill blocks (16 bytes per block of
	// up to 2048 tokens) and the garbage collector's headroom.
	Budget int64

	// Dir is the directory in which the Spiller creates its private
	// temporary directory for spill files. If empty, os.TempDir() is used.
	Dir string

	// Workers bounds the number of goroutines Join uses: each joins one
	// partition at a time, with Budget/Workers of memory. If zero,
	// runtime.GOMAXPROCS(0) is used. Negative values are rejected with
	// ErrInvalidOptions.
	Workers int

	// Pairwise asks for the pairwise overlap matrix in [Result.Pairwise],
	// as [Options].Pairwise does for [Join].
	Pairwise bool
}

// A Spiller joins token lists too large to hold in memory at once. It is
// fed the lists batch by batch as they arrive ([Spiller.Add]), writes them
// to a temporary file in blocks, each holding records of one list and one
// partition (the tokens' leading bits), and then joins one partition at a
// time with the in-memory code of [Join] ([Spiller.Join]). See the package
// documentation for the algorithm and its memory and disk costs.
//
// A Spiller owns a temporary directory until [Spiller.Close], which the
// caller must call (also after errors). Its methods are safe for
// concurrent use and are serialized: Close waits for a running Join, which
// the caller can stop through Join's context.
type Spiller struct {
	mu sync.Mutex

	sizes      []int // declared list lengths
	workers    int
	pairwise   bool
	partBits   uint  // log2 of the number of partitions
	partBudget int64 // bytes one worker may use for one loaded partition
	bufBytes   int   // capacity of one write buffer, a multiple of spillRecSize

	dir    string   // private temporary directory; "" once removed
	file   *os.File // the spill file, in dir; nil once closed
	size   int64    // bytes written to file
	closed bool
	err    error // sticky: a write failed

	added  []uint64    // tokens added per list
	counts [][]int     // counts[i][p]: records of list i in partition p
	blocks [][][]block // blocks[i][p]: where in file the records of list i in partition p are
	bufs   [][][]byte  // bufs[i][p]: unwritten records; bufs[i] is nil once list i is complete

	joins int        // Join calls so far
	stats spillStats // of the last Join, for tests
}

// A block is a run of records in a spill file, written by one flush of a
// write buffer.
type block struct {
	off  int64 // offset in the file
	recs int   // number of records
}

// spillStats describes what the last Join did.
type spillStats struct {
	splits  int   // partitions split again because they exceeded the budget
	maxLoad int64 // largest partLoad of a loaded partition
}

const (
	// spillRecSize is the size of a spill record: the token, then its
	// position in its list as a little-endian uint32.
	spillRecSize = TokenSize + 4

	// loadedTokenBytes is the memory one token of a loaded partition takes:
	// the token, its position in its list and its sort record.
	loadedTokenBytes = TokenSize + 4 + 16

	// A write buffer holds between minWriteRecs and maxWriteRecs records,
	// depending on the budget. It is allocated whole when its first record
	// arrives (growing it would leave garbage) and written to the spill
	// file as one block.
	minWriteRecs = 128
	maxWriteRecs = 2048

	// readChunkRecs is the number of records a worker reads at a time: a
	// whole block.
	readChunkRecs = maxWriteRecs // 73,728 bytes

	// maxPartBits bounds the number of partitions, hence of write buffers.
	maxPartBits = 12

	// minPartBudget is the smallest per-worker budget for a partition
	// (about 20 tokens). It only keeps tiny budgets meaningful: real
	// budgets are megabytes.
	minPartBudget = 1 << 10

	// maxSplitBits is the number of further token bits an oversized
	// partition is split on.
	maxSplitBits = 8

	// tokenBits is the number of bits in a token.
	tokenBits = 8 * TokenSize
)

// partLoad returns the memory a worker needs to join a partition of total
// tokens whose longest list holds longest: loadedTokenBytes per token plus
// sortList's bucket counters for the longest list (at most half a byte per
// token).
func partLoad(total, longest int64) int64 {
	return loadedTokenBytes*total + longest/2
}

// fitsBudget reports whether a partition expected to hold total tokens, at
// most longest of one list, fits budget with 1/8 headroom for the random
// spread of partition sizes.
func fitsBudget(total, longest, budget int64) bool {
	return 8*partLoad(total, longest) <= 7*budget
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// choosePartitions returns log2 of the number of partitions P for lists
// of the given sizes and the per-worker partition budget.
//
// The budget is what remains after the position bitmaps (one bit per
// token) and one read buffer per worker, divided among the workers. P is
// the smallest power of two such that a partition of the expected size,
// Σsizes/P tokens, fits that with 1/8 headroom; then, with several
// workers, P is raised towards 2·workers while partitions keep at least
// minRangeTokens tokens, so that the workers have partitions to share.
func choosePartitions(sizes []int, budget int64, workers int) (uint, int64, error) {
	var total, longest, bitmaps int64
	for _, sz := range sizes {
		total += int64(sz)
		longest = max(longest, int64(sz))
		bitmaps += 8 * ceilDiv(int64(sz), 64)
	}
	w := int64(workers)
	fixed := bitmaps + w*readChunkRecs*spillRecSize
	partBudget := (budget - fixed) / w
	if budget > fixed && partBudget >= minPartBudget {
		for b := uint(0); b <= maxPartBits; b++ {
			p := int64(1) << b
			if !fitsBudget(ceilDiv(total, p), ceilDiv(longest, p), partBudget) {
				continue
			}
			for workers > 1 && b < maxPartBits && int64(1)<<b < 2*w && total>>(b+1) >= minRangeTokens {
				b++
			}
			return b, partBudget, nil
		}
	}
	const p = 1 << maxPartBits
	need := fixed + w*max(minPartBudget, ceilDiv(8*partLoad(ceilDiv(total, p), ceilDiv(longest, p)), 7))
	return 0, 0, fmt.Errorf("%w: Budget of %d bytes is too small for %d tokens with %d workers (need at least %d)",
		ErrInvalidOptions, budget, total, workers, need)
}

// NewSpiller returns a Spiller for len(sizes) lists, list i holding exactly
// sizes[i] tokens, and creates its temporary directory (mode 0700, in
// opt.Dir) and spill file (mode 0600) in it.
//
// It chooses the number of partitions from opt.Budget and the total of
// sizes (see the package documentation). A list longer than [MaxListLen]
// is reported as a [*ListError] wrapping [ErrListTooLarge]; no sizes is
// [ErrNoLists]; a non-positive or too small budget, negative workers or a
// negative size are [ErrInvalidOptions].
func NewSpiller(sizes []int, opt SpillOptions) (*Spiller, error) {
	n := len(sizes)
	if n == 0 {
		return nil, ErrNoLists
	}
	if opt.Budget <= 0 {
		return nil, fmt.Errorf("%w: Budget %d, want > 0", ErrInvalidOptions, opt.Budget)
	}
	if opt.Workers < 0 {
		return nil, fmt.Errorf("%w: negative Workers %d", ErrInvalidOptions, opt.Workers)
	}
	workers := opt.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	for i, sz := range sizes {
		if sz < 0 {
			return nil, fmt.Errorf("%w: negative size %d of list %d", ErrInvalidOptions, sz, i)
		}
		if uint64(sz) > MaxListLen {
			return nil, &ListError{List: i, Err: ErrListTooLarge}
		}
	}
	partBits, partBudget, err := choosePartitions(sizes, opt.Budget, workers)
	if err != nil {
		return nil, err
	}
	parts := 1 << partBits
	bufRecs := min(max(opt.Budget/(int64(n)*int64(parts)*spillRecSize), minWriteRecs), maxWriteRecs)

	dir, err := os.MkdirTemp(opt.Dir, spillDirPrefix+"*") // mode 0700
	if err != nil {
		return nil, fmt.Errorf("join: creating spill directory: %w", err)
	}
	file, err := createSpillFile(dir, "tokens")
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	if err := lockSpillFile(file); err != nil {
		return nil, errors.Join(err, file.Close(), os.RemoveAll(dir))
	}
	s := &Spiller{
		sizes:      append([]int(nil), sizes...),
		workers:    workers,
		pairwise:   opt.Pairwise,
		partBits:   partBits,
		partBudget: partBudget,
		bufBytes:   int(bufRecs) * spillRecSize,
		dir:        dir,
		file:       file,
		added:      make([]uint64, n),
		counts:     make([][]int, n),
		blocks:     make([][][]block, n),
		bufs:       make([][][]byte, n),
	}
	for i, sz := range sizes {
		s.counts[i] = make([]int, parts)
		s.blocks[i] = make([][]block, parts)
		if sz > 0 {
			s.bufs[i] = make([][]byte, parts)
		}
	}
	return s, nil
}

// Partitions returns the number of partitions the Spiller splits the
// tokens into (before any further split of a skewed partition).
func (s *Spiller) Partitions() int { return 1 << s.partBits }

// usable returns the error that makes s unusable, if any. s.mu is held.
func (s *Spiller) usable() error {
	if s.closed {
		return ErrClosed
	}
	return s.err
}

// Add appends batch to list, batch[k] being the token at position first+k
// of the list. Batches of one list must arrive in order: first must equal
// the number of tokens already added to the list, else the batch is
// rejected with a [*ListError] wrapping [ErrBatchOrder]. A batch that would
// take the list past its declared size is rejected whole with a
// [*ListError] wrapping [ErrTooManyTokens]. Rejected batches change
// nothing, so the Spiller stays usable.
//
// Add copies the tokens into per-partition write buffers and appends full
// buffers to the spill file; it does not retain batch. A failed write
// makes the Spiller unusable: that error is returned by every later Add
// and Join, and only Close remains to be called. Duplicate tokens are
// detected by Join.
func (s *Spiller) Add(list int, first uint64, batch []Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	if list < 0 || list >= len(s.sizes) {
		return fmt.Errorf("%w: list %d of %d", ErrNoSuchList, list, len(s.sizes))
	}
	added, size := s.added[list], uint64(s.sizes[list])
	if first != added {
		return fmt.Errorf("%w (batch at %d, expected %d)", &ListError{List: list, Err: ErrBatchOrder}, first, added)
	}
	if uint64(len(batch)) > size-added {
		return fmt.Errorf("%w (%d tokens after %d, declared %d)", &ListError{List: list, Err: ErrTooManyTokens}, len(batch), added, size)
	}
	if len(batch) == 0 {
		return nil
	}
	shift := 64 - s.partBits // 64 when there is one partition: every key >> 64 is 0
	bufs, counts := s.bufs[list], s.counts[list]
	for k := range batch {
		t := &batch[k]
		p := keyOf(t) >> shift
		b := bufs[p]
		if b == nil {
			b = make([]byte, 0, s.bufBytes)
		}
		b = append(b, t[:]...)
		b = binary.LittleEndian.AppendUint32(b, uint32(first+uint64(k)))
		counts[p]++
		if len(b) == s.bufBytes {
			if err := s.flush(list, int(p), b); err != nil {
				return err
			}
			b = b[:0]
		}
		bufs[p] = b
	}
	s.added[list] = added + uint64(len(batch))
	if s.added[list] == size {
		// The list is complete: write what is left and free its buffers.
		for p, b := range bufs {
			if len(b) > 0 {
				if err := s.flush(list, p, b); err != nil {
					return err
				}
			}
		}
		s.bufs[list] = nil
	}
	return nil
}

// flush appends the records b to the spill file as a block of list's
// partition p. A failure makes s unusable. s.mu is held.
func (s *Spiller) flush(list, p int, b []byte) error {
	if _, err := s.file.WriteAt(b, s.size); err != nil {
		s.err = fmt.Errorf("join: writing spill file: %w", err)
		return s.err
	}
	s.blocks[list][p] = append(s.blocks[list][p], block{off: s.size, recs: len(b) / spillRecSize})
	s.size += int64(len(b))
	return nil
}

// createSpillFile creates the file name in dir, with mode 0600, for
// reading and writing.
func createSpillFile(dir, name string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("join: creating spill file: %w", err)
	}
	return f, nil
}

// Join joins the added lists and returns the same [*Result] as [Join]
// called on them with [Options]{Pairwise, Workers} from the Spiller's
// options. Every list must be complete: a list with fewer tokens than
// declared is a [*ListError] wrapping [ErrMissingTokens] (the lowest such
// list). A token repeated within a list is a [*ListError] wrapping
// [ErrDuplicateToken], naming the lowest such list, as from Join.
//
// The partitions are joined one at a time per worker, on up to Workers
// goroutines, all of which have returned when Join returns. Join checks
// ctx before each partition and returns ctx.Err() once it is done. A
// partition larger than its worker's budget (skewed tokens) is split again
// on further token bits, through a temporary file, until its parts fit.
// Join leaves the spill file in place, so it may be called again; Close
// removes it.
func (s *Spiller) Join(ctx context.Context) (*Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return nil, err
	}
	n := len(s.sizes)
	for i, sz := range s.sizes {
		if s.added[i] != uint64(sz) {
			return nil, fmt.Errorf("%w (%d of %d tokens)", &ListError{List: i, Err: ErrMissingTokens}, s.added[i], sz)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	s.joins++
	r := &spillRun{ctx: ctx, s: s, n: n, seq: s.joins, bitmaps: make([][]uint64, n)}
	r.minDup.Store(int64(n))
	for i, sz := range s.sizes {
		r.bitmaps[i] = make([]uint64, (sz+63)/64)
	}
	var tops []spillPart
	for p := range 1 << s.partBits {
		pt := spillPart{file: s.file, counts: make([]int, n), blocks: make([][]block, n), depth: int(s.partBits)}
		empty := true
		for i := range n {
			pt.counts[i] = s.counts[i][p]
			pt.blocks[i] = s.blocks[i][p]
			empty = empty && pt.counts[i] == 0
		}
		if !empty {
			tops = append(tops, pt)
			if total, longest := pt.totals(); partLoad(total, longest) <= s.partBudget {
				r.loadTokens = max(r.loadTokens, total)
			}
		}
	}

	// Each worker joins whole partitions, taken in turn, with its own
	// buffers; the totals are summed when all have returned.
	workers := make([]*spillWorker, min(s.workers, max(len(tops), 1)))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wk := &spillWorker{run: r, id: w, pair: make([]int, n*n)}
		workers[w] = wk
		work := func() {
			for {
				t := int(next.Add(1) - 1)
				if t >= len(tops) || r.stopped() {
					return
				}
				err := wk.process(tops[t])
				if err == nil {
					err = wk.resetScratch()
				}
				if err != nil {
					r.fail(err)
					return
				}
			}
		}
		if len(workers) == 1 {
			work()
		} else {
			wg.Go(work)
		}
	}
	wg.Wait()
	for _, wk := range workers {
		if err := wk.removeScratch(); err != nil {
			r.fail(err)
		}
	}
	s.stats = spillStats{splits: int(r.splits.Load()), maxLoad: r.maxLoad.Load()}
	if r.err != nil {
		return nil, r.err
	}
	if d := int(r.minDup.Load()); d < n {
		return nil, &ListError{List: d, Err: ErrDuplicateToken}
	}

	res := &Result{Positions: make([][]uint32, n)}
	for _, wk := range workers {
		res.Intersection += wk.count
	}
	if s.pairwise {
		res.Pairwise = make([][]int, n)
		flat := make([]int, n*n)
		for i := range n {
			res.Pairwise[i] = flat[i*n : (i+1)*n : (i+1)*n]
		}
		for i := range n {
			res.Pairwise[i][i] = s.sizes[i]
			for j := i + 1; j < n; j++ {
				for _, wk := range workers {
					res.Pairwise[i][j] += wk.pair[i*n+j]
				}
				res.Pairwise[j][i] = res.Pairwise[i][j]
			}
		}
	}
	parallel(s.workers, n, func(i int) {
		out := make([]uint32, 0, res.Intersection)
		if res.Intersection == s.sizes[i] {
			for p := range s.sizes[i] {
				out = append(out, uint32(p))
			}
		} else if res.Intersection > 0 {
			out = appendSetBits(out, r.bitmaps[i])
		}
		res.Positions[i] = out
	})
	return res, nil
}

// Close removes the Spiller's temporary directory and everything in it.
// After Close, Add and Join return [ErrClosed]. Close may be called more
// than once, and after any error; if removing the directory fails, a later
// Close tries again.
func (s *Spiller) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.bufs, s.blocks = nil, nil
	var err error
	if s.file != nil {
		err = s.file.Close()
		s.file = nil
	}
	if s.dir != "" {
		rerr := os.RemoveAll(s.dir)
		if rerr == nil {
			s.dir = ""
		}
		err = errors.Join(err, rerr)
	}
	if err != nil {
		return fmt.Errorf("join: removing spill directory: %w", err)
	}
	return nil
}

// spillRun is the state of one Spiller.Join shared by its workers.
type spillRun struct {
	ctx context.Context
	s   *Spiller // read only during the run
	n   int
	seq int // number of the Join on s, which names its temporary files

	// bitmaps[i] has bit p set when position p of list i is in I; workers
	// set bits with atomic ORs, as partitions share words.
	bitmaps [][]uint64

	// minDup is the lowest list found to hold a duplicate token, n if
	// none: lists from minDup on need no longer be checked.
	minDup atomic.Int64

	stop    atomic.Bool
	errOnce sync.Once
	err     error // set once, read after the workers have returned

	// loadTokens is the number of tokens in the largest top-level
	// partition that fits the budget.
	loadTokens int64

	splits  atomic.Int64
	maxLoad atomic.Int64
}

func (r *spillRun) stopped() bool { return r.stop.Load() }

// fail records the first error of the run and stops the workers.
func (r *spillRun) fail(err error) {
	r.errOnce.Do(func() { r.err = err })
	r.stop.Store(true)
}

// dup records that list holds a duplicate token.
func (r *spillRun) dup(list int) {
	for {
		d := r.minDup.Load()
		if int64(list) >= d || r.minDup.CompareAndSwap(d, int64(list)) {
			break
		}
	}
	if list == 0 {
		r.stop.Store(true) // no lower list can be reported
	}
}

// A spillPart is a partition or, after a split, part of one: for each
// list i, counts[i] records in the blocks blocks[i] of file. All the
// tokens of the part, in every list, share their first depth bits.
type spillPart struct {
	file   *os.File
	blocks [][]block
	counts []int
	depth  int
}

// totals returns the number of tokens in pt and in its longest list.
func (pt *spillPart) totals() (total, longest int64) {
	for _, c := range pt.counts {
		total += int64(c)
		longest = max(longest, int64(c))
	}
	return total, longest
}

// A spillWorker joins partitions one at a time, reusing its buffers, and
// accumulates its share of the totals.
type spillWorker struct {
	run *spillRun
	id  int

	toks []Token  // the loaded partition's tokens, list after list
	pos  []uint32 // their positions in their lists
	recs []rec    // their sort records
	rbuf []byte   // read buffer

	// scratch holds the parts of the partitions this worker split; it is
	// emptied after each partition and removed at the end of the Join.
	scratch     *os.File
	scratchSize int64

	count int   // |I| over the partitions joined
	pair  []int // n×n, upper triangle: pairwise overlaps
}

// process joins pt, splitting it first if it exceeds the budget.
func (w *spillWorker) process(pt spillPart) error {
	r := w.run
	if err := r.ctx.Err(); err != nil {
		return err
	}
	if r.stopped() {
		return nil
	}
	total, longest := pt.totals()
	switch {
	case pt.depth >= tokenBits:
		// Every token of pt is the same: a list holding it twice has a
		// duplicate, and otherwise there are at most n tokens to join.
		for i, c := range pt.counts {
			if c > 1 {
				r.dup(i)
				return nil
			}
		}
	case partLoad(total, longest) > r.s.partBudget:
		return w.split(pt)
	}
	return w.join(pt, total, longest)
}

// join loads pt and joins it in memory: sortList per list (which finds
// duplicates), one n-way merge, and the positions of I into the bitmaps.
func (w *spillWorker) join(pt spillPart, total, longest int64) error {
	r := w.run
	n := r.n
	load := partLoad(total, longest)
	for {
		m := r.maxLoad.Load()
		if load <= m || r.maxLoad.CompareAndSwap(m, load) {
			break
		}
	}
	// Only lists below the lowest known duplicate can change the outcome.
	limit := min(int(r.minDup.Load()), n)
	if cap(w.toks) < int(total) {
		// Sized for the largest partition that fits the budget, so that
		// the buffers are allocated once per worker, not once per
		// partition larger than the ones before (garbage that the
		// collector may leave in place until the heap doubles).
		c := max(total, r.loadTokens)
		w.toks = make([]Token, c)
		w.pos = make([]uint32, c)
		w.recs = make([]rec, c)
	}
	lists := make([][]Token, n)
	pos := make([][]uint32, n)
	recs := make([][]rec, n)
	off := 0
	for i, c := range pt.counts {
		lists[i] = w.toks[off : off+c : off+c]
		pos[i] = w.pos[off : off+c : off+c]
		recs[i] = w.recs[off : off+c : off+c]
		off += c
		if c == 0 || i >= limit {
			continue
		}
		err := w.read(pt.file, pt.blocks[i], func(first int, chunk []byte) {
			for k := range len(chunk) / spillRecSize {
				rec := chunk[k*spillRecSize : (k+1)*spillRecSize]
				copy(lists[i][first+k][:], rec[:TokenSize])
				pos[i][first+k] = binary.LittleEndian.Uint32(rec[TokenSize:])
			}
		})
		if err != nil {
			return err
		}
	}
	for i := range limit {
		if sortList(lists[i], recs[i]) {
			r.dup(i)
			return nil
		}
	}
	if limit < n || r.minDup.Load() < int64(n) {
		return nil // the Join fails with a duplicate; no need to merge
	}
	var m partial
	m.init(n, r.s.pairwise)
	m.merge(lists, recs, make([]int, n), pt.counts)
	w.count += m.count
	for k, v := range m.pair {
		w.pair[k] += v
	}
	if m.count == 0 {
		return nil
	}
	for i := range n {
		bm := r.bitmaps[i]
		for _, rc := range recs[i] {
			if rc.inI {
				p := pos[i][rc.pos]
				atomic.OrUint64(&bm[p/64], 1<<(p%64))
			}
		}
	}
	return nil
}

// read reads the records of blocks of file, a block at a time, calling f
// with the index of the block's first record and the block.
func (w *spillWorker) read(file *os.File, blocks []block, f func(first int, chunk []byte)) error {
	if w.rbuf == nil {
		w.rbuf = make([]byte, readChunkRecs*spillRecSize)
	}
	done := 0
	for _, b := range blocks {
		chunk := w.rbuf[:b.recs*spillRecSize]
		if _, err := file.ReadAt(chunk, b.off); err != nil {
			return fmt.Errorf("join: reading spill file: %w", err)
		}
		f(done, chunk)
		done += b.recs
	}
	return nil
}

// split divides pt, which exceeds the budget, into 256 parts by the 8
// token bits after its first pt.depth, writing each part to the worker's
// scratch file, and processes the parts in turn.
//
// The parts record the common prefix of their tokens (from their least
// and greatest token), so a part that still exceeds the budget is split on
// the first bits on which its tokens differ: each level of splitting
// consumes at least 8 more bits, which bounds the depth by 32 levels
// whatever the tokens, and a part whose tokens are all equal is not split
// (see process). Always splitting 256 ways costs little (the parts are
// joined one after the other with the same buffers) and keeps adversarial
// inputs from peeling off a few tokens per level.
func (w *spillWorker) split(pt spillPart) error {
	r := w.run
	n := r.n
	r.splits.Add(1)
	k := min(maxSplitBits, tokenBits-pt.depth)
	fan := 1 << k
	if w.scratch == nil {
		f, err := createSpillFile(r.s.dir, fmt.Sprintf("split-%d-%d", r.seq, w.id))
		if err != nil {
			return err
		}
		w.scratch = f
	}
	parts := make([]spillPart, fan)
	for c := range parts {
		parts[c] = spillPart{file: w.scratch, counts: make([]int, n), blocks: make([][]block, n)}
	}
	lo := make([]Token, fan)
	hi := make([]Token, fan)
	seen := make([]bool, fan)
	// The loaded-partition buffers are not needed while splitting.
	w.toks, w.pos, w.recs = nil, nil, nil
	bufBytes := int(min(max(r.s.partBudget/int64(2*fan), minWriteRecs*spillRecSize), maxWriteRecs*spillRecSize))
	bufBytes -= bufBytes % spillRecSize
	bufs := make([][]byte, fan)
	write := func(c, list int) error {
		b := bufs[c]
		if _, err := w.scratch.WriteAt(b, w.scratchSize); err != nil {
			return fmt.Errorf("join: writing spill file: %w", err)
		}
		parts[c].blocks[list] = append(parts[c].blocks[list], block{off: w.scratchSize, recs: len(b) / spillRecSize})
		w.scratchSize += int64(len(b))
		bufs[c] = b[:0]
		return nil
	}
	for i, count := range pt.counts {
		if count == 0 {
			continue
		}
		var werr error
		err := w.read(pt.file, pt.blocks[i], func(_ int, chunk []byte) {
			for off := 0; off < len(chunk) && werr == nil; off += spillRecSize {
				rec := chunk[off : off+spillRecSize]
				t := (*Token)(rec[:TokenSize])
				c := prefixBits(t, pt.depth, k)
				if !seen[c] {
					seen[c], lo[c], hi[c] = true, *t, *t
				} else if bytes.Compare(t[:], lo[c][:]) < 0 {
					lo[c] = *t
				} else if bytes.Compare(t[:], hi[c][:]) > 0 {
					hi[c] = *t
				}
				parts[c].counts[i]++
				if bufs[c] == nil {
					bufs[c] = make([]byte, 0, bufBytes)
				}
				bufs[c] = append(bufs[c], rec...)
				if len(bufs[c]) == bufBytes {
					werr = write(c, i)
				}
			}
		})
		for c := range bufs {
			if err == nil && werr == nil && len(bufs[c]) > 0 {
				werr = write(c, i)
			}
		}
		if err == nil {
			err = werr
		}
		if err != nil {
			return fmt.Errorf("join: splitting partition: %w", err)
		}
	}
	bufs = nil
	for c := range parts {
		if !seen[c] {
			continue
		}
		parts[c].depth = commonPrefixBits(&lo[c], &hi[c])
		if err := w.process(parts[c]); err != nil {
			return err
		}
	}
	return nil
}

// resetScratch empties the scratch file once the partition whose parts it
// holds is joined.
func (w *spillWorker) resetScratch() error {
	if w.scratchSize == 0 {
		return nil
	}
	if err := w.scratch.Truncate(0); err != nil {
		return fmt.Errorf("join: truncating spill file: %w", err)
	}
	w.scratchSize = 0
	return nil
}

// removeScratch removes the scratch file, if any.
func (w *spillWorker) removeScratch() error {
	if w.scratch == nil {
		return nil
	}
	err := errors.Join(w.scratch.Close(), os.Remove(w.scratch.Name()))
	w.scratch = nil
	if err != nil {
		return fmt.Errorf("join: removing spill file: %w", err)
	}
	return nil
}

// prefixBits returns bits [d, d+k) of t read as a big-endian bit string,
// for k <= 8; bits past the end of t read as 0.
func prefixBits(t *Token, d, k int) int {
	i := d / 8
	v := uint(t[i]) << 8
	if i+1 < TokenSize {
		v |= uint(t[i+1])
	}
	return int(v>>(16-d%8-k)) & (1<<k - 1)
}

// commonPrefixBits returns the number of leading bits a and b share.
func commonPrefixBits(a, b *Token) int {
	for i := range TokenSize {
		if x := a[i] ^ b[i]; x != 0 {
			return 8*i + bits.LeadingZeros8(x)
		}
	}
	return tokenBits
}
