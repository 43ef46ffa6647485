package main

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	mpsiv1 "github.com/mpsi-dev/mpsi/api/mpsi/v1"
	"github.com/mpsi-dev/mpsi/coordinator"
	"github.com/mpsi-dev/mpsi/coordinator/store"
	"github.com/mpsi-dev/mpsi/internal/devcert"
	"github.com/mpsi-dev/mpsi/internal/envelope"
	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/party/ledger"
	"github.com/mpsi-dev/mpsi/psi/protocol"
	"github.com/mpsi-dev/mpsi/psi/session"
)

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func runCoordinator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("coordinator", stdout)
	listen := fs.String("listen", "127.0.0.1:7443", "gRPC listen address")
	certs := fs.String("certs", "", "directory with ca.pem, coordinator.pem, coordinator-key.pem")
	name := fs.String("name", "coordinator", "certificate name of this coordinator")
	dbPath := fs.String("db", "mpsi.db", "SQLite database file")
	initDB := fs.Bool("init", false, "initialise --db when it is an existing empty file (a missing file is always created)")
	metrics := fs.String("metrics", "", "serve Prometheus metrics on this address (e.g. 127.0.0.1:9090)")
	addrFile := fs.String("addr-file", "", "write the bound gRPC address to this file once listening")
	roundTimeout := fs.Duration("round-timeout", coordinator.DefaultRoundTimeout, "time a protocol round may go without progress before the session is aborted")
	reconnectGrace := fs.Duration("reconnect-grace", 0, "how long a session waits for a hospital whose stream broke to reconnect and resume (0: abort at once); round deadlines keep running")
	admins := fs.String("admin", coordinator.DefaultAdminName, "comma-separated certificate names allowed to create sessions")
	cpuProfile := fs.String("cpuprofile", "", "write a pprof CPU profile to this file")
	joinBudget := fs.String("join-budget", "0", "memory budget of each session's join, e.g. 512MiB; beyond it tokens spill to disk by prefix (0: keep every list in memory)")
	spillDir := fs.String("spill-dir", "", "directory for the join's spill files (default: the system temporary directory)")
	privEps := fs.Float64("privacy-epsilon", 0, "refuse, at creation, sessions that would spend more than this ε for a party with the same partners (advisory: each hospital's ledger enforces its own); 0: no budget")
	privDelta := fs.Float64("privacy-delta", 1e-6, "the δ of --privacy-epsilon")
	maxSessions := fs.Int("max-sessions", 0, "refuse new sessions (ResourceExhausted) while this many are live (0: no cap)")
	maxStreams := fs.Int("max-streams", 0, "refuse party streams (ResourceExhausted) while this many are open (0: no cap)")
	allowExpired := fs.Bool("allow-expired-cert", false, "start even when the coordinator's certificate is expired or not yet valid (tests only; logged as an error)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	budget, err := parseBytes(*joinBudget)
	if err != nil {
		return fmt.Errorf("--join-budget: %w", err)
	}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	if *certs == "" {
		return usageError(fs, errors.New("--certs is required"), "make development certificates with: mpsi dev-certs --out ./certs")
	}
	log := newLogger(stderr)
	pool, cert, err := devcert.LoadDir(*certs, *name)
	if err != nil {
		return err
	}
	signer, ok := cert.PrivateKey.(crypto.Signer)
	if !ok {
		return errors.New("coordinator key cannot sign")
	}
	chain := make([]*x509.Certificate, 0, len(cert.Certificate))
	for _, der := range cert.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("coordinator certificate: %w", err)
		}
		chain = append(chain, c)
	}
	if err := coordinator.CheckCertificate(ctx, chain, time.Now(), *allowExpired, log); err != nil {
		return hintError{fmt.Errorf("%s: %w", filepath.Join(*certs, *name+".pem"), err), "renew the certificate (development: mpsi dev-certs); --allow-expired-cert starts anyway, for tests"}
	}
	st, err := store.OpenWith(ctx, *dbPath, store.Options{Init: *initDB})
	if err != nil {
		return err
	}
	defer st.Close()
	reg := prometheus.NewRegistry()
	coordinator.RegisterRuntime(reg)
	srv, err := coordinator.New(coordinator.Config{Store: st, Signer: signer, Name: *name, Logger: log, RoundTimeout: *roundTimeout,
		AdminNames: splitNames(*admins), Metrics: coordinator.NewMetrics(reg), JoinBudget: budget, SpillDir: *spillDir,
		PrivacyBudget: privacyBudget(*privEps, *privDelta), MaxSessions: *maxSessions, MaxStreams: *maxStreams,
		ReconnectGrace: *reconnectGrace})
	if err != nil {
		return err
	}
	if ids, err := srv.Recover(ctx); err != nil {
		return err
	} else if len(ids) > 0 {
		log.Warn("aborted sessions interrupted by the last shutdown", "sessions", ids)
	}
	if n, err := st.VerifyAudit(ctx); err != nil {
		return fmt.Errorf("audit log: %w", err)
	} else {
		log.Info("audit chain verified", "events", n)
	}
	tcfg := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	g := grpc.NewServer(append(coordinator.ServerOptions(), grpc.Creds(coordinator.LoggingCredentials(credentials.NewTLS(tcfg), log)),
		grpc.ConnectionTimeout(10*time.Second))...)
	srv.Register(g)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, hs)
	hs.SetServingStatus(mpsiv1.Coordinator_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	lis = coordinator.LoggingListener(lis, log)
	if *addrFile != "" {
		if err := writeBytesAtomic(*addrFile, []byte(lis.Addr().String())); err != nil {
			return err
		}
	}
	var msrv *http.Server
	if *metrics != "" {
		ml, err := net.Listen("tcp", *metrics)
		if err != nil {
			return err
		}
		msrv = &http.Server{Handler: coordinator.MetricsHandler(reg, srv.Ready), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = msrv.Serve(ml) }()
		log.Info("metrics", "addr", ml.Addr().String())
	}
	log.Info("coordinator listening", "addr", lis.Addr().String(), "db", *dbPath)
	// Check the certificate again every day, so that a long-running
	// coordinator warns before it expires (and logs an error after).
	go func() {
		t := time.NewTicker(24 * time.Hour)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				_ = coordinator.CheckCertificate(ctx, chain, now, true, log)
			}
		}
	}()
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	hs.Shutdown()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-sctx.Done():
		g.Stop()
	}
	if msrv != nil {
		_ = msrv.Close()
	}
	log.Info("stopped", "peak_rss_bytes", peakRSS())
	return nil
}

