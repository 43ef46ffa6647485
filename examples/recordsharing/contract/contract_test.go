package contract_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mpsi-dev/mpsi/examples/recordsharing/contract"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/ledger"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/protocol"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/sharingpb"
)

type env struct {
	t            *testing.T
	c            *contract.Contract
	acc, con, ra *protocol.KeyPair
	l            *ledger.Ledger
	path         string
}

func newKey(t testing.TB) *protocol.KeyPair {
	t.Helper()
	k, err := protocol.GenerateKeyPair()
	require.NoError(t, err)
	return k
}

func newEnv(t *testing.T) *env {
	e := &env{t: t, acc: newKey(t), con: newKey(t), ra: newKey(t), path: filepath.Join(t.TempDir(), "ledger.db")}
	var err error
	e.l, err = ledger.Create(context.Background(), e.path, e.con.PrivateKey())
	require.NoError(t, err)
	t.Cleanup(func() { e.l.Close() })
	e.c, err = e.newContract(e.l)
	require.NoError(t, err)
	return e
}

func (e *env) newContract(l *ledger.Ledger) (*contract.Contract, error) {
	return contract.New(context.Background(), contract.Config{Key: e.con, AccessKey: e.acc.Public(), Authority: e.ra.Public(), Ledger: l})
}

// sign completes req for user and adds signatures 1 and 3.
func (e *env) sign(user *protocol.KeyPair, req protocol.Request) protocol.SignedRequest {
	e.t.Helper()
	req.Requester = user.Public()
	if req.Time == 0 {
		req.Time = time.Now().UnixNano()
	}
	if req.Type == protocol.TypeRegister && req.Approval == (protocol.Signature{}) {
		req.Approval = protocol.SignApproval(e.ra, req.Role, req.Requester, req.Patient)
	}
	_, err := rand.Read(req.Nonce[:])
	require.NoError(e.t, err)
	enc, err := req.MarshalBinary()
	require.NoError(e.t, err)
	sig1 := protocol.SignRequester(user, enc)
	return protocol.SignedRequest{Request: enc, Requester: sig1, Hop: protocol.SignAccess(e.acc, e.con.Public(), enc, sig1)}
}

// handle runs in and checks signature 4 and the digest of the answer.
func (e *env) handle(in protocol.SignedRequest) (*protocol.Response, error) {
	e.t.Helper()
	out, err := e.c.Handle(context.Background(), in)
	if err != nil {
		return nil, err
	}
	require.NoError(e.t, protocol.VerifyContract(e.con.Public(), e.acc.Public(), out.Response, out.Hop))
	var resp protocol.Response
	require.NoError(e.t, resp.UnmarshalBinary(out.Response))
	require.Equal(e.t, protocol.DigestRequest(in.Request), resp.Request)
	return &resp, nil
}

func (e *env) do(user *protocol.KeyPair, req protocol.Request) (*protocol.Response, error) {
	e.t.Helper()
	return e.handle(e.sign(user, req))
}

func (e *env) must(user *protocol.KeyPair, req protocol.Request) *protocol.Response {
	e.t.Helper()
	resp, err := e.do(user, req)
	require.NoError(e.t, err)
	return resp
}

type people struct {
	patient, patient2, doctor, other *protocol.KeyPair
	pid, pid2                        protocol.PatientID
	record                           protocol.RecordID
	data                             []byte
}

func (e *env) setup() people {
	p := people{patient: newKey(e.t), patient2: newKey(e.t), doctor: newKey(e.t), other: newKey(e.t),
		pid: protocol.PatientID{1}, pid2: protocol.PatientID{2},
		record: protocol.RecordID{42}, data: []byte("ECG record with clinical comments")}
	e.must(p.patient, protocol.Request{Type: protocol.TypeRegister, Role: protocol.RolePatient, Patient: p.pid})
	e.must(p.patient2, protocol.Request{Type: protocol.TypeRegister, Role: protocol.RolePatient, Patient: p.pid2})
	e.must(p.doctor, protocol.Request{Type: protocol.TypeRegister, Role: protocol.RoleDoctor})
	e.must(p.other, protocol.Request{Type: protocol.TypeRegister, Role: protocol.RoleDoctor})
	e.must(p.patient, protocol.Request{Type: protocol.TypeUpload, Record: p.record, Patient: p.pid, Data: p.data})
	return p
}

