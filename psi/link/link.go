// Package link groups the records of n parties over an ordered list of
// match keys: the coordinator's step 3 (the join) when a session's spec
// names several keys (doc/DESIGN.md §4, "Ordered keys").
//
// For key k, party p sends one token per record, in its shuffled order:
// equal tokens mean equal key values (a record without a value for key k,
// or whose value another of its records shares, sends a random token that
// matches nothing). Records of different parties are linked when they
// agree on any key. Groups are built pass by pass, in key order:
//
//   - before pass 1 every record is a group of its own;
//   - in pass k, two groups are joined when a record of one and a record
//     of the other have equal key-k tokens. The groups that pass k would
//     join together form a component; the component becomes one group if
//     it holds at most one record of each party, and otherwise none of its
//     joins is made (it is ambiguous: say one party has two records with
//     the same surname code and birth year, and another party one) and
//     [Result.Ambiguous] counts it;
//   - groups made by earlier passes are never split by later ones.
//
// The outcome is a function of the token lists as sets: it does not
// depend on the order of the records in the lists, the order of the
// parties, nor on any tie-breaking, so the same question asked twice gets
// the same answer. The intersection is the set of complete groups, those
// holding a record of every party; pairwise counts are the groups holding
// records of both parties.
//
// With one key, Group's complete groups are the tokens present in every
// list and its Result equals [join.Join]'s (a test checks it); sessions
// with one key use package join, which also spills to disk.
//
// # Cost
//
// Each pass sorts 16 bytes per token (N tokens over all lists, allocated
// afresh per pass) and Group keeps 8 bytes per record for the two
// union-find forests and, for each group of two or more records, its member
// list, in memory (no spilling), beside the caller's lists. BenchmarkGroup
// (3 parties × 1M records × 3 keys, 60% of records in groups, one core of
// a loaded machine): 3.9 s, 0.43 µs and 49 bytes allocated per token.
package link

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/mpsi-dev/mpsi/psi/join"
)

// ErrShape is wrapped by the error [Group] returns for inputs of the wrong
// shape: no key, no party, a key without a list for every party, or a
// party whose lists differ in length between keys.
var ErrShape = errors.New("link: token lists of the wrong shape")

// KeyError reports a problem with party List's token list for key Key: a
// token repeated within it (wrapping [join.ErrDuplicateToken]; an honest
// party never sends one) or a list too long.
type KeyError struct {
	Key, List int
	Err       error
}

// Error returns the sentinel's text followed by the key and list indices.
func (e *KeyError) Error() string {
	return fmt.Sprintf("%v in key %d, list %d", e.Err, e.Key, e.List)
}

// Unwrap returns e.Err.
func (e *KeyError) Unwrap() error { return e.Err }

// Member is one record: its party's index and its position in that party's
// lists.
type Member struct {
	Party int
	Pos   uint32
}

// Options controls [Group]. The zero value asks for neither the pairwise
// matrix nor the groups.
type Options struct {
	// Pairwise asks for [Result.Pairwise].
	Pairwise bool
	// Groups asks for [Result.Groups], every group of two or more
	// records (for evaluation and tests: the coordinator never needs it).
	Groups bool
}

// Result is the outcome of [Group].
type Result struct {
	// Complete is the number of complete groups (|I|).
	Complete int
	// Positions[p] lists, in increasing order, the positions of party p's
	// records in complete groups; each has length Complete.
	Positions [][]uint32
	// Pairwise[i][j] (i ≠ j) is the number of groups holding a record of
	// party i and one of party j; Pairwise[i][i] is party i's number of
	// records. Nil unless Options.Pairwise.
	Pairwise [][]int
	// Completed[k] is the number of complete groups made complete by pass
	// k; they sum to Complete.
	Completed []int
	// Ambiguous is the number of components refused because they would
	// put two records of one party into a group, over all passes.
	Ambiguous int
	// Groups lists every group of two or more records, each sorted by
	// party, the groups in order of their first member. Nil unless
	// Options.Groups.
	Groups [][]Member
}

