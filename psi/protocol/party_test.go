package protocol

import (
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
		Coordinator: func() *x509.Certificate { return coordCert }, Workers: 1})
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
			e.Signature, err = envelope.SignSessionKey(signer, pt.spec.ID, name, k.Public())
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
	enc, ct, err := envelope.Seal(pt.roster[1].HPKEKey, pt.spec.ID, uint32(EnvelopeMaskSeed), uint32(from), 1, make([]byte, sharing.SeedSize))
	require.NoError(pt.t, err)
	return &Envelope{Header: coordHeader(pt.spec), Round: EnvelopeMaskSeed, FromParty: uint32(from), To: 1, Enc: enc, Ciphertext: ct}
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
			r.Entries[2].Signature, err = envelope.SignSessionKey(signer, spec.ID, "hospital-c", r.Entries[2].HPKEKey)
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
		}, envelope.ErrRoster, "listed as 1, we declared 24"},
		{"a set size over max_set_size", func(pt *partyUnderTest) error {
			pt.welcome()
			r := pt.validRoster()
			r.Entries[2].SetSize = uint64(spec.MaxSetSize) + 1
			return pt.recv(r)
		}, envelope.ErrRoster, "max_set_size"},
		{"ring batch that is not ours", func(pt *partyUnderTest) error {
			pt.running()
			return pt.recv(&Batch{Kind: BatchRing, Owner: 2, Hop: 1, Total: 1, Data: make([]byte, 32)})
		}, ErrBadMessage, "(owner 2, hop 1) is not ours"},
		{"ring batch with an invalid point", func(pt *partyUnderTest) error {
			pt.running()
			return pt.recv(&Batch{Kind: BatchRing, Owner: 0, Hop: 1, Total: 1, Data: make([]byte, 32)})
		}, nil, "list of hospital-a as sent by hospital-a"},
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
			require.NoError(t, pt.recv(&Batch{Kind: BatchPositions, Owner: 1, Total: 2, Data: positions(5, 5)}))
			return pt.recv(&MaskDeal{Mask: vectorBytes(t, 2)})
		}, ErrPositions, "not strictly increasing"},
		{"positions beyond the set", func(pt *partyUnderTest) error {
			pt.running()
			pt.ownList()
			return pt.recv(&Batch{Kind: BatchPositions, Owner: 1, Total: testRecords + 1, Data: positions(1)})
		}, ErrPositions, "malformed positions"},
		{"a single position while others get none (mask without its positions)", func(pt *partyUnderTest) error {
			pt.running()
			pt.ownList()
			require.NoError(t, pt.recv(&Batch{Kind: BatchPositions, Owner: 1, Total: 3, Data: positions(1)}))
			return pt.recv(&MaskDeal{Mask: vectorBytes(t, 1)})
		}, ErrPositions, "after 1 of 3 positions"},
		{"mask before every seed", func(pt *partyUnderTest) error {
			pt.running()
			pt.ownList()
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
