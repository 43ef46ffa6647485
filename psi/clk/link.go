package clk

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

// Record is one CLK: the party's index (0-based, in the order the sets are
// given) and the CLK's position in that party's set.
type Record struct {
	Party, Index int
}

// Group is a set of records the linker believes describe one entity: at most
// one record per party, sorted by party.
type Group []Record

// Candidate is a pair of records from two different parties whose Dice
// similarity reached the threshold. A.Party < B.Party.
type Candidate struct {
	Sim  float64
	A, B Record
}

// Blocking selects how candidate pairs are found.
type Blocking int

const (
	// BlockingAuto compares every pair (BlockingNone) when two parties'
	// sets are small (at most 2^26 pairs), and uses BlockingLSH otherwise.
	BlockingAuto Blocking = iota
	// BlockingNone compares every cross-party pair whose popcounts allow a
	// Dice coefficient at the threshold: exact, and quadratic.
	BlockingNone
	// BlockingLSH compares only pairs that agree on all sampled bit
	// positions of at least one band (Hamming locality-sensitive hashing by
	// bit sampling). Its cost grows with the set sizes, not their product;
	// it misses a pair at the threshold with a probability set by
	// LinkOptions.TargetRecall (see [LinkOptions]).
	BlockingLSH
)

// LinkOptions configures [Link].
type LinkOptions struct {
	// Threshold is the Dice similarity a pair needs to be a candidate, in
	// (0, 1]. Pairs with similarity >= Threshold qualify, as in anonlink.
	Threshold float64
	Blocking  Blocking
	// BandBits is the number of bit positions sampled per LSH band; 0 picks
	// ceil(log2(largest set)), at least 8, so that two unrelated CLKs
	// (agreeing on about half their bits) share a band key about once per
	// record.
	BandBits int
	// Bands is the number of LSH bands; 0 derives it from TargetRecall.
	Bands int
	// TargetRecall is the probability, under the bit-sampling model, that a
	// pair with Dice exactly Threshold and the mean popcount shares at least
	// one band; pairs above the threshold are found more often. 0 means
	// 0.99.
	TargetRecall float64
	// MaxBands caps the derived number of bands (0 means 512); when the cap
	// binds, Stats.EstimatedRecall says what recall remains.
	MaxBands int
	// Seed chooses the sampled positions. It is a public parameter (the
	// positions are no secret); a fixed seed makes linking deterministic.
	Seed uint64
	// Workers is the number of goroutines searching candidates (0:
	// GOMAXPROCS). The result does not depend on it.
	Workers int
}

// LinkStats describes the work [Link] did.
type LinkStats struct {
	// Comparisons is the number of Dice coefficients computed (a pair that
	// collides in several bands is counted each time).
	Comparisons int64
	// Candidates is the number of distinct pairs at or above the threshold.
	Candidates int
	// Bands and BandBits are the LSH parameters used (0 without LSH).
	Bands, BandBits int
	// EstimatedRecall is the bit-sampling model's probability of finding a
	// pair at exactly the threshold (1 without LSH).
	EstimatedRecall float64
}

// Result is the outcome of [Link].
type Result struct {
	Groups []Group
	Stats  LinkStats
}

// ErrLink is wrapped by errors about linker inputs.
var ErrLink = errors.New("clk: invalid link input")

// Link finds candidate pairs across the parties' CLK sets and groups them
// with anonlink's greedy solver rule: candidates are taken in decreasing
// similarity (ties by party, then position); two groups are merged when the
// pair just taken completes every cross pair between them (all are
// candidates, none weaker than it), so each group is a clique of candidates
// with at most one record per party. Groups of one record are not returned.
// The result is deterministic and sorted by first member.
func Link(ctx context.Context, parties []*Set, opt LinkOptions) (*Result, error) {
	cands, stats, err := FindCandidates(ctx, parties, opt)
	if err != nil {
		return nil, err
	}
	sizes := make([]int, len(parties))
	for i, p := range parties {
		sizes[i] = p.Len()
	}
	groups, err := Solve(sizes, cands)
	if err != nil {
		return nil, err
	}
	return &Result{Groups: groups, Stats: stats}, nil
}

