package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mpsi-dev/mpsi/psi"
	"github.com/mpsi-dev/mpsi/psi/clk"
	"github.com/mpsi-dev/mpsi/psi/ident"
)

// ErrInvalidSpec is wrapped by every spec validation error. The message
// names the offending field, e.g. `aggregates[2].from: "hospital-d" is not a party`.
var ErrInvalidSpec = errors.New("session: invalid spec")

// Match modes.
const (
	ModeDH    = "dh"
	ModeKeyed = "keyed"
	// ModeCLK links error-tolerant Bloom-filter encodings (CLKs, package
	// psi/clk) by Dice similarity (doc/DESIGN.md §5.2).
	ModeCLK = "clk"
)

// Reveal list entries.
const (
	RevealCardinality = "cardinality"
	RevealPairwise    = "pairwise"
	RevealAggregates  = "aggregates"
	RevealMembership  = "membership"
)

// Aggregate kinds.
const (
	KindCount     = "count"
	KindSum       = "sum"
	KindMean      = "mean"
	KindVariance  = "variance"
	KindHistogram = "histogram"
	KindCountIf   = "count_if"
)

// Aggregation modes.
const (
	AggregationMasked    = "masked"
	AggregationEncrypted = "encrypted"
	// AggregationOblivious: no party learns which of its records are
	// shared, with symmetric-key work only (doc/DESIGN.md §4).
	AggregationOblivious = "oblivious"
)

// Dropout rules of aggregation encrypted with a threshold: what happens to a
// party that vanishes after the keys are made but before all its
// ciphertexts are in.
const (
	// DropoutAbort aborts the session, naming the party (the default).
	DropoutAbort = "abort"
	// DropoutLeaveOut completes the session without the party's
	// contributions (its records still count in the intersection, which was
	// computed before), as long as t parties remain; the Result lists it in
	// left_out.
	DropoutLeaveOut = "leave_out"
)

// DefaultMaxSetSize is the largest set a party may declare when the spec does
// not say. It enters the overflow check on aggregate bounds.
const DefaultMaxSetSize = 10_000_000

// MaxMaxSetSize bounds max_set_size: positions are 32-bit.
const MaxMaxSetSize = 1 << 31

// MaxScale is the largest fixed-point scale (decimal digits).
const MaxScale = 9

// Limits of aggregation encrypted. They mirror package sharing/mhe (its
// plaintext modulus and parameter limits; a test in package party checks
// that they agree), so that a spec the encrypted mode cannot run is refused
// here, with an error naming the field, and this package does not depend on
// lattigo.
const (
	// EncryptedPlaintextModulus is T, the BGV plaintext modulus (≈ 2^55) in
	// which the encrypted aggregate is computed. Every slot total must stay
	// below T/2 in absolute value: 2 · parties · max_set_size ·
	// max|contribution| < T.
	EncryptedPlaintextModulus uint64 = 36028797019389953
	// EncryptedMaxParties is the largest number of parties.
	EncryptedMaxParties = 256
	// EncryptedMaxThreshold is the largest threshold t (the number of
	// parties in the key switch): their smudging noise must stay below the
	// decryption bound of the ciphertext modulus.
	EncryptedMaxThreshold = 64
	// EncryptedMaxSetSize is the largest max_set_size.
	EncryptedMaxSetSize = 1 << 26
	// EncryptedMaxSlots is the largest aggregate vector length L.
	EncryptedMaxSlots = 256
)

