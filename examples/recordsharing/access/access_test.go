package access_test

import (
	"context"
	"crypto/rand"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/mpsi-dev/mpsi/examples/recordsharing/access"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/contract"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/ledger"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/protocol"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/sharingpb"
)

func newKey(t testing.TB) *protocol.KeyPair {
	t.Helper()
	k, err := protocol.GenerateKeyPair()
	require.NoError(t, err)
	return k
}

// fakeContract passes requests to a real contract and lets a test alter the
// answer, as a compromised network or contract would.
type fakeContract struct {
	t      *testing.T
	srv    *contract.Server
	acc    protocol.Key
	con    protocol.Key
	calls  atomic.Int32
	mutate func(in *sharingpb.ContractRequest, out *sharingpb.ContractResponse) *sharingpb.ContractResponse

	refuseRotation error
}

func (f *fakeContract) Submit(ctx context.Context, in *sharingpb.ContractRequest, _ ...grpc.CallOption) (*sharingpb.ContractResponse, error) {
	f.calls.Add(1)
	// The access layer's signature 3 must verify for this contract.
	sig1, err := protocol.ParseSignature(in.GetRequesterSignature())
	require.NoError(f.t, err)
	sig3, err := protocol.ParseSignature(in.GetAccessSignature())
	require.NoError(f.t, err)
	require.NoError(f.t, protocol.VerifyAccess(f.acc, f.con, in.GetRequest(), sig1, sig3))
	// (f.acc follows the access layer's key; see TestRotateKey.)
	out, err := f.srv.Submit(ctx, in)
	if err != nil || f.mutate == nil {
		return out, err
	}
	return f.mutate(in, out), nil
}

// RotateAccessKey passes the rotation to the contract, unless refuseRotation
// is set.
func (f *fakeContract) RotateAccessKey(ctx context.Context, in *sharingpb.AccessKeyRotation, _ ...grpc.CallOption) (*sharingpb.AccessKeyRotationAck, error) {
	if f.refuseRotation != nil {
		return nil, f.refuseRotation
	}
	return f.srv.RotateAccessKey(ctx, in)
}

type env struct {
	t             *testing.T
	l             *access.Layer
	fc            *fakeContract
	app, acc, con *protocol.KeyPair
	patient       *protocol.KeyPair
	record        protocol.RecordID
	sid           protocol.SessionID
}

func newEnv(t *testing.T) *env {
	ctx := context.Background()
	e := &env{t: t, app: newKey(t), acc: newKey(t), con: newKey(t), patient: newKey(t), record: protocol.RecordID{5}, sid: protocol.SessionID{1}}
	lg, err := ledger.Create(ctx, filepath.Join(t.TempDir(), "l.db"), e.con.PrivateKey())
	require.NoError(t, err)
	t.Cleanup(func() { lg.Close() })
	ra := newKey(t)
	c, err := contract.New(ctx, contract.Config{Key: e.con, AccessKey: e.acc.Public(), Authority: ra.Public(), Ledger: lg})
	require.NoError(t, err)
	e.fc = &fakeContract{t: t, srv: contract.NewServer(c, "", nil), acc: e.acc.Public(), con: e.con.Public()}
	e.l, err = access.New(access.Config{
		Key: e.acc, AppKey: e.app.Public(), ContractKey: e.con.Public(), Contract: e.fc,
		AllowedSources: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
	})
	require.NoError(t, err)
	pid := protocol.PatientID{7}
	_, err = e.forward(e.sign(e.patient, protocol.Request{Type: protocol.TypeRegister, Role: protocol.RolePatient, Patient: pid,
		Approval: protocol.SignApproval(ra, protocol.RolePatient, e.patient.Public(), pid)}))
	require.NoError(t, err)
	_, err = e.forward(e.sign(e.patient, protocol.Request{Type: protocol.TypeUpload, Record: e.record, Patient: pid, Data: []byte("ecg")}))
	require.NoError(t, err)
	return e
}

// sign completes req and adds signatures 1 and 2 for session e.sid.
func (e *env) sign(user *protocol.KeyPair, req protocol.Request) protocol.SignedRequest {
	req.Requester = user.Public()
	if req.Time == 0 {
		req.Time = time.Now().UnixNano()
	}
	_, err := rand.Read(req.Nonce[:])
	require.NoError(e.t, err)
	enc, err := req.MarshalBinary()
	require.NoError(e.t, err)
	sig1 := protocol.SignRequester(user, enc)
	return protocol.SignedRequest{Request: enc, Requester: sig1, Hop: protocol.SignApp(e.app, e.sid, enc, sig1)}
}

