package upload

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/mpsi-dev/mpsi/internal/devcert"
)

// benchSize is the size of the synthetic recording in the throughput
// benchmarks: 100 MiB.
const benchSize = 100 << 20

// BenchmarkUpload measures a full sealed upload of a 100 MiB recording over
// mTLS 1.3 on loopback: key fetch, HPKE, sealed request, 1 MiB chunks sealed
// by the client, authenticated on arrival, merged, decrypted, digest-checked
// and stored with fsync by the server. The store is on disk and, where
// /dev/shm exists, on tmpfs, where fsync costs nothing: the difference is
// the price of durable storage.
func BenchmarkUpload(b *testing.B) {
	rec := SyntheticBlob("bench", benchSize)
	stores := []struct{ name, dir string }{{"disk", ""}}
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		stores = append(stores, struct{ name, dir string }{"tmpfs", "/dev/shm"})
	}
	for _, store := range stores {
		for _, suite := range Suites() {
			benchUpload(b, rec, suite, store.name, store.dir)
		}
	}
}

// benchUpload runs one sub-benchmark; storeParent is where the store
// directory is made ("" for the test's temporary directory). On tmpfs the
// fsyncs cost nothing, which separates durable storage from the transfer.
func benchUpload(b *testing.B, rec *Recording, suite Suite, storeName, storeParent string) {
	b.Run("mode=sealed-stream/suite="+suite.String()+"/store="+storeName, func(b *testing.B) {
		e := newEnv(b, func(c *Config) {
			// The state database (jobs, sealed chunks) goes where the store goes.
			c.StateDir = b.TempDir()
			if storeParent != "" {
				dir, err := os.MkdirTemp(storeParent, "ecgupload-bench-")
				require.NoError(b, err)
				b.Cleanup(func() { os.RemoveAll(dir) })
				c.StoreDir = dir
				c.StateDir = filepath.Join(dir, ".state")
			}
		})
		e.rotateUntil(b, suite)
		c := e.client(b, "clinic-a", func(cc *ClientConfig) { cc.ChunkSize = 1 << 20 })
		ctx := context.Background()
		b.SetBytes(benchSize)
		b.ReportAllocs()
		for b.Loop() {
			rc, err := c.Upload(ctx, rec, 1)
			if err != nil {
				b.Fatal(err)
			}
			if rc.Mode != ModeStream || rc.Suite != suite || rc.Size != benchSize {
				b.Fatalf("unexpected receipt %v", rc)
			}
			os.RemoveAll(filepath.Join(e.store, rc.StoredAs))
		}
	})
}

// BenchmarkPlainStream measures an unencrypted stream of the same 100 MiB
// in the same run, as baselines: raw TCP, TLS 1.3 only, and a gRPC client
// stream over mTLS 1.3 without the application-layer sealing.
func BenchmarkPlainStream(b *testing.B) {
	data := SyntheticBlob("bench", benchSize).Files[0].Data
	b.Run("transport=tcp", func(b *testing.B) {
		benchConn(b, data, func(c net.Conn) net.Conn { return c }, func(c net.Conn) net.Conn { return c })
	})
	b.Run("transport=tls13", func(b *testing.B) {
		srvCfg, cliCfg := benchTLS(b)
		cliCfg.ServerName = "127.0.0.1"
		benchConn(b, data, func(c net.Conn) net.Conn { return tls.Server(c, srvCfg) }, func(c net.Conn) net.Conn { return tls.Client(c, cliCfg) })
	})
	b.Run("transport=grpc-tls13", func(b *testing.B) { benchGRPC(b, data) })
}

func benchTLS(b *testing.B) (*tls.Config, *tls.Config) {
	ca, err := devcert.NewCA("bench")
	require.NoError(b, err)
	sl, err := ca.Issue("server")
	require.NoError(b, err)
	cl, err := ca.Issue("client")
	require.NoError(b, err)
	s, err := devcert.ServerConfig(ca, sl)
	require.NoError(b, err)
	c, err := devcert.ClientConfig(ca, cl)
	require.NoError(b, err)
	return s, c
}

// benchConn sends data over a fresh connection per iteration and waits for
// the receiver's one-byte acknowledgement after it has read everything.
func benchConn(b *testing.B, data []byte, wrapSrv, wrapCli func(net.Conn) net.Conn) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				c = wrapSrv(c)
				defer c.Close()
				if n, err := io.CopyN(io.Discard, c, int64(len(data))); err == nil && n == int64(len(data)) {
					c.Write([]byte{1})
				}
			}()
		}
	}()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		raw, err := net.Dial("tcp", lis.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		c := wrapCli(raw)
		for off := 0; off < len(data); off += 1 << 20 {
			if _, err := c.Write(data[off:min(off+1<<20, len(data))]); err != nil {
				b.Fatal(err)
			}
		}
		ack := make([]byte, 1)
		if _, err := io.ReadFull(c, ack); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// rawCodec passes []byte messages through gRPC unchanged.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(d []byte, v any) error {
	*(v.(*[]byte)) = append((*(v.(*[]byte)))[:0], d...)
	return nil
}
func (rawCodec) Name() string { return "raw" }

func benchGRPC(b *testing.B, data []byte) {
	srvCfg, cliCfg := benchTLS(b)
	desc := grpc.ServiceDesc{
		ServiceName: "bench.Sink",
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{{
			StreamName:    "Sink",
			ClientStreams: true,
			Handler: func(_ any, stream grpc.ServerStream) error {
				var n int
				var m []byte
				for {
					if err := stream.RecvMsg(&m); err == io.EOF {
						ack := []byte(fmt.Sprint(n))
						return stream.SendMsg(&ack)
					} else if err != nil {
						return err
					}
					n += len(m)
				}
			},
		}},
	}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(srvCfg)), grpc.ForceServerCodec(rawCodec{}), grpc.MaxRecvMsgSize(2<<20))
	g.RegisterService(&desc, struct{}{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	go g.Serve(lis)
	defer g.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cliCfg)),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	require.NoError(b, err)
	defer conn.Close()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		st, err := conn.NewStream(context.Background(), &desc.Streams[0], "/bench.Sink/Sink")
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < len(data); off += 1 << 20 {
			m := data[off:min(off+1<<20, len(data))]
			if err := st.SendMsg(&m); err != nil {
				b.Fatal(err)
			}
		}
		if err := st.CloseSend(); err != nil {
			b.Fatal(err)
		}
		var ack []byte
		if err := st.RecvMsg(&ack); err != nil {
			b.Fatal(err)
		}
		if string(ack) != fmt.Sprint(len(data)) {
			b.Fatalf("sink received %s bytes", ack)
		}
	}
}
