package clk

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The anonlink five-party sample, when ../shared is present (a fresh clone
// has none; the test then says so and checks nothing else).
const fivePartyDir = "../../../shared/data/linkage/anonlink_5party"

// TestAnonlinkFivePartyGroups encodes the whole five-party sample (16,228
// records) and links it without blocking; the groups must be exactly those
// anonlink 0.15.3's greedy_solve made from the same CLKs
// (testdata/anonlink_groups.json, written by testdata/anonlink_compare.py;
// the secret is clkeval's).
func TestAnonlinkFivePartyGroups(t *testing.T) {
	if _, err := os.Stat(fivePartyDir); err != nil {
		t.Skipf("no shared sample data at %s (a fresh clone has none)", fivePartyDir)
	}
	var want map[string]struct {
		Groups int    `json:"groups"`
		SHA256 string `json:"sha256"`
	}
	data, err := os.ReadFile("testdata/anonlink_groups.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSchema(filepath.Join(fivePartyDir, "schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := NewEncoder(s, []byte("mpsi clkeval: benchmark secret, not a real one"))
	if err != nil {
		t.Fatal(err)
	}
	var sets []*Set
	for p := 1; p <= 5; p++ {
		f, err := os.Open(filepath.Join(fivePartyDir, fmt.Sprintf("dataset-%d.csv", p)))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CheckHeader(rows[0]); err != nil {
			t.Fatal(err)
		}
		clks, err := enc.EncodeAll(context.Background(), rows[1:], 0)
		if err != nil {
			t.Fatal(err)
		}
		set, err := NewSet(s.Bits, clks)
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, set)
	}
	for _, th := range []string{"0.8"} { // 0.75 is in the file too; one threshold keeps the test short
		w, ok := want[th]
		if !ok {
			t.Fatalf("no anonlink digest for threshold %s", th)
		}
		var tv float64
		fmt.Sscan(th, &tv)
		res, err := Link(t.Context(), sets, LinkOptions{Threshold: tv, Blocking: BlockingNone})
		if err != nil {
			t.Fatal(err)
		}
		lines := make([]string, len(res.Groups))
		for i, g := range res.Groups {
			parts := make([]string, len(g))
			for j, r := range g {
				parts[j] = fmt.Sprintf("%d:%d", r.Party, r.Index)
			}
			lines[i] = strings.Join(parts, " ")
		}
		sort.Strings(lines)
		sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
		if len(res.Groups) != w.Groups || hex.EncodeToString(sum[:]) != w.SHA256 {
			t.Errorf("threshold %s: %d groups (digest %x), anonlink made %d (%s)", th, len(res.Groups), sum, w.Groups, w.SHA256)
		}
	}
}
