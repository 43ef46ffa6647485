package contract

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/mpsi-dev/mpsi/examples/recordsharing/internal/rpcerr"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/internal/rpcnet"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/protocol"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/sharingpb"
)

// Server serves a Contract over gRPC. It is safe for concurrent use.
type Server struct {
	sharingpb.UnimplementedContractServer
	c        *Contract
	peerName string
	log      *slog.Logger
}

var _ sharingpb.ContractServer = (*Server)(nil)

// NewServer returns a gRPC service for c. If peerName is not empty, only
// callers whose verified TLS client certificate has that common name are
// served. log may be nil.
func NewServer(c *Contract, peerName string, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Server{c: c, peerName: peerName, log: log}
}

// Submit implements sharingpb.ContractServer.
func (s *Server) Submit(ctx context.Context, in *sharingpb.ContractRequest) (*sharingpb.ContractResponse, error) {
	out, err := s.submit(ctx, in)
	if err != nil {
		s.log.Info("contract: request refused", "err", err)
		return nil, rpcerr.ToStatus(err)
	}
	return out, nil
}

func (s *Server) submit(ctx context.Context, in *sharingpb.ContractRequest) (*sharingpb.ContractResponse, error) {
	if s.peerName != "" {
		if name, ok := rpcnet.PeerName(ctx); !ok || name != s.peerName {
			return nil, fmt.Errorf("contract: caller %q is not the access layer: %w", name, protocol.ErrForbidden)
		}
	}
	sig1, err := protocol.ParseSignature(in.GetRequesterSignature())
	if err != nil {
		return nil, fmt.Errorf("contract: %s: %w", protocol.Sig1, err)
	}
	sig3, err := protocol.ParseSignature(in.GetAccessSignature())
	if err != nil {
		return nil, fmt.Errorf("contract: %s: %w", protocol.Sig3, err)
	}
	resp, err := s.c.Handle(ctx, protocol.SignedRequest{Request: in.GetRequest(), Requester: sig1, Hop: sig3})
	if err != nil {
		return nil, err
	}
	return &sharingpb.ContractResponse{Response: resp.Response, ContractSignature: resp.Hop[:]}, nil
}

// RotateAccessKey implements sharingpb.ContractServer: it appends a key
// rotation signed by the access layer's current and new keys.
func (s *Server) RotateAccessKey(ctx context.Context, in *sharingpb.AccessKeyRotation) (*sharingpb.AccessKeyRotationAck, error) {
	seq, err := s.rotate(ctx, in)
	if err != nil {
		s.log.Info("contract: key rotation refused", "err", err)
		return nil, rpcerr.ToStatus(err)
	}
	return &sharingpb.AccessKeyRotationAck{Seq: seq}, nil
}

func (s *Server) rotate(ctx context.Context, in *sharingpb.AccessKeyRotation) (uint64, error) {
	if s.peerName != "" {
		if name, ok := rpcnet.PeerName(ctx); !ok || name != s.peerName {
			return 0, fmt.Errorf("contract: caller %q is not the access layer: %w", name, protocol.ErrForbidden)
		}
	}
	var m protocol.SignedAccessRotation
	if err := m.UnmarshalBinary(in.GetRotation()); err != nil {
		return 0, fmt.Errorf("contract: %w", err)
	}
	return s.c.RotateAccess(ctx, m)
}
