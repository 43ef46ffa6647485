package session

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mpsi-dev/mpsi/psi/ident"
)

// CodeSeparator joins the codes of a codes field in a record's normalised
// value; loaders split the source column by the mapping's separator and join
// the trimmed codes with it.
const CodeSeparator = "\x1f"

// ErrValue reports a record value that cannot contribute: not a number, more
// decimals than the scale, or outside [min, max]. Its text ([ValueError])
// quotes the value: it is reported to the party that holds the record, never
// wrapped into the aggregate nor sent (psi/protocol's Redact sends only the
// aggregate, the field, a code and a reference).
var ErrValue = errors.New("session: invalid value")

// ValueError is a record value that cannot contribute to an aggregate. Its
// text quotes the value, so it must stay with the party that holds the
// record; Aggregate and Field (names from the spec) may be told to others.
// errors.Is(err, ErrValue) holds.
type ValueError struct {
	Aggregate string // the aggregate's name in the spec
	Field     string // the logical field ("" for a count of records)
	Err       error  // the detail, quoting the value
}

// Error names the aggregate and the field, and quotes the value.
func (e *ValueError) Error() string {
	return fmt.Sprintf("%v: aggregate %q, field %q: %v", ErrValue, e.Aggregate, e.Field, e.Err)
}

// Unwrap returns the detail.
func (e *ValueError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrValue) true.
func (e *ValueError) Is(target error) bool { return target == ErrValue }

// Layout is the aggregate vector of a session: which slots each aggregate
// occupies and how a record's values become contributions. It is immutable
// and safe for concurrent use.
type Layout struct {
	spec *Spec
	aggs []aggLayout
	n    int
}

type aggLayout struct {
	a        *Aggregate
	off      int
	slots    int
	lo, hi   int64   // fixed-point bounds
	edges    []int64 // fixed-point histogram edges
	equals   string  // normalised
	contains string
	from     []bool // by party index
	once     int    // for count without field: the party index that contributes
}

// NewLayout lays out the aggregates of a validated spec.
func NewLayout(s *Spec) (*Layout, error) {
	l := &Layout{spec: s}
	for i := range s.Aggregates {
		a := &s.Aggregates[i]
		al := aggLayout{a: a, off: l.n, from: make([]bool, len(s.Parties)), once: -1}
		for _, p := range a.From {
			al.from[s.PartyIndex(p)] = true
		}
		switch a.Kind {
		case KindCount, KindCountIf:
			al.slots = 1
		case KindSum, KindMean:
			al.slots = 2
		case KindVariance:
			al.slots = 3
		case KindHistogram:
			al.slots = len(a.Edges) - 1
		}
		if a.Kind == KindCount && a.Field == "" {
			al.once = s.PartyIndex(a.From[0])
		}
		if a.Min != nil {
			var err error
			if al.lo, err = FixedFromFloat(*a.Min, a.Scale); err != nil {
				return nil, err
			}
			if al.hi, err = FixedFromFloat(*a.Max, a.Scale); err != nil {
				return nil, err
			}
		}
		for _, e := range a.Edges {
			fe, err := FixedFromFloat(e, a.Scale)
			if err != nil {
				return nil, fmt.Errorf("%w: aggregates[%d].edges: %v", ErrInvalidSpec, i, err)
			}
			al.edges = append(al.edges, fe)
		}
		if a.Equals != nil {
			t, _ := s.FieldType(a.Field)
			v := strings.TrimSpace(*a.Equals)
			if t.Matchable() {
				iso, err := ident.ParseLayout(ident.DefaultLayout)
				if err != nil {
					return nil, err
				}
				nv, err := ident.Normalize(t, iso, v)
				if err != nil {
					return nil, fmt.Errorf("%w: aggregates[%d].equals: %v", ErrInvalidSpec, i, err)
				}
				v = nv
			}
			al.equals = v
		}
		if a.Contains != nil {
			al.contains = strings.TrimSpace(*a.Contains)
		}
		l.aggs = append(l.aggs, al)
		l.n += al.slots
	}
	return l, nil
}

// Len is the length L of the aggregate vector.
func (l *Layout) Len() int { return l.n }

// Spec returns the spec the layout was made from.
func (l *Layout) Spec() *Spec { return l.spec }

