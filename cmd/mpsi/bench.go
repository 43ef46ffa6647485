package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/psi"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// benchRow is one end-to-end benchmark run.
type benchRow struct {
	Parties      int     `json:"parties"`
	Records      int     `json:"records_per_party"`
	Mode         string  `json:"mode"`
	Group        string  `json:"group,omitempty"`
	Aggregation  string  `json:"aggregation"`
	Keys         int     `json:"keys"`
	Inproc       bool    `json:"inproc"`
	LoadS        float64 `json:"load_s"`
	TokensS      float64 `json:"tokens_s"`
	RingS        float64 `json:"ring_s"`
	JoinS        float64 `json:"join_s"`
	AggregationS float64 `json:"aggregation_s"`
	TotalS       float64 `json:"total_s"`
	CPUS         float64 `json:"cpu_s"` // user+system CPU of the coordinator and parties (inproc: this process)
	ElemPerS     float64 `json:"elements_per_s"`
	WireBPerElem float64 `json:"wire_bytes_per_element"`
	CoordRSS     int64   `json:"coordinator_peak_rss"`
	PartyRSS     int64   `json:"party_peak_rss"`
	Correct      bool    `json:"correct"`
	Error        string  `json:"error,omitempty"`
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(strings.ToLower(f))
		mult := 1
		switch {
		case strings.HasSuffix(f, "k"):
			mult, f = 1000, strings.TrimSuffix(f, "k")
		case strings.HasSuffix(f, "m"):
			mult, f = 1000000, strings.TrimSuffix(f, "m")
		}
		v, err := strconv.Atoi(f)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q is not a positive count", f)
		}
		out = append(out, v*mult)
	}
	return out, nil
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stdout)
	partiesF := fs.String("parties", "3", "comma-separated party counts, e.g. 2,3,5")
	recordsF := fs.String("records", "10k", "comma-separated records per party, e.g. 10k,100k,1m")
	modesF := fs.String("mode", "dh", "comma-separated modes: dh, keyed")
	overlap := fs.Float64("overlap", 0.3, "fraction of records shared by all")
	seed := fs.Uint64("seed", 1, "cohort seed")
	inproc := fs.Bool("inproc", false, "run in this process instead of separate processes over gRPC")
	asJSON := fs.Bool("json", false, "print one JSON object per run")
	timeout := fs.Duration("round-timeout", 30*time.Minute, "coordinator round deadline")
	profileDir := fs.String("profile-dir", "", "write pprof CPU profiles of the coordinator and every party here")
	joinBudget := fs.String("join-budget", "", "the coordinator's --join-budget (e.g. 512MiB: tokens spill to disk beyond it); empty: in-memory join")
	reconnectGrace := fs.Duration("reconnect-grace", 0, "the coordinator's --reconnect-grace (frames are kept for resending until acknowledged)")
	groupsF := fs.String("group", "", "comma-separated dh groups, run back to back for each size: ristretto255, x25519 (empty: the spec default)")
	aggregation := fs.String("aggregation", session.AggregationMasked, "comma-separated aggregation modes: masked, oblivious, encrypted")
	keysF := fs.Int("keys", 1, "match keys: 1 (the cohort's exact key), 2 or 3 (adding soundex+initial+birth date, then names + unordered day/month; see bench/README.md)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ps, err := parseInts(*partiesF)
	if err != nil {
		return fmt.Errorf("--parties: %w", err)
	}
	rs, err := parseInts(*recordsF)
	if err != nil {
		return fmt.Errorf("--records: %w", err)
	}
	aggs := strings.Split(*aggregation, ",")
	for _, a := range aggs {
		if a != session.AggregationMasked && a != session.AggregationOblivious && a != session.AggregationEncrypted {
			return usageError(fs, fmt.Errorf("--aggregation %q", a), "use masked, oblivious, encrypted, or a list such as masked,oblivious,encrypted")
		}
	}
	if *keysF < 1 || *keysF > len(benchKeys) {
		return usageError(fs, fmt.Errorf("--keys %d", *keysF), fmt.Sprintf("use 1 to %d", len(benchKeys)))
	}
	groups := strings.Split(*groupsF, ",")
	for _, g := range groups {
		if g != "" && g != psi.GroupRistretto255 && g != psi.GroupX25519 {
			return hintError{fmt.Errorf("--group %q", g), "use ristretto255, x25519 or ristretto255,x25519"}
		}
	}
	var rows []benchRow
	for _, agg := range aggs {
		for _, mode := range strings.Split(*modesF, ",") {
			if mode != session.ModeDH && mode != session.ModeKeyed {
				return usageError(fs, fmt.Errorf("--mode %q", mode), "use dh, keyed or dh,keyed")
			}
			modeGroups := groups
			if mode != session.ModeDH {
				modeGroups = []string{""}
			}
			for _, n := range ps {
				for _, r := range rs {
					for _, group := range modeGroups {
						fmt.Fprintf(stderr, "mpsi: bench: n=%d records=%d mode=%s%s keys=%d: generating cohort\n", n, r, mode, groupSuffix(group), *keysF)
						cfg := cohort.Config{Seed: *seed, Parties: n, Records: r, SharedAll: *overlap, SharedPair: min(0.1, 1-*overlap), Noise: true, Mode: mode, Group: group, MinCell: 0, Aggregation: agg, Keys: benchKeyList(*keysF)}
						var row benchRow
						var err error
						if *inproc {
							c, gerr := cohort.Generate(cfg)
							if gerr != nil {
								return gerr
							}
							cpu0 := cpuTime(syscall.RUSAGE_SELF)
							row, err = benchInproc(ctx, c, stderr)
							row.CPUS = (cpuTime(syscall.RUSAGE_SELF) - cpu0).Seconds()
						} else {
							cpu0 := cpuTime(syscall.RUSAGE_CHILDREN)
							row, err = benchCluster(ctx, cfg, stderr, clusterOptions{RoundTimeout: *timeout, ProfileDir: *profileDir, JoinBudget: *joinBudget, ReconnectGrace: *reconnectGrace})
							row.CPUS = (cpuTime(syscall.RUSAGE_CHILDREN) - cpu0).Seconds()
						}
						row.Parties, row.Records, row.Mode, row.Group, row.Inproc, row.Aggregation, row.Keys = n, r, mode, group, *inproc, agg, *keysF
						if err != nil {
							row.Error = err.Error()
							fmt.Fprintf(stderr, "mpsi: bench: run failed: %v\n", err)
						}
						if row.TotalS > 0 {
							row.ElemPerS = float64(n*r) / row.TotalS
						}
						rows = append(rows, row)
						if *asJSON {
							if err := writeJSON(stdout, row); err != nil {
								return err
							}
						}
						fmt.Fprintf(stderr, "mpsi: bench: n=%d records=%d mode=%s%s: %.2fs, cpu %.2fs, correct=%v\n", n, r, mode, groupSuffix(group), row.TotalS, row.CPUS, row.Correct)
					}
				}
			}
		}
	}
	if !*asJSON {
		printBench(stdout, rows)
	}
	for _, r := range rows {
		if !r.Correct {
			return fmt.Errorf("a run failed or did not match the ground truth")
		}
	}
	return nil
}

