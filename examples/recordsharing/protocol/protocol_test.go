package protocol_test

import (
	"bytes"
	"encoding"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/examples/recordsharing/protocol"
)

func key(t testing.TB) *protocol.KeyPair {
	t.Helper()
	k, err := protocol.GenerateKeyPair()
	require.NoError(t, err)
	return k
}

func sampleRequests(t testing.TB) []protocol.Request {
	uk, dk, ra := key(t), key(t), key(t)
	u, d := uk.Public(), dk.Public()
	rec := protocol.RecordID{1, 2, 3}
	pid := protocol.PatientID{4, 5}
	n := protocol.Nonce{9}
	now := time.Now().UnixNano()
	return []protocol.Request{
		{Type: protocol.TypeRegister, Requester: u, Role: protocol.RolePatient, Patient: pid, Approval: protocol.SignApproval(ra, protocol.RolePatient, u, pid), Time: now, Nonce: n},
		{Type: protocol.TypeRegister, Requester: d, Role: protocol.RoleDoctor, Approval: protocol.SignApproval(ra, protocol.RoleDoctor, d, protocol.PatientID{}), Time: now, Nonce: n},
		{Type: protocol.TypeUpload, Requester: u, Record: rec, Patient: pid, Data: []byte("ecg"), Time: now, Nonce: n},
		{Type: protocol.TypeAuthorize, Requester: u, Record: rec, Doctor: d, Time: now, Nonce: n},
		{Type: protocol.TypeRevoke, Requester: u, Record: rec, Doctor: d, Time: now, Nonce: n},
		{Type: protocol.TypeView, Requester: d, Record: rec, Time: now, Nonce: n},
		{Type: protocol.TypeRotate, Requester: u, NewKey: d, Approval: protocol.SignPossession(dk, u), Time: now, Nonce: n},
	}
}

func TestRequestRoundTrip(t *testing.T) {
	for _, r := range sampleRequests(t) {
		t.Run(r.Type.String(), func(t *testing.T) {
			enc, err := r.MarshalBinary()
			require.NoError(t, err)
			var got protocol.Request
			require.NoError(t, got.UnmarshalBinary(enc))
			require.Equal(t, r, got)
			again, err := got.MarshalBinary()
			require.NoError(t, err)
			require.Equal(t, enc, again)
		})
	}
}

func TestRequestValidate(t *testing.T) {
	base := sampleRequests(t)
	up, auth, view, reg, doc, rot := base[2], base[3], base[5], base[0], base[1], base[6]
	mod := func(r protocol.Request, f func(*protocol.Request)) protocol.Request { f(&r); return r }
	tests := []struct {
		name string
		req  protocol.Request
	}{
		{"no requester", mod(view, func(r *protocol.Request) { r.Requester = protocol.Key{} })},
		{"no time", mod(view, func(r *protocol.Request) { r.Time = 0 })},
		{"zero nonce", mod(view, func(r *protocol.Request) { r.Nonce = protocol.Nonce{} })},
		{"unknown type", mod(view, func(r *protocol.Request) { r.Type = 9 })},
		{"register without role", mod(reg, func(r *protocol.Request) { r.Role = protocol.RoleNone })},
		{"register with bad role", mod(reg, func(r *protocol.Request) { r.Role = 7 })},
		{"register with data", mod(reg, func(r *protocol.Request) { r.Data = []byte{1} })},
		{"upload without data", mod(up, func(r *protocol.Request) { r.Data = nil })},
		{"upload without record", mod(up, func(r *protocol.Request) { r.Record = protocol.RecordID{} })},
		{"upload too large", mod(up, func(r *protocol.Request) { r.Data = make([]byte, protocol.MaxDataSize+1) })},
		{"upload with doctor", mod(up, func(r *protocol.Request) { r.Doctor = auth.Doctor })},
		{"authorize without doctor", mod(auth, func(r *protocol.Request) { r.Doctor = protocol.Key{} })},
		{"authorize with role", mod(auth, func(r *protocol.Request) { r.Role = protocol.RoleDoctor })},
		{"view with data", mod(view, func(r *protocol.Request) { r.Data = []byte{1} })},
		{"view with doctor", mod(view, func(r *protocol.Request) { r.Doctor = auth.Doctor })},
		{"register without approval", mod(reg, func(r *protocol.Request) { r.Approval = protocol.Signature{} })},
		{"patient without patient id", mod(reg, func(r *protocol.Request) { r.Patient = protocol.PatientID{} })},
		{"doctor with patient id", mod(doc, func(r *protocol.Request) { r.Patient = reg.Patient })},
		{"upload without patient id", mod(up, func(r *protocol.Request) { r.Patient = protocol.PatientID{} })},
		{"upload with approval", mod(up, func(r *protocol.Request) { r.Approval = reg.Approval })},
		{"view with patient id", mod(view, func(r *protocol.Request) { r.Patient = reg.Patient })},
		{"view with new key", mod(view, func(r *protocol.Request) { r.NewKey = auth.Doctor })},
		{"rotate without new key", mod(rot, func(r *protocol.Request) { r.NewKey = protocol.Key{} })},
		{"rotate to the same key", mod(rot, func(r *protocol.Request) { r.NewKey = r.Requester })},
		{"rotate without proof", mod(rot, func(r *protocol.Request) { r.Approval = protocol.Signature{} })},
		{"rotate with record", mod(rot, func(r *protocol.Request) { r.Record = up.Record })},
		{"rotate with patient id", mod(rot, func(r *protocol.Request) { r.Patient = reg.Patient })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, tc.req.Validate(), protocol.ErrMalformed)
			_, err := tc.req.MarshalBinary()
			require.ErrorIs(t, err, protocol.ErrMalformed)
		})
	}
}

