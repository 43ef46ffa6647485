package clk

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"golang.org/x/crypto/blake2b"
)

// vectorFile is testdata/vectors.json, made by testdata/gen_vectors.py with
// clkhash 0.18.3 (see testdata/README.md).
type vectorFile struct {
	Clkhash string `json:"clkhash"`
	Secret  string `json:"secret"`
	Cases   []struct {
		Name    string            `json:"name"`
		Schema  json.RawMessage   `json:"schema"`
		Records [][]string        `json:"records"`
		CLKs    []json.RawMessage `json:"clks"`
	} `json:"cases"`
	Blake2b []struct {
		Key, Salt, Msg, Digest string
	} `json:"blake2b"`
}

func loadVectors(t testing.TB) *vectorFile {
	t.Helper()
	data, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if v.Clkhash != "0.18.3" || len(v.Cases) == 0 {
		t.Fatalf("vectors: clkhash %q, %d cases", v.Clkhash, len(v.Cases))
	}
	return &v
}

// TestClkhashVectors encodes every vector record and compares the CLK byte
// for byte with clkhash 0.18.3's; records clkhash refused must be refused.
func TestClkhashVectors(t *testing.T) {
	v := loadVectors(t)
	total, refused := 0, 0
	for _, c := range v.Cases {
		t.Run(c.Name, func(t *testing.T) {
			s, err := ParseSchema(c.Schema)
			if err != nil {
				t.Fatal(err)
			}
			enc, err := NewEncoder(s, []byte(v.Secret))
			if err != nil {
				t.Fatal(err)
			}
			if len(c.CLKs) != len(c.Records) {
				t.Fatalf("%d CLKs for %d records", len(c.CLKs), len(c.Records))
			}
			for i, rec := range c.Records {
				got, err := enc.Encode(rec)
				var want string
				if json.Unmarshal(c.CLKs[i], &want) != nil {
					// clkhash refused this record.
					refused++
					if err == nil {
						t.Errorf("record %d: clkhash refused it, we encoded it", i)
					} else if !errors.Is(err, ErrRecord) {
						t.Errorf("record %d: error %v does not wrap ErrRecord", i, err)
					}
					continue
				}
				total++
				if err != nil {
					t.Errorf("record %d: %v", i, err)
					continue
				}
				wb, _ := base64.StdEncoding.DecodeString(want)
				if !bytes.Equal(got, wb) {
					t.Errorf("record %d: CLK differs from clkhash's\n got %x\nwant %x", i, got, wb)
				}
			}
			// The batch API gives the same bytes.
			var ok [][]string
			var want [][]byte
			for i, rec := range c.Records {
				var w string
				if json.Unmarshal(c.CLKs[i], &w) == nil {
					wb, _ := base64.StdEncoding.DecodeString(w)
					ok, want = append(ok, rec), append(want, wb)
				}
			}
			got, err := enc.EncodeAll(t.Context(), ok, 2)
			if err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("EncodeAll record %d differs", i)
				}
			}
		})
	}
	if total < 400 || refused < 5 {
		t.Errorf("only %d encoded and %d refused vectors compared", total, refused)
	}
}

func TestSaltedBlake2b(t *testing.T) {
	v := loadVectors(t)
	for i, p := range v.Blake2b {
		key, _ := hex.DecodeString(p.Key)
		salt, _ := hex.DecodeString(p.Salt)
		msg, _ := hex.DecodeString(p.Msg)
		b, err := newSaltedBlake(key)
		if err != nil {
			t.Fatal(err)
		}
		var out [blake2b.Size]byte
		b.sum(&out, salt, msg, nil)
		if hex.EncodeToString(out[:]) != p.Digest {
			t.Errorf("vector %d: got %x want %s", i, out, p.Digest)
		}
	}
	// Without a salt the construction is plain keyed BLAKE2b-512: compare
	// with x/crypto's own keyed digest on a few lengths around the block.
	key := bytes.Repeat([]byte{7}, 64)
	b, _ := newSaltedBlake(key)
	for _, n := range []int{0, 1, 127, 128, 129, 300} {
		msg := bytes.Repeat([]byte{byte(n)}, n)
		var out [blake2b.Size]byte
		b.sum(&out, nil, msg, nil)
		d, _ := blake2b.New512(key)
		d.Write(msg)
		if !bytes.Equal(out[:], d.Sum(nil)) {
			t.Errorf("len %d: differs from x/crypto keyed BLAKE2b", n)
		}
	}
}