// Spec is a session spec as written in the spec file (doc/DESIGN.md §3). Parse and
// validate it with [ParseSpec] or [LoadSpec]; a Spec returned by them is
// valid and must not be modified.
type Spec struct {
	ID          string            `json:"id"`
	Parties     []string          `json:"parties"`
	Fields      map[string]string `json:"fields"`
	Match       Match             `json:"match"`
	Reveal      []string          `json:"reveal"`
	Aggregates  []Aggregate       `json:"aggregates,omitempty"`
	MinCell     int               `json:"min_cell"`
	MaxSetSize  int               `json:"max_set_size,omitempty"`
	Aggregation string            `json:"aggregation,omitempty"`
	// Threshold is t for aggregation encrypted: any t parties can switch
	// the encrypted aggregate to the recipient's key (the secret key is
	// t-of-n shared). Absent or 0 means n-of-n; [Spec.Validate] then fills
	// in the number of parties. It must be absent with aggregation masked.
	Threshold int `json:"threshold,omitempty"`
	// Dropout is the dropout rule of aggregation encrypted with a threshold
	// t < n: DropoutAbort (absent) or DropoutLeaveOut. A party that vanishes
	// after sending all its ciphertexts never aborts such a session (its
	// contributions count) as long as t parties remain for the key switch.
	Dropout string `json:"dropout,omitempty"`
	// Privacy, if set, makes every party add discrete Gaussian noise to
	// its contribution, calibrated to (epsilon, delta) (see [Privacy]).
	Privacy *Privacy `json:"privacy,omitempty"`

	// index maps each party to its position in Parties, built once by
	// [Spec.Validate] so lookups stay linear in the number of parties.
	index map[string]int
	// keys are the parsed match keys, built by [Spec.Validate].
	keys [][]ident.KeyField
	// clk is the parsed CLK schema of mode clk.
	clk *clk.Schema
}

// MaxMatchKeys is the largest number of match keys a spec may list.
const MaxMatchKeys = 8

// Match says which logical fields form the match keys and how tokens are made.
type Match struct {
	// Fields is the one-key shorthand: the logical fields of the only
	// key, without transforms. Exactly one of Fields and Keys is given.
	Fields []string `json:"fields,omitempty"`
	// Keys is the ordered list of match keys (doc/DESIGN.md §3, "Match
	// keys"): each a list of fields, a field written "field" or
	// "field|transform" (transforms in package ident). Records of
	// different parties are linked when they agree on any key; groups are
	// built key by key, one record per party.
	Keys [][]string `json:"keys,omitempty"`
	Mode string     `json:"mode,omitempty"`
	// Schema is, with mode clk, the clkhash linkage schema (version 3)
	// inline; [LoadSpec] replaces a string (a file name, relative to the
	// spec file) by the file's contents.
	Schema json.RawMessage `json:"schema,omitempty"`
	// Threshold is, with mode clk, the Sørensen–Dice similarity (0, 1] at
	// which two CLKs are candidates for one group.
	Threshold float64 `json:"threshold,omitempty"`
	// Group is the dh ring's group: psi.GroupRistretto255 (the default)
	// or psi.GroupX25519 (the same hash to ristretto255, hops on X25519).
	// Only with mode dh.
	Group string `json:"group,omitempty"`
}

// Aggregate is one released statistic.
type Aggregate struct {
	Name     string    `json:"name"`
	Kind     string    `json:"kind"`
	Field    string    `json:"field,omitempty"`
	From     []string  `json:"from,omitempty"`
	Min      *float64  `json:"min,omitempty"`
	Max      *float64  `json:"max,omitempty"`
	Scale    int       `json:"scale,omitempty"`
	Edges    []float64 `json:"edges,omitempty"`
	Equals   *string   `json:"equals,omitempty"`
	Contains *string   `json:"contains,omitempty"`
	// Rounding says what becomes of a record value with more decimals
	// than Scale: "" (the default) refuses it, RoundingHalfEven,
	// RoundingHalfUp or RoundingTruncate round it exactly, in decimal
	// ([ParseFixedRounding]). Only for sum, mean, variance and histogram.
	Rounding string `json:"rounding,omitempty"`
}

// LoadSpec reads and validates a spec file: JSON, or YAML when the name ends
// in .yaml or .yml. Errors name the file.
func LoadSpec(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("session: reading spec: %w", err)
	}
	yamlFile := strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")
	if yamlFile {
		if b, err = yamlToJSON(b); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
	}
	if b, err = inlineSchema(b, filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	s, err := parse(b, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return s, nil
}

// inlineSchema replaces a match.schema given as a string by the contents of
// the file it names (relative to dir). Other specs are returned unchanged.
func inlineSchema(b []byte, dir string) ([]byte, error) {
	var probe struct {
		Match struct {
			Schema json.RawMessage `json:"schema"`
		} `json:"match"`
	}
	if json.Unmarshal(b, &probe) != nil || len(probe.Match.Schema) == 0 || probe.Match.Schema[0] != '"' {
		return b, nil // not a file name; parse reports any error
	}
	var name string
	if err := json.Unmarshal(probe.Match.Schema, &name); err != nil {
		return nil, fmt.Errorf("%w: match.schema: %v", ErrInvalidSpec, err)
	}
	if !filepath.IsAbs(name) {
		name = filepath.Join(dir, name)
	}
	schema, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("%w: match.schema: %v", ErrInvalidSpec, err)
	}
	if !json.Valid(schema) {
		return nil, fmt.Errorf("%w: match.schema: %s is not JSON", ErrInvalidSpec, filepath.Base(name))
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSpec, err)
	}
	m["match"].(map[string]any)["schema"] = json.RawMessage(schema)
	return json.Marshal(m)
}

