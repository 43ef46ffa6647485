// Command identitykeys runs the identity-keyed records example end to end:
// two hospital relays, a cloud store, a patient terminal and two doctor
// terminals, each a separate party speaking gRPC over mutual TLS 1.3 on
// 127.0.0.1. It prints, step by step, what each participant sends and sees.
//
//	go run ./examples/identitykeys
//
// See README.md for the flow and what each party learns.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mpsi-dev/mpsi/examples/identitykeys/identity"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/link"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/platform"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/recordkey"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/records"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/relay"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/terminal"
)

// Hospital names.
const (
	hospitalA = "hospital-a"
	hospitalB = "hospital-b"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet("identitykeys", flag.ExitOnError)
	data := fs.String("data", "", "Synthea CSV folder (default: <moduleroot>/../shared/data/synthea/"+records.SyntheaSubdir+" if present, else generated patients; - for generated patients)")
	_ = fs.Parse(os.Args[1:])
	if _, err := run(ctx, os.Stdout, *data); err != nil {
		fmt.Fprintln(os.Stderr, "identitykeys: error:", err)
		os.Exit(1)
	}
}

// summary is what a run established, for main_test.
type summary struct {
	DataSource       string
	Patients         [2]int // rows per hospital
	Stored           [2]int // bundles stored per hospital
	PatientBundles   int    // bundles the patient opened
	PatientHosps     []string
	Retried          bool // the patient's terminal met a relay on the hospital side
	WrongIdentity    int  // bundles found with a mistyped identity
	DoctorBundles    int
	ColleagueBundles int
	SameRecords      bool // patient, doctor and colleague read identical bundles
	RateLimitedAfter int  // queries accepted before the guesser was refused
	GuessHits        int  // bundles the guesser found
	LinkEvents       int
	BothConnected    bool // never true: checked on every link event
}

func pickData(dir string) (source string, patients []records.Patient, err error) {
	if dir == "" {
		if p, ok := records.Locate("."); ok {
			dir = p
		}
	}
	if dir == "" || dir == "-" {
		return "generated patients", records.Generate(300), nil
	}
	ps, err := records.LoadSynthea(dir)
	if err != nil {
		return "", nil, err
	}
	return "Synthea " + dir, ps, nil
}

func mask(s string) string {
	r := []rune(strings.TrimSpace(s))
	if len(r) == 0 {
		return ""
	}
	return string(r[0]) + strings.Repeat("•", len(r)-1)
}