// FindCandidates returns the distinct candidate pairs, sorted by decreasing
// similarity, then (A.Party, B.Party, A.Index, B.Index): the order [Solve]
// takes them in.
func FindCandidates(ctx context.Context, parties []*Set, opt LinkOptions) ([]Candidate, LinkStats, error) {
	var st LinkStats
	if len(parties) < 2 {
		return nil, st, fmt.Errorf("%w: %d parties, need at least 2", ErrLink, len(parties))
	}
	if !(opt.Threshold > 0 && opt.Threshold <= 1) {
		return nil, st, fmt.Errorf("%w: threshold must be in (0, 1]", ErrLink)
	}
	for i, p := range parties {
		if p == nil {
			return nil, st, fmt.Errorf("%w: party %d has no set", ErrLink, i)
		}
		if p.bits != parties[0].bits {
			return nil, st, fmt.Errorf("%w: party %d has %d-bit CLKs, party 0 has %d-bit", ErrLink, i, p.bits, parties[0].bits)
		}
	}
	var lsh *lshPlan
	maxPairs := 0
	for a := range parties {
		for b := a + 1; b < len(parties); b++ {
			maxPairs = max(maxPairs, parties[a].Len()*parties[b].Len())
		}
	}
	switch opt.Blocking {
	case BlockingLSH:
		lsh = planLSH(parties, opt)
	case BlockingAuto:
		if maxPairs > 1<<26 {
			lsh = planLSH(parties, opt)
		}
	case BlockingNone:
	default:
		return nil, st, fmt.Errorf("%w: unknown blocking %d", ErrLink, opt.Blocking)
	}
	var out []Candidate
	var err error
	st.EstimatedRecall = 1
	if lsh == nil {
		out, err = exhaustive(ctx, parties, opt.Threshold, workers(opt.Workers), &st)
	} else {
		st.Bands, st.BandBits, st.EstimatedRecall = len(lsh.positions), lsh.bandBits, lsh.recall
		out, err = lsh.run(ctx, parties, opt.Threshold, workers(opt.Workers), &st)
	}
	if err != nil {
		return nil, st, err
	}
	slices.SortFunc(out, compareCandidates)
	out = slices.CompactFunc(out, func(x, y Candidate) bool { return x.A == y.A && x.B == y.B })
	st.Candidates = len(out)
	return out, st, nil
}

func compareCandidates(x, y Candidate) int {
	if x.Sim != y.Sim {
		if x.Sim > y.Sim {
			return -1
		}
		return 1
	}
	return cmp.Or(cmp.Compare(x.A.Party, y.A.Party), cmp.Compare(x.B.Party, y.B.Party),
		cmp.Compare(x.A.Index, y.A.Index), cmp.Compare(x.B.Index, y.B.Index))
}

// mayReach is the popcount filter: Dice <= 2 min(pa,pb) / (pa+pb), computed
// in the same float64 arithmetic as the coefficient, so a pair it rejects
// cannot reach the threshold.
func mayReach(pa, pb uint32, t float64) bool {
	if pa+pb == 0 {
		return false
	}
	return float64(2*min(pa, pb))/float64(pa+pb) >= t
}

func workers(n int) int {
	if n <= 0 {
		return runtime.GOMAXPROCS(0)
	}
	return n
}

