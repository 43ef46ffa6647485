package protocol

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/psi/session"
	"github.com/mpsi-dev/mpsi/sharing"
)

func specN(t testing.TB, id, mode, aggregation string, n int, extra string) *session.Spec {
	t.Helper()
	parties := ""
	for i := range n {
		if i > 0 {
			parties += ","
		}
		parties += fmt.Sprintf("%q", fmt.Sprintf("h%d", i))
	}
	js := fmt.Sprintf(`{"id":%q,"parties":[%s],"fields":{"name":"name","visits":"number"},"match":{"mode":%q,"fields":["name"]},
	"reveal":["cardinality","pairwise","aggregates"],"aggregation":%q,
	"aggregates":[{"name":"n","kind":"count"},{"name":"visits","kind":"sum","field":"visits","min":0,"max":10},
	{"name":"mean","kind":"mean","field":"visits","min":0,"max":10},
	{"name":"bands","kind":"histogram","field":"visits","edges":[0,2,4,10]}]%s}`, id, parties, mode, aggregation, extra)
	s, err := session.ParseSpec([]byte(js))
	require.NoError(t, err)
	return s
}

func resultJSON(t testing.TB, o *Outcome) string {
	t.Helper()
	b, err := json.Marshal(o.Result)
	require.NoError(t, err)
	return string(b)
}

// Oblivious aggregation releases exactly masked aggregation's Result, for
// n = 2..8, dh and keyed, with empty, one-element, partial and full
// intersections and min_cell on both sides of |I|; no party's Result has
// members.
func TestObliviousMatchesMasked(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6)) // deterministic cohorts for the test
	shapes := []struct {
		name string
		recs func(n int) []Records
	}{
		{"empty intersection", func(n int) []Records {
			r := make([]Records, n)
			for i := range r {
				r[i] = people(100*i, 100*i+5)
			}
			return r
		}},
		{"one element", func(n int) []Records {
			r := make([]Records, n)
			for i := range r {
				r[i] = memRecords{ids: []int{1000, 100*i + 1, 100*i + 2}}
			}
			return r
		}},
		{"full", func(n int) []Records {
			r := make([]Records, n)
			for i := range r {
				r[i] = people(0, 12)
			}
			return r
		}},
		{"random", func(n int) []Records {
			r := make([]Records, n)
			for i := range r {
				var ids []int
				for id := range 40 {
					if rng.IntN(3) > 0 {
						ids = append(ids, id)
					}
				}
				r[i] = memRecords{ids: ids}
			}
			return r
		}},
		{"a party without records", func(n int) []Records {
			r := make([]Records, n)
			for i := range r {
				r[i] = people(0, 6)
			}
			r[n-1] = memRecords{}
			return r
		}},
	}
	for _, n := range []int{2, 3, 5, 8} {
		for _, mode := range []string{session.ModeDH, session.ModeKeyed} {
			if mode == session.ModeDH && n > 5 {
				continue // the ring is n² hops; keyed covers n = 8
			}
			for _, sh := range shapes {
				for _, minCell := range []int{0, 3} {
					t.Run(fmt.Sprintf("n=%d/%s/%s/min_cell=%d", n, mode, sh.name, minCell), func(t *testing.T) {
						recs := sh.recs(n)
						in := make([]LocalInput, n)
						for i := range n {
							in[i] = LocalInput{Name: fmt.Sprintf("h%d", i), Records: recs[i]}
						}
						extra := fmt.Sprintf(`,"min_cell":%d`, minCell)
						om, err := RunLocal(context.Background(), specN(t, "x", mode, session.AggregationMasked, n, extra), in, LocalConfig{Workers: 1})
						require.NoError(t, err)
						oo, err := RunLocal(context.Background(), specN(t, "x", mode, session.AggregationOblivious, n, extra), in, LocalConfig{Workers: 1})
						require.NoError(t, err)
						require.JSONEq(t, resultJSON(t, om), resultJSON(t, oo))
						for name, r := range oo.Parties {
							require.Nil(t, r.Members, name)
						}
					})
				}
			}
		}
	}
}

// No party ever receives its own positions or its own indicator: every
// message a party receives in an oblivious session is inspected.
func TestObliviousPartyNeverSeesItsMembership(t *testing.T) {
	spec := testSpec(t, "obl-view", session.ModeKeyed, session.AggregationOblivious, "")
	seen := map[int][]Message{}
	tn := newTestNet(t, spec, threeParties(), -1, func(tn *testNet) {
		tn.tamper = func(to int, m Message) []Message {
			seen[to] = append(seen[to], m)
			return []Message{m}
		}
	})
	require.NotNil(t, tn.released, "errs %v aborted %+v", tn.errs, tn.aborted)
	for to, ms := range seen {
		kinds := map[BatchKind]int{}
		for _, m := range ms {
			switch x := m.(type) {
			case *MaskDeal:
				t.Fatalf("party %d got a mask", to)
			case *Batch:
				kinds[x.Kind]++
				require.NotEqual(t, BatchPositions, x.Kind, "party %d got positions", to)
				if x.Kind == BatchIndicator {
					require.NotEqual(t, uint32(to), x.Owner, "party %d got its own indicator", to)
				}
			}
		}
		require.Positive(t, kinds[BatchIndicator], "party %d got the others' indicators", to)
	}
}