// yamlToJSON converts a YAML spec to JSON.
func yamlToJSON(b []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSpec, err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: YAML must be a mapping with string keys: %v", ErrInvalidSpec, err)
	}
	return j, nil
}

// ParseSpec parses and validates a JSON spec. Unknown fields are refused.
func ParseSpec(b []byte) (*Spec, error) { return parse(b, false) }

// ParseSpecYAML parses and validates a YAML spec with the same fields.
func ParseSpecYAML(b []byte) (*Spec, error) { return parse(b, true) }

func parse(b []byte, isYAML bool) (*Spec, error) {
	if isYAML {
		j, err := yamlToJSON(b)
		if err != nil {
			return nil, err
		}
		b = j
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidSpec, describeJSONError(b, err))
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the spec object", ErrInvalidSpec)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

func describeJSONError(b []byte, err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("line %d: %v", lineOf(b, se.Offset), se)
	case errors.As(err, &te):
		return fmt.Sprintf("line %d: %s: expected %s, got %s", lineOf(b, te.Offset), te.Field, te.Type, te.Value)
	}
	return err.Error()
}

func lineOf(b []byte, off int64) int {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	return 1 + bytes.Count(b[:off], []byte("\n"))
}

func specErr(field, format string, a ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidSpec, field, fmt.Sprintf(format, a...))
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// Validate checks the spec and fills defaults (match mode dh, aggregation
// masked, max_set_size, from = all parties, histogram min/max from the
// edges). Every error wraps [ErrInvalidSpec] and names the field.
func (s *Spec) Validate() error {
	if s.ID == "" || len(s.ID) > psi.MaxSessionIDSize || !validName(s.ID) {
		return specErr("id", "%q must be 1 to 64 characters of letters, digits, '-', '_' or '.'", s.ID)
	}
	if len(s.Parties) < 2 {
		return specErr("parties", "need at least 2 parties, have %d", len(s.Parties))
	}
	index := make(map[string]int, len(s.Parties))
	for i, p := range s.Parties {
		if !validName(p) {
			return specErr(fmt.Sprintf("parties[%d]", i), "%q is not a valid party name", p)
		}
		if _, dup := index[p]; dup {
			return specErr(fmt.Sprintf("parties[%d]", i), "duplicate party %q", p)
		}
		index[p] = i
	}
	s.index = index
	if len(s.Fields) == 0 && s.Match.Mode != ModeCLK {
		return specErr("fields", "no logical fields declared")
	}
	for _, name := range slices.Sorted(mapsKeys(s.Fields)) {
		if !validName(name) {
			return specErr("fields", "%q is not a valid field name", name)
		}
		if _, err := ident.ParseType(s.Fields[name]); err != nil {
			return specErr("fields."+name, "%v", err)
		}
	}
	if s.Match.Mode == ModeCLK {
		if err := s.validateCLK(); err != nil {
			return err
		}
	} else {
		if s.Match.Schema != nil || s.Match.Threshold != 0 {
			return specErr("match", "schema and threshold apply to mode clk only")
		}
		if err := s.validateKeys(); err != nil {
			return err
		}
	}
	switch s.Match.Mode {
	case "":
		s.Match.Mode = ModeDH
	case ModeDH, ModeKeyed, ModeCLK:
	default:
		return specErr("match.mode", "%q is not a mode (dh, keyed or clk)", s.Match.Mode)
	}
	switch {
	case s.Match.Mode != ModeDH && s.Match.Group != "":
		return specErr("match.group", "%q given but groups apply to mode dh only", s.Match.Group)
	case s.Match.Mode != ModeDH:
	case s.Match.Group == "":
		s.Match.Group = psi.GroupRistretto255
	case s.Match.Group != psi.GroupRistretto255 && s.Match.Group != psi.GroupX25519:
		return specErr("match.group", "%q is not a dh group (%s or %s)", s.Match.Group, psi.GroupRistretto255, psi.GroupX25519)
	}
	if len(s.Reveal) == 0 {
		return specErr("reveal", "empty: nothing would be released")
	}
	rseen := map[string]bool{}
	for i, r := range s.Reveal {
		switch r {
		case RevealCardinality, RevealPairwise, RevealAggregates, RevealMembership:
		default:
			return specErr(fmt.Sprintf("reveal[%d]", i), "%q is not one of cardinality, pairwise, aggregates, membership", r)
		}
		if rseen[r] {
			return specErr(fmt.Sprintf("reveal[%d]", i), "duplicate %q", r)
		}
		rseen[r] = true
	}
	if s.MinCell < 0 {
		return specErr("min_cell", "must not be negative, is %d", s.MinCell)
	}
	switch {
	case s.MaxSetSize == 0:
		s.MaxSetSize = DefaultMaxSetSize
	case s.MaxSetSize < 0 || s.MaxSetSize > MaxMaxSetSize:
		return specErr("max_set_size", "must be between 1 and %d, is %d", MaxMaxSetSize, s.MaxSetSize)
	}
	switch s.Aggregation {
	case "":
		s.Aggregation = AggregationMasked
	case AggregationMasked:
	case AggregationEncrypted:
	case AggregationOblivious:
		for i, r := range s.Reveal {
			if r == RevealMembership {
				return specErr(fmt.Sprintf("reveal[%d]", i), "%q cannot be used with aggregation %q: in that mode no party learns which of its records are shared", r, AggregationOblivious)
			}
		}
	default:
		return specErr("aggregation", "%q is not an aggregation mode (masked, oblivious or encrypted)", s.Aggregation)
	}
	if s.Aggregation == AggregationEncrypted {
		if err := s.validateEncryptedSetup(); err != nil {
			return err
		}
	} else if s.Threshold != 0 {
		return specErr("threshold", "applies only to aggregation %q (masked aggregation needs every party)", AggregationEncrypted)
	} else if s.Dropout != "" {
		return specErr("dropout", "applies only to aggregation %q with a threshold", AggregationEncrypted)
	}
	if rseen[RevealAggregates] && len(s.Aggregates) == 0 {
		return specErr("aggregates", "reveal lists aggregates but none are declared")
	}
	aseen := map[string]bool{}
	for i := range s.Aggregates {
		a := &s.Aggregates[i]
		if err := s.validateAggregate(fmt.Sprintf("aggregates[%d]", i), a); err != nil {
			return err
		}
		if aseen[a.Name] {
			return specErr(fmt.Sprintf("aggregates[%d].name", i), "duplicate aggregate %q", a.Name)
		}
		aseen[a.Name] = true
	}
	if err := s.validatePrivacy(); err != nil {
		return err
	}
	if s.Aggregation == AggregationEncrypted {
		return s.checkEncryptedBounds()
	}
	return nil
}

