package ledger

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	return priv
}

// makeLedger writes n entries and returns the path.
func makeLedger(t *testing.T, priv ed25519.PrivateKey, n int) string {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := Create(ctx, path, priv)
	require.NoError(t, err)
	for i := range n {
		_, err := l.Append(ctx, uint8(i%5+1), fmt.Appendf(nil, "payload %d", i))
		require.NoError(t, err)
	}
	require.NoError(t, l.Close())
	return path
}

// raw opens the file as an attacker would, with the append-only triggers
// dropped.
func raw(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer db.Close()
	for _, s := range append([]string{"DROP TRIGGER entries_no_update", "DROP TRIGGER entries_no_delete"}, stmts...) {
		_, err := db.Exec(s)
		require.NoError(t, err, s)
	}
}

func TestVerifyIntact(t *testing.T) {
	ctx := context.Background()
	priv := newKey(t)
	path := makeLedger(t, priv, 5)
	rep, err := Verify(ctx, path, VerifyOptions{Key: priv.Public().(ed25519.PublicKey)})
	require.NoError(t, err)
	if rep.Entries != 5 || len(rep.Problems) != 0 {
		t.Errorf("Verify = %d entries, %d problems; want 5, 0", rep.Entries, len(rep.Problems))
	}

	// Reopen, append, verify again: the chain continues.
	l, err := Open(ctx, path, priv)
	require.NoError(t, err)
	n, head := l.Head()
	require.Equal(t, uint64(5), n)
	require.Equal(t, rep.Head, head)
	e, err := l.Append(ctx, 1, []byte("after reopen"))
	require.NoError(t, err)
	require.Equal(t, uint64(6), e.Seq)
	require.Equal(t, head, e.Prev)
	var seen []uint64
	require.NoError(t, l.Scan(ctx, func(e Entry) error { seen = append(seen, e.Seq); return nil }))
	require.Equal(t, []uint64{1, 2, 3, 4, 5, 6}, seen)
	require.NoError(t, l.Close())
	rep, err = Verify(ctx, path, VerifyOptions{})
	require.NoError(t, err)
	require.Equal(t, uint64(6), rep.Entries)
}

func TestCreateRefusesExisting(t *testing.T) {
	priv := newKey(t)
	path := makeLedger(t, priv, 1)
	_, err := Create(context.Background(), path, priv)
	require.ErrorIs(t, err, ErrExists)
}

func TestTriggersRefuseUpdate(t *testing.T) {
	path := makeLedger(t, newKey(t), 2)
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(`UPDATE entries SET payload = x'00' WHERE seq = 1`)
	require.Error(t, err)
	_, err = db.Exec(`DELETE FROM entries WHERE seq = 1`)
	require.Error(t, err)
}

func TestVerifyDetectsTampering(t *testing.T) {
	ctx := context.Background()
	priv := newKey(t)
	other := newKey(t)
	// forged hash for entry 2 with new contents, computed as an attacker can.
	forged := func(path string) string {
		l, err := Open(ctx, makeLedger(t, priv, 4), priv)
		require.NoError(t, err)
		defer l.Close()
		var prev Hash
		require.NoError(t, l.Scan(ctx, func(e Entry) error {
			if e.Seq == 1 {
				prev = e.Hash
			}
			return nil
		}))
		h := EntryHash(2, 2, prev, []byte("forged"))
		return fmt.Sprintf(`UPDATE entries SET payload = 'forged', hash = x'%x' WHERE seq = 2`, h[:])
	}
	tests := []struct {
		name  string
		stmts func(path string) []string
		want  []error
		key   ed25519.PublicKey
	}{
		{"altered payload", func(string) []string {
			return []string{`UPDATE entries SET payload = 'other' WHERE seq = 2`}
		}, []error{ErrAltered}, nil},
		{"altered kind", func(string) []string {
			return []string{`UPDATE entries SET kind = 9 WHERE seq = 3`}
		}, []error{ErrAltered}, nil},
		{"altered payload with recomputed hash", func(p string) []string {
			return []string{forged(p)}
		}, []error{ErrBrokenChain}, nil},
		{"reordered", func(string) []string {
			return []string{
				`UPDATE entries SET seq = 100 WHERE seq = 2`,
				`UPDATE entries SET seq = 2 WHERE seq = 3`,
				`UPDATE entries SET seq = 3 WHERE seq = 100`,
			}
		}, []error{ErrBrokenChain, ErrAltered}, nil},
		{"removed in the middle", func(string) []string {
			return []string{`DELETE FROM entries WHERE seq = 2`}
		}, []error{ErrMissing, ErrBrokenChain}, nil},
		{"removed at the end", func(string) []string {
			return []string{`DELETE FROM entries WHERE seq = 4`}
		}, []error{ErrCheckpoint}, nil},
		{"removed at the end, checkpoint rewritten", func(string) []string {
			return []string{`DELETE FROM entries WHERE seq = 4`,
				`UPDATE checkpoint SET size = 3, head = (SELECT hash FROM entries WHERE seq = 3)`}
		}, []error{ErrCheckpoint}, nil},
		{"checkpoint removed", func(string) []string {
			return []string{`DELETE FROM checkpoint`}
		}, []error{ErrCheckpoint}, nil},
		{"contract key replaced", func(string) []string {
			return []string{fmt.Sprintf(`UPDATE meta SET value = x'%x' WHERE name = 'contract_key'`, []byte(other.Public().(ed25519.PublicKey)))}
		}, []error{ErrWrongKey}, priv.Public().(ed25519.PublicKey)},
		{"contract key replaced, not pinned", func(string) []string {
			return []string{fmt.Sprintf(`UPDATE meta SET value = x'%x' WHERE name = 'contract_key'`, []byte(other.Public().(ed25519.PublicKey)))}
		}, []error{ErrBrokenChain, ErrCheckpoint}, nil},
		{"hash column truncated", func(string) []string {
			return []string{`UPDATE entries SET hash = x'00' WHERE seq = 1`}
		}, []error{ErrAltered}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := makeLedger(t, priv, 4)
			raw(t, path, tc.stmts(path)...)
			_, err := Verify(ctx, path, VerifyOptions{Key: tc.key})
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorIs(t, err, w)
			}
			_, err = Open(ctx, path, priv)
			require.Error(t, err, "Open must refuse a tampered ledger")
		})
	}
}

func TestVerifyCheckEntry(t *testing.T) {
	path := makeLedger(t, newKey(t), 3)
	bad := errors.New("refused")
	_, err := Verify(context.Background(), path, VerifyOptions{CheckEntry: func(e Entry) error {
		if e.Seq == 2 {
			return bad
		}
		return nil
	}})
	require.ErrorIs(t, err, ErrBadEntry)
	require.ErrorIs(t, err, bad)
}
