package access_test

import (
	"context"
	"crypto/rand"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpsi-dev/mpsi/examples/recordsharing/app"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/internal/deploy"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/internal/rpcerr"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/internal/rpcnet"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/protocol"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/session"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/sharingpb"
)

// Loopback source addresses.
const (
	addr1 = "127.0.0.1"
	addr2 = "127.0.0.2"
)

func startSystem(t *testing.T, allowed ...netip.Addr) *deploy.System {
	t.Helper()
	sys, err := deploy.Start(context.Background(), deploy.Config{
		LedgerPath: filepath.Join(t.TempDir(), "ledger.db"), AllowedSources: allowed,
	})
	require.NoError(t, err)
	t.Cleanup(func() { sys.Close() })
	return sys
}

// rawClient is an app written by hand, so that tests can send what a real
// app would not.
type rawClient struct {
	t   *testing.T
	sys *deploy.System
	c   sharingpb.AccessLayerClient
}

func newRawClient(t *testing.T, sys *deploy.System, source netip.Addr) *rawClient {
	conn, err := sys.DialAccess(source)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return &rawClient{t: t, sys: sys, c: sharingpb.NewAccessLayerClient(conn)}
}

func (r *rawClient) open() (*session.Session, error) {
	in, err := session.NewInitiator()
	require.NoError(r.t, err)
	out, err := r.c.OpenSession(context.Background(), &sharingpb.OpenSessionRequest{EphemeralPublicKey: in.PublicKey()})
	if err != nil {
		return nil, rpcerr.FromStatus(err)
	}
	sig, err := protocol.ParseSignature(out.GetSignature())
	require.NoError(r.t, err)
	require.NoError(r.t, protocol.VerifyGrant(r.sys.AccessKey, out.GetGrant(), sig))
	var g protocol.SessionGrant
	require.NoError(r.t, g.UnmarshalBinary(out.GetGrant()))
	return in.Finish(&g)
}

func (r *rawClient) send(m *sharingpb.SealedMessage) error {
	_, err := r.c.Submit(context.Background(), m)
	return rpcerr.FromStatus(err)
}

// sealed makes a sealed register request with signature 2 from appKey.
// The registration authority ra approves the new doctor.
func sealed(t *testing.T, s *session.Session, appKey, ra *protocol.KeyPair) *sharingpb.SealedMessage {
	user, err := protocol.GenerateKeyPair()
	require.NoError(t, err)
	req := protocol.Request{Type: protocol.TypeRegister, Requester: user.Public(), Role: protocol.RoleDoctor, Time: time.Now().UnixNano(),
		Approval: protocol.SignApproval(ra, protocol.RoleDoctor, user.Public(), protocol.PatientID{})}
	_, err = rand.Read(req.Nonce[:])
	require.NoError(t, err)
	enc, err := req.MarshalBinary()
	require.NoError(t, err)
	sig1 := protocol.SignRequester(user, enc)
	sr := protocol.SignedRequest{Request: enc, Requester: sig1, Hop: protocol.SignApp(appKey, s.ID(), enc, sig1)}
	pt, err := sr.MarshalBinary()
	require.NoError(t, err)
	n, ct, err := s.Seal(pt)
	require.NoError(t, err)
	id := s.ID()
	return &sharingpb.SealedMessage{SessionId: id[:], Nonce: n, Ciphertext: ct}
}

