package rpcerr_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpsi-dev/mpsi/examples/recordsharing/internal/rpcerr"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/protocol"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/session"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		err  error
		code codes.Code
	}{
		{protocol.ErrMalformed, codes.InvalidArgument},
		{protocol.ErrBadSignature, codes.Unauthenticated},
		{session.ErrOpen, codes.Unauthenticated},
		{protocol.ErrNoSession, codes.Unauthenticated},
		{protocol.ErrStale, codes.FailedPrecondition},
		{protocol.ErrReplay, codes.AlreadyExists},
		{protocol.ErrBusy, codes.ResourceExhausted},
		{protocol.ErrMismatch, codes.DataLoss},
		{protocol.ErrSourceAddress, codes.PermissionDenied},
		{protocol.ErrForbidden, codes.PermissionDenied},
		{protocol.ErrNotRegistered, codes.PermissionDenied},
		{protocol.ErrNotFound, codes.NotFound},
		{protocol.ErrExists, codes.AlreadyExists},
	}
	for _, tc := range tests {
		t.Run(tc.err.Error(), func(t *testing.T) {
			wrapped := fmt.Errorf("contract: detail: %w", tc.err)
			st := rpcerr.ToStatus(wrapped)
			require.Equal(t, tc.code, status.Code(st))
			back := rpcerr.FromStatus(st)
			require.ErrorIs(t, back, tc.err)
			require.Equal(t, wrapped.Error(), back.Error())
			for _, other := range tests {
				if other.err != tc.err {
					require.NotErrorIs(t, back, other.err)
				}
			}
			// A second hop keeps the sentinel.
			require.ErrorIs(t, rpcerr.FromStatus(rpcerr.ToStatus(fmt.Errorf("access: %w", back))), tc.err)
		})
	}
}

func TestUnknown(t *testing.T) {
	st := rpcerr.ToStatus(errors.New("secret detail"))
	require.Equal(t, codes.Internal, status.Code(st))
	require.NotContains(t, st.Error(), "secret detail")
	require.Equal(t, codes.DeadlineExceeded, status.Code(rpcerr.ToStatus(context.DeadlineExceeded)))
	require.Nil(t, rpcerr.ToStatus(nil))
	require.Nil(t, rpcerr.FromStatus(nil))
	// A status without our details maps to no sentinel.
	err := rpcerr.FromStatus(status.Error(codes.PermissionDenied, "x"))
	require.NotErrorIs(t, err, protocol.ErrForbidden)
	require.Contains(t, err.Error(), "PermissionDenied")
}
