package party_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	lmhe "github.com/tuneinsight/lattigo/v5/mhe"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/psi"
	"github.com/mpsi-dev/mpsi/psi/join"
	"github.com/mpsi-dev/mpsi/psi/protocol"
	"github.com/mpsi-dev/mpsi/psi/session"
	"github.com/mpsi-dev/mpsi/sharing/mhe"
)

// withAggregation returns spec JSON b with "aggregation" (and, if non-zero,
// "threshold") set, and "membership" dropped from the reveal list.
func withAggregation(t *testing.T, b []byte, aggregation string, threshold int) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	m["aggregation"] = aggregation
	if threshold != 0 {
		m["threshold"] = threshold
	}
	var reveal []any
	for _, r := range m["reveal"].([]any) {
		if r != session.RevealMembership {
			reveal = append(reveal, r)
		}
	}
	m["reveal"] = reveal
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

func resultJSON(t *testing.T, r *session.Result) string {
	t.Helper()
	b, err := json.Marshal(r)
	require.NoError(t, err)
	return string(b)
}

// runBoth runs the same records under the masked spec and its encrypted
// twin and requires identical Result JSON (the Result carries no
// aggregation field), and no members in any party's copy.
func runBoth(t *testing.T, masked, encrypted *session.Spec, ins []party.Input) *party.Outcome {
	t.Helper()
	om, err := party.RunLocal(context.Background(), masked, ins, party.Config{Workers: 2})
	require.NoError(t, err)
	start := time.Now()
	oe, err := party.RunLocal(context.Background(), encrypted, ins, party.Config{Workers: 2})
	require.NoError(t, err)
	t.Logf("encrypted run: %v", time.Since(start).Round(time.Millisecond))
	require.Equal(t, resultJSON(t, om.Result), resultJSON(t, oe.Result))
	require.Len(t, oe.Parties, len(encrypted.Parties))
	for name, r := range oe.Parties {
		require.Nil(t, r.Members, name)
		require.Equal(t, resultJSON(t, oe.Result), resultJSON(t, r), name)
	}
	return oe
}

// The encrypted Result equals the masked Result for the same records, and
// the generator's ground truth, for n = 2..6 and 9 (the ≥ 9-party regime).
func TestEncryptedMatchesMaskedAndGroundTruth(t *testing.T) {
	for _, n := range []int{2, 3, 4, 5, 6, 9} {
		mode := []string{session.ModeDH, session.ModeKeyed}[n%2]
		t.Run(fmt.Sprintf("n=%d/mode=%s", n, mode), func(t *testing.T) {
			records := 120
			if n == 9 {
				records = 40
			}
			c, err := cohort.Generate(cohort.Config{Seed: uint64(100 + n), Parties: n, Records: records, SharedAll: 0.4, SharedPair: 0.2, Noise: true, Mode: mode, Duplicates: 2})
			require.NoError(t, err)
			masked, ins := loadCohort(t, c)
			encrypted, err := session.ParseSpec(withAggregation(t, c.Spec, session.AggregationEncrypted, 0))
			require.NoError(t, err)
			require.Equal(t, n, encrypted.Threshold, "n-of-n by default")

			out := runBoth(t, masked, encrypted, ins)
			r := out.Result
			require.Equal(t, int64(c.Truth.Intersection), *r.Intersection)
			for i := range c.Truth.Pairwise {
				for j := range c.Truth.Pairwise[i] {
					require.Equal(t, int64(c.Truth.Pairwise[i][j]), *r.Pairwise[i][j], "pairwise[%d][%d]", i, j)
				}
			}
			shared, _ := r.Aggregates.Get("shared")
			require.Equal(t, float64(c.Truth.Intersection), num(t, shared.Value))
			visits, _ := r.Aggregates.Get("visits")
			require.Equal(t, float64(c.Truth.VisitsSum), num(t, visits.Value))
			age, _ := r.Aggregates.Get("age")
			require.InDelta(t, float64(c.Truth.AgeSum)/float64(c.Truth.Intersection), num(t, age.Value), 1e-9)
			bands, _ := r.Aggregates.Get("age_bands")
			for b, want := range c.Truth.AgeBands {
				require.Equal(t, want, *bands.Counts[b], "band %d", b)
			}
			diab, _ := r.Aggregates.Get("diabetes")
			require.Equal(t, float64(c.Truth.Diabetes), num(t, diab.Value))
		})
	}
}

