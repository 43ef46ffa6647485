package protocol

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/internal/devcert"
	"github.com/mpsi-dev/mpsi/internal/envelope"
	"github.com/mpsi-dev/mpsi/psi"
	"github.com/mpsi-dev/mpsi/psi/ident"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// memRecords is an in-memory Records for machine tests: record k of a
// party is the person "p<id>" with visits = id mod 7.
type memRecords struct{ ids []int }

func (r memRecords) Len() int         { return len(r.ids) }
func (r memRecords) Key(i int) []byte { return []byte("p" + strconv.Itoa(r.ids[i])) }
func (r memRecords) ID(i int) string  { return "r" + strconv.Itoa(r.ids[i]) }
func (r memRecords) Value(i int, field string) string {
	if field == "visits" {
		return strconv.Itoa(r.ids[i] % 7)
	}
	return "p" + strconv.Itoa(r.ids[i])
}

// people returns the ids lo..hi-1.
func people(lo, hi int) memRecords {
	r := memRecords{}
	for id := lo; id < hi; id++ {
		r.ids = append(r.ids, id)
	}
	return r
}

// testSpec is a three-party spec; edit may change its JSON fields.
func testSpec(t testing.TB, id, mode, aggregation string, extra string) *session.Spec {
	t.Helper()
	js := fmt.Sprintf(`{"id":%q,"parties":["hospital-a","hospital-b","hospital-c"],
	"fields":{"name":"name","visits":"number"},"match":{"mode":%q,"fields":["name"]},
	"reveal":["cardinality","pairwise","aggregates"],"aggregation":%q,
	"aggregates":[{"name":"visits","kind":"sum","field":"visits","min":0,"max":10}]%s}`, id, mode, aggregation, extra)
	s, err := session.ParseSpec([]byte(js))
	require.NoError(t, err)
	return s
}

// testNet shuttles messages between a Coordinator machine and honest Party
// machines in memory, through the codec; party adv (if ≥ 0) is played by
// the test.
type testNet struct {
	t         testing.TB
	spec      *session.Spec
	coord     *Coordinator
	coordCert *x509.Certificate
	parties   []*Party
	recs      []Records
	errs      []error // each honest party's error, if it failed
	toParty   [][]Message
	toCoord   []fromParty
	released  *Released
	aborted   *Aborted
	coordErrs []error
	adv       *adversary
	// tamper, if set, rewrites what the coordinator sends to party to: a
	// compromised coordinator.
	tamper func(to int, m Message) []Message
	// sent, if set, sees every message a party sends the coordinator.
	sent func(from int, m Message)
	// observe, if set, is called after every delivery round of pump.
	observe func()
	// slow paces parties: party i does local work only every slow[i]-th
	// time the pump offers it.
	slow  map[int]int
	turns int
}

type fromParty struct {
	i int
	m Message
}

// adversary is a party played by the test: it holds a real Holder and
// session key so that it can play honestly where a case needs it.
type adversary struct {
	i       int
	name    string
	signer  crypto.Signer
	cert    []byte
	h       *Holder
	key     *envelope.SessionKey
	inbox   []Message
	roster  []RosterEntry
	ringOut []byte
}

var testPKI struct {
	ca      *devcert.CA
	signers map[string]crypto.Signer
	certs   map[string]*x509.Certificate
}

func pki(t testing.TB) (*devcert.CA, func(name string) (crypto.Signer, *x509.Certificate)) {
	t.Helper()
	if testPKI.ca == nil {
		ca, err := devcert.NewCA("protocol test CA")
		require.NoError(t, err)
		testPKI.ca = ca
		testPKI.signers = map[string]crypto.Signer{}
		testPKI.certs = map[string]*x509.Certificate{}
	}
	return testPKI.ca, func(name string) (crypto.Signer, *x509.Certificate) {
		if testPKI.signers[name] == nil {
			s, c, err := issue(testPKI.ca, name)
			require.NoError(t, err)
			testPKI.signers[name], testPKI.certs[name] = s, c
		}
		return testPKI.signers[name], testPKI.certs[name]
	}
}

