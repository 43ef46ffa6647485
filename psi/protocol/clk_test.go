package protocol

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/psi/session"
)

// clkSchema is a small clkhash v3 schema: an ignored id, then given name,
// surname and birth date as bigrams.
const clkSchema = `{"version":3,"clkConfig":{"l":1024,"kdf":{"type":"HKDF","hash":"SHA256","keySize":64}},
"features":[{"identifier":"id","ignored":true},
{"identifier":"givenname","format":{"type":"string","encoding":"utf-8"},"hashing":{"hash":{"type":"doubleHash"},"strategy":{"bitsPerToken":30},"comparison":{"type":"ngram","n":2}}},
{"identifier":"surname","format":{"type":"string","encoding":"utf-8"},"hashing":{"hash":{"type":"doubleHash"},"strategy":{"bitsPerToken":30},"comparison":{"type":"ngram","n":2}}},
{"identifier":"dob","format":{"type":"string","encoding":"utf-8"},"hashing":{"hash":{"type":"doubleHash"},"strategy":{"bitsPerToken":30},"comparison":{"type":"ngram","n":2,"positional":true}}}]}`

// clkRecs are records of a mode clk session.
type clkRecs struct {
	rows   [][]string // id, givenname, surname, dob
	visits []int
}

func (r clkRecs) Len() int                     { return len(r.rows) }
func (r clkRecs) Key(i int) []byte             { return nil }
func (r clkRecs) ID(i int) string              { return r.rows[i][0] }
func (r clkRecs) Value(i int, f string) string { return strconv.Itoa(r.visits[i]) }
func (r clkRecs) CLKRecord(i int) []string     { return append([]string{""}, r.rows[i][1:]...) }

// typo changes one letter of s (deterministic for r).
func typo(r *rand.Rand, s string) string {
	b := []byte(s)
	b[r.IntN(len(b))] = byte('a' + r.IntN(26))
	return string(b)
}

// clkParties draws n parties from one population: each person is in each
// party with probability 0.7, and in each party its given name or surname
// carries a typo half the time. It returns the parties and, for the people
// in every party, the sum of their visits over the parties.
func clkParties(r *rand.Rand, n, people int) ([]clkRecs, int, int) {
	word := func() string {
		b := make([]byte, 5+r.IntN(4))
		for i := range b {
			b[i] = byte('a' + r.IntN(26))
		}
		return string(b)
	}
	type person struct{ g, s, dob string }
	pop := make([]person, people)
	for i := range pop {
		pop[i] = person{word(), word(), fmt.Sprintf("%02d-%02d-%d", 1+r.IntN(28), 1+r.IntN(12), 1930+r.IntN(80))}
	}
	out := make([]clkRecs, n)
	in := make([][]bool, n)
	for p := range n {
		in[p] = make([]bool, people)
		for i, ps := range pop {
			if r.Float64() > 0.7 {
				continue
			}
			in[p][i] = true
			g, s := ps.g, ps.s
			if r.IntN(2) == 0 {
				if r.IntN(2) == 0 {
					g = typo(r, g)
				} else {
					s = typo(r, s)
				}
			}
			out[p].rows = append(out[p].rows, []string{fmt.Sprintf("p%d-%d", p, i), g, s, ps.dob})
			out[p].visits = append(out[p].visits, r.IntN(11))
		}
	}
	shared, sum := 0, 0
	for i := range people {
		all := true
		for p := range n {
			all = all && in[p][i]
		}
		if !all {
			continue
		}
		shared++
		for p := range n {
			for k, row := range out[p].rows {
				if row[0] == fmt.Sprintf("p%d-%d", p, i) {
					sum += out[p].visits[k]
				}
			}
		}
	}
	return out, shared, sum
}

