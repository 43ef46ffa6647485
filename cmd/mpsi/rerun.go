package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mpsiv1 "github.com/mpsi-dev/mpsi/api/mpsi/v1"
	"github.com/mpsi-dev/mpsi/coordinator/store"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// maxReruns bounds the derived ids tried for one rerun.
const maxReruns = 1000

// rerunSuffix is the suffix of a derived id: ID-r1, ID-r2, …
var rerunSuffix = regexp.MustCompile(`^(.*)-r([1-9][0-9]{0,3})$`)

// rerunID returns the base id and the first rerun number to try: a rerun of
// ID gives ID-r1, a rerun of ID-r1 gives ID-r2.
func rerunID(id string) (base string, next int) {
	if m := rerunSuffix.FindStringSubmatch(id); m != nil {
		n, _ := strconv.Atoi(m[2])
		return m[1], n + 1
	}
	return id, 1
}

// rerunSession creates a fresh session from an aborted session's stored
// spec, under the first free derived id, and prints that id.
func rerunSession(ctx context.Context, cl mpsiv1.CoordinatorClient, old *mpsiv1.GetResultResponse, stdout, stderr io.Writer) error {
	id := old.GetSessionId()
	switch old.GetState() {
	case store.StateAborted:
	case store.StateCompleted:
		return fmt.Errorf("session %s completed: its Result stands, there is nothing to rerun", id)
	default:
		return fmt.Errorf("session %s is %s: only an aborted session can be rerun (wait for it to end, or for the round timeout to abort it)", id, old.GetState())
	}
	if len(old.GetSpecJson()) == 0 {
		return fmt.Errorf("session %s: the coordinator did not return its spec (an older coordinator?)", id)
	}
	var m map[string]any
	if err := json.Unmarshal(old.GetSpecJson(), &m); err != nil {
		return fmt.Errorf("session %s: stored spec: %w", id, err)
	}
	base, n := rerunID(id)
	for tries := 0; tries < maxReruns; tries, n = tries+1, n+1 {
		m["id"] = fmt.Sprintf("%s-r%d", base, n)
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		spec, err := session.ParseSpec(b)
		if err != nil {
			return fmt.Errorf("session %s: derived id: %w", id, err)
		}
		resp, err := cl.CreateSession(ctx, &mpsiv1.CreateSessionRequest{SpecJson: spec.Canonical()})
		if status.Code(err) == codes.AlreadyExists {
			continue
		}
		if err != nil {
			return statusErr(err)
		}
		fmt.Fprintln(stdout, resp.GetSessionId())
		fmt.Fprintf(stderr, "mpsi: session %s re-created as %s (aborted: %s); each party runs its same command line with --session %s\n",
			id, resp.GetSessionId(), old.GetReason(), resp.GetSessionId())
		return nil
	}
	return fmt.Errorf("session %s: %d derived ids %s-rN are taken", id, maxReruns, base)
}
