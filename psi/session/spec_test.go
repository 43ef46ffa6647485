package session_test

import (
	"encoding/json"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/psi/ident"
	"github.com/mpsi-dev/mpsi/psi/session"
)

func TestLoadDesignSpec(t *testing.T) {
	s, err := session.LoadSpec("testdata/cohort.json")
	require.NoError(t, err)
	require.Equal(t, "cohort-2026-11", s.ID)
	require.Equal(t, session.ModeDH, s.Match.Mode)
	require.Equal(t, "ristretto255", s.Match.Group, "group defaults to ristretto255 in mode dh")
	require.Equal(t, session.AggregationMasked, s.Aggregation)
	require.Equal(t, s.Parties, s.Aggregates[0].From, "from defaults to all parties")
	require.Equal(t, 130.0, *s.Aggregates[3].Max, "histogram max defaults to the last edge")
	l, err := session.NewLayout(s)
	require.NoError(t, err)
	require.Equal(t, 1+2+2+4+1, l.Len())
}

func TestYAMLSpecEqualsJSON(t *testing.T) {
	j, err := session.LoadSpec("testdata/cohort.json")
	require.NoError(t, err)
	y := `
id: cohort-2026-11
parties: [hospital-a, hospital-b, hospital-c]
fields: {given_name: name, family_name: name, birth_date: date, sex: sex, visits: number, age: number, condition_codes: codes}
match: {fields: [given_name, family_name, birth_date, sex], mode: dh}
reveal: [cardinality, pairwise, aggregates]
aggregates:
  - {name: shared, kind: count}
  - {name: visits, kind: sum, field: visits, min: 0, max: 10000}
  - {name: age, kind: mean, field: age, from: [hospital-a], min: 0, max: 130}
  - {name: age_bands, kind: histogram, field: age, from: [hospital-a], edges: [0, 18, 40, 65, 130]}
  - {name: diabetes, kind: count_if, field: condition_codes, contains: "44054006", from: [hospital-b]}
min_cell: 11
`
	p := filepath.Join(t.TempDir(), "spec.yaml")
	require.NoError(t, os.WriteFile(p, []byte(y), 0o644))
	ys, err := session.LoadSpec(p)
	require.NoError(t, err)
	require.JSONEq(t, string(j.Canonical()), string(ys.Canonical()))
}

