package cloud

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"path/filepath"
	"testing"
	"time"

	"github.com/mpsi-dev/mpsi/examples/identitykeys/identitypb"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/recordkey"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func storeAt(t *testing.T, path string, clk *clock) *Store {
	t.Helper()
	cfg := Config{Hospitals: []string{"hospital-a", "hospital-b"}, Path: path}
	if clk != nil {
		cfg.Now = clk.now
	}
	s, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func store(t *testing.T) *Store { return storeAt(t, filepath.Join(t.TempDir(), "cloud.db"), nil) }

func entry(h string, ixByte byte, ctLen int) *identitypb.Entry {
	return &identitypb.Entry{Hospital: h, Index: bytes.Repeat([]byte{ixByte}, recordkey.IndexSize), Ciphertext: make([]byte, ctLen),
		AccessKey: make([]byte, recordkey.AccessKeySize)}
}

var okLen = recordkey.Overhead + recordkey.PadBlock

func TestPutSnapshot(t *testing.T) {
	s := store(t)
	ctx := context.Background()
	n, err := s.PutEntries(ctx, "hospital-a", []*identitypb.Entry{entry("hospital-a", 1, okLen), entry("hospital-a", 2, okLen+recordkey.PadBlock)})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	items, _, err := s.Snapshot(ctx)
	require.NoError(t, err)
	require.Len(t, items, 2)
	_, err = s.Fetch(ctx, "x", &identitypb.GetRequest{Hospital: "hospital-b", Index: bytes.Repeat([]byte{2}, 32)})
	require.ErrorIs(t, err, ErrNotFound, "an index is scoped to its hospital")
	_, err = s.Fetch(ctx, "x", &identitypb.GetRequest{Hospital: "hospital-a", Index: []byte{2}})
	require.ErrorIs(t, err, ErrInvalid)
}

func TestPutRejects(t *testing.T) {
	shortKey := entry("hospital-a", 1, okLen)
	shortKey.AccessKey = shortKey.AccessKey[:5]
	tests := []struct {
		name    string
		caller  string
		entries []*identitypb.Entry
		want    error
	}{
		{"terminal caller", "patient", []*identitypb.Entry{entry("patient", 1, okLen)}, ErrForbidden},
		{"other hospital's entry", "hospital-a", []*identitypb.Entry{entry("hospital-b", 1, okLen)}, ErrForbidden},
		{"no entries", "hospital-a", nil, ErrInvalid},
		{"too many", "hospital-a", make([]*identitypb.Entry, MaxEntriesPerPut+1), ErrInvalid},
		{"short index", "hospital-a", []*identitypb.Entry{{Hospital: "hospital-a", Index: []byte{1}, Ciphertext: make([]byte, okLen)}}, ErrInvalid},
		{"short ciphertext", "hospital-a", []*identitypb.Entry{entry("hospital-a", 1, okLen-1)}, ErrInvalid},
		{"huge ciphertext", "hospital-a", []*identitypb.Entry{entry("hospital-a", 1, recordkey.Overhead+recordkey.MaxBundle+recordkey.PadBlock+1)}, ErrInvalid},
		{"short access key", "hospital-a", []*identitypb.Entry{shortKey}, ErrInvalid},
		{"good then bad", "hospital-a", []*identitypb.Entry{entry("hospital-a", 1, okLen), entry("hospital-a", 2, 3)}, ErrInvalid},
		{"nil entry", "hospital-a", []*identitypb.Entry{nil}, ErrForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := store(t)
			_, err := s.PutEntries(context.Background(), tc.caller, tc.entries)
			require.ErrorIs(t, err, tc.want)
			items, _, err := s.Snapshot(context.Background())
			require.NoError(t, err)
			require.Empty(t, items, "a rejected Put stored something")
		})
	}
}

// patientKey derives a real key, so that the stored access key is its.
func patientKey(t *testing.T) *recordkey.Key {
	ev, err := recordkey.GenerateEvaluator("hospital-a")
	require.NoError(t, err)
	k, err := ev.Derive([]byte("identity and credential"))
	require.NoError(t, err)
	return k
}

func putKey(t *testing.T, s *Store, k *recordkey.Key) {
	ix := k.Index()
	ct, err := recordkey.Seal(k, []byte("bundle"))
	require.NoError(t, err)
	_, err = s.PutEntries(context.Background(), "hospital-a", []*identitypb.Entry{{Hospital: "hospital-a", Index: ix[:], Ciphertext: ct, AccessKey: k.AccessPublicKey()}})
	require.NoError(t, err)
}

