package pg_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/party/source/pg"
)

// These run without a server.
func TestConnectErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := pg.Connect(ctx, pg.Config{URL: "postgres://u:s3cret@localhost/db", Query: "SELECT 1"})
	require.ErrorIs(t, err, pg.ErrPasswordInURL)
	require.NotContains(t, err.Error(), "s3cret")
	_, err = pg.Connect(ctx, pg.Config{URL: "postgres://u@localhost/db?password=s3cret", Query: "SELECT 1"})
	require.ErrorIs(t, err, pg.ErrPasswordInURL)
	_, err = pg.Connect(ctx, pg.Config{URL: "mysql://u@localhost/db", Query: "SELECT 1"})
	require.ErrorIs(t, err, pg.ErrConnect)
	_, err = pg.Connect(ctx, pg.Config{URL: "postgres://u@localhost/db"})
	require.ErrorIs(t, err, pg.ErrQuery)

	// Unreachable: a socket directory with no server in it.
	dir := t.TempDir()
	_, err = pg.Connect(ctx, pg.Config{URL: "postgres://reader@/warehouse?host=" + dir, Query: "SELECT 1"})
	require.ErrorIs(t, err, pg.ErrConnect)
	require.ErrorContains(t, err, "reader@"+dir+"/warehouse")
	_, err = pg.Connect(ctx, pg.Config{URL: "postgres://reader@/warehouse?host=" + dir, Query: "SELECT 1", PasswordFile: filepath.Join(dir, "none")})
	require.ErrorIs(t, err, pg.ErrConnect)
}