// validateEncryptedSetup checks what aggregation encrypted needs of the
// parties, the reveal list, max_set_size and threshold, and fills in the
// default threshold (n-of-n).
func (s *Spec) validateEncryptedSetup() error {
	n := len(s.Parties)
	if n > EncryptedMaxParties {
		return specErr("parties", "aggregation %q supports at most %d parties, have %d", AggregationEncrypted, EncryptedMaxParties, n)
	}
	for i, r := range s.Reveal {
		if r == RevealMembership {
			return specErr(fmt.Sprintf("reveal[%d]", i), "%q cannot be used with aggregation %q: in that mode no party learns which of its records are shared", r, AggregationEncrypted)
		}
	}
	if s.MaxSetSize > EncryptedMaxSetSize {
		return specErr("max_set_size", "at most %d with aggregation %q, is %d", EncryptedMaxSetSize, AggregationEncrypted, s.MaxSetSize)
	}
	switch {
	case s.Threshold == 0:
		if n > EncryptedMaxThreshold {
			return specErr("threshold", "absent means all %d parties take part in the key switch, more than %d; set a threshold between 2 and %d", n, EncryptedMaxThreshold, EncryptedMaxThreshold)
		}
		s.Threshold = n
	case s.Threshold < 2 || s.Threshold > n:
		return specErr("threshold", "must be between 2 and %d (the number of parties), is %d", n, s.Threshold)
	case s.Threshold > EncryptedMaxThreshold:
		return specErr("threshold", "at most %d parties can take part in the key switch, is %d", EncryptedMaxThreshold, s.Threshold)
	}
	switch s.Dropout {
	case "":
		if s.Threshold < n {
			s.Dropout = DropoutAbort
		}
	case DropoutAbort, DropoutLeaveOut:
		if s.Threshold == n {
			return specErr("dropout", "needs a threshold below the number of parties (%d): with n-of-n keys every party must take part in the key switch", n)
		}
	default:
		return specErr("dropout", "%q is not a dropout rule (%s or %s)", s.Dropout, DropoutAbort, DropoutLeaveOut)
	}
	return nil
}

