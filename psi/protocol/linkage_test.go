package protocol

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/internal/envelope"
	"github.com/mpsi-dev/mpsi/psi/join"
	"github.com/mpsi-dev/mpsi/psi/link"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// keyedRecs are records with several match keys: keys[i][k] is record i's
// key k (nil: no value).
type keyedRecs struct {
	ids    []string
	keys   [][][]byte
	visits []int
}

func (r keyedRecs) Len() int                     { return len(r.ids) }
func (r keyedRecs) Key(i int) []byte             { return r.keys[i][0] }
func (r keyedRecs) ID(i int) string              { return r.ids[i] }
func (r keyedRecs) Keys() int                    { return len(r.keys[0]) }
func (r keyedRecs) KeyAt(k, i int) []byte        { return r.keys[i][k] }
func (r keyedRecs) Value(i int, f string) string { return strconv.Itoa(r.visits[i]) }

// noisyParties draws n parties' records of shared people: each person is
// in each party with probability 0.7; each of its keys is kept, dropped
// (no value) or garbled (a value of its own) at random, so keys must be
// combined to find everyone, and some garbled values collide with other
// people's to plant ambiguity. Deterministic (inputs only).
func noisyParties(r *rand.Rand, n, people, keys int) []keyedRecs {
	out := make([]keyedRecs, n)
	for p := range n {
		for person := range people {
			if r.Float64() > 0.7 {
				continue
			}
			ks := make([][]byte, keys)
			for k := range ks {
				switch x := r.IntN(10); {
				case x < 2:
					// no value
				case x < 3:
					ks[k] = fmt.Appendf(nil, "\x01key%d:person%d", k, r.IntN(people)) // a wrong one
				default:
					ks[k] = fmt.Appendf(nil, "\x01key%d:person%d", k, person)
				}
			}
			out[p].ids = append(out[p].ids, fmt.Sprintf("p%d-%d", p, person))
			out[p].keys = append(out[p].keys, ks)
			out[p].visits = append(out[p].visits, r.IntN(11))
		}
		// A party never sends a key value two of its records share: the
		// loader marks such values ambiguous (package party); do the same.
		for k := range keys {
			count := map[string]int{}
			for _, ks := range out[p].keys {
				if ks[k] != nil {
					count[string(ks[k])]++
				}
			}
			for _, ks := range out[p].keys {
				if ks[k] != nil && count[string(ks[k])] > 1 {
					ks[k] = nil
				}
			}
		}
	}
	return out
}

// expectLinkage links the parties' keys in the clear (tokens = SHA-256 of
// the key, a unique filler for no value): the session's groups must be
// these, whatever the crypto.
func expectLinkage(t *testing.T, recs []keyedRecs) (*link.Result, int) {
	t.Helper()
	keys := recs[0].Keys()
	lists := make([][][]join.Token, keys)
	for k := range keys {
		lists[k] = make([][]join.Token, len(recs))
		for p, rs := range recs {
			for i := range rs.Len() {
				kb := rs.KeyAt(k, i)
				if kb == nil {
					kb = fmt.Appendf(nil, "\x00filler %d %d %d", k, p, i)
				}
				lists[k][p] = append(lists[k][p], sha256.Sum256(kb))
			}
		}
	}
	res, err := link.Group(lists, link.Options{Pairwise: true, Groups: true})
	require.NoError(t, err)
	sum := 0
	for p, pos := range res.Positions {
		for _, i := range pos {
			sum += recs[p].visits[i]
		}
	}
	return res, sum
}

func multiKeySpec(t testing.TB, mode, aggregation string, n int) *session.Spec {
	t.Helper()
	members := ""
	if aggregation == session.AggregationMasked {
		members = `,"membership"`
	}
	parties := ""
	for i := range n {
		if i > 0 {
			parties += ","
		}
		parties += fmt.Sprintf("%q", fmt.Sprintf("h%d", i))
	}
	js := fmt.Sprintf(`{"id":"linkage","parties":[%s],
	"fields":{"ssn":"id","surname":"name","dob":"date","visits":"number"},
	"match":{"mode":%q,"keys":[["ssn"],["surname|soundex","dob|year"],["surname","dob"]]},
	"reveal":["cardinality","pairwise","aggregates"%s],"aggregation":%q,"min_cell":1,
	"aggregates":[{"name":"visits","kind":"sum","field":"visits","min":0,"max":10}]}`, parties, mode, members, aggregation)
	s, err := session.ParseSpec([]byte(js))
	require.NoError(t, err)
	return s
}

