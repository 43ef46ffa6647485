package join

import "slices"

// partial is the result of merging one key range of the sorted lists. The
// records of the range's tokens in I are marked with inI; ranges are
// disjoint, so concurrent merges of different ranges write different
// records.
type partial struct {
	count int   // tokens of the range present in all lists
	pair  []int // n×n, upper triangle: overlaps of lists i < j; nil if not asked
}

func (m *partial) init(n int, pairwise bool) {
	if pairwise {
		m.pair = make([]int, n*n)
	}
}

// merge runs the n-way merge of the sorted records recs[i][start[i]:end[i]]
// (one key range). It writes only records of that range.
//
// At each step it finds the smallest head token and the set of lists whose
// head equals it (members), counts it in I if every list is a member,
// counts it for every pair of members, and advances the members. Without a
// pairwise matrix it stops as soon as one list is exhausted.
func (m *partial) merge(lists [][]Token, recs [][]rec, start, end []int) {
	n := len(lists)
	heads := slices.Clone(start)
	ends := end
	for i := range n {
		if !m.pairwise() && heads[i] == ends[i] {
			return // I has no element in this range
		}
	}
	if n == 1 {
		m.count = ends[0] - heads[0]
		for k := heads[0]; k < ends[0]; k++ {
			recs[0][k].inI = true
		}
		return
	}
	if n == 2 && !m.pairwise() {
		m.merge2(lists, recs, heads, ends)
		return
	}
	members := make([]int, 0, n)
	for {
		members = members[:0]
		var (
			minList []Token
			minRec  rec
		)
		for i := range n {
			if heads[i] == ends[i] {
				if !m.pairwise() {
					return
				}
				continue
			}
			r := recs[i][heads[i]]
			if len(members) == 0 {
				members, minList, minRec = append(members, i), lists[i], r
				continue
			}
			switch c := cmpRec(lists[i], r, minList, minRec); {
			case c < 0:
				members, minList, minRec = append(members[:0], i), lists[i], r
			case c == 0:
				members = append(members, i)
			}
		}
		if len(members) == 0 {
			return
		}
		if len(members) == n {
			m.count++
			for i := range n {
				recs[i][heads[i]].inI = true
			}
		}
		if m.pair != nil {
			for a, i := range members {
				row := m.pair[i*n : (i+1)*n]
				for _, j := range members[a+1:] {
					row[j]++
				}
			}
		}
		for _, i := range members {
			heads[i]++
		}
	}
}

// merge2 is merge for two lists without a pairwise matrix.
func (m *partial) merge2(lists [][]Token, recs [][]rec, heads, ends []int) {
	la, lb := lists[0], lists[1]
	ra, rb := recs[0][heads[0]:ends[0]], recs[1][heads[1]:ends[1]]
	i, j := 0, 0
	for i < len(ra) && j < len(rb) {
		switch c := cmpRec(la, ra[i], lb, rb[j]); {
		case c < 0:
			i++
		case c > 0:
			j++
		default:
			m.count++
			ra[i].inI = true
			rb[j].inI = true
			i++
			j++
		}
	}
}

func (m *partial) pairwise() bool { return m.pair != nil }

// searchKey returns the index of the first record in r whose key is >= k.
func searchKey(r []rec, k uint64) int {
	i, _ := slices.BinarySearchFunc(r, k, func(x rec, k uint64) int {
		switch {
		case x.key < k:
			return -1
		case x.key > k:
			return 1
		}
		return 0
	})
	return i
}