// checkEncryptedBounds refuses aggregates whose largest possible slot total
// does not fit the plaintext modulus of aggregation encrypted, and aggregate
// vectors longer than [EncryptedMaxSlots]. Run it on a validated spec.
func (s *Spec) checkEncryptedBounds() error {
	slots := s.slotBounds()
	if len(slots) > EncryptedMaxSlots {
		return specErr("aggregates", "the aggregate vector has %d slots, more than %d with aggregation %q; use fewer aggregates or histogram bins", len(slots), EncryptedMaxSlots, AggregationEncrypted)
	}
	n := len(s.Parties)
	limit := new(big.Int).SetUint64(EncryptedPlaintextModulus)
	noise := s.NoiseBounds()
	for j, sl := range slots {
		// Every encrypted value is bounded by the larger of the record
		// bound and (with privacy) the noise's clipping bound, over
		// max_set_size records plus the noise row.
		b := sl.bound
		if noise != nil {
			b = max(b, noise[j])
		}
		total := new(big.Int).SetUint64(b)
		total.Mul(total, big.NewInt(2*int64(n)*int64(s.MaxSetSize+s.NoiseRows())))
		if total.Cmp(limit) >= 0 {
			return specErr(fmt.Sprintf("aggregates[%d] (%s)", sl.agg, s.Aggregates[sl.agg].Name),
				"bounds do not fit the plaintext modulus of aggregation %q: 2 × %s × %d parties × max_set_size %d ≥ T ≈ 2^55; narrow min/max or lower max_set_size",
				AggregationEncrypted, sl.what, n, s.MaxSetSize)
		}
	}
	return nil
}

type slotBound struct {
	agg   int    // index of the aggregate in the spec
	bound uint64 // largest |contribution| of one record
	what  string // how the bound is derived, for errors
}

// slotBounds lists the slots of the aggregate vector of a valid spec in
// [Layout] order, with the largest absolute value one record contributes.
func (s *Spec) slotBounds() []slotBound {
	var out []slotBound
	for i := range s.Aggregates {
		a := &s.Aggregates[i]
		switch a.Kind {
		case KindSum, KindMean, KindVariance:
			lo, _ := FixedFromFloat(*a.Min, a.Scale)
			hi, _ := FixedFromFloat(*a.Max, a.Scale)
			m := max(absInt64(lo), absInt64(hi))
			out = append(out, slotBound{i, m, "max(|min|,|max|)·10^scale"})
			if a.Kind == KindVariance {
				out = append(out, slotBound{i, m * m, "(max(|min|,|max|)·10^scale)²"})
			}
			out = append(out, slotBound{i, 1, "1 (a contribution count)"})
		case KindHistogram:
			for range len(a.Edges) - 1 {
				out = append(out, slotBound{i, 1, "1 (a bin count)"})
			}
		default:
			out = append(out, slotBound{i, 1, "1 (a count)"})
		}
	}
	return out
}

// ContributionBounds returns, for each slot of the aggregate vector in
// [Layout] order, the largest absolute value one record can contribute to
// it: max(|min|, |max|)·10^scale for a sum of values, its square for a sum
// of squares, and 1 for a count, a contribution count or a histogram bin.
// Aggregation encrypted declares them in its parameters. s must be valid.
func (s *Spec) ContributionBounds() []uint64 {
	slots := s.slotBounds()
	out := make([]uint64, len(slots))
	for j, sl := range slots {
		out[j] = sl.bound
	}
	return out
}