// benchCluster generates the cohort of cfg straight into the cluster's
// directory (the bench holds no party's file in memory) and runs it.
func benchCluster(ctx context.Context, cfg cohort.Config, stderr io.Writer, opt clusterOptions) (benchRow, error) {
	var row benchRow
	var truth *cohort.Truth
	run, err := runCluster(ctx, func(dir string) (err error) {
		truth, err = cohort.GenerateDir(cfg, dir)
		return err
	}, stderr, opt)
	if err != nil {
		return row, err
	}
	spec := run.Spec
	var bytesOnWire int64
	n := float64(len(run.Stats))
	for _, st := range run.Stats {
		row.LoadS += st.Load.Seconds() / n
		row.TokensS += st.Tokens.Seconds() / n
		row.RingS += st.Ring.Seconds() / n
		row.AggregationS += st.Aggregate.Seconds() / n
		bytesOnWire += st.BytesSent + st.BytesReceived
	}
	row.JoinS = run.JoinTime.Seconds()
	row.TotalS = run.Elapsed.Seconds()
	row.WireBPerElem = float64(bytesOnWire) / float64(cfg.Parties*cfg.Records)
	row.CoordRSS = run.CoordRSS
	for _, r := range run.PartyRSS {
		row.PartyRSS = max(row.PartyRSS, r)
	}
	if err := checkTruth(run.Results[spec.Parties[0]], *truth, spec.MinCell); err != nil {
		fmt.Fprintf(stderr, "mpsi: bench: the Result differs from the ground truth: %v\n", err)
	} else {
		row.Correct = true
	}
	return row, nil
}

