package protocol

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/mpsi-dev/mpsi/psi/session"
)

// FuzzCoordinatorReceive feeds one arbitrary frame from party 0 to the
// coordinator machine of a three-party session, before or after the roster
// (the first byte's low bit picks), with one match key or three (its
// second bit picks), with honest machines as the other parties. The
// machine must never panic, must abort whenever it returns an error, and
// must never release a Result from the frame alone.
func FuzzCoordinatorReceive(f *testing.F) {
	spec := testSpec(f, "fuzz", session.ModeDH, session.AggregationMasked, "")
	multi := multiKeySpec(f, session.ModeDH, session.AggregationMasked, 3)
	multiRecs := noisyParties(rand.New(rand.NewPCG(13, 14)), 3, 12, 3) // inputs only
	multiIn := []Records{multiRecs[0], multiRecs[1], multiRecs[2]}
	seed := func(phase byte, m Message) {
		h := m.Head()
		h.Session, h.From = spec.ID, 0
		b, err := Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append([]byte{phase}, b...))
	}
	for _, m := range sampleMessages() {
		seed(0, m)
		seed(1, m)
	}
	seed(1, batch(BatchRing, 0, 0, 0, testRecords, make([]byte, 64)))
	seed(1, batch(BatchRing, 2, 1, 0, testRecords, make([]byte, 32)))
	seed(1, &Envelope{Round: EnvelopeMaskSeed, FromParty: 0, To: 1, Enc: make([]byte, 32), Ciphertext: make([]byte, 48)})
	seed(1, &Share{Vector: []byte{1, 0, 0, 0, 2}})
	seed(3, &Batch{Kind: BatchRing, Owner: 0, Key: 2, Total: 12, Data: make([]byte, 64)})
	seed(3, &Batch{Kind: BatchRing, Owner: 0, Key: 1, Hop: 2, Total: 12, Data: make([]byte, 32)})
	seed(2, &Credit{Key: 1, Done: 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		m, err := Decode(b[1:])
		if err != nil {
			return
		}
		var tn *testNet
		if b[0]&2 != 0 {
			m.Head().Session = multi.ID
			tn = newTestNet(t, multi, multiIn, 0)
		} else {
			tn = newTestNet(t, spec, threeParties(), 0)
		}
		if b[0]%2 == 1 {
			tn.ready()
		}
		err = tn.coord.Receive(context.Background(), 0, m)
		tn.pump()
		if err != nil && !tn.coord.Over() {
			t.Fatalf("error without abort: %v", err)
		}
		if tn.released != nil {
			t.Fatalf("a single frame released a Result")
		}
	})
}

// FuzzPartyReceive feeds one arbitrary frame from "the coordinator" to a
// party machine in one of its states (the first byte picks: waiting for the
// Welcome, for the roster, or running the token round), as a compromised
// coordinator could. The machine must never panic, must be aborted whenever
// it returns an error, and never reaches StateDone from one frame.
func FuzzPartyReceive(f *testing.F) {
	spec := testSpec(f, "mal", session.ModeDH, session.AggregationMasked, "")
	seed := func(state byte, m Message) {
		h := m.Head()
		h.Session, h.From = spec.ID, FromCoordinator
		b, err := Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append([]byte{state}, b...))
	}
	for _, m := range sampleMessages() {
		for st := range byte(3) {
			seed(st, m)
		}
	}
	seed(0, &Welcome{Spec: spec.Canonical(), Index: 1, MaxBatch: 8})
	seed(2, &Batch{Kind: BatchRing, Owner: 0, Hop: 1, Total: testRecords, Data: make([]byte, 32), MAC: make([]byte, 32)})
	seed(2, &Tally{Intersection: 3, Signature: []byte{1}})
	seed(2, &Credit{Done: 8})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		m, err := Decode(b[1:])
		if err != nil {
			return
		}
		pt := newPartyUnderTest(t, spec)
		switch b[0] % 3 {
		case 1:
			pt.welcome()
		case 2:
			pt.running()
		}
		err = pt.p.Receive(m)
		pt.drain()
		if err != nil && pt.p.State() != StateAborted {
			t.Fatalf("error without abort: %v", err)
		}
		if pt.p.State() == StateDone {
			t.Fatalf("one frame finished the session")
		}
		// Whatever happened, the party's own work still runs or stops cleanly.
		for range 100 {
			did, _ := pt.p.Step()
			pt.drain()
			if !did {
				break
			}
		}
	})
}
