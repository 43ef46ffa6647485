package main

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/coordinator/store"
	"github.com/mpsi-dev/mpsi/internal/devcert"
)

// A 0-byte --db is history lost (a truncated file, a wrong path made by
// touch): the coordinator refuses it unless --init.
func TestCoordinatorRefusesEmptyDB(t *testing.T) {
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	_, errs, code := runIn(t, "dev-certs", "--out", certs, "--names", "coordinator,hospital-a")
	require.Equal(t, 0, code, errs)
	db := filepath.Join(dir, "mpsi.db")
	require.NoError(t, os.WriteFile(db, nil, 0o600))
	_, errs, code = runIn(t, "coordinator", "--listen", "127.0.0.1:0", "--certs", certs, "--db", db)
	require.NotEqual(t, 0, code)
	require.Contains(t, errs, db)
	require.Contains(t, errs, "--init")
	fi, err := os.Stat(db)
	require.NoError(t, err)
	require.Zero(t, fi.Size(), "the refused file is untouched")
}

// audit verify opens the database read-only: it leaves the file as it was.
func TestAuditVerifyReadOnly(t *testing.T) {
	ctx := t.Context()
	db := filepath.Join(t.TempDir(), "mpsi.db")
	st, err := store.Open(ctx, db)
	require.NoError(t, err)
	require.NoError(t, st.CreateSession(ctx, "s1", []byte("{}"), "admin"))
	require.NoError(t, st.Close())
	before, err := os.ReadFile(db)
	require.NoError(t, err)

	out, errs, code := runIn(t, "audit", "verify", "--db", db)
	require.Equal(t, 0, code, errs)
	require.Contains(t, out, "verified")
	after, err := os.ReadFile(db)
	require.NoError(t, err)
	require.True(t, bytes.Equal(before, after), "audit verify changed the database")

	_, errs, code = runIn(t, "audit", "verify", "--db", db+".missing")
	require.NotEqual(t, 0, code)
	_, err = os.Stat(db + ".missing")
	require.ErrorIs(t, err, os.ErrNotExist, "audit verify never creates a database: %s", errs)
}

// The coordinator refuses to start with its own certificate expired.
func TestCoordinatorRefusesExpiredCert(t *testing.T) {
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	require.NoError(t, devcert.WriteDir(certs, []string{"coordinator", "admin"}))
	// Replace the coordinator's certificate by one for the same key that
	// was valid from two hours ago until an hour ago.
	kb, err := os.ReadFile(filepath.Join(certs, "coordinator-key.pem"))
	require.NoError(t, err)
	blk, _ := pem.Decode(kb)
	require.NotNil(t, blk)
	key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	require.NoError(t, err)
	signer := key.(crypto.Signer)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "coordinator"}, DNSNames: []string{"coordinator"},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(certs, "coordinator.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	db := filepath.Join(dir, "mpsi.db")
	_, errs, code := runIn(t, "coordinator", "--listen", "127.0.0.1:0", "--certs", certs, "--db", db)
	require.NotEqual(t, 0, code)
	require.Contains(t, errs, "coordinator.pem")
	require.Contains(t, errs, "expired at")
	require.Contains(t, errs, "--allow-expired-cert")
	require.NoFileExists(t, db, "refused before the database is touched")
}

func TestRerunID(t *testing.T) {
	for _, tc := range []struct {
		id, base string
		next     int
	}{
		{"cohort", "cohort", 1},
		{"cohort-r1", "cohort", 2},
		{"cohort-r41", "cohort", 42},
		{"cohort-r0", "cohort-r0", 1},
		{"cohort-r", "cohort-r", 1},
		{"cohort-r12345", "cohort-r12345", 1},
		{"a-r1-r2", "a-r1", 3},
	} {
		base, next := rerunID(tc.id)
		require.Equal(t, tc.base, base, tc.id)
		require.Equal(t, tc.next, next, tc.id)
	}
}
