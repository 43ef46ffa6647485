package app_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/mpsi-dev/mpsi/examples/recordsharing/app"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/protocol"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/session"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/sharingpb"
)

func newKey(t testing.TB) *protocol.KeyPair {
	t.Helper()
	k, err := protocol.GenerateKeyPair()
	require.NoError(t, err)
	return k
}

// fakeAccess is an access layer under the test's control. It answers every
// request itself with an empty response signed by sig5Key (or with a zero
// signature if sig5Key is nil), after letting the test alter it.
type fakeAccess struct {
	t         *testing.T
	grantKey  *protocol.KeyPair
	sig5Key   *protocol.KeyPair
	grantTime time.Time
	otherEph  bool // seal the grant to another temporary key
	rotations [][]byte
	sess      *session.Session
	last      *sharingpb.SealedMessage
	// answer may change the response and the session named in sig5.
	answer func(r *protocol.Response, sid *protocol.SessionID)
	// seal may replace the sealed answer.
	seal func(m *sharingpb.SealedMessage) *sharingpb.SealedMessage
}

func (f *fakeAccess) OpenSession(_ context.Context, in *sharingpb.OpenSessionRequest, _ ...grpc.CallOption) (*sharingpb.OpenSessionResponse, error) {
	var id protocol.SessionID
	_, err := rand.Read(id[:])
	require.NoError(f.t, err)
	eph := in.GetEphemeralPublicKey()
	if f.otherEph {
		other, err := session.NewInitiator()
		require.NoError(f.t, err)
		eph = other.PublicKey()
	}
	s, g, err := session.Grant(eph, id, f.grantTime)
	require.NoError(f.t, err)
	f.sess = s
	enc, err := g.MarshalBinary()
	require.NoError(f.t, err)
	sig := protocol.SignGrant(f.grantKey, enc)
	return &sharingpb.OpenSessionResponse{Grant: enc, Signature: sig[:], KeyRotations: f.rotations}, nil
}

func (f *fakeAccess) Submit(_ context.Context, in *sharingpb.SealedMessage, _ ...grpc.CallOption) (*sharingpb.SealedMessage, error) {
	pt, err := f.sess.Open(in.GetNonce(), in.GetCiphertext())
	require.NoError(f.t, err)
	var sr protocol.SignedRequest
	require.NoError(f.t, sr.UnmarshalBinary(pt))
	var req protocol.Request
	require.NoError(f.t, req.UnmarshalBinary(sr.Request))
	sid := f.sess.ID()
	resp := protocol.Response{Type: req.Type, Request: protocol.DigestRequest(sr.Request), Record: req.Record, Seq: 1, Time: time.Now().UnixNano()}
	if f.answer != nil {
		f.answer(&resp, &sid)
	}
	enc, err := resp.MarshalBinary()
	require.NoError(f.t, err)
	out := protocol.SignedResponse{Response: enc} // zero signature 5 if sig5Key is nil
	if f.sig5Key != nil {
		out.Hop = protocol.SignAccessResponse(f.sig5Key, sid, enc)
	}
	b, err := out.MarshalBinary()
	require.NoError(f.t, err)
	n, ct, err := f.sess.Seal(b)
	require.NoError(f.t, err)
	id := f.sess.ID()
	m := &sharingpb.SealedMessage{SessionId: id[:], Nonce: n, Ciphertext: ct}
	if f.seal != nil {
		m = f.seal(m)
	}
	f.last = m
	return m, nil
}

func newApp(t *testing.T, f *fakeAccess, accessKey protocol.Key) *app.App {
	a, err := app.New(app.Config{Key: newKey(t), AccessKey: accessKey, Client: f})
	require.NoError(t, err)
	return a
}

func TestOpenSession(t *testing.T) {
	acc, other := newKey(t), newKey(t)
	tests := []struct {
		name    string
		f       fakeAccess
		wantErr error
	}{
		{"valid", fakeAccess{grantKey: acc, grantTime: time.Now()}, nil},
		{"grant signed by another key", fakeAccess{grantKey: other, grantTime: time.Now()}, protocol.ErrBadSignature},
		{"stale grant", fakeAccess{grantKey: acc, grantTime: time.Now().Add(-time.Hour)}, protocol.ErrStale},
		{"grant for another temporary key", fakeAccess{grantKey: acc, grantTime: time.Now(), otherEph: true}, session.ErrOpen},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.t = t
			err := newApp(t, &tc.f, acc.Public()).OpenSession(context.Background())
			if tc.wantErr == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.wantErr)
			}
		})
	}
}

