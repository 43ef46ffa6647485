package main

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
)

// serverTLS demands TLS 1.3 and a client certificate issued by pool's CA.
func serverTLS(pool *x509.CertPool, cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
}

// clientTLS presents cert and trusts only pool's CA, over TLS 1.3.
func clientTLS(pool *x509.CertPool, cert tls.Certificate) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, RootCAs: pool}
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