// peakRSS is this process's peak resident set size in bytes (VmHWM from
// /proc/self/status; 0 where that is not available). Unlike the rusage a
// parent gets from wait4, it does not include the parent's memory at the
// time of the fork.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kb * 1024
				}
			}
		}
	}
	return 0
}

// splitNames splits a comma-separated list, dropping empty entries.
func splitNames(s string) []string {
	var out []string
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// dialAdmin connects with name's certificate; peer returns the
// coordinator's certificate once the handshake is done.
func dialAdmin(certs, name, addr string) (cc *grpc.ClientConn, peer func() *x509.Certificate, err error) {
	pool, cert, err := devcert.LoadDir(certs, name)
	if err != nil {
		return nil, nil, err
	}
	var mu sync.Mutex
	var coord *x509.Certificate
	tcfg := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, RootCAs: pool,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) > 0 {
				mu.Lock()
				coord = cs.PeerCertificates[0]
				mu.Unlock()
			}
			return nil
		}}
	cc, err = grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tcfg)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(protocol.MaxMessageSize)))
	return cc, func() *x509.Certificate { mu.Lock(); defer mu.Unlock(); return coord }, err
}

func runSession(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, args, err := subcommand("session", []string{"create", "result", "rerun"}, args, stdout)
	if err != nil {
		return err
	}
	fs := newFlags("session "+sub, stdout)
	addr := fs.String("coordinator", "127.0.0.1:7443", "coordinator address")
	certs := fs.String("certs", "", "certificate directory")
	name := fs.String("name", coordinator.DefaultAdminName, "certificate name to authenticate with")
	var spec, id, sigOut, coordName *string
	var noVerify *bool
	switch sub {
	case "create":
		spec = fs.String("spec", "", "session spec file (JSON or YAML)")
	case "rerun":
		id = fs.String("session", "", "the aborted session to run again (or give it as the argument)")
	default:
		id = fs.String("session", "", "session id")
		sigOut = fs.String("sig-out", "", "write the coordinator's signature over the Result (base64) to this file, for mpsi report --sig")
		coordName = fs.String("coordinator-name", protocol.DefaultCoordinatorName, "the coordinator's certificate name (pinned)")
		noVerify = fs.Bool("no-verify", false, "FORENSICS: print a stored Result even if the coordinator's signature over it does not verify")
	}
	if sub == "rerun" {
		rest, err := parseInterspersed(fs, args)
		if err != nil {
			return err
		}
		switch {
		case len(rest) == 1 && *id == "":
			*id = rest[0]
		case len(rest) > 0:
			return usageError(fs, fmt.Errorf("unexpected argument %q", rest[len(rest)-1]), "give the session id once: mpsi session rerun ID")
		}
	} else if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *certs == "" {
		return usageError(fs, errors.New("--certs is required"), "make development certificates with: mpsi dev-certs --out ./certs")
	}
	var s *session.Spec
	switch {
	case sub == "create" && *spec == "":
		return usageError(fs, errors.New("--spec is required"), "")
	case sub == "create":
		if s, err = session.LoadSpec(*spec); err != nil {
			return err
		}
	case *id == "":
		return usageError(fs, errors.New("--session is required"), "")
	}
	cc, coordCert, err := dialAdmin(*certs, *name, *addr)
	if err != nil {
		return err
	}
	defer cc.Close()
	cl := mpsiv1.NewCoordinatorClient(cc)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if sub == "create" {
		resp, err := cl.CreateSession(ctx, &mpsiv1.CreateSessionRequest{SpecJson: s.Canonical()})
		if err != nil {
			return statusErr(err)
		}
		fmt.Fprintln(stdout, resp.GetSessionId())
		return nil
	}
	resp, err := cl.GetResult(ctx, &mpsiv1.GetResultRequest{SessionId: *id})
	if err != nil {
		return statusErr(err)
	}
	if sub == "rerun" {
		return rerunSession(ctx, cl, resp, stdout, stderr)
	}
	switch resp.GetState() {
	case store.StateCompleted:
		// The Result printed is the one the coordinator signed, checked
		// against its certificate (pinned by name), unless --no-verify.
		if !*noVerify {
			c := coordCert()
			switch {
			case c == nil:
				return errors.New("result: no coordinator certificate to check the signature against (use --no-verify for forensics)")
			case c.Subject.CommonName != *coordName:
				return fmt.Errorf("result: the coordinator presented a certificate named %q, pinned name %q", c.Subject.CommonName, *coordName)
			}
			if err := envelope.VerifyResult(c, *id, resp.GetResultJson(), resp.GetSignature()); err != nil {
				return fmt.Errorf("result of session %s refused: %w (use --no-verify for forensics)", *id, err)
			}
		} else {
			fmt.Fprintln(stderr, "mpsi: warning: --no-verify: the Result's signature was NOT checked")
		}
		if *sigOut != "" {
			enc := base64.StdEncoding.EncodeToString(resp.GetSignature()) + "\n"
			if err := writeBytesAtomic(*sigOut, []byte(enc)); err != nil {
				return err
			}
		}
		_, err := stdout.Write(append(resp.GetResultJson(), '\n'))
		return err
	case store.StateAborted:
		return fmt.Errorf("session %s was aborted: %s", *id, resp.GetReason())
	default:
		return fmt.Errorf("session %s is %s: no result yet", *id, resp.GetState())
	}
}