// A session with three match keys releases exactly the grouping of the
// keys in the clear (psi/link), in both matching modes and every
// aggregation mode: |I|, pairwise counts, the sum over each party's record
// in each complete group, the per-key counts, and each party's members.
func TestMultiKeySessionsReleaseTheGrouping(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	recs := noisyParties(r, 3, 40, 3)
	want, wantSum := expectLinkage(t, recs)
	require.Positive(t, want.Completed[1]+want.Completed[2], "later keys must complete groups")
	require.Positive(t, want.Complete)
	require.Positive(t, want.Ambiguous, "the input must plant ambiguous links")
	for _, mode := range []string{session.ModeDH, session.ModeKeyed} {
		for _, agg := range []string{session.AggregationMasked, session.AggregationOblivious, session.AggregationEncrypted} {
			t.Run(mode+"/"+agg, func(t *testing.T) {
				if agg == session.AggregationEncrypted && testing.Short() {
					t.Skip("encrypted aggregation keys take seconds")
				}
				spec := multiKeySpec(t, mode, agg, 3)
				in := make([]LocalInput, 3)
				for i := range in {
					in[i] = LocalInput{Name: spec.Parties[i], Records: recs[i]}
				}
				o, err := RunLocal(context.Background(), spec, in, LocalConfig{Workers: 1})
				require.NoError(t, err)
				res := o.Result
				require.EqualValues(t, want.Complete, *res.Intersection)
				for i := range 3 {
					for j := range 3 {
						require.EqualValues(t, want.Pairwise[i][j], *res.Pairwise[i][j], "pairwise %d %d", i, j)
					}
				}
				v, ok := res.Aggregates.Get("visits")
				require.True(t, ok)
				require.Equal(t, strconv.Itoa(wantSum), v.Value.String())
				require.NotNil(t, res.Linkage)
				for k, c := range want.Completed {
					require.EqualValues(t, c, *res.Linkage.Keys[k], "key %d", k)
				}
				require.EqualValues(t, want.Ambiguous, *res.Linkage.Ambiguous)
				if agg == session.AggregationMasked {
					for p, pos := range want.Positions {
						var ids []string
						for _, i := range pos {
							ids = append(ids, recs[p].ids[i])
						}
						require.ElementsMatch(t, ids, o.Parties[spec.Parties[p]].Members, "members of %s", spec.Parties[p])
					}
				}
			})
		}
	}
}

// With one key written as match.keys, the Result is the one-key Result of
// match.fields (the same tokens, the same join) and carries no linkage.
func TestOneKeyAsKeysEqualsFields(t *testing.T) {
	in := []LocalInput{{Name: "hospital-a", Records: people(0, 30)}, {Name: "hospital-b", Records: people(10, 40)}, {Name: "hospital-c", Records: people(20, 50)}}
	fields := testSpec(t, "one", session.ModeKeyed, session.AggregationMasked, "")
	keys := testSpec(t, "one", session.ModeKeyed, session.AggregationMasked, "")
	keys.Match.Keys, keys.Match.Fields = [][]string{{"name"}}, nil
	keys, err := session.ParseSpec(keys.Canonical())
	require.NoError(t, err)
	a, err := RunLocal(context.Background(), fields, in, LocalConfig{Workers: 1})
	require.NoError(t, err)
	b, err := RunLocal(context.Background(), keys, in, LocalConfig{Workers: 1})
	require.NoError(t, err)
	require.JSONEq(t, resultJSON(t, a), resultJSON(t, b))
	require.Nil(t, b.Result.Linkage)
	require.EqualValues(t, 10, *a.Result.Intersection)
}

// A coordinator that moves a ring batch from one key's ring to another's
// (the lists are the same length, in the same order) is caught: the ring
// MAC binds the match key.
func TestRingBatchMovedToAnotherKeyIsRefused(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	recs := noisyParties(r, 3, 30, 3)
	spec := multiKeySpec(t, session.ModeDH, session.AggregationMasked, 3)
	in := make([]Records, 3)
	for i := range in {
		in[i] = recs[i]
	}
	moved := false
	tn := newTestNetTampered(t, spec, in, func(to int, m Message) []Message {
		if b, ok := m.(*Batch); ok && b.Kind == BatchRing && b.Key == 0 && !moved {
			c := *b
			c.Key = 1
			moved = true
			return []Message{&c}
		}
		return []Message{m}
	})
	require.True(t, moved)
	require.Nil(t, tn.released, "nothing may be released")
	require.NotNil(t, tn.aborted)
	detected := false
	for _, err := range tn.errs {
		detected = detected || errors.Is(err, ErrRingAuth)
	}
	require.True(t, detected, "a party must refuse the moved batch: %v", tn.errs)
}

// A coordinator that signs a Result whose per-key linkage counts do not
// add up to the signed tally's |I| is refused by the parties.
func TestLinkageCountsCheckedAgainstTally(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	recs := noisyParties(r, 3, 30, 3)
	spec := multiKeySpec(t, session.ModeKeyed, session.AggregationMasked, 3)
	in := make([]Records, 3)
	for i := range in {
		in[i] = recs[i]
	}
	_, get := pki(t)
	signer, _ := get("coordinator")
	forged := false
	tn := newTestNetTampered(t, spec, in, func(to int, m Message) []Message {
		res, ok := m.(*Result)
		if !ok {
			return []Message{m}
		}
		var sr session.Result
		require.NoError(t, json.Unmarshal(res.JSON, &sr))
		require.NotNil(t, sr.Linkage)
		*sr.Linkage.Keys[2]++
		b, err := json.Marshal(&sr)
		require.NoError(t, err)
		sig, err := envelope.SignResult(signer, spec.ID, b)
		require.NoError(t, err)
		forged = true
		return []Message{&Result{Header: res.Header, JSON: b, Signature: sig}}
	})
	require.True(t, forged)
	for i, err := range tn.errs {
		require.ErrorContains(t, err, "linkage key counts sum to", "party %d", i)
	}
}