// On random sets with negative values, empty cells, an empty party and
// min_cell boundaries, the encrypted Result equals the masked one, which
// TestRunLocalMatchesBruteForce checks against the plaintext oracle (and so
// does this test, on the masked run with membership).
func TestEncryptedMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11)) // test inputs only
	shapes := []struct {
		name     string
		universe int
		p        []float64
		minCell  int
	}{
		{"random", 60, []float64{0.7}, 0},
		{"empty party", 30, []float64{0.8, 0}, 0},
		{"sparse, min_cell", 80, []float64{0.6}, 5},
	}
	for n := 2; n <= 6; n++ {
		sh := shapes[n%len(shapes)]
		mode := []string{session.ModeDH, session.ModeKeyed}[n%2]
		t.Run(fmt.Sprintf("n=%d/%s/%s", n, mode, sh.name), func(t *testing.T) {
			names := make([]string, n)
			for i := range names {
				names[i] = fmt.Sprintf("p%d", i)
			}
			pj, _ := json.Marshal(names)
			raw := []byte(fmt.Sprintf(oracleSpec, pj, mode, sh.minCell))
			withMembers, err := session.ParseSpec(raw)
			require.NoError(t, err)
			masked, err := session.ParseSpec(withAggregation(t, raw, session.AggregationMasked, 0))
			require.NoError(t, err)
			encrypted, err := session.ParseSpec(withAggregation(t, raw, session.AggregationEncrypted, 0))
			require.NoError(t, err)
			var ins []party.Input
			for i, name := range names {
				csv := randomInput(rng, sh.universe, sh.p[i%len(sh.p)], true)
				if sh.p[i%len(sh.p)] == 0 {
					csv = []byte("record_id,name,dob,sex,v,dx\n,,,,,\n")
				}
				recs, err := party.ReadCSV(bytes.NewReader(csv), withMembers, name, party.LoadOptions{})
				require.NoError(t, err)
				ins = append(ins, party.Input{Name: name, Records: recs})
			}
			om, err := party.RunLocal(context.Background(), withMembers, ins, party.Config{Workers: 2})
			require.NoError(t, err)
			checkAgainstOracle(t, withMembers, om, oracle(withMembers, ins), ins)
			oe := runBoth(t, masked, encrypted, ins)
			require.Equal(t, resultJSON(t, om.Result), resultJSON(t, oe.Result))
		})
	}
}

// A 2-of-3 session completes with party 2 absent from the key switch:
// RunLocal uses parties 0 and 1 only.
func TestEncryptedThresholdRunLocal(t *testing.T) {
	c, err := cohort.Generate(cohort.Config{Seed: 23, Parties: 3, Records: 100, SharedAll: 0.5, SharedPair: 0.2, Mode: session.ModeKeyed})
	require.NoError(t, err)
	masked, ins := loadCohort(t, c)
	encrypted, err := session.ParseSpec(withAggregation(t, c.Spec, session.AggregationEncrypted, 2))
	require.NoError(t, err)
	require.Equal(t, 2, encrypted.Threshold)
	r := runBoth(t, masked, encrypted, ins).Result
	visits, _ := r.Aggregates.Get("visits")
	require.Equal(t, float64(c.Truth.VisitsSum), num(t, visits.Value))
}