// TestSourceAddress: the access layer serves only configured source
// addresses, and a session only at the address that opened it.
func TestSourceAddress(t *testing.T) {
	lo1, lo2 := netip.MustParseAddr(addr1), netip.MustParseAddr(addr2)
	t.Run("refused from 127.0.0.2", func(t *testing.T) {
		sys := startSystem(t, lo1)
		a, closeApp, err := sys.NewApp(lo2, nil)
		require.NoError(t, err)
		defer closeApp()
		require.ErrorIs(t, a.OpenSession(context.Background()), protocol.ErrSourceAddress)

		// Submit is checked too, before anything else.
		r := newRawClient(t, sys, lo2)
		require.ErrorIs(t, r.send(&sharingpb.SealedMessage{SessionId: make([]byte, 16)}), protocol.ErrSourceAddress)
	})
	t.Run("accepted from 127.0.0.1", func(t *testing.T) {
		sys := startSystem(t, lo1)
		a, closeApp, err := sys.NewApp(lo1, nil)
		require.NoError(t, err)
		defer closeApp()
		require.NoError(t, a.OpenSession(context.Background()))
		_, _, err = a.Register(context.Background(), protocol.RolePatient, protocol.PatientID{3}, app.KeyApprover{Key: sys.Authority})
		require.NoError(t, err)
	})
	t.Run("session used from another allowed address", func(t *testing.T) {
		sys := startSystem(t, lo1, lo2)
		r1, r2 := newRawClient(t, sys, lo1), newRawClient(t, sys, lo2)
		s, err := r1.open()
		require.NoError(t, err)
		require.ErrorIs(t, r2.send(sealed(t, s, sys.AppKey, sys.Authority)), protocol.ErrSourceAddress)
		require.NoError(t, r1.send(sealed(t, s, sys.AppKey, sys.Authority)))
	})
}

// TestSealedPayloads sends malformed, forged and replayed sealed messages
// over the network.
func TestSealedPayloads(t *testing.T) {
	sys := startSystem(t)
	r := newRawClient(t, sys, netip.MustParseAddr(addr1))
	s, err := r.open()
	require.NoError(t, err)
	otherApp, err := protocol.GenerateKeyPair()
	require.NoError(t, err)
	good := sealed(t, s, sys.AppKey, sys.Authority)
	require.NoError(t, r.send(good))
	id := s.ID()

	tests := []struct {
		name    string
		msg     *sharingpb.SealedMessage
		wantErr error
	}{
		{"replayed sealed message", good, protocol.ErrReplay},
		{"signature 2 by another app key", sealed(t, s, otherApp, sys.Authority), protocol.ErrBadSignature},
		{"unknown session", &sharingpb.SealedMessage{SessionId: make([]byte, 16), Nonce: good.Nonce, Ciphertext: good.Ciphertext}, protocol.ErrNoSession},
		{"short session id", &sharingpb.SealedMessage{SessionId: id[:3]}, protocol.ErrMalformed},
		{"empty", &sharingpb.SealedMessage{}, protocol.ErrMalformed},
		{"garbage ciphertext", &sharingpb.SealedMessage{SessionId: id[:], Nonce: make([]byte, 12), Ciphertext: []byte("garbage")}, session.ErrOpen},
		{"bad nonce", &sharingpb.SealedMessage{SessionId: id[:], Nonce: []byte{1}, Ciphertext: good.Ciphertext}, session.ErrOpen},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, r.send(tc.msg), tc.wantErr)
		})
	}
	t.Run("sealed plaintext that is not a signed request", func(t *testing.T) {
		n, ct, err := s.Seal([]byte("not a signed request"))
		require.NoError(t, err)
		require.ErrorIs(t, r.send(&sharingpb.SealedMessage{SessionId: id[:], Nonce: n, Ciphertext: ct}), protocol.ErrMalformed)
	})
	t.Run("malformed temporary key", func(t *testing.T) {
		_, err := r.c.OpenSession(context.Background(), &sharingpb.OpenSessionRequest{EphemeralPublicKey: []byte{1, 2}})
		require.ErrorIs(t, rpcerr.FromStatus(err), protocol.ErrMalformed)
	})
	t.Run("message over the size limit", func(t *testing.T) {
		big := make([]byte, rpcnet.MaxMessageSize+1)
		_, err := r.c.Submit(context.Background(), &sharingpb.SealedMessage{SessionId: id[:], Nonce: make([]byte, 12), Ciphertext: big})
		require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	})
	// The server is still healthy.
	require.NoError(t, r.send(sealed(t, s, sys.AppKey, sys.Authority)))
}
