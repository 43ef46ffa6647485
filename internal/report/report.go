// Package report renders a released session Result as one self-contained
// HTML page: the session, its parties, the intersection, the pairwise
// overlap matrix as a heat map, each histogram as a bar chart, the scalar
// aggregates with their contributions, privacy parameters when the Result
// or spec carries any, and the outcome of the signature check.
//
// The page loads nothing: its styles are inline and its charts are SVG
// drawn here, each with a text alternative and the same numbers in a
// table. Suppressed cells are drawn hatched and labelled "suppressed",
// never as zero. Every released number carries a data-k attribute naming
// where it comes from in the Result (intersection, pairwise/I/J,
// agg/NAME/value, agg/NAME/contributions, agg/NAME/count/K), so that tests
// and scripts can read the page back.
package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mpsi-dev/mpsi/psi/session"
)

// ErrInvalid is wrapped by errors about a Result (or spec) that cannot be
// rendered: malformed JSON, or a matrix or histogram of the wrong shape.
var ErrInvalid = errors.New("report: invalid input")

// Suppressed is the text that stands for a suppressed cell on the page.
const Suppressed = "suppressed"

// SignatureStatus is the outcome of checking the coordinator's signature.
type SignatureStatus string

// Signature check outcomes.
const (
	SignatureVerified   SignatureStatus = "verified"
	SignatureFailed     SignatureStatus = "failed"
	SignatureNotChecked SignatureStatus = "not checked"
)

// Signature is what the page says about the Result's signature.
type Signature struct {
	Status SignatureStatus
	// Signer names the certificate that signed (when verified).
	Signer string
	// Detail says why the check failed, or how to run it when not checked.
	Detail string
}

// Param is one privacy (or other) parameter, as a dotted key path and its
// value as written in the source.
type Param struct {
	Source string // "result", "spec" or "aggregate NAME"
	Key    string
	Value  string
}

// Options are the optional parts of a report.
type Options struct {
	// Spec, when given, must be the Result's session spec: the page then
	// shows fields, bounds, min_cell and the aggregation mode.
	Spec *session.Spec
	// SpecPrivacy holds the spec's privacy parameters (the raw value of
	// its "privacy" key), if any.
	SpecPrivacy any
	// Signature is the outcome of the signature check; the zero value
	// renders as not checked.
	Signature Signature
	// Generated, when not zero, is printed as the time of generation.
	Generated time.Time
	// Version is the mpsi version printed in the footer.
	Version string
}

// knownResultKeys and knownAggregateKeys are the Result JSON keys the
// renderer draws; any other key (such as the privacy parameters of a
// differentially private release) is listed as a parameter.
var (
	knownResultKeys    = []string{"session", "parties", "match_mode", "intersection", "intersection_suppressed", "pairwise", "aggregates", "left_out", "members"}
	knownAggregateKeys = []string{"kind", "value", "contributions", "edges", "counts", "suppressed", "unavailable", "reason"}
)

// Render parses resultJSON (a Result as released by the coordinator or
// written by mpsi party/run) and writes the HTML page to w.
func Render(w io.Writer, resultJSON []byte, opt Options) error {
	p, err := build(resultJSON, opt)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, p); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// view is what the template draws.
type view struct {
	Title        string
	Rows         [][2]string // session overview
	Parties      []partyView
	Signature    Signature
	SigClass     string
	Intersection cellView
	Matrix       *matrixView
	Scalars      []scalarView
	Histograms   []histView
	Params       []Param
	Members      int
	Footer       string
}

type partyView struct {
	Name    string
	Size    cellView
	LeftOut bool
}

// cellView is one released number: its text, or Suppressed, or a note
// ("not revealed"); Key is its data-k.
type cellView struct {
	Key        string
	Text       string
	Suppressed bool
	Missing    bool
}

func numCell(key string, p *int64) cellView {
	if p == nil {
		return cellView{Key: key, Text: Suppressed, Suppressed: true}
	}
	return cellView{Key: key, Text: fmt.Sprint(*p)}
}

