package upload

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// record100 loads MIT-BIH record 100 from the shared data, or generates a
// 212-format record with a correct header when the data is absent.
func record100(t *testing.T) *Recording {
	t.Helper()
	if dir, ok := SharedDataDir("."); ok {
		if recs, err := LoadDir(filepath.Join(dir, "mitdb")); err == nil {
			for _, r := range recs {
				if r.Name == "100" {
					return r
				}
			}
		}
	}
	t.Log("MIT-BIH record 100 not found under <module root>/../shared/data/ecg/mitdb; using a generated 212-format record")
	// Ten minutes: large enough (≈ 650 kB) to take the chunked stream path.
	return SyntheticECG("100", 600)
}

func fileOf(t *testing.T, r *Recording, suffix string) []byte {
	t.Helper()
	for _, f := range r.Files {
		if filepath.Ext(f.Name) == suffix {
			return f.Data
		}
	}
	t.Fatalf("%s has no %s file", r.Name, suffix)
	return nil
}

// TestRecord100Checksums uploads record 100 in chunks, reads it back from the
// store and decodes its 212-format samples against the header checksums.
func TestRecord100Checksums(t *testing.T) {
	ctx := testContext(t)
	rec := record100(t)
	e := newEnv(t, func(c *Config) { c.Threshold = 256 << 10 })
	c := e.client(t, "clinic-a", func(c *ClientConfig) { c.Threshold = 256 << 10; c.ChunkSize = 256 << 10 })
	rc, err := c.Upload(ctx, rec, 5)
	require.NoError(t, err)
	require.Equal(t, ModeStream, rc.Mode)
	e.requireStored(t, rc, rec)

	_, stored, err := ReadStored(e.store, rc.StoredAs)
	require.NoError(t, err)
	files := map[string][]byte{}
	for _, f := range stored.Files {
		files[f.Name] = f.Data
	}
	hea := fileOf(t, stored, ".hea")
	h, err := ParseHeader(hea)
	require.NoError(t, err)
	require.Equal(t, 2, h.NumSignals)
	for _, s := range h.Signals {
		require.Equal(t, 212, s.Format)
		require.True(t, s.HasChecksum)
	}
	checks, err := VerifyRecord(hea, files)
	require.NoError(t, err)
	require.Len(t, checks, 2)
	for i, ck := range checks {
		t.Logf("signal %d (%s): %d samples, checksum %d (header %d)", i, ck.Description, ck.Samples, ck.Got, ck.Want)
		require.EqualValues(t, h.NumSamples, ck.Samples)
		require.Equal(t, h.Signals[i].Checksum, ck.Got)
	}

	// The check has teeth: one flipped bit in the stored signal breaks it.
	bad := bytes.Clone(files[h.Signals[0].File])
	bad[len(bad)/2] ^= 0x01
	_, err = VerifyRecord(hea, map[string][]byte{h.Signals[0].File: bad})
	require.Error(t, err)
}

func TestSharedRecordsVerify(t *testing.T) {
	dir, ok := SharedDataDir(".")
	if !ok {
		t.Log("no shared ECG data; checking generated records only")
		dir = t.TempDir()
		for _, r := range []*Recording{SyntheticECG("gen1", 10), SyntheticECG("gen2", 3)} {
			for _, f := range r.Files {
				require.NoError(t, os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o644))
			}
		}
	}
	recs, err := LoadDir(dir)
	require.NoError(t, err)
	require.NotEmpty(t, recs)
	for _, r := range recs {
		files := map[string][]byte{}
		var hea []byte
		for _, f := range r.Files {
			files[f.Name] = f.Data
			if f.Name == r.Name+".hea" {
				hea = f.Data
			}
		}
		checks, err := VerifyRecord(hea, files)
		require.NoError(t, err, "record %s", r.Name)
		require.NotEmpty(t, checks)
	}
}