// forward runs Forward and checks signature 5 on success.
func (e *env) forward(in protocol.SignedRequest) (*protocol.Response, error) {
	out, err := e.l.Forward(context.Background(), e.sid, in)
	if err != nil {
		return nil, err
	}
	require.NoError(e.t, protocol.VerifyAccessResponse(e.l.Public(), e.sid, out.Response, out.Hop))
	var r protocol.Response
	require.NoError(e.t, r.UnmarshalBinary(out.Response))
	return &r, nil
}

func (e *env) view() protocol.SignedRequest {
	return e.sign(e.patient, protocol.Request{Type: protocol.TypeView, Record: e.record})
}

// TestSignature2 covers forged, missing, mismatched and replayed signature 2
// and stale requests at the access layer; none reaches the contract.
func TestSignature2(t *testing.T) {
	e := newEnv(t)
	other := newKey(t)
	accepted := e.view()
	_, err := e.forward(accepted)
	require.NoError(t, err)
	tests := []struct {
		name    string
		in      func() protocol.SignedRequest
		wantErr error
	}{
		{"forged by another key", func() protocol.SignedRequest {
			in := e.view()
			in.Hop = protocol.SignApp(other, e.sid, in.Request, in.Requester)
			return in
		}, protocol.ErrBadSignature},
		{"missing", func() protocol.SignedRequest {
			in := e.view()
			in.Hop = protocol.Signature{}
			return in
		}, protocol.ErrBadSignature},
		{"bound to another session", func() protocol.SignedRequest {
			in := e.view()
			in.Hop = protocol.SignApp(e.app, protocol.SessionID{2}, in.Request, in.Requester)
			return in
		}, protocol.ErrBadSignature},
		{"from another request", func() protocol.SignedRequest {
			in, in2 := e.view(), e.view()
			in.Hop = in2.Hop
			return in
		}, protocol.ErrBadSignature},
		{"sig1 swapped after sig2", func() protocol.SignedRequest {
			in, in2 := e.view(), e.view()
			in.Requester = in2.Requester
			return in
		}, protocol.ErrBadSignature},
		{"requester signature presented as sig2", func() protocol.SignedRequest {
			in := e.view()
			in.Hop = in.Requester
			return in
		}, protocol.ErrBadSignature},
		{"replayed", func() protocol.SignedRequest { return accepted }, protocol.ErrReplay},
		{"stale", func() protocol.SignedRequest {
			return e.sign(e.patient, protocol.Request{Type: protocol.TypeView, Record: e.record, Time: time.Now().Add(-time.Hour).UnixNano()})
		}, protocol.ErrStale},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.fc.calls.Load()
			_, err := e.forward(tc.in())
			require.ErrorIs(t, err, tc.wantErr)
			require.Equal(t, before, e.fc.calls.Load(), "refused request reached the contract")
		})
	}
}

