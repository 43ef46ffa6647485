package devcert

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestMutualTLS(t *testing.T) {
	ca, err := NewCA("test CA")
	require.NoError(t, err)
	srv, err := ca.Issue("coordinator")
	require.NoError(t, err)
	cli, err := ca.Issue("hospital-a")
	require.NoError(t, err)
	other, err := NewCA("other CA")
	require.NoError(t, err)
	rogue, err := other.Issue("hospital-a")
	require.NoError(t, err)

	scfg, err := ServerConfig(ca, srv)
	require.NoError(t, err)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", scfg)
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if tc, ok := c.(*tls.Conn); ok && tc.Handshake() == nil {
					_, _ = c.Write([]byte(tc.ConnectionState().PeerCertificates[0].Subject.CommonName))
				}
			}()
		}
	}()

	dial := func(ca *CA, leaf *Leaf) (string, error) {
		ccfg, err := ClientConfig(ca, leaf)
		require.NoError(t, err)
		ccfg.ServerName = "localhost"
		c, err := tls.Dial("tcp", ln.Addr().String(), ccfg)
		if err != nil {
			return "", err
		}
		defer c.Close()
		b, err := io.ReadAll(c)
		return string(b), err
	}
	got, err := dial(ca, cli)
	require.NoError(t, err)
	require.Equal(t, "hospital-a", got)

	// A client certificate from another CA is refused by the server.
	got, _ = dial(ca, rogue)
	require.Empty(t, got)
}

func TestWriteAndLoadDir(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, WriteDir(dir, []string{"coordinator", "hospital-a"}))
	_, cert, err := LoadDir(dir, "hospital-a")
	require.NoError(t, err)
	require.NotEmpty(t, cert.Certificate)
	require.Error(t, WriteDir(dir, []string{"coordinator"}), "must not overwrite")
	require.Error(t, WriteDir(t.TempDir(), []string{"a", "a"}))
	require.Error(t, WriteDir(t.TempDir(), []string{"../x"}))
	_, _, err = LoadDir(filepath.Join(dir, "missing"), "x")
	require.Error(t, err)
}

var _ net.Conn = (*tls.Conn)(nil)

func TestWriteDirForValidity(t *testing.T) {
	dir := t.TempDir()
	notAfter, err := WriteDirFor(dir, []string{"coordinator", "hospital-a"}, 30*time.Minute)
	require.NoError(t, err)
	pool, cert, err := LoadCertDir(dir, "coordinator")
	require.NoError(t, err)
	require.True(t, cert.NotAfter.Equal(notAfter), "leaf expires with the CA")
	require.WithinDuration(t, time.Now().Add(30*time.Minute), notAfter, 5*time.Minute)
	_, err = cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	require.NoError(t, err)
	_, err = cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: notAfter.Add(time.Minute), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	require.Error(t, err, "expired after --valid-for")

	_, _, err = LoadCertDir(dir, "hospital-b")
	require.ErrorContains(t, err, `reading certificate "hospital-b"`)
	_, err = WriteDirFor(t.TempDir(), []string{"x"}, 0)
	require.ErrorContains(t, err, "not positive")
}