// The rounds of a 2-of-3 session, driven one by one: the coordinator asks
// {0, 2} to switch keys, party 2 has vanished, the switch fails with a
// missing party; it asks {0, 1} and the release equals the masked one. The
// coordinator's state holds no secret at the end.
func TestEncryptedThresholdDropout(t *testing.T) {
	c, err := cohort.Generate(cohort.Config{Seed: 29, Parties: 3, Records: 80, SharedAll: 0.5, SharedPair: 0.2, Mode: session.ModeKeyed})
	require.NoError(t, err)
	masked, ins := loadCohort(t, c)
	spec, err := session.ParseSpec(withAggregation(t, c.Spec, session.AggregationEncrypted, 2))
	require.NoError(t, err)
	want, err := party.RunLocal(context.Background(), masked, ins, party.Config{})
	require.NoError(t, err)

	n := 3
	eng, err := protocol.NewEngine(spec)
	require.NoError(t, err)
	parties := make([]*protocol.Holder, n)
	largest := 0
	for i, in := range ins {
		parties[i], err = protocol.NewHolder(spec, in.Name, in.Records, 0)
		require.NoError(t, err)
		require.NoError(t, eng.Declare(i, parties[i].SetSize()))
		largest = max(largest, parties[i].SetSize())
	}
	contribs := make([]psi.KeyContribution, n)
	for i, p := range parties {
		contribs[i] = p.KeyContribution()
	}
	for i, p := range parties {
		toks, err := p.KeyedTokens(slices.Clone(contribs))
		require.NoError(t, err)
		require.NoError(t, eng.SetTokens(i, toks))
	}
	_, err = eng.Join(context.Background(), 1)
	require.NoError(t, err)

	x, err := eng.StartEncrypted()
	require.NoError(t, err)
	require.True(t, x.Params().IsThreshold())
	eps := make([]*protocol.EncryptedHolder, n)
	ckg := make([]*mhe.CKGShareMsg, n)
	gkg := make([]*mhe.GaloisSharesMsg, n)
	for i, p := range parties {
		eps[i], err = p.Encrypted(largest)
		require.NoError(t, err)
		ckg[i], err = eps[i].GenCKGShare()
		require.NoError(t, err)
		gkg[i], err = eps[i].GenGaloisShares()
		require.NoError(t, err)
	}
	pk, err := x.AggregateKeys(ckg, gkg)
	require.NoError(t, err)
	inbox := make([][]*mhe.ThresholdShareMsg, n)
	for _, ep := range eps {
		out, err := ep.GenThresholdShares()
		require.NoError(t, err)
		for _, m := range out {
			inbox[m.To] = append(inbox[m.To], m)
		}
	}
	for i, ep := range eps {
		require.NoError(t, ep.AggregateThresholdShares(inbox[i]))
	}
	for i, ep := range eps {
		cts, err := ep.EncryptContributions(pk)
		require.NoError(t, err)
		_, err = ep.EncryptContributions(pk)
		require.ErrorIs(t, err, protocol.ErrStateConsumed)
		for _, m := range cts {
			require.NoError(t, x.AddCiphertext(i, m))
		}
		if i == 0 {
			require.ErrorIs(t, x.AddCiphertext(1, cts[0]), protocol.ErrBadMessage, "sender must be the party")
			require.ErrorIs(t, x.AddCiphertext(0, cts[0]), mhe.ErrDuplicateSender)
		}
	}
	recipient, rk, err := mhe.NewRecipient(x.Params(), x.Session())
	require.NoError(t, err)

	req, err := x.PCKSRequest([]int{0, 2})
	require.NoError(t, err)
	sh0, err := eps[0].GenPCKSShare(req, rk)
	require.NoError(t, err)
	// Party 2 is gone.
	_, err = x.KeySwitch([]*mhe.PCKSShareMsg{sh0})
	require.ErrorIs(t, err, mhe.ErrMissingParty)

	req, err = x.PCKSRequest([]int{1, 0})
	require.NoError(t, err)
	var shares []*mhe.PCKSShareMsg
	for _, i := range []int{0, 1} {
		sh, err := eps[i].GenPCKSShare(req, rk)
		require.NoError(t, err)
		shares = append(shares, sh)
	}
	res, err := x.KeySwitch(shares)
	require.NoError(t, err)
	sum, err := recipient.Decrypt(res)
	require.NoError(t, err)
	r, err := eng.ReleaseDecrypted(sum, nil)
	require.NoError(t, err)
	require.Equal(t, resultJSON(t, want.Result), resultJSON(t, r))
	again, err := eng.Release()
	require.NoError(t, err)
	require.Same(t, r, again)

	requireNoSecrets(t, reflect.ValueOf(x))
}

