package contract_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/examples/recordsharing/contract"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/ledger"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/protocol"
)

func (e *env) rotateUser(user *protocol.KeyPair) *protocol.KeyPair {
	e.t.Helper()
	next := newKey(e.t)
	e.must(user, protocol.Request{Type: protocol.TypeRotate, NewKey: next.Public(), Approval: protocol.SignPossession(next, user.Public())})
	return next
}

func (e *env) verifyLedger() {
	e.t.Helper()
	conPub := e.con.Public()
	_, err := ledger.Verify(context.Background(), e.path, ledger.VerifyOptions{
		Key: conPub[:], CheckEntry: contract.CheckEntry(e.acc.Public(), e.con.Public()),
	})
	require.NoError(e.t, err)
}

// TestUserKeyRotation replaces a patient's and a doctor's keys: the new keys
// take over the record and the authorisation, the old keys sign nothing
// more, and every signature the old keys made still verifies in the ledger,
// also after a restart.
func TestUserKeyRotation(t *testing.T) {
	e := newEnv(t)
	p := e.setup()
	view := protocol.Request{Type: protocol.TypeView, Record: p.record}
	e.must(p.patient, protocol.Request{Type: protocol.TypeAuthorize, Record: p.record, Doctor: p.doctor.Public()})

	patient := e.rotateUser(p.patient)
	doctor := e.rotateUser(p.doctor)

	resp := e.must(patient, view)
	require.Equal(t, patient.Public(), resp.Owner, "the new key owns the record")
	require.Equal(t, p.data, e.must(doctor, view).Data, "the authorisation moved to the doctor's new key")
	for _, old := range []*protocol.KeyPair{p.patient, p.doctor} {
		_, err := e.do(old, view)
		require.ErrorIs(t, err, protocol.ErrRetired)
		_, err = e.do(old, protocol.Request{Type: protocol.TypeRotate, NewKey: newKey(t).Public(), Approval: protocol.Signature{1}})
		require.ErrorIs(t, err, protocol.ErrRetired, "a replaced key cannot rotate again")
	}
	_, err := e.do(patient, protocol.Request{Type: protocol.TypeAuthorize, Record: p.record, Doctor: p.doctor.Public()})
	require.ErrorIs(t, err, protocol.ErrRetired, "a replaced doctor key cannot be authorised")
	_, err = e.do(p.patient, protocol.Request{Type: protocol.TypeUpload, Record: protocol.RecordID{8}, Patient: p.pid, Data: []byte{1}})
	require.ErrorIs(t, err, protocol.ErrRetired)
	e.must(patient, protocol.Request{Type: protocol.TypeUpload, Record: protocol.RecordID{8}, Patient: p.pid, Data: []byte{1}})
	e.must(patient, protocol.Request{Type: protocol.TypeRevoke, Record: p.record, Doctor: doctor.Public()})
	e.verifyLedger()

	// After a restart the same holds.
	require.NoError(t, e.l.Close())
	l, err := ledger.Open(context.Background(), e.path, e.con.PrivateKey())
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	e.l = l
	e.c, err = e.newContract(l)
	require.NoError(t, err)
	_, err = e.do(p.patient, view)
	require.ErrorIs(t, err, protocol.ErrRetired)
	_, err = e.do(doctor, view)
	require.ErrorIs(t, err, protocol.ErrForbidden)
	require.Equal(t, patient.Public(), e.must(patient, view).Owner)
}

func (e *env) accessRotation(old, next *protocol.KeyPair, at time.Time) protocol.SignedAccessRotation {
	e.t.Helper()
	r := protocol.AccessRotation{Old: old.Public(), New: next.Public(), Time: at.UnixNano()}
	_, err := rand.Read(r.Nonce[:])
	require.NoError(e.t, err)
	enc, err := r.MarshalBinary()
	require.NoError(e.t, err)
	return protocol.SignAccessRotation(old, next, enc)
}

// TestAccessKeyRotation replaces the access layer's key at the contract.
func TestAccessKeyRotation(t *testing.T) {
	e := newEnv(t)
	p := e.setup()
	view := protocol.Request{Type: protocol.TypeView, Record: p.record}
	oldAcc, next, stranger := e.acc, newKey(t), newKey(t)
	ctx := context.Background()

	forged := e.accessRotation(stranger, next, time.Now())
	bad := []struct {
		name string
		in   protocol.SignedAccessRotation
		want error
	}{
		{"not from the current key", forged, protocol.ErrBadSignature},
		{"new key did not sign", func() protocol.SignedAccessRotation {
			m := e.accessRotation(oldAcc, next, time.Now())
			m.ByNew = protocol.Signature{}
			return m
		}(), protocol.ErrBadSignature},
		{"old key did not sign", func() protocol.SignedAccessRotation {
			m := e.accessRotation(oldAcc, next, time.Now())
			m.ByOld = m.ByNew
			return m
		}(), protocol.ErrBadSignature},
		{"stale", e.accessRotation(oldAcc, next, time.Now().Add(-time.Hour)), protocol.ErrStale},
		{"malformed", protocol.SignedAccessRotation{Rotation: []byte{1, 2}}, protocol.ErrMalformed},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := e.l.Head()
			_, err := e.c.RotateAccess(ctx, tc.in)
			require.ErrorIs(t, err, tc.want)
			after, _ := e.l.Head()
			require.Equal(t, before, after)
			require.Equal(t, oldAcc.Public(), e.c.AccessKey())
		})
	}

	good := e.accessRotation(oldAcc, next, time.Now())
	seq, err := e.c.RotateAccess(ctx, good)
	require.NoError(t, err)
	n, _ := e.l.Head()
	require.Equal(t, n, seq)
	require.Equal(t, next.Public(), e.c.AccessKey())
	_, err = e.c.RotateAccess(ctx, good)
	require.ErrorIs(t, err, protocol.ErrBadSignature, "replayed: the old key is no longer current")

	// Signature 3 under the old key is refused; under the new key accepted.
	_, err = e.do(p.patient, view)
	require.ErrorIs(t, err, protocol.ErrBadSignature)
	e.acc = next
	out, err := e.c.Handle(ctx, e.sign(p.patient, view))
	require.NoError(t, err)
	require.NoError(t, protocol.VerifyContract(e.con.Public(), next.Public(), out.Response, out.Hop), "signature 4 names the new key")
	require.Error(t, protocol.VerifyContract(e.con.Public(), oldAcc.Public(), out.Response, out.Hop))

	// The ledger verifies from the key at deployment, through the rotation.
	conPub := e.con.Public()
	_, err = ledger.Verify(ctx, e.path, ledger.VerifyOptions{Key: conPub[:], CheckEntry: contract.CheckEntry(oldAcc.Public(), conPub)})
	require.NoError(t, err)
	_, err = ledger.Verify(ctx, e.path, ledger.VerifyOptions{Key: conPub[:], CheckEntry: contract.CheckEntry(next.Public(), conPub)})
	require.ErrorIs(t, err, ledger.ErrBadEntry, "starting from the wrong key fails")

	// A restart keeps the new key.
	require.NoError(t, e.l.Close())
	l, err := ledger.Open(ctx, e.path, e.con.PrivateKey())
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	e.l = l
	e.acc = oldAcc
	e.c, err = e.newContract(l) // configured with the key at deployment
	require.NoError(t, err)
	require.Equal(t, next.Public(), e.c.AccessKey())
}
