// Package authn names the party at the other end of a gRPC call from its
// verified mTLS certificate.
package authn

import (
	"context"
	"errors"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// ErrUnauthenticated reports a call without a verified client certificate.
var ErrUnauthenticated = errors.New("authn: no verified client certificate")

// PeerName returns the subject common name of the caller's verified client
// certificate.
func PeerName(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return "", ErrUnauthenticated
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return "", ErrUnauthenticated
	}
	name := ti.State.VerifiedChains[0][0].Subject.CommonName
	if name == "" {
		return "", ErrUnauthenticated
	}
	return name, nil
}
