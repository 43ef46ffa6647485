package clk

import (
	"errors"
	"os"
	"strings"
	"testing"
)

const minimalSchema = `{"version":3,"clkConfig":{"l":1024,"kdf":{"type":"HKDF"}},"features":[
 {"identifier":"id","ignored":true},
 {"identifier":"name","format":{"type":"string"},"hashing":{"strategy":{"bitsPerToken":20},"comparison":{"type":"ngram","n":2}}}]}`

// mutate replaces the first occurrence of old in minimalSchema.
func mutate(old, new string) string { return strings.Replace(minimalSchema, old, new, 1) }

func TestParseSchemaErrors(t *testing.T) {
	tests := []struct {
		name, schema, path, msg string
	}{
		{"not json", `{`, "", "not valid JSON"},
		{"trailing data", minimalSchema + `{}`, "", "data after"},
		{"version 2", mutate(`"version":3`, `"version":2`), "version", "only linkage schema version 3"},
		{"unknown top key", mutate(`"version":3`, `"version":3,"extra":1`), "extra", "unknown key"},
		{"missing clkConfig", `{"version":3,"features":[]}`, "clkConfig", "required key is missing"},
		{"l zero", mutate(`"l":1024`, `"l":0`), "clkConfig.l", "between 1 and"},
		{"l float", mutate(`"l":1024`, `"l":1024.5`), "clkConfig.l", "integer literal"},
		{"xorFolds ignored by clkhash", mutate(`"l":1024`, `"l":1024,"xorFolds":1`), "clkConfig.xorFolds", "clkhash 0.18.3 ignores xorFolds"},
		{"kdf type", mutate(`"type":"HKDF"`, `"type":"PBKDF2"`), "clkConfig.kdf.type", "unsupported key derivation"},
		{"kdf hash", mutate(`"type":"HKDF"`, `"type":"HKDF","hash":"MD5"`), "clkConfig.kdf.hash", "unsupported hash"},
		{"kdf salt", mutate(`"type":"HKDF"`, `"type":"HKDF","salt":"!!"`), "clkConfig.kdf.salt", "base64"},
		{"too many keys", strings.Replace(mutate(`"type":"HKDF"`, `"type":"HKDF","keySize":4096`), `"hashing":{`, `"hashing":{"hash":{"type":"doubleHash"},`, 1), "clkConfig.kdf.keySize", "HKDF-SHA256 can derive at most"},
		{"blake key too long", mutate(`"type":"HKDF"`, `"type":"HKDF","hash":"SHA512","keySize":65`), "features[1].hashing.hash", "at most 64 bytes"},
		{"blake needs power of two", mutate(`"l":1024`, `"l":1000`), "features[1].hashing.hash", "power of two"},
		{"no features", `{"version":3,"clkConfig":{"l":8,"kdf":{"type":"HKDF"}},"features":[]}`, "features", "at least one"},
		{"feature not object", mutate(`{"identifier":"id","ignored":true}`, `7`), "features[0]", "must be an object"},
		{"unknown feature key", mutate(`"identifier":"name",`, `"identifier":"name","weight":2,`), "features[1].weight", "unknown key"},
		{"feature without format", mutate(`"format":{"type":"string"},`, ``), "features[1].format", "required key is missing"},
		{"duplicate identifier", mutate(`"identifier":"name"`, `"identifier":"id"`), "features[1].identifier", "duplicates features[0]"},
		{"unknown format", mutate(`{"type":"string"}`, `{"type":"uuid"}`), "features[1].format.type", `unknown format "uuid"`},
		{"format encoding", mutate(`{"type":"string"}`, `{"type":"string","encoding":"latin-1"}`), "features[1].format.encoding", "unsupported encoding"},
		{"pattern with case", mutate(`{"type":"string"}`, `{"type":"string","pattern":"a","case":"upper"}`), "features[1].format.case", "unknown key"},
		{"pattern not RE2", mutate(`{"type":"string"}`, `{"type":"string","pattern":"(?=a)"}`), "features[1].format.pattern", "RE2"},
		{"bad case", mutate(`{"type":"string"}`, `{"type":"string","case":"title"}`), "features[1].format.case", "lower, upper or mixed"},
		{"date directive", mutate(`{"type":"string"}`, `{"type":"date","format":"%Y-%j"}`), "features[1].format.format", "%j is not supported"},
		{"date stray percent", mutate(`{"type":"string"}`, `{"type":"date","format":"%Y%"}`), "features[1].format.format", "stray %"},
		{"date twice", mutate(`{"type":"string"}`, `{"type":"date","format":"%Y%Y"}`), "features[1].format.format", "twice"},
		{"enum values", mutate(`{"type":"string"}`, `{"type":"enum","values":"m"}`), "features[1].format.values", "array of strings"},
		{"unknown strategy", mutate(`{"bitsPerToken":20}`, `{"bitsPerBit":20}`), "features[1].hashing.strategy", `unknown strategy "bitsPerBit"`},
		{"v2 strategy", mutate(`{"bitsPerToken":20}`, `{"numBits":20}`), "features[1].hashing.strategy", "schema version 2 names"},
		{"two strategies", mutate(`{"bitsPerToken":20}`, `{"bitsPerToken":20,"bitsPerFeature":3}`), "features[1].hashing.strategy", "exactly one"},
		{"zero bits", mutate(`{"bitsPerToken":20}`, `{"bitsPerToken":0}`), "features[1].hashing.strategy.bitsPerToken", "between 1"},
		{"unknown hash", mutate(`"hashing":{`, `"hashing":{"hash":{"type":"sha3"},`), "features[1].hashing.hash.type", `unknown hash "sha3"`},
		{"singularity on blake", mutate(`"hashing":{`, `"hashing":{"hash":{"type":"blakeHash","prevent_singularity":true},`), "features[1].hashing.hash.prevent_singularity", "only doubleHash"},
		{"unknown hashing key", mutate(`"hashing":{`, `"hashing":{"weight":1,`), "features[1].hashing.weight", "unknown key"},
		{"unknown comparison", mutate(`{"type":"ngram","n":2}`, `{"type":"soundex"}`), "features[1].hashing.comparison.type", `unknown comparison "soundex"`},
		{"ngram n zero", mutate(`{"type":"ngram","n":2}`, `{"type":"ngram","n":0}`), "features[1].hashing.comparison.n", "between 1"},
		{"numeric threshold", mutate(`{"type":"ngram","n":2}`, `{"type":"numeric","thresholdDistance":0,"resolution":1}`), "features[1].hashing.comparison.thresholdDistance", "positive"},
		{"numeric precision", mutate(`{"type":"ngram","n":2}`, `{"type":"numeric","thresholdDistance":1,"resolution":1,"fractional_precision":16}`), "features[1].hashing.comparison.fractional_precision", "between 0 and 15"},
		{"missing sentinel", mutate(`"hashing":{`, `"hashing":{"missingValue":{"replaceWith":"x"},`), "features[1].hashing.missingValue.sentinel", "required key is missing"},
		{"ignored with extra key", mutate(`{"identifier":"id","ignored":true}`, `{"identifier":"id","ignored":true,"weight":0}`), "features[0].weight", "unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSchema([]byte(tt.schema))
			var se *SchemaError
			if !errors.As(err, &se) || !errors.Is(err, ErrSchema) {
				t.Fatalf("got %v, want a *SchemaError", err)
			}
			if se.Path != tt.path || !strings.Contains(se.Msg, tt.msg) {
				t.Fatalf("got %q at %q, want %q at %q", se.Msg, se.Path, tt.msg, tt.path)
			}
			if tt.path != "" && !strings.Contains(err.Error(), tt.path+": ") {
				t.Fatalf("message %q does not name the path", err)
			}
		})
	}
}

