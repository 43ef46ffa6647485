package protocol

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/internal/envelope"
	"github.com/mpsi-dev/mpsi/psi"
	"github.com/mpsi-dev/mpsi/psi/session"
	"github.com/mpsi-dev/mpsi/sharing"
)

const testRecords = 24

func threeParties() []Records {
	return []Records{people(0, testRecords), people(10, 10+testRecords), people(12, 12+testRecords)}
}

// advCase is one attack by party 0 (hospital-a) on a dh, masked session
// whose other parties are honest machines. The coordinator machine must
// abort with a reason holding every string in reason, the honest parties
// must end aborted with that reason, except the detector (a party that
// catches the attack itself: its error wraps detErr). codec means the codec
// refuses to encode the message: it can never reach a machine.
type advCase struct {
	name      string
	preRoster func(tn *testNet) error
	act       func(tn *testNet) error
	reason    []string
	detector  string
	detErr    error
	codec     bool
}

func batch(kind BatchKind, owner, hop, off, total int, data []byte) *Batch {
	return &Batch{Kind: kind, Owner: uint32(owner), Hop: uint32(hop), Offset: uint64(off), Total: uint64(total), Data: data}
}

func vectorBytes(t testing.TB, n int) []byte {
	b, err := make(sharing.Vector, n).MarshalBinary()
	require.NoError(t, err)
	return b
}

