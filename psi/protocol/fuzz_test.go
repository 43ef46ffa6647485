package protocol

import (
	"context"
	"testing"

	"github.com/mpsi-dev/mpsi/psi/session"
)

// FuzzCoordinatorReceive feeds one arbitrary frame from party 0 to the
// coordinator machine of a three-party session, before or after the roster
// (the first byte picks), with honest machines as the other parties. The
// machine must never panic, must abort whenever it returns an error, and
// must never release a Result from the frame alone.
func FuzzCoordinatorReceive(f *testing.F) {
	spec := testSpec(f, "fuzz", session.ModeDH, session.AggregationMasked, "")
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
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		m, err := Decode(b[1:])
		if err != nil {
			return
		}
		tn := newTestNet(t, spec, threeParties(), 0)
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