func statusErr(err error) error {
	st := status.Convert(err)
	return fmt.Errorf("coordinator: %s: %s", st.Code(), st.Message())
}

func runParty(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("party", stdout)
	addr := fs.String("coordinator", "127.0.0.1:7443", "coordinator address")
	coordName := fs.String("coordinator-name", protocol.DefaultCoordinatorName, "the coordinator's certificate name (pinned: another certificate is refused, and so is a spec listing it as a party)")
	idleTimeout := fs.Duration("idle-timeout", party.DefaultIdleTimeout, "abort when the coordinator sends nothing for this long while this hospital has no work left (longer than the coordinator's --round-timeout)")
	reconnectWithin := fs.Duration("reconnect-within", 0, "after the stream to the coordinator broke, try to reconnect and resume for at most this long (0: the coordinator's --reconnect-grace; negative: never)")
	certs := fs.String("certs", "", "certificate directory with ca.pem, NAME.pem, NAME-key.pem")
	name := fs.String("name", "", "this party's name (its certificate name)")
	id := fs.String("session", "", "session id")
	var data listFlag
	fs.Var(&data, "data", "this party's records: a CSV file; FHIR NDJSON files (repeat: Patient and Condition files) or a bulk-export directory; or a postgres:// URL with --query")
	mapPath := fs.String("map", "", "column mapping file (optional; for FHIR, field paths)")
	inFlags := addInputFlags(fs.FlagSet)
	policyPath := fs.String("policy", "", "local policy file (optional)")
	ledgerPath := fs.String("ledger", "", "privacy-budget ledger (SQLite file; required when the policy sets a privacy_budget)")
	dataset := fs.String("dataset", "", "the dataset's name in the ledger (default: the --data file's base name, or the database URL's host and path)")
	out := fs.String("out", "", "write the Result JSON here (atomically) instead of stdout")
	rejectDup := fs.Bool("reject-duplicates", false, "fail on repeated match keys instead of merging them")
	skipBad := fs.Bool("skip-bad-rows", false, "reject rows that fail to parse or check (counted; each listed here only, by line, field and kind of fault, never the value) instead of stopping at the first")
	statsPath := fs.String("stats", "", "write phase timings and byte counts (JSON) here")
	cpuProfile := fs.String("cpuprofile", "", "write a pprof CPU profile to this file")
	exitAt := fs.String("fault-exit-at", "", "FAULT INJECTION for tests: exit at once (status 86, no Abort sent) when aggregation encrypted reaches this stage: keys-sent, public-key, ciphertexts-sent or key-switch")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	switch *exitAt {
	case "", protocol.StageKeysSent, protocol.StagePublicKey, protocol.StageCiphertextsSent, protocol.StageKeySwitch:
	default:
		return usageError(fs, fmt.Errorf("--fault-exit-at %q is not a stage", *exitAt), "")
	}
	for _, f := range []struct{ flag, v string }{{"--certs", *certs}, {"--name", *name}, {"--session", *id}, {"--data", data.String()}} {
		if f.v == "" {
			return usageError(fs, fmt.Errorf("%s is required", f.flag), "")
		}
	}
	// A missing data file (or an unreachable database) is found here, not
	// after joining (which would abort the session for every party).
	opt := party.LoadOptions{SkipBadRows: *skipBad}
	if *rejectDup {
		opt.Duplicates = party.DuplicatesReject
	}
	in, err := inFlags.input(data, *mapPath)
	if err != nil {
		return err
	}
	input, err := openInput(ctx, in, *name, opt)
	if err != nil {
		return err
	}
	defer input.close()
	log := newLogger(stderr).With("party", *name)
	pool, cert, err := devcert.LoadDir(*certs, *name)
	if err != nil {
		return err
	}
	// The hospital's own certificate: a warning two weeks before it
	// expires; refused when not valid now (the handshake would fail with
	// a less clear message).
	var chain []*x509.Certificate
	for _, der := range cert.Certificate {
		if c, err := x509.ParseCertificate(der); err == nil {
			chain = append(chain, c)
		}
	}
	if err := coordinator.CheckCertificate(ctx, chain, time.Now(), false, log); err != nil {
		return hintError{fmt.Errorf("%s: %w", filepath.Join(*certs, *name+".pem"), err), "renew this hospital's certificate (development: mpsi dev-certs)"}
	}
	var pol *party.Policy
	if *policyPath != "" {
		if pol, err = party.LoadPolicy(*policyPath); err != nil {
			return err
		}
	}
	var admit func(*session.Spec) error
	if pol != nil && pol.PrivacyBudget != nil {
		if *ledgerPath == "" {
			return errors.New("the policy sets a privacy_budget: --ledger FILE is required")
		}
		led, err := ledger.Open(ctx, *ledgerPath)
		if err != nil {
			return err
		}
		defer led.Close()
		ds := *dataset
		if ds == "" {
			ds = datasetName(data)
		}
		admit = func(s *session.Spec) error {
			c, err := led.Charge(ctx, ds, *name, s, *pol.PrivacyBudget)
			if err != nil {
				return err
			}
			if c != nil {
				log.Info("privacy budget charged", "dataset", ds, "partners", c.Partners, "rho", c.Rho, "spent", c.Spent, "budget", c.Budget)
			}
			return nil
		}
	}
	var stats party.Stats
	var progress func(string, int, int)
	if f, ok := stderr.(*os.File); ok && isTerminal(f) {
		progress = func(phase string, done, total int) {
			const width = 30
			filled := 0
			if total > 0 {
				filled = width * done / total
			}
			fmt.Fprintf(f, "\r%-10s [%s%s] %d/%d", phase, strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, total)
			if done >= total {
				fmt.Fprintln(f)
			}
		}
	}
	observe := func(ev protocol.Event) {
		s, ok := ev.(protocol.StageReached)
		if ok && s.Stage == *exitAt {
			// Simulates a crash: no Abort, no flushing, no deferred calls.
			fmt.Fprintf(stderr, "mpsi: party %s: fault injection: exiting at stage %s\n", *name, s.Stage)
			os.Exit(86)
		}
	}
	res, err := party.RunRemote(ctx, party.RemoteConfig{
		Observe:         observe,
		CoordinatorName: *coordName,
		IdleTimeout:     *idleTimeout,
		ReconnectWithin: *reconnectWithin,
		Progress:        progress,
		Stats:           &stats,
		Address:         *addr,
		TLS:             &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, RootCAs: pool},
		Session:         *id,
		Load: func(s *session.Spec) (*party.Records, error) {
			recs, err := input.load(s)
			if err == nil {
				printRejected(stderr, *name, recs.Report)
			}
			return recs, err
		},
		Policy: pol,
		Admit:  admit,
		Logger: log,
	})
	if err != nil {
		return err
	}
	if *statsPath != "" {
		stats.PeakRSS = peakRSS()
		if err := writeFileAtomic(*statsPath, stats); err != nil {
			return err
		}
	}
	if *out == "" {
		return writeJSON(stdout, res)
	}
	return writeFileAtomic(*out, res)
}

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub, args, err := subcommand("audit", []string{"verify", "head"}, args, stdout)
	if err != nil {
		return err
	}
	fs := newFlags("audit "+sub, stdout)
	dbPath := fs.String("db", "mpsi.db", "SQLite database file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	st, err := store.OpenWith(ctx, *dbPath, store.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := st.VerifyAudit(ctx)
	if err != nil {
		return err
	}
	if sub == "head" {
		// The chain head, to publish or countersign outside the database:
		// anyone able to rewrite the file could otherwise rewrite the whole
		// chain consistently.
		seq, hash, err := st.Head(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d %x\n", seq, hash)
		return nil
	}
	fmt.Fprintf(stdout, "audit chain of %s verified: %d events\n", filepath.Base(*dbPath), n)
	return nil
}

// startCPUProfile starts a pprof CPU profile into path ("" does nothing)
// and returns the function that stops it.
func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// isTerminal reports whether f is a character device (a terminal): the
// party then draws a progress bar; otherwise it writes log lines only.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// parseBytes reads a byte count: a plain number or one with a KiB, MiB or
// GiB suffix (case-insensitive).
func parseBytes(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 || v > (1<<50)/mult {
		return 0, fmt.Errorf("%q is not a byte count (e.g. 512MiB, 2GiB or 1048576)", s)
	}
	return v * mult, nil
}

// privacyBudget is the coordinator's advisory budget of its flags (nil
// without one).
func privacyBudget(eps, delta float64) *coordinator.PrivacyBudget {
	if eps <= 0 {
		return nil
	}
	return &coordinator.PrivacyBudget{Epsilon: eps, Delta: delta}
}
