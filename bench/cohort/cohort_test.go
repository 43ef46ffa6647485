package cohort

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/require"
)

var identityConfigs = []Config{
	{Seed: 1, Parties: 3, Records: 1000, SharedAll: 0.3, SharedPair: 0.1, Noise: true, Mode: "keyed", MinCell: 11, Duplicates: 2, Aggregation: "masked"},
	{Seed: 2, Parties: 2, Records: 500, SharedAll: 0.5, SharedPair: 0.2},
	{Seed: 3, Parties: 3, Records: 300, SharedAll: 1, Noise: true, Duplicates: 7},
	{Seed: 4, Parties: 4, Records: 800, SharedPair: 0.5, Noise: true, Duplicates: 50, Aggregation: "encrypted"},
	// A party's shared and pair blocks exceed Records: it gets more rows.
	{Seed: 5, Parties: 5, Records: 400, SharedAll: 0.2, SharedPair: 0.5, Noise: true, Duplicates: 5, MinCell: 3},
	{Seed: 6, Parties: 5, Records: 0, SharedAll: 0.3, Duplicates: 3},
	{Seed: 7, Parties: 26, Records: 40, SharedAll: 0.25, SharedPair: 0.25, Noise: true, Duplicates: 1},
	{Seed: 8, Parties: 2, Records: 1, Noise: true, Duplicates: 4},
}

func (c Config) String() string {
	return fmt.Sprintf("n=%d/records=%d/seed=%d", c.Parties, c.Records, c.Seed)
}

// Generate gives exactly the cohort of the original in-memory generator.
func TestGenerateMatchesReference(t *testing.T) {
	for _, cfg := range identityConfigs {
		t.Run(cfg.String(), func(t *testing.T) {
			want, err := refGenerate(cfg)
			require.NoError(t, err)
			got, err := Generate(cfg)
			require.NoError(t, err)
			require.Equal(t, string(want.Spec), string(got.Spec))
			require.Equal(t, want.Truth, got.Truth)
			require.Len(t, got.Parties, len(want.Parties))
			for i := range want.Parties {
				require.Equal(t, want.Parties[i].Name, got.Parties[i].Name)
				require.Equal(t, string(want.Parties[i].Mapping), string(got.Parties[i].Mapping))
				require.Equal(t, string(want.Parties[i].CSV), string(got.Parties[i].CSV), want.Parties[i].Name)
			}
		})
	}
}

func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	files := map[string]string{}
	for _, e := range es {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		files[e.Name()] = string(b)
	}
	return files
}

