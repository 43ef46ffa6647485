package ident_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"testing/cryptotest"

	"github.com/mpsi-dev/mpsi/psi/ident"
	"github.com/stretchr/testify/require"
)

func TestKeyNoCollision(t *testing.T) {
	a := ident.AppendKey(nil, []ident.Field{{"n", "ab"}, {"m", "c"}})
	b := ident.AppendKey(nil, []ident.Field{{"n", "a"}, {"m", "bc"}})
	if bytes.Equal(a, b) {
		t.Errorf(`AppendKey(("ab","c")) == AppendKey(("a","bc")) = %x`, a)
	}
	want := []byte{ident.KeyVersion, 1, 'n', 2, 'a', 'b', 1, 'm', 1, 'c'}
	if !bytes.Equal(a, want) {
		t.Errorf("AppendKey = %x, want %x", a, want)
	}
	if got := ident.AppendKey(nil, nil); !bytes.Equal(got, []byte{ident.KeyVersion}) {
		t.Errorf("AppendKey(nil) = %x, want %x", got, []byte{ident.KeyVersion})
	}
	prefix := []byte("prefix")
	if got := ident.AppendKey(prefix, []ident.Field{{"n", "ab"}, {"m", "c"}}); !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Errorf("AppendKey(prefix, ...) = %x, want prefix kept", got)
	}
}

// randFields returns a random field list over a tiny alphabet, so that
// distinct lists with equal concatenations are frequent.
func randFields() []ident.Field {
	str := func() string {
		const alphabet = "ab\x00\x01\x80"
		n := randIntn(4)
		if randIntn(50) == 0 {
			n = 128 + randIntn(300) // multi-byte varint lengths
		}
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[randIntn(len(alphabet))]
		}
		return string(b)
	}
	fields := make([]ident.Field, randIntn(4))
	for i := range fields {
		fields[i] = ident.Field{Name: str(), Value: str()}
	}
	return fields
}

// TestKeyInjective checks on random field lists that DecodeKey inverts
// AppendKey and that distinct lists never share a key.
func TestKeyInjective(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 2)
	n := 50000
	if testing.Short() {
		n = 5000
	}
	seen := make(map[string][]ident.Field, n)
	for range n {
		fields := randFields()
		key := ident.AppendKey(nil, fields)
		got, err := ident.DecodeKey(key)
		require.NoError(t, err)
		if !slices.Equal(got, fields) {
			t.Fatalf("DecodeKey(AppendKey(%q)) = %q", fields, got)
		}
		if prev, ok := seen[string(key)]; ok && !slices.Equal(prev, fields) {
			t.Fatalf("AppendKey(%q) == AppendKey(%q) = %x", prev, fields, key)
		}
		seen[string(key)] = fields
	}
	if len(seen) < n/10 {
		t.Errorf("only %d distinct field lists in %d draws; generator too narrow", len(seen), n)
	}
}

func TestDecodeKeyBadLengths(t *testing.T) {
	key := ident.AppendKey(nil, []ident.Field{{"given_name", "jose"}, {"birth_date", "1989-05-25"}})
	_, err := ident.DecodeKey(key)
	require.NoError(t, err)
	// Every proper truncation that does not end on a field boundary.
	boundary := map[int]bool{1: true, 1 + 1 + 10 + 1 + 4: true}
	for i := range len(key) {
		fields, err := ident.DecodeKey(key[:i])
		if boundary[i] {
			require.NoError(t, err, "DecodeKey(key[:%d])", i)
			continue
		}
		require.ErrorIs(t, err, ident.ErrMalformedKey, "DecodeKey(key[:%d])", i)
		if fields != nil {
			t.Errorf("DecodeKey(key[:%d]) returned fields with an error", i)
		}
	}
	// Every one-byte extension leaves an incomplete field.
	for b := range 256 {
		_, err := ident.DecodeKey(append(slices.Clip(key), byte(b)))
		require.ErrorIs(t, err, ident.ErrMalformedKey, "DecodeKey(key+%02x)", b)
	}
}

func TestDecodeKeyMalformed(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "empty"},
		{"version 0", []byte{0}, "version 0"},
		{"version 2", []byte{2, 1, 'a', 0}, "version 2"},
		{"non-minimal name length", []byte{1, 0x81, 0x00, 'a', 0}, "non-minimal"},
		{"non-minimal zero length", []byte{1, 0x80, 0x00, 0}, "non-minimal"},
		{"non-minimal value length", []byte{1, 1, 'a', 0x80, 0x00}, "non-minimal"},
		{"overflow", []byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, "overflow"},
		{"huge length", []byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, "exceeds"},
		{"length beyond input", []byte{1, 5, 'a'}, "exceeds"},
		{"name without value", []byte{1, 1, 'a'}, "truncated"},
		{"truncated varint", []byte{1, 0x80}, "truncated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fields, err := ident.DecodeKey(tc.in)
			require.ErrorIs(t, err, ident.ErrMalformedKey)
			require.ErrorContains(t, err, tc.want)
			if fields != nil {
				t.Errorf("DecodeKey(%x) returned fields with an error", tc.in)
			}
		})
	}
}

// AppendKeyField, field by field after KeyVersion, builds AppendKey's key.
func TestAppendKeyField(t *testing.T) {
	fields := []ident.Field{{"given_name", "jose"}, {"family_name", ""}, {"birth_date", "1989-05-25"}, {strings.Repeat("n", 200), strings.Repeat("v", 300)}}
	want := ident.AppendKey([]byte("p"), fields)
	got := append([]byte("p"), ident.KeyVersion)
	for i, f := range fields {
		if i%2 == 0 {
			got = ident.AppendKeyField(got, f.Name, f.Value)
		} else {
			got = ident.AppendKeyField(got, f.Name, []byte(f.Value))
		}
	}
	require.Equal(t, want, got)
}
