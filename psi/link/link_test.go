package link_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/psi/join"
	"github.com/mpsi-dev/mpsi/psi/link"
)

// tok makes a token from a small value; value 0 stands for "no value"
// and gets a token unique to (key, party, pos), as a party's random
// filler would be.
func tok(key, party, pos, v int) join.Token {
	var t join.Token
	if v == 0 {
		copy(t[:], fmt.Sprintf("filler %d %d %d", key, party, pos))
		return t
	}
	copy(t[:], fmt.Sprintf("value %d %d", key, v))
	return t
}

// lists builds lists[k][p] from values vals[k][p][pos].
func lists(vals [][][]int) [][][]join.Token {
	out := make([][][]join.Token, len(vals))
	for k, ps := range vals {
		out[k] = make([][]join.Token, len(ps))
		for p, vs := range ps {
			for pos, v := range vs {
				out[k][p] = append(out[k][p], tok(k, p, pos, v))
			}
		}
	}
	return out
}

func TestGroupExamples(t *testing.T) {
	tests := []struct {
		name      string
		vals      [][][]int // [key][party][pos]
		complete  int
		completed []int
		ambiguous int
		groups    [][]link.Member
	}{
		{
			name:      "one key, exact",
			vals:      [][][]int{{{1, 2, 3}, {3, 1, 4}}},
			complete:  2,
			completed: []int{2},
			groups:    [][]link.Member{{{0, 0}, {1, 1}}, {{0, 2}, {1, 0}}},
		},
		{
			name: "second key links what the first missed",
			vals: [][][]int{
				{{1, 2}, {9, 2}},
				{{5, 6}, {5, 7}},
			},
			complete:  2,
			completed: []int{1, 1},
			groups:    [][]link.Member{{{0, 0}, {1, 0}}, {{0, 1}, {1, 1}}},
		},
		{
			name: "ambiguous: party 0 has two records with the second key's value",
			vals: [][][]int{
				{{1, 2, 0}, {8, 9}},
				{{5, 0, 5}, {5, 0}},
			},
			// Key 1's component {0:0, 0:2, 1:0}... party 0's records 0
			// and 2 cannot both join party 1's record 0: refused.
			// (An honest party never sends a repeated token: here the
			// two records are both linked through the other party.)
			complete:  0,
			completed: []int{0, 0},
			ambiguous: 0,
		},
		{
			name: "a later key cannot join two complete-ish groups of one party",
			vals: [][][]int{
				{{1, 2}, {1, 2}},
				{{0, 7}, {7, 0}},
			},
			// Pass 0 makes {0:0,1:0} and {0:1,1:1}; pass 1 would join
			// 0:1 with 1:0, putting two records of each party together.
			complete:  2,
			completed: []int{2, 0},
			ambiguous: 1,
			groups:    [][]link.Member{{{0, 0}, {1, 0}}, {{0, 1}, {1, 1}}},
		},
		{
			name: "three parties, a chain across keys",
			vals: [][][]int{
				{{1}, {1}, {0}},
				{{0}, {3}, {3}},
			},
			complete:  1,
			completed: []int{0, 1},
			groups:    [][]link.Member{{{0, 0}, {1, 0}, {2, 0}}},
		},
		{
			name: "conflict in a pass: one record of party 2 agrees with two groups",
			vals: [][][]int{
				{{1, 2}, {1, 2}, {0}},
				{{0, 0}, {4, 5}, {4}},
				{{0, 0}, {0, 0}, {0}},
			},
			complete:  1,
			completed: []int{0, 1, 0},
			groups:    [][]link.Member{{{0, 0}, {1, 0}, {2, 0}}, {{0, 1}, {1, 1}}},
		},
		{
			name: "conflict refused whole",
			vals: [][][]int{
				{{1, 2}, {1, 2}, {0}},
				{{0, 0}, {4, 0}, {4}},
				{{0, 0}, {0, 0}, {0}},
				{{0, 6}, {0, 0}, {6}},
			},
			// Pass 1 completes {0:0,1:0,2:0}; pass 3 would add party 2's
			// record to {0:1,1:1} too: it is already in a complete
			// group, so the component holds two records of parties 0 and 1.
			complete:  1,
			completed: []int{0, 1, 0, 0},
			ambiguous: 1,
			groups:    [][]link.Member{{{0, 0}, {1, 0}, {2, 0}}, {{0, 1}, {1, 1}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Party 0's repeated value 5 in the third case is a within-list
			// duplicate, which Group refuses: rewrite it as the others.
			vals := tt.vals
			if tt.name == "ambiguous: party 0 has two records with the second key's value" {
				_, err := link.Group(lists(vals), link.Options{})
				require.ErrorIs(t, err, join.ErrDuplicateToken)
				var ke *link.KeyError
				require.ErrorAs(t, err, &ke)
				assert.Equal(t, 1, ke.Key)
				assert.Equal(t, 0, ke.List)
				return
			}
			res, err := link.Group(lists(vals), link.Options{Groups: true, Pairwise: true})
			require.NoError(t, err)
			assert.Equal(t, tt.complete, res.Complete)
			assert.Equal(t, tt.completed, res.Completed)
			assert.Equal(t, tt.ambiguous, res.Ambiguous)
			assert.Equal(t, tt.groups, res.Groups)
			checkConsistent(t, res, vals)
			want := oracle(lists(vals))
			assert.Equal(t, want, canonical(res.Groups))
		})
	}
}

// checkConsistent checks the counts a Result derives from its groups.
func checkConsistent(t *testing.T, res *link.Result, vals [][][]int) {
	t.Helper()
	n := len(vals[0])
	sum := 0
	for _, c := range res.Completed {
		sum += c
	}
	assert.Equal(t, res.Complete, sum, "Completed sums to Complete")
	for p := range n {
		assert.Len(t, res.Positions[p], res.Complete)
		assert.True(t, slices.IsSorted(res.Positions[p]))
		assert.Equal(t, len(vals[0][p]), res.Pairwise[p][p])
	}
	pw := make([][]int, n)
	for i := range pw {
		pw[i] = make([]int, n)
	}
	for _, g := range res.Groups {
		for a := range g {
			for b := range g {
				if a != b {
					pw[g[a].Party][g[b].Party]++
				}
			}
		}
	}
	for i := range n {
		for j := range n {
			if i != j {
				assert.Equal(t, pw[i][j], res.Pairwise[i][j], "pairwise %d %d", i, j)
			}
		}
	}
}

// oracle is Group written the slow, obvious way: groups as sets of
// members; in each pass, every pair of records of different groups with
// equal tokens joins their groups in a graph; each connected component is
// merged if it holds at most one record per party.
func oracle(l [][][]join.Token) [][]link.Member {
	n := len(l[0])
	var groups [][]link.Member
	groupOf := map[link.Member]int{}
	for p := range n {
		for pos := range l[0][p] {
			m := link.Member{Party: p, Pos: uint32(pos)}
			groupOf[m] = len(groups)
			groups = append(groups, []link.Member{m})
		}
	}
	for k := range l {
		adj := map[int]map[int]bool{}
		for p := range n {
			for q := range n {
				for a, ta := range l[k][p] {
					for b, tb := range l[k][q] {
						if ta != tb || (p == q && a == b) {
							continue
						}
						ga := groupOf[link.Member{Party: p, Pos: uint32(a)}]
						gb := groupOf[link.Member{Party: q, Pos: uint32(b)}]
						if ga == gb {
							continue
						}
						if adj[ga] == nil {
							adj[ga] = map[int]bool{}
						}
						adj[ga][gb] = true
					}
				}
			}
		}
		visited := map[int]bool{}
		var keys []int
		for g := range adj {
			keys = append(keys, g)
		}
		slices.Sort(keys)
		var merges [][]int
		for _, g := range keys {
			if visited[g] {
				continue
			}
			comp := []int{g}
			visited[g] = true
			for i := 0; i < len(comp); i++ {
				for h := range adj[comp[i]] {
					if !visited[h] {
						visited[h] = true
						comp = append(comp, h)
					}
				}
			}
			merges = append(merges, comp)
		}
		for _, comp := range merges {
			seen := map[int]bool{}
			ok := true
			for _, g := range comp {
				for _, m := range groups[g] {
					if seen[m.Party] {
						ok = false
					}
					seen[m.Party] = true
				}
			}
			if !ok {
				continue
			}
			for _, g := range comp[1:] {
				for _, m := range groups[g] {
					groupOf[m] = comp[0]
				}
				groups[comp[0]] = append(groups[comp[0]], groups[g]...)
				groups[g] = nil
			}
		}
	}
	var out [][]link.Member
	for _, g := range groups {
		if len(g) >= 2 {
			out = append(out, g)
		}
	}
	return canonical(out)
}

// canonical sorts members and groups.
func canonical(gs [][]link.Member) [][]link.Member {
	out := make([][]link.Member, 0, len(gs))
	for _, g := range gs {
		g = slices.Clone(g)
		slices.SortFunc(g, cmpMember)
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b []link.Member) int { return cmpMember(a[0], b[0]) })
	return out
}