// Contribute adds one shared record's contributions by party (an index into
// the spec's parties) to dst, which has length [Layout.Len]. get returns the
// record's normalised value of a logical field, "" when empty. On error dst
// is unchanged. Arithmetic wraps in Z_2^64: negative values are two's
// complement.
func (l *Layout) Contribute(party int, get func(field string) string, dst []uint64) error {
	if len(dst) != l.n {
		return fmt.Errorf("session: Contribute: vector length %d, want %d", len(dst), l.n)
	}
	// Compute every aggregate's contribution once into a scratch vector,
	// then add it, so that an error leaves dst unchanged.
	var stack [64]uint64
	tmp := stack[:0]
	if l.n > len(stack) {
		tmp = make([]uint64, l.n)
	} else {
		tmp = stack[:l.n]
	}
	for i := range l.aggs {
		al := &l.aggs[i]
		if !al.from[party] {
			continue
		}
		add := tmp[al.off : al.off+al.slots]
		ok, err := al.contribution(party, get, add)
		if err != nil {
			return &ValueError{Aggregate: al.a.Name, Field: al.a.Field, Err: err}
		}
		if !ok {
			clear(add)
		}
	}
	for j, v := range tmp {
		dst[j] += v
	}
	return nil
}

// contribution fills add and reports whether the record contributes.
func (al *aggLayout) contribution(party int, get func(string) string, add []uint64) (bool, error) {
	a := al.a
	if a.Kind == KindCount && a.Field == "" {
		if party != al.once {
			return false, nil
		}
		add[0] = 1
		return true, nil
	}
	raw := get(a.Field)
	if raw == "" {
		return false, nil
	}
	switch a.Kind {
	case KindCount:
		add[0] = 1
		return true, nil
	case KindCountIf:
		if al.contains != "" {
			if hasCode(raw, al.contains) {
				add[0] = 1
			}
		} else if raw == al.equals {
			add[0] = 1
		}
		return true, nil
	}
	v, err := al.value(raw)
	if err != nil {
		return false, err
	}
	switch a.Kind {
	case KindSum, KindMean:
		add[0], add[1] = uint64(v), 1
	case KindVariance:
		add[0], add[1], add[2] = uint64(v), uint64(v*v), 1
	case KindHistogram:
		k := len(al.edges) - 2 // the last bin is closed
		for j := 0; j < len(al.edges)-1; j++ {
			if v < al.edges[j+1] {
				k = j
				break
			}
		}
		add[k] = 1
	}
	return true, nil
}

// value parses a numeric aggregate's value and checks its range.
func (al *aggLayout) value(raw string) (int64, error) {
	a := al.a
	v, err := ParseFixedRounding(raw, a.Scale, a.Rounding)
	if err != nil {
		return 0, err
	}
	if v < al.lo || v > al.hi {
		return 0, faultf(ErrOutOfRange, "%s is outside [min, max] = [%v, %v]", raw, *a.Min, *a.Max)
	}
	return v, nil
}

// A ValueChecker checks one party's records' values as [Layout.Contribute]
// does (the parse and range of each numeric aggregate the party feeds),
// without computing contributions, for values given as a slice in an order
// fixed when it is made: a loader checks every row with it, before
// anything is sent, without looking fields up by name.
type ValueChecker struct {
	aggs []*aggLayout // the numeric aggregates the party feeds
	at   []int        // for each, its field's index in the values (-1: none)
}

// Checker returns the ValueChecker of party for values given in the order
// of fields (the party's attribute fields).
func (l *Layout) Checker(party int, fields []string) *ValueChecker {
	c := &ValueChecker{}
	for i := range l.aggs {
		al := &l.aggs[i]
		switch al.a.Kind {
		case KindCount, KindCountIf:
			continue
		}
		if !al.from[party] {
			continue
		}
		at := -1
		for j, f := range fields {
			if f == al.a.Field {
				at = j
				break
			}
		}
		c.aggs, c.at = append(c.aggs, al), append(c.at, at)
	}
	return c
}

// Check reports the error [Layout.Contribute] gives for the record whose
// field fields[i] (the Checker's) has the value values[i], nil if none.
func (c *ValueChecker) Check(values []string) error {
	for i, al := range c.aggs {
		j := c.at[i]
		if j < 0 || values[j] == "" {
			continue
		}
		if _, err := al.value(values[j]); err != nil {
			return &ValueError{Aggregate: al.a.Name, Field: al.a.Field, Err: err}
		}
	}
	return nil
}

// hasCode reports whether code is one of the CodeSeparator-separated codes
// of list, without allocating.
func hasCode(list, code string) bool {
	for c := range strings.SplitSeq(list, CodeSeparator) {
		if c == code {
			return true
		}
	}
	return false
}
