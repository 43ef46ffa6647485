// Package rpcnet holds the gRPC plumbing shared by the example's
// components: TLS 1.3 credentials, message size limits, a recovery
// interceptor and a dialer that can bind a chosen loopback source address.
package rpcnet