// The adversarial message table: every message a malicious party can send
// in the wrong place, with the wrong size, sender or content, is refused
// with a reason naming the party and the check, and nothing is released.
func TestCoordinatorRefusesMaliciousParty(t *testing.T) {
	allFF := bytes.Repeat([]byte{0xff}, 32)
	identity := make([]byte, 32)
	const n = testRecords
	layout, err := session.NewLayout(testSpec(t, "adv", session.ModeDH, session.AggregationMasked, ""))
	require.NoError(t, err)
	L := layout.Len()
	cases := []advCase{
		// Ring batches.
		{name: "ring point not canonical", act: func(tn *testNet) error {
			return tn.send(tn.ringBatch(0, 0, 0, n, bytes.Repeat(allFF, 8)))
		}, reason: []string{"party hospital-b aborted", "invalid group element"}, detector: "hospital-b", detErr: psi.ErrInvalidPoint},
		{name: "ring point is the identity", act: func(tn *testNet) error {
			data := tn.ring()[:8*32]
			copy(data[3*32:], identity)
			return tn.send(tn.ringBatch(0, 0, 0, n, data))
		}, reason: []string{"invalid group element", "identity"}, detector: "hospital-b", detErr: psi.ErrInvalidPoint},
		{name: "ring batch for a match key the spec does not have", act: func(tn *testNet) error {
			b := tn.ringBatch(0, 0, 0, n, tn.ring()[:8*32])
			b.Key = 1
			return tn.send(b)
		}, reason: []string{"party hospital-a", "batch for match key 1, the spec has 1"}},
		{name: "data not a multiple of 32", act: func(tn *testNet) error {
			return tn.send(tn.ringBatch(0, 0, 0, n, tn.ring()[:33]))
		}, reason: []string{"party hospital-a", "batch of 33 bytes"}},
		{name: "empty batch", act: func(tn *testNet) error { return tn.send(tn.ringBatch(0, 0, 0, n, nil)) },
			reason: []string{"party hospital-a", "batch of 0 bytes"}},
		{name: "batch above MaxBatch", act: func(tn *testNet) error {
			return tn.send(tn.ringBatch(0, 0, 0, n, tn.ring()[:9*32]))
		}, reason: []string{"batch of 288 bytes (limit 8 elements"}},
		{name: "offset gap", act: func(tn *testNet) error {
			return tn.send(tn.ringBatch(0, 0, 8, n, tn.ring()[8*32:16*32]))
		}, reason: []string{"batch at offset 8, expected 0"}},
		{name: "offset replay", act: func(tn *testNet) error {
			data := tn.ring()[:8*32]
			if err := tn.send(tn.ringBatch(0, 0, 0, n, data)); err != nil {
				return err
			}
			return tn.send(tn.ringBatch(0, 0, 0, n, data))
		}, reason: []string{"batch at offset 0, expected 8"}},
		{name: "list past its total", act: func(tn *testNet) error {
			own := tn.ring()
			for off := 0; off < n; off += 8 {
				if err := tn.send(tn.ringBatch(0, 0, off, n, own[off*32:(off+8)*32])); err != nil {
					return err
				}
			}
			return tn.send(tn.ringBatch(0, 0, n, n, own[:32]))
		}, reason: []string{fmt.Sprintf("batch at offset %d, expected %d of %d", n, n, n)}},
		{name: "total differs from the declared size", act: func(tn *testNet) error {
			return tn.send(tn.ringBatch(0, 0, 0, n+1, tn.ring()[:32]))
		}, reason: []string{fmt.Sprintf("batch total %d, declared size %d", n+1, n)}},
		{name: "hop of another party", act: func(tn *testNet) error { return tn.send(batch(BatchRing, 1, 1, 0, n, tn.ring()[:32])) },
			reason: []string{"ring batch (owner 1, hop 1) not for this party"}},
		{name: "own list at hop 1", act: func(tn *testNet) error { return tn.send(batch(BatchRing, 0, 1, 0, n, tn.ring()[:32])) },
			reason: []string{"ring batch (owner 0, hop 1) not for this party"}},
		{name: "hop 0 of another's list", act: func(tn *testNet) error { return tn.send(batch(BatchRing, 2, 0, 0, n, tn.ring()[:32])) },
			reason: []string{"ring batch (owner 2, hop 0) not for this party"}},
		{name: "hop out of range", act: func(tn *testNet) error { return tn.send(batch(BatchRing, 0, 3, 0, n, tn.ring()[:32])) },
			reason: []string{"ring batch (owner 0, hop 3) not for this party"}},
		{name: "owner out of range", act: func(tn *testNet) error { return tn.send(batch(BatchRing, 1<<31, 0, 0, n, tn.ring()[:32])) },
			reason: []string{"batch for unknown owner 2147483648"}},
		{name: "token batch in dh mode", act: func(tn *testNet) error { return tn.send(batch(BatchTokens, 0, 0, 0, n, tn.ring()[:32])) },
			reason: []string{"token batch not allowed here"}},
		{name: "positions from a party", act: func(tn *testNet) error { return tn.send(batch(BatchPositions, 0, 0, 0, n, make([]byte, 4))) },
			reason: []string{"batch kind positions from a party"}},
		{name: "batch kind unknown", act: func(tn *testNet) error { return tn.send(batch(BatchKind(0), 0, 0, 0, n, tn.ring()[:32])) }, codec: true},
		{name: "offset beyond total", act: func(tn *testNet) error { return tn.send(tn.ringBatch(0, 0, n+1, n, tn.ring()[:32])) }, codec: true},

		// Envelopes.
		{name: "envelope from another party", act: func(tn *testNet) error {
			e := tn.seal(EnvelopeMaskSeed, 2, make([]byte, 32))
			e.FromParty = 1
			return tn.send(e)
		}, reason: []string{"party hospital-a", "envelope from 1 to 2 on party 0's stream"}},
		{name: "envelope to itself", act: func(tn *testNet) error {
			e := tn.seal(EnvelopeMaskSeed, 1, make([]byte, 32))
			e.To = 0
			return tn.send(e)
		}, reason: []string{"envelope from 0 to 0 on party 0's stream"}},
		{name: "envelope to no party", act: func(tn *testNet) error {
			e := tn.seal(EnvelopeMaskSeed, 1, make([]byte, 32))
			e.To = 1<<32 - 1
			return tn.send(e)
		}, reason: []string{"envelope from 0 to 4294967295"}},
		{name: "envelope round unknown", act: func(tn *testNet) error {
			e := tn.seal(EnvelopeMaskSeed, 1, make([]byte, 32))
			e.Round = 3
			return tn.send(e)
		}, codec: true},
		{name: "key contribution in dh mode", act: func(tn *testNet) error {
			return tn.send(tn.seal(EnvelopeKeyContribution, 1, make([]byte, 32)))
		}, reason: []string{"key contribution in dh mode"}},
		{name: "enc too short", act: func(tn *testNet) error {
			e := tn.seal(EnvelopeMaskSeed, 1, make([]byte, 32))
			e.Enc = e.Enc[:31]
			return tn.send(e)
		}, codec: true},
		{name: "ciphertext too long", act: func(tn *testNet) error {
			e := tn.seal(EnvelopeMaskSeed, 1, make([]byte, 32))
			e.Ciphertext = make([]byte, envelope.MaxEnvelopeSealed+1)
			return tn.send(e)
		}, codec: true},
		{name: "envelope replayed", act: func(tn *testNet) error {
			s, err := tn.adv.h.Seed(1)
			require.NoError(tn.t, err)
			e := tn.seal(EnvelopeMaskSeed, 1, s[:])
			if err := tn.send(e); err != nil {
				return err
			}
			return tn.send(e)
		}, reason: []string{"party hospital-a", "envelope replayed"}},
		{name: "envelope tampered (recipient rejects)", act: func(tn *testNet) error {
			e := tn.seal(EnvelopeMaskSeed, 1, make([]byte, 32))
			e.Ciphertext[0] ^= 1
			return tn.send(e)
		}, reason: []string{"party hospital-b aborted", "envelope from hospital-a", "does not open"}, detector: "hospital-b", detErr: envelope.ErrEnvelope},
		{name: "envelope sealed for another recipient", act: func(tn *testNet) error {
			enc, ct, err := tn.adv.key.Seal(tn.adv.roster[1].HPKEKey, tn.spec.ID, uint32(EnvelopeMaskSeed), 0, 2, make([]byte, 32))
			require.NoError(tn.t, err)
			return tn.send(&Envelope{Round: EnvelopeMaskSeed, FromParty: 0, To: 1, Enc: enc, Ciphertext: ct})
		}, reason: []string{"party hospital-b aborted", "does not open"}, detector: "hospital-b", detErr: envelope.ErrEnvelope},
		{name: "mask seed of the wrong size (recipient rejects)", act: func(tn *testNet) error {
			return tn.send(tn.seal(EnvelopeMaskSeed, 1, make([]byte, 31)))
		}, reason: []string{"party hospital-b aborted", "mask seed from hospital-a"}, detector: "hospital-b", detErr: ErrWrongRound},

		// Shares.
		{name: "share before the masks", act: func(tn *testNet) error { return tn.send(&Share{Vector: vectorBytes(tn.t, L)}) },
			reason: []string{"party hospital-a", "share before masks were dealt"}},
		{name: "share too long", act: func(tn *testNet) error {
			tn.playUntilMask()
			return tn.send(&Share{Vector: vectorBytes(tn.t, L+1)})
		}, reason: []string{"party hospital-a", "share:"}},
		{name: "share garbage", act: func(tn *testNet) error {
			tn.playUntilMask()
			return tn.send(&Share{Vector: []byte{1, 2, 3}})
		}, reason: []string{"party hospital-a", "share:"}},
		// Setup and stream discipline.
		{name: "Ready sent twice", preRoster: func(tn *testNet) error {
			if err := tn.send(tn.readyMsg(uint64(tn.adv.h.SetSize()))); err != nil {
				return err
			}
			return tn.send(tn.readyMsg(uint64(tn.adv.h.SetSize())))
		}, reason: []string{"party hospital-a", "Ready sent twice"}},
		{name: "different normalisation version", preRoster: func(tn *testNet) error {
			m := tn.readyMsg(uint64(tn.adv.h.SetSize()))
			m.Normalization = "ident/0 unicode/9.0.0"
			return tn.send(m)
		}, reason: []string{"parties normalise identifiers differently", `"ident/0 unicode/9.0.0"`}},
		{name: "Ready after the roster", act: func(tn *testNet) error { return tn.send(tn.readyMsg(1)) },
			reason: []string{"Ready sent twice"}},
		{name: "set size above max_set_size", preRoster: func(tn *testNet) error {
			return tn.send(tn.readyMsg(session.DefaultMaxSetSize + 1))
		}, reason: []string{fmt.Sprintf("set size %d exceeds max_set_size %d", session.DefaultMaxSetSize+1, session.DefaultMaxSetSize)}},
		{name: "set size 2^64-1", preRoster: func(tn *testNet) error { return tn.send(tn.readyMsg(1<<64 - 1)) },
			reason: []string{"exceeds max_set_size"}},
		{name: "Ready with a short key", preRoster: func(tn *testNet) error {
			m := tn.readyMsg(1)
			m.HPKEKey = m.HPKEKey[:31]
			return tn.send(m)
		}, codec: true},
		{name: "Ready without signature", preRoster: func(tn *testNet) error {
			m := tn.readyMsg(1)
			m.Signature = nil
			return tn.send(m)
		}, codec: true},
		{name: "Ready with a forged signature (parties reject the roster)", preRoster: func(tn *testNet) error {
			m := tn.readyMsg(uint64(tn.adv.h.SetSize()))
			m.Signature[len(m.Signature)-1] ^= 1
			return tn.send(m)
		}, reason: []string{"invalid roster", "hospital-a: signature over its key, set size and spec does not verify"}, detector: "any", detErr: envelope.ErrRoster},
		{name: "Hello sent twice", preRoster: func(tn *testNet) error { return tn.send(&Hello{}) },
			reason: []string{"party hospital-a", "Hello sent twice"}},
		{name: "envelope before the roster", preRoster: func(tn *testNet) error {
			return tn.send(&Envelope{Round: EnvelopeMaskSeed, FromParty: 0, To: 1, Enc: make([]byte, 32), Ciphertext: make([]byte, 48)})
		}, reason: []string{"envelope before the roster"}},
		{name: "batch before the roster", preRoster: func(tn *testNet) error { return tn.send(tn.ringBatch(0, 0, 0, 1, make([]byte, 32))) },
			reason: []string{"batch outside the token round"}},
		{name: "message naming another session", act: func(tn *testNet) error {
			m := batch(BatchRing, 0, 0, 0, n, tn.ring()[:32])
			m.Session = "other"
			return tn.send(m)
		}, reason: []string{"party hospital-a", `names session "other"`}},
		{name: "message naming another sender", act: func(tn *testNet) error {
			m := batch(BatchRing, 0, 0, 0, n, tn.ring()[:32])
			m.From = 1
			return tn.send(m)
		}, reason: []string{"party hospital-a", "on party 0's stream names sender party 1"}},
		{name: "coordinator-only message from a party", act: func(tn *testNet) error { return tn.send(&MaskDeal{Mask: vectorBytes(tn.t, L)}) },
			reason: []string{"MaskDeal is not sent by parties"}},
		{name: "party aborts with a long reason", preRoster: func(tn *testNet) error {
			return tn.send(&Abort{Code: CodePolicy, Reason: strings.Repeat("x", 1000)})
		}, reason: []string{"party hospital-a aborted: " + strings.Repeat("x", 200) + "…"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := testSpec(t, "adv", session.ModeDH, session.AggregationMasked, "")
			tn := newTestNet(t, spec, threeParties(), 0)
			var err error
			if tc.preRoster != nil {
				err = tc.preRoster(tn)
			} else {
				tn.ready()
				err = tc.act(tn)
			}
			if tc.codec {
				require.ErrorIs(t, err, ErrMalformed, "the codec refuses it")
				require.Nil(t, tn.aborted)
				return
			}
			require.Nil(t, tn.released, "nothing may be released")
			require.NotNil(t, tn.aborted, "the session must abort")
			for _, s := range tc.reason {
				require.Contains(t, tn.aborted.Reason, s)
			}
			for _, m := range tn.adv.inbox {
				require.NotEqual(t, TypeResult, m.Type())
			}
			last := tn.adv.inbox[len(tn.adv.inbox)-1]
			require.IsType(t, &Abort{}, last, "the adversary is told")
			require.Equal(t, tn.aborted.Reason, last.(*Abort).Reason)
			for i, p := range tn.parties {
				if p == nil {
					continue
				}
				name := spec.Parties[i]
				require.Equal(t, StateAborted, p.State(), name)
				perr := tn.errs[i]
				if tc.detector == name || (tc.detector == "any" && !isAbortFromCoordinator(perr)) {
					require.ErrorIs(t, perr, tc.detErr, name)
					continue
				}
				require.ErrorIs(t, perr, ErrAborted, name)
				require.ErrorContains(t, perr, tn.aborted.Reason, name)
			}
		})
	}
}

