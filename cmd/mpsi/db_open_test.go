package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/coordinator/store"
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
