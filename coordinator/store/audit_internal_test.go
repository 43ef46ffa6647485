package store

import (
	"bytes"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tamperFixture writes a store with six audit events and returns its path:
//
//	1 session.created s1   2 party.joined s1   3 party.joined s1
//	4 session.running s1   5 session.released s1   6 coordinator.stopped
func tamperFixture(t *testing.T) string {
	t.Helper()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "mpsi.db")
	s, err := Open(ctx, path)
	require.NoError(t, err)
	require.NoError(t, s.CreateSession(ctx, "s1", []byte("spec"), "alice"))
	require.NoError(t, s.Append(ctx, "party.joined", "s1", "alice", "party 1"))
	require.NoError(t, s.Append(ctx, "party.joined", "s1", "bob", "party 2"))
	require.NoError(t, s.SetRunning(ctx, "s1"))
	require.NoError(t, s.Complete(ctx, "s1", []byte("result"), []byte("sig")))
	require.NoError(t, s.Append(ctx, "coordinator.stopped", "", "coordinator", ""))
	n, err := s.VerifyAudit(ctx)
	require.NoError(t, err)
	require.Equal(t, 6, n)
	require.NoError(t, s.Close())
	return path
}

type row struct {
	seq                                int64
	time, kind, session, actor, detail string
	prev, hash                         []byte
}

func readRow(t *testing.T, db *sql.DB, seq int64) row {
	t.Helper()
	r := row{seq: seq}
	require.NoError(t, db.QueryRowContext(t.Context(),
		"SELECT time, kind, session, actor, detail, prev, hash FROM audit WHERE seq = ?", seq).
		Scan(&r.time, &r.kind, &r.session, &r.actor, &r.detail, &r.prev, &r.hash))
	return r
}

func writeRow(t *testing.T, db *sql.DB, r row) {
	t.Helper()
	_, err := db.ExecContext(t.Context(),
		"INSERT OR REPLACE INTO audit (seq, time, kind, session, actor, detail, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		r.seq, r.time, r.kind, r.session, r.actor, r.detail, r.prev, r.hash)
	require.NoError(t, err)
}

func exec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	_, err := db.ExecContext(t.Context(), q, args...)
	require.NoError(t, err, q)
}

// forge returns r with a correctly computed hash, as an attacker who knows
// the (public, unkeyed) encoding would write it.
func forge(r row) row {
	r.hash = eventHash(r.seq, r.time, r.kind, r.session, r.actor, r.detail, r.prev)
	return r
}

