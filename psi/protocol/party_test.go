package protocol

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/internal/devcert"
	"github.com/mpsi-dev/mpsi/internal/envelope"
	"github.com/mpsi-dev/mpsi/psi/session"
	"github.com/mpsi-dev/mpsi/sharing"
)

// partyUnderTest is hospital-b's machine facing a coordinator played by
// the test, which holds valid session keys for the other two parties.
type partyUnderTest struct {
	t      testing.TB
	spec   *session.Spec
	p      *Party
	keys   []*envelope.SessionKey
	roster []RosterEntry
	sent   []Message // what the party sent
}

func coordHeader(spec *session.Spec) Header { return Header{Session: spec.ID, From: FromCoordinator} }

func newPartyUnderTest(t testing.TB, spec *session.Spec) *partyUnderTest {
	t.Helper()
	ca, get := pki(t)
	signer, _ := get("hospital-b")
	_, coordCert := get("coordinator")
	p, err := NewParty(PartyConfig{Session: spec.ID, Name: "hospital-b", Signer: signer, Roots: ca.Pool(),
		Coordinator: func() *x509.Certificate { return coordCert }, CoordinatorName: "coordinator", Workers: 1})
	require.NoError(t, err)
	pt := &partyUnderTest{t: t, spec: spec, p: p, keys: make([]*envelope.SessionKey, 3)}
	pt.drain()
	return pt
}

func (pt *partyUnderTest) drain() {
	for _, ev := range pt.p.Events() {
		if s, ok := ev.(Send); ok {
			pt.sent = append(pt.sent, s.Msg)
		}
	}
}

func (pt *partyUnderTest) recv(m Message) error {
	if h := m.Head(); h.Session == "" {
		*h = coordHeader(pt.spec)
	}
	err := pt.p.Receive(m)
	pt.drain()
	return err
}

func (pt *partyUnderTest) welcome() {
	pt.t.Helper()
	require.NoError(pt.t, pt.recv(&Welcome{Spec: pt.spec.Canonical(), Index: 1, MaxBatch: 8}))
	require.Equal(pt.t, StateOffered, pt.p.State())
	require.NoError(pt.t, pt.p.Accept(people(10, 10+testRecords)))
	pt.drain()
	require.Equal(pt.t, StateReady, pt.p.State())
}

// validRoster is the roster an honest coordinator would send.
func (pt *partyUnderTest) validRoster() *Roster {
	pt.t.Helper()
	_, get := pki(pt.t)
	ready := pt.sent[len(pt.sent)-1].(*Ready)
	r := &Roster{}
	for i, name := range pt.spec.Parties {
		signer, cert := get(name)
		e := RosterEntry{Name: name, SetSize: testRecords, Certificate: cert.Raw}
		if i == 1 {
			e.HPKEKey, e.Signature = ready.HPKEKey, ready.Signature
		} else {
			k, err := envelope.GenerateSessionKey()
			require.NoError(pt.t, err)
			pt.keys[i] = k
			e.HPKEKey = k.Public()
			e.Signature, err = envelope.SignReady(signer, envelope.ReadyStatement{Session: pt.spec.ID, Name: name, HPKEKey: k.Public(),
				SetSize: testRecords, SpecHash: SpecHash(pt.spec.Canonical())})
			require.NoError(pt.t, err)
		}
		r.Entries = append(r.Entries, e)
	}
	return r
}

func (pt *partyUnderTest) running() {
	pt.t.Helper()
	pt.welcome()
	r := pt.validRoster()
	require.NoError(pt.t, pt.recv(r))
	pt.roster = r.Entries
	require.Equal(pt.t, StateRunning, pt.p.State())
}

// seedFrom seals a mask seed from party from to the party under test.
func (pt *partyUnderTest) seedFrom(from int) *Envelope {
	return pt.envelopeFrom(from, EnvelopeMaskSeed, make([]byte, sharing.SeedSize))
}

// envelopeFrom seals msg from party from (whose session key the test
// holds) to the party under test.
func (pt *partyUnderTest) envelopeFrom(from int, round EnvelopeRound, msg []byte) *Envelope {
	enc, ct, err := pt.keys[from].Seal(pt.roster[1].HPKEKey, pt.spec.ID, uint32(round), uint32(from), 1, msg)
	require.NoError(pt.t, err)
	return &Envelope{Header: coordHeader(pt.spec), Round: round, FromParty: uint32(from), To: 1, Enc: enc, Ciphertext: ct}
}

