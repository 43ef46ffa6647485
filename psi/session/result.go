package session

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
)

// Result is what a session releases (doc/DESIGN.md §3 and §4, step 5). Entries absent from
// the spec's reveal list are omitted. It marshals to the JSON that the CLI
// prints unchanged.
type Result struct {
	Session   string   `json:"session"`
	Parties   []string `json:"parties"`
	MatchMode string   `json:"match_mode"`
	// Intersection is |I|; nil when not revealed or suppressed.
	Intersection           *int64 `json:"intersection,omitempty"`
	IntersectionSuppressed bool   `json:"intersection_suppressed,omitempty"`
	// Pairwise is the n×n overlap matrix; the diagonal holds each party's
	// set size after de-duplication; suppressed cells are null.
	Pairwise   [][]*int64 `json:"pairwise,omitempty"`
	Aggregates Aggregates `json:"aggregates,omitempty"`
	// LeftOut names the parties left out of the aggregates under the
	// dropout rule leave_out (aggregation encrypted): they vanished before
	// all their ciphertexts were in. Their records count in the intersection
	// and the pairwise matrix (computed before), not in any aggregate.
	LeftOut []string `json:"left_out,omitempty"`
	// Members lists the record_ids of the receiving party's shared rows,
	// only in that party's own Result and only with reveal: membership.
	Members []string `json:"members,omitempty"`
	// Privacy states the noise the aggregates carry, with privacy in the
	// spec: every count, sum and bin is the true total plus every party's
	// discrete Gaussian noise (counts are then clamped at zero).
	Privacy *PrivacyRelease `json:"privacy,omitempty"`
	// MembersSuppressed: reveal: membership, but |I| is below min_cell, so
	// the party's own Result lists no members.
	MembersSuppressed bool `json:"members_suppressed,omitempty"`
	// Linkage says, for a spec with several match keys, how the complete
	// groups came about (with reveal: cardinality; see [Layout.ReleaseLinkage]).
	Linkage *Linkage `json:"linkage,omitempty"`
}

// Linkage is what a session with several match keys releases about its
// linkage.
type Linkage struct {
	// Keys[k] is the number of complete groups that key k's pass
	// completed; they sum to the intersection. Null entries (all of them,
	// then Suppressed) when one is below min_cell.
	Keys []*int64 `json:"keys"`
	// Ambiguous is the number of link sets refused because they would have
	// put two records of one party in a group; null when below min_cell.
	Ambiguous  *int64 `json:"ambiguous"`
	Suppressed bool   `json:"suppressed,omitempty"`
}

// Aggregates are the released aggregates in spec order; they marshal to a
// JSON object keyed by name.
type Aggregates []NamedAggregate

// NamedAggregate is one released aggregate.
type NamedAggregate struct {
	Name string
	AggregateResult
}

