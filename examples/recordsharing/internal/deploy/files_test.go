package deploy

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSetupAndKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "d")
	require.NoError(t, Setup(dir))
	require.Error(t, Setup(dir), "Setup refuses to overwrite")
	for _, n := range []string{FileApp, FileAccess, FileContract, FileAuthority} {
		k, err := LoadKey(dir, n)
		require.NoError(t, err)
		pub, err := LoadPublic(dir, n)
		require.NoError(t, err)
		require.Equal(t, pub, k.Public())
		st, err := os.Stat(filepath.Join(dir, n+".key"))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	}
	for _, n := range []string{NameApp, NameAccess, NameContract} {
		_, _, err := TLSFromDir(dir, n)
		require.NoError(t, err)
	}
	// SaveKey replaces a key in place.
	k, err := LoadKey(dir, FileApp)
	require.NoError(t, err)
	require.NoError(t, SaveKey(dir, FileAccess, k))
	got, err := LoadPublicFromKey(dir, FileAccess)
	require.NoError(t, err)
	require.Equal(t, k.Public(), got)

	// Bad files are named.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.key"), []byte("not pem"), 0o600))
	_, err = LoadKey(dir, "bad")
	require.ErrorContains(t, err, "bad.key")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.pub"), []byte("abcd\n"), 0o644))
	_, err = LoadPublic(dir, "bad")
	require.ErrorContains(t, err, "bad.pub")
}

func TestRotationsFile(t *testing.T) {
	dir := t.TempDir()
	got, err := LoadRotations(dir)
	require.NoError(t, err)
	require.Empty(t, got, "no file: no rotations")
	require.NoError(t, AppendRotation(dir, []byte{1, 2}))
	require.NoError(t, AppendRotation(dir, []byte{3}))
	got, err = LoadRotations(dir)
	require.NoError(t, err)
	require.Equal(t, [][]byte{{1, 2}, {3}}, got)
	_, err = parseRotations("f", []byte("0102\nzz\n"))
	require.ErrorContains(t, err, "f line 2")
}

func FuzzParseRotations(f *testing.F) {
	f.Add([]byte("0102\n03\n"))
	f.Add([]byte("\n\nzz"))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := parseRotations("fuzz", data)
		if err != nil {
			return
		}
		var b strings.Builder
		for _, r := range out {
			if len(r) == 0 {
				t.Fatal("empty rotation accepted")
			}
			b.WriteString(hex.EncodeToString(r) + "\n")
		}
		again, err := parseRotations("fuzz", []byte(b.String()))
		if err != nil || len(again) != len(out) {
			t.Fatal("re-encoded rotations do not parse back")
		}
		for i := range out {
			if !bytes.Equal(out[i], again[i]) {
				t.Fatal("rotation changed")
			}
		}
	})
}