// GenerateDir writes byte for byte the files of the original Generate and
// WriteDir, and nothing else.
func TestGenerateDirMatchesReference(t *testing.T) {
	for _, cfg := range identityConfigs {
		t.Run(cfg.String(), func(t *testing.T) {
			wantDir, gotDir := t.TempDir(), filepath.Join(t.TempDir(), "new")
			c, err := refGenerate(cfg)
			require.NoError(t, err)
			require.NoError(t, refWriteDir(c, wantDir))
			truth, err := GenerateDir(cfg, gotDir)
			require.NoError(t, err)
			require.Equal(t, c.Truth, *truth)
			want, got := readDir(t, wantDir), readDir(t, gotDir)
			require.Equal(t, slices.Sorted(mapsKeys(want)), slices.Sorted(mapsKeys(got)))
			for name := range want {
				require.Equal(t, want[name], got[name], name)
			}
			fi, err := os.Stat(filepath.Join(gotDir, "spec.json"))
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
			// WriteDir of the new Generate writes the same files.
			c2, err := Generate(cfg)
			require.NoError(t, err)
			dir2 := t.TempDir()
			require.NoError(t, c2.WriteDir(dir2))
			require.Equal(t, want, readDir(t, dir2))
		})
	}
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestGenerateRejectsBadConfigs(t *testing.T) {
	for _, cfg := range []Config{{Parties: 1}, {Parties: 27}, {Parties: 3, Records: -1}, {Parties: 3, SharedAll: 0.6, SharedPair: 0.5}, {Parties: 3, SharedAll: -0.1}} {
		_, err := refGenerate(cfg)
		require.Error(t, err)
		_, err = Generate(cfg)
		require.Error(t, err)
		dir := filepath.Join(t.TempDir(), "out")
		_, err = GenerateDir(cfg, dir)
		require.Error(t, err)
		require.NoDirExists(t, dir, "nothing is created for an invalid config")
	}
}

// The files of one configuration, pinned by hash (as written by `mpsi
// gen-cohorts --seed 42 --parties 4 --records 2000 --mode keyed` before the
// streaming rewrite): the data tables (names, styles, codes) are shared
// with the reference, so this catches a change to them too.
func TestGenerateDirGolden(t *testing.T) {
	dir := t.TempDir()
	_, err := GenerateDir(Config{Seed: 42, Parties: 4, Records: 2000, SharedAll: 0.3, SharedPair: 0.1, Noise: true, Mode: "keyed", MinCell: 11}, dir)
	require.NoError(t, err)
	got := map[string]string{}
	for name, b := range readDir(t, dir) {
		h := sha256.Sum256([]byte(b))
		got[name] = hex.EncodeToString(h[:8])
	}
	require.Equal(t, map[string]string{
		"hospital-a.csv": "83d7f9da845364a0", "hospital-a.map.json": "c16cab2d143069c5",
		"hospital-b.csv": "fe4b0b311bac106c", "hospital-b.map.json": "84697a3e5cab25f3",
		"hospital-c.csv": "7ef40e5d6483a245", "hospital-c.map.json": "a1033cfdc7f217bc",
		"hospital-d.csv": "2811036c1237bcad", "hospital-d.map.json": "0d2d54f7c1b08dad",
		"spec.json": "75771fa783828e02", "truth.json": "f72724ce926892c4",
	}, got)
}

// The packed form of a person de-duplicates exactly as the original
// canonical string did: the name lists allow no two packed values with the
// same string.
func TestPackedPersonIsCanonical(t *testing.T) {
	for _, list := range [][]string{givenNames, familyNames} {
		require.LessOrEqual(t, len(list), 32, "5 bits per name index")
		lower := map[string]bool{}
		for _, s := range list {
			require.False(t, strings.ContainsFunc(s, unicode.IsDigit), "%q: a digit would run into the suffix", s)
			require.NotContains(t, s, "|")
			require.False(t, lower[strings.ToLower(s)], "%q: two names lower-case alike", s)
			lower[strings.ToLower(s)] = true
		}
	}
	unpack := func(p uint64) refPerson {
		r := refPerson{given: givenOf(p), family: familyOf(p), birth: birthOf(p), sex: "M", age: ageOf(p)}
		if female(p) {
			r.sex = "F"
		}
		return r
	}
	rng := rand.New(rand.NewPCG(1, 2))
	seen := map[string]uint64{}
	for range 200000 {
		// A narrow space, so that equal strings come up.
		p := drawPerson(rng) &^ (uint64(1023) << pSuffix) &^ (uint64(127) << pYear)
		p |= uint64(rng.IntN(3)) << pSuffix
		k := refCanonical(unpack(p))
		if q, ok := seen[k]; ok {
			require.Equal(t, q, p, k)
		}
		seen[k] = p
	}
}

// refPeople is the original generator's patient drawing, alone: total
// distinct people and how many candidates it redrew.
func refPeople(seed uint64, total int) ([]refPerson, int) {
	rng := rand.New(rand.NewPCG(seed, 0x6d707369))
	var people []refPerson
	seen := map[string]bool{}
	redrawn := 0
	for len(people) < total {
		p := refPerson{
			given:  givenNames[rng.IntN(len(givenNames))],
			family: familyNames[rng.IntN(len(familyNames))],
			birth:  time.Date(1900+rng.IntN(125), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC),
			sex:    []string{"M", "F"}[rng.IntN(2)],
		}
		p.age = 2025 - p.birth.Year()
		if p.age > 130 {
			p.age = 130
		}
		p.given += strconv.Itoa(rng.IntN(1000))
		k := refCanonical(p)
		if seen[k] {
			redrawn++
			continue
		}
		seen[k] = true
		people = append(people, p)
	}
	return people, redrawn
}

// Enough patients that some candidates repeat one already drawn: the
// de-duplication redraws exactly the same ones as the original.
func TestDrawPeopleRedrawsAsReference(t *testing.T) {
	if testing.Short() {
		t.Skip("draws a million patients")
	}
	const total = 1_000_000
	want, redrawn := refPeople(3, total)
	require.Positive(t, redrawn, "the test must exercise a redraw")
	g := &generator{rng: rand.New(rand.NewPCG(3, 0x6d707369))}
	g.drawPeople(total)
	require.Len(t, g.people, total)
	for e, p := range g.people {
		w := want[e]
		if givenOf(p) != w.given || familyOf(p) != w.family || !birthOf(p).Equal(w.birth) || female(p) != (w.sex == "F") || ageOf(p) != w.age {
			t.Fatalf("person %d: got %s %s %s female=%v, want %+v", e, givenOf(p), familyOf(p), birthOf(p), female(p), w)
		}
	}
	t.Logf("%d candidates redrawn", redrawn)
}

// An interrupted or failed run leaves no partial file under a final name,
// no temporary file, and no truth.json vouching for the directory.
func TestGenerateDirFailureLeavesNoPartialFiles(t *testing.T) {
	cfg := Config{Seed: 9, Parties: 3, Records: 200, SharedAll: 0.3, Noise: true}
	dir := t.TempDir()
	_, err := GenerateDir(cfg, dir)
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(dir, "truth.json"))
	// hospital-b.csv cannot be replaced by a file: the second run fails there.
	require.NoError(t, os.Remove(filepath.Join(dir, "hospital-b.csv")))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "hospital-b.csv", "x"), 0o755))
	cfg.Seed = 10
	_, err = GenerateDir(cfg, dir)
	require.Error(t, err)
	require.Contains(t, err.Error(), "hospital-b.csv")
	require.NoFileExists(t, filepath.Join(dir, "truth.json"))
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range es {
		require.False(t, strings.HasPrefix(e.Name(), "."), "temporary file %s left behind", e.Name())
	}
	// hospital-a.csv is complete: the new run's.
	c, err := Generate(cfg)
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dir, "hospital-a.csv"))
	require.NoError(t, err)
	require.Equal(t, string(c.Parties[0].CSV), string(b))
}
