// Command ecgupload demonstrates encrypted ECG upload (seed document
// CN 108737334 A): a server holding an X25519 key pair per epoch, clients
// that seal a fresh data key to it, upload requests checked for credential,
// time and replay, small recordings in one unary call and large ones in
// sealed chunks over a stream with resume, a bounded transfer pool with a
// priority queue and preemption, and atomic storage.
//
// Usage:
//
//	go run ./examples/ecgupload                       # the whole flow in one process
//	go run ./examples/ecgupload server --listen 127.0.0.1:7443 --store DIR --certs DIR
//	go run ./examples/ecgupload client --server 127.0.0.1:7443 --certs DIR [--data DIR]
//
// See README.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/mpsi-dev/mpsi/examples/ecgupload/ecgpb"
	"github.com/mpsi-dev/mpsi/examples/ecgupload/upload"
	"github.com/mpsi-dev/mpsi/internal/devcert"
)

const usage = `usage:
  ecgupload [demo] [--data DIR] [--store DIR]
      start a server, upload the recordings concurrently, verify them
  ecgupload server --listen 127.0.0.1:7443 --store DIR --certs DIR [flags]
      serve uploads; creates throwaway certificates and a client
      credential in the certs directory if it has none
  ecgupload client --server 127.0.0.1:7443 --certs DIR [--data DIR] [flags]
      upload every WFDB record (*.hea and its files) found under --data

Recordings default to <module root>/../shared/data/ecg when it exists,
otherwise a generated ECG is used. Run "ecgupload CMD -h" for the flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ecgupload: error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "demo"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "demo":
		return runDemo(ctx, args, stdout, stderr)
	case "server":
		return runServer(ctx, args, stdout, stderr)
	case "client":
		return runClient(ctx, args, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// recordings loads the WFDB records under dir, or the shared data, or
// generates ECGs.
func recordings(dir string, stdout io.Writer) ([]*upload.Recording, error) {
	if dir == "" {
		if shared, ok := upload.SharedDataDir("."); ok {
			dir = shared
		}
	}
	if dir == "" {
		fmt.Fprintln(stdout, "no shared ECG data found; using generated recordings")
		return []*upload.Recording{upload.SyntheticECG("gen-a", 120), upload.SyntheticECG("gen-b", 1200)}, nil
	}
	recs, err := upload.LoadDir(dir)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stdout, "loaded %d records from %s\n", len(recs), dir)
	return recs, nil
}

func logger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func loopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("listen address %q is not a loopback address; this example serves 127.0.0.1 only", addr)
	}
	return nil
}

// readCredentials reads a credentials file (see parseCredentials).
func readCredentials(path string) (map[string]upload.Credential, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseCredentials(path, data)
}

// parseCredentials parses "client-id role expires hex-credential" lines:
// role is routine, clinic or emergency (it sets the urgency of the client's
// jobs), expires an RFC 3339 time after which the credential is refused.
// Blank lines and lines starting with # are skipped. Errors name the line,
// never the credential.
func parseCredentials(path string, data []byte) (map[string]upload.Credential, error) {
	out := map[string]upload.Credential{}
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, fmt.Errorf("%s:%d: want \"client-id role expires hex-credential\"", path, i+1)
		}
		role, err := upload.ParseRole(f[1])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
		exp, err := time.Parse(time.RFC3339, f[2])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: expiry is not an RFC 3339 time", path, i+1)
		}
		c, err := hex.DecodeString(f[3])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: credential is not hex", path, i+1)
		}
		if _, dup := out[f[0]]; dup {
			return nil, fmt.Errorf("%s:%d: duplicate client id", path, i+1)
		}
		out[f[0]] = upload.Credential{Secret: c, Role: role, Expires: exp}
	}
	return out, nil
}

func readToken(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("%s: credential is not hex", path)
	}
	return c, nil
}

// ensureCerts creates throwaway certificates for "server" and "client" and
// a credential for client "client" in dir unless dir already holds ca.pem.
func ensureCerts(dir string, stdout io.Writer) error {
	if _, err := os.Stat(filepath.Join(dir, "ca.pem")); err == nil {
		return nil
	}
	if err := devcert.WriteDir(dir, []string{"server", "client"}); err != nil {
		return err
	}
	cred := make([]byte, 32)
	if _, err := rand.Read(cred); err != nil {
		return err
	}
	h := hex.EncodeToString(cred)
	if err := os.WriteFile(filepath.Join(dir, "client.token"), []byte(h+"\n"), 0o600); err != nil {
		return err
	}
	line := fmt.Sprintf("client clinic %s %s\n", time.Now().Add(365*24*time.Hour).UTC().Format(time.RFC3339), h)
	if err := os.WriteFile(filepath.Join(dir, "credentials"), []byte(line), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created throwaway certificates and a credential for client %q (role clinic, valid one year) in %s\n", "client", dir)
	return nil
}

type serverFlags struct {
	listen, store, state, certs, creds, metrics string
	cfg                                         upload.Config
	verbose                                     bool
}

func addServerFlags(fs *flag.FlagSet, f *serverFlags) {
	fs.DurationVar(&f.cfg.Window, "window", upload.DefaultWindow, "validity window of upload requests")
	fs.IntVar(&f.cfg.Threshold, "threshold", upload.DefaultThreshold, "largest sealed recording accepted in one unary call (bytes)")
	fs.IntVar(&f.cfg.PoolSize, "pool", upload.DefaultPoolSize, "largest number of concurrent stream transfers")
	fs.IntVar(&f.cfg.MinPool, "min-pool", upload.DefaultMinPool, "smallest the pool shrinks to under load")
	fs.Float64Var(&f.cfg.IngestBudget, "ingest-budget", upload.DefaultIngestBudget, "ingest capacity in bytes/s; the pool shrinks above it")
	fs.IntVar(&f.cfg.HighPriority, "high", upload.DefaultHighPriority, "priority from which a waiting transfer preempts lower ones")
}

func startServer(f *serverFlags, stdout, stderr io.Writer) (*upload.Server, *grpc.Server, net.Listener, error) {
	pool, cert, err := devcert.LoadDir(f.certs, "server")
	if err != nil {
		return nil, nil, nil, err
	}
	tlsCfg := serverTLS(pool, cert)
	if f.cfg.Credentials == nil {
		if f.cfg.Credentials, err = readCredentials(f.creds); err != nil {
			return nil, nil, nil, err
		}
	}
	if err := os.MkdirAll(f.store, 0o755); err != nil {
		return nil, nil, nil, err
	}
	f.cfg.StoreDir = f.store
	if f.state == "" {
		f.state = filepath.Clean(f.store) + ".state"
	}
	f.cfg.StateDir = f.state
	f.cfg.Logger = logger(stderr, f.verbose)
	srv, err := upload.New(f.cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	g, err := upload.NewGRPCServer(srv, tlsCfg)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := loopback(f.listen); err != nil {
		return nil, nil, nil, err
	}
	lis, err := net.Listen("tcp", f.listen)
	if err != nil {
		return nil, nil, nil, err
	}
	return srv, g, lis, nil
}

func runServer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serverFlags
	fs.StringVar(&f.listen, "listen", "127.0.0.1:7443", "loopback address to listen on")
	fs.StringVar(&f.store, "store", "", "directory to store recordings in (required)")
	fs.StringVar(&f.state, "state", "", "directory of the server's state: jobs, chunks, replay cache (default STORE.state)")
	fs.StringVar(&f.certs, "certs", "", "directory with ca.pem, server.pem, server-key.pem (created if empty; required)")
	fs.StringVar(&f.creds, "credentials", "", "file of \"client-id role expires hex-credential\" lines (default CERTS/credentials)")
	fs.StringVar(&f.metrics, "metrics", "", "loopback address for a Prometheus /metrics endpoint (off if empty)")
	fs.BoolVar(&f.verbose, "v", true, "log every event")
	addServerFlags(fs, &f)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.store == "" || f.certs == "" {
		return errors.New("server: --store and --certs are required")
	}
	if err := ensureCerts(f.certs, stdout); err != nil {
		return err
	}
	if f.creds == "" {
		f.creds = filepath.Join(f.certs, "credentials")
	}
	srv, g, lis, err := startServer(&f, stdout, stderr)
	if err != nil {
		return err
	}
	var hs *http.Server
	if f.metrics != "" {
		if err := loopback(f.metrics); err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			srv.Metrics().WriteText(w)
		})
		hs = &http.Server{Addr: f.metrics, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go hs.ListenAndServe()
	}
	defer srv.Close()
	fmt.Fprintf(stdout, "serving on %s (TLS 1.3, client certificates required); key epoch %d, suite %s; state in %s\n", lis.Addr(), srv.Epoch(), srv.Suite(), f.state)
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(stdout, "shutting down")
	if hs != nil {
		hs.Close()
	}
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		g.Stop()
	}
	return nil
}

type clientFlags struct {
	server, certs, data, id, token, link string
	urgency                              uint
	cfg                                  upload.ClientConfig
	verbose                              bool
}

func runClient(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f clientFlags
	fs.StringVar(&f.server, "server", "127.0.0.1:7443", "server address")
	fs.StringVar(&f.certs, "certs", "", "directory with ca.pem, client.pem, client-key.pem (required)")
	fs.StringVar(&f.data, "data", "", "directory of WFDB records (default: shared data or generated)")
	fs.StringVar(&f.id, "id", "client", "client id (also the certificate name in --certs)")
	fs.StringVar(&f.token, "token", "", "file holding the hex credential (default CERTS/ID.token)")
	fs.UintVar(&f.urgency, "urgency", 9, "urgency 0-9 asked for; the server assigns at most the credential role's")
	fs.IntVar(&f.cfg.Threshold, "threshold", upload.DefaultThreshold, "largest sealed recording sent in one unary call (bytes)")
	fs.IntVar(&f.cfg.ChunkSize, "chunk", 0, "chunk size of stream uploads (bytes; 0: picked from the link)")
	fs.StringVar(&f.link, "link", "unknown", "network the client is on: wired, wifi, cellular, poor or unknown")
	fs.BoolVar(&f.verbose, "v", false, "log every event")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if f.certs == "" {
		return errors.New("client: --certs is required")
	}
	if f.urgency > upload.MaxUrgency {
		return fmt.Errorf("client: --urgency must be at most %d", upload.MaxUrgency)
	}
	link, err := upload.ParseLinkType(f.link)
	if err != nil {
		return fmt.Errorf("client: --link: %w", err)
	}
	f.cfg.Link = link
	if f.token == "" {
		f.token = filepath.Join(f.certs, f.id+".token")
	}
	var cred []byte
	cred, err = readToken(f.token)
	if err != nil {
		return err
	}
	pool, cert, err := devcert.LoadDir(f.certs, f.id)
	if err != nil {
		return err
	}
	conn, err := upload.Dial(f.server, clientTLS(pool, cert))
	if err != nil {
		return err
	}
	defer conn.Close()
	f.cfg.ClientID, f.cfg.Credential = f.id, cred
	f.cfg.Logger = logger(stderr, f.verbose)
	c, err := upload.NewClient(conn, f.cfg)
	if err != nil {
		return err
	}
	recs, err := recordings(f.data, stdout)
	if err != nil {
		return err
	}
	receipts, err := uploadAll(ctx, c, recs, func(int) uint8 { return uint8(f.urgency) }, stdout)
	if err != nil {
		return err
	}
	for i, rc := range receipts {
		if err := checkDigest(recs[i], rc); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "uploaded %d recordings; the server's digests match the local files\n", len(recs))
	return nil
}

// uploadAll uploads recs concurrently and returns the receipts in order.
func uploadAll(ctx context.Context, c *upload.Client, recs []*upload.Recording, urgency func(int) uint8, stdout io.Writer) ([]*upload.Receipt, error) {
	receipts := make([]*upload.Receipt, len(recs))
	errs := make([]error, len(recs))
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, rec := range recs {
		wg.Go(func() {
			start := time.Now()
			rc, err := c.Upload(ctx, rec, urgency(i))
			receipts[i], errs[i] = rc, err
			if err == nil {
				mu.Lock()
				fmt.Fprintf(stdout, "  %-10s urgency %d  %8d bytes  %-6s %-17s %6.0f ms  stored as %s\n",
					rec.Name, urgency(i), rc.Size, rc.Mode, rc.Suite, float64(time.Since(start).Microseconds())/1000, rc.StoredAs)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return receipts, errors.Join(errs...)
}

func checkDigest(rec *upload.Recording, rc *upload.Receipt) error {
	var all []byte
	for _, f := range rec.Files {
		all = append(all, f.Data...)
	}
	if sha := sha256Sum(all); sha != rc.Digest || rc.Size != uint64(len(all)) {
		return fmt.Errorf("%s: server receipt does not match the local recording", rec.Name)
	}
	return nil
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "directory of WFDB records (default: shared data or generated)")
	store := fs.String("store", "", "directory to store recordings in (default: a temporary directory)")
	verbose := fs.Bool("v", true, "log server events to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "ecgupload-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if *store == "" {
		*store = filepath.Join(tmp, "store")
	}
	certs := filepath.Join(tmp, "certs")
	if err := ensureCerts(certs, io.Discard); err != nil {
		return err
	}
	// A small pool and threshold so the demo shows both modes and the
	// scheduler with the few recordings at hand.
	const threshold = 1 << 20
	f := serverFlags{listen: "127.0.0.1:0", store: *store, state: filepath.Join(tmp, "state"), certs: certs, verbose: *verbose}
	f.cfg.Threshold, f.cfg.PoolSize = threshold, 1
	// Credentials by role: the server assigns each job the urgency of its
	// client's role (a client may ask for less, never for more).
	secrets := map[string][]byte{}
	year := time.Now().Add(365 * 24 * time.Hour)
	f.cfg.Credentials = map[string]upload.Credential{}
	for id, c := range map[string]upload.Credential{
		"ward-holter": {Role: upload.RoleRoutine, Expires: year},
		"ed-monitor":  {Role: upload.RoleEmergency, Expires: year},
		"clinic":      {Role: upload.RoleClinic, Expires: year},
		"old-cart":    {Role: upload.RoleClinic, Expires: time.Now().Add(-24 * time.Hour)}, // expired yesterday
	} {
		c.Secret = make([]byte, 32)
		if _, err := rand.Read(c.Secret); err != nil {
			return err
		}
		secrets[id] = c.Secret
		f.cfg.Credentials[id] = c
	}
	srv, g, lis, err := startServer(&f, stdout, stderr)
	if err != nil {
		return err
	}
	defer srv.Close()
	go g.Serve(lis)
	defer g.Stop()
	fmt.Fprintf(stdout, "server on %s: key epoch %d, clients will use %s; pool of 1 stream transfer, unary up to %d bytes\n",
		lis.Addr(), srv.Epoch(), srv.Suite(), threshold)

	pool, cert, err := devcert.LoadDir(certs, "client")
	if err != nil {
		return err
	}
	conn, err := upload.Dial(lis.Addr().String(), clientTLS(pool, cert))
	if err != nil {
		return err
	}
	defer conn.Close()
	newClient := func(id string, cfg upload.ClientConfig) (*upload.Client, error) {
		cfg.ClientID, cfg.Credential, cfg.Threshold = id, secrets[id], threshold
		return upload.NewClient(conn, cfg)
	}
	ed, err := newClient("ed-monitor", upload.ClientConfig{ChunkSize: 256 << 10, Link: upload.LinkWired})
	if err != nil {
		return err
	}
	clinic, err := newClient("clinic", upload.ClientConfig{ChunkSize: 256 << 10, Link: upload.LinkWiFi})
	if err != nil {
		return err
	}
	recs, err := recordings(*data, stdout)
	if err != nil {
		return err
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Size() > recs[j].Size() })

	// A generated 2-hour Holter recording (about 7.8 MB, low urgency) starts
	// first and takes the only stream slot; its client paces its chunks so
	// that it is still running when the others arrive.
	holter := upload.SyntheticECG("holter-2h", 7200)
	hc, err := newClient("ward-holter", upload.ClientConfig{ChunkSize: 256 << 10, ChunkInterval: 40 * time.Millisecond, Link: upload.LinkCellular})
	if err != nil {
		return err
	}
	// The ward's Holter client asks for urgency 9; its role is routine.
	hj, err := hc.Begin(ctx, holter, 9)
	if err != nil {
		return err
	}
	type result struct {
		rc  *upload.Receipt
		err error
	}
	hres := make(chan result, 1)
	go func() { rc, err := hj.Run(ctx); hres <- result{rc, err} }()
	for {
		st, err := hj.Status(ctx)
		if err != nil {
			return err
		}
		if st.State == ecgpb.JobState_JOB_STATE_ACTIVE {
			fmt.Fprintf(stdout, "holter-2h from ward-holter (role routine, on cellular) asked for urgency 9; the server assigned %d\n", st.Priority)
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	fmt.Fprintf(stdout, "holter-2h (%d bytes, urgency 1) holds the stream slot; uploading %d recordings concurrently, the largest from ed-monitor (emergency, urgency 9), the others from clinic (urgency 2):\n",
		holter.Size(), len(recs))
	receipts := make([]*upload.Receipt, len(recs))
	var uerr error
	var wg sync.WaitGroup
	wg.Go(func() {
		var r []*upload.Receipt
		r, uerr = uploadAll(ctx, ed, recs[:1], func(int) uint8 { return 9 }, stdout)
		if uerr == nil {
			receipts[0] = r[0]
		}
	})
	rest, err := uploadAll(ctx, clinic, recs[1:], func(int) uint8 { return 2 }, stdout)
	wg.Wait()
	if err = errors.Join(err, uerr); err != nil {
		return err
	}
	copy(receipts[1:], rest)
	hr := <-hres
	if hr.err != nil {
		return hr.err
	}
	fmt.Fprintf(stdout, "  %-10s urgency 1  %8d bytes  %-6s %-17s preempted %d time(s), %d chunks sent for %d\n",
		holter.Name, hr.rc.Size, hr.rc.Mode, hr.rc.Suite, hj.Preemptions, hj.Sent, hj.Chunks())
	recs = append(recs, holter)
	receipts = append(receipts, hr.rc)

	// A forged request is refused and rotates the key; the client then
	// fetches the new key.
	forger, err := upload.NewClient(conn, upload.ClientConfig{ClientID: "clinic", Credential: make([]byte, 32)})
	if err != nil {
		return err
	}
	before := srv.Epoch()
	if _, err := forger.Upload(ctx, upload.SyntheticECG("forged", 2), 1); !errors.Is(err, upload.ErrRejected) {
		return fmt.Errorf("forged upload: got %v, want rejection", err)
	}
	fmt.Fprintf(stdout, "forged credential refused; key epoch %d -> %d\n", before, srv.Epoch())
	expired, err := newClient("old-cart", upload.ClientConfig{})
	if err != nil {
		return err
	}
	before = srv.Epoch()
	if _, err := expired.Upload(ctx, upload.SyntheticECG("late", 2), 1); !errors.Is(err, upload.ErrExpired) {
		return fmt.Errorf("upload with an expired credential: got %v, want rejection", err)
	}
	fmt.Fprintf(stdout, "expired credential refused; key epoch %d -> %d\n", before, srv.Epoch())

	fmt.Fprintln(stdout, "verifying the stored recordings:")
	for i, rec := range recs {
		if err := checkDigest(rec, receipts[i]); err != nil {
			return err
		}
		_, stored, err := upload.ReadStored(*store, receipts[i].StoredAs)
		if err != nil {
			return err
		}
		files := map[string][]byte{}
		var hea []byte
		for j, sf := range stored.Files {
			if sf.Name != rec.Files[j].Name || string(sf.Data) != string(rec.Files[j].Data) {
				return fmt.Errorf("%s: stored file %s differs from the original", rec.Name, sf.Name)
			}
			files[sf.Name] = sf.Data
			if sf.Name == rec.Name+".hea" {
				hea = sf.Data
			}
		}
		checks, err := upload.VerifyRecord(hea, files)
		if err != nil {
			return fmt.Errorf("%s: %w", rec.Name, err)
		}
		fmt.Fprintf(stdout, "  %-10s byte-for-byte identical (%d files); %d signals decoded, checksums match the header\n", rec.Name, len(stored.Files), len(checks))
	}
	fmt.Fprintln(stdout, "metrics:")
	var b strings.Builder
	if err := srv.Metrics().WriteText(&b); err != nil {
		return err
	}
	for _, line := range strings.Split(b.String(), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			fmt.Fprintln(stdout, "  "+line)
		}
	}
	return nil
}