func absInt64(v int64) uint64 {
	if v < 0 {
		return uint64(-v)
	}
	return uint64(v)
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (s *Spec) validateAggregate(at string, a *Aggregate) error {
	if !validName(a.Name) {
		return specErr(at+".name", "%q is not a valid aggregate name", a.Name)
	}
	at = fmt.Sprintf("%s (%s)", at, a.Name)
	var fieldType ident.Type
	if a.Field != "" {
		t, ok := s.Fields[a.Field]
		if !ok {
			return specErr(at+".field", "%q is not a declared field", a.Field)
		}
		fieldType, _ = ident.ParseType(t)
	}
	numeric := func() error {
		if a.Field == "" {
			return specErr(at+".field", "required for kind %s", a.Kind)
		}
		if fieldType != ident.TypeNumber {
			return specErr(at+".field", "%q has type %s; kind %s needs a number field", a.Field, fieldType, a.Kind)
		}
		return nil
	}
	switch a.Kind {
	case KindCount:
	case KindSum, KindMean, KindVariance, KindHistogram:
		if err := numeric(); err != nil {
			return err
		}
	case KindCountIf:
		if a.Field == "" {
			return specErr(at+".field", "required for kind count_if")
		}
		if (a.Equals == nil) == (a.Contains == nil) {
			return specErr(at, "count_if needs exactly one of equals or contains")
		}
		if a.Contains != nil && fieldType != ident.TypeCodes {
			return specErr(at+".contains", "field %q has type %s; contains needs a codes field", a.Field, fieldType)
		}
		if a.Contains != nil && strings.TrimSpace(*a.Contains) == "" {
			return specErr(at+".contains", "empty code")
		}
	case "":
		return specErr(at+".kind", "missing")
	default:
		return specErr(at+".kind", "%q is not one of count, sum, mean, variance, histogram, count_if", a.Kind)
	}
	if a.Kind != KindCountIf && (a.Equals != nil || a.Contains != nil) {
		return specErr(at, "equals/contains apply only to count_if")
	}
	if a.Kind != KindHistogram && len(a.Edges) > 0 {
		return specErr(at+".edges", "apply only to histogram")
	}
	if len(a.From) == 0 {
		a.From = slices.Clone(s.Parties)
	}
	fseen := map[string]bool{}
	for j, p := range a.From {
		if s.PartyIndex(p) < 0 {
			return specErr(fmt.Sprintf("%s.from[%d]", at, j), "%q is not a party", p)
		}
		if fseen[p] {
			return specErr(fmt.Sprintf("%s.from[%d]", at, j), "duplicate party %q", p)
		}
		fseen[p] = true
	}
	if a.Scale < 0 || a.Scale > MaxScale {
		return specErr(at+".scale", "must be between 0 and %d, is %d", MaxScale, a.Scale)
	}
	if err := checkRounding(at, a); err != nil {
		return err
	}
	if a.Kind == KindHistogram {
		if len(a.Edges) < 2 {
			return specErr(at+".edges", "need at least 2 edges, have %d", len(a.Edges))
		}
		for j := 1; j < len(a.Edges); j++ {
			if !(a.Edges[j] > a.Edges[j-1]) {
				return specErr(at+".edges", "must be strictly increasing (edges[%d] = %v, edges[%d] = %v)", j-1, a.Edges[j-1], j, a.Edges[j])
			}
		}
		if a.Min == nil {
			a.Min = &a.Edges[0]
		}
		if a.Max == nil {
			a.Max = &a.Edges[len(a.Edges)-1]
		}
		if a.Edges[0] > *a.Min || a.Edges[len(a.Edges)-1] < *a.Max {
			return specErr(at+".edges", "[%v, %v] does not cover [min, max] = [%v, %v]", a.Edges[0], a.Edges[len(a.Edges)-1], *a.Min, *a.Max)
		}
	}
	switch a.Kind {
	case KindSum, KindMean, KindVariance, KindHistogram:
		if a.Min == nil || a.Max == nil {
			return specErr(at, "min and max are required for kind %s", a.Kind)
		}
		if !(*a.Min <= *a.Max) {
			return specErr(at, "min %v is greater than max %v", *a.Min, *a.Max)
		}
		for _, b := range []struct {
			name string
			v    float64
		}{{"min", *a.Min}, {"max", *a.Max}} {
			if _, err := FixedFromFloat(b.v, a.Scale); err != nil {
				return specErr(at+"."+b.name, "%v", err)
			}
		}
		if err := s.checkOverflow(at, a); err != nil {
			return err
		}
	default:
		if a.Min != nil || a.Max != nil {
			return specErr(at, "min/max apply only to sum, mean, variance and histogram")
		}
	}
	return nil
}

// checkOverflow refuses bounds whose largest possible slot total, with every
// listed party contributing max_set_size values, reaches 2^63.
func (s *Spec) checkOverflow(at string, a *Aggregate) error {
	lo, _ := FixedFromFloat(*a.Min, a.Scale)
	hi, _ := FixedFromFloat(*a.Max, a.Scale)
	m := new(big.Int).Abs(big.NewInt(lo))
	if h := new(big.Int).Abs(big.NewInt(hi)); h.Cmp(m) > 0 {
		m = h
	}
	if a.Kind == KindVariance {
		m.Mul(m, m)
	}
	total := new(big.Int).Mul(m, big.NewInt(int64(len(a.From))*int64(s.MaxSetSize)))
	if total.Cmp(new(big.Int).Lsh(big.NewInt(1), 63)) >= 0 {
		what := "max(|min|,|max|)·10^scale"
		if a.Kind == KindVariance {
			what = "(max(|min|,|max|)·10^scale)²"
		}
		return specErr(at, "bounds could overflow 2^63: %s × %d parties × max_set_size %d ≥ 2^63; narrow min/max or lower max_set_size", what, len(a.From), s.MaxSetSize)
	}
	return nil
}

// PartyIndex returns the index of name in Parties, or -1. On a validated
// spec it is a map lookup.
func (s *Spec) PartyIndex(name string) int {
	if s.index == nil || len(s.index) != len(s.Parties) {
		return slices.Index(s.Parties, name)
	}
	if i, ok := s.index[name]; ok {
		return i
	}
	return -1
}

// Reveals reports whether the reveal list holds r.
func (s *Spec) Reveals(r string) bool { return slices.Contains(s.Reveal, r) }

// FieldType returns the declared type of a logical field.
func (s *Spec) FieldType(name string) (ident.Type, bool) {
	t, ok := s.Fields[name]
	if !ok {
		return "", false
	}
	ty, err := ident.ParseType(t)
	return ty, err == nil
}

// Canonical returns the spec as compact JSON with defaults filled in, used
// to compare the specs two participants hold and to hash the spec into the
// audit log.
func (s *Spec) Canonical() []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic("session: marshalling a validated spec failed: " + err.Error())
	}
	return b
}

