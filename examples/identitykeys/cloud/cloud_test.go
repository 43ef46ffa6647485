package cloud

import (
	"bytes"
	"testing"

	"github.com/mpsi-dev/mpsi/examples/identitykeys/identitypb"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/recordkey"
	"github.com/stretchr/testify/require"
)

func store(t *testing.T) *Store {
	s, err := New(Config{Hospitals: []string{"hospital-a", "hospital-b"}})
	require.NoError(t, err)
	return s
}

func entry(h string, ixByte byte, ctLen int) *identitypb.Entry {
	return &identitypb.Entry{Hospital: h, Index: bytes.Repeat([]byte{ixByte}, recordkey.IndexSize), Ciphertext: make([]byte, ctLen)}
}

var okLen = recordkey.Overhead + recordkey.PadBlock

func TestPutGet(t *testing.T) {
	s := store(t)
	n, err := s.PutEntries("hospital-a", []*identitypb.Entry{entry("hospital-a", 1, okLen), entry("hospital-a", 2, okLen+recordkey.PadBlock)})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	ct, err := s.GetBundle("hospital-a", bytes.Repeat([]byte{2}, 32))
	require.NoError(t, err)
	require.Len(t, ct, okLen+recordkey.PadBlock)
	_, err = s.GetBundle("hospital-b", bytes.Repeat([]byte{2}, 32))
	require.ErrorIs(t, err, ErrNotFound, "an index is scoped to its hospital")
	_, err = s.GetBundle("hospital-a", []byte{2})
	require.ErrorIs(t, err, ErrInvalid)
	items, _ := s.Snapshot()
	require.Len(t, items, 2)
}

func TestPutRejects(t *testing.T) {
	tests := []struct {
		name    string
		caller  string
		entries []*identitypb.Entry
		want    error
	}{
		{"terminal caller", "patient", []*identitypb.Entry{entry("patient", 1, okLen)}, ErrForbidden},
		{"other hospital's entry", "hospital-a", []*identitypb.Entry{entry("hospital-b", 1, okLen)}, ErrForbidden},
		{"no entries", "hospital-a", nil, ErrInvalid},
		{"too many", "hospital-a", make([]*identitypb.Entry, MaxEntriesPerPut+1), ErrInvalid},
		{"short index", "hospital-a", []*identitypb.Entry{{Hospital: "hospital-a", Index: []byte{1}, Ciphertext: make([]byte, okLen)}}, ErrInvalid},
		{"short ciphertext", "hospital-a", []*identitypb.Entry{entry("hospital-a", 1, okLen-1)}, ErrInvalid},
		{"huge ciphertext", "hospital-a", []*identitypb.Entry{entry("hospital-a", 1, recordkey.Overhead+recordkey.MaxBundle+recordkey.PadBlock+1)}, ErrInvalid},
		{"nil entry", "hospital-a", []*identitypb.Entry{nil}, ErrForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := store(t)
			_, err := s.PutEntries(tc.caller, tc.entries)
			require.ErrorIs(t, err, tc.want)
			items, _ := s.Snapshot()
			require.Empty(t, items, "a rejected Put stored something")
		})
	}
}

func TestMailbox(t *testing.T) {
	s := store(t)
	require.NoError(t, s.Post("patient", "dr-lee", []byte("sealed")))
	require.ErrorIs(t, s.Post("patient", "", []byte("x")), ErrInvalid)
	require.ErrorIs(t, s.Post("patient", "dr-lee", nil), ErrInvalid)
	require.ErrorIs(t, s.Post("patient", "dr-lee", make([]byte, MaxSealedGrant+1)), ErrInvalid)
	require.Empty(t, s.Take("dr-okafor"))
	m := s.Take("dr-lee")
	require.Equal(t, []Mail{{From: "patient", To: "dr-lee", Sealed: []byte("sealed")}}, m)
	require.Empty(t, s.Take("dr-lee"), "mail delivered twice")
	for range MaxMailbox {
		require.NoError(t, s.Post("x", "dr-lee", []byte("s")))
	}
	require.ErrorIs(t, s.Post("x", "dr-lee", []byte("s")), ErrMailboxFull)
}

func TestNewValidates(t *testing.T) {
	_, err := New(Config{})
	require.Error(t, err)
	_, err = New(Config{Hospitals: []string{"bad name"}})
	require.ErrorIs(t, err, recordkey.ErrHospital)
}