// TestSignature5 covers forged, missing, mismatched and replayed answers at
// the app.
func TestSignature5(t *testing.T) {
	acc, other := newKey(t), newKey(t)
	f := &fakeAccess{t: t, grantKey: acc, sig5Key: acc, grantTime: time.Now()}
	a := newApp(t, f, acc.Public())
	user := newKey(t)
	ctx := context.Background()

	_, err := a.Submit(ctx, user, protocol.Request{Type: protocol.TypeView, Record: protocol.RecordID{1}})
	require.ErrorIs(t, err, app.ErrNoSession)
	require.NoError(t, a.OpenSession(ctx))
	_, err = a.Submit(ctx, user, protocol.Request{Type: protocol.TypeView, Record: protocol.RecordID{1}})
	require.NoError(t, err)
	previous := f.last

	tests := []struct {
		name    string
		sig5Key *protocol.KeyPair
		answer  func(r *protocol.Response, sid *protocol.SessionID)
		seal    func(m *sharingpb.SealedMessage) *sharingpb.SealedMessage
		wantErr error
	}{
		{"forged by another key", other, nil, nil, protocol.ErrBadSignature},
		{"bound to another session", acc, func(_ *protocol.Response, sid *protocol.SessionID) { sid[0] ^= 1 }, nil, protocol.ErrBadSignature},
		{"missing", nil, nil, nil, protocol.ErrBadSignature},
		{"answer to another request", acc, func(r *protocol.Response, _ *protocol.SessionID) { r.Request[0] ^= 1 }, nil, protocol.ErrMismatch},
		{"stale answer", acc, func(r *protocol.Response, _ *protocol.SessionID) { r.Time = time.Now().Add(-time.Hour).UnixNano() }, nil, protocol.ErrStale},
		{"replayed earlier answer", acc, nil, func(*sharingpb.SealedMessage) *sharingpb.SealedMessage { return previous }, protocol.ErrMismatch},
		{"answer labelled with another session", acc, nil, func(m *sharingpb.SealedMessage) *sharingpb.SealedMessage {
			return &sharingpb.SealedMessage{SessionId: make([]byte, 16), Nonce: m.Nonce, Ciphertext: m.Ciphertext}
		}, protocol.ErrMismatch},
		{"answer not sealed under the session key", acc, nil, func(m *sharingpb.SealedMessage) *sharingpb.SealedMessage {
			return &sharingpb.SealedMessage{SessionId: m.SessionId, Nonce: m.Nonce, Ciphertext: []byte("garbage")}
		}, session.ErrOpen},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.sig5Key, f.answer, f.seal = tc.sig5Key, tc.answer, tc.seal
			_, err := a.Submit(ctx, user, protocol.Request{Type: protocol.TypeView, Record: protocol.RecordID{1}})
			require.ErrorIs(t, err, tc.wantErr)
		})
	}
	f.sig5Key, f.answer, f.seal = acc, nil, nil
	_, err = a.Submit(ctx, user, protocol.Request{Type: protocol.TypeView, Record: protocol.RecordID{1}})
	require.NoError(t, err)
}

// TestRotatedAccessKey: the app trusts the access key it was deployed with
// and follows a signed chain of rotations to the key that signs the grant.
func TestRotatedAccessKey(t *testing.T) {
	k0, k1, other := newKey(t), newKey(t), newKey(t)
	link := func(old, next *protocol.KeyPair) []byte {
		r := protocol.AccessRotation{Old: old.Public(), New: next.Public(), Time: time.Now().UnixNano(), Nonce: protocol.Nonce{3}}
		enc, err := r.MarshalBinary()
		require.NoError(t, err)
		m := protocol.SignAccessRotation(old, next, enc)
		b, err := m.MarshalBinary()
		require.NoError(t, err)
		return b
	}
	tests := []struct {
		name  string
		chain [][]byte
		want  error
	}{
		{"signed chain from the deployed key", [][]byte{link(k0, k1)}, nil},
		{"no chain", nil, protocol.ErrBadSignature},
		{"chain from another key", [][]byte{link(other, k1)}, protocol.ErrBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeAccess{t: t, grantKey: k1, sig5Key: k1, grantTime: time.Now(), rotations: tc.chain}
			a := newApp(t, f, k0.Public())
			err := a.OpenSession(context.Background())
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				return
			}
			require.NoError(t, err)
			// Signature 5 is checked under the new key.
			_, err = a.Submit(context.Background(), newKey(t), protocol.Request{Type: protocol.TypeView, Record: protocol.RecordID{1}})
			require.NoError(t, err)
			f.sig5Key = k0
			_, err = a.Submit(context.Background(), newKey(t), protocol.Request{Type: protocol.TypeView, Record: protocol.RecordID{1}})
			require.ErrorIs(t, err, protocol.ErrBadSignature)
		})
	}
}
