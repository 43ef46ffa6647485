package upload

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestStoreAtomic(t *testing.T) {
	dir := t.TempDir()
	rec := SyntheticECG("store", 2)
	payload, infos, digest := rec.payload()
	req := &Request{ClientID: "c", Record: rec.Name, Files: infos, Digest: digest, Mode: ModeUnary}
	req.JobID[0] = 9
	name, err := storeRecording(dir, req, SuiteAES256GCM, payload, time.Now())
	require.NoError(t, err)
	m, got, err := ReadStored(dir, name)
	require.NoError(t, err)
	require.Equal(t, rec, got)
	require.Equal(t, "AES-256-GCM", m.Suite)
	sum := sha256.Sum256(payload)
	require.Equal(t, sum[:], mustHex(t, m.SHA256))

	// Storing under a name that exists fails and leaves nothing behind.
	_, err = storeRecording(dir, req, SuiteAES256GCM, payload, time.Now())
	require.ErrorIs(t, err, ErrExists)
	// A failure midway (a file name that cannot be created) removes the
	// temporary directory.
	bad := *req
	bad.JobID[0] = 10
	bad.Files = append([]FileInfo(nil), req.Files...)
	bad.Files[1].Name = strings.Repeat("x", 300) // longer than NAME_MAX
	_, err = storeRecording(dir, &bad, SuiteAES256GCM, payload, time.Now())
	require.Error(t, err)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "only the first recording is visible")
	require.Equal(t, name, entries[0].Name())

	_, _, err = ReadStored(dir, "../etc")
	require.ErrorIs(t, err, ErrMalformed)
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}
