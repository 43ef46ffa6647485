package fhir

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrPath is wrapped by errors about a mapping path.
var ErrPath = errors.New("fhir: invalid path")

// A Path picks values out of a decoded resource. Its syntax (a small
// subset in the spirit of FHIRPath):
//
//	path        = alternative { "|" alternative }
//	alternative = step { "." step } [ ".exists()" ]
//	step        = element [ "[" ( index | subpath "=" value ) "]" ]
//
// An element is a JSON member name; stepping into a list steps into every
// item. "[N]" keeps the Nth item (from 0); "[a.b=v]" keeps the items where
// the sub-path a.b has the value v (v runs to the closing bracket and may
// hold dots, colons and slashes). The alternatives are tried in order and
// the first that yields a value wins. ".exists()" yields "1" if the
// alternative has a value and "0" if not. Strings are taken as they are,
// numbers in their shortest form, booleans as "1" and "0".
//
// Examples: "birthDate", "name[use=official].given[0] | name[0].given[0]",
// "identifier[system=http://hl7.org/fhir/sid/us-ssn].value",
// "identifier[type.coding.code=MR].value",
// "deceasedBoolean | deceasedDateTime.exists()".
type Path struct {
	src       string
	alts      []alt
	condition bool // read from the patient's Conditions
}

type alt struct {
	steps  []step
	exists bool
}

type step struct {
	name  string
	index int    // -1: no index
	where []step // selector sub-path, nil: none
	value string // selector value
}

// ParsePath parses a path.
func ParsePath(s string) (*Path, error) {
	p := &Path{src: s}
	for a := range strings.SplitSeq(s, "|") {
		a = strings.TrimSpace(a)
		var al alt
		if rest, ok := strings.CutSuffix(a, ".exists()"); ok {
			a, al.exists = rest, true
		}
		steps, err := parseSteps(a, true)
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %v", ErrPath, s, err)
		}
		al.steps = steps
		p.alts = append(p.alts, al)
	}
	return p, nil
}

// String returns the path as written.
func (p *Path) String() string { return p.src }

// roots adds the top-level elements the path reads to set.
func (p *Path) roots(set map[string]bool) {
	for _, a := range p.alts {
		set[a.steps[0].name] = true
	}
}

func parseSteps(s string, selectors bool) ([]step, error) {
	if s == "" {
		return nil, errors.New("empty path")
	}
	var steps []step
	for s != "" {
		var st step
		st.index = -1
		end := strings.IndexAny(s, ".[")
		if end < 0 {
			end = len(s)
		}
		st.name = s[:end]
		if !validName(st.name) {
			return nil, fmt.Errorf("bad element name %q", st.name)
		}
		s = s[end:]
		if strings.HasPrefix(s, "[") {
			if !selectors {
				return nil, errors.New("selector inside a selector")
			}
			close := strings.IndexByte(s, ']')
			if close < 0 {
				return nil, errors.New("missing ]")
			}
			sel := s[1:close]
			s = s[close+1:]
			if sub, val, ok := strings.Cut(sel, "="); ok {
				w, err := parseSteps(strings.TrimSpace(sub), false)
				if err != nil {
					return nil, err
				}
				st.where, st.value = w, strings.TrimSpace(val)
			} else {
				n, err := strconv.Atoi(strings.TrimSpace(sel))
				if err != nil || n < 0 {
					return nil, fmt.Errorf("bad selector [%s]", sel)
				}
				st.index = n
			}
		}
		steps = append(steps, st)
		if s == "" {
			break
		}
		if s[0] != '.' {
			return nil, fmt.Errorf("unexpected %q", s)
		}
		s = s[1:]
		if s == "" {
			return nil, errors.New("path ends with .")
		}
	}
	return steps, nil
}

func validName(n string) bool {
	if n == "" {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// first returns the first value the path yields on a decoded resource.
func (p *Path) first(res map[string]any) string {
	for _, a := range p.alts {
		var got string
		found := false
		walk(res, a.steps, func(v string) bool {
			got, found = v, true
			return false
		})
		if a.exists {
			if found {
				return "1"
			}
			return "0"
		}
		if found {
			return got
		}
	}
	return ""
}

// all calls yield with every value of the first alternative that yields
// any (exists() alternatives yield their one value).
func (p *Path) all(res map[string]any, yield func(string)) {
	for _, a := range p.alts {
		if a.exists {
			yield(p.first(res))
			return
		}
		found := false
		walk(res, a.steps, func(v string) bool {
			found = true
			yield(v)
			return true
		})
		if found {
			return
		}
	}
}

// walk calls yield with every scalar value the steps reach from v, while
// yield returns true; it reports whether to go on.
func walk(v any, steps []step, yield func(string) bool) bool {
	if len(steps) == 0 {
		switch x := v.(type) {
		case string:
			if x == "" {
				return true
			}
			return yield(x)
		case float64:
			return yield(strconv.FormatFloat(x, 'f', -1, 64))
		case bool:
			if x {
				return yield("1")
			}
			return yield("0")
		case []any:
			for _, it := range x {
				if !walk(it, nil, yield) {
					return false
				}
			}
		}
		return true
	}
	switch x := v.(type) {
	case []any:
		for _, it := range x {
			if !walk(it, steps, yield) {
				return false
			}
		}
		return true
	case map[string]any:
		st := steps[0]
		child, ok := x[st.name]
		if !ok {
			return true
		}
		items, isList := child.([]any)
		if !isList {
			items = []any{child}
		}
		if st.index >= 0 {
			if st.index >= len(items) {
				return true
			}
			items = items[st.index : st.index+1]
		}
		for _, it := range items {
			if st.where != nil && !has(it, st.where, st.value) {
				continue
			}
			if !walk(it, steps[1:], yield) {
				return false
			}
		}
	}
	return true
}

// has reports whether the steps reach the value want from v.
func has(v any, steps []step, want string) bool {
	found := false
	walk(v, steps, func(s string) bool {
		if s == want {
			found = true
			return false
		}
		return true
	})
	return found
}