// A compromised coordinator giving one party a different indicator of
// another (isolating other records of it) is caught: the parties' signed
// digests disagree and every party aborts before unmasking.
func TestObliviousIndicatorsCrossChecked(t *testing.T) {
	spec := testSpec(t, "obl-x", session.ModeKeyed, session.AggregationOblivious, "")
	tn := newTestNet(t, spec, threeParties(), -1, func(tn *testNet) {
		tn.tamper = func(to int, m Message) []Message {
			if b, ok := m.(*Batch); ok && b.Kind == BatchIndicator && to == 2 && b.Owner == 0 {
				// Same number of ones, other records: rotate the bits.
				c := *b
				c.Data = append([]byte(nil), b.Data...)
				first := c.Data[0] & 1
				for k := range c.Data {
					next := byte(0)
					if k+1 < len(c.Data) {
						next = c.Data[k+1] & 1
					} else {
						next = first
					}
					c.Data[k] = c.Data[k]>>1 | next<<7
				}
				return []Message{&c}
			}
			return []Message{m}
		}
	})
	require.Nil(t, tn.released, "nothing may be released")
	require.NotNil(t, tn.aborted)
	require.Contains(t, tn.aborted.Reason, "received different indicators of hospital-a")
	for i, p := range tn.parties {
		require.Equal(t, StateAborted, p.State(), spec.Parties[i])
	}
}

// An indicator with more ones than the signed |I| (one party's records
// singled out) is refused before anything is unmasked.
func TestObliviousIndicatorCountChecked(t *testing.T) {
	spec := testSpec(t, "obl-count", session.ModeKeyed, session.AggregationOblivious, "")
	tn := newTestNet(t, spec, threeParties(), -1, func(tn *testNet) {
		tn.tamper = func(to int, m Message) []Message {
			if b, ok := m.(*Batch); ok && b.Kind == BatchIndicator && to == 1 && b.Owner == 0 {
				c := *b
				c.Data = append([]byte(nil), b.Data...)
				c.Data[0] = 0xff
				return []Message{&c}
			}
			return []Message{m}
		}
	})
	require.Nil(t, tn.released)
	require.ErrorIs(t, tn.errs[1], ErrPositions)
	require.ErrorContains(t, tn.errs[1], "the signed tally says |I|")
}

// What the coordinator sees of a party in oblivious mode, its upload y_i
// and its unmasking share U_j, differs from the party's contributions and
// from its sum over I.
func TestObliviousCoordinatorView(t *testing.T) {
	spec := testSpec(t, "obl-coord", session.ModeKeyed, session.AggregationOblivious, "")
	uploads := map[int][]byte{}
	shares := map[int]sharing.Vector{}
	tn := newTestNet(t, spec, threeParties(), -1, func(tn *testNet) {
		tn.sent = func(from int, m Message) {
			switch x := m.(type) {
			case *Batch:
				if x.Kind == BatchUpload {
					uploads[from] = append(uploads[from], x.Data...)
				}
			case *Share:
				v, err := sharing.UnmarshalVector(x.Vector, 64)
				require.NoError(t, err)
				shares[from] = v
			}
		}
	})
	require.NotNil(t, tn.released)
	for i, p := range tn.parties {
		h := p.h
		L := h.layout.Len()
		require.Len(t, uploads[i], 8*L*h.SetSize(), "party %d uploads every record", i)
		same := 0
		for pos := range h.SetSize() {
			x := make(sharing.Vector, L)
			ri := int(h.perm[pos])
			require.NoError(t, h.layout.Contribute(h.index, func(f string) string { return h.recs.Value(ri, f) }, x))
			for s := range L {
				if binary.LittleEndian.Uint64(uploads[i][8*(pos*L+s):]) == x[s] {
					same++
				}
			}
		}
		require.Zero(t, same, "party %d: an uploaded word equals its contribution", i)
		sum, err := h.Local(tn.coord.eng.join.Positions[i])
		require.NoError(t, err)
		require.False(t, sum.Equal(shares[i]), "party %d's unmasking share is its sum", i)
		for s := range L {
			require.NotEqual(t, sum[s], shares[i][s], "party %d slot %d", i, s)
		}
	}
}

// A party that vanishes before its unmasking share aborts the session,
// naming it.
func TestObliviousDropoutAborts(t *testing.T) {
	spec := testSpec(t, "obl-drop", session.ModeKeyed, session.AggregationOblivious, "")
	tn := newTestNet(t, spec, threeParties(), -1, func(tn *testNet) {
		tn.sent = func(from int, m Message) {
			if a, ok := m.(*Attestation); ok && from == 1 && tn.parties[1] != nil {
				_ = a
				tn.parties[1] = nil // gone after its attestation, before U_1
				tn.coord.Gone(context.Background(), 1, "closed its stream before the end")
			}
		}
	})
	require.Nil(t, tn.released)
	require.NotNil(t, tn.aborted)
	require.Equal(t, CodeDisconnected, tn.aborted.Code)
	require.Contains(t, tn.aborted.Reason, "party hospital-b closed its stream before the end")
}
