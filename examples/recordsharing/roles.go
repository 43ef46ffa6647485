package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/mpsi-dev/mpsi/examples/recordsharing/access"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/contract"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/internal/deploy"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/internal/rpcnet"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/ledger"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/protocol"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/sharingpb"
)

// Lines a role process prints on stdout for the process that started it.
const (
	readyPrefix   = "ready: listening on " // followed by host:port
	rotatedPrefix = "event: access key replaced "
)

// serveUntil serves g on lis until ctx ends, then stops it gracefully
// (forcibly after five seconds).
func serveUntil(ctx context.Context, g *grpc.Server, lis net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		g.Stop()
	}
	return nil
}

// runContract is the `contract` command: the ledger contract as its own
// process. It creates the ledger file if it does not exist and opens (and
// fully verifies) it otherwise.
func runContract(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("contract", flag.ContinueOnError)
	fs.SetOutput(out)
	dir := fs.String("dir", "", "deployment directory (keys and certificates)")
	db := fs.String("db", "", "ledger file")
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *db == "" || fs.NArg() != 0 {
		return errors.New("contract needs -dir DIR and -db FILE")
	}
	log := newLogger(out)
	key, err := deploy.LoadKey(*dir, deploy.FileContract)
	if err != nil {
		return err
	}
	accessKey, err := deploy.LoadPublic(*dir, deploy.FileAccess)
	if err != nil {
		return err
	}
	ra, err := deploy.LoadPublic(*dir, deploy.FileAuthority)
	if err != nil {
		return err
	}
	serverTLS, _, err := deploy.TLSFromDir(*dir, deploy.NameContract)
	if err != nil {
		return err
	}
	var l *ledger.Ledger
	if _, serr := os.Stat(*db); serr == nil {
		l, err = ledger.Open(ctx, *db, key.PrivateKey())
	} else {
		l, err = ledger.Create(ctx, *db, key.PrivateKey())
	}
	if err != nil {
		return err
	}
	defer l.Close()
	c, err := contract.New(ctx, contract.Config{Key: key, AccessKey: accessKey, Authority: ra, Ledger: l, Log: log})
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	g := grpc.NewServer(rpcnet.ServerOptions(serverTLS, log)...)
	sharingpb.RegisterContractServer(g, contract.NewServer(c, deploy.NameAccess, log))
	fmt.Fprintf(out, "contract: key %s, registration authority %s, access key %s, ledger %s\n", c.Public(), ra, c.AccessKey(), *db)
	fmt.Fprintf(out, "%s%s\n", readyPrefix, lis.Addr())
	return serveUntil(ctx, g, lis)
}

// runAccess is the `access` command: the access layer as its own process.
// SIGHUP replaces its key: the new key is written beside the old one, the
// contract logs the rotation, then the new key replaces the old file and
// the rotation is appended to the deployment's list.
func runAccess(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("access", flag.ContinueOnError)
	fs.SetOutput(out)
	dir := fs.String("dir", "", "deployment directory (keys and certificates)")
	contractAddr := fs.String("contract", "", "the contract's address")
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	allow := fs.String("allow", "127.0.0.1", "the app's source address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *contractAddr == "" || fs.NArg() != 0 {
		return errors.New("access needs -dir DIR and -contract ADDR")
	}
	allowed, err := netip.ParseAddr(*allow)
	if err != nil {
		return fmt.Errorf("-allow: %w", err)
	}
	log := newLogger(out)
	key, err := deploy.LoadKey(*dir, deploy.FileAccess)
	if err != nil {
		return err
	}
	rotations, err := deploy.LoadRotations(*dir)
	if err != nil {
		return err
	}
	appKey, err := deploy.LoadPublic(*dir, deploy.FileApp)
	if err != nil {
		return err
	}
	contractKey, err := deploy.LoadPublic(*dir, deploy.FileContract)
	if err != nil {
		return err
	}
	serverTLS, clientTLS, err := deploy.TLSFromDir(*dir, deploy.NameAccess)
	if err != nil {
		return err
	}
	conn, err := rpcnet.Dial(*contractAddr, clientTLS, netip.Addr{})
	if err != nil {
		return err
	}
	defer conn.Close()
	layer, err := access.New(access.Config{
		Key: key, Rotations: rotations, AppKey: appKey, ContractKey: contractKey,
		Contract: sharingpb.NewContractClient(conn), AllowedSources: []netip.Addr{allowed}, Log: log,
	})
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	g := grpc.NewServer(rpcnet.ServerOptions(serverTLS, log)...)
	sharingpb.RegisterAccessLayerServer(g, layer)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := rotateAccess(ctx, *dir, layer, out); err != nil {
					fmt.Fprintf(out, "access: key rotation failed: %v\n", err)
				}
			}
		}
	}()
	fmt.Fprintf(out, "access: key %s (%d rotations since deployment), app key %s, contract %s at %s, app source %s\n",
		layer.Public(), len(rotations), appKey, contractKey, *contractAddr, allowed)
	fmt.Fprintf(out, "%s%s\n", readyPrefix, lis.Addr())
	return serveUntil(ctx, g, lis)
}

func rotateAccess(ctx context.Context, dir string, layer *access.Layer, out io.Writer) error {
	next, err := protocol.GenerateKeyPair()
	if err != nil {
		return err
	}
	// Keep the new key on disk before the contract switches to it.
	if err := deploy.SaveKey(dir, deploy.FileAccess+".next", next); err != nil {
		return err
	}
	old := layer.Public()
	rot, err := layer.RotateKey(ctx, next)
	if err != nil {
		return err
	}
	if err := deploy.AppendRotation(dir, rot); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(dir, deploy.FileAccess+".next.key"), filepath.Join(dir, deploy.FileAccess+".key")); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s%s -> %s\n", rotatedPrefix, old, next.Public())
	return nil
}
