package coordinator_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	mpsiv1 "github.com/mpsi-dev/mpsi/api/mpsi/v1"
	"github.com/mpsi-dev/mpsi/coordinator"
	"github.com/mpsi-dev/mpsi/internal/mhewire"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// fuzzSetSize is every party's declared set size in fuzzed sessions.
const fuzzSetSize = 2

// Phases a fuzzed message is delivered in.
const (
	phaseJoin       = iota // everyone attached, nobody ready
	phaseJoinOthers        // parties other than 0 ready
	phaseTokens            // roster sent, token round
	phaseShares            // lists in, masks dealt
	numPhases
)

func readyMsg(size uint64) *mpsiv1.PartyMessage {
	return &mpsiv1.PartyMessage{Msg: &mpsiv1.PartyMessage_Ready{Ready: &mpsiv1.Ready{
		SetSize: size, HpkePublicKey: make([]byte, 32), Signature: []byte{1}}}}
}

// driveTo brings a fresh test session to phase with well-formed messages.
func driveTo(t testing.TB, ts *coordinator.TestSession, spec *session.Spec, phase int) {
	t.Helper()
	ctx := context.Background()
	n := len(spec.Parties)
	if phase >= phaseJoinOthers {
		for i := 1; i < n; i++ {
			_, err := ts.Handle(ctx, i, readyMsg(fuzzSetSize))
			require.NoError(t, err)
		}
	}
	if phase >= phaseTokens {
		_, err := ts.Handle(ctx, 0, readyMsg(fuzzSetSize))
		require.NoError(t, err)
		require.Equal(t, "tokens", ts.Round())
	}
	if phase >= phaseShares {
		data := make([]byte, 32*fuzzSetSize)
		for owner := 0; owner < n; owner++ {
			data[0], data[32] = byte(owner), byte(owner+1) // distinct tokens
			if spec.Match.Mode == session.ModeKeyed {
				_, err := ts.Handle(ctx, owner, batchMsg(mpsiv1.BatchKind_BATCH_KIND_TOKENS, owner, 0, 0, fuzzSetSize, data))
				require.NoError(t, err)
				continue
			}
			for hop := 0; hop < n; hop++ {
				_, err := ts.Handle(ctx, coordinator.RingTarget(n, owner, hop), batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, owner, hop, 0, fuzzSetSize, data))
				require.NoError(t, err)
			}
		}
		require.Contains(t, []string{"shares", "keys"}, ts.Round())
	}
	for i := 0; i < n; i++ {
		ts.Drain(i)
	}
}

func fuzzSeeds(t testing.TB, spec *session.Spec) []*mpsiv1.PartyMessage {
	env := func(r mpsiv1.Round, from, to uint32) *mpsiv1.PartyMessage {
		return envMsg(&mpsiv1.Envelope{Round: r, From: from, To: to, Enc: make([]byte, 32), Ciphertext: make([]byte, 48)})
	}
	return []*mpsiv1.PartyMessage{
		{},
		hello(spec.ID),
		readyMsg(fuzzSetSize),
		readyMsg(0),
		readyMsg(1 << 40),
		env(mpsiv1.Round_ROUND_MASK_SEED, 0, 1),
		env(mpsiv1.Round_ROUND_KEY_CONTRIBUTION, 0, 2),
		env(mpsiv1.Round_ROUND_MASK_SEED, 1, 0),
		batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, 0, 0, 0, fuzzSetSize, make([]byte, 64)),
		batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, 2, 1, 0, fuzzSetSize, make([]byte, 32)),
		batchMsg(mpsiv1.BatchKind_BATCH_KIND_RING, 1, 2, 1, fuzzSetSize, make([]byte, 32)),
		batchMsg(mpsiv1.BatchKind_BATCH_KIND_TOKENS, 0, 0, 0, fuzzSetSize, make([]byte, 64)),
		batchMsg(mpsiv1.BatchKind_BATCH_KIND_POSITIONS, 0, 0, 0, fuzzSetSize, make([]byte, 8)),
		shareMsg(vectorBytes(t, layoutLen(t, spec))),
		shareMsg([]byte{0xff, 0xff, 0xff, 0xff}),
		{Msg: &mpsiv1.PartyMessage_Abort{Abort: &mpsiv1.Abort{Reason: "no"}}},
	}
}

