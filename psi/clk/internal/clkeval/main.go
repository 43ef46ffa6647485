// Command clkeval measures the CLK encoder and linker (bench/README.md,
// "CLK linkage"). It is a measuring tool, not part of the library.
//
//	clkeval anonlink -data DIR -out DIR [-thresholds 0.7,0.75,0.8,0.85,0.9]
//	    encodes the anonlink five-party files with DIR/schema.json, writes the
//	    CLKs (clks-N.bin, 128 bytes each) and the groups at each threshold
//	    (groups-T.json) for testdata/anonlink_compare.py, and prints recall
//	    and precision of the all-parties groups against the true ids.
//	clkeval synthetic -n 100000 -parties 3 -threshold 0.8
//	    generates noisy records (seeded PRG), encodes them on one goroutine
//	    and links them with LSH blocking, printing cost per record.
package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mpsi-dev/mpsi/psi/clk"
)

const secret = "mpsi clkeval: benchmark secret, not a real one"

// cpu is the process's user+system CPU time: on a shared machine it is a
// steadier cost than wall time.
func cpu() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: clkeval anonlink|synthetic [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "anonlink":
		err = anonlink(os.Args[2:])
	case "synthetic":
		err = synthetic(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "clkeval:", err)
		os.Exit(1)
	}
}

func readCSV(path string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rows, nil
}

// scores compares the groups holding one record of every party with the
// true ids: precision over those groups, recall over the ids present in
// every party.
func scores(groups []clk.Group, ids [][]string) (complete, correct, truth int) {
	count := map[string]int{}
	for _, p := range ids {
		seen := map[string]bool{}
		for _, id := range p {
			if !seen[id] {
				seen[id] = true
				count[id]++
			}
		}
	}
	for _, c := range count {
		if c == len(ids) {
			truth++
		}
	}
	for _, g := range groups {
		if len(g) != len(ids) {
			continue
		}
		complete++
		ok := true
		for _, r := range g[1:] {
			ok = ok && ids[r.Party][r.Index] == ids[g[0].Party][g[0].Index]
		}
		if ok {
			correct++
		}
	}
	return
}

