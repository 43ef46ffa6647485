package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/mpsi-dev/mpsi/examples/recordsharing/app"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/contract"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/internal/deploy"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/internal/rpcnet"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/ledger"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/protocol"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/sharingpb"
)

// demoResult is what the demo observed, for the tests.
type demoResult struct {
	Viewed   []namedFile      // what the authorised doctor saw
	Refused  map[string]error // refusals by step name
	Entries  uint64           // ledger entries verified at the end
	Contract protocol.Key
	Access   protocol.Key // the access key at deployment
	Rotated  protocol.Key // the access key after the rotation
	Pids     map[string]int
}

// expectRefusal fails unless err wraps want.
func expectRefusal(out io.Writer, res *demoResult, step string, err, want error) error {
	if err == nil {
		return fmt.Errorf("step %q: expected refusal (%v), but it was accepted", step, want)
	}
	if !errors.Is(err, want) {
		return fmt.Errorf("step %q: refused for the wrong reason: %w", step, err)
	}
	res.Refused[step] = err
	fmt.Fprintf(out, "  => refused as expected: %v\n", err)
	return nil
}

// demo runs the whole flow against a fresh system whose ledger is dbPath
// and whose keys and certificates are written to the new directory
// deployDir. The contract and the access layer run as their own processes
// (this executable with the `contract` and `access` commands); this process
// is the app, the registration desk and the users.
func demo(ctx context.Context, dbPath, deployDir string, files []namedFile, rawOut io.Writer) (_ *demoResult, err error) {
	out := &syncWriter{w: rawOut}
	res := &demoResult{Refused: map[string]error{}, Pids: map[string]int{}}
	log := newLogger(out)
	step := func(format string, args ...any) { fmt.Fprintf(out, "\n== "+format+"\n", args...) }
	if _, err := os.Stat(dbPath); err == nil {
		return nil, fmt.Errorf("%w: %s", ledger.ErrExists, dbPath)
	}

	step("1. Setup: keys and certificates; the contract and the access layer start as their own processes (gRPC over mTLS 1.3 on 127.0.0.1)")
	if err := deploy.Setup(deployDir); err != nil {
		return nil, err
	}
	keys := map[string]protocol.Key{}
	for _, n := range []string{deploy.FileApp, deploy.FileAccess, deploy.FileContract, deploy.FileAuthority} {
		if keys[n], err = deploy.LoadPublic(deployDir, n); err != nil {
			return nil, err
		}
	}
	res.Contract, res.Access = keys[deploy.FileContract], keys[deploy.FileAccess]
	fmt.Fprintf(out, "  deployment %s: app key (signature 2) %s, access layer key (signatures 3, 5) %s, contract key (signature 4) %s, registration authority %s\n",
		deployDir, keys[deploy.FileApp], keys[deploy.FileAccess], keys[deploy.FileContract], keys[deploy.FileAuthority])
	con, err := startChild(ctx, "contract", []string{"contract", "-dir", deployDir, "-db", dbPath}, out)
	if err != nil {
		return nil, err
	}
	defer func() {
		if serr := con.stop(); err == nil && serr != nil {
			err = serr
		}
	}()
	acc, err := startChild(ctx, "access", []string{"access", "-dir", deployDir, "-contract", con.addr}, out)
	if err != nil {
		return nil, err
	}
	defer func() {
		if serr := acc.stop(); err == nil && serr != nil {
			err = serr
		}
	}()
	res.Pids["contract"], res.Pids["access"], res.Pids["app"] = con.cmd.Process.Pid, acc.cmd.Process.Pid, os.Getpid()
	fmt.Fprintf(out, "  contract pid %d at %s; access layer pid %d at %s, accepting the app from 127.0.0.1 only; this process (pid %d) is the app\n",
		res.Pids["contract"], con.addr, res.Pids["access"], acc.addr, res.Pids["app"])

	appKey, err := deploy.LoadKey(deployDir, deploy.FileApp)
	if err != nil {
		return nil, err
	}
	defer appKey.Destroy()
	raKey, err := deploy.LoadKey(deployDir, deploy.FileAuthority)
	if err != nil {
		return nil, err
	}
	defer raKey.Destroy()
	ra := app.KeyApprover{Key: raKey}
	_, appTLS, err := deploy.TLSFromDir(deployDir, deploy.NameApp)
	if err != nil {
		return nil, err
	}
	newApp := func(source netip.Addr) (*app.App, func() error, error) {
		conn, err := rpcnet.Dial(acc.addr, appTLS, source)
		if err != nil {
			return nil, nil, err
		}
		a, err := app.New(app.Config{Key: appKey, AccessKey: res.Access, Client: sharingpb.NewAccessLayerClient(conn), Log: log})
		if err != nil {
			conn.Close()
			return nil, nil, err
		}
		return a, conn.Close, nil
	}
	a, closeApp, err := newApp(netip.AddrFrom4([4]byte{127, 0, 0, 1}))
	if err != nil {
		return nil, err
	}
	defer closeApp()

	step("2. The app agrees a session key with the access layer (temporary key pair, HPKE)")
	if err := a.OpenSession(ctx); err != nil {
		return nil, err
	}

	step("3. Registration: each user gets a key pair, approved by the registration authority; only the public key goes on the ledger")
	hospitalKey := make([]byte, 32)
	if _, err := rand.Read(hospitalKey); err != nil {
		return nil, err
	}
	alice := protocol.DerivePatientID(hospitalKey, "patient001")
	dave := protocol.DerivePatientID(hospitalKey, "patient002")
	fmt.Fprintf(out, "  the hospital keys its patient numbers: patient001 -> id %s, patient002 -> id %s (HMAC-SHA256; the numbers stay in the hospital)\n", alice, dave)
	patient, _, err := a.Register(ctx, protocol.RolePatient, alice, ra)
	if err != nil {
		return nil, err
	}
	defer func() { patient.Destroy() }()
	davesKey, _, err := a.Register(ctx, protocol.RolePatient, dave, ra)
	if err != nil {
		return nil, err
	}
	defer davesKey.Destroy()
	bob, _, err := a.Register(ctx, protocol.RoleDoctor, protocol.PatientID{}, ra)
	if err != nil {
		return nil, err
	}
	defer bob.Destroy()
	carol, _, err := a.Register(ctx, protocol.RoleDoctor, protocol.PatientID{}, ra)
	if err != nil {
		return nil, err
	}
	defer carol.Destroy()
	fmt.Fprintf(out, "  patient Alice %s, patient Dave %s, doctor Bob %s, doctor Carol %s (private keys stay with them)\n",
		patient.Public(), davesKey.Public(), bob.Public(), carol.Public())

	step("3a. Mallory registers as a doctor with an approval she signed herself")
	mallory, err := protocol.GenerateKeyPair()
	if err != nil {
		return nil, err
	}
	defer mallory.Destroy()
	_, _, err = a.Register(ctx, protocol.RoleDoctor, protocol.PatientID{}, app.KeyApprover{Key: mallory})
	if err := expectRefusal(out, res, "doctor without authority approval", err, protocol.ErrNotApproved); err != nil {
		return nil, err
	}

	data, err := packRecord(files)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = fmt.Sprintf("%s (%d bytes)", f.Name, len(f.Data))
	}
	step("4. Alice uploads her record, which names her patient id: %s, %d bytes packed", strings.Join(names, ", "), len(data))
	id, _, err := a.Upload(ctx, patient, alice, data)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "  record id %s, owner: the key registered for patient id %s\n", id, alice)

	step("4a. Dave, a registered patient, uploads a record that names Alice")
	_, _, err = a.Upload(ctx, davesKey, alice, data)
	if err := expectRefusal(out, res, "upload naming another patient", err, protocol.ErrForbidden); err != nil {
		return nil, err
	}

	step("4b. Alice uploads a record that names a patient id nobody registered")
	_, _, err = a.Upload(ctx, patient, protocol.DerivePatientID(hospitalKey, "patient999"), data)
	if err := expectRefusal(out, res, "upload naming an unregistered patient", err, protocol.ErrNotRegistered); err != nil {
		return nil, err
	}

	step("5. Bob asks to view the record before being authorised")
	_, _, err = a.View(ctx, bob, id)
	if err := expectRefusal(out, res, "view before authorisation", err, protocol.ErrForbidden); err != nil {
		return nil, err
	}

	step("6. Alice authorises Bob; Bob views the record")
	if _, err := a.Authorize(ctx, patient, id, bob.Public()); err != nil {
		return nil, err
	}
	got, _, err := a.View(ctx, bob, id)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(got, data) {
		return nil, errors.New("step 6: Bob saw other bytes than were uploaded")
	}
	if res.Viewed, err = unpackRecord(got); err != nil {
		return nil, err
	}
	for i, f := range res.Viewed {
		if i >= len(files) || f.Name != files[i].Name || !bytes.Equal(f.Data, files[i].Data) {
			return nil, fmt.Errorf("step 6: file %q differs from the uploaded file", f.Name)
		}
	}
	if len(res.Viewed) != len(files) {
		return nil, errors.New("step 6: Bob saw a different number of files")
	}
	fmt.Fprintf(out, "  => Bob sees %d files, byte-for-byte identical to the upload\n", len(res.Viewed))
	if h := headerComments(files); h != "" {
		fmt.Fprintf(out, "  clinical comments in the header Bob sees: %s\n", h)
	}

	step("7. Carol, a registered doctor never authorised, asks to view")
	_, _, err = a.View(ctx, carol, id)
	if err := expectRefusal(out, res, "unauthorised doctor views", err, protocol.ErrForbidden); err != nil {
		return nil, err
	}

	step("8. Bob (not the owner) tries to authorise Carol")
	_, err = a.Authorize(ctx, bob, id, carol.Public())
	if err := expectRefusal(out, res, "non-owner authorises", err, protocol.ErrForbidden); err != nil {
		return nil, err
	}

	step("9. Alice tries to authorise a key that is not a registered doctor")
	_, err = a.Authorize(ctx, patient, id, mallory.Public())
	if err := expectRefusal(out, res, "authorise unregistered key", err, protocol.ErrNotRegistered); err != nil {
		return nil, err
	}

	step("10. Alice revokes Bob's authorisation; Bob asks to view again")
	if _, err := a.Revoke(ctx, patient, id, bob.Public()); err != nil {
		return nil, err
	}
	_, _, err = a.View(ctx, bob, id)
	if err := expectRefusal(out, res, "revoked doctor views", err, protocol.ErrForbidden); err != nil {
		return nil, err
	}

	step("11. Replay: a signed view request is sent twice")
	req := protocol.Request{Type: protocol.TypeView, Requester: patient.Public(), Record: id, Time: timeNow()}
	if _, err := rand.Read(req.Nonce[:]); err != nil {
		return nil, err
	}
	enc, err := req.MarshalBinary()
	if err != nil {
		return nil, err
	}
	sig1 := protocol.SignRequester(patient, enc)
	if _, err := a.Send(ctx, enc, sig1); err != nil {
		return nil, err
	}
	_, err = a.Send(ctx, enc, sig1)
	if err := expectRefusal(out, res, "replayed request", err, protocol.ErrReplay); err != nil {
		return nil, err
	}

	step("12. A client calling from 127.0.0.2 (another loopback address) opens a session")
	other, closeOther, err := newApp(netip.AddrFrom4([4]byte{127, 0, 0, 2}))
	if err != nil {
		return nil, err
	}
	defer closeOther()
	err = other.OpenSession(ctx)
	if err := expectRefusal(out, res, "unexpected source address", err, protocol.ErrSourceAddress); err != nil {
		return nil, err
	}

	step("13. Alice replaces her key; the new key takes over her record")
	oldAlice := patient
	patient, _, err = a.RotateKey(ctx, oldAlice)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "  Alice's key %s replaced by %s (the old key signed, the new key proved possession)\n", oldAlice.Public(), patient.Public())
	_, _, err = a.View(ctx, oldAlice, id)
	oldAlice.Destroy()
	if err := expectRefusal(out, res, "replaced key views", err, protocol.ErrRetired); err != nil {
		return nil, err
	}
	if _, _, err := a.View(ctx, patient, id); err != nil {
		return nil, err
	}
	fmt.Fprintln(out, "  => Alice's new key views her record")

	step("14. The access layer replaces its key (SIGHUP to pid %d)", res.Pids["access"])
	ev, err := acc.signalAndWait(syscall.SIGHUP, rotatedPrefix)
	if err != nil {
		return nil, err
	}
	if res.Rotated, err = deploy.LoadPublicFromKey(deployDir, deploy.FileAccess); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "  %s\n", ev)
	_, _, err = a.View(ctx, patient, id)
	if err := expectRefusal(out, res, "session from before the access key rotation", err, protocol.ErrNoSession); err != nil {
		return nil, err
	}
	if err := a.OpenSession(ctx); err != nil {
		return nil, err
	}
	last, err := a.Authorize(ctx, patient, id, carol.Public())
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(out, "  => new session under the new access key (the app followed the signed rotation); Alice authorises Carol")

	step("15. Stop the processes and verify the ledger file: signatures of replaced keys still check")
	if err := acc.stop(); err != nil {
		return nil, fmt.Errorf("stopping the access layer: %w", err)
	}
	if err := con.stop(); err != nil {
		return nil, fmt.Errorf("stopping the contract: %w", err)
	}
	rep, err := ledger.Verify(ctx, dbPath, ledger.VerifyOptions{
		Key:        res.Contract[:],
		CheckEntry: contract.CheckEntry(res.Access, res.Contract),
	})
	if err != nil {
		return nil, err
	}
	if rep.Entries != last.Seq || rep.Head != ledger.Hash(last.Entry) {
		return nil, fmt.Errorf("ledger file holds %d entries, head %x; the last answer named entry %d, %x", rep.Entries, rep.Head[:6], last.Seq, last.Entry[:6])
	}
	res.Entries = rep.Entries
	fmt.Fprintf(out, "  ledger OK: %d entries, head %x; it matches the last signed answer the app received\n", rep.Entries, rep.Head[:])
	fmt.Fprintf(out, "  check it again with:\n    go run ./examples/recordsharing verify -db %s -key %x -access %x\n", dbPath, res.Contract[:], res.Access[:])
	return res, nil
}