func TestVerifyAuditDetectsTampering(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, db *sql.DB)
		wantSeq string // the seq the error must name
	}{
		{"altered kind", func(t *testing.T, db *sql.DB) {
			exec(t, db, "UPDATE audit SET kind = 'party.left' WHERE seq = 3")
		}, "seq 3:"},
		{"altered detail", func(t *testing.T, db *sql.DB) {
			exec(t, db, "UPDATE audit SET detail = 'party 3' WHERE seq = 3")
		}, "seq 3:"},
		{"altered session", func(t *testing.T, db *sql.DB) {
			exec(t, db, "UPDATE audit SET session = 's2' WHERE seq = 2")
		}, "seq 2:"},
		{"altered actor", func(t *testing.T, db *sql.DB) {
			exec(t, db, "UPDATE audit SET actor = 'mallory' WHERE seq = 2")
		}, "seq 2:"},
		{"altered time", func(t *testing.T, db *sql.DB) {
			exec(t, db, "UPDATE audit SET time = '2001-02-03T04:05:06.789Z' WHERE seq = 4")
		}, "seq 4:"},
		{"non-canonical time", func(t *testing.T, db *sql.DB) {
			r := readRow(t, db, 4)
			ts, ok := parseTime(r.time)
			require.True(t, ok)
			exec(t, db, "UPDATE audit SET time = ? WHERE seq = 4", ts.In(time.FixedZone("X", 3600)).Format(time.RFC3339Nano))
		}, "seq 4:"},
		{"malformed time", func(t *testing.T, db *sql.DB) {
			exec(t, db, "UPDATE audit SET time = 'yesterday' WHERE seq = 4")
		}, "seq 4:"},
		{"altered prev", func(t *testing.T, db *sql.DB) {
			exec(t, db, "UPDATE audit SET prev = zeroblob(32) WHERE seq = 3")
		}, "seq 3:"},
		{"altered hash", func(t *testing.T, db *sql.DB) {
			exec(t, db, "UPDATE audit SET hash = zeroblob(32) WHERE seq = 3")
		}, "seq 3:"},
		{"altered last hash", func(t *testing.T, db *sql.DB) {
			exec(t, db, "UPDATE audit SET hash = zeroblob(32) WHERE seq = 6")
		}, "seq 6:"},
		{"altered and re-hashed", func(t *testing.T, db *sql.DB) {
			r := readRow(t, db, 3)
			r.detail = "party 3"
			writeRow(t, db, forge(r))
		}, "seq 4:"},
		{"reordered", func(t *testing.T, db *sql.DB) {
			a, b := readRow(t, db, 2), readRow(t, db, 3)
			a.seq, b.seq = 3, 2
			writeRow(t, db, a)
			writeRow(t, db, b)
		}, "seq 2:"},
		{"reordered and re-hashed", func(t *testing.T, db *sql.DB) {
			a, b := readRow(t, db, 2), readRow(t, db, 3)
			a.seq, b.seq = 3, 2
			b.prev = readRow(t, db, 1).hash
			b = forge(b)
			a.prev = b.hash
			writeRow(t, db, forge(a))
			writeRow(t, db, b)
		}, "seq 4:"},
		{"removed first", func(t *testing.T, db *sql.DB) {
			exec(t, db, "DELETE FROM audit WHERE seq = 1")
		}, "seq 2:"},
		{"removed middle", func(t *testing.T, db *sql.DB) {
			exec(t, db, "DELETE FROM audit WHERE seq = 3")
		}, "seq 4:"},
		{"removed last", func(t *testing.T, db *sql.DB) {
			exec(t, db, "DELETE FROM audit WHERE seq = 6")
		}, "seq 6:"},
		{"removed all", func(t *testing.T, db *sql.DB) {
			exec(t, db, "DELETE FROM audit")
		}, "seq 1:"},
		{"inserted at end", func(t *testing.T, db *sql.DB) {
			r := row{seq: 7, time: formatTime(now()), kind: "party.joined", session: "s1", actor: "mallory", prev: readRow(t, db, 6).hash}
			writeRow(t, db, forge(r))
		}, "seq 7:"},
		{"inserted in the middle", func(t *testing.T, db *sql.DB) {
			for seq := int64(6); seq >= 3; seq-- {
				exec(t, db, "UPDATE audit SET seq = seq + 1 WHERE seq = ?", seq)
			}
			r := row{seq: 3, time: formatTime(now()), kind: "party.joined", session: "s1", actor: "mallory", prev: readRow(t, db, 2).hash}
			writeRow(t, db, forge(r))
		}, "seq 4:"},
		{"altered head hash", func(t *testing.T, db *sql.DB) {
			exec(t, db, "DROP TRIGGER audit_head_forward")
			exec(t, db, "UPDATE audit_head SET hash = zeroblob(32)")
		}, "seq 6:"},
		{"head moved back", func(t *testing.T, db *sql.DB) {
			exec(t, db, "DROP TRIGGER audit_head_forward")
			exec(t, db, "UPDATE audit_head SET seq = 5")
		}, "seq 6:"},
		{"head removed", func(t *testing.T, db *sql.DB) {
			exec(t, db, "DROP TRIGGER audit_head_no_delete")
			exec(t, db, "DELETE FROM audit_head")
		}, "chain head missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			path := tamperFixture(t)

			// The attacker has the file: the triggers stop plain SQL, so
			// they drop them first.
			db, err := sql.Open("sqlite", path)
			require.NoError(t, err)
			_, err = db.ExecContext(ctx, "UPDATE audit SET detail = 'x' WHERE seq = 1")
			require.ErrorContains(t, err, "append-only")
			exec(t, db, "DROP TRIGGER audit_no_update")
			exec(t, db, "DROP TRIGGER audit_no_delete")
			exec(t, db, "DROP TRIGGER audit_in_sequence")
			tc.tamper(t, db)
			require.NoError(t, db.Close())

			s, err := Open(ctx, path)
			require.NoError(t, err)
			defer s.Close()
			_, err = s.VerifyAudit(ctx)
			require.ErrorIs(t, err, ErrTampered)
			require.ErrorContains(t, err, tc.wantSeq)
		})
	}
}