// TestSignature4 covers forged, missing, mismatched and replayed answers
// from the contract.
func TestSignature4(t *testing.T) {
	e := newEnv(t)
	other := newKey(t)
	// An earlier valid answer, to replay.
	var old *sharingpb.ContractResponse
	e.fc.mutate = func(_ *sharingpb.ContractRequest, out *sharingpb.ContractResponse) *sharingpb.ContractResponse {
		old = out
		return out
	}
	_, err := e.forward(e.view())
	require.NoError(t, err)
	require.NotNil(t, old)

	resign := func(k *protocol.KeyPair, aud protocol.Key, r *protocol.Response) *sharingpb.ContractResponse {
		enc, err := r.MarshalBinary()
		require.NoError(t, err)
		s := protocol.SignContract(k, aud, enc)
		return &sharingpb.ContractResponse{Response: enc, ContractSignature: s[:]}
	}
	decode := func(out *sharingpb.ContractResponse) *protocol.Response {
		var r protocol.Response
		require.NoError(t, r.UnmarshalBinary(out.GetResponse()))
		return &r
	}
	tests := []struct {
		name    string
		mutate  func(in *sharingpb.ContractRequest, out *sharingpb.ContractResponse) *sharingpb.ContractResponse
		wantErr error
	}{
		{"forged by another key", func(_ *sharingpb.ContractRequest, out *sharingpb.ContractResponse) *sharingpb.ContractResponse {
			return resign(other, e.acc.Public(), decode(out))
		}, protocol.ErrBadSignature},
		{"missing", func(_ *sharingpb.ContractRequest, out *sharingpb.ContractResponse) *sharingpb.ContractResponse {
			return &sharingpb.ContractResponse{Response: out.GetResponse()}
		}, protocol.ErrMalformed},
		{"zero", func(_ *sharingpb.ContractRequest, out *sharingpb.ContractResponse) *sharingpb.ContractResponse {
			return &sharingpb.ContractResponse{Response: out.GetResponse(), ContractSignature: make([]byte, 64)}
		}, protocol.ErrBadSignature},
		{"addressed to another access layer", func(_ *sharingpb.ContractRequest, out *sharingpb.ContractResponse) *sharingpb.ContractResponse {
			return resign(e.con, other.Public(), decode(out))
		}, protocol.ErrBadSignature},
		{"answer altered", func(_ *sharingpb.ContractRequest, out *sharingpb.ContractResponse) *sharingpb.ContractResponse {
			r := decode(out)
			r.Data = []byte("forged record")
			enc, err := r.MarshalBinary()
			require.NoError(t, err)
			return &sharingpb.ContractResponse{Response: enc, ContractSignature: out.GetContractSignature()}
		}, protocol.ErrBadSignature},
		{"signed answer to another request", func(_ *sharingpb.ContractRequest, out *sharingpb.ContractResponse) *sharingpb.ContractResponse {
			r := decode(out)
			r.Request = protocol.Digest{1}
			return resign(e.con, e.acc.Public(), r)
		}, protocol.ErrMismatch},
		{"signed answer of another type", func(_ *sharingpb.ContractRequest, out *sharingpb.ContractResponse) *sharingpb.ContractResponse {
			r := decode(out)
			r.Type = protocol.TypeUpload
			return resign(e.con, e.acc.Public(), r)
		}, protocol.ErrMismatch},
		{"replayed earlier answer", func(*sharingpb.ContractRequest, *sharingpb.ContractResponse) *sharingpb.ContractResponse {
			return old
		}, protocol.ErrMismatch},
		{"malformed answer", func(*sharingpb.ContractRequest, *sharingpb.ContractResponse) *sharingpb.ContractResponse {
			enc := []byte{1, 2, 3}
			s := protocol.SignContract(e.con, e.acc.Public(), enc)
			return &sharingpb.ContractResponse{Response: enc, ContractSignature: s[:]}
		}, protocol.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.fc.mutate = tc.mutate
			_, err := e.forward(e.view())
			require.ErrorIs(t, err, tc.wantErr)
		})
	}
	e.fc.mutate = nil
	r, err := e.forward(e.view())
	require.NoError(t, err)
	require.Equal(t, []byte("ecg"), r.Data)
}

func TestNew(t *testing.T) {
	k := newKey(t)
	_, err := access.New(access.Config{Key: k, AppKey: k.Public(), ContractKey: k.Public(), Contract: &fakeContract{}})
	require.Error(t, err, "no allowed source")
	_, err = access.New(access.Config{AllowedSources: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	require.Error(t, err, "no keys")
}

// TestRotateKey replaces the access layer's key: the contract must log it
// before the layer uses the new key, and a refused rotation changes
// nothing.
func TestRotateKey(t *testing.T) {
	e := newEnv(t)
	old := e.acc.Public()
	view := protocol.Request{Type: protocol.TypeView, Record: e.record}

	e.fc.refuseRotation = protocol.ErrBusy
	next := newKey(t)
	_, err := e.l.RotateKey(context.Background(), next)
	require.ErrorIs(t, err, protocol.ErrBusy)
	require.Equal(t, old, e.l.Public(), "a refused rotation keeps the old key")
	_, err = e.forward(e.sign(e.patient, view))
	require.NoError(t, err)

	e.fc.refuseRotation = nil
	rot, err := e.l.RotateKey(context.Background(), next)
	require.NoError(t, err)
	require.Equal(t, next.Public(), e.l.Public())
	got, err := protocol.FollowRotations(old, [][]byte{rot})
	require.NoError(t, err)
	require.Equal(t, next.Public(), got)
	e.fc.acc = next.Public()
	resp, err := e.forward(e.sign(e.patient, view))
	require.NoError(t, err, "the contract accepts signature 3 under the new key")
	require.Equal(t, []byte("ecg"), resp.Data)

	// The chain must end at the layer's key.
	_, err = access.New(access.Config{Key: newKey(t), Rotations: [][]byte{rot}, AppKey: e.app.Public(), ContractKey: e.con.Public(),
		Contract: e.fc, AllowedSources: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	require.Error(t, err)
	_, err = access.New(access.Config{Key: next, Rotations: [][]byte{rot}, AppKey: e.app.Public(), ContractKey: e.con.Public(),
		Contract: e.fc, AllowedSources: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	require.NoError(t, err)
}