// newTestNet makes the machines; party adv (-1: none) is the test's. Every
// party attaches; the honest ones accept their records when offered.
func newTestNet(t testing.TB, spec *session.Spec, recs []Records, adv int, opts ...func(*testNet)) *testNet {
	t.Helper()
	ca, get := pki(t)
	coordSigner, coordCert := get("coordinator")
	coord, err := NewCoordinator(spec, CoordinatorConfig{Signer: coordSigner, Name: "coordinator", MaxBatch: 8, Workers: 1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = coord.Close() })
	n := len(spec.Parties)
	tn := &testNet{t: t, spec: spec, coord: coord, coordCert: coordCert, parties: make([]*Party, n), recs: recs,
		errs: make([]error, n), toParty: make([][]Message, n)}
	for i, name := range spec.Parties {
		signer, cert := get(name)
		if i == adv {
			h, err := NewHolder(spec, name, recs[i], 1)
			require.NoError(t, err)
			key, err := envelope.GenerateSessionKey()
			require.NoError(t, err)
			tn.adv = &adversary{i: i, name: name, signer: signer, cert: cert.Raw, h: h, key: key}
		} else {
			tn.parties[i], err = NewParty(PartyConfig{Session: spec.ID, Name: name, Signer: signer, Roots: ca.Pool(),
				Coordinator: func() *x509.Certificate { return coordCert }, CoordinatorName: "coordinator", Workers: 1})
			require.NoError(t, err)
		}
		require.NoError(t, coord.Attach(i, cert.Raw))
	}
	// Hellos are the transport's: drop them.
	for _, p := range tn.parties {
		if p != nil {
			p.Events()
		}
	}
	for _, o := range opts {
		o(tn)
	}
	tn.pump()
	return tn
}

// wire passes m through the codec.
func (tn *testNet) wire(m Message) Message {
	tn.t.Helper()
	b, err := Encode(m)
	require.NoError(tn.t, err)
	d, err := Decode(b)
	require.NoError(tn.t, err)
	return d
}

// pump runs the machines until nothing moves.
func (tn *testNet) pump() {
	tn.t.Helper()
	ctx := context.Background()
	for range 100000 {
		moved := false
		for _, ev := range tn.coord.Events() {
			moved = true
			switch e := ev.(type) {
			case Send:
				m := tn.wire(e.Msg)
				if tn.tamper != nil {
					for _, x := range tn.tamper(e.To, m) {
						tn.toParty[e.To] = append(tn.toParty[e.To], tn.wire(x))
					}
					continue
				}
				if tn.adv != nil && e.To == tn.adv.i {
					tn.adv.inbox = append(tn.adv.inbox, m)
					if r, ok := m.(*Roster); ok {
						tn.adv.roster = r.Entries
					}
				} else {
					tn.toParty[e.To] = append(tn.toParty[e.To], m)
				}
			case Released:
				tn.released = &e
			case Aborted:
				tn.aborted = &e
			}
		}
		for i, p := range tn.parties {
			if p == nil {
				continue
			}
			for _, ev := range p.Events() {
				moved = true
				if e, ok := ev.(Send); ok {
					m := tn.wire(e.Msg)
					if tn.sent != nil {
						tn.sent(i, m)
						if tn.parties[i] == nil {
							break
						}
					}
					tn.toCoord = append(tn.toCoord, fromParty{i, m})
				}
			}
			if p.State() == StateOffered {
				moved = true
				if err := p.Accept(tn.recs[i]); err != nil {
					tn.errs[i] = err
				}
			}
		}
		if tn.observe != nil {
			tn.observe()
		}
		for _, fp := range tn.toCoord {
			moved = true
			if err := tn.coord.Receive(ctx, fp.i, fp.m); err != nil {
				tn.coordErrs = append(tn.coordErrs, err)
			}
		}
		tn.toCoord = tn.toCoord[:0]
		for i, p := range tn.parties {
			for _, m := range tn.toParty[i] {
				moved = true
				if p == nil || p.State() == StateDone || p.State() == StateAborted {
					continue
				}
				if err := p.Receive(m); err != nil && tn.errs[i] == nil {
					tn.errs[i] = err
				}
			}
			tn.toParty[i] = tn.toParty[i][:0]
		}
		if moved {
			continue
		}
		tn.turns++
		for i, p := range tn.parties {
			if p == nil {
				continue
			}
			if k := tn.slow[i]; k > 1 && tn.turns%k != 0 {
				moved = true // it has work; it is just slow
				continue
			}
			did, err := p.Step()
			if err != nil && tn.errs[i] == nil {
				tn.errs[i] = err
			}
			moved = moved || did
		}
		if !moved {
			return
		}
	}
	tn.t.Fatal("pump: no quiescence")
}