func cmpMember(a, b link.Member) int {
	if a.Party != b.Party {
		return a.Party - b.Party
	}
	return int(a.Pos) - int(b.Pos)
}

// randomVals draws small inputs full of planted conflicts: values from a
// tiny alphabet, each distinct within one party's list for one key (as an
// honest party sends), 0 (no value) often.
func randomVals(r *rand.Rand, n, keys int) [][][]int {
	vals := make([][][]int, keys)
	sizes := make([]int, n)
	for p := range sizes {
		sizes[p] = 1 + r.IntN(6)
	}
	for k := range vals {
		vals[k] = make([][]int, n)
		for p := range n {
			perm := r.Perm(8)
			for pos := range sizes[p] {
				v := 0
				if r.IntN(3) > 0 {
					v = perm[pos] + 1
				}
				vals[k][p] = append(vals[k][p], v)
			}
		}
	}
	return vals
}

// TestGroupAgainstOracle compares Group with the brute-force oracle on
// random small inputs, n = 2..5 parties and 1..4 keys. Deterministic:
// math/rand/v2 with a fixed seed (inputs only).
func TestGroupAgainstOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ambiguous := 0
	for i := range 3000 {
		n := 2 + i%4
		keys := 1 + r.IntN(4)
		vals := randomVals(r, n, keys)
		res, err := link.Group(lists(vals), link.Options{Groups: true, Pairwise: true})
		require.NoError(t, err)
		require.Equal(t, oracle(lists(vals)), canonical(res.Groups), "case %d: %v", i, vals)
		checkConsistent(t, res, vals)
		ambiguous += res.Ambiguous
	}
	assert.Greater(t, ambiguous, 100, "the inputs must plant conflicts")
}

