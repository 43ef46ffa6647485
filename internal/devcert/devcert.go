// Package devcert makes throwaway certificate authorities and certificates so
// that demos, examples and tests run over real TLS 1.3 with mutual
// authentication. Keys are ECDSA P-256 from crypto/rand; certificates are
// valid for a short period and, for every name, for 127.0.0.1, ::1 and
// localhost as well as the name itself.
//
// This is for development only: a real deployment uses certificates issued by
// the operator's own CA (see README.md).
package devcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Validity is how long certificates made by this package are valid.
const Validity = 7 * 24 * time.Hour

// CA is a throwaway certificate authority. It is safe for concurrent use.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
}

// Leaf is a certificate issued by a CA with its private key.
type Leaf struct {
	Name    string
	CertPEM []byte
	KeyPEM  []byte
}

// NewCA creates a self-signed CA whose subject common name is name, valid
// for [Validity].
func NewCA(name string) (*CA, error) { return NewCAFor(name, Validity) }

// NewCAFor creates a self-signed CA whose subject common name is name,
// valid (like every certificate it issues) for validity from now.
func NewCAFor(name string, validity time.Duration) (*CA, error) {
	if validity <= 0 {
		return nil, fmt.Errorf("devcert: validity %s is not positive", validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devcert: generating CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("devcert: creating CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: key}, nil
}

// Issue makes a certificate for name, usable as both a TLS server and client
// certificate, with name, localhost, 127.0.0.1 and ::1 as subject alternative
// names and name as the subject common name. It expires with the CA.
func (ca *CA) Issue(name string) (*Leaf, error) {
	if name == "" {
		return nil, errors.New("devcert: empty name")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devcert: generating key for %q: %w", name, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     ca.Cert.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{name, "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("devcert: issuing %q: %w", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Leaf{
		Name:    name,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// Pool returns a certificate pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// TLSCertificate returns the leaf as a tls.Certificate.
func (l *Leaf) TLSCertificate() (tls.Certificate, error) {
	return tls.X509KeyPair(l.CertPEM, l.KeyPEM)
}

// ServerConfig returns a TLS 1.3 server configuration presenting leaf and
// requiring client certificates issued by ca.
func ServerConfig(ca *CA, leaf *Leaf) (*tls.Config, error) {
	cert, err := leaf.TLSCertificate()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    ca.Pool(),
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}, nil
}

// ClientConfig returns a TLS 1.3 client configuration presenting leaf and
// trusting only ca.
func ClientConfig(ca *CA, leaf *Leaf) (*tls.Config, error) {
	cert, err := leaf.TLSCertificate()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      ca.Pool(),
	}, nil
}

// WriteDir creates ca and a certificate for each name and writes them to dir
// as ca.pem, NAME.pem and NAME-key.pem (keys with mode 0600). It refuses to
// overwrite existing files. The certificates are valid for [Validity].
func WriteDir(dir string, names []string) error {
	_, err := WriteDirFor(dir, names, Validity)
	return err
}

// WriteDirFor is [WriteDir] with certificates valid for validity from now;
// it returns the time they expire.
func WriteDirFor(dir string, names []string, validity time.Duration) (time.Time, error) {
	if len(names) == 0 {
		return time.Time{}, errors.New("devcert: no names given")
	}
	ca, err := NewCAFor("mpsi dev CA", validity)
	if err != nil {
		return time.Time{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return time.Time{}, fmt.Errorf("devcert: %w", err)
	}
	files := map[string][]byte{"ca.pem": ca.CertPEM}
	keys := map[string]bool{}
	order := []string{"ca.pem"}
	for _, n := range names {
		if n == "" || n == "ca" || filepath.Base(n) != n {
			return time.Time{}, fmt.Errorf("devcert: invalid name %q", n)
		}
		if _, dup := files[n+".pem"]; dup {
			return time.Time{}, fmt.Errorf("devcert: duplicate name %q", n)
		}
		leaf, err := ca.Issue(n)
		if err != nil {
			return time.Time{}, err
		}
		files[n+".pem"], files[n+"-key.pem"] = leaf.CertPEM, leaf.KeyPEM
		keys[n+"-key.pem"] = true
		order = append(order, n+".pem", n+"-key.pem")
	}
	for _, f := range order {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return time.Time{}, fmt.Errorf("devcert: %s already exists; refusing to overwrite", filepath.Join(dir, f))
		}
	}
	for _, f := range order {
		mode := os.FileMode(0o644)
		if keys[f] {
			mode = 0o600
		}
		if err := os.WriteFile(filepath.Join(dir, f), files[f], mode); err != nil {
			return time.Time{}, fmt.Errorf("devcert: %w", err)
		}
	}
	return ca.Cert.NotAfter, nil
}

// LoadDir reads ca.pem, NAME.pem and NAME-key.pem from dir (as written by
// WriteDir or by an operator's own CA) and returns the CA pool and the
// certificate for name.
func LoadDir(dir, name string) (*x509.CertPool, tls.Certificate, error) {
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("devcert: reading CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, tls.Certificate{}, fmt.Errorf("devcert: %s holds no PEM certificate", filepath.Join(dir, "ca.pem"))
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem"))
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("devcert: loading certificate %q from %s: %w", name, dir, err)
	}
	return pool, cert, nil
}

// LoadCertDir reads ca.pem and NAME.pem (no private key) from dir, for
// checking what name signed; the certificate's common name must be name.
func LoadCertDir(dir, name string) (*x509.CertPool, *x509.Certificate, error) {
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, nil, fmt.Errorf("devcert: reading CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, fmt.Errorf("devcert: %s holds no PEM certificate", filepath.Join(dir, "ca.pem"))
	}
	path := filepath.Join(dir, name+".pem")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("devcert: reading certificate %q: %w", name, err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("devcert: %s holds no PEM certificate", path)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("devcert: %s: %w", path, err)
	}
	if cert.Subject.CommonName != name {
		return nil, nil, fmt.Errorf("devcert: %s names %q, not %q", path, cert.Subject.CommonName, name)
	}
	return pool, cert, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic("devcert: crypto/rand failed: " + err.Error())
	}
	return n
}
