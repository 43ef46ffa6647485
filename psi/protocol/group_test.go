package protocol

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/psi"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// withGroup returns spec with match.group set and membership revealed,
// through its canonical JSON (so the group goes through parsing).
func withGroup(t testing.TB, spec *session.Spec, group string) *session.Spec {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(spec.Canonical(), &m))
	m["match"].(map[string]any)["group"] = group
	m["reveal"] = append(m["reveal"].([]any), session.RevealMembership)
	b, err := json.Marshal(m)
	require.NoError(t, err)
	s, err := session.ParseSpec(b)
	require.NoError(t, err)
	require.Equal(t, group, s.Match.Group)
	return s
}

// A dh session in the x25519 group releases the same Result, and gives every
// party the same members, as in ristretto255, for n = 2, 3 and 5 with
// partial overlaps; the intersection is the ground truth.
func TestDHGroupsReleaseTheSameResult(t *testing.T) {
	for _, n := range []int{2, 3, 5} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			in := make([]LocalInput, n)
			for i := range n {
				in[i] = LocalInput{Name: fmt.Sprintf("h%d", i), Records: people(i, 10+i)}
			}
			base := specN(t, "groups", session.ModeDH, session.AggregationMasked, n, "")
			outs := map[string]*Outcome{}
			for _, g := range []string{psi.GroupRistretto255, psi.GroupX25519} {
				o, err := RunLocal(context.Background(), withGroup(t, base, g), in, LocalConfig{Workers: 2})
				require.NoError(t, err, g)
				require.EqualValues(t, 10-(n-1), *o.Result.Intersection, g)
				outs[g] = o
			}
			r, x := outs[psi.GroupRistretto255], outs[psi.GroupX25519]
			require.JSONEq(t, resultJSON(t, r), resultJSON(t, x))
			require.Len(t, x.Parties, n)
			for name, pr := range r.Parties {
				require.NotEmpty(t, pr.Members, name)
				require.Equal(t, pr.Members, x.Parties[name].Members, name)
			}
		})
	}
}

// In the x25519 group, a malicious party's ring batch with a non-canonical
// or low-order u-coordinate (correctly MACed, so only the point check can
// catch it) makes the next party abort the session with psi.ErrInvalidPoint
// naming the check; nothing is released.
func TestX25519RingRefusesBadU(t *testing.T) {
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	le := func(x *big.Int) []byte {
		b := make([]byte, 32)
		x.FillBytes(b)
		slices.Reverse(b)
		return b
	}
	cases := []struct {
		name, reason string
		u            []byte
	}{
		{"u = p", "not reduced", le(p)},
		{"top bit set", "top bit", func() []byte { b := le(big.NewInt(9)); b[31] |= 0x80; return b }()},
		{"u = 0", "low order", make([]byte, 32)},
		{"u = 1 (order 4)", "low-order", le(big.NewInt(1))},
	}
	base := testSpec(t, "adv-x", session.ModeDH, session.AggregationMasked, "")
	var m map[string]any
	require.NoError(t, json.Unmarshal(base.Canonical(), &m))
	m["match"].(map[string]any)["group"] = psi.GroupX25519
	js, err := json.Marshal(m)
	require.NoError(t, err)
	spec, err := session.ParseSpec(js)
	require.NoError(t, err)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tn := newTestNet(t, spec, threeParties(), 0)
			tn.ready()
			data := tn.ring()[:8*32]
			copy(data[5*32:], tc.u)
			require.NoError(t, tn.send(tn.ringBatch(0, 0, 0, testRecords, data)))
			require.Nil(t, tn.released, "nothing may be released")
			require.NotNil(t, tn.aborted, "the session must abort")
			require.Contains(t, tn.aborted.Reason, "party hospital-b aborted")
			require.Contains(t, tn.aborted.Reason, "element 5")
			require.Contains(t, tn.aborted.Reason, tc.reason)
			require.ErrorIs(t, tn.errs[1], psi.ErrInvalidPoint)
		})
	}
}
