package relay

import (
	"context"
	"testing"
	"time"

	"github.com/mpsi-dev/mpsi/examples/identitykeys/identitypb"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/link"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/recordkey"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/records"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
)

// fakeCloud records Put batches and whether the link was on the cloud side
// during each call.
type fakeCloud struct {
	identitypb.CloudClient
	sw      *link.Switch
	batches [][]*identitypb.Entry
	offSide bool
}

func (f *fakeCloud) Put(_ context.Context, req *identitypb.PutRequest, _ ...grpc.CallOption) (*identitypb.PutResponse, error) {
	if side, ok := f.sw.State().Connected(); !ok || side != link.Cloud {
		f.offSide = true
	}
	f.batches = append(f.batches, req.Entries)
	return &identitypb.PutResponse{Stored: uint32(len(req.Entries))}, nil
}

func TestUploadBatchesOnCloudSide(t *testing.T) {
	ev, err := recordkey.GenerateEvaluator("hospital-a")
	require.NoError(t, err)
	sw := link.NewSwitch(nil)
	require.NoError(t, sw.Start())
	fc := &fakeCloud{sw: sw}
	closed := 0
	r, err := New(Config{Evaluator: ev, Link: sw, DB: openStore(t, &records.DB{Hospital: "hospital-a"}),
		DialCloud: func(context.Context) (identitypb.CloudClient, func() error, error) {
			return fc, func() error { closed++; return nil }, nil
		}})
	require.NoError(t, err)
	const n = 700
	for i := range n {
		r.pending = append(r.pending, &identitypb.Entry{Hospital: "hospital-a", Index: []byte{byte(i), byte(i >> 8)}, Ciphertext: make([]byte, 10_000)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, sw.Toggle(ctx)) // to the hospital side: Upload must wait
	done := make(chan error, 1)
	var stored int
	go func() {
		var err error
		stored, err = r.Upload(ctx)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Upload ran on the hospital side (%v)", err)
	case <-time.After(20 * time.Millisecond):
	}
	require.NoError(t, sw.Toggle(ctx))
	require.NoError(t, <-done)
	require.Equal(t, n, stored)
	require.False(t, fc.offSide, "Put called while the link was off the cloud side")
	require.Equal(t, 1, closed, "the cloud connection was not closed after the upload")
	i := 0
	for _, b := range fc.batches {
		size := 0
		for _, e := range b {
			size += len(e.Ciphertext)
			require.Equal(t, []byte{byte(i), byte(i >> 8)}, e.Index, "entries reordered")
			i++
		}
		require.LessOrEqual(t, len(b), UploadBatch)
		require.LessOrEqual(t, size, UploadBatchBytes)
	}
	require.Equal(t, n, i)
	require.Empty(t, r.pending)
}
