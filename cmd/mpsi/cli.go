package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// errHelp reports that help was asked for and printed: exit status 0.
var errHelp = errors.New("help shown")

// exitUsage is the exit status of a command line that cannot be run
// (unknown command, subcommand or flag, missing or bad argument).
const exitUsage = 2

// commandHelp is what `mpsi CMD -h` prints above the flags.
var commandHelp = map[string]string{
	"demo": `mpsi demo [--parties N] [--records N] [--overlap F] [--mode dh|keyed] [--aggregation masked|encrypted] [--inproc] [--json]

Generate cohorts, run a coordinator and every hospital as separate processes
over gRPC and mutual TLS, print the result and whether it matches the
plaintext ground truth. With --json, stdout holds the Result JSON only.`,
	"run": `mpsi run --spec FILE --data NAME=FILE [--data NAME=FILE ...] [--map NAME=FILE ...] [--out FILE]

Run a session in process over local CSV files (every party's data on one
machine: for trials and research, not for hospitals that must not share
files). Every party of the spec needs --data; --data and --map refuse names
that are not parties of the spec.`,
	"coordinator": `mpsi coordinator --listen ADDR --certs DIR [--db FILE [--init]] [--max-sessions N] [--max-streams N] [--metrics ADDR] [--join-budget 512MiB]

Serve sessions until SIGINT/SIGTERM. --metrics serves /metrics, /healthz and
/readyz on its own address.`,
	"session": `mpsi session create --coordinator ADDR --certs DIR --spec FILE
mpsi session result --coordinator ADDR --certs DIR --session ID [--sig-out FILE]
mpsi session rerun --coordinator ADDR --certs DIR ID

Register a session (admin), fetch its stored, signed result, or run an
aborted session again under a derived id (admin).`,
	"session rerun": `mpsi session rerun --coordinator ADDR --certs DIR ID

Create a fresh session from an aborted session's stored spec (admin
certificate), with the derived id ID-r1 (ID-r2 … when taken, and a rerun of
ID-r1 is ID-r2); prints the new id. Each party then runs its same command
line with --session set to the new id. A completed or still running session
is refused.`,
	"session create": `mpsi session create --coordinator ADDR --certs DIR --spec FILE

Register a session with the coordinator (admin certificate); prints its id.`,
	"session result": `mpsi session result --coordinator ADDR --certs DIR --session ID [--sig-out FILE]

Print a completed session's Result JSON, exactly as the coordinator signed it
(plus a newline). --sig-out writes the coordinator's signature (base64) for
mpsi report --sig.`,
	"party": `mpsi party --coordinator ADDR --certs DIR --name NAME --session ID --data FILE [--map FILE] [--policy FILE] [--out FILE]

Take part in a session with one hospital's CSV file.`,
	"audit": `mpsi audit verify --db FILE
mpsi audit head --db FILE

Verify the coordinator's hash-chained audit log, or print its head.`,
	"audit verify": `mpsi audit verify --db FILE

Verify the coordinator's hash-chained audit log.`,
	"audit head": `mpsi audit head --db FILE

Verify the audit log and print its head (sequence number and hash), to
publish or countersign outside the database.`,
	"bench": `mpsi bench [--parties 2,3,5] [--records 10k,100k,1m] [--mode dh,keyed] [--aggregation masked,encrypted] [--join-budget B] [--inproc] [--json]

End-to-end benchmarks on generated cohorts, each checked against the ground
truth. With --json, stdout holds one JSON object per run and nothing else.`,
	"gen-cohorts": `mpsi gen-cohorts --out DIR [--parties N] [--records N] [--overlap F] [--seed N] [--mode dh|keyed] [--realistic] [--keys JSON]

Write reproducible synthetic cohorts: CSV and mapping per party, spec.json
and truth.json. --realistic gives patients realistic identities and
identifier errors and writes truth_groups.csv (record -> patient); --keys
writes match.keys into the spec (bench/README.md, "Linkage quality").`,
	"dev-certs": `mpsi dev-certs --out DIR [--names coordinator,admin,hospital-a,...] [--valid-for 168h]

Write a throwaway CA and certificates (development only); says when they
expire.`,
	"report": `mpsi report RESULT.json [--spec SPEC] [--sig FILE --certs DIR] --out report.html

Write one self-contained HTML page (no network fetches) with the session, the
parties, the intersection, the pairwise overlap heat map, each histogram as a
bar chart, the aggregates with their contributions, suppressed cells marked
as such, privacy parameters when present, and the signature check.`,
	"version": `mpsi version

Print the version.`,
}

// commandNames lists the top-level commands, for suggestions.
var commandNames = []string{"demo", "run", "coordinator", "session", "party", "audit", "bench", "gen-cohorts", "dev-certs", "report", "version", "help"}

