package clk

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ErrSchema is wrapped by every error that reports an invalid or unsupported
// linkage schema. The concrete error is a [*SchemaError] naming the JSON path.
var ErrSchema = errors.New("clk: invalid linkage schema")

// SchemaError reports a problem at one place of a linkage schema.
type SchemaError struct {
	// Path is the JSON path of the offending value, for example
	// "features[2].hashing.strategy". Empty for the document as a whole.
	Path string
	// Msg says what is wrong. It never contains a record value.
	Msg string
}

// Error names the schema path of the fault.
func (e *SchemaError) Error() string {
	if e.Path == "" {
		return "linkage schema: " + e.Msg
	}
	return "linkage schema: " + e.Path + ": " + e.Msg
}

// Unwrap makes errors.Is(err, ErrSchema) hold.
func (e *SchemaError) Unwrap() error { return ErrSchema }

// HashType names the function that maps a token to Bloom filter positions.
type HashType string

// The two hash types of clkhash linkage schema version 3.
const (
	// DoubleHash is the HMAC-SHA1/HMAC-MD5 double hashing of Schnell et al.
	DoubleHash HashType = "doubleHash"
	// BlakeHash slices keyed BLAKE2b outputs into independent positions
	// (the schema's default).
	BlakeHash HashType = "blakeHash"
)

// FormatType is the type of a feature's values.
type FormatType string

// The value formats of schema version 3.
const (
	FormatString  FormatType = "string"
	FormatInteger FormatType = "integer"
	FormatDate    FormatType = "date"
	FormatEnum    FormatType = "enum"
)

// ComparisonType is the tokenisation of a feature's values.
type ComparisonType string

// The comparisons of schema version 3.
const (
	ComparisonNgram   ComparisonType = "ngram"
	ComparisonExact   ComparisonType = "exact"
	ComparisonNumeric ComparisonType = "numeric"
)

// Schema is a parsed clkhash linkage schema (version 3). It is immutable
// after [ParseSchema] and safe for concurrent use.
type Schema struct {
	// Bits is the length of a CLK in bits (clkConfig.l), after XOR folding.
	Bits int
	// XORFolds is the number of times the filter is folded in half with XOR
	// before it is output (clkConfig.xor_folds, as clkhash 0.18.3 reads it).
	XORFolds int
	// KDF holds the HKDF parameters that derive per-feature keys from the
	// shared secret.
	KDF KDF
	// Features are the columns, in the order records carry them.
	Features []Feature

	fingerprint [32]byte
}

// KDF holds the schema's HKDF (RFC 5869) parameters.
type KDF struct {
	Hash    string // "SHA256" or "SHA512"
	Salt    []byte // nil when absent (HKDF then uses a zero salt)
	Info    []byte // nil when absent
	KeySize int    // bytes per derived key
}

// Feature is one column of the records.
type Feature struct {
	Identifier string
	// Ignored features take a column (and a key slot) but set no bits.
	Ignored bool
	Format  Format
	Hashing Hashing
}

// Format describes a feature's values and how they are normalised before
// tokenisation.
type Format struct {
	Type FormatType
	// Encoding turns tokens of string features into bytes: "utf-8" (the
	// default), "ascii", "utf-16" or "utf-32" (the last two with a byte-order
	// mark in front of every token, as Python's codecs do).
	Encoding string
	// Pattern, Case, MinLength, MaxLength validate string values.
	Pattern   string
	Case      string // "lower", "upper" or "mixed"
	MinLength *int
	MaxLength *int
	// Minimum and Maximum bound integer values.
	Minimum, Maximum *big.Int
	// DateFormat is the strptime format of date values.
	DateFormat string
	// Values are the permitted enum values.
	Values []string

	pattern *regexp.Regexp
	date    *dateLayout
	values  map[string]bool
}

// Hashing says how a feature's tokens are inserted into the filter.
type Hashing struct {
	Hash               HashType
	PreventSingularity bool
	// Exactly one of BitsPerToken and BitsPerFeature is positive.
	BitsPerToken   int
	BitsPerFeature int
	Comparison     Comparison
	// Missing is nil when the schema names no missing-value sentinel.
	Missing *MissingValue
}