func TestFlow(t *testing.T) {
	e := newEnv(t)
	p := e.setup()
	view := protocol.Request{Type: protocol.TypeView, Record: p.record}

	resp := e.must(p.patient, view)
	require.Equal(t, p.data, resp.Data, "owner views")
	require.Equal(t, p.patient.Public(), resp.Owner)

	_, err := e.do(p.doctor, view)
	require.ErrorIs(t, err, protocol.ErrForbidden, "doctor views before authorisation")

	e.must(p.patient, protocol.Request{Type: protocol.TypeAuthorize, Record: p.record, Doctor: p.doctor.Public()})
	resp = e.must(p.doctor, view)
	require.Equal(t, p.data, resp.Data, "authorised doctor views")

	_, err = e.do(p.other, view)
	require.ErrorIs(t, err, protocol.ErrForbidden, "unauthorised doctor views")

	e.must(p.patient, protocol.Request{Type: protocol.TypeRevoke, Record: p.record, Doctor: p.doctor.Public()})
	_, err = e.do(p.doctor, view)
	require.ErrorIs(t, err, protocol.ErrForbidden, "revoked doctor views")

	n, head := e.l.Head()
	require.Equal(t, resp.Seq+1, n, "only the revoke is appended after the doctor's view; refusals are not")
	require.NotEqual(t, ledger.Hash{}, head)
	conPub := e.con.Public()
	_, err = ledger.Verify(context.Background(), e.path, ledger.VerifyOptions{
		Key: conPub[:], CheckEntry: contract.CheckEntry(e.acc.Public(), e.con.Public()),
	})
	require.NoError(t, err)
}

// TestSignatureChecks covers forged, missing, mismatched and replayed
// signatures 1 and 3 at the contract, and stale or malformed requests. None
// may change the ledger.
func TestSignatureChecks(t *testing.T) {
	e := newEnv(t)
	p := e.setup()
	other := newKey(t)
	view := protocol.Request{Type: protocol.TypeView, Record: p.record}
	good := func() protocol.SignedRequest { return e.sign(p.patient, view) }
	accepted := good()
	_, err := e.handle(accepted)
	require.NoError(t, err)

	tests := []struct {
		name    string
		in      func() protocol.SignedRequest
		wantErr error
	}{
		{"sig3 forged by another key", func() protocol.SignedRequest {
			in := good()
			in.Hop = protocol.SignAccess(other, e.con.Public(), in.Request, in.Requester)
			return in
		}, protocol.ErrBadSignature},
		{"sig3 missing", func() protocol.SignedRequest {
			in := good()
			in.Hop = protocol.Signature{}
			return in
		}, protocol.ErrBadSignature},
		{"sig3 addressed to another contract", func() protocol.SignedRequest {
			in := good()
			in.Hop = protocol.SignAccess(e.acc, other.Public(), in.Request, in.Requester)
			return in
		}, protocol.ErrBadSignature},
		{"sig3 from another request", func() protocol.SignedRequest {
			in, in2 := good(), good()
			in.Hop = in2.Hop
			return in
		}, protocol.ErrBadSignature},
		{"sig3 replaced by an app-style signature", func() protocol.SignedRequest {
			in := good()
			in.Hop = protocol.SignApp(e.acc, protocol.SessionID{}, in.Request, in.Requester)
			return in
		}, protocol.ErrBadSignature},
		{"sig1 forged by another key", func() protocol.SignedRequest {
			in := good()
			in.Requester = protocol.SignRequester(other, in.Request)
			in.Hop = protocol.SignAccess(e.acc, e.con.Public(), in.Request, in.Requester)
			return in
		}, protocol.ErrBadSignature},
		{"sig1 missing", func() protocol.SignedRequest {
			in := good()
			in.Requester = protocol.Signature{}
			in.Hop = protocol.SignAccess(e.acc, e.con.Public(), in.Request, in.Requester)
			return in
		}, protocol.ErrBadSignature},
		{"sig1 from another request", func() protocol.SignedRequest {
			in, in2 := good(), good()
			in.Requester = in2.Requester
			in.Hop = protocol.SignAccess(e.acc, e.con.Public(), in.Request, in.Requester)
			return in
		}, protocol.ErrBadSignature},
		{"sig1 swapped with sig1 of the request it was countersigned with", func() protocol.SignedRequest {
			in, in2 := good(), good()
			in.Requester = in2.Requester // sig3 still covers the original sig1
			return in
		}, protocol.ErrBadSignature},
		{"replayed", func() protocol.SignedRequest { return accepted }, protocol.ErrReplay},
		{"stale", func() protocol.SignedRequest {
			r := view
			r.Time = time.Now().Add(-10 * time.Minute).UnixNano()
			return e.sign(p.patient, r)
		}, protocol.ErrStale},
		{"from the future", func() protocol.SignedRequest {
			r := view
			r.Time = time.Now().Add(10 * time.Minute).UnixNano()
			return e.sign(p.patient, r)
		}, protocol.ErrStale},
		{"malformed request, validly countersigned", func() protocol.SignedRequest {
			req := []byte("not a request")
			sig1 := protocol.SignRequester(p.patient, req)
			return protocol.SignedRequest{Request: req, Requester: sig1, Hop: protocol.SignAccess(e.acc, e.con.Public(), req, sig1)}
		}, protocol.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := e.l.Head()
			_, err := e.c.Handle(context.Background(), tc.in())
			require.ErrorIs(t, err, tc.wantErr)
			after, _ := e.l.Head()
			require.Equal(t, before, after, "a refused request must not reach the ledger")
		})
	}
}