// TestBadLengths checks that every truncation and every extension of each
// encoding is refused.
func TestBadLengths(t *testing.T) {
	req := sampleRequests(t)[2]
	reqEnc, err := req.MarshalBinary()
	require.NoError(t, err)
	msgs := map[string]interface {
		encoding.BinaryMarshaler
	}{
		"Request":        &req,
		"Response":       &protocol.Response{Type: protocol.TypeView, Data: []byte("abc"), Seq: 3, Time: 5},
		"SignedRequest":  &protocol.SignedRequest{Request: reqEnc, Requester: protocol.Signature{1}, Hop: protocol.Signature{2}},
		"SessionGrant":   &protocol.SessionGrant{Ephemeral: []byte{1, 2}, Enc: []byte{3}, SealedKey: []byte{4, 5, 6}, Time: 7},
		"SignedResponse": nil,
	}
	respEnc, err := msgs["Response"].MarshalBinary()
	require.NoError(t, err)
	msgs["SignedResponse"] = &protocol.SignedResponse{Response: respEnc, Hop: protocol.Signature{3}}
	decoders := map[string]func() encoding.BinaryUnmarshaler{
		"Request":        func() encoding.BinaryUnmarshaler { return new(protocol.Request) },
		"Response":       func() encoding.BinaryUnmarshaler { return new(protocol.Response) },
		"SignedRequest":  func() encoding.BinaryUnmarshaler { return new(protocol.SignedRequest) },
		"SignedResponse": func() encoding.BinaryUnmarshaler { return new(protocol.SignedResponse) },
		"SessionGrant":   func() encoding.BinaryUnmarshaler { return new(protocol.SessionGrant) },
	}
	for name, m := range msgs {
		t.Run(name, func(t *testing.T) {
			enc, err := m.MarshalBinary()
			require.NoError(t, err)
			require.NoError(t, decoders[name]().UnmarshalBinary(enc))
			for i := range len(enc) {
				require.ErrorIs(t, decoders[name]().UnmarshalBinary(enc[:i]), protocol.ErrMalformed, "truncated to %d", i)
			}
			for _, extra := range [][]byte{{0}, {0xff, 0xff}} {
				require.ErrorIs(t, decoders[name]().UnmarshalBinary(append(bytes.Clone(enc), extra...)), protocol.ErrMalformed)
			}
			bad := bytes.Clone(enc)
			bad[0] = 2 // version
			require.ErrorIs(t, decoders[name]().UnmarshalBinary(bad), protocol.ErrMalformed)
		})
	}
}