func run(ctx context.Context, w io.Writer, dataDir string) (*summary, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	sum := &summary{}
	say := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	step := func(n int, title string) { say("\n── step %d: %s", n, title) }

	// 1. Hospital databases.
	step(1, "hospital databases")
	source, patients, err := pickData(dataDir)
	if err != nil {
		return nil, err
	}
	if len(patients) < 3 {
		return nil, fmt.Errorf("need at least 3 patients, %s has %d", source, len(patients))
	}
	sum.DataSource = source
	dbs := records.Split([2]string{hospitalA, hospitalB}, patients)
	for i, db := range dbs {
		sum.Patients[i] = len(db.Patients)
		say("  %s database: %d patients (%s); every third patient is at both hospitals", db.Hospital, len(db.Patients), source)
	}

	// 2. Parties.
	step(2, "parties start (gRPC, mTLS 1.3 on 127.0.0.1, one certificate each)")
	var linkMu sync.Mutex // guards the link counters below
	p, err := platform.Start(platform.Options{
		DBs: dbs[:],
		OnLink: func(h string, from link.State, ev link.Event, to link.State) {
			linkMu.Lock()
			defer linkMu.Unlock()
			sum.LinkEvents++
			if to.HospitalOn && to.CloudOn {
				sum.BothConnected = true
			}
		},
	})
	if err != nil {
		return nil, err
	}
	defer p.Close()
	say("  cloud store        %s  (holds no key)", p.CloudAddr)
	for _, n := range p.Nodes {
		say("  relay %-12s %s  OPRF ristretto255-SHA512 (verifiable), public key %x…", n.Hospital, n.Addr, n.Evaluator.PublicKey()[:8])
	}
	say("  terminals pin each relay's OPRF public key; link of every relay starts on the cloud side")

	// 3. One switch cycle per relay.
	step(3, "link cycle: timer → hospital side (sync, encrypt) → timer → cloud side (upload)")
	for i, n := range p.Nodes {
		if err := n.Link.Toggle(ctx); err != nil {
			return nil, err
		}
		say("  %s link: %v", n.Hospital, n.Link.State())
		rep, err := n.Relay.Sync(ctx)
		if err != nil {
			return nil, err
		}
		say("  %s relay reads its database (cloud disconnected): %d rows → %d bundles (%d merged duplicates), %d conditions, sealed AES-256-GCM: %d bytes",
			n.Hospital, rep.Patients, rep.Bundles, rep.Merged, rep.Conditions, rep.Bytes)
		if err := n.Link.Toggle(ctx); err != nil {
			return nil, err
		}
		say("  %s link: %v", n.Hospital, n.Link.State())
		stored, err := n.Relay.Upload(ctx)
		if err != nil {
			return nil, err
		}
		sum.Stored[i] = stored
		say("  %s relay → cloud: Put %d entries (hospital, 32-byte index, ciphertext)", n.Hospital, stored)
	}
	items, _ := p.Cloud.Snapshot()
	if len(items) == 0 {
		return nil, errors.New("the cloud holds no bundle after the upload")
	}
	say("  cloud sees %d ciphertexts, e.g. index %x… → %d bytes; no names, no keys", len(items), items[0].Index[:8], len(items[0].Ciphertext))

	// 4. Terminals.
	trace := func(who string) func(string, ...any) {
		return func(format string, args ...any) { say("    ["+who+"] "+format, args...) }
	}
	var retried atomic.Bool
	refused := make(chan struct{}, 1) // signalled when a relay turns the patient away
	patientTrace := trace("patient")
	ts, err := p.NewTerminals(
		platform.TerminalSpec{Name: "patient-terminal", Trace: func(format string, args ...any) {
			if strings.Contains(format, "unavailable") {
				retried.Store(true)
				select {
				case refused <- struct{}{}:
				default:
				}
			}
			patientTrace(format, args...)
		}},
		platform.TerminalSpec{Name: "dr-lee", Trace: trace("dr-lee")},
		platform.TerminalSpec{Name: "dr-okafor", Trace: trace("dr-okafor")},
		platform.TerminalSpec{Name: "guesser", Trace: nil},
	)
	if err != nil {
		return nil, err
	}
	patientT, lee, okafor, guesser := ts[0], ts[1], ts[2], ts[3]

	// The patient is one with records at both hospitals (index 2 mod 3).
	who := patients[2]
	typed := identity.Fields{
		Given:      "  " + strings.ToUpper(who.Identity.Given) + " ",
		Family:     strings.ToLower(who.Identity.Family),
		BirthDate:  who.Identity.BirthDate,
		NationalID: strings.ReplaceAll(who.Identity.NationalID, "-", " "),
	}
	step(4, "patient types their identity; the terminal derives a key per hospital obliviously")
	say("  typed (shown masked): given %q, family %q, born %s, national id %q — other case, spacing and punctuation than the hospital's",
		mask(typed.Given), mask(typed.Family), mask(typed.BirthDate), mask(typed.NationalID))
	// hospital-b's timer fires while the patient asks: its relay answers again only once back on the cloud side.
	b := p.Nodes[1]
	if err := b.Link.Toggle(ctx); err != nil {
		return nil, err
	}
	say("  (%s's timer has just switched its link to the hospital side)", b.Hospital)
	toggled := make(chan error, 1)
	go func() {
		// The timer fires again once the patient has been turned away.
		select {
		case <-refused:
		case <-ctx.Done():
		}
		toggled <- b.Link.Toggle(ctx)
	}()
	keys, err := patientT.DeriveKeys(ctx, typed)
	if err != nil {
		return nil, err
	}
	if err := <-toggled; err != nil {
		return nil, err
	}
	sum.Retried = retried.Load()

	step(5, "patient terminal fetches and decrypts its records from every hospital")
	got, err := patientT.Fetch(ctx, keys)
	if err != nil {
		return nil, err
	}
	sum.PatientBundles = len(got)
	for _, f := range got {
		sum.PatientHosps = append(sum.PatientHosps, f.Bundle.Hospital)
		say("  patient sees %s: %d conditions, e.g. %s", f.Bundle.Hospital, len(f.Bundle.Conditions), firstConditions(f.Bundle, 2))
	}

	step(6, "a mistyped identity (birth date off by one day) derives a useless key")
	wrong := typed
	wrong.BirthDate = dayAfter(typed.BirthDate)
	wkeys, err := patientT.DeriveKeys(ctx, wrong)
	if err != nil {
		return nil, err
	}
	wgot, err := patientT.Fetch(ctx, wkeys)
	if err != nil {
		return nil, err
	}
	sum.WrongIdentity = len(wgot)
	say("  bundles found with the mistyped identity: %d", len(wgot))

	step(7, "patient hands the key to dr-lee (HPKE auth mode, sealed end to end through the cloud)")
	var granted []*recordkey.Key
	for _, f := range got {
		granted = append(granted, f.Key)
	}
	if err := patientT.Share(ctx, "dr-lee", granted); err != nil {
		return nil, err
	}
	_, mail := p.Cloud.Snapshot()
	say("  cloud mailbox holds %d sealed grant(s); it cannot open them", len(mail))
	inbox, err := lee.Inbox(ctx)
	if err != nil {
		return nil, err
	}
	if len(inbox) != 1 {
		return nil, fmt.Errorf("dr-lee received %d grants, want 1", len(inbox))
	}
	say("  dr-lee opened a grant from %s with %d key(s)", inbox[0].From, len(inbox[0].Keys))
	leeGot, err := lee.Fetch(ctx, inbox[0].Keys)
	if err != nil {
		return nil, err
	}
	sum.DoctorBundles = len(leeGot)
	for _, f := range leeGot {
		say("  dr-lee sees %s: %d conditions", f.Bundle.Hospital, len(f.Bundle.Conditions))
	}

	step(8, "dr-lee passes the key to dr-okafor for a consultation")
	if err := lee.Share(ctx, "dr-okafor", inbox[0].Keys); err != nil {
		return nil, err
	}
	inbox2, err := okafor.Inbox(ctx)
	if err != nil {
		return nil, err
	}
	if len(inbox2) != 1 {
		return nil, fmt.Errorf("dr-okafor received %d grants, want 1", len(inbox2))
	}
	okGot, err := okafor.Fetch(ctx, inbox2[0].Keys)
	if err != nil {
		return nil, err
	}
	sum.ColleagueBundles = len(okGot)
	say("  dr-okafor opened a grant from %s and reads %d bundle(s)", inbox2[0].From, len(okGot))
	sum.SameRecords = sameBundles(got, leeGot) && sameBundles(got, okGot)
	say("  patient, dr-lee and dr-okafor read identical records: %v", sum.SameRecords)

	step(9, "a terminal guessing identities online is rate-limited by each relay")
	guess := typed
	for i := range relay.DefaultRateBurst + 2 {
		guess.NationalID = fmt.Sprintf("000-00-%04d", i) // outside the 999 test range: no such patient
		gkeys, err := guesser.DeriveKeys(ctx, guess)
		if errors.Is(err, terminal.ErrRelay) {
			say("  guess %d refused: %v", i+1, err)
			break
		}
		if err != nil {
			return nil, err
		}
		sum.RateLimitedAfter++
		found, err := guesser.Fetch(ctx, gkeys)
		if err != nil {
			return nil, err
		}
		sum.GuessHits += len(found)
		say("  guess %d answered at every hospital; bundles at the derived indexes: %d", i+1, len(found))
	}

	step(10, "summary")
	linkMu.Lock()
	say("  link events: %d across both relays; connected to both sides at once: %v", sum.LinkEvents, sum.BothConnected)
	linkMu.Unlock()
	items, mail = p.Cloud.Snapshot()
	say("  cloud holds %d ciphertexts and %d pending sealed grants, and no key", len(items), len(mail))
	return sum, nil
}

func firstConditions(b *records.Bundle, n int) string {
	var out []string
	for _, c := range b.Conditions[:min(n, len(b.Conditions))] {
		out = append(out, fmt.Sprintf("%s %q", c.Code, c.Description))
	}
	if len(out) == 0 {
		return "(none)"
	}
	return strings.Join(out, ", ")
}

func dayAfter(date string) string {
	t, err := time.Parse(time.DateOnly, strings.TrimSpace(date))
	if err != nil {
		return date + "x"
	}
	return t.AddDate(0, 0, 1).Format(time.DateOnly)
}

func sameBundles(a, b []terminal.Fetched) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, err1 := a[i].Bundle.MarshalBinary()
		y, err2 := b[i].Bundle.MarshalBinary()
		if err1 != nil || err2 != nil || string(x) != string(y) {
			return false
		}
	}
	return true
}
