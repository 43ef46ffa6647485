// Package platform wires the example's parties together over real gRPC with
// mutual TLS 1.3 on 127.0.0.1: a cloud store, one relay per hospital (each
// with its own OPRF key, link switch and database), and terminals. Each
// party has its own certificate from a throwaway CA (internal/devcert), and
// is named by it.
package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mpsi-dev/mpsi/examples/identitykeys/cloud"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/identitypb"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/link"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/recordkey"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/records"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/relay"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/terminal"
	"github.com/mpsi-dev/mpsi/internal/devcert"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// CloudName is the cloud's certificate name.
const CloudName = "cloud"

// Options configure [Start].
type Options struct {
	DBs []*records.DB // one per hospital, named by DB.Hospital; required
	// Dir holds the SQLite files: cloud.db and HOSPITAL.db (each
	// hospital's database, into which DBs are imported). Required; the
	// files must not exist yet.
	Dir       string
	RateBurst int           // per-terminal OPRF budget; if zero, relay.DefaultRateBurst
	RateEvery time.Duration // if zero, relay.DefaultRateEvery
	Now       func() time.Time
	// OnLink, if not nil, is called on every accepted link event of every
	// relay, with that relay's switch locked (it must not call the switch).
	OnLink func(hospital string, from link.State, ev link.Event, to link.State)
	Logger *slog.Logger // if nil, logs are discarded
}

// Node is one hospital's relay with its switch and address.
type Node struct {
	Hospital  string
	DB        *records.Store
	Relay     *relay.Relay
	Link      *link.Switch
	Evaluator *recordkey.Evaluator
	Addr      string
}

// Platform is a running set of parties. Close stops it.
type Platform struct {
	CA        *devcert.CA
	Cloud     *cloud.Store
	CloudAddr string
	Nodes     []*Node
	now       func() time.Time

	mu      sync.Mutex // guards the fields below
	servers []*grpc.Server
	conns   []*grpc.ClientConn
	closers []func() error
}

func recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = status.Error(codes.Internal, "internal error")
		}
	}()
	return handler(ctx, req)
}

func (p *Platform) serve(name string, register func(*grpc.Server)) (string, error) {
	leaf, err := p.CA.Issue(name)
	if err != nil {
		return "", err
	}
	cfg, err := devcert.ServerConfig(p.CA, leaf)
	if err != nil {
		return "", err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("platform: listening for %s: %w", name, err)
	}
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)), grpc.ChainUnaryInterceptor(recoverUnary))
	register(s)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	p.mu.Lock()
	p.servers = append(p.servers, s)
	p.mu.Unlock()
	go func() { _ = s.Serve(lis) }() // stopped by Close
	return lis.Addr().String(), nil
}

// dial opens a client connection to addr as the party name, expecting the
// server's certificate to be for server.
func (p *Platform) dial(name, server, addr string) (*grpc.ClientConn, error) {
	leaf, err := p.CA.Issue(name)
	if err != nil {
		return nil, err
	}
	cfg, err := devcert.ClientConfig(p.CA, leaf)
	if err != nil {
		return nil, err
	}
	cfg.ServerName = server
	return grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
}

func (p *Platform) keep(c *grpc.ClientConn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

// Start starts the cloud and one relay per database, each on its own
// 127.0.0.1 port. Every switch is started (connected to the cloud side).
func Start(opts Options) (*Platform, error) {
	if len(opts.DBs) == 0 {
		return nil, errors.New("platform: no hospital databases")
	}
	if opts.Dir == "" {
		return nil, errors.New("platform: Dir is required")
	}
	ca, err := devcert.NewCA("identitykeys-dev-ca")
	if err != nil {
		return nil, err
	}
	p := &Platform{CA: ca, now: opts.Now}
	if p.now == nil {
		p.now = time.Now
	}
	var names []string
	for _, db := range opts.DBs {
		names = append(names, db.Hospital)
	}
	if p.Cloud, err = cloud.New(cloud.Config{Hospitals: names, Path: filepath.Join(opts.Dir, "cloud.db"), Now: opts.Now}); err != nil {
		return nil, err
	}
	p.closers = append(p.closers, p.Cloud.Close)
	if p.CloudAddr, err = p.serve(CloudName, p.Cloud.Register); err != nil {
		p.Close()
		return nil, err
	}
	for _, db := range opts.DBs {
		n, err := p.startRelay(db, opts)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.Nodes = append(p.Nodes, n)
	}
	return p, nil
}

func (p *Platform) startRelay(db *records.DB, opts Options) (*Node, error) {
	ev, err := recordkey.GenerateEvaluator(db.Hospital)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(opts.Dir, db.Hospital+".db")
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("platform: %s exists; give a new Dir", path)
	}
	store, err := records.OpenStore(context.Background(), path, db.Hospital)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.closers = append(p.closers, store.Close)
	p.mu.Unlock()
	if err := store.Import(context.Background(), db); err != nil {
		return nil, err
	}
	var observe func(link.State, link.Event, link.State)
	if opts.OnLink != nil {
		h := db.Hospital
		observe = func(from link.State, e link.Event, to link.State) { opts.OnLink(h, from, e, to) }
	}
	sw := link.NewSwitch(observe)
	hospital := db.Hospital
	r, err := relay.New(relay.Config{
		Evaluator: ev, Link: sw, DB: store,
		DialCloud: func(ctx context.Context) (identitypb.CloudClient, func() error, error) {
			conn, err := p.dial(hospital, CloudName, p.CloudAddr)
			if err != nil {
				return nil, nil, err
			}
			return identitypb.NewCloudClient(conn), conn.Close, nil
		},
		RateBurst: opts.RateBurst, RateEvery: opts.RateEvery, Now: opts.Now, Logger: opts.Logger,
	})
	if err != nil {
		return nil, err
	}
	addr, err := p.serve(db.Hospital, r.Register)
	if err != nil {
		return nil, err
	}
	if err := sw.Start(); err != nil {
		return nil, err
	}
	return &Node{Hospital: db.Hospital, DB: store, Relay: r, Link: sw, Evaluator: ev, Addr: addr}, nil
}