// Group links the token lists lists[k][p] (key k, party p). Every key must
// have a list for each of the n parties, and party p's lists the same
// length m_p for every key (its number of records). Group does not modify
// or retain the lists.
func Group(lists [][][]join.Token, opt Options) (*Result, error) {
	if len(lists) == 0 || len(lists[0]) == 0 {
		return nil, fmt.Errorf("%w: %d keys, no party", ErrShape, len(lists))
	}
	n := len(lists[0])
	off := make([]int, n+1) // node id of party p's position 0
	for p, l := range lists[0] {
		if uint64(len(l)) > join.MaxListLen {
			return nil, &KeyError{Key: 0, List: p, Err: join.ErrListTooLarge}
		}
		off[p+1] = off[p] + len(l)
	}
	if off[n] > math.MaxUint32 {
		return nil, fmt.Errorf("%w: %d records in all", ErrShape, off[n])
	}
	for k, ls := range lists {
		if len(ls) != n {
			return nil, fmt.Errorf("%w: key %d has %d lists, key 0 has %d", ErrShape, k, len(ls), n)
		}
		for p, l := range ls {
			if len(l) != off[p+1]-off[p] {
				return nil, fmt.Errorf("%w: key %d, list %d has %d tokens, key 0's has %d", ErrShape, k, p, len(l), off[p+1]-off[p])
			}
		}
	}
	res := &Result{Completed: make([]int, len(lists))}
	if n == 1 {
		// One party: every record is a complete group, as join.Join has it.
		m := off[1]
		res.Complete, res.Completed[0] = m, m
		res.Positions = [][]uint32{make([]uint32, m)}
		for i := range m {
			res.Positions[0][i] = uint32(i)
		}
		if opt.Pairwise {
			res.Pairwise = [][]int{{m}}
		}
		return res, nil
	}
	g := newGrouper(n, off)
	for k, ls := range lists {
		completed, ambiguous, err := g.pass(k, ls)
		if err != nil {
			return nil, err
		}
		res.Completed[k] = completed
		res.Ambiguous += ambiguous
	}
	g.finish(res, opt)
	return res, nil
}

// grouper holds the groups between passes: a union-find forest over the
// records (node ids off[p]+pos) whose roots hold the member lists of
// groups of two or more.
type grouper struct {
	n       int
	off     []int
	parent  []uint32            // the groups so far
	members map[uint32][]uint32 // root → members, for groups of two or more
	// Scratch of one pass.
	pending []uint32 // a second forest over roots: the pass's components
	seen    []int    // per party: the stamp of the last component that had it
	stamp   int
}

func newGrouper(n int, off []int) *grouper {
	g := &grouper{n: n, off: off, members: make(map[uint32][]uint32), seen: make([]int, n)}
	g.parent = make([]uint32, off[n])
	g.pending = make([]uint32, off[n])
	for i := range g.parent {
		g.parent[i] = uint32(i)
		g.pending[i] = uint32(i)
	}
	return g
}

func find(parent []uint32, x uint32) uint32 {
	for parent[x] != x {
		parent[x] = parent[parent[x]] // path halving
		x = parent[x]
	}
	return x
}

func (g *grouper) party(node uint32) int {
	p, _ := slices.BinarySearch(g.off, int(node)+1)
	return p - 1
}

// entry is one token of a pass, sorted by the token's first 8 bytes.
type entry struct {
	hi   uint64
	node uint32
	list uint32
}