// Every bad spec is refused with an error that names the field.
func TestSpecErrors(t *testing.T) {
	base, err := os.ReadFile("testdata/cohort.json")
	require.NoError(t, err)
	edit := func(f func(m map[string]any)) string {
		var m map[string]any
		require.NoError(t, json.Unmarshal(base, &m))
		f(m)
		b, err := json.Marshal(m)
		require.NoError(t, err)
		return string(b)
	}
	agg := func(i int, k string, v any) func(m map[string]any) {
		return func(m map[string]any) {
			a := m["aggregates"].([]any)[i].(map[string]any)
			if v == nil {
				delete(a, k)
			} else {
				a[k] = v
			}
		}
	}
	encrypted := func(threshold int) func(m map[string]any) {
		return func(m map[string]any) {
			m["aggregation"] = "encrypted"
			if threshold != 0 {
				m["threshold"] = threshold
			}
		}
	}
	cases := []struct {
		name, spec, want string
	}{
		{"unknown top-level field", edit(func(m map[string]any) { m["colour"] = "red" }), `unknown field "colour"`},
		{"unknown aggregate field", edit(agg(1, "weight", 2)), `unknown field "weight"`},
		{"syntax error names line", "{\n\"id\": \"x\",\n,\n}", "line 3"},
		{"wrong type", edit(func(m map[string]any) { m["min_cell"] = "eleven" }), "min_cell"},
		{"duplicate party", edit(func(m map[string]any) { m["parties"] = []string{"a", "b", "a"} }), `parties[2]: duplicate party "a"`},
		{"one party", edit(func(m map[string]any) { m["parties"] = []string{"a"} }), "parties: need at least 2"},
		{"from names no party", edit(agg(2, "from", []string{"hospital-d"})), `aggregates[2] (age).from[0]: "hospital-d" is not a party`},
		{"bounds overflow", edit(agg(1, "max", 1e12)), "aggregates[1] (visits): bounds could overflow 2^63"},
		{"variance overflow", edit(func(m map[string]any) {
			m["aggregates"] = append(m["aggregates"].([]any), map[string]any{"name": "v", "kind": "variance", "field": "visits", "min": 0, "max": 1e6})
		}), "aggregates[5] (v): bounds could overflow"},
		{"edges do not cover", edit(func(m map[string]any) {
			a := m["aggregates"].([]any)[3].(map[string]any)
			a["min"], a["max"] = -1, 130
		}), "aggregates[3] (age_bands).edges: [0, 130] does not cover [min, max] = [-1, 130]"},
		{"edges not increasing", edit(agg(3, "edges", []float64{0, 18, 18, 130})), "strictly increasing"},
		{"min > max", edit(agg(1, "min", 20000)), "min 20000 is greater than max 10000"},
		{"sum without bounds", edit(agg(1, "max", nil)), "min and max are required"},
		{"too many decimals", edit(agg(1, "max", 10.5)), "aggregates[1] (visits).max: 10.5 has more than 0 decimal places"},
		{"unknown rounding", edit(agg(1, "rounding", "x")), `aggregates[1] (visits).rounding: unknown rounding "x" (want half_even, half_up or truncate`},
		{"rounding in capitals", edit(agg(1, "rounding", "HALF_EVEN")), `aggregates[1] (visits).rounding: unknown rounding "HALF_EVEN"`},
		{"rounding on count_if", edit(agg(4, "rounding", "half_even")), `aggregates[4] (diabetes).rounding: applies only to sum, mean, variance and histogram (kind is count_if)`},
		{"rounding on count", edit(agg(0, "rounding", "truncate")), `aggregates[0] (shared).rounding: applies only to`},
		{"unknown kind", edit(agg(0, "kind", "median")), `aggregates[0] (shared).kind: "median" is not one of`},
		{"sum on a name", edit(agg(1, "field", "given_name")), "needs a number field"},
		{"unknown field", edit(agg(1, "field", "weight")), `aggregates[1] (visits).field: "weight" is not a declared field`},
		{"contains on number", edit(agg(4, "field", "visits")), "contains needs a codes field"},
		{"count_if both", edit(agg(4, "equals", "x")), "exactly one of equals or contains"},
		{"duplicate aggregate", edit(agg(1, "name", "shared")), `duplicate aggregate "shared"`},
		{"match on number", edit(func(m map[string]any) { m["match"] = map[string]any{"fields": []string{"visits"}} }), `match.fields[0]: "visits" has type number`},
		{"match undeclared", edit(func(m map[string]any) { m["match"] = map[string]any{"fields": []string{"ssn"}} }), `match.fields[0]: "ssn" is not a declared field`},
		{"bad mode", edit(func(m map[string]any) { m["match"].(map[string]any)["mode"] = "fast" }), `match.mode: "fast"`},
		{"keys unknown transform", edit(func(m map[string]any) {
			m["match"] = map[string]any{"keys": [][]string{{"family_name"}, {"birth_date"}, {"family_name|sounde", "birth_date"}}}
		}), "match.keys[2][0]: unknown transform \"sounde\""},
		{"keys transform on wrong type", edit(func(m map[string]any) { m["match"] = map[string]any{"keys": [][]string{{"birth_date|soundex"}}} }), "match.keys[0][0]: transform soundex applies to name fields; \"birth_date\" is date"},
		{"keys undeclared", edit(func(m map[string]any) {
			m["match"] = map[string]any{"keys": [][]string{{"family_name"}, {"ssn|last4"}}}
		}), "match.keys[1][0]: \"ssn\" is not a declared field"},
		{"keys number", edit(func(m map[string]any) { m["match"] = map[string]any{"keys": [][]string{{"visits"}}} }), "match.keys[0][0]: \"visits\" has type number"},
		{"keys empty key", edit(func(m map[string]any) { m["match"] = map[string]any{"keys": [][]string{{"family_name"}, {}}} }), "match.keys[1]: an empty key"},
		{"keys duplicate key", edit(func(m map[string]any) {
			m["match"] = map[string]any{"keys": [][]string{{"family_name", "birth_date"}, {"family_name", "birth_date"}}}
		}), "match.keys[1]: the same key as match.keys[0]"},
		{"keys duplicate field", edit(func(m map[string]any) {
			m["match"] = map[string]any{"keys": [][]string{{"family_name", "family_name"}}}
		}), "match.keys[0][1]: duplicate match field"},
		{"keys empty transform", edit(func(m map[string]any) { m["match"] = map[string]any{"keys": [][]string{{"family_name|"}}} }), "match.keys[0][0]: \"family_name|\" is not a field or field|transform"},
		{"keys too many", edit(func(m map[string]any) {
			m["match"] = map[string]any{"keys": [][]string{{"sex"}, {"given_name"}, {"family_name"}, {"birth_date"}, {"sex", "given_name"}, {"sex", "family_name"}, {"sex", "birth_date"}, {"given_name", "family_name"}, {"given_name", "birth_date"}}}
		}), "match.keys: 9 keys, at most 8"},
		{"fields and keys", edit(func(m map[string]any) {
			m["match"] = map[string]any{"fields": []string{"sex"}, "keys": [][]string{{"sex"}}}
		}), "match: give fields (one key) or keys, not both"},
		{"bad group", edit(func(m map[string]any) { m["match"].(map[string]any)["group"] = "p256" }), `match.group: "p256" is not a dh group (ristretto255 or x25519)`},
		{"group in keyed", edit(func(m map[string]any) {
			m["match"].(map[string]any)["mode"] = "keyed"
			m["match"].(map[string]any)["group"] = "x25519"
		}), `match.group: "x25519" given but groups apply to mode dh only`},
		{"bad reveal", edit(func(m map[string]any) { m["reveal"] = []string{"everything"} }), `reveal[0]: "everything"`},
		{"empty reveal", edit(func(m map[string]any) { m["reveal"] = []string{} }), "reveal: empty"},
		{"bad field type", edit(func(m map[string]any) { m["fields"].(map[string]any)["age"] = "integer" }), "fields.age"},
		{"bad id", edit(func(m map[string]any) { m["id"] = "a b" }), `id: "a b"`},
		{"negative min_cell", edit(func(m map[string]any) { m["min_cell"] = -1 }), "min_cell: must not be negative"},
		{"unknown aggregation", edit(func(m map[string]any) { m["aggregation"] = "homomorphic" }), `aggregation: "homomorphic" is not an aggregation mode`},
		{"threshold without encrypted", edit(func(m map[string]any) { m["threshold"] = 2 }), `threshold: applies only to aggregation "encrypted"`},
		{"threshold with masked", edit(func(m map[string]any) { m["aggregation"], m["threshold"] = "masked", 3 }), `threshold: applies only to aggregation "encrypted"`},
		{"threshold negative", edit(encrypted(-1)), "threshold: must be between 2 and 3 (the number of parties), is -1"},
		{"threshold one", edit(encrypted(1)), "threshold: must be between 2 and 3 (the number of parties), is 1"},
		{"threshold above n", edit(encrypted(4)), "threshold: must be between 2 and 3 (the number of parties), is 4"},
		{"dropout with masked", edit(func(m map[string]any) { m["dropout"] = "leave_out" }), `dropout: applies only to aggregation "encrypted" with a threshold`},
		{"dropout n-of-n", edit(func(m map[string]any) { encrypted(0)(m); m["dropout"] = "leave_out" }), "dropout: needs a threshold below the number of parties (3)"},
		{"dropout unknown", edit(func(m map[string]any) { encrypted(2)(m); m["dropout"] = "ignore" }), `dropout: "ignore" is not a dropout rule (abort or leave_out)`},
		{"membership with encrypted", edit(func(m map[string]any) {
			encrypted(0)(m)
			m["reveal"] = []string{"cardinality", "membership"}
		}), `reveal[1]: "membership" cannot be used with aggregation "encrypted"`},
		{"encrypted bounds", edit(func(m map[string]any) {
			encrypted(0)(m)
			m["max_set_size"] = 1 << 26
			agg(1, "max", 1e8)(m)
		}), `aggregates[1] (visits): bounds do not fit the plaintext modulus of aggregation "encrypted": 2 × max(|min|,|max|)·10^scale × 3 parties × max_set_size 67108864`},
		{"encrypted variance bounds", edit(func(m map[string]any) {
			encrypted(0)(m)
			m["aggregates"] = append(m["aggregates"].([]any), map[string]any{"name": "v", "kind": "variance", "field": "visits", "min": 0, "max": 1e5})
		}), `aggregates[5] (v): bounds do not fit the plaintext modulus of aggregation "encrypted": 2 × (max(|min|,|max|)·10^scale)²`},
		{"encrypted max_set_size", edit(func(m map[string]any) {
			encrypted(0)(m)
			m["max_set_size"] = 1<<26 + 1
		}), `max_set_size: at most 67108864 with aggregation "encrypted"`},
		{"encrypted too many slots", edit(func(m map[string]any) {
			encrypted(0)(m)
			edges := make([]float64, 300)
			for i := range edges {
				edges[i] = float64(i)
			}
			agg(3, "edges", edges)(m)
		}), `aggregates: the aggregate vector has 305 slots, more than 256`},
		{"trailing data", string(base) + "{}", "trailing data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := session.ParseSpec([]byte(tc.spec))
			require.ErrorIs(t, err, session.ErrInvalidSpec)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

// Aggregation encrypted is accepted; the threshold defaults to n-of-n and
// appears in the canonical form, which a masked spec leaves unchanged.
func TestEncryptedSpec(t *testing.T) {
	base, err := os.ReadFile("testdata/cohort.json")
	require.NoError(t, err)
	masked, err := session.ParseSpec(base)
	require.NoError(t, err)
	require.Zero(t, masked.Threshold)
	require.NotContains(t, string(masked.Canonical()), "threshold")

	for _, tc := range []struct {
		extra   string
		want    int
		dropout string
	}{{``, 3, ``}, {`,"threshold":2`, 2, session.DropoutAbort}, {`,"threshold":3`, 3, ``},
		{`,"threshold":2,"dropout":"leave_out"`, 2, session.DropoutLeaveOut}} {
		b := strings.Replace(string(base), `"min_cell"`, `"aggregation":"encrypted"`+tc.extra+`,"min_cell"`, 1)
		s, err := session.ParseSpec([]byte(b))
		require.NoError(t, err, tc.extra)
		require.Equal(t, session.AggregationEncrypted, s.Aggregation)
		require.Equal(t, tc.want, s.Threshold)
		require.Equal(t, tc.dropout, s.Dropout)
		s2, err := session.ParseSpec(s.Canonical())
		require.NoError(t, err)
		require.Equal(t, string(s.Canonical()), string(s2.Canonical()))
	}
}

// ContributionBounds has one entry per slot of the Layout: the largest
// |contribution| of one record.
func TestContributionBounds(t *testing.T) {
	s, err := session.LoadSpec("testdata/cohort.json")
	require.NoError(t, err)
	l, err := session.NewLayout(s)
	require.NoError(t, err)
	// shared (count), visits (sum: Σv, #), age (mean: Σv, #), age_bands (4 bins), diabetes (count_if).
	want := []uint64{1, 10000, 1, 130, 1, 1, 1, 1, 1, 1}
	require.Equal(t, want, s.ContributionBounds())
	require.Len(t, s.ContributionBounds(), l.Len())

	v, err := session.ParseSpec([]byte(`{"id":"x","parties":["a","b"],"fields":{"n":"name","w":"number"},"match":{"fields":["n"]},
"reveal":["aggregates"],"aggregates":[{"name":"w","kind":"variance","field":"w","min":-2.5,"max":1.25,"scale":2}]}`))
	require.NoError(t, err)
	require.Equal(t, []uint64{250, 62500, 1}, v.ContributionBounds())
}

func TestLoadSpecNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(p, []byte(`{"id": 3}`), 0o644))
	_, err := session.LoadSpec(p)
	require.Error(t, err)
	require.True(t, strings.HasPrefix(err.Error(), "bad.json: "), err.Error())
}

func TestParseFixed(t *testing.T) {
	cases := []struct {
		in    string
		scale int
		want  int64
		err   bool
	}{
		{"0", 0, 0, false},
		{"42", 0, 42, false},
		{"-7", 0, -7, false},
		{"+7", 0, 7, false},
		{"3.14", 2, 314, false},
		{"3.1", 2, 310, false},
		{"3.140", 2, 314, false},
		{"3.141", 2, 0, true},
		{"3.5", 0, 0, true},
		{"1e3", 0, 0, true},
		{"", 0, 0, true},
		{"abc", 0, 0, true},
		{"1.", 0, 0, true},
		{".5", 1, 0, true},
		{"--1", 0, 0, true},
		{"1 000", 0, 0, true},
		{"99999999999999999999", 0, 0, true},
	}
	for _, tc := range cases {
		got, err := session.ParseFixed(tc.in, tc.scale)
		if tc.err {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

func FuzzParseSpec(f *testing.F) {
	base, err := os.ReadFile("testdata/cohort.json")
	require.NoError(f, err)
	f.Add(base)
	f.Add([]byte(`{"id":"x","parties":["a","b"],"fields":{"n":"name"},"match":{"fields":["n"]},"reveal":["cardinality"]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"id":"k","parties":["a","b"],"fields":{"s":"id","n":"name","d":"date"},"match":{"keys":[["s"],["n|soundex","d|year"],["n","d|day_month_unordered"]]},"reveal":["cardinality"]}`))
	f.Add([]byte(`{"id":"c","parties":["a","b"],"match":{"mode":"clk","threshold":0.8,"schema":` + clkTestSchema + `},"reveal":["cardinality"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := session.ParseSpec(b)
		if err != nil {
			require.Nil(t, s)
			return
		}
		// An accepted spec round-trips through its canonical form and lays out.
		s2, err := session.ParseSpec(s.Canonical())
		require.NoError(t, err)
		require.Equal(t, string(s.Canonical()), string(s2.Canonical()))
		_, err = session.NewLayout(s)
		require.NoError(t, err)
		// Its match keys (or CLK schema) are there and consistent.
		if s.Match.Mode == session.ModeCLK {
			require.NotNil(t, s.CLKSchema())
			require.Nil(t, s.MatchKeys())
		} else {
			require.NotEmpty(t, s.MatchKeys())
			require.LessOrEqual(t, len(s.MatchKeys()), session.MaxMatchKeys)
		}
	})
}

func FuzzParseFixed(f *testing.F) {
	for _, s := range []string{"0", "-1.25", "99.999", "1e5", ""} {
		f.Add(s, 2)
	}
	f.Fuzz(func(t *testing.T, s string, scale int) {
		if scale < 0 || scale > session.MaxScale {
			return
		}
		v, err := session.ParseFixed(s, scale)
		if err != nil {
			return
		}
		// Accepted values re-parse identically from their exact rendering.
		back := formatAt(v, scale)
		if strings.Contains(back, ".") {
			// Trailing zeros of the fraction only ("10" at scale 0 stays).
			back = strings.TrimRight(strings.TrimRight(back, "0"), ".")
		}
		if back == "" || back == "-" {
			back = "0"
		}
		v2, err := session.ParseFixed(back, scale)
		require.NoError(t, err)
		require.Equal(t, v, v2)
	})
}

func formatAt(v int64, scale int) string {
	neg := v < 0
	if neg {
		v = -v
	}
	s := []byte(strings.Repeat("0", scale+1) + itoa(v))
	s = s[len(s)-max(scale+1, len(itoa(v))):]
	out := string(s[:len(s)-scale])
	if scale > 0 {
		out += "." + string(s[len(s)-scale:])
	}
	if neg {
		out = "-" + out
	}
	return out
}

func itoa(v int64) string { b, _ := json.Marshal(v); return string(b) }

// scaledRat is s·10^scale as a rational, when s is a decimal as the
// record values are written (one optional sign, digits, at most one point
// between digits); the references below round or refuse it.
func scaledRat(s string, scale int) (*big.Rat, bool) {
	body := strings.TrimLeft(s, "+-")
	if len(s)-len(body) > 1 || body == "" || strings.Count(body, ".") > 1 || body[0] == '.' || body[len(body)-1] == '.' {
		return nil, false
	}
	for _, c := range body {
		if (c < '0' || c > '9') && c != '.' {
			return nil, false
		}
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, false
	}
	return r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil))), true
}

// parseFixedRat is the straightforward math/big reference for ParseFixed.
func parseFixedRat(s string, scale int) (int64, bool) {
	r, ok := scaledRat(s, scale)
	if !ok || !r.IsInt() || r.Num().CmpAbs(new(big.Int).Lsh(big.NewInt(1), 62)) > 0 {
		return 0, false
	}
	return r.Num().Int64(), true
}

// ParseFixed agrees with the math/big reference on random decimals.
func TestParseFixedMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3)) // test inputs only
	alphabet := "0123456789.-+"
	for i := 0; i < 200000; i++ {
		n := 1 + rng.IntN(22)
		b := make([]byte, n)
		for j := range b {
			if rng.IntN(8) == 0 {
				b[j] = alphabet[10+rng.IntN(3)]
			} else {
				b[j] = alphabet[rng.IntN(10)]
			}
		}
		s, scale := string(b), rng.IntN(session.MaxScale+1)
		got, err := session.ParseFixed(s, scale)
		want, ok := parseFixedRat(s, scale)
		require.Equal(t, ok, err == nil, "%q scale %d: %v", s, scale, err)
		if ok {
			require.Equal(t, want, got, "%q scale %d", s, scale)
		}
	}
}

func TestMatchKeys(t *testing.T) {
	s, err := session.ParseSpec([]byte(`{"id":"k","parties":["a","b"],
	"fields":{"ssn":"id","surname":"name","given":"name","dob":"date"},
	"match":{"keys":[["ssn"],["surname|soundex","given|initial","dob|day_month_unordered"],["surname","dob|year"]]},
	"reveal":["cardinality"]}`))
	require.NoError(t, err)
	keys := s.MatchKeys()
	require.Len(t, keys, 3)
	require.Equal(t, "surname|soundex", keys[1][0].String())
	require.Equal(t, ident.TransformDayMonthUnordered, keys[1][2].Transform)
	require.Equal(t, []string{"ssn", "surname", "given", "dob"}, s.MatchFieldNames())
	require.Equal(t, session.ModeDH, s.Match.Mode)

	// The one-key shorthand is one key of the fields, no transform.
	one, err := session.ParseSpec([]byte(`{"id":"k","parties":["a","b"],"fields":{"ssn":"id"},"match":{"fields":["ssn"]},"reveal":["cardinality"]}`))
	require.NoError(t, err)
	require.Equal(t, [][]ident.KeyField{{{Field: "ssn"}}}, one.MatchKeys())
	require.NotContains(t, string(one.Canonical()), `"keys"`, "a one-key spec's canonical form is unchanged")
}

// clkTestSchema is a minimal clkhash v3 schema with one feature.
const clkTestSchema = `{"version":3,"clkConfig":{"l":1024,"kdf":{"type":"HKDF","hash":"SHA256","keySize":64}},
"features":[{"identifier":"name","format":{"type":"string","encoding":"utf-8"},"hashing":{"hash":{"type":"doubleHash"},"strategy":{"bitsPerToken":20},"comparison":{"type":"ngram","n":2}}}]}`

func TestCLKSpec(t *testing.T) {
	spec := func(match string) string {
		return `{"id":"c","parties":["a","b"],"fields":{"visits":"number"},"match":` + match + `,"reveal":["cardinality"]}`
	}
	s, err := session.ParseSpec([]byte(spec(`{"mode":"clk","schema":` + clkTestSchema + `,"threshold":0.8}`)))
	require.NoError(t, err)
	require.NotNil(t, s.CLKSchema())
	require.Equal(t, []string{"name"}, s.MatchFieldNames())
	require.True(t, s.GroupKeyed())
	require.Nil(t, s.MatchKeys())
	again, err := session.ParseSpec(s.Canonical())
	require.NoError(t, err, "the canonical form parses")
	require.Equal(t, string(s.Canonical()), string(again.Canonical()))

	for _, tt := range []struct{ name, match, want string }{
		{"no schema", `{"mode":"clk","threshold":0.8}`, "match.schema: mode clk needs a clkhash linkage schema"},
		{"threshold 0", `{"mode":"clk","schema":` + clkTestSchema + `}`, "match.threshold: 0 must be in (0, 1]"},
		{"threshold above 1", `{"mode":"clk","schema":` + clkTestSchema + `,"threshold":1.5}`, "match.threshold: 1.5"},
		{"fields too", `{"mode":"clk","fields":["visits"],"schema":` + clkTestSchema + `,"threshold":0.8}`, "match: mode clk links on the schema's features"},
		{"schema elsewhere", `{"mode":"dh","fields":["visits"],"schema":{}}`, "match: schema and threshold apply to mode clk only"},
		{"file name in ParseSpec", `{"mode":"clk","schema":"schema.json","threshold":0.8}`, "match.schema: a file name is read only from a spec file"},
		{"unknown feature option", `{"mode":"clk","threshold":0.8,"schema":` + strings.Replace(clkTestSchema, `"doubleHash"`, `"tripleHash"`, 1) + `}`, "match.schema: "},
		{"group", `{"mode":"clk","group":"x25519","schema":` + clkTestSchema + `,"threshold":0.8}`, "match.group"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := session.ParseSpec([]byte(spec(tt.match)))
			require.ErrorIs(t, err, session.ErrInvalidSpec)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// LoadSpec reads match.schema given as a file name, relative to the spec.
func TestLoadSpecInlinesCLKSchema(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "schema.json"), []byte(clkTestSchema), 0o600))
	path := filepath.Join(dir, "spec.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"id":"c","parties":["a","b"],"match":{"mode":"clk","schema":"schema.json","threshold":0.9},"reveal":["cardinality"]}`), 0o600))
	s, err := session.LoadSpec(path)
	require.NoError(t, err)
	require.Contains(t, string(s.Canonical()), `"identifier":"name"`)

	require.NoError(t, os.WriteFile(path, []byte(`{"id":"c","parties":["a","b"],"match":{"mode":"clk","schema":"missing.json","threshold":0.9},"reveal":["cardinality"]}`), 0o600))
	_, err = session.LoadSpec(path)
	require.ErrorContains(t, err, "spec.json: session: invalid spec: match.schema: open")
}