// ringKey delivers party 0's ring key and returns it.
func (pt *partyUnderTest) ringKey() []byte {
	k := bytes.Repeat([]byte{0x42}, 32)
	require.NoError(pt.t, pt.recv(pt.envelopeFrom(0, EnvelopeRingKey, k)))
	return k
}

// signedTally is a tally for |I| = inter signed by the coordinator.
func (pt *partyUnderTest) signedTally(inter uint64) *Tally {
	_, get := pki(pt.t)
	signer, _ := get("coordinator")
	var pw []uint64
	for i := range 3 {
		for j := range 3 {
			v := inter
			if i == j {
				v = testRecords
			}
			pw = append(pw, v)
		}
	}
	sig, err := envelope.SignTally(signer, pt.spec.ID, tallyBytes(inter, pw))
	require.NoError(pt.t, err)
	return &Tally{Intersection: inter, Pairwise: pw, Signature: sig}
}

func positions(ps ...uint32) []byte {
	var b []byte
	for _, p := range ps {
		b = binary.LittleEndian.AppendUint32(b, p)
	}
	return b
}

// A party checks everything the coordinator sends it against what it
// knows, and aborts naming the check: a compromised coordinator is
// detected, never quietly obeyed.
func TestPartyRefusesMaliciousCoordinator(t *testing.T) {
	spec := testSpec(t, "mal", session.ModeDH, session.AggregationMasked, "")
	rogue, err := devcert.NewCA("rogue")
	require.NoError(t, err)
	cases := []struct {
		name   string
		run    func(pt *partyUnderTest) error
		target error
		text   string
	}{
		{"welcome for another session", func(pt *partyUnderTest) error {
			other := testSpec(t, "other", session.ModeDH, session.AggregationMasked, "")
			return pt.recv(&Welcome{Spec: other.Canonical(), Index: 1, MaxBatch: 8})
		}, envelope.ErrRoster, `session "other"`},
		{"welcome at the wrong index", func(pt *partyUnderTest) error {
			return pt.recv(&Welcome{Spec: spec.Canonical(), Index: 0, MaxBatch: 8})
		}, envelope.ErrRoster, "index 0"},
		{"welcome with a batch limit of 0", func(pt *partyUnderTest) error {
			return pt.recv(&Welcome{Spec: spec.Canonical(), Index: 1})
		}, ErrBadMessage, "batch limit 0"},
		{"message not from the coordinator", func(pt *partyUnderTest) error {
			return pt.recv(&Welcome{Header: Header{Session: spec.ID, From: 0}, Spec: spec.Canonical(), Index: 1, MaxBatch: 8})
		}, ErrBadMessage, "sender party 0"},
		{"roster before welcome", func(pt *partyUnderTest) error { return pt.recv(&Roster{}) }, ErrWrongRound, "expected Welcome"},
		{"roster of two", func(pt *partyUnderTest) error {
			pt.welcome()
			r := pt.validRoster()
			r.Entries = r.Entries[:2]
			return pt.recv(r)
		}, envelope.ErrRoster, "2 entries for 3 parties"},
		{"roster names swapped", func(pt *partyUnderTest) error {
			pt.welcome()
			r := pt.validRoster()
			r.Entries[0], r.Entries[2] = r.Entries[2], r.Entries[0]
			return pt.recv(r)
		}, envelope.ErrRoster, "entry 0"},
		{"roster entry certified by another CA (the coordinator listing itself)", func(pt *partyUnderTest) error {
			pt.welcome()
			r := pt.validRoster()
			leaf, err := rogue.Issue("hospital-c")
			require.NoError(t, err)
			signer, cert, err := issueFromLeaf(leaf)
			require.NoError(t, err)
			r.Entries[2].Certificate = cert.Raw
			r.Entries[2].Signature, err = envelope.SignReady(signer, envelope.ReadyStatement{Session: spec.ID, Name: "hospital-c",
				HPKEKey: r.Entries[2].HPKEKey, SetSize: testRecords, SpecHash: SpecHash(spec.Canonical())})
			require.NoError(t, err)
			return pt.recv(r)
		}, envelope.ErrRoster, "hospital-c"},
		{"our own key replaced", func(pt *partyUnderTest) error {
			pt.welcome()
			r := pt.validRoster()
			r.Entries[1].HPKEKey, r.Entries[1].Signature = r.Entries[0].HPKEKey, r.Entries[0].Signature
			return pt.recv(r)
		}, envelope.ErrRoster, ""},
		{"our own set size altered", func(pt *partyUnderTest) error {
			pt.welcome()
			r := pt.validRoster()
			r.Entries[1].SetSize = 1
			return pt.recv(r)
		}, envelope.ErrRoster, "hospital-b: signature over its key, set size and spec does not verify"},
		{"a set size over max_set_size", func(pt *partyUnderTest) error {
			pt.welcome()
			r := pt.validRoster()
			r.Entries[2].SetSize = uint64(spec.MaxSetSize) + 1
			return pt.recv(r)
		}, envelope.ErrRoster, "max_set_size"},
		{"ring batch that is not ours", func(pt *partyUnderTest) error {
			pt.running()
			return pt.recv(&Batch{Kind: BatchRing, Owner: 2, Hop: 1, Total: 1, Data: make([]byte, 32)})
		}, ErrBadMessage, "(owner 2, hop 1, key 0) is not ours"},
		{"ring batch of a match key the spec does not have", func(pt *partyUnderTest) error {
			pt.running()
			return pt.recv(&Batch{Kind: BatchRing, Owner: 0, Hop: 1, Key: 1, Total: 1, Data: make([]byte, 32)})
		}, ErrBadMessage, "(owner 0, hop 1, key 1) is not ours"},
		{"credit for a match key the spec does not have", func(pt *partyUnderTest) error {
			pt.running()
			return pt.recv(&Credit{Key: 2, Done: 0})
		}, ErrBadMessage, "credit for key 2"},
		{"ring batch with an invalid point", func(pt *partyUnderTest) error {
			pt.running()
			k := pt.ringKey()
			data := make([]byte, 32)
			return pt.recv(&Batch{Kind: BatchRing, Owner: 0, Hop: 1, Total: testRecords, Data: data, MAC: RingMAC(k, spec.ID, 0, 0, 0, testRecords, data)})
		}, nil, "list of hospital-a as sent by hospital-a"},
		{"ring batch made by the coordinator (no MAC)", func(pt *partyUnderTest) error {
			pt.running()
			pt.ringKey()
			return pt.recv(&Batch{Kind: BatchRing, Owner: 0, Hop: 1, Total: testRecords, Data: validPoints(t, 1)})
		}, ErrRingAuth, "not authenticated by hospital-a"},
		{"ring batch re-addressed to another hop", func(pt *partyUnderTest) error {
			pt.running()
			k := pt.ringKey()
			data := validPoints(t, 1)
			// Authentic for (owner 0, hop 0 done), delivered as hop 1 of
			// owner 2's list: refused.
			return pt.recv(&Batch{Kind: BatchRing, Owner: 2, Hop: 2, Total: testRecords, Data: data, MAC: RingMAC(k, spec.ID, 0, 0, 0, testRecords, data)})
		}, ErrRingAuth, "list of hospital-c, hop 2"},
		{"ring batch replayed", func(pt *partyUnderTest) error {
			pt.running()
			k := pt.ringKey()
			data := validPoints(t, 1)
			b := &Batch{Kind: BatchRing, Owner: 0, Hop: 1, Total: testRecords, Data: data, MAC: RingMAC(k, spec.ID, 0, 0, 0, testRecords, data)}
			require.NoError(t, pt.recv(b))
			c := *b
			return pt.recv(&c)
		}, ErrBadMessage, "we have done 1 of its 24"},
		{"ring batch with guesses appended past the declared size", func(pt *partyUnderTest) error {
			pt.running()
			k := pt.ringKey()
			data := validPoints(t, 1)
			return pt.recv(&Batch{Kind: BatchRing, Owner: 0, Hop: 1, Total: testRecords + 5, Offset: 0, Data: data, MAC: RingMAC(k, spec.ID, 0, 0, 0, testRecords+5, data)})
		}, ErrBadMessage, "of 29"},
		{"ring batch before the previous party's key", func(pt *partyUnderTest) error {
			pt.running()
			return pt.recv(&Batch{Kind: BatchRing, Owner: 0, Hop: 1, Total: testRecords, Data: validPoints(t, 1)})
		}, ErrWrongRound, "before the previous party's ring key"},
		{"ring key from a party that is not our predecessor", func(pt *partyUnderTest) error {
			pt.running()
			return pt.recv(pt.envelopeFrom(2, EnvelopeRingKey, make([]byte, 32)))
		}, ErrWrongRound, "ring key from hospital-c"},
		{"envelope forged by the coordinator (sender key it does not hold)", func(pt *partyUnderTest) error {
			pt.running()
			forger, err := envelope.GenerateSessionKey()
			require.NoError(t, err)
			enc, ct, err := forger.Seal(pt.roster[1].HPKEKey, spec.ID, uint32(EnvelopeMaskSeed), 0, 1, make([]byte, 32))
			require.NoError(t, err)
			return pt.recv(&Envelope{Round: EnvelopeMaskSeed, FromParty: 0, To: 1, Enc: enc, Ciphertext: ct})
		}, envelope.ErrEnvelope, "envelope from hospital-a"},
		{"roster showing a peer that accepted another spec", func(pt *partyUnderTest) error {
			pt.welcome()
			r := pt.validRoster()
			_, get := pki(t)
			signer, _ := get("hospital-c")
			other := testSpec(t, "mal", session.ModeDH, session.AggregationMasked, `,"min_cell":1`)
			var err error
			r.Entries[2].Signature, err = envelope.SignReady(signer, envelope.ReadyStatement{Session: spec.ID, Name: "hospital-c",
				HPKEKey: r.Entries[2].HPKEKey, SetSize: testRecords, SpecHash: SpecHash(other.Canonical())})
			require.NoError(t, err)
			return pt.recv(r)
		}, envelope.ErrRoster, "hospital-c: signature over its key, set size and spec does not verify"},
		{"roster with a peer's declared size changed", func(pt *partyUnderTest) error {
			pt.welcome()
			r := pt.validRoster()
			r.Entries[0].SetSize = testRecords + 5
			return pt.recv(r)
		}, envelope.ErrRoster, "hospital-a: signature over its key, set size and spec does not verify"},
		{"spec listing the coordinator as a party", func(pt *partyUnderTest) error {
			s, err := session.ParseSpec([]byte(`{"id":"mal","parties":["hospital-a","hospital-b","coordinator"],
			"fields":{"name":"name"},"match":{"fields":["name"]},"reveal":["cardinality"]}`))
			require.NoError(t, err)
			return pt.recv(&Welcome{Spec: s.Canonical(), Index: 1, MaxBatch: 8})
		}, envelope.ErrRoster, `lists the coordinator "coordinator" as a party`},
		{"tally with a forged signature", func(pt *partyUnderTest) error {
			pt.running()
			pt.ownList()
			tl := pt.signedTally(5)
			tl.Intersection = 6
			return pt.recv(tl)
		}, envelope.ErrRoster, "tally signature does not verify"},
		{"tally above the smallest set", func(pt *partyUnderTest) error {
			pt.running()
			pt.ownList()
			return pt.recv(pt.signedTally(testRecords + 1))
		}, ErrBadMessage, "exceeds the smallest declared set"},
		{"positions before the tally", func(pt *partyUnderTest) error {
			pt.running()
			pt.ownList()
			return pt.recv(&Batch{Kind: BatchPositions, Owner: 1, Total: 1, Data: positions(1)})
		}, ErrWrongRound, "before the coordinator's signed tally"},
		{"a single position while the tally says five", func(pt *partyUnderTest) error {
			pt.running()
			pt.ownList()
			require.NoError(t, pt.recv(pt.signedTally(5)))
			return pt.recv(&Batch{Kind: BatchPositions, Owner: 1, Total: 1, Data: positions(1)})
		}, ErrPositions, "the signed tally says |I| = 5"},
		{"envelope addressed to another party", func(pt *partyUnderTest) error {
			pt.running()
			e := pt.seedFrom(0)
			e.To = 2
			return pt.recv(e)
		}, ErrBadMessage, "misrouted"},
		{"envelope replayed", func(pt *partyUnderTest) error {
			pt.running()
			e := pt.seedFrom(0)
			require.NoError(t, pt.recv(e))
			return pt.recv(e)
		}, ErrWrongRound, "mask seed from hospital-a"},
		{"positions not increasing", func(pt *partyUnderTest) error {
			pt.running()
			pt.ownList()
			require.NoError(t, pt.recv(pt.seedFrom(0)))
			require.NoError(t, pt.recv(pt.seedFrom(2)))
			require.NoError(t, pt.recv(pt.signedTally(2)))
			require.NoError(t, pt.recv(&Batch{Kind: BatchPositions, Owner: 1, Total: 2, Data: positions(5, 5)}))
			return pt.recv(&MaskDeal{Mask: vectorBytes(t, 2)})
		}, ErrPositions, "not strictly increasing"},
		{"positions beyond the set", func(pt *partyUnderTest) error {
			pt.running()
			pt.ownList()
			require.NoError(t, pt.recv(pt.seedFrom(0)))
			require.NoError(t, pt.recv(pt.seedFrom(2)))
			require.NoError(t, pt.recv(pt.signedTally(3)))
			require.NoError(t, pt.recv(&Batch{Kind: BatchPositions, Owner: 1, Total: 3, Data: positions(1, 2, testRecords+2)}))
			return pt.recv(&MaskDeal{Mask: vectorBytes(t, 2)})
		}, ErrPositions, "beyond set size"},
		{"mask before all the announced positions", func(pt *partyUnderTest) error {
			pt.running()
			pt.ownList()
			require.NoError(t, pt.recv(pt.signedTally(3)))
			require.NoError(t, pt.recv(&Batch{Kind: BatchPositions, Owner: 1, Total: 3, Data: positions(1)}))
			return pt.recv(&MaskDeal{Mask: vectorBytes(t, 1)})
		}, ErrPositions, "after 1 of the 3 positions"},
		{"mask before every seed", func(pt *partyUnderTest) error {
			pt.running()
			pt.ownList()
			require.NoError(t, pt.recv(pt.signedTally(0)))
			return pt.recv(&MaskDeal{Mask: vectorBytes(t, 1)})
		}, ErrWrongRound, "before every mask seed"},
		{"mask before our own list is sent", func(pt *partyUnderTest) error {
			pt.running()
			return pt.recv(&MaskDeal{Mask: vectorBytes(t, 1)})
		}, ErrWrongRound, "before our own list"},
		{"result before our share", func(pt *partyUnderTest) error {
			pt.running()
			pt.ownList()
			return pt.recv(&Result{JSON: []byte(`{}`), Signature: []byte{1}})
		}, ErrWrongRound, "result before our share"},
		{"coordinator aborts", func(pt *partyUnderTest) error {
			pt.welcome()
			return pt.recv(&Abort{Code: CodeTimeout, Reason: "deadline"})
		}, ErrAborted, "deadline"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pt := newPartyUnderTest(t, spec)
			err := tc.run(pt)
			require.Error(t, err)
			if tc.target != nil {
				require.ErrorIs(t, err, tc.target)
			}
			require.ErrorContains(t, err, tc.text)
			require.Equal(t, StateAborted, pt.p.State())
			if tc.target == ErrAborted {
				return // the coordinator ended it: nothing to tell it
			}
			last := pt.sent[len(pt.sent)-1]
			require.IsType(t, &Abort{}, last, "the party tells the coordinator why")
			require.Equal(t, CodeOf(err), last.(*Abort).Code)
			require.Nil(t, pt.p.Result())
		})
	}
}

