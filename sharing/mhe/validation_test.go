package mhe_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/sharing/mhe"
)

// TestValidation covers the negative cases of every round: wrong session,
// duplicate sender, missing party, replayed message, reused state,
// out-of-bound inputs and wrong active sets.
func TestValidation(t *testing.T) {
	r := newTestRand(11)
	lit := testLiteral(mhe.ProfileB(), 3, 2, 20)
	params, err := mhe.NewParams(lit)
	require.NoError(t, err)
	id, err := mhe.NewSessionID(params, "validation")
	require.NoError(t, err)
	other, err := mhe.NewSessionID(params, "another")
	require.NoError(t, err)

	var parties []*mhe.Party
	var ckg []*mhe.CKGShareMsg
	var gkg []*mhe.GaloisSharesMsg
	for i := 0; i < 3; i++ {
		p, err := mhe.NewParty(params, id, mhe.PartyID(i))
		require.NoError(t, err)
		parties = append(parties, p)
		c, err := p.GenCKGShare()
		require.NoError(t, err)
		ckg = append(ckg, c)
		g, err := p.GenGaloisShares()
		require.NoError(t, err)
		gkg = append(gkg, g)
	}
	_, err = mhe.NewParty(params, id, 3)
	require.ErrorIs(t, err, mhe.ErrInvalidArgument)

	t.Run("session id binds parameters", func(t *testing.T) {
		lit2 := lit
		lit2.MaxRecords++
		p2, err := mhe.NewParams(lit2)
		require.NoError(t, err)
		id2, err := mhe.NewSessionID(p2, "validation")
		require.NoError(t, err)
		require.NotEqual(t, id, id2)
		_, err = mhe.NewSessionID(params, "")
		require.ErrorIs(t, err, mhe.ErrInvalidArgument)
	})

	coord, err := mhe.NewCoordinator(params, id)
	require.NoError(t, err)
	t.Run("ckg", func(t *testing.T) {
		wrong := *ckg[1]
		wrong.Session = other
		_, err := coord.AggregateCKG([]*mhe.CKGShareMsg{ckg[0], &wrong, ckg[2]})
		require.ErrorIs(t, err, mhe.ErrWrongSession)
		var pe *mhe.PeerError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, mhe.PartyID(1), pe.Party)
		_, err = coord.AggregateCKG([]*mhe.CKGShareMsg{ckg[0], ckg[1], ckg[1]})
		require.ErrorIs(t, err, mhe.ErrDuplicateSender)
		_, err = coord.AggregateCKG(ckg[:2])
		require.ErrorIs(t, err, mhe.ErrMissingParty)
		_, err = coord.AggregateCKG([]*mhe.CKGShareMsg{ckg[0], nil, ckg[2]})
		require.ErrorIs(t, err, mhe.ErrMalformedMessage)
	})
	_, err = coord.NewAccumulator(make([][]bool, 3))
	require.ErrorIs(t, err, mhe.ErrWrongState, "accumulate before keys")
	cpk, err := coord.AggregateCKG(ckg)
	require.NoError(t, err)
	_, err = coord.AggregateCKG(ckg)
	require.ErrorIs(t, err, mhe.ErrWrongState, "second CKG")

	t.Run("gkg", func(t *testing.T) {
		wrong := *gkg[2]
		wrong.Session = other
		require.ErrorIs(t, coord.AggregateGalois([]*mhe.GaloisSharesMsg{gkg[0], gkg[1], &wrong}), mhe.ErrWrongSession)
		require.ErrorIs(t, coord.AggregateGalois([]*mhe.GaloisSharesMsg{gkg[0], gkg[0], gkg[2]}), mhe.ErrDuplicateSender)
		require.ErrorIs(t, coord.AggregateGalois(gkg[1:]), mhe.ErrMissingParty)
	})
	require.NoError(t, coord.AggregateGalois(gkg))
	require.ErrorIs(t, coord.AggregateGalois(gkg), mhe.ErrWrongState)

	t.Run("threshold", func(t *testing.T) {
		require.ErrorIs(t, parties[0].AggregateThresholdShares(nil), mhe.ErrWrongState, "aggregate before generating")
	})
	inbox := make([][]*mhe.ThresholdShareMsg, 3)
	for _, p := range parties {
		out, err := p.GenThresholdShares()
		require.NoError(t, err)
		for _, m := range out {
			require.NotEqual(t, m.From, m.To)
			inbox[m.To] = append(inbox[m.To], m)
		}
		_, err = p.GenThresholdShares()
		require.ErrorIs(t, err, mhe.ErrWrongState, "second Shamir polynomial")
	}
	t.Run("threshold inbox", func(t *testing.T) {
		require.ErrorIs(t, parties[0].AggregateThresholdShares(inbox[0][:1]), mhe.ErrMissingParty)
		require.ErrorIs(t, parties[0].AggregateThresholdShares([]*mhe.ThresholdShareMsg{inbox[0][0], inbox[0][0]}), mhe.ErrDuplicateSender)
		require.ErrorIs(t, parties[0].AggregateThresholdShares(inbox[1]), mhe.ErrMalformedMessage, "shares addressed to another party")
		wrong := *inbox[0][1]
		wrong.Session = other
		require.ErrorIs(t, parties[0].AggregateThresholdShares([]*mhe.ThresholdShareMsg{inbox[0][0], &wrong}), mhe.ErrWrongSession)
	})
	for i, p := range parties {
		require.NoError(t, p.AggregateThresholdShares(inbox[i]))
		require.ErrorIs(t, p.AggregateThresholdShares(inbox[i]), mhe.ErrWrongState, "second aggregation")
	}

	contribs := [][][]uint64{randomContribs(r, 20), randomContribs(r, 5), randomContribs(r, 0)}
	t.Run("encrypt", func(t *testing.T) {
		tooBig := randomContribs(r, 2)
		tooBig[1][0] = 1<<20 + 1
		_, err := parties[0].EncryptContributions(cpk, tooBig)
		require.ErrorIs(t, err, mhe.ErrInvalidArgument)
		negTooBig := randomContribs(r, 2)
		neg := -(int64(1)<<20 + 1)
		negTooBig[0][0] = uint64(neg)
		_, err = parties[0].EncryptContributions(cpk, negTooBig)
		require.ErrorIs(t, err, mhe.ErrInvalidArgument)
		minInt := randomContribs(r, 1)
		minInt[0][2] = 1 << 63
		_, err = parties[0].EncryptContributions(cpk, minInt)
		require.ErrorIs(t, err, mhe.ErrInvalidArgument)
		short := randomContribs(r, 1)
		short[0] = short[0][:4]
		_, err = parties[0].EncryptContributions(cpk, short)
		require.ErrorIs(t, err, mhe.ErrInvalidArgument)
		_, err = parties[0].EncryptContributions(cpk, randomContribs(r, 21))
		require.ErrorIs(t, err, mhe.ErrInvalidArgument, "more than max_records")

		// A public key whose CRP is not this session's is refused.
		forged := params.NewPublicKeyMsg()
		forged.Session = id
		forged.Key.Value[0].Copy(cpk.Key.Value[0])
		forged.Key.Value[1].Copy(cpk.Key.Value[1])
		forged.Key.Value[1].Q.Coeffs[0][0] ^= 1
		fresh, err := mhe.NewParty(params, id, 0)
		require.NoError(t, err)
		_, err = fresh.EncryptContributions(forged, contribs[0])
		require.ErrorIs(t, err, mhe.ErrMalformedMessage)
	})

	var cts [][]*mhe.CiphertextMsg
	for i, p := range parties {
		out, err := p.EncryptContributions(cpk, contribs[i])
		require.NoError(t, err)
		cts = append(cts, out)
	}
	inds := [][]bool{randomIndicator(r, 20), randomIndicator(r, 5), nil}

	t.Run("accumulate", func(t *testing.T) {
		_, err := coord.NewAccumulator(inds[:2])
		require.ErrorIs(t, err, mhe.ErrInvalidArgument)
		_, err = coord.NewAccumulator([][]bool{make([]bool, 21), nil, nil})
		require.ErrorIs(t, err, mhe.ErrInvalidArgument)

		acc, err := coord.NewAccumulator(inds)
		require.NoError(t, err)
		require.NoError(t, acc.Add(cts[0][0]))
		require.ErrorIs(t, acc.Add(cts[0][0]), mhe.ErrDuplicateSender, "replayed ciphertext")
		wrong := *cts[1][0]
		wrong.Session = other
		require.ErrorIs(t, acc.Add(&wrong), mhe.ErrWrongSession)
		wrong = *cts[1][0]
		wrong.Count = 2
		require.ErrorIs(t, acc.Add(&wrong), mhe.ErrMalformedMessage)
		_, err = acc.Finalize()
		require.ErrorIs(t, err, mhe.ErrMissingParty)
		require.NoError(t, acc.Add(cts[1][0]))
		require.NoError(t, acc.Add(cts[2][0]))
		_, err = acc.Finalize()
		require.NoError(t, err)
		_, err = acc.Finalize()
		require.ErrorIs(t, err, mhe.ErrWrongState)
		require.ErrorIs(t, acc.Add(cts[2][0]), mhe.ErrWrongState)
	})

	all := append(append(append([]*mhe.CiphertextMsg(nil), cts[0]...), cts[1]...), cts[2]...)
	agg, err := coord.Evaluate(all, inds)
	require.NoError(t, err)
	rec, rkey, err := mhe.NewRecipient(params, id)
	require.NoError(t, err)

	t.Run("pcks", func(t *testing.T) {
		_, err := agg.PCKSRequest([]mhe.PartyID{0})
		require.ErrorIs(t, err, mhe.ErrMissingParty, "fewer than t")
		_, err = agg.PCKSRequest([]mhe.PartyID{0, 1, 2})
		require.ErrorIs(t, err, mhe.ErrMissingParty, "more than t")
		_, err = agg.PCKSRequest([]mhe.PartyID{2, 0})
		require.ErrorIs(t, err, mhe.ErrInvalidArgument, "unsorted")
		_, err = agg.PCKSRequest([]mhe.PartyID{0, 3})
		require.ErrorIs(t, err, mhe.ErrInvalidArgument, "unknown party")

		req, err := agg.PCKSRequest([]mhe.PartyID{0, 1})
		require.NoError(t, err)
		_, err = parties[2].GenPCKSShare(req, rkey)
		require.ErrorIs(t, err, mhe.ErrInvalidArgument, "not in the active set")
		wrongKey := *rkey
		wrongKey.Session = other
		_, err = parties[0].GenPCKSShare(req, &wrongKey)
		require.ErrorIs(t, err, mhe.ErrWrongSession)

		s0, err := parties[0].GenPCKSShare(req, rkey)
		require.NoError(t, err)
		s1, err := parties[1].GenPCKSShare(req, rkey)
		require.NoError(t, err)
		_, err = agg.KeySwitch([]mhe.PartyID{0, 1}, []*mhe.PCKSShareMsg{s0, s0})
		require.ErrorIs(t, err, mhe.ErrDuplicateSender)
		_, err = agg.KeySwitch([]mhe.PartyID{0, 2}, []*mhe.PCKSShareMsg{s0, s1})
		require.ErrorIs(t, err, mhe.ErrDuplicateSender, "share from outside the active set")

		res, err := agg.KeySwitch([]mhe.PartyID{0, 1}, []*mhe.PCKSShareMsg{s1, s0})
		require.NoError(t, err)
		got, err := rec.Decrypt(res)
		require.NoError(t, err)
		require.Equal(t, plainAggregate(contribs, inds), got)

		// Another recipient cannot decrypt; the zero check catches it.
		other, _, err := mhe.NewRecipient(params, id)
		require.NoError(t, err)
		_, err = other.Decrypt(res)
		require.ErrorIs(t, err, mhe.ErrDecryption)
	})
}

