package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mpsi-dev/mpsi/internal/devcert"
	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// clusterRun is the outcome of a session run by separate processes of this
// binary: a coordinator and one process per party, on 127.0.0.1.
type clusterRun struct {
	Spec      *session.Spec
	Results   map[string]*session.Result
	Stats     map[string]party.Stats
	Elapsed   time.Duration // from starting the parties to the last exit
	JoinTime  time.Duration // the coordinator's join, from its log
	CoordRSS  int64         // peak resident set, bytes
	PartyRSS  map[string]int64
	CoordLogs string
}

var (
	joinRe = regexp.MustCompile(`join_seconds=([0-9.e+-]+)`)
	rssRe  = regexp.MustCompile(`peak_rss_bytes=([0-9]+)`)
)

// runCluster has writeCohort write a cohort into a directory (as
// cohort.Cohort.WriteDir or cohort.GenerateDir do), starts a
// coordinator and every party of it as processes of this binary, runs one
// session and collects results and measurements.
// clusterOptions are runCluster's settings.
type clusterOptions struct {
	RoundTimeout time.Duration
	ProfileDir   string // "": no CPU profiles
	JoinBudget   string // the coordinator's --join-budget; "": its default
	// ReconnectGrace is the coordinator's --reconnect-grace; 0: off.
	ReconnectGrace time.Duration
}

func runCluster(ctx context.Context, writeCohort func(dir string) error, stderr io.Writer, opt clusterOptions) (*clusterRun, error) {
	roundTimeout, profileDir := opt.RoundTimeout, opt.ProfileDir
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mpsi-cluster-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	data := filepath.Join(dir, "cohort")
	if err := writeCohort(data); err != nil {
		return nil, err
	}
	specJSON, err := os.ReadFile(filepath.Join(data, "spec.json"))
	if err != nil {
		return nil, err
	}
	spec, err := session.ParseSpec(specJSON)
	if err != nil {
		return nil, err
	}
	names := append([]string{"coordinator", "admin"}, spec.Parties...)
	certs := filepath.Join(dir, "certs")
	if err := devcert.WriteDir(certs, names); err != nil {
		return nil, err
	}
	addrFile := filepath.Join(dir, "addr")
	coordLogPath := filepath.Join(dir, "coordinator.log")
	coordLog, err := os.Create(coordLogPath)
	if err != nil {
		return nil, err
	}
	defer coordLog.Close()
	coordArgs := []string{"coordinator", "--listen", "127.0.0.1:0", "--certs", certs,
		"--db", filepath.Join(dir, "mpsi.db"), "--addr-file", addrFile, "--round-timeout", roundTimeout.String()}
	if profileDir != "" {
		coordArgs = append(coordArgs, "--cpuprofile", filepath.Join(profileDir, "coordinator.cpu.pprof"))
	}
	if opt.JoinBudget != "" {
		coordArgs = append(coordArgs, "--join-budget", opt.JoinBudget, "--spill-dir", dir)
	}
	if opt.ReconnectGrace > 0 {
		coordArgs = append(coordArgs, "--reconnect-grace", opt.ReconnectGrace.String())
	}
	coord := exec.CommandContext(ctx, exe, coordArgs...)
	coord.Stdout, coord.Stderr = coordLog, coordLog
	if err := coord.Start(); err != nil {
		return nil, err
	}
	coordDone := false
	stopCoord := func() {
		if coordDone {
			return
		}
		coordDone = true
		_ = coord.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = coord.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = coord.Process.Kill()
			<-done
		}
	}
	defer stopCoord()
	var addr string
	for deadline := time.Now().Add(30 * time.Second); ; {
		b, err := os.ReadFile(addrFile)
		if err == nil && len(b) > 0 {
			addr = string(b)
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("coordinator did not start: %s", tail(coordLogPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintf(stderr, "mpsi: coordinator on %s (TLS 1.3, mutual authentication), %d hospital processes\n", addr, len(spec.Parties))
	create := exec.CommandContext(ctx, exe, "session", "create", "--coordinator", addr, "--certs", certs, "--name", "admin", "--spec", filepath.Join(data, "spec.json"))
	var createErr bytes.Buffer
	create.Stdout, create.Stderr = io.Discard, &createErr
	if err := create.Run(); err != nil {
		return nil, fmt.Errorf("session create: %w: %s", err, createErr.String())
	}
	start := time.Now()
	procs := make([]*exec.Cmd, len(spec.Parties))
	for i, name := range spec.Parties {
		lf, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			return nil, err
		}
		defer lf.Close()
		pargs := []string{"party", "--coordinator", addr, "--certs", certs, "--name", name,
			"--session", spec.ID, "--data", filepath.Join(data, name+".csv"), "--map", filepath.Join(data, name+".map.json"),
			"--out", filepath.Join(dir, name+".result.json"), "--stats", filepath.Join(dir, name+".stats.json")}
		if profileDir != "" {
			pargs = append(pargs, "--cpuprofile", filepath.Join(profileDir, name+".cpu.pprof"))
		}
		procs[i] = exec.CommandContext(ctx, exe, pargs...)
		procs[i].Stdout, procs[i].Stderr = lf, lf
		if err := procs[i].Start(); err != nil {
			return nil, err
		}
	}
	run := &clusterRun{Spec: spec, Results: map[string]*session.Result{}, Stats: map[string]party.Stats{}, PartyRSS: map[string]int64{}}
	var failed []string
	for i, p := range procs {
		name := spec.Parties[i]
		if err := p.Wait(); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v\n%s", name, err, tail(filepath.Join(dir, name+".log"))))
			continue
		}
	}
	run.Elapsed = time.Since(start)
	stopCoord()
	run.CoordLogs = tail(coordLogPath)
	if len(failed) > 0 {
		return nil, fmt.Errorf("parties failed:\n%s\ncoordinator log:\n%s", strings.Join(failed, "\n"), run.CoordLogs)
	}
	coordLogText, _ := os.ReadFile(coordLogPath)
	if m := rssRe.FindSubmatch(coordLogText); m != nil {
		run.CoordRSS, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	if m := joinRe.FindSubmatch(coordLogText); m != nil {
		if f, err := strconv.ParseFloat(string(m[1]), 64); err == nil {
			run.JoinTime = time.Duration(f * float64(time.Second))
		}
	}
	for _, name := range spec.Parties {
		var r session.Result
		if err := readJSON(filepath.Join(dir, name+".result.json"), &r); err != nil {
			return nil, err
		}
		run.Results[name] = &r
		var st party.Stats
		if err := readJSON(filepath.Join(dir, name+".stats.json"), &st); err != nil {
			return nil, err
		}
		run.Stats[name] = st
		run.PartyRSS[name] = st.PeakRSS
	}
	return run, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
