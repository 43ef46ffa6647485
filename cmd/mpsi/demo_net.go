package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/internal/devcert"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// runNetworkDemo runs the coordinator and every party as separate processes
// of this binary on 127.0.0.1 over gRPC with mutual TLS.
func runNetworkDemo(ctx context.Context, c *cohort.Cohort, asJSON bool, stdout, stderr io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "mpsi-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	names := []string{"coordinator", "admin"}
	for _, p := range c.Parties {
		names = append(names, p.Name)
	}
	certs := filepath.Join(dir, "certs")
	if err := devcert.WriteDir(certs, names); err != nil {
		return err
	}
	data := filepath.Join(dir, "cohort")
	if err := c.WriteDir(data); err != nil {
		return err
	}
	spec, err := session.ParseSpec(c.Spec)
	if err != nil {
		return err
	}
	addrFile := filepath.Join(dir, "addr")
	coordLog, err := os.Create(filepath.Join(dir, "coordinator.log"))
	if err != nil {
		return err
	}
	defer coordLog.Close()
	coord := exec.CommandContext(ctx, exe, "coordinator", "--listen", "127.0.0.1:0", "--certs", certs,
		"--db", filepath.Join(dir, "mpsi.db"), "--addr-file", addrFile, "--round-timeout", "1m")
	coord.Stdout, coord.Stderr = coordLog, coordLog
	if err := coord.Start(); err != nil {
		return err
	}
	defer func() {
		_ = coord.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = coord.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = coord.Process.Kill()
		}
	}()
	var addr string
	for deadline := time.Now().Add(20 * time.Second); ; {
		b, err := os.ReadFile(addrFile)
		if err == nil && len(b) > 0 {
			addr = string(b)
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("coordinator did not start: %s", tail(filepath.Join(dir, "coordinator.log")))
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Fprintf(stderr, "mpsi: demo: coordinator on %s (TLS 1.3, mutual authentication), %d hospital processes\n", addr, len(c.Parties))
	var out bytes.Buffer
	create := exec.CommandContext(ctx, exe, "session", "create", "--coordinator", addr, "--certs", certs, "--name", "admin", "--spec", filepath.Join(data, "spec.json"))
	create.Stdout, create.Stderr = &out, stderr
	if err := create.Run(); err != nil {
		return fmt.Errorf("session create: %w", err)
	}
	start := time.Now()
	procs := make([]*exec.Cmd, len(c.Parties))
	for i, p := range c.Parties {
		lf, err := os.Create(filepath.Join(dir, p.Name+".log"))
		if err != nil {
			return err
		}
		defer lf.Close()
		procs[i] = exec.CommandContext(ctx, exe, "party", "--coordinator", addr, "--certs", certs, "--name", p.Name,
			"--session", spec.ID, "--data", filepath.Join(data, p.Name+".csv"), "--map", filepath.Join(data, p.Name+".map.json"),
			"--out", filepath.Join(dir, p.Name+".result.json"))
		procs[i].Stdout, procs[i].Stderr = lf, lf
		if err := procs[i].Start(); err != nil {
			return err
		}
	}
	var failed []string
	for i, p := range procs {
		if err := p.Wait(); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v\n%s", c.Parties[i].Name, err, tail(filepath.Join(dir, c.Parties[i].Name+".log"))))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("parties failed:\n%s\ncoordinator log:\n%s", strings.Join(failed, "\n"), tail(filepath.Join(dir, "coordinator.log")))
	}
	elapsed := time.Since(start)
	var results []*session.Result
	for _, p := range c.Parties {
		b, err := os.ReadFile(filepath.Join(dir, p.Name+".result.json"))
		if err != nil {
			return err
		}
		var r session.Result
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		results = append(results, &r)
	}
	for _, r := range results[1:] {
		a, _ := json.Marshal(results[0])
		b, _ := json.Marshal(r)
		if !bytes.Equal(a, b) {
			return errors.New("parties received different results")
		}
	}
	r := results[0]
	if asJSON {
		if err := writeJSON(stdout, r); err != nil {
			return err
		}
	} else {
		printTable(stdout, r)
		fmt.Fprintf(stdout, "session time: %s over gRPC/TLS between %d processes\n", elapsed.Round(time.Millisecond), len(c.Parties)+1)
	}
	if err := checkTruth(r, c.Truth, spec.MinCell); err != nil {
		fmt.Fprintf(stdout, "check against plaintext computation: MISMATCH: %v\n", err)
		return errors.New("result does not match the plaintext computation")
	}
	fmt.Fprintln(stdout, "check against plaintext computation: OK (result matches the ground truth)")
	return nil
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}