func TestPermissions(t *testing.T) {
	e := newEnv(t)
	p := e.setup()
	stranger := newKey(t)
	e.must(p.patient, protocol.Request{Type: protocol.TypeAuthorize, Record: p.record, Doctor: p.doctor.Public()})
	tests := []struct {
		name    string
		user    *protocol.KeyPair
		req     protocol.Request
		wantErr error
	}{
		{"register twice", p.doctor, protocol.Request{Type: protocol.TypeRegister, Role: protocol.RolePatient, Patient: protocol.PatientID{9}}, protocol.ErrExists},
		{"doctor approved by another key", stranger, protocol.Request{Type: protocol.TypeRegister, Role: protocol.RoleDoctor,
			Approval: protocol.SignApproval(stranger, protocol.RoleDoctor, stranger.Public(), protocol.PatientID{})}, protocol.ErrNotApproved},
		{"approval for a patient used to register a doctor", stranger, protocol.Request{Type: protocol.TypeRegister, Role: protocol.RoleDoctor,
			Approval: protocol.SignApproval(e.ra, protocol.RolePatient, stranger.Public(), protocol.PatientID{})}, protocol.ErrNotApproved},
		{"approval for another key", stranger, protocol.Request{Type: protocol.TypeRegister, Role: protocol.RoleDoctor,
			Approval: protocol.SignApproval(e.ra, protocol.RoleDoctor, p.doctor.Public(), protocol.PatientID{})}, protocol.ErrNotApproved},
		{"approval for another patient id", stranger, protocol.Request{Type: protocol.TypeRegister, Role: protocol.RolePatient, Patient: protocol.PatientID{8},
			Approval: protocol.SignApproval(e.ra, protocol.RolePatient, stranger.Public(), protocol.PatientID{9})}, protocol.ErrNotApproved},
		{"second key for a patient id", stranger, protocol.Request{Type: protocol.TypeRegister, Role: protocol.RolePatient, Patient: p.pid}, protocol.ErrExists},
		{"unregistered uploads", stranger, protocol.Request{Type: protocol.TypeUpload, Record: protocol.RecordID{7}, Patient: p.pid, Data: []byte{1}}, protocol.ErrNotRegistered},
		{"doctor uploads", p.doctor, protocol.Request{Type: protocol.TypeUpload, Record: protocol.RecordID{7}, Patient: p.pid, Data: []byte{1}}, protocol.ErrForbidden},
		{"upload naming another patient", p.patient2, protocol.Request{Type: protocol.TypeUpload, Record: protocol.RecordID{7}, Patient: p.pid, Data: []byte{1}}, protocol.ErrForbidden},
		{"upload naming an unregistered patient", p.patient, protocol.Request{Type: protocol.TypeUpload, Record: protocol.RecordID{7}, Patient: protocol.PatientID{77}, Data: []byte{1}}, protocol.ErrNotRegistered},
		{"record id taken", p.patient, protocol.Request{Type: protocol.TypeUpload, Record: p.record, Patient: p.pid, Data: []byte{1}}, protocol.ErrExists},
		{"rotate to a registered key", p.patient, protocol.Request{Type: protocol.TypeRotate, NewKey: p.doctor.Public(),
			Approval: protocol.SignPossession(p.doctor, p.patient.Public())}, protocol.ErrExists},
		{"rotate without the new key's proof", p.patient, protocol.Request{Type: protocol.TypeRotate, NewKey: stranger.Public(),
			Approval: protocol.SignPossession(p.patient2, p.patient.Public())}, protocol.ErrBadSignature},
		{"rotate with a proof for another old key", p.patient, protocol.Request{Type: protocol.TypeRotate, NewKey: stranger.Public(),
			Approval: protocol.SignPossession(stranger, p.patient2.Public())}, protocol.ErrBadSignature},
		{"unregistered key rotates", stranger, protocol.Request{Type: protocol.TypeRotate, NewKey: p.patient2.Public(),
			Approval: protocol.SignPossession(p.patient2, stranger.Public())}, protocol.ErrNotRegistered},
		{"authorise unregistered key", p.patient, protocol.Request{Type: protocol.TypeAuthorize, Record: p.record, Doctor: stranger.Public()}, protocol.ErrNotRegistered},
		{"authorise a patient", p.patient, protocol.Request{Type: protocol.TypeAuthorize, Record: p.record, Doctor: p.patient.Public()}, protocol.ErrForbidden},
		{"non-owner authorises", p.doctor, protocol.Request{Type: protocol.TypeAuthorize, Record: p.record, Doctor: p.other.Public()}, protocol.ErrForbidden},
		{"non-owner revokes", p.doctor, protocol.Request{Type: protocol.TypeRevoke, Record: p.record, Doctor: p.doctor.Public()}, protocol.ErrForbidden},
		{"revoke without authorisation", p.patient, protocol.Request{Type: protocol.TypeRevoke, Record: p.record, Doctor: p.other.Public()}, protocol.ErrNotFound},
		{"view unknown record", p.patient, protocol.Request{Type: protocol.TypeView, Record: protocol.RecordID{99}}, protocol.ErrNotFound},
		{"unauthorised doctor views", p.other, protocol.Request{Type: protocol.TypeView, Record: p.record}, protocol.ErrForbidden},
		{"unregistered key views", stranger, protocol.Request{Type: protocol.TypeView, Record: p.record}, protocol.ErrNotRegistered},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.do(tc.user, tc.req)
			require.ErrorIs(t, err, tc.wantErr)
		})
	}
	// The authorised doctor still can.
	resp := e.must(p.doctor, protocol.Request{Type: protocol.TypeView, Record: p.record})
	require.Equal(t, p.data, resp.Data)
}