// Comparison is a feature's tokeniser.
type Comparison struct {
	Type       ComparisonType
	N          int  // ngram
	Positional bool // ngram
	// numeric: ThresholdDistance is kept as the schema wrote it.
	ThresholdDistance   json.Number
	Resolution          int
	FractionalPrecision int

	distanceInterval *big.Int
}

// MissingValue replaces a sentinel value before tokenisation, skipping
// format validation.
type MissingValue struct {
	Sentinel    string
	ReplaceWith string
}

// Fingerprint returns a SHA-256 digest of the schema's canonical form
// (every parameter that changes an encoding, and nothing else). Two parties
// whose CLKs are to be compared must hold schemas with equal fingerprints.
func (s *Schema) Fingerprint() [32]byte { return s.fingerprint }

// Bytes is the length of one CLK in bytes.
func (s *Schema) Bytes() int { return (s.Bits + 7) / 8 }

// Columns returns the feature identifiers in record order.
func (s *Schema) Columns() []string {
	out := make([]string, len(s.Features))
	for i, f := range s.Features {
		out[i] = f.Identifier
	}
	return out
}

// CheckHeader reports whether a CSV header names the schema's features in
// order, as clkhash's header validation requires.
func (s *Schema) CheckHeader(header []string) error {
	if len(header) != len(s.Features) {
		return fmt.Errorf("%w: header has %d columns, the schema has %d features", ErrRecord, len(header), len(s.Features))
	}
	for i, f := range s.Features {
		if header[i] != f.Identifier {
			return fmt.Errorf("%w: header column %d is %q, the schema's feature %d is %q", ErrRecord, i+1, header[i], i, f.Identifier)
		}
	}
	return nil
}

// LoadSchema reads and parses a schema file. Errors name the file.
func LoadSchema(path string) (*Schema, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("clk: read schema: %w", err)
	}
	s, err := ParseSchema(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// maxBloomBits bounds l·2^folds: a filter this large is already far beyond
// any linkage use, and the bound keeps every index arithmetic in int.
const maxBloomBits = 1 << 20

// maxInsertions bounds bitsPerToken and bitsPerFeature: far above any
// useful value, low enough that one token cannot stall an encoder.
const maxInsertions = 1 << 14

// ParseSchema parses a clkhash linkage schema of version 3. It is strict:
// keys the master schema does not define are refused (a misspelt option
// would otherwise change nothing silently), and so are options whose
// clkhash 0.18.3 behaviour this package does not reproduce byte for byte.
func ParseSchema(data []byte) (*Schema, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return nil, &SchemaError{Msg: "not valid JSON: " + err.Error()}
	}
	if dec.More() {
		return nil, &SchemaError{Msg: "not valid JSON: data after the top-level value"}
	}
	p := parser{}
	s := p.schema(root)
	if p.err != nil {
		return nil, p.err
	}
	s.fingerprint = s.canonicalDigest()
	return s, nil
}

// parser walks the decoded JSON, keeping the first error.
type parser struct{ err error }