func clkSpec(t *testing.T, n int, aggregation string) *session.Spec {
	t.Helper()
	parties := ""
	for i := range n {
		if i > 0 {
			parties += ","
		}
		parties += fmt.Sprintf("%q", fmt.Sprintf("h%d", i))
	}
	js := fmt.Sprintf(`{"id":"clk","parties":[%s],"fields":{"visits":"number"},
	"match":{"mode":"clk","schema":%s,"threshold":0.8},
	"reveal":["cardinality","pairwise","aggregates"],"aggregation":%q,"min_cell":1,
	"aggregates":[{"name":"visits","kind":"sum","field":"visits","min":0,"max":10}]}`, parties, clkSchema, aggregation)
	s, err := session.ParseSpec([]byte(js))
	require.NoError(t, err)
	return s
}

// A mode clk session links records despite typos (every person in all
// parties is one complete group and no other group is complete: a typo
// keeps a CLK far above the threshold, two people's CLKs fall far below)
// and aggregates over the groups, in every aggregation mode.
func TestCLKSessionLinksNoisyRecords(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	parties, shared, sum := clkParties(r, 3, 60)
	require.Positive(t, shared)
	for _, agg := range []string{session.AggregationMasked, session.AggregationOblivious, session.AggregationEncrypted} {
		t.Run(agg, func(t *testing.T) {
			spec := clkSpec(t, 3, agg)
			in := make([]LocalInput, 3)
			for i := range in {
				in[i] = LocalInput{Name: spec.Parties[i], Records: parties[i]}
			}
			o, err := RunLocal(context.Background(), spec, in, LocalConfig{Workers: 1})
			require.NoError(t, err)
			require.EqualValues(t, shared, *o.Result.Intersection)
			v, ok := o.Result.Aggregates.Get("visits")
			require.True(t, ok)
			require.Equal(t, strconv.Itoa(sum), v.Value.String())
			require.Equal(t, session.ModeCLK, o.Result.MatchMode)
		})
	}
}

// The coordinator refuses CLKs of the wrong length and, at the join, CLKs
// with bits set past the schema's length, naming the party.
func TestEngineRefusesMalformedCLKs(t *testing.T) {
	spec := clkSpec(t, 2, session.AggregationMasked)
	size := spec.CLKSchema().Bytes()
	e, err := NewEngine(spec)
	require.NoError(t, err)
	require.NoError(t, e.Declare(0, 1))
	require.NoError(t, e.Declare(1, 1))
	require.ErrorIs(t, e.AddCLKs(0, 0, make([]byte, size-1)), ErrBadMessage)
	require.NoError(t, e.AddCLKs(0, 0, make([]byte, size)))
	require.ErrorIs(t, e.AddCLKs(0, 1, make([]byte, size)), ErrWrongRound, "a complete list takes no more")
	require.NoError(t, e.AddCLKs(1, 0, make([]byte, size)))
	_, err = e.Join(context.Background(), 1)
	require.NoError(t, err, "all-zero CLKs are well formed")

	// 1024 bits fill the bytes exactly; a 1020-bit schema has 4 padding bits.
	odd := clkSpecBits(t, 1020)
	e, err = NewEngine(odd)
	require.NoError(t, err)
	require.NoError(t, e.Declare(0, 1))
	require.NoError(t, e.Declare(1, 1))
	bad := make([]byte, odd.CLKSchema().Bytes())
	bad[len(bad)-1] = 0x01 // past bit 1020
	require.NoError(t, e.AddCLKs(0, 0, make([]byte, len(bad))))
	require.NoError(t, e.AddCLKs(1, 0, bad))
	_, err = e.Join(context.Background(), 1)
	require.ErrorIs(t, err, ErrBadMessage)
	require.ErrorContains(t, err, "CLKs of party h1")
}

func clkSpecBits(t *testing.T, bits int) *session.Spec {
	t.Helper()
	s := clkSpec(t, 2, session.AggregationMasked)
	js := strings.Replace(string(s.Canonical()), `"l":1024`, fmt.Sprintf(`"l":%d`, bits), 1)
	out, err := session.ParseSpec([]byte(js))
	require.NoError(t, err)
	return out
}