func permit(t *testing.T, k *recordkey.Key, grantee string, expires time.Time, delegable bool) (*identitypb.PermitRequest, recordkey.GrantID) {
	id, err := recordkey.NewGrantID()
	require.NoError(t, err)
	p := recordkey.Permit{ID: id, Hospital: k.Hospital(), Index: k.Index(), Grantee: grantee, Expires: expires.Unix(), Delegable: delegable}
	return &identitypb.PermitRequest{Id: id[:], Hospital: p.Hospital, Index: p.Index[:], Grantee: grantee, Expires: p.Expires, Delegable: delegable, Signature: p.Sign(k)}, id
}

// TestAuthorisation covers who the cloud serves a bundle to, and every
// refusal: patient fetches without the access key, grants not for the
// caller, revoked or expired grants, grants passed on from them.
func TestAuthorisation(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	path := filepath.Join(t.TempDir(), "cloud.db")
	s := storeAt(t, path, clk)
	k, other := patientKey(t), patientKey(t)
	putKey(t, s, k)
	ix := k.Index()
	fetch := func(caller string, unix int64, signer *recordkey.Key) error {
		sig := ed25519.Sign(signer.AccessKey(), recordkey.FetchMessage(caller, "hospital-a", ix, unix))
		_, err := s.Fetch(ctx, caller, &identitypb.GetRequest{Hospital: "hospital-a", Index: ix[:], Time: unix, Signature: sig})
		return err
	}
	viaGrant := func(caller string, id recordkey.GrantID) error {
		_, err := s.Fetch(ctx, caller, &identitypb.GetRequest{Hospital: "hospital-a", Index: ix[:], GrantId: id[:]})
		return err
	}
	now := clk.t.Unix()
	require.NoError(t, fetch("patient", now, k))
	require.ErrorIs(t, fetch("patient", now, other), ErrForbidden, "signed by another key")
	require.ErrorIs(t, fetch("patient", now-600, k), ErrForbidden, "stale signature")
	sig := ed25519.Sign(k.AccessKey(), recordkey.FetchMessage("patient", "hospital-a", ix, now))
	_, err := s.Fetch(ctx, "mallory", &identitypb.GetRequest{Hospital: "hospital-a", Index: ix[:], Time: now, Signature: sig})
	require.ErrorIs(t, err, ErrForbidden, "a patient's signature replayed by another caller")
	_, err = s.Fetch(ctx, "patient", &identitypb.GetRequest{Hospital: "hospital-a", Index: ix[:]})
	require.ErrorIs(t, err, ErrForbidden, "no proof at all")

	// Grants.
	req, id := permit(t, k, "dr-lee", clk.t.Add(time.Hour), true)
	forged, _ := permit(t, other, "dr-lee", clk.t.Add(time.Hour), true)
	forged.Index = ix[:] // signed by another bundle's key
	require.ErrorIs(t, s.AddPermit(ctx, "patient", forged), ErrForbidden)
	altered := proto.Clone(req).(*identitypb.PermitRequest)
	altered.Grantee = "mallory"
	require.ErrorIs(t, s.AddPermit(ctx, "patient", altered), ErrForbidden, "grantee changed after signing")
	past, _ := permit(t, k, "dr-lee", clk.t.Add(-time.Minute), true)
	require.ErrorIs(t, s.AddPermit(ctx, "patient", past), ErrInvalid)
	require.NoError(t, s.AddPermit(ctx, "patient", req))
	require.ErrorIs(t, s.AddPermit(ctx, "patient", req), ErrInvalid, "grant id taken")

	require.NoError(t, viaGrant("dr-lee", id))
	require.ErrorIs(t, viaGrant("mallory", id), ErrForbidden, "a grant for someone else")
	require.ErrorIs(t, viaGrant("dr-lee", recordkey.GrantID{9}), ErrNotFound)

	// dr-lee passes it on; the colleague's grant cannot be passed on again.
	childID, err := recordkey.NewGrantID()
	require.NoError(t, err)
	pass := func(caller string, parent, child recordkey.GrantID, to string, exp time.Time) error {
		return s.PassOn(ctx, caller, &identitypb.DelegateRequest{ParentId: parent[:], Id: child[:], Grantee: to, Expires: exp.Unix()})
	}
	require.ErrorIs(t, pass("mallory", id, childID, "mallory", clk.t.Add(time.Minute)), ErrForbidden, "not the grantee")
	require.ErrorIs(t, pass("dr-lee", id, childID, "dr-okafor", clk.t.Add(2*time.Hour)), ErrInvalid, "outlives the grant")
	require.NoError(t, pass("dr-lee", id, childID, "dr-okafor", clk.t.Add(30*time.Minute)))
	require.NoError(t, viaGrant("dr-okafor", childID))
	grandchild, err := recordkey.NewGrantID()
	require.NoError(t, err)
	require.ErrorIs(t, pass("dr-okafor", childID, grandchild, "mallory", clk.t.Add(time.Minute)), ErrForbidden, "not delegable")

	// A non-delegable grant cannot be passed on.
	req2, id2 := permit(t, k, "dr-kim", clk.t.Add(time.Hour), false)
	require.NoError(t, s.AddPermit(ctx, "patient", req2))
	require.ErrorIs(t, pass("dr-kim", id2, grandchild, "mallory", clk.t.Add(time.Minute)), ErrForbidden)

	// Revocation: only the access key (or the doctor who passed a grant on,
	// for that grant) may revoke.
	revoke := func(caller string, id recordkey.GrantID, signer *recordkey.Key) error {
		r := &identitypb.RevokeRequest{Id: id[:], Time: clk.t.Unix()}
		if signer != nil {
			r.Signature = ed25519.Sign(signer.AccessKey(), recordkey.RevokeMessage(id, clk.t.Unix()))
		}
		return s.RevokeGrant(ctx, caller, r)
	}
	require.ErrorIs(t, revoke("dr-lee", id, nil), ErrForbidden, "the grantee cannot revoke the patient's grant")
	require.ErrorIs(t, revoke("patient", id, other), ErrForbidden)
	require.NoError(t, viaGrant("dr-lee", id), "refused revocations change nothing")
	require.NoError(t, revoke("patient", id, k))
	require.ErrorIs(t, viaGrant("dr-lee", id), ErrRevoked)
	require.ErrorIs(t, viaGrant("dr-okafor", childID), ErrRevoked, "the grant passed on from a revoked grant")
	require.NoError(t, viaGrant("dr-kim", id2), "other grants are untouched")

	// Expiry.
	clk.t = clk.t.Add(2 * time.Hour)
	require.ErrorIs(t, viaGrant("dr-kim", id2), ErrRevoked)

	// Everything survives a restart: the file is the store.
	require.NoError(t, s.Close())
	s2 := storeAt(t, path, clk)
	items, _, err := s2.Snapshot(ctx)
	require.NoError(t, err)
	require.Len(t, items, 1)
	s = s2
	require.ErrorIs(t, viaGrant("dr-lee", id), ErrRevoked, "still revoked after a restart")
	require.NoError(t, fetch("patient", clk.t.Unix(), k))
}