// mheSeeds are encrypted-aggregation messages for an encrypted spec: a
// well-formed first chunk of each kind a party sends, one of a kind only
// the coordinator sends, and a few broken ones.
func mheSeeds(t testing.TB, spec *session.Spec) []*mpsiv1.PartyMessage {
	params, _, err := coordinator.EncryptedParams(spec, fuzzSetSize)
	require.NoError(t, err)
	sizes, err := mhewire.SizesOf(params)
	require.NoError(t, err)
	chunk := func(k mpsiv1.MheKind, idx uint32, off, total uint64, n int) *mpsiv1.PartyMessage {
		return &mpsiv1.PartyMessage{Msg: &mpsiv1.PartyMessage_Mhe{Mhe: &mpsiv1.MheChunk{Kind: k, Index: idx, Offset: off, Total: total, Data: make([]byte, n)}}}
	}
	var out []*mpsiv1.PartyMessage
	for _, k := range []mpsiv1.MheKind{mpsiv1.MheKind_MHE_KIND_CKG_SHARE, mpsiv1.MheKind_MHE_KIND_GALOIS_SHARES,
		mpsiv1.MheKind_MHE_KIND_CIPHERTEXT, mpsiv1.MheKind_MHE_KIND_PCKS_SHARE, mpsiv1.MheKind_MHE_KIND_PUBLIC_KEY} {
		out = append(out, chunk(k, 0, 0, uint64(sizes[k]), 64))
	}
	out = append(out,
		chunk(mpsiv1.MheKind_MHE_KIND_CKG_SHARE, 0, 0, uint64(sizes[mpsiv1.MheKind_MHE_KIND_CKG_SHARE]), sizes[mpsiv1.MheKind_MHE_KIND_CKG_SHARE]),
		chunk(mpsiv1.MheKind_MHE_KIND_CKG_SHARE, 0, 8, 1<<40, 8),
		chunk(mpsiv1.MheKind(99), 0, 0, 10, 10),
		envMsg(&mpsiv1.Envelope{Round: mpsiv1.Round_ROUND_THRESHOLD_SHARE, From: 0, To: 1, Enc: make([]byte, 32), Ciphertext: make([]byte, 4096)}),
	)
	return out
}

// FuzzPartyMessage feeds one arbitrary PartyMessage from an arbitrary party
// into a session at each phase, through the session's own handle function.
// It must never panic; a message is either refused with ErrBadMessage or
// ErrWrongRound (or is the party's own Abort), or accepted, in which case
// the session is still consistent and the same message replayed is refused.
func FuzzPartyMessage(f *testing.F) {
	h := newCore(f)
	specs := map[uint8]*session.Spec{}
	for i, mode := range []string{session.ModeDH, session.ModeKeyed, session.ModeKeyed} {
		var edit func(map[string]any)
		if i == 2 {
			edit = encrypted(2, session.DropoutLeaveOut)
		}
		s, err := session.ParseSpec(specJSON(f, getCohort(f, mode), "fuzz", edit))
		require.NoError(f, err)
		specs[uint8(i)] = s
	}
	for mode, spec := range specs {
		seeds := fuzzSeeds(f, spec)
		if spec.Aggregation == session.AggregationEncrypted {
			seeds = append(seeds, mheSeeds(f, spec)...)
		}
		for k, m := range seeds {
			b, err := proto.Marshal(m)
			require.NoError(f, err)
			// Every message in two phases of each mode keeps the seed run short.
			f.Add(mode, uint8(k%numPhases), uint8(0), b)
			f.Add(mode, uint8((k+2)%numPhases), uint8(k%3), b)
		}
	}
	f.Fuzz(func(t *testing.T, mode, phase, from uint8, data []byte) {
		var m mpsiv1.PartyMessage
		if err := proto.Unmarshal(data, &m); err != nil {
			return
		}
		base := specs[mode%3]
		var edit func(map[string]any)
		if base.Aggregation == session.AggregationEncrypted {
			edit = encrypted(base.Threshold, base.Dropout)
		}
		sj, err := session.ParseSpec(specJSON(t, getCohort(t, base.Match.Mode), newSessionID("fuzz"), edit))
		require.NoError(t, err)
		ts := newTestSession(t, h, sj)
		p := int(phase % numPhases)
		driveTo(t, ts, sj, p)
		i := int(from) % len(sj.Parties)
		ctx := context.Background()
		round := ts.Round()
		finished, err := ts.Handle(ctx, i, &m)
		if err != nil {
			require.False(t, finished)
			if _, isAbort := m.Msg.(*mpsiv1.PartyMessage_Abort); isAbort {
				require.True(t, strings.HasPrefix(err.Error(), "aborted: "), "%v", err)
				return
			}
			require.True(t, errors.Is(err, coordinator.ErrBadMessage) || errors.Is(err, coordinator.ErrWrongRound),
				"unclassified error %v for %v in round %s", err, &m, round)
			return
		}
		require.False(t, finished, "one message cannot complete a session here")
		for j := range sj.Parties {
			for _, out := range ts.Drain(j) {
				if e := out.GetEnvelope(); e != nil {
					require.Equal(t, uint32(j), e.GetTo(), "envelope relayed to its recipient only")
					require.Equal(t, uint32(i), e.GetFrom())
				}
				require.Nil(t, out.GetResult(), "nothing is released")
			}
		}
		// An accepted message is never accepted twice.
		finished, err = ts.Handle(ctx, i, &m)
		require.Error(t, err, "replayed %v accepted in round %s", &m, ts.Round())
		require.False(t, finished)
	})
}
