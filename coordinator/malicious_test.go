package coordinator_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	mpsiv1 "github.com/mpsi-dev/mpsi/api/mpsi/v1"
	"github.com/mpsi-dev/mpsi/coordinator"
	"github.com/mpsi-dev/mpsi/internal/devcert"
	"github.com/mpsi-dev/mpsi/internal/envelope"
	"github.com/mpsi-dev/mpsi/psi/protocol"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// mitm is a compromised coordinator as the hospitals see it: it presents a
// coordinator certificate on 127.0.0.1, relays every frame to the real
// coordinator (dialling as each party, whose certificates the test holds)
// and lets a test rewrite what each party receives.
type mitm struct {
	mpsiv1.UnimplementedCoordinatorServer
	t      *testing.T
	h      *harness
	mu     sync.Mutex
	tamper func(party string, m protocol.Message) []protocol.Message
}

func (x *mitm) Run(stream grpc.BidiStreamingServer[mpsiv1.Frame, mpsiv1.Frame]) error {
	name, err := peerCN(stream.Context())
	if err != nil {
		return err
	}
	up, err := x.h.client(x.t, name).Run(stream.Context())
	if err != nil {
		return err
	}
	go func() {
		for {
			f, err := stream.Recv()
			if err != nil {
				_ = up.CloseSend()
				return
			}
			// The party's acknowledgements count the frames we send it,
			// not the coordinator's: keep them to ourselves.
			f.Ack = 0
			if up.Send(f) != nil {
				return
			}
		}
	}()
	var seq uint64
	for {
		f, err := up.Recv()
		if err != nil {
			return status.Error(codes.Unavailable, "upstream ended")
		}
		if len(f.GetData()) == 0 {
			continue // a pure acknowledgement
		}
		m, err := protocol.Decode(f.GetData())
		if err != nil {
			return err
		}
		x.mu.Lock()
		out := x.tamper(name, m)
		x.mu.Unlock()
		for _, o := range out {
			b, err := protocol.Encode(o)
			if err != nil {
				return err
			}
			seq++ // our own numbering of what the party gets
			if err := stream.Send(&mpsiv1.Frame{Data: b, Seq: seq, Ack: f.GetAck()}); err != nil {
				return err
			}
		}
	}
}

func peerCN(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", errors.New("no peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 {
		return "", status.Error(codes.Unauthenticated, "no verified certificate")
	}
	return ti.State.VerifiedChains[0][0].Subject.CommonName, nil
}

// startMITM serves the compromised coordinator with certificate certName
// and returns a harness whose parties dial it.
func startMITM(t *testing.T, h *harness, certName string, tamper func(string, protocol.Message) []protocol.Message) *harness {
	t.Helper()
	scfg, err := devcert.ServerConfig(h.pki.ca, h.pki.leaves[certName])
	require.NoError(t, err)
	g := grpc.NewServer(append(coordinator.ServerOptions(), grpc.Creds(credentials.NewTLS(scfg)))...)
	mpsiv1.RegisterCoordinatorServer(g, &mitm{t: t, h: h, tamper: tamper})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	hm := *h
	hm.addr = lis.Addr().String()
	return &hm
}

// runAttacked runs the three honest hospitals through the compromised
// coordinator and returns their outcomes and the real coordinator's stored
// session.
func runAttacked(t *testing.T, h, hm *harness, mode string, edit func(map[string]any)) ([]outcome, string) {
	t.Helper()
	c := getCohort(t, mode)
	id := h.create(t, specJSON(t, c, newSessionID("mitm"), edit))
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	var chs []<-chan outcome
	for _, n := range partyNames {
		chs = append(chs, hm.honest(ctx, t, c, id, n))
	}
	return collect(t, chs...), id
}