// AggregateResult is the release of one aggregate. A suppressed value is
// absent and Suppressed is true; a suppressed histogram bin is null.
type AggregateResult struct {
	Kind          string       `json:"kind"`
	Value         *json.Number `json:"value,omitempty"`
	Contributions *int64       `json:"contributions,omitempty"`
	Edges         []float64    `json:"edges,omitempty"`
	Counts        []*int64     `json:"counts,omitempty"`
	Suppressed    bool         `json:"suppressed,omitempty"`
	// Unavailable: no value could be computed because every party that
	// contributes to the aggregate was left out (dropout rule leave_out);
	// Value, Contributions and Counts are absent and Reason says why.
	Unavailable bool   `json:"unavailable,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// Get returns the aggregate called name.
func (as Aggregates) Get(name string) (AggregateResult, bool) {
	for _, a := range as {
		if a.Name == name {
			return a.AggregateResult, true
		}
	}
	return AggregateResult{}, false
}

// MarshalJSON writes the aggregates as an object in spec order.
func (as Aggregates) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, a := range as {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(a.Name)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(a.AggregateResult)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads an object of aggregates, keeping its order.
func (as *Aggregates) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("session: aggregates must be a JSON object")
	}
	*as = (*as)[:0]
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := t.(string)
		var r AggregateResult
		if err := dec.Decode(&r); err != nil {
			return fmt.Errorf("session: aggregate %q: %w", name, err)
		}
		*as = append(*as, NamedAggregate{Name: name, AggregateResult: r})
	}
	_, err = dec.Token()
	return err
}

// Release turns the summed aggregate vector and the join's counts into the
// Result, applying the reveal list and min_cell. inter is |I|; pairwise is
// the n×n overlap matrix (diagonal: set sizes). sum has length [Layout.Len].
func (l *Layout) Release(inter int, pairwise [][]int, sum []uint64) (*Result, error) {
	return l.ReleaseWithout(inter, pairwise, sum, nil)
}

// ReleaseLinkage adds the linkage counts of a session with several match
// keys to r (completed[k]: the complete groups key k completed; ambiguous:
// the refused link sets), when the spec reveals the cardinality and r
// shows it. A count c with 0 < c < min_cell suppresses every key's count
// (one could be derived from the others and |I|), and the ambiguous count
// on its own. With one match key it does nothing.
func (l *Layout) ReleaseLinkage(r *Result, completed []int, ambiguous int) {
	if len(l.spec.MatchKeys()) < 2 || r.Intersection == nil {
		return
	}
	small := func(c int) bool { return c > 0 && c < l.spec.MinCell }
	lk := &Linkage{Keys: make([]*int64, len(completed))}
	if slices.ContainsFunc(completed, small) {
		lk.Suppressed = true
	} else {
		for k, c := range completed {
			v := int64(c)
			lk.Keys[k] = &v
		}
	}
	if !small(ambiguous) {
		v := int64(ambiguous)
		lk.Ambiguous = &v
	}
	r.Linkage = lk
}

// ReleaseWithout is [Layout.Release] when the parties listed in missing
// (spec indices) contributed nothing to sum (left out under the dropout rule
// leave_out): an aggregate all of whose contributing parties are missing is
// released as unavailable, with a reason, never as the zero its slots hold.
func (l *Layout) ReleaseWithout(inter int, pairwise [][]int, sum []uint64, missing []int) (*Result, error) {
	s := l.spec
	gone := make([]bool, len(s.Parties))
	for _, i := range missing {
		if i < 0 || i >= len(gone) {
			return nil, fmt.Errorf("session: Release: missing party %d of %d", i, len(gone))
		}
		gone[i] = true
	}
	if len(sum) != l.n {
		return nil, fmt.Errorf("session: Release: vector length %d, want %d", len(sum), l.n)
	}
	r := &Result{Session: s.ID, Parties: s.Parties, MatchMode: s.Match.Mode}
	small := func(c int64) bool { return c > 0 && c < int64(s.MinCell) }
	interSmall := small(int64(inter))
	if s.Reveals(RevealCardinality) {
		if interSmall {
			r.IntersectionSuppressed = true
		} else {
			v := int64(inter)
			r.Intersection = &v
		}
	}
	if s.Reveals(RevealPairwise) {
		if len(pairwise) != len(s.Parties) {
			return nil, fmt.Errorf("session: Release: pairwise matrix has %d rows, want %d", len(pairwise), len(s.Parties))
		}
		r.Pairwise = make([][]*int64, len(pairwise))
		for i, row := range pairwise {
			if len(row) != len(s.Parties) {
				return nil, fmt.Errorf("session: Release: pairwise row %d has %d cells", i, len(row))
			}
			r.Pairwise[i] = make([]*int64, len(row))
			for j, c := range row {
				v := int64(c)
				// P_ij − |I| counts the records i and j share with not
				// every party (A∩B∖C for three): a cell of its own.
				if i != j && (small(v) || interSmall || small(v-int64(inter))) {
					continue
				}
				r.Pairwise[i][j] = &v
			}
		}
	}
	if s.Reveals(RevealAggregates) {
		if s.Privacy != nil {
			var err error
			if r.Privacy, err = l.privacyRelease(); err != nil {
				return nil, err
			}
			sum = l.clampCounts(sum)
		}
		for k := range l.aggs {
			al := &l.aggs[k]
			if names := al.allGone(s, gone); names != nil {
				r.Aggregates = append(r.Aggregates, NamedAggregate{Name: al.a.Name, AggregateResult: AggregateResult{
					Kind: al.a.Kind, Edges: al.a.Edges, Unavailable: true,
					Reason: fmt.Sprintf("every contributing party was left out: %s", strings.Join(names, ", ")),
				}})
				continue
			}
			out := al.release(sum[al.off:al.off+al.slots], small, interSmall)
			if al.a.Kind == KindCountIf && out.Value != nil && l.complementSmall(k, inter, sum, small, gone) {
				out.Value, out.Suppressed = nil, true
			}
			r.Aggregates = append(r.Aggregates, NamedAggregate{Name: al.a.Name, AggregateResult: out})
		}
	}
	return r, nil
}

// allGone returns the names of the aggregate's contributing parties when
// every one of them is gone, else nil. A count without a field is
// contributed by one party only (once).
func (al *aggLayout) allGone(s *Spec, gone []bool) []string {
	var names []string
	for i, from := range al.from {
		if al.once >= 0 && i != al.once {
			continue
		}
		if from || i == al.once {
			if !gone[i] {
				return nil
			}
			names = append(names, s.Parties[i])
		}
	}
	return names
}

func (al *aggLayout) release(v []uint64, small func(int64) bool, interSmall bool) AggregateResult {
	a := al.a
	out := AggregateResult{Kind: a.Kind}
	suppress := func(c int64) bool {
		if interSmall || small(c) {
			out.Suppressed = true
			return true
		}
		return false
	}
	intNum := func(x int64) *json.Number { n := json.Number(strconv.FormatInt(x, 10)); return &n }
	switch a.Kind {
	case KindCount, KindCountIf:
		c := int64(v[0])
		if !suppress(c) {
			out.Value = intNum(c)
		}
	case KindSum, KindMean:
		total, c := int64(v[0]), int64(v[1])
		if a.Kind == KindMean {
			out.Contributions = &c
		}
		if suppress(c) {
			out.Contributions = nil
			break
		}
		if a.Kind == KindSum {
			n := json.Number(formatFixed(total, a.Scale))
			out.Value = &n
		} else if c > 0 {
			out.Value = ratNumber(new(big.Rat).SetFrac(big.NewInt(total), new(big.Int).Mul(big.NewInt(c), pow10(a.Scale))))
		}
	case KindVariance:
		total, sq, c := int64(v[0]), int64(v[1]), int64(v[2])
		out.Contributions = &c
		if suppress(c) {
			out.Contributions = nil
			break
		}
		if c >= 2 {
			// (n·Σv² − (Σv)²) / (n·(n−1)) / 10^(2·scale), exactly.
			num := new(big.Int).Mul(big.NewInt(c), big.NewInt(sq))
			num.Sub(num, new(big.Int).Mul(big.NewInt(total), big.NewInt(total)))
			den := new(big.Int).Mul(big.NewInt(c), big.NewInt(c-1))
			den.Mul(den, pow10(2*a.Scale))
			out.Value = ratNumber(new(big.Rat).SetFrac(num, den))
		}
	case KindHistogram:
		out.Edges = a.Edges
		out.Counts = make([]*int64, len(v))
		var total int64
		for _, x := range v {
			total += int64(x)
		}
		if interSmall || small(total) {
			out.Suppressed = true
			break
		}
		for k, sup := range histogramSuppression(v, small) {
			if !sup {
				c := int64(v[k])
				out.Counts[k] = &c
			}
		}
	}
	return out
}

// histogramSuppression returns which bins of a histogram whose total is
// not small to suppress: every small bin and, if any, complementary bins —
// the smallest non-zero ones — until at least two are suppressed and their
// sum is not small either. The total is taken as known (a mean or count
// over the same field and parties releases it, and |I| bounds it), so one
// suppressed bin alone would be the total minus the others, and two small
// ones would be known to be small together.
func histogramSuppression(v []uint64, small func(int64) bool) []bool {
	sup := make([]bool, len(v))
	var n int
	var s int64
	for k, x := range v {
		if small(int64(x)) {
			sup[k], n, s = true, n+1, s+int64(x)
		}
	}
	for n > 0 && (n < 2 || small(s)) {
		next := -1
		for k, x := range v {
			if !sup[k] && x > 0 && (next < 0 || x < v[next]) {
				next = k
			}
		}
		if next < 0 {
			break // the rest are zero: the suppressed bins hold the whole total
		}
		sup[next], n, s = true, n+1, s+int64(v[next])
	}
	return sup
}

// complementSmall reports whether count_if aggregate k's complement — the
// records with the field that do not match — is small against a total that
// the release reveals or bounds: |I| times the number of contributing
// parties (an upper bound on the records with the field), or the exact
// count of any count, mean or variance over the same field and parties.
// "All but two of the shared patients have diabetes" is the same disclosure
// as "two do not".
//
// Parties in gone (left out) contributed nothing and the Result names them,
// so they do not count towards the bound.
func (l *Layout) complementSmall(k, inter int, sum []uint64, small func(int64) bool, gone []bool) bool {
	al := &l.aggs[k]
	kv := int64(sum[al.off])
	nf := 0
	for i, f := range al.from {
		if f && (gone == nil || !gone[i]) {
			nf++
		}
	}
	if small(int64(nf)*int64(inter) - kv) {
		return true
	}
	for j := range l.aggs {
		b := &l.aggs[j]
		if j == k || b.a.Field != al.a.Field || !slices.Equal(b.from, al.from) {
			continue
		}
		var c int64
		switch b.a.Kind {
		case KindCount:
			c = int64(sum[b.off])
		case KindMean:
			c = int64(sum[b.off+1])
		case KindVariance:
			c = int64(sum[b.off+2])
		default:
			continue
		}
		if small(c - kv) {
			return true
		}
	}
	return false
}

func pow10(n int) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil) }

func ratNumber(r *big.Rat) *json.Number {
	f, _ := r.Float64()
	n := json.Number(strconv.FormatFloat(f, 'g', -1, 64))
	return &n
}

// formatFixed writes v·10^-scale exactly.
func formatFixed(v int64, scale int) string {
	s := strconv.FormatInt(v, 10)
	if scale == 0 {
		return s
	}
	neg := v < 0
	if neg {
		s = s[1:]
	}
	for len(s) <= scale {
		s = "0" + s
	}
	s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	if neg {
		s = "-" + s
	}
	return s
}