// TestRewrittenChainNeedsAnchor documents the limit of an unkeyed chain: an
// attacker who rewrites every hash and the head passes VerifyAudit, and only
// a head recorded elsewhere reveals it.
func TestRewrittenChainNeedsAnchor(t *testing.T) {
	ctx := t.Context()
	path := tamperFixture(t)
	s, err := Open(ctx, path)
	require.NoError(t, err)
	seq, anchor, err := s.Head(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	exec(t, db, "DROP TRIGGER audit_no_update")
	exec(t, db, "DROP TRIGGER audit_in_sequence")
	exec(t, db, "DROP TRIGGER audit_head_forward")
	prev := make([]byte, HashSize)
	for i := int64(1); i <= seq; i++ {
		r := readRow(t, db, i)
		if i == 3 {
			r.actor = "mallory"
		}
		r.prev = prev
		r = forge(r)
		writeRow(t, db, r)
		prev = r.hash
	}
	exec(t, db, "UPDATE audit_head SET hash = ?", prev)
	require.NoError(t, db.Close())

	s, err = Open(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	n, err := s.VerifyAudit(ctx)
	require.NoError(t, err)
	require.Equal(t, 6, n)
	_, head, err := s.Head(ctx)
	require.NoError(t, err)
	require.NotEqual(t, anchor, head)
}

// refEncode is an independent implementation of the encoding in the package
// documentation.
func refEncode(seq int64, ts, kind, session, actor, detail string, prev []byte) []byte {
	var b bytes.Buffer
	field := func(f []byte) {
		var l [8]byte
		binary.BigEndian.PutUint64(l[:], uint64(len(f)))
		b.Write(l[:])
		b.Write(f)
	}
	field([]byte("mpsi/v1/coordinator/audit-event"))
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], uint64(seq))
	b.Write(s[:])
	for _, f := range []string{ts, kind, session, actor, detail} {
		field([]byte(f))
	}
	field(prev)
	return b.Bytes()
}

func TestEventHashKnownAnswer(t *testing.T) {
	prev := make([]byte, HashSize)
	ts := "2026-01-02T03:04:05.123456789Z"
	got := eventHash(1, ts, "session.created", "s1", "alice", "sha256:00", prev)
	require.Equal(t, refEncode(1, ts, "session.created", "s1", "alice", "sha256:00", prev),
		encodeEvent(1, ts, "session.created", "s1", "alice", "sha256:00", prev))
	// Pinned: changing the encoding breaks every existing database.
	const want = "85f07b9621fe7b595a6db829e2e0c6b499f28b8aaa9ff94a70c3a9c413e80c1f"
	if hex.EncodeToString(got) != want {
		t.Errorf("eventHash(...) = %x, want %s", got, want)
	}
}

// decodeEvent inverts encodeEvent; it fails on anything encodeEvent cannot
// produce, which shows the encoding is injective.
func decodeEvent(b []byte) (seq int64, fields [5]string, prev []byte, err error) {
	field := func() ([]byte, error) {
		if len(b) < 8 {
			return nil, fmt.Errorf("short length")
		}
		n := binary.BigEndian.Uint64(b)
		b = b[8:]
		if n > uint64(len(b)) {
			return nil, fmt.Errorf("short field")
		}
		f := b[:n]
		b = b[n:]
		return f, nil
	}
	label, err := field()
	if err != nil || string(label) != labelAuditEvent {
		return 0, fields, nil, fmt.Errorf("bad label")
	}
	if len(b) < 8 {
		return 0, fields, nil, fmt.Errorf("short seq")
	}
	seq = int64(binary.BigEndian.Uint64(b))
	b = b[8:]
	for i := range fields {
		f, err := field()
		if err != nil {
			return 0, fields, nil, err
		}
		fields[i] = string(f)
	}
	prev, err = field()
	if err != nil {
		return 0, fields, nil, err
	}
	if len(b) != 0 {
		return 0, fields, nil, fmt.Errorf("trailing bytes")
	}
	return seq, fields, prev, nil
}