func TestDecodeSamples(t *testing.T) {
	tests := []struct {
		name   string
		format int
		nsig   int
		data   []byte
		want   [][]int16
	}{
		{"212 two signals", 212, 2, []byte{0xff, 0xff, 0x00}, [][]int16{{-1}, {-256}}},
		{"212 positive high nibble", 212, 2, []byte{0xff, 0x7f, 0x00}, [][]int16{{-1}, {0x700}}},
		{"212 positive", 212, 2, []byte{0x01, 0x20, 0x03}, [][]int16{{1}, {0x203}}},
		{"212 odd trailing sample", 212, 1, []byte{0x01, 0x20, 0x03, 0xff, 0x07}, [][]int16{{1, 0x203, 0x7ff}}},
		{"16 little endian", 16, 2, []byte{0x01, 0x00, 0xff, 0xff, 0x02, 0x00}, [][]int16{{1}, {-1}}},
		{"partial frame ignored", 16, 2, []byte{0x01, 0x00, 0xff, 0xff, 0x02}, [][]int16{{1}, {-1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeSamples(tc.format, tc.nsig, tc.data)
			require.NoError(t, err)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("DecodeSamples(%d, %d, %x) = %v, want %v", tc.format, tc.nsig, tc.data, got, tc.want)
			}
		})
	}
	for _, bad := range []struct{ format, nsig int }{{311, 1}, {212, 0}, {16, -1}, {16, 65}} {
		_, err := DecodeSamples(bad.format, bad.nsig, []byte{1, 2, 3})
		require.ErrorIs(t, err, ErrMalformed)
	}
}

func TestEncode212RoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 10, 101} {
		flat := make([]int16, n)
		for i := range flat {
			flat[i] = int16((i*797)%4096 - 2048)
		}
		got, err := DecodeSamples(212, 1, Encode212(flat))
		require.NoError(t, err)
		require.True(t, slices.Equal(flat, got[0]), "n=%d", n)
	}
}

func TestParseHeaderErrors(t *testing.T) {
	tests := []struct{ name, hea string }{
		{"empty", ""},
		{"comments only", "# nothing\n"},
		{"bad signal count", "r x 360\n"},
		{"too few signal lines", "r 2 360 10\nr.dat 212 200 11 1024 0 0 0 I\n"},
		{"too many signal lines", "r 1 360 10\nr.dat 16\nr.dat 16\n"},
		{"bad format", "r 1 360 10\nr.dat x\n"},
		{"bad checksum", "r 1 360 10\nr.dat 16 200 16 0 0 99999 0 I\n"},
		{"multi-segment", "r/2 1 360 10\n"},
		{"bad frequency", "r 1 -5 10\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseHeader([]byte(tc.hea))
			require.ErrorIs(t, err, ErrMalformed)
		})
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add(fileOfRec(SyntheticECG("seed", 1), ".hea"))
	f.Add([]byte("s 15 1000 38400\ns.dat 16 2000 16 0 -489 -8337 0 i\n"))
	f.Add([]byte("x 1\nx.dat 212x4:2+1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHeader(data)
		if err != nil {
			if h != nil {
				t.Fatal("header returned with an error")
			}
			return
		}
		if len(h.Signals) != h.NumSignals {
			t.Fatalf("%d signals, %d announced", len(h.Signals), h.NumSignals)
		}
		_, _ = VerifyRecord(data, map[string][]byte{})
	})
}

func FuzzDecodeSamples(f *testing.F) {
	f.Add(212, 2, []byte{0xff, 0x7f, 0x00, 1})
	f.Add(16, 3, []byte{1, 2, 3, 4, 5, 6, 7})
	f.Fuzz(func(t *testing.T, format, nsig int, data []byte) {
		got, err := DecodeSamples(format, nsig, data)
		if err != nil {
			return
		}
		if len(got) != nsig {
			t.Fatalf("%d signals, want %d", len(got), nsig)
		}
		if format == 212 && nsig == 1 && len(data)%3 != 1 {
			if re := Encode212(got[0]); !bytes.Equal(re, normalize212(data)) {
				t.Fatalf("Encode212(Decode(%x)) = %x", data, re)
			}
		}
	})
}

// normalize212 clears the high nibble of the middle byte of a trailing
// two-byte group, which a lone sample does not use.
func normalize212(data []byte) []byte {
	out := bytes.Clone(data)
	if len(out)%3 == 2 {
		out[len(out)-1] &= 0x0f
	}
	return out
}

func fileOfRec(r *Recording, ext string) []byte {
	for _, f := range r.Files {
		if filepath.Ext(f.Name) == ext {
			return f.Data
		}
	}
	return nil
}
