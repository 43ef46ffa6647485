// Package deploy holds the deployment of the record-sharing example: Setup
// writes a deployment directory (certificates from internal/devcert, the
// Ed25519 keys of the app, access layer, contract and registration
// authority) that the role processes read, and Start runs the contract and
// the access layer in the calling process (gRPC servers on 127.0.0.1 with
// mutual TLS 1.3) for the package tests. The example's main runs each role
// as its own process instead.
package deploy