// headerComments returns the comment lines of a .hea file in files, joined.
func headerComments(files []namedFile) string {
	var c []string
	for _, f := range files {
		if !strings.HasSuffix(f.Name, ".hea") {
			continue
		}
		for line := range strings.SplitSeq(string(f.Data), "\n") {
			if strings.HasPrefix(line, "#") {
				c = append(c, strings.TrimSpace(strings.TrimPrefix(line, "#")))
			}
		}
	}
	if len(c) > 4 {
		c = append(c[:4], "…")
	}
	return strings.Join(c, "; ")
}

// lineHandler is a slog.Handler printing "    message key=value ..." lines.
type lineHandler struct {
	out   io.Writer
	mu    *sync.Mutex // guards out; shared by handlers derived with WithAttrs
	attrs []slog.Attr
}

// Enabled reports whether l is Info or above.
func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

// Handle prints r on one line.
func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString("    ")
	b.WriteString(r.Message)
	write := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	b.WriteByte('\n')
	if h.mu != nil {
		h.mu.Lock()
		defer h.mu.Unlock()
	}
	_, err := io.WriteString(h.out, b.String())
	return err
}

// WithAttrs returns a handler that adds as to every line.
func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &lineHandler{out: h.out, mu: h.mu, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

// WithGroup ignores groups.
func (h *lineHandler) WithGroup(string) slog.Handler { return h }