func build(resultJSON []byte, opt Options) (*view, error) {
	var r session.Result
	if err := json.Unmarshal(resultJSON, &r); err != nil {
		return nil, fmt.Errorf("%w: result: %w", ErrInvalid, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(resultJSON, &raw); err != nil {
		return nil, fmt.Errorf("%w: result: %w", ErrInvalid, err)
	}
	if r.Session == "" || len(r.Parties) == 0 {
		return nil, fmt.Errorf("%w: result: no session id or no parties (is this a Result file?)", ErrInvalid)
	}
	n := len(r.Parties)
	if r.Pairwise != nil {
		if len(r.Pairwise) != n {
			return nil, fmt.Errorf("%w: result: pairwise has %d rows for %d parties", ErrInvalid, len(r.Pairwise), n)
		}
		for i, row := range r.Pairwise {
			if len(row) != n {
				return nil, fmt.Errorf("%w: result: pairwise row %d has %d cells for %d parties", ErrInvalid, i, len(row), n)
			}
		}
	}
	s := opt.Spec
	if s != nil {
		if s.ID != r.Session {
			return nil, fmt.Errorf("%w: spec is for session %q, the result for %q", ErrInvalid, s.ID, r.Session)
		}
		if !slices.Equal(s.Parties, r.Parties) {
			return nil, fmt.Errorf("%w: spec parties %v differ from the result's %v", ErrInvalid, s.Parties, r.Parties)
		}
	}
	v := &view{Title: "mpsi session " + r.Session, Signature: opt.Signature, Members: len(r.Members)}
	if v.Signature.Status == "" {
		v.Signature.Status = SignatureNotChecked
	}
	v.SigClass = strings.ReplaceAll(string(v.Signature.Status), " ", "-")
	v.Rows = append(v.Rows, [2]string{"Session", r.Session}, [2]string{"Match mode", r.MatchMode}, [2]string{"Parties", fmt.Sprint(n)})
	if s != nil {
		agg := s.Aggregation
		if agg == "" {
			agg = session.AggregationMasked
		}
		if s.Threshold > 0 && agg == session.AggregationEncrypted {
			agg += fmt.Sprintf(" (threshold %d of %d)", s.Threshold, n)
		}
		v.Rows = append(v.Rows,
			[2]string{"Match keys", matchKeys(s)},
			[2]string{"Revealed", strings.Join(s.Reveal, ", ")},
			[2]string{"Aggregation", agg},
			[2]string{"min_cell", fmt.Sprintf("%d (released counts c with 0 < c < %d are suppressed)", s.MinCell, s.MinCell)})
	}
	if lk := r.Linkage; lk != nil {
		keys := "suppressed (a count below min_cell)"
		if !lk.Suppressed {
			var cs []string
			for k, c := range lk.Keys {
				if c != nil {
					cs = append(cs, fmt.Sprintf("key %d: %d", k+1, *c))
				}
			}
			keys = strings.Join(cs, ", ")
		}
		amb := "suppressed"
		if lk.Ambiguous != nil {
			amb = fmt.Sprint(*lk.Ambiguous)
		}
		v.Rows = append(v.Rows, [2]string{"Groups completed per match key", keys}, [2]string{"Ambiguous links refused", amb})
	}
	if len(r.LeftOut) > 0 {
		v.Rows = append(v.Rows, [2]string{"Left out of the aggregates", strings.Join(r.LeftOut, ", ")})
	}
	for i, name := range r.Parties {
		pv := partyView{Name: name, LeftOut: slices.Contains(r.LeftOut, name), Size: cellView{Text: "not revealed", Missing: true}}
		if r.Pairwise != nil {
			pv.Size = numCell(fmt.Sprintf("pairwise/%d/%d", i, i), r.Pairwise[i][i])
		}
		v.Parties = append(v.Parties, pv)
	}
	switch {
	case r.Intersection != nil:
		v.Intersection = numCell("intersection", r.Intersection)
	case r.IntersectionSuppressed:
		v.Intersection = cellView{Key: "intersection", Text: Suppressed, Suppressed: true}
	default:
		v.Intersection = cellView{Key: "intersection", Text: "not revealed", Missing: true}
	}
	if r.Pairwise != nil {
		v.Matrix = heatMap(r.Parties, r.Pairwise)
	}
	specAgg := map[string]session.Aggregate{}
	if s != nil {
		for _, a := range s.Aggregates {
			specAgg[a.Name] = a
		}
	}
	var rawAggs map[string]map[string]json.RawMessage
	if b, ok := raw["aggregates"]; ok {
		if err := json.Unmarshal(b, &rawAggs); err != nil {
			return nil, fmt.Errorf("%w: result: aggregates: %w", ErrInvalid, err)
		}
	}
	for _, a := range r.Aggregates {
		sa, hasSpec := specAgg[a.Name]
		for _, k := range sortedKeys(rawAggs[a.Name]) {
			if !slices.Contains(knownAggregateKeys, k) {
				v.Params = append(v.Params, flatten("aggregate "+a.Name, k, rawAggs[a.Name][k])...)
			}
		}
		if a.Kind == session.KindHistogram && !a.Unavailable {
			h, err := barChart(a.Name, a.AggregateResult)
			if err != nil {
				return nil, err
			}
			if hasSpec {
				h.Describe = describe(sa)
			}
			v.Histograms = append(v.Histograms, *h)
			continue
		}
		sv := scalarView{Name: a.Name, Kind: a.Kind, Value: cellView{Key: "agg/" + a.Name + "/value"}}
		if hasSpec {
			sv.Describe = describe(sa)
		}
		switch {
		case a.Unavailable:
			sv.Value.Text, sv.Value.Missing = "unavailable: "+a.Reason, true
		case a.Suppressed:
			sv.Value.Text, sv.Value.Suppressed = Suppressed, true
		case a.Value == nil:
			sv.Value.Text, sv.Value.Missing = "no contributions", true
		default:
			sv.Value.Text = a.Value.String()
		}
		if a.Kind == session.KindMean || a.Kind == session.KindVariance {
			c := cellView{Key: "agg/" + a.Name + "/contributions"}
			if a.Contributions == nil {
				c.Text, c.Suppressed = Suppressed, true
			} else {
				c.Text = fmt.Sprint(*a.Contributions)
			}
			sv.Contributions = &c
		}
		v.Scalars = append(v.Scalars, sv)
	}
	for _, k := range sortedKeys(raw) {
		if !slices.Contains(knownResultKeys, k) {
			v.Params = append(v.Params, flatten("result", k, raw[k])...)
		}
	}
	if opt.SpecPrivacy != nil {
		b, err := json.Marshal(opt.SpecPrivacy)
		if err != nil {
			return nil, fmt.Errorf("%w: spec privacy: %w", ErrInvalid, err)
		}
		v.Params = append(v.Params, flatten("spec", "privacy", b)...)
	}
	v.Footer = "Generated by mpsi"
	if opt.Version != "" {
		v.Footer += " " + opt.Version
	}
	if !opt.Generated.IsZero() {
		v.Footer += " at " + opt.Generated.UTC().Format(time.RFC3339)
	}
	v.Footer += ". This page loads nothing from the network."
	return v, nil
}

// describe summarises an aggregate's spec entry: field, bounds, sources.
func describe(a session.Aggregate) string {
	var parts []string
	if a.Field != "" {
		parts = append(parts, "field "+a.Field)
	}
	if a.Min != nil && a.Max != nil {
		parts = append(parts, fmt.Sprintf("bounds [%v, %v]", *a.Min, *a.Max))
	}
	if a.Equals != nil {
		parts = append(parts, fmt.Sprintf("equals %q", *a.Equals))
	}
	if a.Contains != nil {
		parts = append(parts, fmt.Sprintf("contains %q", *a.Contains))
	}
	if len(a.From) > 0 {
		parts = append(parts, "from "+strings.Join(a.From, ", "))
	} else {
		parts = append(parts, "from every party")
	}
	return strings.Join(parts, "; ")
}

type scalarView struct {
	Name, Kind, Describe string
	Value                cellView
	Contributions        *cellView
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// flatten lists a JSON value as dotted key paths and scalar values.
func flatten(source, key string, b json.RawMessage) []Param {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return []Param{{Source: source, Key: key, Value: string(b)}}
	}
	var out []Param
	var walk func(k string, x any)
	walk = func(k string, x any) {
		switch t := x.(type) {
		case map[string]any:
			for _, kk := range sortedKeys(t) {
				walk(k+"."+kk, t[kk])
			}
		case []any:
			for i, e := range t {
				walk(fmt.Sprintf("%s[%d]", k, i), e)
			}
		case nil:
			out = append(out, Param{source, k, "null"})
		default:
			out = append(out, Param{source, k, fmt.Sprint(t)})
		}
	}
	walk(key, x)
	return out
}

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"pct": func(f float64) string { return fmt.Sprintf("%.1f", f) },
}).Parse(pageHTML))

// matchKeys writes the spec's match keys in order: "ssn; surname|soundex,
// birth_date", or the one key's fields.
func matchKeys(s *session.Spec) string {
	if s.CLKSchema() != nil {
		return fmt.Sprintf("CLK similarity ≥ %g over %s", s.Match.Threshold, strings.Join(s.MatchFieldNames(), ", "))
	}
	var keys []string
	for _, key := range s.MatchKeys() {
		var fs []string
		for _, kf := range key {
			fs = append(fs, kf.String())
		}
		keys = append(keys, strings.Join(fs, ", "))
	}
	return strings.Join(keys, "; ")
}
