// Command mpsi runs secure multi-party private set intersection sessions
// with aggregate statistics. See README.md for the walk-through.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `mpsi: secure multi-party private set intersection with aggregate statistics

Usage:
    mpsi demo [--parties N] [--records N] [--overlap F] [--mode dh|keyed] [--aggregation masked|encrypted] [--json]
    mpsi run --spec FILE --data NAME=FILE [--data NAME=FILE ...] [--map NAME=FILE ...] [--out FILE]
    mpsi coordinator --listen ADDR --certs DIR [--db FILE [--init]] [--max-sessions N] [--max-streams N] [--metrics ADDR] [--join-budget 512MiB] [--privacy-epsilon E [--privacy-delta D]]
    mpsi session create --coordinator ADDR --certs DIR --spec FILE
    mpsi session result --coordinator ADDR --certs DIR --session ID
    mpsi session rerun --coordinator ADDR --certs DIR ID
    mpsi party --coordinator ADDR --certs DIR --name NAME --session ID --data FILE [--map FILE] [--policy FILE [--ledger FILE] [--dataset NAME]] [--out FILE]
    mpsi audit verify|head --db FILE
    mpsi bench [--parties 2,3,5] [--records 10k,100k,1m] [--mode dh,keyed] [--aggregation masked,encrypted] [--join-budget B] [--inproc] [--json]
    mpsi gen-cohorts --out DIR [--parties N] [--records N] [--overlap F] [--seed N] [--mode dh|keyed] [--realistic] [--keys JSON]
    mpsi dev-certs --out DIR --names coordinator,hospital-a,hospital-b,... [--valid-for 168h]
    mpsi report RESULT.json [--spec FILE] [--sig FILE --certs DIR] --out report.html
    mpsi version
    mpsi help [COMMAND]          (or mpsi COMMAND -h)

Commands:
    demo         generate cohorts, run a coordinator and every hospital as
                 separate processes over gRPC and mutual TLS, print the result
                 and whether it matches the plaintext ground truth
                 (--inproc: the same rounds in one process)
    coordinator  serve sessions until SIGINT/SIGTERM
    session      register a session (admin) or fetch its stored result
    party        take part in a session with one hospital's CSV file
    audit        verify the coordinator's hash-chained audit log
    bench        end-to-end benchmarks on generated cohorts, checked against
                 the ground truth
    run          run a session in process over local CSV files (every party's
                 data on one machine: for trials and research, not for
                 hospitals that must not share files)
    gen-cohorts  write reproducible synthetic cohorts: CSV and mapping per
                 party, spec.json and truth.json
    dev-certs    write a throwaway CA and certificates (development only)
    report       write a Result as one self-contained HTML page

Example:
    mpsi gen-cohorts --out /tmp/c --parties 3 --records 1000
    mpsi run --spec /tmp/c/spec.json \
        --data hospital-a=/tmp/c/hospital-a.csv --map hospital-a=/tmp/c/hospital-a.map.json \
        --data hospital-b=/tmp/c/hospital-b.csv --map hospital-b=/tmp/c/hospital-b.map.json \
        --data hospital-c=/tmp/c/hospital-c.csv --map hospital-c=/tmp/c/hospital-c.map.json
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitStatus(err, os.Stderr))
}

// exitStatus reports err on stderr and returns the process's exit status:
// 0 for success or help, exitUsage for a command line that cannot be run,
// 1 for any other failure.
func exitStatus(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, errHelp) {
		return 0
	}
	var ue usageFail
	isUsage := errors.As(err, &ue)
	he, isHint := ue.hintError, isUsage
	if !isUsage {
		isHint = errors.As(err, &he)
	}
	if isHint {
		fmt.Fprintf(stderr, "mpsi: error: %s\nmpsi: hint: %s\n", he.err, he.hint)
	} else {
		fmt.Fprintf(stderr, "mpsi: error: %v\n", err)
	}
	if isUsage {
		return exitUsage
	}
	return 1
}

type hintError struct {
	err  error
	hint string
}

func (h hintError) Error() string { return h.err.Error() + " (" + h.hint + ")" }
func (h hintError) Unwrap() error { return h.err }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageFail{hintError{errors.New("no command given"), "try: mpsi demo"}}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "demo":
		return runDemo(ctx, rest, stdout, stderr)
	case "run":
		return runLocal(ctx, rest, stdout, stderr)
	case "coordinator":
		return runCoordinator(ctx, rest, stdout, stderr)
	case "session":
		return runSession(ctx, rest, stdout, stderr)
	case "party":
		return runParty(ctx, rest, stdout, stderr)
	case "audit":
		return runAudit(ctx, rest, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, stdout, stderr)
	case "gen-cohorts":
		return runGenCohorts(rest, stdout, stderr)
	case "dev-certs":
		return runDevCerts(rest, stdout, stderr)
	case "report":
		return runReport(ctx, rest, stdout, stderr)
	case "version", "-version", "--version":
		fs := newFlags("version", stdout)
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "mpsi", version())
		return nil
	case "help", "-h", "-help", "--help":
		if len(rest) == 0 {
			fmt.Fprint(stdout, usage)
			return nil
		}
		if _, ok := commandHelp[rest[0]]; !ok && rest[0] != "help" {
			return unknownName("command", rest[0], commandNames, "mpsi help")
		}
		return run(ctx, append(rest, "--help"), stdout, stderr)
	default:
		return unknownName("command", cmd, commandNames, "mpsi help")
	}
}
