package session_test

import (
	"fmt"
	"math/big"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/psi/session"
)

// disclosureSpec has every kind of released object whose cells relate:
// pairwise cells and |I|, a histogram and a mean over the same field and
// party (the mean's contributions are the histogram's total), a count_if
// and a count over the same field and party.
func disclosureSpec(t testing.TB, minCell int) *session.Layout {
	t.Helper()
	s, err := session.ParseSpec(fmt.Appendf(nil, `{"id":"disclosure","parties":["a","b","c"],
"fields":{"n":"name","age":"number","dx":"codes"},"match":{"fields":["n"]},
"reveal":["cardinality","pairwise","aggregates"],
"aggregates":[{"name":"shared","kind":"count"},
{"name":"age","kind":"mean","field":"age","from":["a"],"min":0,"max":130},
{"name":"bands","kind":"histogram","field":"age","from":["a"],"edges":[0,18,40,65,130]},
{"name":"dx","kind":"count","field":"dx","from":["b"]},
{"name":"diabetes","kind":"count_if","field":"dx","contains":"E11","from":["b"]}],
"min_cell":%d}`, minCell))
	require.NoError(t, err)
	l, err := session.NewLayout(s)
	require.NoError(t, err)
	return l
}

// cells are the true counts behind one release of disclosureSpec.
type cells struct {
	inter    int
	pairwise [3]int // P_ab, P_ac, P_bc
	bins     [4]int
	dx, diab int // records of b with codes, of which with E11
}

// vector is the summed aggregate vector of disclosureSpec: shared | age Σ,#
// | bands ×4 | dx | diabetes.
func (c cells) vector() []uint64 {
	total := 0
	for _, b := range c.bins {
		total += b
	}
	v := []uint64{uint64(c.inter), uint64(40 * total), uint64(total)}
	for _, b := range c.bins {
		v = append(v, uint64(b))
	}
	return append(v, uint64(c.dx), uint64(c.diab))
}

func (c cells) matrix() [][]int {
	return [][]int{{500, c.pairwise[0], c.pairwise[1]}, {c.pairwise[0], 400, c.pairwise[2]}, {c.pairwise[1], c.pairwise[2], 300}}
}

// The cases of issue 12, each now suppressed.
func TestComplementarySuppression(t *testing.T) {
	l := disclosureSpec(t, 10)
	base := cells{inter: 40, pairwise: [3]int{60, 55, 70}, bins: [4]int{0, 12, 20, 8}, dx: 40, diab: 25}
	release := func(c cells) *session.Result {
		r, err := l.Release(c.inter, c.matrix(), c.vector())
		require.NoError(t, err)
		return r
	}
	get := func(r *session.Result, name string) session.AggregateResult {
		a, ok := r.Aggregates.Get(name)
		require.True(t, ok)
		return a
	}

	// A bin of 8 against the mean's 40 contributions: the smallest other
	// non-zero bin (12) goes too, so 40 − 0 − 20 gives only 8 + 12.
	r := release(base)
	b := get(r, "bands")
	require.Equal(t, []*int64{ptr(0), nil, ptr(20), nil}, b.Counts)
	require.Equal(t, int64(40), *get(r, "age").Contributions)

	// A∩B∖C = P_ab − |I| = 3: P_ab is suppressed, P_ac (15 over |I|) is not.
	c := base
	c.pairwise[0] = 43
	r = release(c)
	require.Nil(t, r.Pairwise[0][1])
	require.Nil(t, r.Pairwise[1][0])
	require.Equal(t, int64(55), *r.Pairwise[0][2])

	// count_if of 37 among the 40 records with codes: "all but 3" is a
	// small cell; so is 38 of |I| = 40 with no count over the codes.
	c = base
	c.diab = 37
	require.True(t, get(release(c), "diabetes").Suppressed)
	c.diab = 29
	require.Equal(t, "29", get(release(c), "diabetes").Value.String(), "11 without E11 is not small")
	c.dx, c.diab = 39, 38
	require.True(t, get(release(c), "diabetes").Suppressed, "40 − 38 = 2 against |I|")

	// A histogram whose total is small is suppressed whole.
	c = base
	c.bins = [4]int{0, 9, 0, 0}
	b = get(release(c), "bands")
	require.True(t, b.Suppressed)
	require.Equal(t, []*int64{nil, nil, nil, nil}, b.Counts)
}

// TestMembershipSuppressed is in psi/protocol (the party's own Result).

func ptr(v int64) *int64 { return &v }

// FuzzReleaseNoDerivableSmallCell releases random counts and checks, by
// linear algebra over everything the Result reveals (released values, and
// the relations every reader knows: P_ij − |I| is A∩B∖C, the bins sum to
// the mean's contributions, the count_if and its complement sum to the
// count over the same field), that no quantity whose true value is small
// (0 < v < min_cell) is determined by the released ones, that suppressed
// bins are never small together, and that a released count_if is not
// within min_cell of |I|.
func FuzzReleaseNoDerivableSmallCell(f *testing.F) {
	f.Add(uint8(10), uint8(40), uint8(20), uint8(3), uint8(30), uint8(0), uint8(12), uint8(20), uint8(8), uint8(0), uint8(25))
	f.Add(uint8(5), uint8(4), uint8(0), uint8(0), uint8(0), uint8(1), uint8(1), uint8(1), uint8(1), uint8(1), uint8(1))
	f.Add(uint8(3), uint8(200), uint8(1), uint8(2), uint8(2), uint8(2), uint8(1), uint8(1), uint8(100), uint8(3), uint8(198))
	f.Add(uint8(11), uint8(0), uint8(5), uint8(15), uint8(4), uint8(0), uint8(0), uint8(0), uint8(0), uint8(0), uint8(0))
	f.Fuzz(func(t *testing.T, m, inter, d0, d1, d2, b0, b1, b2, b3, miss, diab uint8) {
		minCell := 1 + int(m)%30
		c := cells{inter: int(inter), pairwise: [3]int{int(inter) + int(d0), int(inter) + int(d1), int(inter) + int(d2)},
			bins: [4]int{int(b0), int(b1), int(b2), int(b3)}}
		total := c.bins[0] + c.bins[1] + c.bins[2] + c.bins[3]
		c.inter = max(c.inter, total) // a's records with an age are among I
		for k := range c.pairwise {
			c.pairwise[k] = max(c.pairwise[k], c.inter)
		}
		c.dx = max(0, c.inter-int(miss)) // b's records with codes
		c.diab = min(int(diab), c.dx)
		l := disclosureSpec(t, minCell)
		r, err := l.Release(c.inter, c.matrix(), c.vector())
		require.NoError(t, err)
		checkNoDerivableSmallCell(t, r, c, minCell)
	})
}