// TestRestart rebuilds the contract from the ledger file.
func TestRestart(t *testing.T) {
	e := newEnv(t)
	p := e.setup()
	e.must(p.patient, protocol.Request{Type: protocol.TypeAuthorize, Record: p.record, Doctor: p.doctor.Public()})
	e.must(p.patient, protocol.Request{Type: protocol.TypeAuthorize, Record: p.record, Doctor: p.other.Public()})
	e.must(p.patient, protocol.Request{Type: protocol.TypeRevoke, Record: p.record, Doctor: p.other.Public()})
	require.NoError(t, e.l.Close())

	l, err := ledger.Open(context.Background(), e.path, e.con.PrivateKey())
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	e.l = l
	e.c, err = e.newContract(l)
	require.NoError(t, err)
	resp := e.must(p.doctor, protocol.Request{Type: protocol.TypeView, Record: p.record})
	require.True(t, bytes.Equal(p.data, resp.Data))
	_, err = e.do(p.other, protocol.Request{Type: protocol.TypeView, Record: p.record})
	require.ErrorIs(t, err, protocol.ErrForbidden)
}

func TestServerRefusesMalformed(t *testing.T) {
	e := newEnv(t)
	p := e.setup()
	in := e.sign(p.patient, protocol.Request{Type: protocol.TypeView, Record: p.record})
	srv := contract.NewServer(e.c, "", nil)
	tests := []struct {
		name string
		req  *sharingpb.ContractRequest
		code codes.Code
	}{
		{"empty", &sharingpb.ContractRequest{}, codes.InvalidArgument},
		{"short sig1", &sharingpb.ContractRequest{Request: in.Request, RequesterSignature: in.Requester[:10], AccessSignature: in.Hop[:]}, codes.InvalidArgument},
		{"long sig3", &sharingpb.ContractRequest{Request: in.Request, RequesterSignature: in.Requester[:], AccessSignature: append(in.Hop[:], 0)}, codes.InvalidArgument},
		{"garbage request", &sharingpb.ContractRequest{Request: []byte{1, 2, 3}, RequesterSignature: in.Requester[:], AccessSignature: in.Hop[:]}, codes.Unauthenticated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := srv.Submit(context.Background(), tc.req)
			require.Equal(t, tc.code, status.Code(err), "%v", err)
		})
	}
	// A server bound to a peer name refuses callers without it.
	_, err := contract.NewServer(e.c, "access", nil).Submit(context.Background(),
		&sharingpb.ContractRequest{Request: in.Request, RequesterSignature: in.Requester[:], AccessSignature: in.Hop[:]})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	// And the well-formed request is served.
	out, err := srv.Submit(context.Background(), &sharingpb.ContractRequest{Request: in.Request, RequesterSignature: in.Requester[:], AccessSignature: in.Hop[:]})
	require.NoError(t, err)
	require.NotEmpty(t, out.GetResponse())
}