// requireNoSecrets walks the value graph from v (through pointers,
// interfaces, structs, slices and maps) and fails on any secret-key or
// secret-sharing type, or a party's state.
func requireNoSecrets(t *testing.T, v reflect.Value) {
	t.Helper()
	forbidden := map[reflect.Type]bool{
		reflect.TypeOf(rlwe.SecretKey{}):           true,
		reflect.TypeOf(rlwe.Decryptor{}):           true,
		reflect.TypeOf(lmhe.ShamirSecretShare{}):   true,
		reflect.TypeOf(lmhe.ShamirPolynomial{}):    true,
		reflect.TypeOf(lmhe.Thresholdizer{}):       true,
		reflect.TypeOf(lmhe.Combiner{}):            true,
		reflect.TypeOf(mhe.PartyKeys{}):            true,
		reflect.TypeOf(mhe.Party{}):                true,
		reflect.TypeOf(mhe.ThresholdShareMsg{}):    true,
		reflect.TypeOf(mhe.Recipient{}):            true,
		reflect.TypeOf(protocol.EncryptedHolder{}): true,
		reflect.TypeOf(protocol.Holder{}):          true,
	}
	visited := map[uintptr]bool{}
	var walk func(reflect.Value, string)
	walk = func(v reflect.Value, path string) {
		if !v.IsValid() {
			return
		}
		if forbidden[v.Type()] {
			t.Errorf("%s holds a %v, a secret", path, v.Type())
			return
		}
		switch v.Kind() {
		case reflect.Pointer:
			if v.IsNil() || visited[v.Pointer()] {
				return
			}
			visited[v.Pointer()] = true
			walk(v.Elem(), path)
		case reflect.Interface:
			walk(v.Elem(), path)
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				walk(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		case reflect.Slice, reflect.Array:
			if v.Type().Elem().Kind() <= reflect.Complex128 || v.Type().Elem().Kind() == reflect.String {
				return
			}
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i), path+"[]")
			}
		case reflect.Map:
			it := v.MapRange()
			for it.Next() {
				walk(it.Value(), path+"{}")
			}
		}
	}
	walk(v, v.Type().String())
}

// In encrypted mode no party object holds or receives positions: neither
// EncryptedParty nor Party has a field that can hold them, and no method
// of EncryptedParty takes them (the masked-mode Local, Share and Members
// are never reached: runEncrypted gets no join result).
func TestEncryptedPartyHasNoPositions(t *testing.T) {
	positions := []reflect.Type{reflect.TypeOf([]uint32(nil)), reflect.TypeOf(join.Result{}), reflect.TypeOf(&join.Result{})}
	isPositions := func(ty reflect.Type) bool {
		for _, p := range positions {
			if ty == p {
				return true
			}
		}
		return false
	}
	for _, typ := range []reflect.Type{reflect.TypeOf(protocol.EncryptedHolder{}), reflect.TypeOf(protocol.Holder{})} {
		seen := map[reflect.Type]bool{}
		var walk func(reflect.Type, string)
		walk = func(ty reflect.Type, path string) {
			if isPositions(ty) {
				t.Errorf("%s has type %v, which holds positions", path, ty)
			}
			if seen[ty] || ty == reflect.TypeOf(regexp.Regexp{}) {
				return // a compiled regular expression (a CLK schema's pattern) holds program offsets, not positions
			}
			seen[ty] = true
			switch ty.Kind() {
			case reflect.Pointer, reflect.Slice, reflect.Array:
				walk(ty.Elem(), path+"[]")
			case reflect.Map:
				walk(ty.Key(), path+"{k}")
				walk(ty.Elem(), path+"{v}")
			case reflect.Struct:
				for i := 0; i < ty.NumField(); i++ {
					walk(ty.Field(i).Type, path+"."+ty.Field(i).Name)
				}
			}
		}
		walk(typ, typ.Name())
	}
	ep := reflect.TypeOf(&protocol.EncryptedHolder{})
	for i := 0; i < ep.NumMethod(); i++ {
		m := ep.Method(i)
		for k := 1; k < m.Type.NumIn(); k++ {
			require.False(t, isPositions(m.Type.In(k)), "EncryptedParty.%s takes positions", m.Name)
			require.NotEqual(t, reflect.TypeOf(&protocol.Holder{}), m.Type.In(k), "EncryptedParty.%s takes a Party", m.Name)
		}
	}
}