// send delivers m from the adversary through the codec, filling an empty
// header, and pumps.
func (tn *testNet) send(m Message) error {
	tn.t.Helper()
	h := m.Head()
	if h.Session == "" {
		h.Session = tn.spec.ID
	}
	if h.From == 0 && tn.adv.i != 0 {
		h.From = Sender(tn.adv.i)
	}
	b, err := Encode(m)
	if err != nil {
		return err
	}
	d, err := Decode(b)
	if err != nil {
		return err
	}
	err = tn.coord.Receive(context.Background(), tn.adv.i, d)
	tn.pump()
	return err
}

// readyMsg is the adversary's Ready with a valid signature for setSize.
func (tn *testNet) readyMsg(setSize uint64) *Ready {
	a := tn.adv
	sig, err := envelope.SignReady(a.signer, envelope.ReadyStatement{Session: tn.spec.ID, Name: a.name, HPKEKey: a.key.Public(),
		SetSize: setSize, SpecHash: SpecHash(tn.spec.Canonical())})
	require.NoError(tn.t, err)
	return &Ready{SetSize: setSize, HPKEKey: a.key.Public(), Signature: sig, Normalization: ident.NormalizationVersion()}
}

// ready declares the adversary's real set size; the roster follows. In dh
// mode the adversary then sends its ring key to the next party, as an
// honest party does, so that its batches can be authenticated.
func (tn *testNet) ready() {
	tn.t.Helper()
	require.NoError(tn.t, tn.send(tn.readyMsg(uint64(tn.adv.h.SetSize()))))
	require.NotNil(tn.t, tn.adv.roster, "no roster after every Ready")
	if tn.spec.Match.Mode == session.ModeDH {
		a := tn.adv
		a.ringOut = bytes.Repeat([]byte{byte(a.i + 1)}, 32)
		require.NoError(tn.t, tn.send(tn.seal(EnvelopeRingKey, (a.i+1)%len(tn.spec.Parties), a.ringOut)))
	}
}

// ringBatch is a ring batch from the adversary, authenticated with its
// ring key for (owner, hop).
func (tn *testNet) ringBatch(owner, hop, off, total int, data []byte) *Batch {
	b := batch(BatchRing, owner, hop, off, total, data)
	b.MAC = RingMAC(tn.adv.ringOut, tn.spec.ID, uint32(owner), uint32(hop), uint64(off), uint64(total), data)
	return b
}

// seal seals msg from the adversary to party to.
func (tn *testNet) seal(round EnvelopeRound, to int, msg []byte) *Envelope {
	a := tn.adv
	enc, ct, err := a.key.Seal(a.roster[to].HPKEKey, tn.spec.ID, uint32(round), uint32(a.i), uint32(to), msg)
	require.NoError(tn.t, err)
	return &Envelope{Round: round, FromParty: uint32(a.i), To: uint32(to), Enc: enc, Ciphertext: ct}
}

// ring is the adversary's own hop-0 list.
func (tn *testNet) ring() []byte {
	pts, err := tn.adv.h.StartRing()
	require.NoError(tn.t, err)
	return pointsBytes(pts)
}

// playUntilMask plays the adversary honestly (seeds, own list, hops) until
// the mask deal.
func (tn *testNet) playUntilMask() {
	tn.t.Helper()
	a := tn.adv
	for j := range tn.spec.Parties {
		if j != a.i {
			s, err := a.h.Seed(j)
			require.NoError(tn.t, err)
			require.NoError(tn.t, tn.send(tn.seal(EnvelopeMaskSeed, j, s[:])))
		}
	}
	own := tn.ring()
	total := len(own) / 32
	for off := 0; off < total; off += 8 {
		require.NoError(tn.t, tn.send(tn.ringBatch(a.i, 0, off, total, own[off*32:min(off+8, total)*32])))
	}
	for k := 0; k < len(a.inbox); k++ {
		switch m := a.inbox[k].(type) {
		case *MaskDeal:
			return
		case *Abort:
			tn.t.Fatalf("aborted while playing honestly: %s", m.Reason)
		case *Batch:
			if m.Kind != BatchRing {
				continue
			}
			pts := make([]psi.Point, len(m.Data)/32)
			for j := range pts {
				copy(pts[j][:], m.Data[j*32:])
			}
			_, err := a.h.Hop(pts)
			require.NoError(tn.t, err)
			require.NoError(tn.t, tn.send(tn.ringBatch(int(m.Owner), int(m.Hop), int(m.Offset), int(m.Total), pointsBytes(pts))))
		}
	}
	tn.t.Fatal("no mask dealt")
}