// parallel runs task(w, i) for i in [0, n) on up to nw goroutines, w being
// the goroutine's index (for its own buffers). It stops at the first error
// or when ctx is done.
func parallel(ctx context.Context, nw, n int, task func(w, i int) error) error {
	nw = max(1, min(nw, n))
	var next atomic.Int64
	errs := make([]error, nw)
	var wg sync.WaitGroup
	for w := range nw {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := ctx.Err(); err != nil {
					errs[w] = err
					return
				}
				if err := task(w, i); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// scanState is one goroutine's output and scratch.
type scanState struct {
	out         []Candidate
	hits        []int32
	comparisons int64
	keys        [][]uint64
	seen        map[[4]int32]struct{}
}

func gather(states []scanState, st *LinkStats) []Candidate {
	var out []Candidate
	for i := range states {
		out = append(out, states[i].out...)
		st.Comparisons += states[i].comparisons
	}
	return out
}

// sortedParty is a party's CLKs copied in popcount order, so that the
// records in a popcount window are one contiguous run of memory.
type sortedParty struct {
	order []int32
	pops  []uint32
	data  []uint64
}

func sortByPopcount(b *Set) sortedParty {
	order := make([]int32, b.Len())
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(x, y int32) int { return cmp.Compare(b.pop[x], b.pop[y]) })
	w := b.words
	sp := sortedParty{order: order, pops: make([]uint32, len(order)), data: make([]uint64, len(order)*w)}
	for k, j := range order {
		sp.pops[k] = b.pop[j]
		copy(sp.data[k*w:(k+1)*w], b.clk(int(j)))
	}
	return sp
}

// exhaustive compares, for every pair of parties, each record with the
// other party's records in the popcount window that can reach t.
func exhaustive(ctx context.Context, parties []*Set, t float64, nw int, st *LinkStats) ([]Candidate, error) {
	sorted := make([]sortedParty, len(parties))
	for pb := 1; pb < len(parties); pb++ {
		sorted[pb] = sortByPopcount(parties[pb])
	}
	type chunk struct{ pa, pb, lo, hi int }
	const chunkLen = 512
	var chunks []chunk
	for pb := 1; pb < len(parties); pb++ {
		for pa := 0; pa < pb; pa++ {
			for lo := 0; lo < parties[pa].Len(); lo += chunkLen {
				chunks = append(chunks, chunk{pa, pb, lo, min(lo+chunkLen, parties[pa].Len())})
			}
		}
	}
	states := make([]scanState, nw)
	err := parallel(ctx, nw, len(chunks), func(wi, ci int) error {
		c, ws := chunks[ci], &states[wi]
		a, b := parties[c.pa], &sorted[c.pb]
		w := a.words
		pops, data := b.pops, b.data
		for i := c.lo; i < c.hi; i++ {
			p := a.pop[i]
			if p == 0 {
				continue
			}
			// The window of popcounts that can reach t, found with the
			// exact filter.
			lo := sort.Search(len(pops), func(k int) bool { return pops[k] >= p || mayReach(p, pops[k], t) })
			hi := sort.Search(len(pops), func(k int) bool { return pops[k] > p && !mayReach(p, pops[k], t) })
			ci := a.clk(i)
			ws.comparisons += int64(hi - lo)
			// A pair can reach t only if 2c >= t(p+q); the scan tests
			// that with a margin, then the exact float64 coefficient
			// anonlink computes decides.
			tm := t * (1 - 1e-9)
			if w == 16 {
				ws.hits = scan16((*[16]uint64)(ci), data, pops, lo, hi, p, tm, ws.hits[:0])
			} else {
				ws.hits = ws.hits[:0]
				for k := lo; k < hi; k++ {
					if float64(2*andCount(ci, data[k*w:(k+1)*w])) >= tm*float64(p+pops[k]) {
						ws.hits = append(ws.hits, int32(k))
					}
				}
			}
			for _, k := range ws.hits {
				q := pops[k]
				cnt := andCount(ci, data[int(k)*w:(int(k)+1)*w])
				if sim := float64(2*cnt) / float64(p+q); sim >= t {
					ws.out = append(ws.out, Candidate{Sim: sim, A: Record{c.pa, i}, B: Record{c.pb, int(b.order[k])}})
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return gather(states, st), nil
}

// scan16 is the exhaustive inner loop for 1024-bit CLKs: the CLK a against
// data[lo:hi] (16 words each), returning the positions k where
// 2|a∧b_k| >= tm·(p+pops[k]). Both operands are read from memory and summed
// in four independent chains: in Go's portable amd64 build (GOAMD64=v1)
// every popcount is guarded by a CPU-feature branch with a call on its slow
// path, and values kept in registers across it are spilled.
func scan16(a *[16]uint64, data []uint64, pops []uint32, lo, hi int, p uint32, tm float64, hits []int32) []int32 {
	for k := lo; k < hi; k++ {
		d := (*[16]uint64)(data[k*16 : k*16+16])
		c0 := bits.OnesCount64(a[0]&d[0]) + bits.OnesCount64(a[4]&d[4]) + bits.OnesCount64(a[8]&d[8]) + bits.OnesCount64(a[12]&d[12])
		c1 := bits.OnesCount64(a[1]&d[1]) + bits.OnesCount64(a[5]&d[5]) + bits.OnesCount64(a[9]&d[9]) + bits.OnesCount64(a[13]&d[13])
		c2 := bits.OnesCount64(a[2]&d[2]) + bits.OnesCount64(a[6]&d[6]) + bits.OnesCount64(a[10]&d[10]) + bits.OnesCount64(a[14]&d[14])
		c3 := bits.OnesCount64(a[3]&d[3]) + bits.OnesCount64(a[7]&d[7]) + bits.OnesCount64(a[11]&d[11]) + bits.OnesCount64(a[15]&d[15])
		if float64(2*((c0+c1)+(c2+c3))) >= tm*float64(p+pops[k]) {
			hits = append(hits, int32(k))
		}
	}
	return hits
}

type lshPlan struct {
	bandBits  int
	positions [][]int
	recall    float64
}

func planLSH(parties []*Set, opt LinkOptions) *lshPlan {
	L := parties[0].bits
	n, total, sum := 0, 0, 0.0
	for _, p := range parties {
		n = max(n, p.Len())
		for _, c := range p.pop {
			sum += float64(c)
		}
		total += p.Len()
	}
	r := opt.BandBits
	if r <= 0 {
		r = max(8, bits.Len(uint(max(n-1, 1))))
	}
	// A band key and a record position share one uint64.
	r = min(r, 64-bits.Len(uint(max(n-1, 1))), L)
	target := opt.TargetRecall
	if target <= 0 || target >= 1 {
		target = 0.99
	}
	maxBands := opt.MaxBands
	if maxBands <= 0 {
		maxBands = 512
	}
	// A pair with popcounts P and Dice t differs in 2P(1-t) of L bits; a
	// uniformly sampled position agrees with probability 1 - 2P(1-t)/L.
	mean := 0.0
	if total > 0 {
		mean = sum / float64(total)
	}
	agree := math.Max(1e-9, 1-2*mean*(1-opt.Threshold)/float64(L))
	q := math.Pow(agree, float64(r)) // one band collides
	bands := opt.Bands
	if bands <= 0 {
		if q >= 1 {
			bands = 1
		} else {
			bands = int(math.Ceil(math.Log(1-target) / math.Log1p(-q)))
			bands = max(1, min(bands, maxBands))
		}
	}
	rng := rand.New(rand.NewChaCha8(seedBytes(opt.Seed))) // public sampling, deterministic by design
	plan := &lshPlan{bandBits: r, recall: 1 - math.Pow(1-q, float64(bands))}
	pool := informativeBits(parties)
	if len(pool) < 2*r {
		pool = make([]int, L)
		for i := range pool {
			pool[i] = i
		}
	}
	for range bands {
		perm := rng.Perm(len(pool))[:r]
		pos := make([]int, r)
		for k, x := range perm {
			pos[k] = pool[x]
		}
		plan.positions = append(plan.positions, pos)
	}
	return plan
}

// informativeBits returns the positions set in between a quarter and three
// quarters of the CLKs (counted on up to 16384 CLKs per party). A bit set in
// nearly every record (a common bigram, a frequent value such as a sex
// code) agrees between unrelated records almost as often as between
// matches, so sampling it only fills buckets.
func informativeBits(parties []*Set) []int {
	L := parties[0].bits
	counts := make([]int, L)
	total := 0
	for _, p := range parties {
		step := max(1, p.Len()/16384)
		for i := 0; i < p.Len(); i += step {
			total++
			for w, x := range p.clk(i) {
				for x != 0 {
					b := bits.LeadingZeros64(x)
					counts[w*64+b]++
					x &^= 1 << (63 - uint(b))
				}
			}
		}
	}
	var out []int
	for i, c := range counts {
		if 4*c >= total && 4*c <= 3*total {
			out = append(out, i)
		}
	}
	return out
}

func seedBytes(s uint64) [32]byte {
	var b [32]byte
	copy(b[:], "mpsi clk lsh band positions v1\x00\x00")
	for i := 0; i < 8; i++ {
		b[24+i] ^= byte(s >> (8 * i))
	}
	return b
}

// run samples each band's positions from every CLK into a key, sorts each
// party's (key, position) pairs packed in one uint64, and compares the
// records of two parties that share a key. Bands run in parallel; a pair
// that collides in several bands is compared each time but reported once
// per goroutine (FindCandidates removes the rest).
func (pl *lshPlan) run(ctx context.Context, parties []*Set, t float64, nw int, st *LinkStats) ([]Candidate, error) {
	n := 0
	for _, p := range parties {
		n = max(n, p.Len())
	}
	idxBits := uint(bits.Len(uint(max(n-1, 1))))
	mask := uint64(1)<<idxBits - 1
	states := make([]scanState, nw)
	err := parallel(ctx, nw, len(pl.positions), func(wi, band int) error {
		ws := &states[wi]
		if ws.keys == nil {
			ws.keys = make([][]uint64, len(parties))
			ws.seen = map[[4]int32]struct{}{}
		}
		pos := pl.positions[band]
		for p, s := range parties {
			ks := ws.keys[p][:0]
			for i := 0; i < s.Len(); i++ {
				c := s.clk(i)
				var k uint64
				for _, b := range pos {
					k = k<<1 | (c[b>>6]>>(63-uint(b&63)))&1
				}
				ks = append(ks, k<<idxBits|uint64(i))
			}
			slices.Sort(ks)
			ws.keys[p] = ks
		}
		for pa := range parties {
			for pb := pa + 1; pb < len(parties); pb++ {
				ka, kb := ws.keys[pa], ws.keys[pb]
				a, b := parties[pa], parties[pb]
				i, j := 0, 0
				for i < len(ka) && j < len(kb) {
					x, y := ka[i]>>idxBits, kb[j]>>idxBits
					switch {
					case x < y:
						i++
						continue
					case x > y:
						j++
						continue
					}
					ie, je := i, j
					for ie < len(ka) && ka[ie]>>idxBits == x {
						ie++
					}
					for je < len(kb) && kb[je]>>idxBits == x {
						je++
					}
					for _, u := range ka[i:ie] {
						iu := int(u & mask)
						pu, cu := a.pop[iu], a.clk(iu)
						for _, v := range kb[j:je] {
							iv := int(v & mask)
							pv := b.pop[iv]
							if !mayReach(pu, pv, t) {
								continue
							}
							ws.comparisons++
							sim := float64(2*andCount(cu, b.clk(iv))) / float64(pu+pv)
							if sim < t {
								continue
							}
							id := [4]int32{int32(pa), int32(pb), int32(iu), int32(iv)}
							if _, dup := ws.seen[id]; dup {
								continue
							}
							ws.seen[id] = struct{}{}
							ws.out = append(ws.out, Candidate{Sim: sim, A: Record{pa, iu}, B: Record{pb, iv}})
						}
					}
					i, j = ie, je
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return gather(states, st), nil
}

// Solve groups candidates (in the order [FindCandidates] returns them) by
// the greedy rule described at [Link]. sizes[p] is party p's set size.
func Solve(sizes []int, cands []Candidate) ([]Group, error) {
	groupOf := make([][]int32, len(sizes))
	for p, n := range sizes {
		groupOf[p] = make([]int32, n)
		for i := range groupOf[p] {
			groupOf[p][i] = -1
		}
	}
	var members [][]Record
	var edges []map[int32]int32 // processed candidate pairs between groups
	newGroup := func(rs ...Record) int32 {
		g := int32(len(members))
		members = append(members, rs)
		edges = append(edges, nil)
		for _, r := range rs {
			groupOf[r.Party][r.Index] = g
		}
		return g
	}
	addEdge := func(x, y, c int32) {
		if edges[x] == nil {
			edges[x] = map[int32]int32{}
		}
		if edges[y] == nil {
			edges[y] = map[int32]int32{}
		}
		edges[x][y] += c
		edges[y][x] += c
	}
	for _, c := range cands {
		a, b := c.A, c.B
		if a.Party == b.Party || a.Party < 0 || b.Party < 0 || a.Party >= len(sizes) || b.Party >= len(sizes) ||
			a.Index < 0 || b.Index < 0 || a.Index >= sizes[a.Party] || b.Index >= sizes[b.Party] {
			return nil, fmt.Errorf("%w: candidate %v–%v outside the sets or within one party", ErrLink, a, b)
		}
		ga, gb := groupOf[a.Party][a.Index], groupOf[b.Party][b.Index]
		if ga < 0 && gb >= 0 {
			a, b, ga, gb = b, a, gb, ga
		}
		switch {
		case ga < 0: // neither grouped yet
			newGroup(a, b)
		case gb < 0: // a grouped, b not
			if len(members[ga]) == 1 {
				members[ga] = append(members[ga], b)
				groupOf[b.Party][b.Index] = ga
			} else {
				addEdge(newGroup(b), ga, 1)
			}
		case ga == gb:
		default:
			n := edges[ga][gb] + 1
			if int(n) != len(members[ga])*len(members[gb]) || !disjointParties(members[ga], members[gb]) {
				addEdge(ga, gb, 1)
				continue
			}
			big, small := ga, gb
			if len(members[big]) < len(members[small]) {
				big, small = small, big
			}
			for _, r := range members[small] {
				groupOf[r.Party][r.Index] = big
			}
			members[big] = append(members[big], members[small]...)
			members[small] = nil
			delete(edges[big], small)
			for j, cnt := range edges[small] {
				if j == big {
					continue
				}
				delete(edges[j], small)
				addEdge(big, j, cnt)
			}
			edges[small] = nil
		}
	}
	var out []Group
	for _, m := range members {
		if len(m) < 2 {
			continue
		}
		g := Group(slices.Clone(m))
		slices.SortFunc(g, func(x, y Record) int { return cmp.Or(cmp.Compare(x.Party, y.Party), cmp.Compare(x.Index, y.Index)) })
		out = append(out, g)
	}
	slices.SortFunc(out, func(x, y Group) int {
		return cmp.Or(cmp.Compare(x[0].Party, y[0].Party), cmp.Compare(x[0].Index, y[0].Index))
	})
	return out, nil
}

func disjointParties(x, y []Record) bool {
	for _, a := range x {
		for _, b := range y {
			if a.Party == b.Party {
				return false
			}
		}
	}
	return true
}