func (p *parser) fail(path, format string, args ...any) {
	if p.err == nil {
		p.err = &SchemaError{Path: path, Msg: fmt.Sprintf(format, args...)}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "unknown"
}

// object checks that v is an object whose keys are all in allowed and that
// required keys are present.
func (p *parser) object(path string, v any, required []string, allowed ...string) map[string]any {
	m, ok := v.(map[string]any)
	if !ok {
		p.fail(path, "must be an object, not %s", jsonType(v))
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		known := false
		for _, a := range append(allowed, required...) {
			if k == a {
				known = true
				break
			}
		}
		if !known {
			p.fail(join(path, k), "unknown key (allowed here: %s)", strings.Join(append(append([]string{}, required...), allowed...), ", "))
			return nil
		}
	}
	for _, r := range required {
		if _, ok := m[r]; !ok {
			p.fail(join(path, r), "required key is missing")
			return nil
		}
	}
	return m
}

func (p *parser) str(path string, v any) string {
	s, ok := v.(string)
	if !ok {
		p.fail(path, "must be a string, not %s", jsonType(v))
	}
	return s
}

func (p *parser) boolean(path string, v any) bool {
	b, ok := v.(bool)
	if !ok {
		p.fail(path, "must be a boolean, not %s", jsonType(v))
	}
	return b
}

// integer accepts integer literals only within [lo, hi].
func (p *parser) integer(path string, v any, lo, hi int64) int {
	n, ok := v.(json.Number)
	if !ok {
		p.fail(path, "must be an integer, not %s", jsonType(v))
		return 0
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil {
		p.fail(path, "must be an integer literal")
		return 0
	}
	if i < lo || i > hi {
		p.fail(path, "must be between %d and %d, not %d", lo, hi, i)
		return 0
	}
	return int(i)
}

func (p *parser) bigInteger(path string, v any) *big.Int {
	n, ok := v.(json.Number)
	if !ok {
		p.fail(path, "must be an integer, not %s", jsonType(v))
		return nil
	}
	b, ok := new(big.Int).SetString(n.String(), 10)
	if !ok {
		p.fail(path, "must be an integer literal")
		return nil
	}
	return b
}

func (p *parser) base64(path string, v any) []byte {
	s := p.str(path, v)
	if p.err != nil {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		p.fail(path, "must be standard base64: %v", err)
	}
	return b
}

func (p *parser) schema(root any) *Schema {
	m := p.object("", root, []string{"version", "clkConfig", "features"})
	if m == nil {
		return nil
	}
	if n, ok := m["version"].(json.Number); !ok || n.String() != "3" {
		p.fail("version", "only linkage schema version 3 is supported (convert older schemas with clkhash first)")
		return nil
	}
	s := &Schema{}
	cfg := p.object("clkConfig", m["clkConfig"], []string{"l", "kdf"}, "xor_folds", "xorFolds")
	if cfg == nil {
		return nil
	}
	s.Bits = p.integer("clkConfig.l", cfg["l"], 1, maxBloomBits)
	if v, ok := cfg["xorFolds"]; ok {
		// The master schema spells it xorFolds, but clkhash 0.18.3 reads
		// clkConfig.xor_folds and ignores xorFolds: honouring it would break
		// byte compatibility, ignoring it silently would mislead.
		if p.integer("clkConfig.xorFolds", v, 0, 30) != 0 {
			p.fail("clkConfig.xorFolds", "clkhash 0.18.3 ignores xorFolds (it reads xor_folds); write xor_folds to fold, or remove the key")
		}
	}
	if v, ok := cfg["xor_folds"]; ok {
		s.XORFolds = p.integer("clkConfig.xor_folds", v, 0, 30)
	}
	if p.err != nil {
		return nil
	}
	if int64(s.Bits)<<s.XORFolds > maxBloomBits {
		p.fail("clkConfig", "l·2^xor_folds must not exceed %d bits", maxBloomBits)
		return nil
	}
	kdf := p.object("clkConfig.kdf", cfg["kdf"], []string{"type"}, "hash", "salt", "info", "keySize")
	if kdf == nil {
		return nil
	}
	if t := p.str("clkConfig.kdf.type", kdf["type"]); p.err == nil && t != "HKDF" {
		p.fail("clkConfig.kdf.type", "unsupported key derivation %q (only HKDF)", t)
	}
	s.KDF = KDF{Hash: "SHA256", KeySize: 64}
	if v, ok := kdf["hash"]; ok {
		s.KDF.Hash = p.str("clkConfig.kdf.hash", v)
		if p.err == nil && s.KDF.Hash != "SHA256" && s.KDF.Hash != "SHA512" {
			p.fail("clkConfig.kdf.hash", "unsupported hash %q (SHA256 or SHA512)", s.KDF.Hash)
		}
	}
	if v, ok := kdf["salt"]; ok {
		s.KDF.Salt = p.base64("clkConfig.kdf.salt", v)
	}
	if v, ok := kdf["info"]; ok {
		s.KDF.Info = p.base64("clkConfig.kdf.info", v)
	}
	if v, ok := kdf["keySize"]; ok {
		s.KDF.KeySize = p.integer("clkConfig.kdf.keySize", v, 1, 1<<16)
	}
	feats, ok := m["features"].([]any)
	if !ok {
		p.fail("features", "must be an array, not %s", jsonType(m["features"]))
		return nil
	}
	if len(feats) == 0 {
		p.fail("features", "must name at least one feature")
		return nil
	}
	seen := map[string]int{}
	for i, fv := range feats {
		path := fmt.Sprintf("features[%d]", i)
		f := p.feature(path, fv, s.KDF.KeySize)
		if p.err != nil {
			return nil
		}
		if j, dup := seen[f.Identifier]; dup {
			p.fail(path+".identifier", "duplicates features[%d].identifier", j)
			return nil
		}
		seen[f.Identifier] = i
		s.Features = append(s.Features, f)
	}
	hashLen := 32
	if s.KDF.Hash == "SHA512" {
		hashLen = 64
	}
	if need := 2 * len(s.Features) * s.KDF.KeySize; need > 255*hashLen {
		p.fail("clkConfig.kdf.keySize", "HKDF-%s can derive at most %d bytes; %d features need 2×%d bytes each", s.KDF.Hash, 255*hashLen, len(s.Features), s.KDF.KeySize)
		return nil
	}
	for i, f := range s.Features {
		if !f.Ignored && f.Hashing.PreventSingularity && s.Bits<<s.XORFolds < 2 {
			// clkhash would loop forever: every residue mod 1 is zero.
			p.fail(fmt.Sprintf("features[%d].hashing.hash.prevent_singularity", i), "needs l·2^xor_folds of at least 2 bits")
			return nil
		}
		if !f.Ignored && f.Hashing.Hash == BlakeHash && (s.Bits<<s.XORFolds)&((s.Bits<<s.XORFolds)-1) != 0 {
			p.fail(fmt.Sprintf("features[%d].hashing.hash", i), "blakeHash needs l·2^xor_folds to be a power of two, not %d", s.Bits<<s.XORFolds)
			return nil
		}
	}
	return s
}

func (p *parser) feature(path string, v any, keySize int) Feature {
	m, ok := v.(map[string]any)
	if !ok {
		p.fail(path, "must be an object, not %s", jsonType(v))
		return Feature{}
	}
	var f Feature
	if ig, ok := m["ignored"]; ok && p.boolean(path+".ignored", ig) {
		// clkhash ignores such a feature's format and hashing, if any.
		m = p.object(path, v, []string{"identifier", "ignored"}, "description", "format", "hashing")
		if m == nil {
			return f
		}
		f.Identifier = p.str(path+".identifier", m["identifier"])
		f.Ignored = true
		return f
	}
	m = p.object(path, v, []string{"identifier", "format", "hashing"}, "description", "ignored")
	if m == nil {
		return f
	}
	f.Identifier = p.str(path+".identifier", m["identifier"])
	f.Format = p.format(path+".format", m["format"])
	f.Hashing = p.hashing(path+".hashing", m["hashing"])
	if p.err != nil {
		return f
	}
	if f.Format.Type != FormatString {
		f.Format.Encoding = "utf-8"
	}
	if f.Hashing.Hash == BlakeHash && keySize > 64 {
		p.fail(path+".hashing.hash", "blakeHash takes keys of at most 64 bytes; clkConfig.kdf.keySize is %d", keySize)
	}
	return f
}

func (p *parser) format(path string, v any) Format {
	m, ok := v.(map[string]any)
	if !ok {
		p.fail(path, "must be an object, not %s", jsonType(v))
		return Format{}
	}
	typ, _ := m["type"].(string)
	var f Format
	switch FormatType(typ) {
	case FormatString:
		if _, hasPattern := m["pattern"]; hasPattern {
			m = p.object(path, v, []string{"type", "pattern"}, "encoding", "description")
		} else {
			m = p.object(path, v, []string{"type"}, "encoding", "case", "minLength", "maxLength", "description")
		}
		if m == nil {
			return f
		}
		f.Type = FormatString
		f.Encoding = "utf-8"
		if e, ok := m["encoding"]; ok {
			f.Encoding = p.str(path+".encoding", e)
			switch f.Encoding {
			case "ascii", "utf-8", "utf-16", "utf-32":
			default:
				p.fail(path+".encoding", "unsupported encoding %q (ascii, utf-8, utf-16 or utf-32)", f.Encoding)
			}
		}
		if pat, ok := m["pattern"]; ok {
			f.Pattern = p.str(path+".pattern", pat)
			if p.err == nil {
				re, err := regexp.Compile(`\A(?:` + f.Pattern + `)\z`)
				if err != nil {
					p.fail(path+".pattern", "not a regular expression this package supports (RE2 syntax): %v", err)
				}
				f.pattern = re
			}
		}
		f.Case = "mixed"
		if c, ok := m["case"]; ok {
			f.Case = p.str(path+".case", c)
			if p.err == nil && f.Case != "lower" && f.Case != "upper" && f.Case != "mixed" {
				p.fail(path+".case", "must be lower, upper or mixed, not %q", f.Case)
			}
		}
		if n, ok := m["minLength"]; ok {
			x := p.integer(path+".minLength", n, 0, math.MaxInt32)
			f.MinLength = &x
		}
		if n, ok := m["maxLength"]; ok {
			x := p.integer(path+".maxLength", n, 1, math.MaxInt32)
			f.MaxLength = &x
		}
	case FormatInteger:
		m = p.object(path, v, []string{"type"}, "minimum", "maximum", "description")
		if m == nil {
			return f
		}
		f.Type = FormatInteger
		if n, ok := m["minimum"]; ok {
			f.Minimum = p.bigInteger(path+".minimum", n)
		}
		if n, ok := m["maximum"]; ok {
			f.Maximum = p.bigInteger(path+".maximum", n)
		}
	case FormatDate:
		m = p.object(path, v, []string{"type", "format"}, "description")
		if m == nil {
			return f
		}
		f.Type = FormatDate
		f.DateFormat = p.str(path+".format", m["format"])
		if p.err == nil {
			layout, err := parseDateLayout(f.DateFormat)
			if err != nil {
				p.fail(path+".format", "%v", err)
			}
			f.date = layout
		}
	case FormatEnum:
		m = p.object(path, v, []string{"type", "values"}, "description")
		if m == nil {
			return f
		}
		f.Type = FormatEnum
		vals, ok := m["values"].([]any)
		if !ok {
			p.fail(path+".values", "must be an array of strings, not %s", jsonType(m["values"]))
			return f
		}
		f.values = map[string]bool{}
		for i, x := range vals {
			s := p.str(fmt.Sprintf("%s.values[%d]", path, i), x)
			f.Values = append(f.Values, s)
			f.values[s] = true
		}
	default:
		if _, ok := m["type"]; !ok {
			p.fail(path+".type", "required key is missing")
		} else {
			p.fail(path+".type", "unknown format %s (string, integer, date or enum)", quoteJSON(m["type"]))
		}
	}
	return f
}

func quoteJSON(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return jsonType(v)
}

func (p *parser) hashing(path string, v any) Hashing {
	m := p.object(path, v, []string{"comparison", "strategy"}, "hash", "missingValue")
	var h Hashing
	if m == nil {
		return h
	}
	h.Hash = BlakeHash
	if hv, ok := m["hash"]; ok {
		hm := p.object(path+".hash", hv, []string{"type"}, "prevent_singularity")
		if hm == nil {
			return h
		}
		t := p.str(path+".hash.type", hm["type"])
		switch HashType(t) {
		case DoubleHash, BlakeHash:
			h.Hash = HashType(t)
		default:
			if p.err == nil {
				p.fail(path+".hash.type", "unknown hash %q (doubleHash or blakeHash)", t)
			}
			return h
		}
		if ps, ok := hm["prevent_singularity"]; ok {
			if h.Hash != DoubleHash {
				p.fail(path+".hash.prevent_singularity", "only doubleHash takes prevent_singularity")
				return h
			}
			h.PreventSingularity = p.boolean(path+".hash.prevent_singularity", ps)
		}
	}
	sm, ok := m["strategy"].(map[string]any)
	switch {
	case !ok:
		p.fail(path+".strategy", "must be an object, not %s", jsonType(m["strategy"]))
	case len(sm) != 1:
		p.fail(path+".strategy", "must hold exactly one of bitsPerToken and bitsPerFeature")
	case hasKey(sm, "bitsPerToken"):
		h.BitsPerToken = p.integer(path+".strategy.bitsPerToken", sm["bitsPerToken"], 1, maxInsertions)
	case hasKey(sm, "bitsPerFeature"):
		h.BitsPerFeature = p.integer(path+".strategy.bitsPerFeature", sm["bitsPerFeature"], 1, maxInsertions)
	default:
		for k := range sm {
			hint := ""
			if k == "numBits" || k == "k" {
				hint = " (schema version 2 names; version 3 calls them bitsPerFeature and bitsPerToken)"
			}
			p.fail(path+".strategy", "unknown strategy %q%s", k, hint)
		}
	}
	if p.err != nil {
		return h
	}
	h.Comparison = p.comparison(path+".comparison", m["comparison"])
	if mv, ok := m["missingValue"]; ok {
		mm := p.object(path+".missingValue", mv, []string{"sentinel"}, "replaceWith")
		if mm == nil {
			return h
		}
		h.Missing = &MissingValue{Sentinel: p.str(path+".missingValue.sentinel", mm["sentinel"])}
		h.Missing.ReplaceWith = h.Missing.Sentinel
		if r, ok := mm["replaceWith"]; ok {
			h.Missing.ReplaceWith = p.str(path+".missingValue.replaceWith", r)
		}
	}
	return h
}

func (p *parser) comparison(path string, v any) Comparison {
	m, ok := v.(map[string]any)
	if !ok {
		p.fail(path, "must be an object, not %s", jsonType(v))
		return Comparison{}
	}
	var c Comparison
	typ, _ := m["type"].(string)
	switch ComparisonType(typ) {
	case ComparisonNgram:
		if m = p.object(path, v, []string{"type", "n"}, "positional"); m == nil {
			return c
		}
		c.Type = ComparisonNgram
		c.N = p.integer(path+".n", m["n"], 1, 64)
		if pv, ok := m["positional"]; ok {
			c.Positional = p.boolean(path+".positional", pv)
		}
	case ComparisonExact:
		if m = p.object(path, v, []string{"type"}); m == nil {
			return c
		}
		c.Type = ComparisonExact
	case ComparisonNumeric:
		if m = p.object(path, v, []string{"type", "thresholdDistance", "resolution"}, "fractional_precision"); m == nil {
			return c
		}
		c.Type = ComparisonNumeric
		c.Resolution = p.integer(path+".resolution", m["resolution"], 1, maxInsertions)
		if fp, ok := m["fractional_precision"]; ok {
			// 10^15 is the largest power of ten a float64 holds exactly;
			// beyond it Python's int-to-float rounding would have to be
			// reproduced, so larger precisions are refused.
			c.FractionalPrecision = p.integer(path+".fractional_precision", fp, 0, 15)
		}
		td, ok := m["thresholdDistance"].(json.Number)
		if !ok {
			p.fail(path+".thresholdDistance", "must be a number, not %s", jsonType(m["thresholdDistance"]))
			return c
		}
		c.ThresholdDistance = td
		if p.err != nil {
			return c
		}
		d, err := distanceInterval(td.String(), c.FractionalPrecision)
		if err != nil {
			p.fail(path+".thresholdDistance", "%v", err)
			return c
		}
		c.distanceInterval = d
	default:
		if _, ok := m["type"]; !ok {
			p.fail(path+".type", "required key is missing")
		} else {
			p.fail(path+".type", "unknown comparison %s (ngram, exact or numeric)", quoteJSON(m["type"]))
		}
	}
	return c
}

// canonicalDigest hashes every parameter that changes an encoding.
func (s *Schema) canonicalDigest() [32]byte {
	type feat struct {
		ID   string
		Ign  bool
		Fmt  Format
		Hash Hashing
	}
	c := struct {
		V     string
		Bits  int
		Folds int
		KDF   KDF
		F     []feat
	}{V: "clkhash-v3/mpsi-1", Bits: s.Bits, Folds: s.XORFolds, KDF: s.KDF}
	for _, f := range s.Features {
		c.F = append(c.F, feat{f.Identifier, f.Ignored, f.Format, f.Hashing})
	}
	b, err := json.Marshal(c)
	if err != nil {
		panic("clk: canonical schema: " + err.Error()) // only plain data; cannot fail
	}
	return sha256.Sum256(b)
}

func hasKey(m map[string]any, k string) bool {
	_, ok := m[k]
	return ok
}