// FuzzCheckEntry checks that decoding ledger payloads never panics and never
// accepts a payload without a valid signature 1.
func FuzzCheckEntry(f *testing.F) {
	user, acc, con := newKey(f), newKey(f), newKey(f)
	req := protocol.Request{Type: protocol.TypeRegister, Requester: user.Public(), Role: protocol.RoleDoctor, Time: 1, Nonce: protocol.Nonce{1},
		Approval: protocol.SignApproval(con, protocol.RoleDoctor, user.Public(), protocol.PatientID{})}
	enc, err := req.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	sig1 := protocol.SignRequester(user, enc)
	good, err := (&protocol.SignedRequest{Request: enc, Requester: sig1, Hop: protocol.SignAccess(acc, con.Public(), enc, sig1)}).MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	check := contract.CheckEntry(acc.Public(), con.Public())
	if err := check(ledger.Entry{Seq: 1, Kind: uint8(protocol.TypeRegister), Payload: good}); err != nil {
		f.Fatalf("valid entry refused: %v", err)
	}
	f.Add(uint8(protocol.TypeRegister), good)
	f.Add(uint8(protocol.TypeView), good)
	f.Add(uint8(0), []byte{})
	f.Fuzz(func(t *testing.T, kind uint8, payload []byte) {
		err := check(ledger.Entry{Seq: 1, Kind: kind, Payload: payload})
		if err == nil && (kind != uint8(protocol.TypeRegister) || !bytes.Equal(payload, good)) {
			t.Fatalf("accepted a forged entry: kind %d, %x", kind, payload)
		}
	})
}
