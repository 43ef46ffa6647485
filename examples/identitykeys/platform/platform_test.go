package platform_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha512"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpsi-dev/mpsi/examples/identitykeys/cloud"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/identity"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/identitypb"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/platform"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/recordkey"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/records"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/terminal"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	p        *platform.Platform
	patients []records.Patient
	dbs      [2]*records.DB
	clock    *clock
}

// setup starts a platform over generated patients and runs one link cycle,
// so the cloud holds every hospital's bundles.
func setup(t *testing.T, n int, burst int) *env {
	t.Helper()
	ps := records.Generate(n)
	dbs := records.Split([2]string{"hospital-a", "hospital-b"}, ps)
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	p, err := platform.Start(platform.Options{DBs: dbs[:], RateBurst: burst, RateEvery: time.Minute, Now: clk.now})
	require.NoError(t, err)
	t.Cleanup(p.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	reps, stored, err := p.SyncAndUpload(ctx)
	require.NoError(t, err)
	for i := range dbs {
		require.Equal(t, len(dbs[i].Patients), reps[i].Bundles)
		require.Equal(t, len(dbs[i].Patients), stored[i])
	}
	return &env{p: p, patients: ps, dbs: dbs, clock: clk}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// keyWithOutput builds a key for hospital with an arbitrary 64-byte OPRF
// output, through the public grant encoding (a template grant with the
// output replaced).
func keyWithOutput(t *testing.T, template *recordkey.Key, y []byte) *recordkey.Key {
	t.Helper()
	enc, err := (&recordkey.Grant{Keys: []*recordkey.Key{template}}).MarshalBinary()
	require.NoError(t, err)
	copy(enc[len(enc)-recordkey.OutputSize:], y)
	g, err := recordkey.ParseGrant(enc)
	require.NoError(t, err)
	return g.Keys[0]
}

func identityStrings(t *testing.T, f identity.Fields) [][]byte {
	n, err := identity.Normalize(f)
	require.NoError(t, err)
	nf := n.Fields()
	out := [][]byte{n.Encode()}
	for _, s := range []string{f.Given, f.Family, f.BirthDate, f.NationalID, nf.Given, nf.Family, nf.NationalID,
		strings.ReplaceAll(f.NationalID, "-", "")} {
		out = append(out, []byte(s))
	}
	return out
}

// TestCloudCannotDecrypt: every ciphertext the cloud holds fails to open
// under every key not derived through its hospital's OPRF — including keys
// computed from the very identity it belongs to — no index is computable
// from an identity without the OPRF, and no identity appears in anything the
// cloud holds.
func TestCloudCannotDecrypt(t *testing.T) {
	e := setup(t, 60, 0)
	c := ctx(t)
	// Put a sealed grant in the mailbox too.
	ts, err := e.p.NewTerminals(platform.TerminalSpec{Name: "patient"}, platform.TerminalSpec{Name: "dr-lee"})
	require.NoError(t, err)
	keys, err := ts[0].DeriveKeys(c, e.patients[2].Identity)
	require.NoError(t, err)
	require.NoError(t, ts[0].Share(c, "dr-lee", keys))

	items, mail := e.p.Cloud.Snapshot()
	require.Len(t, items, len(e.dbs[0].Patients)+len(e.dbs[1].Patients))
	require.Len(t, mail, 1)
	byIndex := map[recordkey.Index]cloud.Item{}
	for _, it := range items {
		byIndex[it.Index] = it
	}

	opened := 0
	for hi, node := range e.p.Nodes {
		other := e.p.Nodes[1-hi]
		for _, pt := range e.dbs[hi].Patients {
			enc, err := identity.Encode(pt.Identity)
			require.NoError(t, err)
			right, err := node.Evaluator.Derive(enc)
			require.NoError(t, err)
			it, ok := byIndex[right.Index()]
			require.True(t, ok, "a patient's bundle is missing")
			require.Equal(t, node.Hospital, it.Hospital)

			hash := sha512.Sum512(enc)
			otherOPRF, err := other.Evaluator.Derive(enc)
			require.NoError(t, err)
			var random [recordkey.OutputSize]byte
			_, _ = rand.Read(random[:])
			candidates := map[string]*recordkey.Key{
				"sha512(identity)":      keyWithOutput(t, right, hash[:]),
				"other hospital's OPRF": keyWithOutput(t, right, mustY(t, otherOPRF)),
				"random":                keyWithOutput(t, right, random[:]),
				"index as key material": keyWithOutput(t, right, append(it.Index[:], it.Index[:]...)),
				"identity bytes":        keyWithOutput(t, right, append(enc, make([]byte, 64)...)[:64]),
			}
			for name, k := range candidates {
				if _, ok := byIndex[k.Index()]; ok {
					t.Fatalf("%s: an index computed without the OPRF is in the store", name)
				}
				if _, err := recordkey.Open(k, it.Ciphertext); err == nil {
					t.Fatalf("%s opens a bundle", name)
				}
			}
			// Sanity: the OPRF-derived key does open it.
			_, err = recordkey.Open(right, it.Ciphertext)
			require.NoError(t, err)
			opened++
		}
	}
	require.Equal(t, len(items), opened)

	var held [][]byte
	for _, it := range items {
		held = append(held, it.Ciphertext, it.Index[:])
	}
	for _, m := range mail {
		held = append(held, m.Sealed)
	}
	for _, p := range e.patients {
		for _, s := range identityStrings(t, p.Identity) {
			for _, h := range held {
				if bytes.Contains(h, s) {
					t.Fatalf("the cloud holds a plaintext identity field (%d bytes)", len(s))
				}
			}
		}
		for _, cnd := range p.Conditions {
			for _, h := range held {
				require.False(t, bytes.Contains(h, []byte(cnd.Description)), "plaintext condition in the cloud")
			}
		}
	}
}

// mustY extracts a key's OPRF output through the public grant encoding.
func mustY(t *testing.T, k *recordkey.Key) []byte {
	enc, err := (&recordkey.Grant{Keys: []*recordkey.Key{k}}).MarshalBinary()
	require.NoError(t, err)
	return enc[len(enc)-recordkey.OutputSize:]
}

// TestDoctorReadsExactlyThatPatient: the keys a patient hands a doctor (and
// the doctor a colleague) open that patient's bundles at every hospital and
// nothing else in the cloud.
func TestDoctorReadsExactlyThatPatient(t *testing.T) {
	e := setup(t, 60, 0)
	c := ctx(t)
	ts, err := e.p.NewTerminals(
		platform.TerminalSpec{Name: "patient"}, platform.TerminalSpec{Name: "dr-lee"},
		platform.TerminalSpec{Name: "dr-okafor"}, platform.TerminalSpec{Name: "dr-nobody"},
		platform.TerminalSpec{Name: "mallory"},
	)
	require.NoError(t, err)
	// mallory is a known terminal (in every directory) but not the sender.
	patient, lee, okafor, nobody := ts[0], ts[1], ts[2], ts[3]
	who := e.patients[5] // 5 % 3 == 2: at both hospitals

	keys, err := patient.DeriveKeys(c, who.Identity)
	require.NoError(t, err)
	require.NoError(t, patient.Share(c, "dr-lee", keys))
	_, pending := e.p.Cloud.Snapshot()
	require.Len(t, pending, 1)
	replay := pending[0].Sealed

	in, err := lee.Inbox(c)
	require.NoError(t, err)
	require.Len(t, in, 1)
	require.Equal(t, "patient", in[0].From)

	check := func(name string, reader *terminal.Terminal, got []*recordkey.Key) {
		t.Helper()
		items, _ := e.p.Cloud.Snapshot()
		opens := 0
		for _, it := range items {
			for _, k := range got {
				pt, err := recordkey.Open(k, it.Ciphertext)
				if err != nil {
					require.ErrorIs(t, err, recordkey.ErrDecrypt)
					continue
				}
				opens++
				b, err := records.ParseBundle(pt)
				require.NoError(t, err)
				require.Equal(t, k.Hospital(), b.Hospital)
				require.Equal(t, who.Identity.Given, b.Given, "%s opened another patient's bundle", name)
			}
		}
		require.Equal(t, 2, opens, "%s opens %d bundles, want exactly the patient's 2", name, opens)
		f, err := reader.Fetch(c, got)
		require.NoError(t, err)
		var conds []records.Condition
		for _, x := range f {
			conds = append(conds, x.Bundle.Conditions...)
		}
		require.ElementsMatch(t, who.Conditions, conds, "%s does not see exactly the patient's conditions", name)
	}
	check("dr-lee", lee, in[0].Keys)

	require.NoError(t, lee.Share(c, "dr-okafor", in[0].Keys))
	in2, err := okafor.Inbox(c)
	require.NoError(t, err)
	require.Len(t, in2, 1)
	require.Equal(t, "dr-lee", in2[0].From)
	check("dr-okafor", okafor, in2[0].Keys)

	none, err := nobody.Inbox(c)
	require.NoError(t, err)
	require.Empty(t, none)

	// mallory replays the patient's sealed grant to dr-okafor: it does not open.
	conn, err := e.p.Dial("mallory", platform.CloudName, e.p.CloudAddr)
	require.NoError(t, err)
	_, err = identitypb.NewCloudClient(conn).Send(c, &identitypb.SendRequest{To: "dr-okafor", Sealed: replay})
	require.NoError(t, err)
	got, err := okafor.Inbox(c)
	require.ErrorIs(t, err, recordkey.ErrGrant)
	require.Empty(t, got)
}

// TestRateLimitPerTerminal: each relay answers a terminal's OPRF queries up
// to its budget, refuses further ones until the budget refills, and counts
// terminals separately (by their mTLS certificate).
func TestRateLimitPerTerminal(t *testing.T) {
	e := setup(t, 9, 2)
	c := ctx(t)
	ts, err := e.p.NewTerminals(platform.TerminalSpec{Name: "t1"}, platform.TerminalSpec{Name: "t2"})
	require.NoError(t, err)
	id := e.patients[0].Identity
	for i := range 2 {
		_, err := ts[0].DeriveKeys(c, id)
		require.NoError(t, err, "query %d", i)
	}
	_, err = ts[0].DeriveKeys(c, id)
	require.ErrorIs(t, err, terminal.ErrRelay)
	require.ErrorContains(t, err, "too many queries")
	_, err = ts[1].DeriveKeys(c, id)
	require.NoError(t, err, "another terminal is limited separately")
	e.clock.advance(time.Minute)
	_, err = ts[0].DeriveKeys(c, id)
	require.NoError(t, err, "budget refills")
}

// TestRelayOffCloudSide: while a relay's link is on the hospital side it
// answers no terminal.
func TestRelayOffCloudSide(t *testing.T) {
	e := setup(t, 9, 0)
	c := ctx(t)
	node := e.p.Nodes[0]
	conn, err := e.p.Dial("t", node.Hospital, node.Addr)
	require.NoError(t, err)
	rc := identitypb.NewRelayClient(conn)
	enc, err := identity.Encode(e.patients[0].Identity)
	require.NoError(t, err)
	_, blinded, err := recordkey.NewQuery(node.Hospital, node.Evaluator.PublicKey(), enc)
	require.NoError(t, err)

	require.NoError(t, node.Link.Toggle(c))
	_, err = rc.Evaluate(c, &identitypb.EvaluateRequest{Blinded: blinded})
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.NoError(t, node.Link.Toggle(c))
	_, err = rc.Evaluate(c, &identitypb.EvaluateRequest{Blinded: blinded})
	require.NoError(t, err)
}

// TestMalformedNetworkInput: malformed requests get a clear error and the
// services keep serving.
func TestMalformedNetworkInput(t *testing.T) {
	e := setup(t, 9, 100)
	c := ctx(t)
	node := e.p.Nodes[0]
	conn, err := e.p.Dial("t", node.Hospital, node.Addr)
	require.NoError(t, err)
	rc := identitypb.NewRelayClient(conn)
	relayTests := []struct {
		name    string
		blinded [][]byte
	}{
		{"empty", nil},
		{"identity element", [][]byte{make([]byte, 32)}},
		{"short element", [][]byte{{1, 2, 3}}},
		{"not a point", [][]byte{bytes.Repeat([]byte{0xff}, 32)}},
		{"too many", make([][]byte, recordkey.MaxBatch+1)},
		{"huge element", [][]byte{make([]byte, 1<<16)}},
	}
	for _, tc := range relayTests {
		t.Run("relay/"+tc.name, func(t *testing.T) {
			_, err := rc.Evaluate(c, &identitypb.EvaluateRequest{Blinded: tc.blinded})
			require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
			require.Contains(t, status.Convert(err).Message(), "malformed")
		})
	}
	enc, err := identity.Encode(e.patients[0].Identity)
	require.NoError(t, err)
	_, blinded, err := recordkey.NewQuery(node.Hospital, node.Evaluator.PublicKey(), enc)
	require.NoError(t, err)
	_, err = rc.Evaluate(c, &identitypb.EvaluateRequest{Blinded: blinded})
	require.NoError(t, err, "relay still serves after malformed input")

	cconn, err := e.p.Dial("t", platform.CloudName, e.p.CloudAddr)
	require.NoError(t, err)
	cc := identitypb.NewCloudClient(cconn)
	cloudTests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"terminal puts", func() error {
			_, err := cc.Put(c, &identitypb.PutRequest{Entries: []*identitypb.Entry{{Hospital: "t", Index: make([]byte, 32), Ciphertext: make([]byte, 600)}}})
			return err
		}, codes.PermissionDenied},
		{"short index", func() error {
			_, err := cc.Get(c, &identitypb.GetRequest{Hospital: "hospital-a", Index: []byte{1}})
			return err
		}, codes.InvalidArgument},
		{"unknown index", func() error {
			_, err := cc.Get(c, &identitypb.GetRequest{Hospital: "hospital-a", Index: make([]byte, 32)})
			return err
		}, codes.NotFound},
		{"huge grant", func() error {
			_, err := cc.Send(c, &identitypb.SendRequest{To: "x", Sealed: make([]byte, cloud.MaxSealedGrant+1)})
			return err
		}, codes.InvalidArgument},
		{"no recipient", func() error {
			_, err := cc.Send(c, &identitypb.SendRequest{Sealed: []byte{1}})
			return err
		}, codes.InvalidArgument},
	}
	for _, tc := range cloudTests {
		t.Run("cloud/"+tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, status.Code(tc.call()))
		})
	}
}

// TestPinnedKeyCatchesSwappedRelayKey: a terminal that pinned one key for a
// hospital rejects answers computed with another (here: the relay's real key
// when the terminal pinned the other hospital's).
func TestPinnedKeyCatchesSwappedRelayKey(t *testing.T) {
	e := setup(t, 9, 0)
	c := ctx(t)
	a, b := e.p.Nodes[0], e.p.Nodes[1]
	conn, err := e.p.Dial("t", a.Hospital, a.Addr)
	require.NoError(t, err)
	cconn, err := e.p.Dial("t", platform.CloudName, e.p.CloudAddr)
	require.NoError(t, err)
	k, err := recordkey.GenerateTerminalKey()
	require.NoError(t, err)
	term, err := terminal.New(terminal.Config{
		Name: "t", Key: k, Cloud: identitypb.NewCloudClient(cconn),
		Hospitals: []terminal.Hospital{{Name: a.Hospital, OPRFKey: b.Evaluator.PublicKey(), Relay: identitypb.NewRelayClient(conn)}},
	})
	require.NoError(t, err)
	_, err = term.DeriveKeys(c, e.patients[0].Identity)
	require.ErrorIs(t, err, recordkey.ErrProof)
}