// flagSet is a flag.FlagSet that prints its help on stdout (and returns
// errHelp), and turns parse errors into a short message with a hint.
type flagSet struct {
	*flag.FlagSet
	name   string
	stdout io.Writer
}

func newFlags(name string, stdout io.Writer) *flagSet {
	fs := flag.NewFlagSet("mpsi "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by parseFlags
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, name: name, stdout: stdout}
}

// printUsage writes the command's help and its flags to w.
func (fs *flagSet) printUsage(w io.Writer) {
	printHelpText(w, commandHelp[fs.name])
	var lines []string
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		l := "    --" + f.Name
		if typ != "" {
			l += " " + typ
		}
		l += "\n        " + usage
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "map[]" {
			l += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		lines = append(lines, l)
	})
	if len(lines) > 0 {
		fmt.Fprintf(w, "\nFlags:\n%s\n", strings.Join(lines, "\n"))
	}
}

// printHelpText writes a command's help text indented under "Usage:".
func printHelpText(w io.Writer, text string) {
	fmt.Fprintln(w, "Usage:")
	for _, l := range strings.Split(text, "\n") {
		if l == "" {
			fmt.Fprintln(w)
		} else {
			fmt.Fprintln(w, "    "+l)
		}
	}
}

// parseFlags parses args and refuses stray positional arguments.
func parseFlags(fs *flagSet, args []string) error {
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError(fs, fmt.Errorf("unexpected argument %q", rest[0]), "flags are written --name value")
	}
	return nil
}

// parseInterspersed parses args, allowing positional arguments between
// flags, and returns the positional ones.
func parseInterspersed(fs *flagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.printUsage(fs.stdout)
				return nil, errHelp
			}
			return nil, fs.explain(err)
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		args = fs.Args()
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// explain turns a flag package error into a short one with a hint.
func (fs *flagSet) explain(err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		e := fmt.Errorf("mpsi %s: unknown flag --%s", fs.name, strings.TrimLeft(name, "-"))
		if s := suggest(strings.TrimLeft(name, "-"), names); s != "" {
			return usageFail{hintError{e, fmt.Sprintf("did you mean --%s? (mpsi %s -h lists the flags)", s, fs.name)}}
		}
		return usageFail{hintError{e, fmt.Sprintf("mpsi %s -h lists the flags", fs.name)}}
	}
	msg = strings.Replace(msg, " -", " --", 1)
	return usageError(fs, fmt.Errorf("mpsi %s: %s", fs.name, msg), "")
}

// usageFail is an error of the command line: exit status exitUsage.
type usageFail struct{ hintError }

// usageError is a hintError with the usage exit status, pointing at the
// command's help.
func usageError(fs *flagSet, err error, hint string) error {
	more := fmt.Sprintf("mpsi %s -h shows the usage", fs.name)
	if hint == "" {
		hint = more
	} else {
		hint += "; " + more
	}
	return usageFail{hintError{err, hint}}
}

// unknownName is the error for an unknown command or subcommand.
func unknownName(what, got string, known []string, helpCmd string) error {
	e := fmt.Errorf("unknown %s %q", what, got)
	if s := suggest(got, known); s != "" {
		return usageFail{hintError{e, fmt.Sprintf("did you mean %s? (%s lists them)", s, helpCmd)}}
	}
	return usageFail{hintError{e, helpCmd + " lists them"}}
}

// subcommand picks the subcommand of group from args: help on -h,
// --help or help, a short error with a suggestion otherwise.
func subcommand(group string, subs []string, args []string, stdout io.Writer) (string, []string, error) {
	if len(args) == 0 {
		return "", nil, usageFail{hintError{fmt.Errorf("mpsi %s needs a subcommand: %s", group, strings.Join(subs, " or ")), fmt.Sprintf("mpsi %s -h shows the usage", group)}}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		printHelpText(stdout, commandHelp[group])
		return "", nil, errHelp
	}
	for _, s := range subs {
		if args[0] == s {
			return s, args[1:], nil
		}
	}
	return "", nil, unknownName(group+" subcommand", args[0], subs, "mpsi "+group+" -h")
}

// suggest returns the known name closest to got, if close enough to be a
// likely typo (or got is a prefix of exactly one name).
func suggest(got string, known []string) string {
	best, bestD := "", len(got)/3+2
	var prefixed []string
	for _, k := range known {
		if d := editDistance(got, k); d < bestD {
			best, bestD = k, d
		}
		if got != "" && strings.HasPrefix(k, got) {
			prefixed = append(prefixed, k)
		}
	}
	if best == "" && len(prefixed) == 1 {
		return prefixed[0]
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(strings.ToLower(a)), []rune(strings.ToLower(b))
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// sortedNames returns the keys of m in order.
func sortedNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
