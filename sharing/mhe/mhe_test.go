package mhe_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	lmhe "github.com/tuneinsight/lattigo/v5/mhe"

	"github.com/mpsi-dev/mpsi/sharing/mhe"
)

// TestAggregateMatchesPlaintext is the property test: for n = 2..16 parties
// with random contributions (negative values included) and random
// indicators, the released aggregate equals the plaintext computation. It
// uses Profile B (the notes measured it correct at 16 parties) with 50
// positions per party, one party with none, and all n parties in PCKS.
func TestAggregateMatchesPlaintext(t *testing.T) {
	for n := 2; n <= 16; n++ {
		t.Run(fmt.Sprintf("profile=B/parties=%d", n), func(t *testing.T) {
			start := time.Now()
			r := newTestRand(uint64(n))
			s := newSession(t, testLiteral(mhe.ProfileB(), n, 0, 64))
			contribs := make([][][]uint64, n)
			inds := make([][]bool, n)
			for i := range contribs {
				m := 50
				if i == n-1 && n > 2 {
					m = 0 // a party with no records still sends one ciphertext
				}
				contribs[i] = randomContribs(r, m)
				inds[i] = randomIndicator(r, m)
			}
			got, err := s.aggregate(t, contribs, inds, allParties(n))
			require.NoError(t, err)
			require.Equal(t, plainAggregate(contribs, inds), got)
			t.Logf("n=%d: %v", n, time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestAggregateSeveralCiphertexts exercises chunking (positions spread over
// several ciphertexts, the last one partial) and an all-ones indicator.
func TestAggregateSeveralCiphertexts(t *testing.T) {
	r := newTestRand(99)
	lit := testLiteral(mhe.ProfileB(), 3, 0, 5000)
	s := newSession(t, lit)
	B := s.params.PositionsPerCiphertext()
	sizes := []int{2*B + 7, B, 1}
	contribs := make([][][]uint64, 3)
	inds := make([][]bool, 3)
	for i, m := range sizes {
		contribs[i] = randomContribs(r, m)
		inds[i] = randomIndicator(r, m)
	}
	for p := range inds[1] {
		inds[1][p] = true
	}
	got, err := s.aggregate(t, contribs, inds, allParties(3))
	require.NoError(t, err)
	require.Equal(t, plainAggregate(contribs, inds), got)
}

// TestProfileA runs the recommended profile (with Rescale) once.
func TestProfileA(t *testing.T) {
	r := newTestRand(7)
	s := newSession(t, testLiteral(mhe.ProfileA(), 3, 2, 100))
	contribs := [][][]uint64{randomContribs(r, 100), randomContribs(r, 40), randomContribs(r, 70)}
	inds := [][]bool{randomIndicator(r, 100), randomIndicator(r, 40), randomIndicator(r, 70)}
	got, err := s.aggregate(t, contribs, inds, []mhe.PartyID{0, 2})
	require.NoError(t, err)
	require.Equal(t, plainAggregate(contribs, inds), got)
}

// TestThreshold runs t-of-n sessions in which n − t parties vanish after
// sending their ciphertexts: only t parties (a random set) run PCKS. It also
// restarts PCKS with another active set, as after a dropout mid-output.
func TestThreshold(t *testing.T) {
	for _, tc := range []struct{ n, t int }{{3, 2}, {5, 3}, {16, 9}} {
		t.Run(fmt.Sprintf("profile=B/t=%d/n=%d", tc.t, tc.n), func(t *testing.T) {
			start := time.Now()
			r := newTestRand(uint64(100*tc.n + tc.t))
			s := newSession(t, testLiteral(mhe.ProfileB(), tc.n, tc.t, 64))
			contribs := make([][][]uint64, tc.n)
			inds := make([][]bool, tc.n)
			for i := range contribs {
				contribs[i] = randomContribs(r, 30)
				inds[i] = randomIndicator(r, 30)
			}
			want := plainAggregate(contribs, inds)
			for trial := 0; trial < 2; trial++ {
				perm := r.Perm(tc.n)[:tc.t]
				active := make([]mhe.PartyID, 0, tc.t)
				for k := 0; k < tc.n; k++ {
					for _, p := range perm {
						if p == k {
							active = append(active, mhe.PartyID(k))
						}
					}
				}
				got, err := s.aggregate(t, contribs, inds, active)
				require.NoError(t, err)
				require.Equal(t, want, got, "active set %v", active)
			}
			t.Logf("t=%d n=%d: %v", tc.t, tc.n, time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestThresholdRetryAfterDropout: the coordinator asks set A, one party of A
// vanishes, and the shares of A's survivors cannot be combined; the
// coordinator asks set A' of survivors and succeeds.
func TestThresholdRetryAfterDropout(t *testing.T) {
	r := newTestRand(5)
	s := newSession(t, testLiteral(mhe.ProfileB(), 5, 3, 16))
	params := s.params
	contribs := make([][][]uint64, 5)
	inds := make([][]bool, 5)
	var cts []*mhe.CiphertextMsg
	for i, p := range s.parties {
		contribs[i] = randomContribs(r, 16)
		inds[i] = randomIndicator(r, 16)
		out, err := p.EncryptContributions(s.cpk, contribs[i])
		require.NoError(t, err)
		cts = append(cts, out...)
	}
	agg, err := s.coord.Evaluate(cts, inds)
	require.NoError(t, err)
	rec, rkey, err := mhe.NewRecipient(params, s.id)
	require.NoError(t, err)

	first := []mhe.PartyID{0, 1, 2}
	req, err := agg.PCKSRequest(first)
	require.NoError(t, err)
	var shares []*mhe.PCKSShareMsg
	for _, a := range first[:2] { // party 2 vanishes
		sh, err := s.parties[a].GenPCKSShare(req, rkey)
		require.NoError(t, err)
		shares = append(shares, sh)
	}
	_, err = agg.KeySwitch(first, shares)
	require.ErrorIs(t, err, mhe.ErrMissingParty)

	second := []mhe.PartyID{0, 1, 4}
	req, err = agg.PCKSRequest(second)
	require.NoError(t, err)
	shares = shares[:0]
	for _, a := range second {
		sh, err := s.parties[a].GenPCKSShare(req, rkey)
		require.NoError(t, err)
		shares = append(shares, sh)
	}
	res, err := agg.KeySwitch(second, shares)
	require.NoError(t, err)
	got, err := rec.Decrypt(res)
	require.NoError(t, err)
	require.Equal(t, plainAggregate(contribs, inds), got)
}

// TestCoordinatorHoldsNoSecret walks the type of Coordinator, Accumulator
// and Aggregate, and the value graph of a Coordinator after a full session
// (through interfaces and pointers), and fails if any reachable type is a
// secret-key or secret-sharing type.
func TestCoordinatorHoldsNoSecret(t *testing.T) {
	forbidden := map[reflect.Type]bool{
		reflect.TypeOf(rlwe.SecretKey{}):            true,
		reflect.TypeOf(lmhe.ShamirSecretShare{}):    true,
		reflect.TypeOf(lmhe.ShamirPolynomial{}):     true,
		reflect.TypeOf(lmhe.Thresholdizer{}):        true,
		reflect.TypeOf(lmhe.Combiner{}):             true,
		reflect.TypeOf(mhe.PartyKeys{}):             true,
		reflect.TypeOf(mhe.Party{}):                 true,
		reflect.TypeOf(mhe.ThresholdShareMsg{}):     true,
		reflect.TypeOf(mhe.Recipient{}):             true,
		reflect.TypeOf(rlwe.Decryptor{}):            true,
		reflect.TypeOf(lmhe.PublicKeySwitchShare{}): false, // public, allowed
	}
	// Static: the declared field types, recursively (interfaces are opaque
	// here; the dynamic walk below covers them).
	for _, typ := range []reflect.Type{reflect.TypeOf(mhe.Coordinator{}), reflect.TypeOf(mhe.Accumulator{}), reflect.TypeOf(mhe.Aggregate{})} {
		seen := map[reflect.Type]bool{}
		var walk func(reflect.Type, string)
		walk = func(ty reflect.Type, path string) {
			if forbidden[ty] {
				t.Errorf("%s has type %v, a secret", path, ty)
			}
			if seen[ty] {
				return
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

	// Dynamic: a populated coordinator in threshold mode.
	s := newSession(t, testLiteral(mhe.ProfileB(), 3, 2, 8))
	r := newTestRand(1)
	contribs := [][][]uint64{randomContribs(r, 8), randomContribs(r, 8), randomContribs(r, 8)}
	inds := [][]bool{randomIndicator(r, 8), randomIndicator(r, 8), randomIndicator(r, 8)}
	var cts []*mhe.CiphertextMsg
	for i, p := range s.parties {
		out, err := p.EncryptContributions(s.cpk, contribs[i])
		require.NoError(t, err)
		cts = append(cts, out...)
	}
	agg, err := s.coord.Evaluate(cts, inds)
	require.NoError(t, err)
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
			if v.Type().Elem().Kind() <= reflect.Complex128 {
				return // numbers only
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
	walk(reflect.ValueOf(s.coord), "Coordinator")
	walk(reflect.ValueOf(agg), "Aggregate")
}

// TestDropBeforeComplete leaves out a party that vanished half-way through
// its ciphertexts: the aggregate is that of the others, exactly; a complete
// party cannot be dropped, and a dropped one cannot add more.
func TestDropBeforeComplete(t *testing.T) {
	r := newTestRand(6)
	params0, err := mhe.NewParams(testLiteral(mhe.ProfileB(), 3, 2, 1))
	require.NoError(t, err)
	m := 2*params0.PositionsPerCiphertext() + 3 // three ciphertexts per party
	s := newSession(t, testLiteral(mhe.ProfileB(), 3, 2, m))
	params := s.params
	require.Greater(t, params.CiphertextCount(m), 1, "the test needs several ciphertexts per party")
	contribs := make([][][]uint64, 3)
	inds := make([][]bool, 3)
	cts := make([][]*mhe.CiphertextMsg, 3)
	for i, p := range s.parties {
		contribs[i] = randomContribs(r, m)
		inds[i] = randomIndicator(r, m)
		cts[i], err = p.EncryptContributions(s.cpk, contribs[i])
		require.NoError(t, err)
	}
	acc, err := s.coord.NewAccumulator(inds)
	require.NoError(t, err)
	for i := 0; i < 2; i++ {
		for _, c := range cts[i] {
			require.NoError(t, acc.Add(c))
		}
		require.True(t, acc.Complete(mhe.PartyID(i)))
	}
	require.NoError(t, acc.Add(cts[2][0])) // then party 2 vanishes
	require.False(t, acc.Complete(2))
	require.ErrorIs(t, acc.Drop(0), mhe.ErrWrongState, "a complete party counts")
	require.NoError(t, acc.Drop(2))
	require.ErrorIs(t, acc.Add(cts[2][1]), mhe.ErrWrongState, "a dropped party adds nothing")
	agg, err := acc.Finalize()
	require.NoError(t, err)

	rec, rkey, err := mhe.NewRecipient(params, s.id)
	require.NoError(t, err)
	active := []mhe.PartyID{0, 1}
	req, err := agg.PCKSRequest(active)
	require.NoError(t, err)
	var shares []*mhe.PCKSShareMsg
	for _, a := range active {
		sh, err := s.parties[a].GenPCKSShare(req, rkey)
		require.NoError(t, err)
		shares = append(shares, sh)
	}
	res, err := agg.KeySwitch(active, shares)
	require.NoError(t, err)
	got, err := rec.Decrypt(res)
	require.NoError(t, err)
	require.Equal(t, plainAggregate(contribs[:2], inds[:2]), got)
}