func FuzzEventHash(f *testing.F) {
	zero := make([]byte, HashSize)
	ts := "2026-01-02T03:04:05Z"
	f.Add(int64(1), ts, "party.joined", "s1", "alice", "", zero, int64(1), ts, "party.joined", "s1", "alic", "e", zero)
	f.Add(int64(1), ts, "ab", "c", "", "", zero, int64(1), ts, "a", "bc", "", "", zero)
	f.Add(int64(2), ts, "k", "", "", "", zero, int64(1), ts, "k", "", "", "", zero)
	f.Add(int64(-1), "", "", "", "", "", []byte(nil), int64(0), "", "", "", "", "", []byte{0})
	f.Add(int64(1), ts, "k", "s", "a", "d\x00", zero, int64(1), ts, "k", "s", "a", "d", append([]byte{0}, zero...))
	f.Fuzz(func(t *testing.T,
		seq1 int64, ts1, kind1, sess1, actor1, detail1 string, prev1 []byte,
		seq2 int64, ts2, kind2, sess2, actor2, detail2 string, prev2 []byte) {
		enc1 := encodeEvent(seq1, ts1, kind1, sess1, actor1, detail1, prev1)
		enc2 := encodeEvent(seq2, ts2, kind2, sess2, actor2, detail2, prev2)
		if !bytes.Equal(enc1, refEncode(seq1, ts1, kind1, sess1, actor1, detail1, prev1)) {
			t.Fatalf("encodeEvent differs from the reference encoding")
		}

		seq, fields, prev, err := decodeEvent(enc1)
		if err != nil {
			t.Fatalf("decodeEvent(encodeEvent(...)) = %v", err)
		}
		if seq != seq1 || fields != [5]string{ts1, kind1, sess1, actor1, detail1} || !bytes.Equal(prev, prev1) {
			t.Fatalf("decodeEvent(encodeEvent(...)) does not round-trip")
		}

		same := seq1 == seq2 && ts1 == ts2 && kind1 == kind2 && sess1 == sess2 &&
			actor1 == actor2 && detail1 == detail2 && bytes.Equal(prev1, prev2)
		h1 := eventHash(seq1, ts1, kind1, sess1, actor1, detail1, prev1)
		h2 := eventHash(seq2, ts2, kind2, sess2, actor2, detail2, prev2)
		if same != bytes.Equal(enc1, enc2) {
			t.Fatalf("events equal = %v, encodings equal = %v", same, !same)
		}
		if same != bytes.Equal(h1, h2) {
			t.Fatalf("events equal = %v, hashes equal = %v", same, !same)
		}
	})
}

func TestTimeFormats(t *testing.T) {
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	times := []time.Time{
		base,
		base.Add(time.Nanosecond),
		base.Add(100 * time.Millisecond),
		base.Add(120 * time.Millisecond),
		base.Add(time.Second),
	}
	for i, tm := range times {
		got, ok := parseTime(formatTime(tm))
		require.True(t, ok)
		require.True(t, tm.Equal(got))
		got, ok = parseSortable(formatSortable(tm.In(time.FixedZone("X", -7200))))
		require.True(t, ok)
		require.True(t, tm.Equal(got))
		if i > 0 {
			require.Less(t, formatSortable(times[i-1]), formatSortable(tm), "sortable text order")
		}
	}
	_, ok := parseTime("2026-01-02T03:04:05.100Z")
	require.False(t, ok, "trailing zeros are not canonical")
	_, ok = parseSortable("2026-01-02T03:04:05.1Z")
	require.False(t, ok)
	_, ok = parseTime("2026-01-02T05:04:05+02:00")
	require.False(t, ok, "non-UTC offset is not canonical")
}

func TestPragmas(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "mpsi.db"))
	require.NoError(t, err)
	defer s.Close()
	for pragma, want := range map[string]string{
		"busy_timeout": fmt.Sprint(DefaultBusyTimeout.Milliseconds()),
		"journal_mode": "wal",
		"foreign_keys": "1",
		"synchronous":  "2", // FULL
		"user_version": fmt.Sprint(SchemaVersion),
	} {
		var got string
		require.NoError(t, s.db.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got))
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
}
