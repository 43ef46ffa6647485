package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"1048576", 1 << 20, true}, {"512MiB", 512 << 20, true}, {"2GiB", 2 << 30, true},
		{" 64 kib ", 64 << 10, true}, {"1.5GiB", 0, false}, {"-1", 0, false}, {"MiB", 0, false},
		{"", 0, false}, {"10GB", 0, false}, {"9999999999GiB", 0, false},
	} {
		got, err := parseBytes(tc.in)
		if !tc.ok {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"0", "512MiB", "2gib", "1.5GiB", "-3kib", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseBytes(s)
		if err == nil && (v < 0 || v > 1<<50) {
			t.Fatalf("parseBytes(%q) = %d", s, v)
		}
	})
}