// TestNofNNeedsEveryParty: without a threshold, PCKS needs all n parties.
func TestNofNNeedsEveryParty(t *testing.T) {
	s := newSession(t, testLiteral(mhe.ProfileB(), 3, 0, 4))
	var cts []*mhe.CiphertextMsg
	r := newTestRand(2)
	inds := make([][]bool, 3)
	for i, p := range s.parties {
		out, err := p.EncryptContributions(s.cpk, randomContribs(r, 4))
		require.NoError(t, err)
		cts = append(cts, out...)
		inds[i] = randomIndicator(r, 4)
	}
	agg, err := s.coord.Evaluate(cts, inds)
	require.NoError(t, err)
	_, err = agg.PCKSRequest([]mhe.PartyID{0, 1})
	require.ErrorIs(t, err, mhe.ErrMissingParty)
	_, err = s.parties[0].GenThresholdShares()
	require.ErrorIs(t, err, mhe.ErrWrongState)
}

// TestAggregateIsRerandomised: with an empty intersection the aggregate's c1
// would be 0 without re-randomisation, telling the parties that I is empty;
// the PCKS request must carry a non-zero c1, and two evaluations of the same
// inputs must differ.
func TestAggregateIsRerandomised(t *testing.T) {
	s := newSession(t, testLiteral(mhe.ProfileB(), 2, 0, 4))
	r := newTestRand(4)
	var cts []*mhe.CiphertextMsg
	for _, p := range s.parties {
		out, err := p.EncryptContributions(s.cpk, randomContribs(r, 4))
		require.NoError(t, err)
		cts = append(cts, out...)
	}
	empty := [][]bool{make([]bool, 4), make([]bool, 4)}
	var c1s [][]uint64
	for k := 0; k < 2; k++ {
		agg, err := s.coord.Evaluate(cts, empty)
		require.NoError(t, err)
		req, err := agg.PCKSRequest(allParties(2))
		require.NoError(t, err)
		nonZero := false
		for _, row := range req.C1.Coeffs {
			for _, c := range row {
				nonZero = nonZero || c != 0
			}
		}
		require.True(t, nonZero, "c1 of the aggregate is zero")
		c1s = append(c1s, append([]uint64(nil), req.C1.Coeffs[0]...))

		rec, rkey, err := mhe.NewRecipient(s.params, s.id)
		require.NoError(t, err)
		var shares []*mhe.PCKSShareMsg
		for _, p := range s.parties {
			sh, err := p.GenPCKSShare(req, rkey)
			require.NoError(t, err)
			shares = append(shares, sh)
		}
		res, err := agg.KeySwitch(allParties(2), shares)
		require.NoError(t, err)
		got, err := rec.Decrypt(res)
		require.NoError(t, err)
		require.Equal(t, make([]uint64, testComponents), got)
	}
	require.NotEqual(t, c1s[0], c1s[1])
}