func isAbortFromCoordinator(err error) bool {
	var ae *AbortError
	return err != nil && errors.As(err, &ae)
}

// A hop party must not emit the output of a hop whose input it has not
// been given: hospital-a sends hop 2 of hospital-b's list before
// hospital-c did hop 1.
func TestRingHopAheadOfItsInput(t *testing.T) {
	spec := testSpec(t, "ahead", session.ModeDH, session.AggregationMasked, "")
	tn := newTestNet(t, spec, threeParties(), 0)
	tn.parties[2] = nil // hospital-c is silent: hop 1 of b's list never comes
	tn.ready()
	err := tn.send(batch(BatchRing, 1, 2, 0, testRecords, tn.ring()[:8*32]))
	require.ErrorIs(t, err, ErrWrongRound)
	require.NotNil(t, tn.aborted)
	require.Contains(t, tn.aborted.Reason, "ring batch (owner 1, hop 2) ahead of its input")
}

// A declared set size reserves nothing: a party declaring max_set_size and
// sending one batch costs the coordinator one batch.
func TestDeclaredSizeDoesNotPreallocate(t *testing.T) {
	spec := testSpec(t, "big", session.ModeKeyed, session.AggregationMasked, "")
	c, err := NewCoordinator(spec, CoordinatorConfig{Signer: testSigner(t), Name: "coordinator"})
	require.NoError(t, err)
	require.NoError(t, c.eng.Declare(0, spec.MaxSetSize))
	require.Nil(t, c.eng.tokens[0][0])
}