func benchInproc(ctx context.Context, c *cohort.Cohort, stderr io.Writer) (benchRow, error) {
	var row benchRow
	spec, err := session.ParseSpec(c.Spec)
	if err != nil {
		return row, err
	}
	start := time.Now()
	ins, err := cohortInputs(c, spec)
	if err != nil {
		return row, err
	}
	row.LoadS = time.Since(start).Seconds()
	cfg := party.Config{Phase: func(name string, d time.Duration) {
		switch name {
		case "tokens":
			row.TokensS += d.Seconds()
		case "ring":
			row.RingS += d.Seconds()
		case "join":
			row.JoinS += d.Seconds()
		case "aggregation", "release":
			row.AggregationS += d.Seconds()
		}
		fmt.Fprintf(stderr, "mpsi: bench: phase %s done in %s\n", name, d.Round(time.Millisecond))
	}}
	out, err := party.RunLocal(ctx, spec, ins, cfg)
	if err != nil {
		return row, err
	}
	row.TotalS = time.Since(start).Seconds()
	row.CoordRSS = peakRSS() // the whole process: every party and the coordinator
	if err := checkTruth(out.Result, c.Truth, spec.MinCell); err != nil {
		fmt.Fprintf(stderr, "mpsi: bench: the Result differs from the ground truth: %v\n", err)
	} else {
		row.Correct = true
	}
	return row, nil
}

// groupSuffix is "/group" for a named dh group, for the mode column.
func groupSuffix(group string) string {
	if group == "" {
		return ""
	}
	return "/" + group
}

// cpuTime is the user+system CPU time of who (RUSAGE_SELF, or
// RUSAGE_CHILDREN: every waited-for child, i.e. the cluster's processes).
func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func printBench(w io.Writer, rows []benchRow) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "n\trecords/party\tmode\taggregation\tkeys\tload s\ttokens s\tring+join s\tjoin s\tagg s\ttotal s\tCPU s\telem/s\twire B/elem\tcoord RSS MiB\tparty RSS MiB\tcorrect\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.3f\t%.2f\t%.2f\t%.0f\t%.1f\t%.0f\t%.0f\t%v\t\n", r.Parties, r.Records, r.Mode+groupSuffix(r.Group), r.Aggregation, max(r.Keys, 1),
			r.LoadS, r.TokensS, r.RingS, r.JoinS, r.AggregationS, r.TotalS, r.CPUS, r.ElemPerS, r.WireBPerElem,
			float64(r.CoordRSS)/(1<<20), float64(r.PartyRSS)/(1<<20), r.Correct)
	}
	tw.Flush()
}

// benchKeys are the match keys `mpsi bench --keys k` uses, the first k of
// them, on the cohort's fields: its exact key, then the family name's
// Soundex code with the given name's initial and the birth date, then the
// names with the birth date's day and month unordered.
var benchKeys = [][]string{
	{"given_name", "family_name", "birth_date", "sex"}, // the cohort spec's own match fields
	{"family_name|soundex", "given_name|initial", "birth_date"},
	{"family_name", "given_name", "birth_date|day_month_unordered"},
}

// benchKeyList is cohort.Config.Keys for --keys k: nil (the cohort's
// one-key spec) for k = 1.
func benchKeyList(k int) [][]string {
	if k <= 1 {
		return nil
	}
	return benchKeys[:k]
}