// ownList lets the party send its whole own dh list.
func (pt *partyUnderTest) ownList() {
	pt.t.Helper()
	for {
		did, err := pt.p.Step()
		require.NoError(pt.t, err)
		pt.drain()
		if !did {
			return
		}
	}
}

func issueFromLeaf(l *devcert.Leaf) (crypto.Signer, *x509.Certificate, error) {
	return signerOf(l)
}

// The divergence issue 11 names: a session with aggregation encrypted and
// nothing to encrypt (cardinality only) completes, and both machines skip
// the encrypted rounds alike.
func TestEncryptedWithoutAggregatesCompletes(t *testing.T) {
	spec, err := session.ParseSpec([]byte(`{"id":"d","parties":["a","b"],"fields":{"name":"name"},"match":{"fields":["name"]},"reveal":["cardinality"],"aggregation":"encrypted"}`))
	require.NoError(t, err)
	require.False(t, EncryptsAggregates(spec))
	out, err := RunLocal(context.Background(), spec, []LocalInput{{Name: "a", Records: people(0, 10)}, {Name: "b", Records: people(5, 20)}}, LocalConfig{})
	require.NoError(t, err)
	require.EqualValues(t, 5, *out.Result.Intersection)
}

// validPoints returns k valid ristretto255 points (the hashes of k
// strings), as a ring batch's data.
func validPoints(t testing.TB, k int) []byte {
	h, err := NewHolder(testSpec(t, "pts", session.ModeDH, session.AggregationMasked, ""), "hospital-a", people(100, 100+k), 1)
	require.NoError(t, err)
	pts, err := h.StartRing()
	require.NoError(t, err)
	return pointsBytes(pts)
}