// reveal: membership is refused with aggregation encrypted.
func TestEncryptedRefusesMembership(t *testing.T) {
	raw := []byte(fmt.Sprintf(oracleSpec, `["a","b"]`, session.ModeDH, 0))
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	m["aggregation"] = session.AggregationEncrypted
	b, err := json.Marshal(m)
	require.NoError(t, err)
	_, err = session.ParseSpec(b)
	require.ErrorIs(t, err, session.ErrInvalidSpec)
	require.Contains(t, err.Error(), `"membership" cannot be used with aggregation "encrypted"`)
}

// The limits that package session checks at spec validation are those of
// package mhe, so a spec that validates always gets parameters: at the
// largest bound the spec accepts, EncryptedParams succeeds with max_set_size
// records, and one more is refused by the spec.
func TestEncryptedLimitsMatchMHE(t *testing.T) {
	require.Equal(t, mhe.DefaultPlaintextModulus, session.EncryptedPlaintextModulus)
	require.Equal(t, mhe.MaxParties, session.EncryptedMaxParties)
	require.Equal(t, mhe.MaxRecordsLimit, session.EncryptedMaxSetSize)
	require.Equal(t, mhe.MaxComponents, session.EncryptedMaxSlots)
	for _, profile := range []mhe.ParamsLiteral{mhe.ProfileA(), mhe.ProfileB()} {
		lit := profile
		lit.Parties, lit.Threshold = session.EncryptedMaxParties, session.EncryptedMaxThreshold
		lit.Components, lit.MaxRecords, lit.MaxAbs = 1, 1, []uint64{1}
		_, err := mhe.NewParams(lit)
		require.NoError(t, err, "threshold %d of %d parties", lit.Threshold, lit.Parties)
	}

	const maxSetSize = 1 << 26
	n := int64(3)
	largest := (int64(session.EncryptedPlaintextModulus) - 1) / (2 * n * maxSetSize)
	spec := func(bound int64) string {
		return fmt.Sprintf(`{"id":"limits","parties":["a","b","c"],"fields":{"n":"name","v":"number"},"match":{"fields":["n"]},
"reveal":["aggregates"],"aggregates":[{"name":"s","kind":"sum","field":"v","min":%d,"max":0}],"max_set_size":%d,"aggregation":"encrypted"}`, -bound, maxSetSize)
	}
	s, err := session.ParseSpec([]byte(spec(largest)))
	require.NoError(t, err)
	params, _, err := protocol.EncryptedParams(s, maxSetSize)
	require.NoError(t, err)
	require.Equal(t, []uint64{uint64(largest), 1}, params.Literal().MaxAbs)
	_, err = session.ParseSpec([]byte(spec(largest + 1)))
	require.ErrorIs(t, err, session.ErrInvalidSpec)
	require.Contains(t, err.Error(), "aggregates[0] (s): bounds do not fit the plaintext modulus")

	// Beyond the spec, the parameters refuse an oversized session by name.
	s.MaxSetSize = maxSetSize
	_, _, err = protocol.EncryptedParams(s, 2*maxSetSize)
	require.ErrorIs(t, err, mhe.ErrInvalidParams)
	require.True(t, strings.Contains(err.Error(), "max_records"), err.Error())
}

// Without revealed aggregates nothing is encrypted or decrypted, and the
// Result still equals the masked one.
func TestEncryptedWithoutAggregates(t *testing.T) {
	c, err := cohort.Generate(cohort.Config{Seed: 31, Parties: 3, Records: 50, SharedAll: 0.5, Mode: session.ModeKeyed})
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(c.Spec, &m))
	m["reveal"] = []string{session.RevealCardinality, session.RevealPairwise}
	c.Spec, err = json.Marshal(m)
	require.NoError(t, err)
	masked, ins := loadCohort(t, c)
	encrypted, err := session.ParseSpec(withAggregation(t, c.Spec, session.AggregationEncrypted, 0))
	require.NoError(t, err)
	r := runBoth(t, masked, encrypted, ins).Result
	require.Nil(t, r.Aggregates)
	require.Equal(t, int64(c.Truth.Intersection), *r.Intersection)
}