func anonlink(args []string) error {
	fs := flag.NewFlagSet("anonlink", flag.ExitOnError)
	data := fs.String("data", "../shared/data/linkage/anonlink_5party", "directory with schema.json and dataset-N.csv")
	out := fs.String("out", "", "directory for CLKs and groups (optional)")
	ths := fs.String("thresholds", "0.7,0.75,0.8,0.85,0.9", "Dice thresholds")
	fs.Parse(args)
	s, err := clk.LoadSchema(filepath.Join(*data, "schema.json"))
	if err != nil {
		return err
	}
	enc, err := clk.NewEncoder(s, []byte(secret))
	if err != nil {
		return err
	}
	var sets []*clk.Set
	var ids [][]string
	var nrec int
	var encTime time.Duration
	for p := 1; p <= 5; p++ {
		rows, err := readCSV(filepath.Join(*data, fmt.Sprintf("dataset-%d.csv", p)))
		if err != nil {
			return err
		}
		if err := s.CheckHeader(rows[0]); err != nil {
			return fmt.Errorf("dataset-%d.csv: %w", p, err)
		}
		rows = rows[1:]
		var pid []string
		for _, r := range rows {
			pid = append(pid, r[0])
		}
		c0 := cpu()
		clks, err := enc.EncodeAll(context.Background(), rows, 1)
		encTime += cpu() - c0
		if err != nil {
			return fmt.Errorf("dataset-%d.csv: %w", p, err)
		}
		nrec += len(rows)
		set, err := clk.NewSet(s.Bits, clks)
		if err != nil {
			return err
		}
		sets, ids = append(sets, set), append(ids, pid)
		if *out != "" {
			var all []byte
			for _, c := range clks {
				all = append(all, c...)
			}
			if err := os.WriteFile(filepath.Join(*out, fmt.Sprintf("clks-%d.bin", p)), all, 0o644); err != nil {
				return err
			}
		}
	}
	pairs := 0
	for a := range sets {
		for b := a + 1; b < len(sets); b++ {
			pairs += sets[a].Len() * sets[b].Len()
		}
	}
	fmt.Printf("encoded %d records in %v CPU on one goroutine: %.1f µs/record\n", nrec, encTime.Round(time.Millisecond), float64(encTime.Microseconds())/float64(nrec))
	fmt.Println("| threshold | blocking | 5-party groups | correct | precision | recall | candidates | comparisons | candidate CPU | pairs/s | solve CPU |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
	for _, f := range strings.Split(*ths, ",") {
		t, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return err
		}
		for _, b := range []clk.Blocking{clk.BlockingNone, clk.BlockingLSH} {
			opt := clk.LinkOptions{Threshold: t, Blocking: b}
			c0 := cpu()
			cands, st, err := clk.FindCandidates(context.Background(), sets, opt)
			if err != nil {
				return err
			}
			tc := cpu() - c0
			sizes := []int{}
			for _, s := range sets {
				sizes = append(sizes, s.Len())
			}
			c1 := cpu()
			groups, err := clk.Solve(sizes, cands)
			if err != nil {
				return err
			}
			ts := cpu() - c1
			complete, correct, truth := scores(groups, ids)
			name := "none (exact)"
			if b == clk.BlockingLSH {
				name = fmt.Sprintf("LSH %d×%d bits", st.Bands, st.BandBits)
			}
			fmt.Printf("| %.2f | %s | %d | %d | %.4f | %.4f | %d | %d | %v | %.3g | %v |\n", t, name, complete, correct,
				float64(correct)/float64(max(complete, 1)), float64(correct)/float64(truth), st.Candidates, st.Comparisons,
				tc.Round(time.Millisecond), float64(pairs)/tc.Seconds(), ts.Round(time.Millisecond))
			if *out != "" && b == clk.BlockingNone {
				js, _ := json.Marshal(groups)
				if err := os.WriteFile(filepath.Join(*out, fmt.Sprintf("groups-%s.json", f)), js, 0o644); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Synthetic records: names from syllables, a date of birth, sex, city,
// income and phone, in the anonlink schema's column order. Each party's copy
// of a person goes through noise: a typo (substitution, deletion,
// insertion, transposition) in each field with probability 0.2, and a
// missing field with probability 0.03.
var (
	syllables = strings.Fields("an be ca da el fi go ha in jo ka li ma no or pa qu ra si ta ul vi wa xi yo za tre mon ste bri")
	cities    = strings.Fields("sydney melbourne brisbane perth adelaide canberra hobart darwin geelong cairns")
)

func word(rng *rand.Rand) string {
	var b strings.Builder
	for range 2 + rng.IntN(2) {
		b.WriteString(syllables[rng.IntN(len(syllables))])
	}
	return b.String()
}

func person(rng *rand.Rand, id int) []string {
	sex := "male"
	if rng.IntN(2) == 0 {
		sex = "female"
	}
	return []string{strconv.Itoa(id), word(rng), word(rng),
		fmt.Sprintf("%02d-%02d-%d", 1+rng.IntN(28), 1+rng.IntN(12), 1920+rng.IntN(90)), sex,
		cities[rng.IntN(len(cities))], fmt.Sprintf("%d.%03d", 20000+rng.IntN(150000), rng.IntN(1000)),
		fmt.Sprintf("0%d %04d %04d", 2+rng.IntN(7), rng.IntN(10000), rng.IntN(10000))}
}

func noisy(rng *rand.Rand, p []string) []string {
	out := append([]string{p[0]}, p[1:]...)
	for i := 1; i < len(out); i++ {
		r := []rune(out[i])
		switch x := rng.Float64(); {
		case x < 0.03:
			out[i] = ""
			continue
		case x < 0.23 && len(r) > 1:
			k := rng.IntN(len(r) - 1)
			switch rng.IntN(4) {
			case 0:
				r[k] = rune('a' + rng.IntN(26))
			case 1:
				r = append(r[:k], r[k+1:]...)
			case 2:
				r = append(r[:k], append([]rune{rune('a' + rng.IntN(26))}, r[k:]...)...)
			case 3:
				r[k], r[k+1] = r[k+1], r[k]
			}
		}
		out[i] = string(r)
	}
	return out
}

func synthetic(args []string) error {
	fs := flag.NewFlagSet("synthetic", flag.ExitOnError)
	schemaPath := fs.String("schema", "../shared/data/linkage/anonlink_5party/schema.json", "linkage schema")
	n := fs.Int("n", 100000, "records per party")
	parties := fs.Int("parties", 3, "parties")
	overlap := fs.Float64("overlap", 0.5, "fraction of each party's records drawn from a shared pool")
	t := fs.Float64("threshold", 0.8, "Dice threshold")
	seed := fs.Uint64("seed", 16, "PRG seed (deterministic synthetic data)")
	exact := fs.Bool("exact", false, "also link without blocking and report what LSH missed (quadratic)")
	prof := fs.String("cpuprofile", "", "write a CPU profile of the linking step")
	bandBits := fs.Int("bandbits", 0, "LSH bits per band (0: the library's default)")
	fs.Parse(args)
	s, err := clk.LoadSchema(*schemaPath)
	if err != nil {
		return err
	}
	enc, err := clk.NewEncoder(s, []byte(secret))
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(*seed, 0)) // synthetic data, not key material
	shared := int(float64(*n) * *overlap)
	pool := make([][]string, shared)
	for i := range pool {
		pool[i] = person(rng, i)
	}
	next := shared
	var sets []*clk.Set
	var ids [][]string
	var encTime, encCPU time.Duration
	for range *parties {
		rows := make([][]string, 0, *n)
		for _, p := range pool {
			rows = append(rows, noisy(rng, p))
		}
		for len(rows) < *n {
			rows = append(rows, noisy(rng, person(rng, next)))
			next++
		}
		rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
		var pid []string
		for _, r := range rows {
			pid = append(pid, r[0])
		}
		t0, c0 := time.Now(), cpu()
		clks, err := enc.EncodeAll(context.Background(), rows, 1)
		encTime += time.Since(t0)
		encCPU += cpu() - c0
		if err != nil {
			return err
		}
		set, err := clk.NewSet(s.Bits, clks)
		if err != nil {
			return err
		}
		sets, ids = append(sets, set), append(ids, pid)
	}
	total := *n * *parties
	fmt.Printf("GOMAXPROCS=%d; encoded %d records on one goroutine in %v (CPU %v): %.1f µs/record (CPU %.1f µs)\n", runtime.GOMAXPROCS(0), total,
		encTime.Round(time.Millisecond), encCPU.Round(time.Millisecond), float64(encTime.Microseconds())/float64(total), float64(encCPU.Microseconds())/float64(total))
	var ms runtime.MemStats
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	t0, c0 := time.Now(), cpu()
	res, err := clk.Link(context.Background(), sets, clk.LinkOptions{Threshold: *t, Blocking: clk.BlockingLSH, BandBits: *bandBits})
	if *prof != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return err
	}
	lt, lc := time.Since(t0), cpu()-c0
	runtime.ReadMemStats(&ms)
	complete, correct, truth := scores(res.Groups, ids)
	fmt.Printf("linked %d×%d at t=%.2f with LSH %d bands × %d bits (model recall %.3f): %v (CPU %v), %.2f µs/record (CPU %.2f µs); %d comparisons (%.0f per record), %d candidates, %d groups\n",
		*parties, *n, *t, res.Stats.Bands, res.Stats.BandBits, res.Stats.EstimatedRecall, lt.Round(time.Millisecond), lc.Round(time.Millisecond),
		float64(lt.Microseconds())/float64(total), float64(lc.Microseconds())/float64(total), res.Stats.Comparisons, float64(res.Stats.Comparisons)/float64(total), res.Stats.Candidates, len(res.Groups))
	fmt.Printf("all-parties groups: %d, correct %d, precision %.4f, recall %.4f (of %d people in every party); heap in use %d MiB\n",
		complete, correct, float64(correct)/float64(max(complete, 1)), float64(correct)/float64(truth), truth, ms.HeapInuse>>20)
	if *exact {
		c0 := cpu()
		ex, err := clk.Link(context.Background(), sets, clk.LinkOptions{Threshold: *t, Blocking: clk.BlockingNone})
		if err != nil {
			return err
		}
		ec := cpu() - c0
		ecomplete, ecorrect, _ := scores(ex.Groups, ids)
		fmt.Printf("exhaustive: CPU %v, %d comparisons, %d candidates (LSH found %.4f of them), all-parties groups %d, correct %d, recall %.4f\n",
			ec.Round(time.Millisecond), ex.Stats.Comparisons, ex.Stats.Candidates, float64(res.Stats.Candidates)/float64(ex.Stats.Candidates),
			ecomplete, ecorrect, float64(ecorrect)/float64(truth))
	}
	return nil
}
