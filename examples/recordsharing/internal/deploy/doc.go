// Package deploy starts the three components of the record-sharing example
// as separate gRPC servers on 127.0.0.1 with mutual TLS 1.3 (certificates
// from internal/devcert), and connects apps to them. The example's main and
// the tests share it.
package deploy