// TestSignatures checks that each of the five signatures verifies only with
// its own key, label, context and message.
func TestSignatures(t *testing.T) {
	user, app, acc, con, other := key(t), key(t), key(t), key(t), key(t)
	req, err := sampleRequests(t)[5].MarshalBinary()
	require.NoError(t, err)
	req2, err := sampleRequests(t)[4].MarshalBinary()
	require.NoError(t, err)
	resp, err := (&protocol.Response{Type: protocol.TypeView, Time: 1}).MarshalBinary()
	require.NoError(t, err)
	resp2, err := (&protocol.Response{Type: protocol.TypeView, Time: 2}).MarshalBinary()
	require.NoError(t, err)
	sid, sid2 := protocol.SessionID{1}, protocol.SessionID{2}

	sig1 := protocol.SignRequester(user, req)
	sig2 := protocol.SignApp(app, sid, req, sig1)
	sig3 := protocol.SignAccess(acc, con.Public(), req, sig1)
	sig4 := protocol.SignContract(con, acc.Public(), resp)
	sig5 := protocol.SignAccessResponse(acc, sid, resp)
	tests := []struct {
		name string
		err  error
		ok   bool
	}{
		{"sig1 valid", protocol.VerifyRequester(user.Public(), req, sig1), true},
		{"sig1 wrong key", protocol.VerifyRequester(other.Public(), req, sig1), false},
		{"sig1 other request", protocol.VerifyRequester(user.Public(), req2, sig1), false},
		{"sig1 missing", protocol.VerifyRequester(user.Public(), req, protocol.Signature{}), false},
		{"sig1 zero key", protocol.VerifyRequester(protocol.Key{}, req, sig1), false},
		{"sig2 valid", protocol.VerifyApp(app.Public(), sid, req, sig1, sig2), true},
		{"sig2 other session", protocol.VerifyApp(app.Public(), sid2, req, sig1, sig2), false},
		{"sig2 other sig1", protocol.VerifyApp(app.Public(), sid, req, protocol.Signature{1}, sig2), false},
		{"sig2 wrong key", protocol.VerifyApp(other.Public(), sid, req, sig1, sig2), false},
		{"sig2 used as sig3", protocol.VerifyAccess(app.Public(), con.Public(), req, sig1, sig2), false},
		{"sig3 valid", protocol.VerifyAccess(acc.Public(), con.Public(), req, sig1, sig3), true},
		{"sig3 other contract", protocol.VerifyAccess(acc.Public(), other.Public(), req, sig1, sig3), false},
		{"sig3 other request", protocol.VerifyAccess(acc.Public(), con.Public(), req2, sig1, sig3), false},
		{"sig1 used as sig3", protocol.VerifyAccess(user.Public(), con.Public(), req, sig1, sig1), false},
		{"sig4 valid", protocol.VerifyContract(con.Public(), acc.Public(), resp, sig4), true},
		{"sig4 other audience", protocol.VerifyContract(con.Public(), other.Public(), resp, sig4), false},
		{"sig4 other response", protocol.VerifyContract(con.Public(), acc.Public(), resp2, sig4), false},
		{"sig5 valid", protocol.VerifyAccessResponse(acc.Public(), sid, resp, sig5), true},
		{"sig5 other session", protocol.VerifyAccessResponse(acc.Public(), sid2, resp, sig5), false},
		{"sig4 used as sig5", protocol.VerifyAccessResponse(con.Public(), sid, resp, sig4), false},
		{"sig5 wrong key", protocol.VerifyAccessResponse(other.Public(), sid, resp, sig5), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ok {
				require.NoError(t, tc.err)
			} else {
				require.ErrorIs(t, tc.err, protocol.ErrBadSignature)
			}
		})
	}
}

func TestParseSignature(t *testing.T) {
	for _, n := range []int{0, 1, 63, 65} {
		_, err := protocol.ParseSignature(make([]byte, n))
		require.ErrorIs(t, err, protocol.ErrMalformed)
	}
	s, err := protocol.ParseSignature(bytes.Repeat([]byte{7}, 64))
	require.NoError(t, err)
	require.Equal(t, byte(7), s[63])
}

func TestKeyPairDestroy(t *testing.T) {
	k := key(t)
	k.Destroy()
	require.Panics(t, func() { protocol.SignRequester(k, []byte("x")) })
	require.NotContains(t, k.String(), "priv")
}

func TestReplayGuard(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	w := time.Minute
	tests := []struct {
		name    string
		t       time.Time
		nonce   byte
		wantErr error
	}{
		{"fresh", now, 1, nil},
		{"replayed", now, 1, protocol.ErrReplay},
		{"replayed later in window", now.Add(30 * time.Second), 1, protocol.ErrReplay},
		{"too old", now.Add(-w - time.Second), 2, protocol.ErrStale},
		{"from the future", now.Add(w + time.Second), 3, protocol.ErrStale},
		{"edge of window", now.Add(-w + time.Second), 4, nil},
		{"second fresh", now, 5, nil},
		{"cache full", now, 6, protocol.ErrBusy},
	}
	g := protocol.NewReplayGuard(w, 3)
	for _, tc := range tests {
		err := g.Check(now, tc.t.UnixNano(), protocol.Nonce{tc.nonce})
		if tc.wantErr == nil {
			require.NoError(t, err, tc.name)
		} else {
			require.ErrorIs(t, err, tc.wantErr, tc.name)
		}
	}
	// Once the remembered nonces would be stale anyway they are forgotten,
	// and the old request itself is refused as stale, not accepted.
	later := now.Add(3 * w)
	require.NoError(t, g.Check(later, later.UnixNano(), protocol.Nonce{7}))
	require.ErrorIs(t, g.Check(later, now.UnixNano(), protocol.Nonce{1}), protocol.ErrStale)
}

