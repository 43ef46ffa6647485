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
	creds    map[string]map[string]recordkey.Credential // hospital → identity encoding → credential
}

// credsFor returns the credentials p's terminal holds: one per hospital
// that enrolled p.
func (e *env) credsFor(t *testing.T, f identity.Fields) map[string]recordkey.Credential {
	enc, err := identity.Encode(f)
	require.NoError(t, err)
	out := map[string]recordkey.Credential{}
	for h, m := range e.creds {
		if c, ok := m[string(enc)]; ok {
			out[h] = c
		}
	}
	return out
}

// setup starts a platform over generated patients and runs one link cycle,
// so the cloud holds every hospital's bundles.
func setup(t *testing.T, n int, burst int) *env {
	t.Helper()
	ps := records.Generate(n)
	dbs := records.Split([2]string{"hospital-a", "hospital-b"}, ps)
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	p, err := platform.Start(platform.Options{DBs: dbs[:], Dir: t.TempDir(), RateBurst: burst, RateEvery: time.Minute, Now: clk.now})
	require.NoError(t, err)
	t.Cleanup(p.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	creds := map[string]map[string]recordkey.Credential{}
	for i, n := range p.Nodes {
		creds[n.Hospital] = map[string]recordkey.Credential{}
		for _, pt := range dbs[i].Patients {
			c, err := n.DB.Enrol(ctx, pt.Identity)
			require.NoError(t, err)
			enc, err := identity.Encode(pt.Identity)
			require.NoError(t, err)
			creds[n.Hospital][string(enc)] = c
		}
	}
	reps, stored, err := p.SyncAndUpload(ctx)
	require.NoError(t, err)
	for i := range dbs {
		require.Equal(t, len(dbs[i].Patients), reps[i].Bundles)
		require.Equal(t, len(dbs[i].Patients), stored[i])
	}
	return &env{p: p, patients: ps, dbs: dbs, clock: clk, creds: creds}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// readKeyWith builds a read key for the bundle at ix with arbitrary record
// key bytes, through the public grant encoding (a template grant with the
// index and key replaced).
func readKeyWith(t *testing.T, template *recordkey.ReadKey, ix recordkey.Index, key []byte) *recordkey.ReadKey {
	t.Helper()
	enc, err := (&recordkey.Grant{Reads: []recordkey.Read{{Key: template}}}).MarshalBinary()
	require.NoError(t, err)
	tail := enc[len(enc)-recordkey.GrantIDSize-32-recordkey.IndexSize:]
	copy(tail, ix[:])
	copy(tail[recordkey.IndexSize:], key[:32])
	g, err := recordkey.ParseGrant(enc)
	require.NoError(t, err)
	return g.Reads[0].Key
}

// recordKeyBytes extracts a read key's record key through the grant
// encoding.
func recordKeyBytes(t *testing.T, r *recordkey.ReadKey) []byte {
	enc, err := (&recordkey.Grant{Reads: []recordkey.Read{{Key: r}}}).MarshalBinary()
	require.NoError(t, err)
	return enc[len(enc)-recordkey.GrantIDSize-32 : len(enc)-recordkey.GrantIDSize]
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
	keys, err := ts[0].DeriveKeys(c, e.patients[2].Identity, e.credsFor(t, e.patients[2].Identity))
	require.NoError(t, err)
	_, err = ts[0].Share(c, "dr-lee", keys, e.clock.now().Add(time.Hour), true)
	require.NoError(t, err)

	items, mail, err := e.p.Cloud.Snapshot(c)
	require.NoError(t, err)
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
			cred := e.creds[node.Hospital][string(enc)]
			right, err := node.Evaluator.Derive(recordkey.Input(enc, cred))
			require.NoError(t, err)
			it, ok := byIndex[right.Index()]
			require.True(t, ok, "a patient's bundle is missing")
			require.Equal(t, node.Hospital, it.Hospital)
			require.Equal(t, right.AccessPublicKey(), it.AccessKey)

			// Indexes computed without the hospital's OPRF or without the
			// credential are not in the store.
			noCred, err := node.Evaluator.Derive(enc)
			require.NoError(t, err)
			otherOPRF, err := other.Evaluator.Derive(recordkey.Input(enc, cred))
			require.NoError(t, err)
			for name, k := range map[string]*recordkey.Key{"identity without credential": noCred, "other hospital's OPRF": otherOPRF} {
				if _, ok := byIndex[k.Index()]; ok {
					t.Fatalf("%s: its index is in the store", name)
				}
			}
			hash := sha512.Sum512(enc)
			var random [32]byte
			_, _ = rand.Read(random[:])
			candidates := map[string][]byte{
				"sha512(identity)":                       hash[:32],
				"other hospital's OPRF":                  recordKeyBytes(t, otherOPRF.ReadKey()),
				"same OPRF without the credential":       recordKeyBytes(t, noCred.ReadKey()),
				"random":                                 random[:],
				"index as key material":                  it.Index[:],
				"identity bytes":                         append(enc, make([]byte, 32)...)[:32],
				"the access public key stored beside it": it.AccessKey,
			}
			for name, key := range candidates {
				if _, err := recordkey.OpenRead(readKeyWith(t, right.ReadKey(), it.Index, key), it.Ciphertext); err == nil {
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

	keys, err := patient.DeriveKeys(c, who.Identity, e.credsFor(t, who.Identity))
	require.NoError(t, err)
	leeReads, err := patient.Share(c, "dr-lee", keys, e.clock.now().Add(time.Hour), true)
	require.NoError(t, err)
	_, pending, err := e.p.Cloud.Snapshot(c)
	require.NoError(t, err)
	require.Len(t, pending, 1)
	replay := pending[0].Sealed

	in, err := lee.Inbox(c)
	require.NoError(t, err)
	require.Len(t, in, 1)
	require.Equal(t, "patient", in[0].From)

	check := func(name string, reader *terminal.Terminal, got []recordkey.Read) {
		t.Helper()
		items, _, err := e.p.Cloud.Snapshot(c)
		require.NoError(t, err)
		opens := 0
		for _, it := range items {
			for _, r := range got {
				pt, err := recordkey.OpenRead(r.Key, it.Ciphertext)
				if err != nil {
					require.ErrorIs(t, err, recordkey.ErrDecrypt)
					continue
				}
				opens++
				b, err := records.ParseBundle(pt)
				require.NoError(t, err)
				require.Equal(t, r.Key.Hospital(), b.Hospital)
				require.Equal(t, who.Identity.Given, b.Given, "%s opened another patient's bundle", name)
			}
		}
		require.Equal(t, 2, opens, "%s opens %d bundles, want exactly the patient's 2", name, opens)
		f, err := reader.FetchGranted(c, got)
		require.NoError(t, err)
		var conds []records.Condition
		for _, x := range f {
			conds = append(conds, x.Bundle.Conditions...)
		}
		require.ElementsMatch(t, who.Conditions, conds, "%s does not see exactly the patient's conditions", name)
	}
	check("dr-lee", lee, in[0].Reads)

	_, err = lee.PassOn(c, "dr-okafor", in[0].Reads, e.clock.now().Add(30*time.Minute))
	require.NoError(t, err)
	in2, err := okafor.Inbox(c)
	require.NoError(t, err)
	require.Len(t, in2, 1)
	require.Equal(t, "dr-lee", in2[0].From)
	check("dr-okafor", okafor, in2[0].Reads)

	// A read key without the grant: dr-nobody is handed dr-lee's read keys
	// (as if dr-lee leaked them) and the cloud refuses him.
	_, err = nobody.FetchGranted(c, in[0].Reads)
	require.ErrorIs(t, err, terminal.ErrDenied)
	// Revocation over the network: dr-lee and dr-okafor are refused.
	for i, r := range leeReads {
		require.NoError(t, patient.Revoke(c, keys[i], r.ID))
	}
	_, err = lee.FetchGranted(c, in[0].Reads)
	require.ErrorIs(t, err, terminal.ErrDenied)
	_, err = okafor.FetchGranted(c, in2[0].Reads)
	require.ErrorIs(t, err, terminal.ErrDenied)
	// dr-lee cannot pass on a revoked grant.
	_, err = lee.PassOn(c, "dr-nobody", in[0].Reads, e.clock.now().Add(time.Minute))
	require.ErrorIs(t, err, terminal.ErrDenied)
	// The patient still reads.
	mine, err := patient.Fetch(c, keys)
	require.NoError(t, err)
	require.Len(t, mine, 2)

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
	cr := e.credsFor(t, id)
	for i := range 2 {
		_, err := ts[0].DeriveKeys(c, id, cr)
		require.NoError(t, err, "query %d", i)
	}
	_, err = ts[0].DeriveKeys(c, id, cr)
	require.ErrorIs(t, err, terminal.ErrRelay)
	require.ErrorContains(t, err, "too many queries")
	_, err = ts[1].DeriveKeys(c, id, cr)
	require.NoError(t, err, "another terminal is limited separately")
	e.clock.advance(time.Minute)
	_, err = ts[0].DeriveKeys(c, id, cr)
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
	_, err = term.DeriveKeys(c, e.patients[0].Identity, map[string]recordkey.Credential{a.Hospital: {1}})
	require.ErrorIs(t, err, recordkey.ErrProof)
}

// TestIdentityIsNotEnough: a terminal that knows a patient's name, birth
// date and national ID but not the enrolment credentials finds nothing, and
// cannot fetch the patient's bundle even at its real index.
func TestIdentityIsNotEnough(t *testing.T) {
	e := setup(t, 9, 0)
	c := ctx(t)
	ts, err := e.p.NewTerminals(platform.TerminalSpec{Name: "patient"}, platform.TerminalSpec{Name: "mallory"})
	require.NoError(t, err)
	who := e.patients[2]
	keys, err := ts[0].DeriveKeys(c, who.Identity, e.credsFor(t, who.Identity))
	require.NoError(t, err)
	got, err := ts[0].Fetch(c, keys)
	require.NoError(t, err)
	require.Len(t, got, 2)

	for name, creds := range map[string]map[string]recordkey.Credential{
		"zero credentials":                            {"hospital-a": {}, "hospital-b": {}},
		"random credentials":                          {"hospital-a": {7, 7, 7}, "hospital-b": {9}},
		"one hospital's credential used at the other": {"hospital-a": e.credsFor(t, who.Identity)["hospital-b"]},
	} {
		mk, err := ts[1].DeriveKeys(c, who.Identity, creds)
		require.NoError(t, err, name)
		found, err := ts[1].Fetch(c, mk)
		require.NoError(t, err, name)
		require.Empty(t, found, name)
	}
	// mallory learns the patient's index (say, from the cloud's logs) and
	// asks for it directly: without the access key the cloud refuses.
	conn, err := e.p.Dial("mallory", platform.CloudName, e.p.CloudAddr)
	require.NoError(t, err)
	ix := keys[0].Index()
	_, err = identitypb.NewCloudClient(conn).Get(c, &identitypb.GetRequest{Hospital: keys[0].Hospital(), Index: ix[:], Time: e.clock.now().Unix(), Signature: make([]byte, 64)})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	// Re-enrolment issues a new credential, which works after the next
	// sync. (The bundle filed under the old credential stays in the cloud:
	// see the README's residual risks.)
	node := e.p.Nodes[0]
	fresh, err := node.DB.Enrol(c, who.Identity)
	require.NoError(t, err)
	_, _, err = e.p.SyncAndUpload(c)
	require.NoError(t, err)
	nk, err := ts[0].DeriveKeys(c, who.Identity, map[string]recordkey.Credential{node.Hospital: fresh})
	require.NoError(t, err)
	f, err := ts[0].Fetch(c, nk)
	require.NoError(t, err)
	require.Len(t, f, 1)
}
