package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// childEnv marks a process started by the demo to run one role; TestMain
// looks for it so that the test binary can stand in for the command.
const childEnv = "RECORDSHARING_ROLE_PROCESS"

// child is a role running as its own process. Its stdout lines are copied
// to the demo's output with the role's name in front.
type child struct {
	name   string
	cmd    *exec.Cmd
	addr   string      // from the ready line
	events chan string // lines starting with "event: "
	copied chan struct{}
	exited chan struct{}
	err    error // set before exited is closed
}

// startChild runs this executable with args (a role command) and waits
// for its ready line.
func startChild(ctx context.Context, name string, args []string, out io.Writer) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = &prefixWriter{out: out, prefix: "[" + name + " stderr] "}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s process: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, events: make(chan string, 8), copied: make(chan struct{}), exited: make(chan struct{})}
	ready := make(chan string, 1)
	go func() {
		defer close(c.copied)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if a, ok := strings.CutPrefix(line, readyPrefix); ok {
				select {
				case ready <- a:
				default:
				}
			}
			if strings.HasPrefix(line, "event: ") {
				select {
				case c.events <- line:
				default:
				}
			}
			fmt.Fprintf(out, "[%s pid %d] %s\n", name, cmd.Process.Pid, line)
		}
	}()
	go func() {
		<-c.copied
		c.err = cmd.Wait()
		close(c.exited)
	}()
	select {
	case c.addr = <-ready:
		return c, nil
	case <-c.exited:
		return nil, fmt.Errorf("%s process exited before it was ready: %v", name, c.err)
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		c.stop()
		return nil, fmt.Errorf("%s process not ready after 30 s", name)
	}
}

// signal sends sig to the process and waits up to 30 s for a line
// starting with want among its events.
func (c *child) signalAndWait(sig os.Signal, want string) (string, error) {
	if err := c.cmd.Process.Signal(sig); err != nil {
		return "", err
	}
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-c.events:
			if strings.HasPrefix(ev, want) {
				return ev, nil
			}
		case <-c.exited:
			return "", fmt.Errorf("%s process exited: %v", c.name, c.err)
		case <-timeout:
			return "", fmt.Errorf("%s process: no %q after 30 s", c.name, want)
		}
	}
}

// stop asks the process to stop (SIGTERM), kills it after ten seconds, and
// waits until its output has been copied.
func (c *child) stop() error {
	select {
	case <-c.exited:
		return c.err
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("%s process did not stop on SIGTERM; killed", c.name)
	}
	return c.err
}

// prefixWriter writes each line of each Write with a prefix.
type prefixWriter struct {
	out    io.Writer
	prefix string
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimRight(string(p), "\n"), "\n") {
		fmt.Fprintf(w.out, "%s%s\n", w.prefix, line)
	}
	return len(p), nil
}

// syncWriter serialises writes to w, so that lines from the demo and from
// the role processes do not mix.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