func testSigner(t testing.TB) crypto.Signer {
	_, get := pki(t)
	s, _ := get("coordinator")
	return s
}

// An internal failure of the coordinator while it handles a party's
// message (here its spill directory is missing when the last Ready starts
// the spilling join) is reported as the coordinator's, not the party's.
func TestCoordinatorBlamesItself(t *testing.T) {
	spec := testSpec(t, "blame", session.ModeKeyed, session.AggregationMasked, "")
	_, get := pki(t)
	signer, _ := get("coordinator")
	c, err := NewCoordinator(spec, CoordinatorConfig{Signer: signer, Name: "coordinator", JoinBudget: 1 << 20,
		SpillDir: filepath.Join(t.TempDir(), "missing", "dir")})
	require.NoError(t, err)
	var last error
	for i, name := range spec.Parties {
		_, cert := get(name)
		require.NoError(t, c.Attach(i, cert.Raw))
		last = c.Receive(context.Background(), i, &Ready{Header: Header{Session: spec.ID, From: Sender(i)}, SetSize: 3,
			HPKEKey: make([]byte, 32), Signature: []byte{1}})
	}
	require.Error(t, last)
	var ab *Aborted
	for _, ev := range c.Events() {
		if a, ok := ev.(Aborted); ok {
			ab = &a
		}
	}
	require.NotNil(t, ab)
	require.Equal(t, CodeInternal, ab.Code)
	require.Contains(t, ab.Reason, "coordinator failed handling party hospital-c's message")
}
