// Package rpcerr maps the example's sentinel errors to gRPC status errors
// and back, so that callers branch with errors.Is and never import
// grpc/status. Unknown errors become codes.Internal with a generic message;
// the caller logs the full error.
package rpcerr
