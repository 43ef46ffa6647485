package authn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

func TestPeerName(t *testing.T) {
	withState := func(st tls.ConnectionState) context.Context {
		return peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{State: st}})
	}
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "dr-lee"}}
	tests := []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"no peer", context.Background(), ""},
		{"no auth info", peer.NewContext(context.Background(), &peer.Peer{}), ""},
		{"unverified certificate only", withState(tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}), ""},
		{"empty common name", withState(tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{}}}}), ""},
		{"verified", withState(tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}}), "dr-lee"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PeerName(tc.ctx)
			if tc.want == "" {
				require.ErrorIs(t, err, ErrUnauthenticated)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