var errNotFinite = errors.New("not a finite number")

// FixedFromFloat converts a spec bound or edge to fixed point at scale,
// refusing values with more decimals than the scale or beyond ±2^62.
func FixedFromFloat(v float64, scale int) (int64, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, errNotFinite
	}
	r, ok := new(big.Rat).SetString(fmt.Sprintf("%v", v))
	if !ok {
		return 0, errNotFinite
	}
	return ratToFixed(r, scale, fmt.Sprintf("%v", v))
}

func ratToFixed(r *big.Rat, scale int, orig string) (int64, error) {
	r = new(big.Rat).Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)))
	if !r.IsInt() {
		return 0, fmt.Errorf("%s has more than %d decimal places (the declared scale)", orig, scale)
	}
	n := r.Num()
	if n.CmpAbs(new(big.Int).Lsh(big.NewInt(1), 62)) > 0 {
		return 0, fmt.Errorf("%s is too large", orig)
	}
	return n.Int64(), nil
}

// validateKeys checks match.fields or match.keys and fills s.keys.
func (s *Spec) validateKeys() error {
	keys, at := s.Match.Keys, "match.keys"
	switch {
	case len(s.Match.Fields) > 0 && len(s.Match.Keys) > 0:
		return specErr("match", "give fields (one key) or keys, not both")
	case len(s.Match.Fields) > 0:
		keys, at = [][]string{s.Match.Fields}, "match.fields"
	case len(s.Match.Keys) == 0:
		return specErr("match.fields", "no match fields")
	case len(s.Match.Keys) > MaxMatchKeys:
		return specErr(at, "%d keys, at most %d", len(s.Match.Keys), MaxMatchKeys)
	}
	s.keys = make([][]ident.KeyField, len(keys))
	kseen := make(map[string]int, len(keys))
	for k, key := range keys {
		kat := fmt.Sprintf("%s[%d]", at, k)
		if at == "match.fields" {
			kat = at
		}
		if len(key) == 0 {
			return specErr(kat, "an empty key")
		}
		fseen := map[string]bool{}
		for i, f := range key {
			fld := fmt.Sprintf("%s[%d]", kat, i)
			kf, err := ident.ParseKeyField(f)
			if err != nil {
				name, tr, _ := strings.Cut(f, ident.KeySeparator)
				if name != "" && tr != "" {
					return specErr(fld, "unknown transform %q (want soundex, initial, year, year_month, day_month_unordered, digits or last4)", tr)
				}
				return specErr(fld, "%q is not a field or field|transform", f)
			}
			t, ok := s.Fields[kf.Field]
			if !ok {
				return specErr(fld, "%q is not a declared field", kf.Field)
			}
			ty, _ := ident.ParseType(t)
			if !ty.Matchable() {
				return specErr(fld, "%q has type %s, which cannot be matched on (use name, date, sex or id)", kf.Field, t)
			}
			if !kf.Transform.Accepts(ty) {
				return specErr(fld, "transform %s applies to %s fields; %q is %s", kf.Transform, kf.Transform.Input(), kf.Field, t)
			}
			if fseen[f] {
				return specErr(fld, "duplicate match field %q", f)
			}
			fseen[f] = true
			s.keys[k] = append(s.keys[k], kf)
		}
		canon := strings.Join(key, "\x00")
		if first, dup := kseen[canon]; dup {
			return specErr(kat, "the same key as %s[%d]", at, first)
		}
		kseen[canon] = k
	}
	return nil
}