func TestDigestBindsRequest(t *testing.T) {
	rs := sampleRequests(t)
	a, _ := rs[0].MarshalBinary()
	b, _ := rs[1].MarshalBinary()
	require.NotEqual(t, protocol.DigestRequest(a), protocol.DigestRequest(b))
	require.Equal(t, protocol.DigestRequest(a), protocol.DigestRequest(bytes.Clone(a)))
}

// TestRotationChain checks that FollowRotations accepts only a chain signed
// link by link from the pinned key.
func TestRotationChain(t *testing.T) {
	k0, k1, k2, other := key(t), key(t), key(t), key(t)
	link := func(old, next *protocol.KeyPair, mutate func(*protocol.SignedAccessRotation)) []byte {
		r := protocol.AccessRotation{Old: old.Public(), New: next.Public(), Time: 1, Nonce: protocol.Nonce{1}}
		enc, err := r.MarshalBinary()
		require.NoError(t, err)
		m := protocol.SignAccessRotation(old, next, enc)
		if mutate != nil {
			mutate(&m)
		}
		b, err := m.MarshalBinary()
		require.NoError(t, err)
		return b
	}
	got, err := protocol.FollowRotations(k0.Public(), [][]byte{link(k0, k1, nil), link(k1, k2, nil)})
	require.NoError(t, err)
	require.Equal(t, k2.Public(), got)
	got, err = protocol.FollowRotations(k0.Public(), nil)
	require.NoError(t, err)
	require.Equal(t, k0.Public(), got)

	tests := []struct {
		name  string
		chain [][]byte
		want  error
	}{
		{"starts at another key", [][]byte{link(other, k1, nil)}, protocol.ErrBadSignature},
		{"skips a key", [][]byte{link(k0, k1, nil), link(other, k2, nil)}, protocol.ErrBadSignature},
		{"old signature forged", [][]byte{link(k0, k1, func(m *protocol.SignedAccessRotation) { m.ByOld = m.ByNew })}, protocol.ErrBadSignature},
		{"new key did not sign", [][]byte{link(k0, k1, func(m *protocol.SignedAccessRotation) { m.ByNew = protocol.Signature{} })}, protocol.ErrBadSignature},
		{"garbage", [][]byte{{1, 2, 3}}, protocol.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := protocol.FollowRotations(k0.Public(), tc.chain)
			require.ErrorIs(t, err, tc.want)
		})
	}
}

// TestApproval checks that an approval binds role, key and patient id.
func TestApproval(t *testing.T) {
	ra, u := key(t), key(t)
	pid := protocol.PatientID{1}
	sig := protocol.SignApproval(ra, protocol.RolePatient, u.Public(), pid)
	require.NoError(t, protocol.VerifyApproval(ra.Public(), protocol.RolePatient, u.Public(), pid, sig))
	require.ErrorIs(t, protocol.VerifyApproval(u.Public(), protocol.RolePatient, u.Public(), pid, sig), protocol.ErrNotApproved)
	require.ErrorIs(t, protocol.VerifyApproval(ra.Public(), protocol.RoleDoctor, u.Public(), pid, sig), protocol.ErrNotApproved)
	require.ErrorIs(t, protocol.VerifyApproval(ra.Public(), protocol.RolePatient, ra.Public(), pid, sig), protocol.ErrNotApproved)
	require.ErrorIs(t, protocol.VerifyApproval(ra.Public(), protocol.RolePatient, u.Public(), protocol.PatientID{2}, sig), protocol.ErrNotApproved)
	// Patient ids are keyed: another hospital key gives another id.
	require.NotEqual(t, protocol.DerivePatientID([]byte("k1"), "patient001"), protocol.DerivePatientID([]byte("k2"), "patient001"))
	require.Equal(t, protocol.DerivePatientID([]byte("k1"), "patient001"), protocol.DerivePatientID([]byte("k1"), "patient001"))
}
