package deploy

import (
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mpsi-dev/mpsi/examples/recordsharing/protocol"
	"github.com/mpsi-dev/mpsi/internal/devcert"
)

// Files of a deployment directory written by Setup. Each component reads
// only its own private key; public keys are in NAME.pub (hex).
const (
	FileApp       = "app"       // the app's key (signature 2)
	FileAccess    = "access"    // the access layer's current key
	FileContract  = "contract"  // the contract's key
	FileAuthority = "authority" // the registration authority's key
	// FileRotations lists the access key rotations, one hex encoding a line.
	FileRotations = "access-rotations"
)

// Setup writes a new deployment to dir: a CA and TLS certificates for the
// three components (devcert.WriteDir), and an Ed25519 key pair for the
// app, the access layer, the contract and the registration authority
// (NAME.key as PKCS #8 PEM with mode 0600, NAME.pub as hex). It refuses to
// overwrite anything.
func Setup(dir string) error {
	if err := devcert.WriteDir(dir, []string{NameApp, NameAccess, NameContract}); err != nil {
		return err
	}
	for _, n := range []string{FileApp, FileAccess, FileContract, FileAuthority} {
		k, err := protocol.GenerateKeyPair()
		if err != nil {
			return err
		}
		if err := SaveKey(dir, n, k); err != nil {
			return err
		}
		pub := k.Public()
		if err := os.WriteFile(filepath.Join(dir, n+".pub"), []byte(hex.EncodeToString(pub[:])+"\n"), 0o644); err != nil {
			return fmt.Errorf("deploy: %w", err)
		}
	}
	return nil
}

// SaveKey writes k to dir/NAME.key (PKCS #8 PEM, mode 0600) through a
// temporary file and a rename, so that a crash leaves the old or the new
// key, never half of one.
func SaveKey(dir, name string, k *protocol.KeyPair) error {
	der, err := x509.MarshalPKCS8PrivateKey(k.PrivateKey())
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	tmp, err := os.CreateTemp(dir, name+".key.*")
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	_, werr := tmp.Write(b)
	if err := errors.Join(werr, tmp.Sync(), tmp.Close()); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("deploy: writing key %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name+".key")); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("deploy: %w", err)
	}
	return nil
}

// LoadKey reads dir/NAME.key.
func LoadKey(dir, name string) (*protocol.KeyPair, error) {
	path := filepath.Join(dir, name+".key")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("deploy: %s: no PRIVATE KEY PEM block", path)
	}
	key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("deploy: %s: %w", path, err)
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("deploy: %s: not an Ed25519 key", path)
	}
	return protocol.KeyPairFromPrivate(priv), nil
}

// LoadPublic reads dir/NAME.pub, written at setup. For the access layer
// it is the key at deployment, which rotations start from.
func LoadPublic(dir, name string) (protocol.Key, error) {
	path := filepath.Join(dir, name+".pub")
	b, err := os.ReadFile(path)
	if err != nil {
		return protocol.Key{}, fmt.Errorf("deploy: %w", err)
	}
	return ParseKey(path, strings.TrimSpace(string(b)))
}

// ParseKey decodes a hex public key; where names the source in errors.
func ParseKey(where, s string) (protocol.Key, error) {
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) != protocol.KeySize {
		return protocol.Key{}, fmt.Errorf("deploy: %s: want %d bytes of hex", where, protocol.KeySize)
	}
	return protocol.Key(raw), nil
}

// LoadRotations reads dir/access-rotations; a missing file is an empty
// list.
func LoadRotations(dir string) ([][]byte, error) {
	path := filepath.Join(dir, FileRotations)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	return parseRotations(path, b)
}

// parseRotations parses one hex-encoded rotation per line; errors name the
// file and line.
func parseRotations(path string, b []byte) ([][]byte, error) {
	var out [][]byte
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		raw, err := hex.DecodeString(line)
		if err != nil || len(raw) == 0 {
			return nil, fmt.Errorf("deploy: %s line %d: not hex", path, i+1)
		}
		out = append(out, raw)
	}
	return out, nil
}

// AppendRotation adds one rotation to dir/access-rotations and syncs it.
func AppendRotation(dir string, rotation []byte) error {
	f, err := os.OpenFile(filepath.Join(dir, FileRotations), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	_, werr := f.WriteString(hex.EncodeToString(rotation) + "\n")
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("deploy: appending rotation: %w", err)
	}
	return nil
}

// TLSFromDir returns the TLS 1.3 server and client configurations of the
// component name from a deployment directory: its certificate, and only the
// deployment's CA trusted (client certificates required).
func TLSFromDir(dir, name string) (server, client *tls.Config, err error) {
	pool, cert, err := devcert.LoadDir(dir, name)
	if err != nil {
		return nil, nil, err
	}
	server = &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	client = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, RootCAs: pool}
	return server, client, nil
}

// LoadPublicFromKey reads dir/NAME.key and returns only its public key.
func LoadPublicFromKey(dir, name string) (protocol.Key, error) {
	k, err := LoadKey(dir, name)
	if err != nil {
		return protocol.Key{}, err
	}
	defer k.Destroy()
	return k.Public(), nil
}
