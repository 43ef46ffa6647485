package deploy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"google.golang.org/grpc"

	"github.com/mpsi-dev/mpsi/examples/recordsharing/access"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/app"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/contract"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/internal/rpcnet"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/ledger"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/protocol"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/sharingpb"
	"github.com/mpsi-dev/mpsi/internal/devcert"
)

// Certificate common names of the components.
const (
	NameApp      = "recordsharing-app"
	NameAccess   = "recordsharing-access"
	NameContract = "recordsharing-contract"
)

// Config configures a System.
type Config struct {
	LedgerPath     string       // required: a new file for the ledger
	AllowedSources []netip.Addr // if empty, only 127.0.0.1
	Window         time.Duration
	Log            *slog.Logger // if nil, logs are discarded
}

// System is a running contract and access layer. It is safe for concurrent
// use; Close stops it.
type System struct {
	AppKey      *protocol.KeyPair // the key preset in the app (signature 2)
	Authority   *protocol.KeyPair // the registration authority's key, set in the contract
	AccessKey   protocol.Key
	ContractKey protocol.Key
	Ledger      *ledger.Ledger
	Contract    *contract.Contract
	Access      *access.Layer
	AccessAddr  string
	LedgerPath  string

	ca      *devcert.CA
	appTLS  *tls.Config
	window  time.Duration
	log     *slog.Logger
	servers []*grpc.Server
	conns   []*grpc.ClientConn
}

// Start makes keys and certificates, creates the ledger and starts the
// contract and the access layer. Call Close to stop them.
func Start(ctx context.Context, cfg Config) (_ *System, err error) {
	if cfg.LedgerPath == "" {
		return nil, errors.New("deploy: LedgerPath is required")
	}
	s := &System{LedgerPath: cfg.LedgerPath, window: cfg.Window, log: cfg.Log}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.ca, err = devcert.NewCA("recordsharing dev CA")
	if err != nil {
		return nil, err
	}
	tlsFor := func(name string) (server, client *tls.Config, err error) {
		leaf, err := s.ca.Issue(name)
		if err != nil {
			return nil, nil, err
		}
		if server, err = devcert.ServerConfig(s.ca, leaf); err != nil {
			return nil, nil, err
		}
		client, err = devcert.ClientConfig(s.ca, leaf)
		return server, client, err
	}
	contractServerTLS, _, err := tlsFor(NameContract)
	if err != nil {
		return nil, err
	}
	accessServerTLS, accessClientTLS, err := tlsFor(NameAccess)
	if err != nil {
		return nil, err
	}
	if _, s.appTLS, err = tlsFor(NameApp); err != nil {
		return nil, err
	}

	keys := make([]*protocol.KeyPair, 4)
	for i := range keys {
		if keys[i], err = protocol.GenerateKeyPair(); err != nil {
			return nil, err
		}
	}
	s.AppKey, s.Authority = keys[0], keys[3]
	accessKey, contractKey := keys[1], keys[2]
	s.AccessKey, s.ContractKey = accessKey.Public(), contractKey.Public()

	if s.Ledger, err = ledger.Create(ctx, cfg.LedgerPath, contractKey.PrivateKey()); err != nil {
		return nil, err
	}
	s.Contract, err = contract.New(ctx, contract.Config{
		Key: contractKey, AccessKey: s.AccessKey, Authority: s.Authority.Public(), Ledger: s.Ledger, Window: cfg.Window, Log: cfg.Log,
	})
	if err != nil {
		return nil, err
	}
	contractAddr, err := s.serve(contractServerTLS, func(g *grpc.Server) {
		sharingpb.RegisterContractServer(g, contract.NewServer(s.Contract, NameAccess, cfg.Log))
	})
	if err != nil {
		return nil, err
	}

	conn, err := rpcnet.Dial(contractAddr, accessClientTLS, netip.Addr{})
	if err != nil {
		return nil, err
	}
	s.conns = append(s.conns, conn)
	allowed := cfg.AllowedSources
	if len(allowed) == 0 {
		allowed = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	}
	s.Access, err = access.New(access.Config{
		Key: accessKey, AppKey: s.AppKey.Public(), ContractKey: s.ContractKey,
		Contract: sharingpb.NewContractClient(conn), AllowedSources: allowed, Window: cfg.Window, Log: cfg.Log,
	})
	if err != nil {
		return nil, err
	}
	s.AccessAddr, err = s.serve(accessServerTLS, func(g *grpc.Server) {
		sharingpb.RegisterAccessLayerServer(g, s.Access)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (s *System) serve(tlsConf *tls.Config, register func(*grpc.Server)) (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("deploy: %w", err)
	}
	g := grpc.NewServer(rpcnet.ServerOptions(tlsConf, s.log)...)
	register(g)
	s.servers = append(s.servers, g)
	go g.Serve(lis) // stopped by Close
	return lis.Addr().String(), nil
}

// NewApp connects a new app (holding the preset app key and the app's TLS
// certificate) to the access layer, calling from source (a loopback
// address; the zero value lets the system choose). log may be nil. The
// returned function closes the connection.
func (s *System) NewApp(source netip.Addr, log *slog.Logger) (*app.App, func() error, error) {
	conn, err := s.DialAccess(source)
	if err != nil {
		return nil, nil, err
	}
	a, err := app.New(app.Config{
		Key: s.AppKey, AccessKey: s.AccessKey, Client: sharingpb.NewAccessLayerClient(conn), Window: s.window, Log: log,
	})
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return a, conn.Close, nil
}

// DialAccess connects to the access layer with the app's TLS certificate,
// calling from source (see NewApp).
func (s *System) DialAccess(source netip.Addr) (*grpc.ClientConn, error) {
	return rpcnet.Dial(s.AccessAddr, s.appTLS, source)
}

// Close stops the servers (gracefully, then forcibly after a few seconds)
// and closes the ledger.
func (s *System) Close() error {
	for i := len(s.servers) - 1; i >= 0; i-- {
		g := s.servers[i]
		done := make(chan struct{})
		go func() { g.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			g.Stop()
		}
	}
	var errs []error
	for _, c := range s.conns {
		errs = append(errs, c.Close())
	}
	if s.Ledger != nil {
		errs = append(errs, s.Ledger.Close())
	}
	return errors.Join(errs...)
}