// TestGroupOrderFree checks that the groups do not depend on the order of
// the records in the lists nor on the order of the parties.
func TestGroupOrderFree(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 500 {
		n := 2 + i%4
		vals := randomVals(r, n, 1+r.IntN(4))
		res, err := link.Group(lists(vals), link.Options{Groups: true})
		require.NoError(t, err)

		// Permute each party's records and the parties.
		pparty := r.Perm(n)
		perms := make([][]int, n)
		for p := range n {
			perms[p] = r.Perm(len(vals[0][p]))
		}
		moved := make([][][]int, len(vals))
		for k := range vals {
			moved[k] = make([][]int, n)
			for p := range n {
				q := pparty[p]
				moved[k][q] = make([]int, len(vals[k][p]))
				for pos, v := range vals[k][p] {
					moved[k][q][perms[p][pos]] = v
				}
			}
		}
		res2, err := link.Group(lists(moved), link.Options{Groups: true})
		require.NoError(t, err)
		// Map res's groups through the permutation and compare.
		var mapped [][]link.Member
		for _, g := range res.Groups {
			var h []link.Member
			for _, m := range g {
				h = append(h, link.Member{Party: pparty[m.Party], Pos: uint32(perms[m.Party][m.Pos])})
			}
			mapped = append(mapped, h)
		}
		require.Equal(t, canonical(mapped), canonical(res2.Groups), "case %d", i)
		assert.Equal(t, res.Ambiguous, res2.Ambiguous)
		assert.Equal(t, res.Completed, res2.Completed)
	}
}

// TestOneKeyEqualsJoin checks that with one key Group's Result is
// join.Join's: the one-key sessions' Results are unchanged.
func TestOneKeyEqualsJoin(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 300 {
		n := 1 + i%5
		vals := randomVals(r, n, 1)
		l := lists(vals)
		res, err := link.Group(l, link.Options{Pairwise: true})
		require.NoError(t, err)
		want, err := join.Join(l[0], join.Options{Pairwise: true})
		require.NoError(t, err)
		assert.Equal(t, want.Intersection, res.Complete)
		assert.Equal(t, want.Positions, res.Positions)
		assert.Equal(t, want.Pairwise, res.Pairwise)
		assert.Zero(t, res.Ambiguous)
	}
}

func TestGroupShapeErrors(t *testing.T) {
	_, err := link.Group(nil, link.Options{})
	assert.ErrorIs(t, err, link.ErrShape)
	_, err = link.Group(lists([][][]int{{{1}, {1}}, {{1}}}), link.Options{})
	assert.ErrorIs(t, err, link.ErrShape)
	_, err = link.Group(lists([][][]int{{{1}, {1}}, {{1}, {1, 2}}}), link.Options{})
	assert.ErrorIs(t, err, link.ErrShape)
	assert.Contains(t, err.Error(), "key 1, list 1")
}