// validateCLK checks mode clk's schema and threshold and fills s.clk.
func (s *Spec) validateCLK() error {
	switch {
	case len(s.Match.Fields) > 0 || len(s.Match.Keys) > 0:
		return specErr("match", "mode clk links on the schema's features: give no fields or keys")
	case len(s.Match.Schema) == 0:
		return specErr("match.schema", "mode clk needs a clkhash linkage schema (inline, or a file name in a spec file)")
	case s.Match.Schema[0] == '"':
		return specErr("match.schema", "a file name is read only from a spec file (mpsi session create --spec FILE); inline the schema")
	case !(s.Match.Threshold > 0 && s.Match.Threshold <= 1):
		return specErr("match.threshold", "%v must be in (0, 1] (the Dice similarity of a candidate pair)", s.Match.Threshold)
	}
	sc, err := clk.ParseSchema(s.Match.Schema)
	if err != nil {
		return specErr("match.schema", "%v", err)
	}
	s.clk = sc
	return nil
}

// CLKSchema returns the parsed CLK schema of a mode clk spec (nil in other
// modes). The spec must be valid; the schema is shared and immutable.
func (s *Spec) CLKSchema() *clk.Schema {
	if s.Match.Mode == ModeCLK && s.clk == nil {
		_ = s.validateCLK()
	}
	return s.clk
}

// GroupKeyed reports whether the parties agree on a group key that the
// coordinator never sees (modes keyed and clk).
func (s *Spec) GroupKeyed() bool { return s.Match.Mode == ModeKeyed || s.Match.Mode == ModeCLK }

// MatchKeys returns the spec's match keys, parsed: one key of the match
// fields for the one-key shorthand; nil in mode clk. The spec must be
// valid; the result is shared and must not be modified.
func (s *Spec) MatchKeys() [][]ident.KeyField {
	if s.Match.Mode == ModeCLK {
		return nil
	}
	if s.keys == nil {
		if err := s.validateKeys(); err != nil {
			return nil
		}
	}
	return s.keys
}

// MatchFieldNames returns the logical fields used by any match key, each
// once, in order of first use; in mode clk, the schema's features that are
// not ignored.
func (s *Spec) MatchFieldNames() []string {
	var out []string
	if sc := s.CLKSchema(); sc != nil {
		for _, f := range sc.Features {
			if !f.Ignored {
				out = append(out, f.Identifier)
			}
		}
		return out
	}
	for _, key := range s.MatchKeys() {
		for _, kf := range key {
			if !slices.Contains(out, kf.Field) {
				out = append(out, kf.Field)
			}
		}
	}
	return out
}