// Each attack of a compromised coordinator, mounted over the network, ends
// with the targeted hospital aborting with a reason naming the check, the
// session aborted for everyone, and nothing released.
func TestCompromisedCoordinatorIsDetected(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	guesses := func(t *testing.T, k int) []byte {
		hold, err := protocol.NewHolder(mustSpec(t), "hospital-a", guessRecords(k), 1)
		require.NoError(t, err)
		pts, err := hold.StartRing()
		require.NoError(t, err)
		return pointsBytes(pts)
	}
	cases := []struct {
		name     string
		cert     string
		mode     string
		edit     func(map[string]any)
		tamper   func(t *testing.T) func(string, protocol.Message) []protocol.Message
		detector string
		target   error
		text     string
	}{
		{name: "guessed identifiers routed through the ring", mode: session.ModeDH,
			tamper: func(t *testing.T) func(string, protocol.Message) []protocol.Message {
				g := guesses(t, 5)
				done := false
				return func(p string, m protocol.Message) []protocol.Message {
					if b, ok := m.(*protocol.Batch); ok && p == "hospital-a" && b.Kind == protocol.BatchRing && !done {
						done = true
						forged := *b
						forged.Data = g
						return []protocol.Message{&forged}
					}
					return []protocol.Message{m}
				}
			}, detector: "hospital-a", target: protocol.ErrRingAuth, text: "not authenticated"},
		{name: "one hospital sent a single position", mode: session.ModeDH,
			tamper: func(t *testing.T) func(string, protocol.Message) []protocol.Message {
				return func(p string, m protocol.Message) []protocol.Message {
					if b, ok := m.(*protocol.Batch); ok && p == "hospital-b" && b.Kind == protocol.BatchPositions {
						one := *b
						one.Total, one.Data = 1, b.Data[:4]
						return []protocol.Message{&one}
					}
					return []protocol.Message{m}
				}
			}, detector: "hospital-b", target: protocol.ErrPositions, text: "the signed tally says"},
		{name: "one hospital shown a spec with a lower min_cell", mode: session.ModeKeyed,
			tamper: func(t *testing.T) func(string, protocol.Message) []protocol.Message {
				return func(p string, m protocol.Message) []protocol.Message {
					if w, ok := m.(*protocol.Welcome); ok && p == "hospital-c" {
						s, err := session.ParseSpec(w.Spec)
						require.NoError(t, err)
						s.MinCell = 1
						lowered := *w
						lowered.Spec = s.Canonical()
						return []protocol.Message{&lowered}
					}
					return []protocol.Message{m}
				}
			}, detector: "any", target: envelope.ErrRoster, text: "signature over its key, set size and spec does not verify"},
		{name: "a declared size changed in the roster", mode: session.ModeKeyed,
			tamper: func(t *testing.T) func(string, protocol.Message) []protocol.Message {
				return func(p string, m protocol.Message) []protocol.Message {
					if r, ok := m.(*protocol.Roster); ok && p == "hospital-a" {
						changed := *r
						changed.Entries = append([]protocol.RosterEntry(nil), r.Entries...)
						changed.Entries[2].SetSize++
						return []protocol.Message{&changed}
					}
					return []protocol.Message{m}
				}
			}, detector: "hospital-a", target: envelope.ErrRoster, text: "hospital-c: signature over its key, set size and spec"},
		{name: "an envelope forged by the coordinator", mode: session.ModeKeyed,
			tamper: func(t *testing.T) func(string, protocol.Message) []protocol.Message {
				forger, err := envelope.GenerateSessionKey()
				require.NoError(t, err)
				var roster []protocol.RosterEntry
				return func(p string, m protocol.Message) []protocol.Message {
					if r, ok := m.(*protocol.Roster); ok {
						roster = r.Entries
					}
					if e, ok := m.(*protocol.Envelope); ok && p == "hospital-b" && e.Round == protocol.EnvelopeKeyContribution {
						enc, ct, err := forger.Seal(roster[1].HPKEKey, e.Session, uint32(e.Round), e.FromParty, e.To, bytes.Repeat([]byte{1}, 32))
						require.NoError(t, err)
						forged := *e
						forged.Enc, forged.Ciphertext = enc, ct
						return []protocol.Message{&forged}
					}
					return []protocol.Message{m}
				}
			}, detector: "hospital-b", target: envelope.ErrEnvelope, text: "does not open"},
		{name: "oblivious: one hospital shown another indicator of a peer", mode: session.ModeKeyed,
			edit: func(m map[string]any) { m["aggregation"] = session.AggregationOblivious },
			tamper: func(t *testing.T) func(string, protocol.Message) []protocol.Message {
				return func(p string, m protocol.Message) []protocol.Message {
					if b, ok := m.(*protocol.Batch); ok && p == "hospital-c" && b.Kind == protocol.BatchIndicator && b.Owner == 0 {
						// The same number of ones over other records of
						// hospital-a: swap the first set and the first
						// clear position.
						c := *b
						c.Data = append([]byte(nil), b.Data...)
						set, clr := -1, -1
						for k := 0; k < 8*len(c.Data) && uint64(k) < c.Total-c.Offset; k++ {
							if c.Data[k/8]>>(k%8)&1 == 1 && set < 0 {
								set = k
							} else if c.Data[k/8]>>(k%8)&1 == 0 && clr < 0 {
								clr = k
							}
						}
						if set >= 0 && clr >= 0 {
							c.Data[set/8] &^= 1 << (set % 8)
							c.Data[clr/8] |= 1 << (clr % 8)
						}
						return []protocol.Message{&c}
					}
					return []protocol.Message{m}
				}
			}, detector: "any", target: protocol.ErrBadMessage, text: "received different indicators of hospital-a"},
		{name: "a coordinator serving on a hospital's certificate", cert: "hospital-b", mode: session.ModeKeyed,
			tamper: func(t *testing.T) func(string, protocol.Message) []protocol.Message {
				return func(_ string, m protocol.Message) []protocol.Message { return []protocol.Message{m} }
			}, detector: "any", target: envelope.ErrRoster, text: `presented a certificate named "hospital-b", pinned name "coordinator"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cert := tc.cert
			if cert == "" {
				cert = "coordinator"
			}
			hm := startMITM(t, h, cert, tc.tamper(t))
			outs, id := runAttacked(t, h, hm, tc.mode, tc.edit)
			detected := false
			for _, o := range outs {
				require.Nil(t, o.res, "%s: nothing may be released", o.name)
				require.Error(t, o.err, o.name)
				if (tc.detector == o.name || tc.detector == "any") && errors.Is(o.err, tc.target) {
					require.ErrorContains(t, o.err, tc.text, o.name)
					detected = true
				}
			}
			require.True(t, detected, "no party detected the attack: %v", outs)
			r := h.waitFinal(t, id, 20*time.Second)
			require.NotEqual(t, "completed", r.State, "the real coordinator must not release: %s", r.Reason)
		})
	}
}

func mustSpec(t *testing.T) *session.Spec {
	c := getCohort(t, session.ModeDH)
	s, err := session.ParseSpec(specJSON(t, c, "guess", nil))
	require.NoError(t, err)
	return s
}

// guessRecords are k made-up people a coordinator wants to test for.
type guessRecords int

func (g guessRecords) Len() int                         { return int(g) }
func (g guessRecords) Key(i int) []byte                 { return []byte{byte(i), 'g', 'u', 'e', 's', 's'} }
func (g guessRecords) Value(i int, field string) string { return "" }
func (g guessRecords) ID(i int) string                  { return "guess" }