// Unknowns of the attacker's linear system.
const (
	vI = iota
	vPab
	vPac
	vPbc
	vB0 // four bins
	vT  = vB0 + 4
	vDx = vT + 1
	vK  = vDx + 1
	nv  = vK + 1
)

func checkNoDerivableSmallCell(t *testing.T, r *session.Result, c cells, minCell int) {
	t.Helper()
	small := func(v int) bool { return v > 0 && v < minCell }
	var rows [][]int64
	unit := func(k int) []int64 { v := make([]int64, nv); v[k] = 1; return v }
	known := func(k int) { rows = append(rows, unit(k)) }
	// Relations every reader knows.
	sumBins := make([]int64, nv)
	for k := range 4 {
		sumBins[vB0+k] = 1
	}
	sumBins[vT] = -1
	rows = append(rows, sumBins)
	// What the Result releases.
	if r.Intersection != nil {
		known(vI)
	}
	for k, ij := range [][2]int{{0, 1}, {0, 2}, {1, 2}} {
		if r.Pairwise[ij[0]][ij[1]] != nil {
			known(vPab + k)
		}
	}
	agg := func(name string) session.AggregateResult { a, _ := r.Aggregates.Get(name); return a }
	if agg("shared").Value != nil {
		known(vI)
	}
	if agg("age").Contributions != nil {
		known(vT)
	}
	bands := agg("bands")
	var supSum, supN int
	for k, b := range bands.Counts {
		if b != nil {
			require.False(t, small(int(*b)), "released bin %d is small", k)
			known(vB0 + k)
		} else {
			supSum += c.bins[k]
			supN++
		}
	}
	if agg("dx").Value != nil {
		known(vDx)
	}
	if agg("diabetes").Value != nil {
		known(vK)
	}

	// The quantities that must not be determined when small.
	type quantity struct {
		name  string
		coef  map[int]int64
		value int
	}
	qs := []quantity{
		{"|I|", map[int]int64{vI: 1}, c.inter},
		{"count_if", map[int]int64{vK: 1}, c.diab},
		{"count_if complement", map[int]int64{vDx: 1, vK: -1}, c.dx - c.diab},
		{"count over codes", map[int]int64{vDx: 1}, c.dx},
		{"histogram total", map[int]int64{vT: 1}, c.bins[0] + c.bins[1] + c.bins[2] + c.bins[3]},
	}
	for k, name := range []string{"P_ab", "P_ac", "P_bc"} {
		qs = append(qs, quantity{name, map[int]int64{vPab + k: 1}, c.pairwise[k]},
			quantity{name + " − |I|", map[int]int64{vPab + k: 1, vI: -1}, c.pairwise[k] - c.inter})
	}
	for k := range 4 {
		qs = append(qs, quantity{fmt.Sprintf("bin %d", k), map[int]int64{vB0 + k: 1}, c.bins[k]})
	}
	for _, q := range qs {
		if !small(q.value) {
			continue
		}
		v := make([]int64, nv)
		for k, x := range q.coef {
			v[k] = x
		}
		require.False(t, inRowSpace(rows, v), "%s = %d < min_cell %d is derivable from the release %+v", q.name, q.value, minCell, r)
	}
	if supN > 0 && !bands.Suppressed {
		require.GreaterOrEqual(t, supN, 2, "one suppressed bin is the total minus the others")
		require.False(t, small(supSum), "the suppressed bins are small together")
	}
	if agg("diabetes").Value != nil && r.Intersection != nil {
		require.False(t, small(c.inter-c.diab), "count_if within min_cell of |I|")
	}
}

// inRowSpace reports whether v is a rational combination of rows.
func inRowSpace(rows [][]int64, v []int64) bool {
	return rank(append(append([][]int64{}, rows...), v)) == rank(rows)
}

func rank(rows [][]int64) int {
	m := make([][]*big.Rat, len(rows))
	for i, r := range rows {
		m[i] = make([]*big.Rat, len(r))
		for j, x := range r {
			m[i][j] = big.NewRat(x, 1)
		}
	}
	rk := 0
	for col := 0; col < nv && rk < len(m); col++ {
		p := -1
		for i := rk; i < len(m); i++ {
			if m[i][col].Sign() != 0 {
				p = i
				break
			}
		}
		if p < 0 {
			continue
		}
		m[rk], m[p] = m[p], m[rk]
		for i := range m {
			if i == rk || m[i][col].Sign() == 0 {
				continue
			}
			f := new(big.Rat).Quo(m[i][col], m[rk][col])
			for j := col; j < nv; j++ {
				m[i][j].Sub(m[i][j], new(big.Rat).Mul(f, m[rk][j]))
			}
		}
		rk++
	}
	return rk
}