// TerminalSpec names a terminal to create and how it traces its messages.
type TerminalSpec struct {
	Name  string
	Trace func(format string, args ...any)
}

// NewTerminals creates terminals that all know each other's public keys and
// every hospital's pinned OPRF key, each connected as itself to the cloud
// and to every relay.
func (p *Platform) NewTerminals(specs ...TerminalSpec) ([]*terminal.Terminal, error) {
	keys := make([]*recordkey.TerminalKey, len(specs))
	dir := map[string][]byte{}
	for i, s := range specs {
		k, err := recordkey.GenerateTerminalKey()
		if err != nil {
			return nil, err
		}
		keys[i] = k
		dir[s.Name] = k.PublicKey()
	}
	out := make([]*terminal.Terminal, len(specs))
	for i, s := range specs {
		cc, err := p.dial(s.Name, CloudName, p.CloudAddr)
		if err != nil {
			return nil, err
		}
		p.keep(cc)
		var hs []terminal.Hospital
		for _, n := range p.Nodes {
			rc, err := p.dial(s.Name, n.Hospital, n.Addr)
			if err != nil {
				return nil, err
			}
			p.keep(rc)
			hs = append(hs, terminal.Hospital{Name: n.Hospital, OPRFKey: n.Evaluator.PublicKey(), Relay: identitypb.NewRelayClient(rc)})
		}
		t, err := terminal.New(terminal.Config{
			Name: s.Name, Key: keys[i], Hospitals: hs, Terminals: dir,
			Cloud: identitypb.NewCloudClient(cc), Trace: s.Trace, Now: p.now,
		})
		if err != nil {
			return nil, err
		}
		out[i] = t
	}
	return out, nil
}

// Dial opens a raw client connection to addr as the party name (for tests
// that speak the protocol by hand). The platform closes it on Close.
func (p *Platform) Dial(name, server, addr string) (*grpc.ClientConn, error) {
	c, err := p.dial(name, server, addr)
	if err != nil {
		return nil, err
	}
	p.keep(c)
	return c, nil
}

// SyncAndUpload runs one full cycle of every relay's link, as the seed's
// timer does: cloud → hospital (read the database, seal), hospital → cloud
// (upload). It returns the sync reports and stored counts per hospital.
func (p *Platform) SyncAndUpload(ctx context.Context) ([]relay.SyncReport, []int, error) {
	reps := make([]relay.SyncReport, len(p.Nodes))
	stored := make([]int, len(p.Nodes))
	for i, n := range p.Nodes {
		if err := n.Link.Toggle(ctx); err != nil {
			return nil, nil, err
		}
		rep, err := n.Relay.Sync(ctx)
		if err != nil {
			return nil, nil, err
		}
		reps[i] = rep
		if err := n.Link.Toggle(ctx); err != nil {
			return nil, nil, err
		}
		if stored[i], err = n.Relay.Upload(ctx); err != nil {
			return nil, nil, err
		}
	}
	return reps, stored, nil
}

// Close stops every server and closes every connection and database.
func (p *Platform) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	for _, s := range p.servers {
		s.Stop()
	}
	for _, c := range p.closers {
		_ = c()
	}
	p.conns, p.servers, p.closers = nil, nil, nil
}
