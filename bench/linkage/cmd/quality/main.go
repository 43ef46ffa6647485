// Command quality prints the linkage-quality table of bench/README.md:
// recall and precision of match-key lists on realistic bench/cohort
// cohorts (generated into a temporary directory) and, with -anonlink, on
// the anonlink five-party set.
//
//	go run ./bench/linkage/cmd/quality -parties 3,5 -records 10000,100000
//	go run ./bench/linkage/cmd/quality -anonlink ../shared/data/linkage/anonlink_5party
//	go run ./bench/linkage/cmd/quality -parties 3 -records 10000 -sets recommended -clk 0.7,0.8
//	go run ./bench/linkage/cmd/quality -synthea ../shared/data/synthea/sample_1k_apr2020/patients.csv -parties 4 -records 430
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/bench/linkage"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "quality:", err)
		os.Exit(1)
	}
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", f, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func run() error {
	parties := flag.String("parties", "3", "comma-separated party counts")
	records := flag.String("records", "10000", "comma-separated records per party")
	seed := flag.Uint64("seed", 1, "cohort seed")
	shared := flag.Float64("shared", 0.3, "fraction of each party's records shared by all parties")
	pair := flag.Float64("pair", 0.1, "fraction shared with one other party")
	sets := flag.String("sets", "", "comma-separated names of key sets (default: all for the data)")
	keysJSON := flag.String("keys", "", `an extra key list as JSON, e.g. [["ssn"],["family_name","given_name","birth_date"]]`)
	anonlink := flag.String("anonlink", "", "directory of the anonlink five-party set (only it is evaluated when set)")
	synthea := flag.String("synthea", "", "a Synthea patients.csv whose people the cohorts take as identities, instead of drawing them")
	clkThresholds := flag.String("clk", "", "comma-separated Dice thresholds: also link each cohort in mode clk (linkage.CohortCLKSchema) at each")
	flag.Parse()

	pick := func(all []linkage.KeySet) ([]linkage.KeySet, error) {
		var out []linkage.KeySet
		if *sets == "" {
			out = append(out, all...)
		} else {
			for _, name := range strings.Split(*sets, ",") {
				ok := false
				for _, s := range all {
					if s.Name == name {
						out, ok = append(out, s), true
					}
				}
				if !ok {
					return nil, fmt.Errorf("-sets: no key set %q", name)
				}
			}
		}
		if *keysJSON != "" {
			var k [][]string
			if err := json.Unmarshal([]byte(*keysJSON), &k); err != nil {
				return nil, fmt.Errorf("-keys: %w", err)
			}
			out = append(out, linkage.KeySet{Name: "custom", Keys: k})
		}
		return out, nil
	}
	fmt.Println("| data | n | records/party | keys | all-party patients | found | complete groups | pure | recall | precision | ambiguous | completed per key |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|")
	row := func(data string, n, m int, s linkage.KeySet, q linkage.Quality) {
		fmt.Printf("| %s | %d | %d | %s | %d | %d | %d | %d | %.2f%% | %.3f%% | %d | %v |\n", data, n, m, s.Name,
			q.Entities, q.Found, q.Complete, q.Pure, 100*q.Recall(), 100*q.Precision(), q.Ambiguous, q.Completed)
	}
	if *anonlink != "" {
		list, err := pick(linkage.AnonlinkKeySets)
		if err != nil {
			return err
		}
		for _, s := range list {
			keys, err := linkage.ParseKeys(s.Keys)
			if err != nil {
				return err
			}
			d, err := linkage.LoadAnonlink(*anonlink, keys)
			if err != nil {
				return err
			}
			q, err := d.Evaluate()
			if err != nil {
				return err
			}
			row("anonlink 5-party", 5, d.Parties[0].Len(), s, q)
		}
		return nil
	}
	ns, err := ints(*parties)
	if err != nil {
		return fmt.Errorf("-parties: %w", err)
	}
	ms, err := ints(*records)
	if err != nil {
		return fmt.Errorf("-records: %w", err)
	}
	list, err := pick(linkage.CohortKeySets)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "mpsi-quality-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	errs := cohort.DefaultErrors()
	var people []cohort.Person
	data := "cohort"
	if *synthea != "" {
		f, err := os.Open(*synthea)
		if err != nil {
			return err
		}
		people, err = cohort.ReadSyntheaPatients(f)
		f.Close()
		if err != nil {
			return err
		}
		data = "synthea cohort"
	}
	for _, n := range ns {
		for _, m := range ms {
			dir := filepath.Join(tmp, fmt.Sprintf("n%d-m%d", n, m))
			cfg := cohort.Config{Seed: *seed, Parties: n, Records: m, SharedAll: *shared, SharedPair: *pair, Noise: true, Realistic: &errs, People: people}
			if _, err := cohort.GenerateDir(cfg, dir); err != nil {
				return err
			}
			for _, s := range list {
				// The parties' own loader and keys (party.Records.KeyAt).
				d, err := linkage.LoadCohortRecords(dir, s.Keys)
				if err != nil {
					return err
				}
				q, err := d.Evaluate()
				if err != nil {
					return err
				}
				row(data, n, m, s, q)
			}
			if *clkThresholds == "" {
				continue
			}
			for _, f := range strings.Split(*clkThresholds, ",") {
				th, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
				if err != nil {
					return fmt.Errorf("-clk: %w", err)
				}
				q, err := linkage.EvaluateCohortCLK(context.Background(), dir, []byte(linkage.CohortCLKSchema), th)
				if err != nil {
					return err
				}
				row(data, n, m, linkage.KeySet{Name: fmt.Sprintf("clk ≥ %.2f", th)}, q)
			}
		}
	}
	return nil
}
