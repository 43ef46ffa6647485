package rpcerr

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpsi-dev/mpsi/examples/recordsharing/protocol"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/session"
)

// Domain is the ErrorInfo domain of the example's errors.
const Domain = "recordsharing.examples.mpsi.dev"

type mapping struct {
	err    error
	code   codes.Code
	reason string
}

// table lists the sentinels in the order they are tested.
func table() []mapping {
	return []mapping{
		{protocol.ErrMalformed, codes.InvalidArgument, "MALFORMED"},
		{protocol.ErrBadSignature, codes.Unauthenticated, "BAD_SIGNATURE"},
		{session.ErrOpen, codes.Unauthenticated, "SEALED_PAYLOAD"},
		{protocol.ErrNoSession, codes.Unauthenticated, "NO_SESSION"},
		{protocol.ErrStale, codes.FailedPrecondition, "STALE"},
		{protocol.ErrReplay, codes.AlreadyExists, "REPLAY"},
		{protocol.ErrBusy, codes.ResourceExhausted, "BUSY"},
		{protocol.ErrMismatch, codes.DataLoss, "MISMATCH"},
		{protocol.ErrSourceAddress, codes.PermissionDenied, "SOURCE_ADDRESS"},
		{protocol.ErrForbidden, codes.PermissionDenied, "FORBIDDEN"},
		{protocol.ErrNotRegistered, codes.PermissionDenied, "NOT_REGISTERED"},
		{protocol.ErrNotFound, codes.NotFound, "NOT_FOUND"},
		{protocol.ErrExists, codes.AlreadyExists, "EXISTS"},
		{protocol.ErrNotApproved, codes.PermissionDenied, "NOT_APPROVED"},
		{protocol.ErrRetired, codes.PermissionDenied, "KEY_RETIRED"},
	}
}

// ToStatus converts err to a gRPC status error. It returns nil for nil.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok && !isOurs(err) {
		return err
	}
	for _, m := range table() {
		if errors.Is(err, m.err) {
			st := status.New(m.code, err.Error())
			if d, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: m.reason, Domain: Domain}); derr == nil {
				st = d
			}
			return st.Err()
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "canceled")
	}
	return status.Error(codes.Internal, "internal error")
}

func isOurs(err error) bool {
	for _, m := range table() {
		if errors.Is(err, m.err) {
			return true
		}
	}
	return false
}

// FromStatus converts a gRPC status error back to an error wrapping the
// matching sentinel, keeping the remote message. Other errors are returned
// wrapped unchanged.
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.GetDomain() != Domain {
			continue
		}
		for _, m := range table() {
			if m.reason == info.GetReason() && m.code == st.Code() {
				return &RemoteError{Message: st.Message(), Err: m.err}
			}
		}
	}
	return fmt.Errorf("rpc: %s: %s", st.Code(), st.Message())
}

// RemoteError is an error reported by the remote side. Its text is the
// remote message; it unwraps to the matching sentinel.
type RemoteError struct {
	Message string // the remote error text
	Err     error  // the sentinel the remote error wrapped
}

// Error returns the remote message.
func (e *RemoteError) Error() string { return e.Message }

// Unwrap returns the sentinel.
func (e *RemoteError) Unwrap() error { return e.Err }
