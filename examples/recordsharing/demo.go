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
	"strings"
	"sync"

	"github.com/mpsi-dev/mpsi/examples/recordsharing/contract"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/internal/deploy"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/ledger"
	"github.com/mpsi-dev/mpsi/examples/recordsharing/protocol"
)

// demoResult is what the demo observed, for the tests.
type demoResult struct {
	Viewed   []namedFile      // what the authorised doctor saw
	Refused  map[string]error // refusals by step name
	Entries  uint64           // ledger entries verified at the end
	Contract protocol.Key
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

// demo runs the whole flow against a fresh system whose ledger is dbPath.
func demo(ctx context.Context, dbPath string, files []namedFile, out io.Writer) (*demoResult, error) {
	res := &demoResult{Refused: map[string]error{}}
	log := newLogger(out)
	step := func(format string, args ...any) { fmt.Fprintf(out, "\n== "+format+"\n", args...) }

	step("1. Setup: contract, access layer and app as gRPC servers over mTLS 1.3 on 127.0.0.1")
	sys, err := deploy.Start(ctx, deploy.Config{LedgerPath: dbPath, Log: log})
	if err != nil {
		return nil, err
	}
	defer sys.Close()
	res.Contract = sys.ContractKey
	fmt.Fprintf(out, "  app key (signature 2) %s, access layer key (signatures 3, 5) %s, contract key (signature 4) %s\n",
		sys.AppKey.Public(), sys.AccessKey, sys.ContractKey)
	fmt.Fprintf(out, "  access layer at %s accepts calls from 127.0.0.1 only; ledger file %s\n", sys.AccessAddr, dbPath)

	a, closeApp, err := sys.NewApp(netip.AddrFrom4([4]byte{127, 0, 0, 1}), log)
	if err != nil {
		return nil, err
	}
	defer closeApp()

	step("2. The app agrees a session key with the access layer (temporary key pair, HPKE)")
	if err := a.OpenSession(ctx); err != nil {
		return nil, err
	}

	step("3. Registration: each user gets a key pair; only the public key goes on the ledger")
	patient, _, err := a.Register(ctx, protocol.RolePatient)
	if err != nil {
		return nil, err
	}
	defer patient.Destroy()
	bob, _, err := a.Register(ctx, protocol.RoleDoctor)
	if err != nil {
		return nil, err
	}
	defer bob.Destroy()
	carol, _, err := a.Register(ctx, protocol.RoleDoctor)
	if err != nil {
		return nil, err
	}
	defer carol.Destroy()
	fmt.Fprintf(out, "  patient %s, doctor Bob %s, doctor Carol %s (private keys stay with them)\n",
		patient.Public(), bob.Public(), carol.Public())

	data, err := packRecord(files)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = fmt.Sprintf("%s (%d bytes)", f.Name, len(f.Data))
	}
	step("4. The patient uploads the record: %s, %d bytes packed", strings.Join(names, ", "), len(data))
	id, _, err := a.Upload(ctx, patient, data)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "  record id %s\n", id)

	step("5. Bob asks to view the record before being authorised")
	_, _, err = a.View(ctx, bob, id)
	if err := expectRefusal(out, res, "view before authorisation", err, protocol.ErrForbidden); err != nil {
		return nil, err
	}

	step("6. The patient authorises Bob; Bob views the record")
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

	step("9. The patient tries to authorise a key that is not a registered doctor")
	stranger, err := protocol.GenerateKeyPair()
	if err != nil {
		return nil, err
	}
	_, err = a.Authorize(ctx, patient, id, stranger.Public())
	if err := expectRefusal(out, res, "authorise unregistered key", err, protocol.ErrNotRegistered); err != nil {
		return nil, err
	}

	step("10. The patient revokes Bob's authorisation; Bob asks to view again")
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
	other, closeOther, err := sys.NewApp(netip.AddrFrom4([4]byte{127, 0, 0, 2}), log)
	if err != nil {
		return nil, err
	}
	defer closeOther()
	err = other.OpenSession(ctx)
	if err := expectRefusal(out, res, "unexpected source address", err, protocol.ErrSourceAddress); err != nil {
		return nil, err
	}

	step("13. Verify the ledger file")
	n, head := sys.Ledger.Head()
	rep, err := ledger.Verify(ctx, dbPath, ledger.VerifyOptions{
		Key:        sys.ContractKey[:],
		CheckEntry: contract.CheckEntry(sys.AccessKey, sys.ContractKey),
	})
	if err != nil {
		return nil, err
	}
	if rep.Entries != n || rep.Head != head {
		return nil, fmt.Errorf("ledger file holds %d entries, contract wrote %d", rep.Entries, n)
	}
	res.Entries = rep.Entries
	fmt.Fprintf(out, "  ledger OK: %d entries, head %x\n", rep.Entries, rep.Head[:])
	fmt.Fprintf(out, "  check it again with:\n    go run ./examples/recordsharing verify -db %s -key %x\n", dbPath, sys.ContractKey[:])
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
