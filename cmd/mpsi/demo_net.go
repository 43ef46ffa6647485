package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// runNetworkDemo runs the coordinator and every party as separate processes
// of this binary on 127.0.0.1 over gRPC with mutual TLS.
func runNetworkDemo(ctx context.Context, c *cohort.Cohort, asJSON bool, stdout, stderr io.Writer) error {
	run, err := runCluster(ctx, c.WriteDir, stderr, clusterOptions{RoundTimeout: time.Minute})
	if err != nil {
		return err
	}
	spec, err := session.ParseSpec(c.Spec)
	if err != nil {
		return err
	}
	r := run.Results[c.Parties[0].Name]
	a, _ := json.Marshal(r)
	for name, other := range run.Results {
		b, _ := json.Marshal(other)
		if !bytes.Equal(a, b) {
			return fmt.Errorf("party %s received a different result", name)
		}
	}
	if asJSON {
		if err := writeJSON(stdout, r); err != nil {
			return err
		}
	} else {
		printTable(stdout, r)
		fmt.Fprintf(stdout, "session time: %s over gRPC/TLS between %d processes, %s aggregation\n", run.Elapsed.Round(time.Millisecond), len(c.Parties)+1, spec.Aggregation)
	}
	return reportTruth(r, c.Truth, spec.MinCell, asJSON, stdout, stderr)
}
