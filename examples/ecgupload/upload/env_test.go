package upload

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/mpsi-dev/mpsi/internal/devcert"
)

// logRecorder is a slog.Handler that keeps every record's message and
// attributes, so tests can check the order of logged events.
type logRecorder struct {
	mu      sync.Mutex
	entries []logEntry
}

type logEntry struct {
	msg   string
	attrs map[string]string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs(as []slog.Attr) slog.Handler    { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	e := logEntry{msg: rec.Message, attrs: map[string]string{}}
	var add func(prefix string, a slog.Attr)
	add = func(prefix string, a slog.Attr) {
		if a.Value.Kind() == slog.KindGroup {
			for _, g := range a.Value.Group() {
				add(prefix+a.Key+".", g)
			}
			return
		}
		e.attrs[prefix+a.Key] = a.Value.String()
	}
	rec.Attrs(func(a slog.Attr) bool { add("", a); return true })
	r.mu.Lock()
	r.entries = append(r.entries, e)
	r.mu.Unlock()
	return nil
}

func (r *logRecorder) snapshot() []logEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]logEntry(nil), r.entries...)
}

// text renders the log for failure messages and secret checks.
func (r *logRecorder) text() string {
	var b strings.Builder
	for _, e := range r.snapshot() {
		fmt.Fprintf(&b, "%s %v\n", e.msg, e.attrs)
	}
	return b.String()
}

type testEnv struct {
	srv   *Server
	g     *grpc.Server
	cfg   Config
	tls   *tls.Config
	addr  string
	store string
	ca    *devcert.CA
	logs  *logRecorder
	creds map[string][]byte
}

func randomCredential(t testing.TB) []byte {
	c := make([]byte, 32)
	_, err := rand.Read(c)
	require.NoError(t, err)
	return c
}

// newEnv starts a server over mTLS 1.3 on 127.0.0.1 with credentials for
// clients "clinic-a" to "clinic-h".
func newEnv(t testing.TB, mut func(*Config)) *testEnv {
	t.Helper()
	ca, err := devcert.NewCA("ecgupload test CA")
	require.NoError(t, err)
	leaf, err := ca.Issue("server")
	require.NoError(t, err)
	tlsCfg, err := devcert.ServerConfig(ca, leaf)
	require.NoError(t, err)
	e := &testEnv{store: t.TempDir(), ca: ca, logs: &logRecorder{}, creds: map[string][]byte{}}
	for c := 'a'; c <= 'h'; c++ {
		e.creds["clinic-"+string(c)] = randomCredential(t)
	}
	// Every test client may ask for any urgency (emergency role); tests of
	// roles and expiry change the entries.
	creds := map[string]Credential{}
	for id, c := range e.creds {
		creds[id] = Credential{Secret: c, Role: RoleEmergency, Expires: time.Now().Add(24 * time.Hour)}
	}
	cfg := Config{StoreDir: e.store, Credentials: creds, Logger: slog.New(e.logs)}
	if mut != nil {
		mut(&cfg)
	}
	e.store, e.cfg, e.tls = cfg.StoreDir, cfg, tlsCfg
	e.start(t)
	return e
}

// start starts a server with e.cfg on a new port.
func (e *testEnv) start(t testing.TB) {
	t.Helper()
	srv, err := New(e.cfg)
	require.NoError(t, err)
	e.srv = srv
	t.Cleanup(func() { srv.Close() })
	g, err := NewGRPCServer(srv, e.tls)
	require.NoError(t, err)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e.addr, e.g = lis.Addr().String(), g
	go g.Serve(lis)
	t.Cleanup(g.Stop)
}

// restart stops the server abruptly (no graceful stop) and starts a new one
// on the same configuration and state directory.
func (e *testEnv) restart(t testing.TB) {
	t.Helper()
	e.g.Stop()
	require.NoError(t, e.srv.Close())
	e.start(t)
}

func (e *testEnv) dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	leaf, err := e.ca.Issue("client")
	require.NoError(t, err)
	tlsCfg, err := devcert.ClientConfig(e.ca, leaf)
	require.NoError(t, err)
	conn, err := Dial(addr, tlsCfg)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// client returns a client for id over a new connection to the server.
func (e *testEnv) client(t testing.TB, id string, mut func(*ClientConfig)) *Client {
	t.Helper()
	cfg := ClientConfig{ClientID: id, Credential: e.creds[id]}
	if mut != nil {
		mut(&cfg)
	}
	c, err := NewClient(e.dial(t, e.addr), cfg)
	require.NoError(t, err)
	return c
}

// rotateUntil rotates the server key until clients derive suite s.
func (e *testEnv) rotateUntil(t testing.TB, s Suite) {
	t.Helper()
	for i := 0; e.srv.Suite() != s; i++ {
		require.Less(t, i, 200, "no key selecting %s", s)
		require.NoError(t, e.srv.Rotate("test wants "+s.String()))
	}
}

// requireStored checks that the recording stored under receipt rc is
// byte-for-byte rec and that its manifest matches.
func (e *testEnv) requireStored(t testing.TB, rc *Receipt, rec *Recording) *Manifest {
	t.Helper()
	m, got, err := ReadStored(e.store, rc.StoredAs)
	require.NoError(t, err)
	require.Equal(t, rec.Name, m.Record)
	require.Len(t, got.Files, len(rec.Files))
	for i, f := range rec.Files {
		require.Equal(t, f.Name, got.Files[i].Name)
		if !bytes.Equal(f.Data, got.Files[i].Data) {
			t.Fatalf("stored %s differs from the original (%d vs %d bytes)", f.Name, len(got.Files[i].Data), len(f.Data))
		}
	}
	// Nothing partial is left behind.
	entries, err := os.ReadDir(e.store)
	require.NoError(t, err)
	for _, de := range entries {
		require.False(t, strings.HasPrefix(de.Name(), ".incoming-"), "temporary directory %s left in store", de.Name())
		_, err := os.Stat(filepath.Join(e.store, de.Name(), ManifestName))
		require.NoError(t, err, "stored directory without manifest")
	}
	return m
}