func TestMailbox(t *testing.T) {
	s := store(t)
	ctx := context.Background()
	require.NoError(t, s.Post(ctx, "patient", "dr-lee", []byte("sealed")))
	require.ErrorIs(t, s.Post(ctx, "patient", "", []byte("x")), ErrInvalid)
	require.ErrorIs(t, s.Post(ctx, "patient", "dr-lee", nil), ErrInvalid)
	require.ErrorIs(t, s.Post(ctx, "patient", "dr-lee", make([]byte, MaxSealedGrant+1)), ErrInvalid)
	m, err := s.Take(ctx, "dr-okafor")
	require.NoError(t, err)
	require.Empty(t, m)
	m, err = s.Take(ctx, "dr-lee")
	require.NoError(t, err)
	require.Equal(t, []Mail{{From: "patient", To: "dr-lee", Sealed: []byte("sealed")}}, m)
	m, err = s.Take(ctx, "dr-lee")
	require.NoError(t, err)
	require.Empty(t, m, "mail delivered twice")
	for range MaxMailbox {
		require.NoError(t, s.Post(ctx, "x", "dr-lee", []byte("s")))
	}
	require.ErrorIs(t, s.Post(ctx, "x", "dr-lee", []byte("s")), ErrMailboxFull)
}

func TestNewValidates(t *testing.T) {
	_, err := New(Config{Path: filepath.Join(t.TempDir(), "c.db")})
	require.Error(t, err)
	_, err = New(Config{Hospitals: []string{"bad name"}, Path: filepath.Join(t.TempDir(), "c.db")})
	require.ErrorIs(t, err, recordkey.ErrHospital)
	_, err = New(Config{Hospitals: []string{"hospital-a"}})
	require.Error(t, err, "no path")
}