func TestParseSchemaSample(t *testing.T) {
	s, err := ParseSchema([]byte(minimalSchema))
	if err != nil {
		t.Fatal(err)
	}
	if s.Bits != 1024 || s.Bytes() != 128 || len(s.Features) != 2 || !s.Features[0].Ignored ||
		s.Features[1].Hashing.Hash != BlakeHash || s.Features[1].Hashing.Comparison.Positional {
		t.Fatalf("defaults not applied: %+v", s)
	}
	if got := s.Columns(); got[0] != "id" || got[1] != "name" {
		t.Fatal(got)
	}
	if err := s.CheckHeader([]string{"id", "nom"}); !errors.Is(err, ErrRecord) || !strings.Contains(err.Error(), `"nom"`) {
		t.Fatalf("header check: %v", err)
	}
	if err := s.CheckHeader([]string{"id", "name"}); err != nil {
		t.Fatal(err)
	}
	other, _ := ParseSchema([]byte(mutate(`"bitsPerToken":20`, `"bitsPerToken":21`)))
	if s.Fingerprint() == other.Fingerprint() {
		t.Fatal("fingerprint ignores bitsPerToken")
	}
	same, _ := ParseSchema([]byte(strings.ReplaceAll(minimalSchema, "\n", "\n   ")))
	if s.Fingerprint() != same.Fingerprint() {
		t.Fatal("fingerprint depends on whitespace")
	}
	if _, err := LoadSchema("testdata/does-not-exist.json"); err == nil {
		t.Fatal("missing file accepted")
	}
	if path := "../../../shared/data/linkage/anonlink_5party/schema.json"; fileExists(path) {
		if _, err := LoadSchema(path); err != nil {
			t.Fatal(err)
		}
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestRecordErrors(t *testing.T) {
	s, err := ParseSchema([]byte(mutate(`{"type":"string"}`, `{"type":"integer","maximum":10}`)))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := NewEncoder(s, []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range [][]string{{"1"}, {"1", "secret-value-11"}, {"1", "\xff"}, {"1", "99999999999"}} {
		_, err := enc.Encode(rec)
		if !errors.Is(err, ErrRecord) {
			t.Fatalf("%q: got %v", rec, err)
		}
		if strings.Contains(err.Error(), rec[len(rec)-1]) && len(rec) > 1 {
			t.Fatalf("error %q contains the value", err)
		}
	}
	if _, err := enc.EncodeAll(t.Context(), [][]string{{"1", "3"}, {"2", "x"}, {"3", "y"}}, 2); err == nil || !strings.Contains(err.Error(), "row 1,") {
		t.Fatalf("EncodeAll error %v does not name row 1", err)
	}
	if _, err := NewEncoder(s, nil); err == nil {
		t.Fatal("empty secret accepted")
	}
}

func TestDateLayout(t *testing.T) {
	tests := []struct{ format, in, want string }{
		{"%Y-%m-%d", "1999-2-3", "19990203"},
		{"%d %b %Y", "3   MAR 1999", "19990303"},
		{"%B %d, %Y", "September 9, 2001", "20010909"},
		{"%d/%m/%y", "01/02/68", "20680201"},
		{"%d/%m/%y", "01/02/69", "19690201"},
		{"%Y", "1980", "19800101"},
		{"%m-%d", "02-29", ""}, // 1900 is not a leap year
		{"%Y-%m-%d", "2001-02-29", ""},
		{"%Y-%m-%d", "0999-01-01", ""},
		{"%Y-%m-%d", "1999-01-01 ", ""},
		{"%Y%m%d", "1999111", "19991101"}, // leftmost-first, as Python: m=11, d=1
		{"%H:%M %Y", "23:59 2000", "20000101"},
		{"%Y.%m.%d", "2000x01x01", ""},
	}
	for _, tt := range tests {
		l, err := parseDateLayout(tt.format)
		if err != nil {
			t.Fatal(err)
		}
		got, err := l.format(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("%q %q: accepted as %s", tt.format, tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q %q: got %q %v, want %q", tt.format, tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseSchema(f *testing.F) {
	f.Add([]byte(minimalSchema))
	if data, err := os.ReadFile("testdata/vectors.json"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(mutate(`{"type":"string"}`, `{"type":"date","format":"%d %b %Y"}`)))
	f.Add([]byte(mutate(`{"type":"ngram","n":2}`, `{"type":"numeric","thresholdDistance":2.5,"resolution":3,"fractional_precision":1}`)))
	f.Add([]byte(`{"version":3,"clkConfig":{"l":7,"xor_folds":2,"kdf":{"type":"HKDF","hash":"SHA512"}},"features":[{"identifier":"a","format":{"type":"enum","values":["x"]},"hashing":{"hash":{"type":"doubleHash","prevent_singularity":true},"strategy":{"bitsPerFeature":9},"comparison":{"type":"exact"},"missingValue":{"sentinel":""}}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSchema(data)
		if err != nil {
			var se *SchemaError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SchemaError", err)
			}
			return
		}
		// A schema that parses must encode (or refuse with ErrRecord)
		// records of the right width without panicking.
		for _, f := range s.Features {
			if h := f.Hashing; h.BitsPerToken > 256 || h.BitsPerFeature > 4096 || h.Comparison.Resolution > 64 || s.Bits<<s.XORFolds > 1<<16 {
				return // valid but slow to encode; the fuzzer would stall on it
			}
		}
		enc, err := NewEncoder(s, []byte("fuzz"))
		if err != nil {
			t.Fatal(err)
		}
		rec := make([]string, len(s.Features))
		for _, v := range []string{"", "a", "12", "1999-01-01", "01 Jan 1999", "é😀"} {
			for i := range rec {
				rec[i] = v
			}
			c, err := enc.Encode(rec)
			if err == nil && len(c) != s.Bytes() {
				t.Fatalf("CLK of %d bytes, schema says %d", len(c), s.Bytes())
			}
			if err != nil && !errors.Is(err, ErrRecord) {
				t.Fatal(err)
			}
		}
	})
}