// pass runs key k's pass over its lists and returns how many groups it
// completed and how many components it refused.
func (g *grouper) pass(k int, lists [][]join.Token) (completed, ambiguous int, err error) {
	ents := make([]entry, 0, g.off[g.n])
	for p, l := range lists {
		for pos := range l {
			ents = append(ents, entry{hi: binary.BigEndian.Uint64(l[pos][:8]), node: uint32(g.off[p] + pos), list: uint32(p)})
		}
	}
	tok := func(e entry) *join.Token { return &lists[e.list][int(e.node)-g.off[e.list]] }
	slices.SortFunc(ents, func(a, b entry) int {
		if c := cmp.Compare(a.hi, b.hi); c != 0 {
			return c
		}
		if c := slices.Compare(tok(a)[:], tok(b)[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.node, b.node)
	})

	// Join, in the pending forest, the groups of records with equal
	// tokens; remember the roots touched.
	var touched []uint32
	for i := 0; i < len(ents); {
		j := i + 1
		for j < len(ents) && ents[j].hi == ents[i].hi && *tok(ents[j]) == *tok(ents[i]) {
			if ents[j].list == ents[j-1].list {
				return 0, 0, &KeyError{Key: k, List: int(ents[j].list), Err: join.ErrDuplicateToken}
			}
			j++
		}
		if j-i >= 2 {
			a := find(g.parent, ents[i].node)
			for _, e := range ents[i+1 : j] {
				b := find(g.parent, e.node)
				ra, rb := find(g.pending, a), find(g.pending, b)
				if ra != rb {
					g.pending[rb] = ra
				}
				touched = append(touched, a, b)
			}
		}
		i = j
	}
	if len(touched) == 0 {
		return 0, 0, nil
	}

	// Each component of the pending forest: its groups' roots, sorted.
	type rootComp struct{ comp, root uint32 }
	rc := make([]rootComp, len(touched))
	for i, r := range touched {
		rc[i] = rootComp{find(g.pending, r), r}
	}
	slices.SortFunc(rc, func(a, b rootComp) int {
		if c := cmp.Compare(a.comp, b.comp); c != 0 {
			return c
		}
		return cmp.Compare(a.root, b.root)
	})
	rc = slices.Compact(rc)
	for i := 0; i < len(rc); {
		j := i + 1
		for j < len(rc) && rc[j].comp == rc[i].comp {
			j++
		}
		roots := make([]uint32, j-i)
		for x := range roots {
			roots[x] = rc[i+x].root
		}
		switch g.join(roots) {
		case joinedComplete:
			completed++
		case refused:
			ambiguous++
		}
		i = j
	}
	// Reset the pending forest where the pass touched it.
	for _, r := range rc {
		g.pending[r.root] = r.root
	}
	return completed, ambiguous, nil
}

type outcome int

const (
	joined outcome = iota
	joinedComplete
	refused
)

// join makes the groups of roots one group, unless that would hold two
// records of one party.
func (g *grouper) join(roots []uint32) outcome {
	if len(roots) == 1 {
		return joined // records of one group agreeing again
	}
	g.stamp++
	total := 0
	for _, r := range roots {
		for _, m := range g.groupOf(r) {
			p := g.party(m)
			if g.seen[p] == g.stamp {
				return refused
			}
			g.seen[p] = g.stamp
			total++
		}
	}
	root := roots[0]
	all := append([]uint32(nil), g.groupOf(root)...)
	for _, r := range roots[1:] {
		all = append(all, g.groupOf(r)...)
		g.parent[r] = root
		delete(g.members, r)
	}
	g.members[root] = all
	if total == g.n {
		return joinedComplete
	}
	return joined
}

// groupOf returns the members of the group whose root is r.
func (g *grouper) groupOf(r uint32) []uint32 {
	if m, ok := g.members[r]; ok {
		return m
	}
	return []uint32{r}
}

// finish fills in the counts, positions, pairwise matrix and groups.
func (g *grouper) finish(res *Result, opt Options) {
	n := g.n
	res.Positions = make([][]uint32, n)
	if opt.Pairwise {
		res.Pairwise = make([][]int, n)
		for i := range res.Pairwise {
			res.Pairwise[i] = make([]int, n)
			res.Pairwise[i][i] = g.off[i+1] - g.off[i]
		}
	}
	roots := make([]uint32, 0, len(g.members))
	for r := range g.members {
		roots = append(roots, r)
	}
	slices.Sort(roots)
	parties := make([]int, 0, n)
	for _, r := range roots {
		ms := g.members[r]
		slices.Sort(ms) // node order is party order, then position
		if len(ms) == n {
			res.Complete++
			for p, m := range ms {
				res.Positions[p] = append(res.Positions[p], m-uint32(g.off[p]))
			}
		}
		parties = parties[:0]
		for _, m := range ms {
			parties = append(parties, g.party(m))
		}
		if opt.Pairwise {
			for a, pa := range parties {
				for _, pb := range parties[a+1:] {
					res.Pairwise[pa][pb]++
					res.Pairwise[pb][pa]++
				}
			}
		}
		if opt.Groups {
			grp := make([]Member, len(ms))
			for x, m := range ms {
				grp[x] = Member{Party: parties[x], Pos: m - uint32(g.off[parties[x]])}
			}
			res.Groups = append(res.Groups, grp)
		}
	}
	for p := range res.Positions {
		slices.Sort(res.Positions[p])
		if res.Positions[p] == nil {
			res.Positions[p] = []uint32{}
		}
	}
	if opt.Groups {
		slices.SortFunc(res.Groups, func(a, b []Member) int {
			if c := cmp.Compare(a[0].Party, b[0].Party); c != 0 {
				return c
			}
			return cmp.Compare(a[0].Pos, b[0].Pos)
		})
	}
}
