// Package pgtest starts a real PostgreSQL server for tests: initdb and
// postgres in a temporary directory, listening on a unix socket only, with
// password (SCRAM) authentication. It is switched on by the environment
// variable MPSI_TEST_POSTGRES=1 (so that plain go test needs no
// PostgreSQL); switched on, a missing or broken installation fails the
// test instead of skipping it.
//
// initdb and postgres refuse to run as root, so under root the server runs
// as the "postgres" account that Debian's package creates (else "nobody"),
// via the process credentials; the temporary directory is given to that
// account.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Env is the environment variable that switches the PostgreSQL tests on.
const Env = "MPSI_TEST_POSTGRES"

// User is the database superuser the server is made with.
const User = "mpsi"

// Server is a running test server.
type Server struct {
	Dir      string // the temporary directory (data, socket, log)
	Socket   string // the socket directory
	Password string // User's password (random)
	cmd      *exec.Cmd
	log      string
	exited   chan struct{} // closed when postgres has exited
	waitErr  error
}

// URL returns a password-less URL for database db on the socket.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://%s@/%s?host=%s&sslmode=disable", User, db, s.Socket)
}

// Enabled reports whether the PostgreSQL tests are switched on.
func Enabled() bool { return os.Getenv(Env) != "" }

// Start starts a server for the test and stops it at cleanup. It skips the
// test unless [Enabled]; when enabled, any failure to start fails it.
func Start(t testing.TB) *Server {
	t.Helper()
	if !Enabled() {
		t.Skipf("PostgreSQL integration test: set %s=1 (needs initdb and postgres; .ci/run installs them)", Env)
	}
	s, err := New()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("pgtest: stopping: %v", err)
		}
	})
	return s
}

// binDir finds the directory holding initdb: $PATH first, then Debian's
// /usr/lib/postgresql/<version>/bin, newest version first.
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("postgres"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("initdb and postgres not found in $PATH or /usr/lib/postgresql/*/bin (apt-get install postgresql)")
}

// account returns the credential to run the server with: nil unless root.
func account() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root and no postgres or nobody account to run the server as")
}

// New starts a server (whether or not [Enabled]); the caller stops it.
func New() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, err := account()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mpsi-pg-")
	if err != nil {
		return nil, err
	}
	pw := make([]byte, 16)
	rand.Read(pw)
	s := &Server{Dir: dir, Socket: filepath.Join(dir, "sock"), Password: hex.EncodeToString(pw), log: filepath.Join(dir, "postgres.log")}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := os.Mkdir(s.Socket, 0o700); err != nil {
		return fail(err)
	}
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.Password+"\n"), 0o600); err != nil {
		return fail(err)
	}
	if cred != nil {
		for _, p := range []string{dir, s.Socket, pwfile} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return fail(err)
			}
		}
	}
	run := func(name string, args ...string) *exec.Cmd {
		c := exec.Command(filepath.Join(bin, name), args...)
		c.Env = append(os.Environ(), "LC_ALL=C")
		c.Dir = dir
		if cred != nil {
			c.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		return c
	}
	data := filepath.Join(dir, "data")
	ini := run("initdb", "-D", data, "-U", User, "--pwfile", pwfile, "--auth", "scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync")
	if out, err := ini.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %v\n%s", err, out))
	}
	logf, err := os.Create(s.log)
	if err != nil {
		return fail(err)
	}
	s.cmd = run("postgres", "-D", data, "-k", s.Socket, "-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return fail(fmt.Errorf("postgres: %w", err))
	}
	logf.Close()
	s.exited = make(chan struct{})
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := s.Connect(ctx, "postgres")
		cancel()
		if err == nil {
			c.Close(context.Background())
			break
		}
		select {
		case <-s.exited:
			b, _ := os.ReadFile(s.log)
			os.RemoveAll(dir)
			return nil, fmt.Errorf("postgres exited: %v\n%s", s.waitErr, b)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.cmd.Process.Kill()
			<-s.exited
			b, _ := os.ReadFile(s.log)
			os.RemoveAll(dir)
			return nil, fmt.Errorf("postgres not ready after 60s: %v\n%s", err, b)
		}
	}
	return s, nil
}

// Connect connects as the superuser to database db.
func (s *Server) Connect(ctx context.Context, db string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(s.URL(db))
	if err != nil {
		return nil, err
	}
	cfg.Password = s.Password
	return pgx.ConnectConfig(ctx, cfg)
}

// CreateDB creates a database.
func (s *Server) CreateDB(ctx context.Context, db string) error {
	c, err := s.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize())
	return err
}

// Stop shuts the server down (fast shutdown) and removes its directory.
func (s *Server) Stop() error {
	defer os.RemoveAll(s.Dir)
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
		return err
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		b, _ := os.ReadFile(s.log)
		return fmt.Errorf("postgres did not stop in 30s\n%s", bytes.TrimSpace(b))
	}
}
