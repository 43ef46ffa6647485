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
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mpsi-dev/mpsi/examples/identitykeys/cloud"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/identity"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/identitypb"
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
	SameRecords      bool   // patient, doctor and colleague read identical bundles
	Enrolled         [2]int // credentials issued per hospital
	NoCredentialHits int    // bundles found by someone who knows the identity but not the credential
	ForgedFetch      bool   // the cloud refused a fetch of the patient's index without the access key
	RevokedDoctor    bool   // dr-lee refused after the patient revoked
	RevokedColleague bool   // dr-okafor refused after the patient revoked dr-lee's grant
	NotDelegable     bool   // dr-okafor could not pass dr-lee's grant on again
	RateLimitedAfter int    // queries accepted before the guesser was refused
	GuessHits        int    // bundles the guesser found
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
	steps := 0
	step := func(_ int, title string) { steps++; say("\n── step %d: %s", steps, title) }

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
	step(2, "parties start (gRPC, mTLS 1.3 on 127.0.0.1, one certificate each; every database a SQLite file)")
	dir, err := os.MkdirTemp("", "identitykeys-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var linkMu sync.Mutex // guards the link counters below
	p, err := platform.Start(platform.Options{
		DBs: dbs[:], Dir: dir,
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
	say("  cloud store        %s  (holds no key that opens a bundle; %s)", p.CloudAddr, filepath.Join(dir, "cloud.db"))
	for _, n := range p.Nodes {
		say("  relay %-12s %s  OPRF ristretto255-SHA512 (verifiable), public key %x…", n.Hospital, n.Addr, n.Evaluator.PublicKey()[:8])
	}
	say("  terminals pin each relay's OPRF public key; link of every relay starts on the cloud side")

	// The patient is one with records at both hospitals (index 2 mod 3).
	who := patients[2]
	step(2, "registration: each hospital enrols its patients and issues each an enrolment credential")
	creds := map[string]recordkey.Credential{}
	for i, n := range p.Nodes {
		c, err := n.DB.Enrol(ctx, who.Identity)
		if err != nil {
			return nil, err
		}
		creds[n.Hospital] = c
		others, err := n.DB.EnrolAll(ctx)
		if err != nil {
			return nil, err
		}
		sum.Enrolled[i] = others + 1
		say("  %s: the patient receives a 32-byte credential at the desk (kept in the hospital's database and on the patient's terminal); %d other patients enrolled", n.Hospital, others)
	}

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
		say("  %s relay reads its SQLite database (cloud disconnected): %d rows → %d bundles (%d merged duplicates, %d not enrolled), %d conditions, sealed AES-256-GCM: %d bytes",
			n.Hospital, rep.Patients, rep.Bundles, rep.Merged, rep.Unenrolled, rep.Conditions, rep.Bytes)
		if err := n.Link.Toggle(ctx); err != nil {
			return nil, err
		}
		say("  %s link: %v", n.Hospital, n.Link.State())
		stored, err := n.Relay.Upload(ctx)
		if err != nil {
			return nil, err
		}
		sum.Stored[i] = stored
		say("  %s relay → cloud: Put %d entries (hospital, 32-byte index, ciphertext, access public key)", n.Hospital, stored)
	}
	items, _, err := p.Cloud.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
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
		platform.TerminalSpec{Name: "mallory", Trace: trace("mallory")},
	)
	if err != nil {
		return nil, err
	}
	patientT, lee, okafor, guesser, mallory := ts[0], ts[1], ts[2], ts[3], ts[4]

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
	keys, err := patientT.DeriveKeys(ctx, typed, creds)
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
	wkeys, err := patientT.DeriveKeys(ctx, wrong, creds)
	if err != nil {
		return nil, err
	}
	wgot, err := patientT.Fetch(ctx, wkeys)
	if err != nil {
		return nil, err
	}
	sum.WrongIdentity = len(wgot)
	say("  bundles found with the mistyped identity: %d", len(wgot))

	step(6, "mallory knows the patient's name, birth date and national ID, but not the enrolment credentials")
	guessed := map[string]recordkey.Credential{}
	for _, n := range p.Nodes {
		if guessed[n.Hospital], err = recordkey.NewCredential(); err != nil {
			return nil, err
		}
	}
	mkeys, err := mallory.DeriveKeys(ctx, typed, guessed)
	if err != nil {
		return nil, err
	}
	mgot, err := mallory.Fetch(ctx, mkeys)
	if err != nil {
		return nil, err
	}
	sum.NoCredentialHits = len(mgot)
	say("  bundles mallory finds with the identity and guessed credentials: %d", len(mgot))
	// Even knowing the patient's index, the cloud wants the access key.
	ix := keys[0].Index()
	forged := ed25519.Sign(mkeys[0].AccessKey(), recordkey.FetchMessage("mallory", keys[0].Hospital(), ix, time.Now().Unix()))
	_, ferr := p.Cloud.Fetch(ctx, "mallory", &identitypb.GetRequest{Hospital: keys[0].Hospital(), Index: ix[:], Time: time.Now().Unix(), Signature: forged})
	sum.ForgedFetch = errors.Is(ferr, cloud.ErrForbidden)
	say("  the cloud refuses a fetch of the patient's own index signed with another key: %v", ferr)

	step(7, "patient grants dr-lee read access for an hour (signed permits at the cloud, read keys sealed with HPKE auth mode)")
	leeReads, err := patientT.Share(ctx, "dr-lee", keys, time.Now().Add(time.Hour), true)
	if err != nil {
		return nil, err
	}
	_, mail, err := p.Cloud.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	say("  cloud mailbox holds %d sealed grant(s); it cannot open them", len(mail))
	inbox, err := lee.Inbox(ctx)
	if err != nil {
		return nil, err
	}
	if len(inbox) != 1 {
		return nil, fmt.Errorf("dr-lee received %d grants, want 1", len(inbox))
	}
	say("  dr-lee opened a grant from %s with %d read key(s) (no access key: he cannot sign as the patient)", inbox[0].From, len(inbox[0].Reads))
	leeGot, err := lee.FetchGranted(ctx, inbox[0].Reads)
	if err != nil {
		return nil, err
	}
	sum.DoctorBundles = len(leeGot)
	for _, f := range leeGot {
		say("  dr-lee sees %s: %d conditions", f.Bundle.Hospital, len(f.Bundle.Conditions))
	}

	step(8, "dr-lee passes the grant to dr-okafor for a consultation")
	if _, err := lee.PassOn(ctx, "dr-okafor", inbox[0].Reads, time.Now().Add(30*time.Minute)); err != nil {
		return nil, err
	}
	inbox2, err := okafor.Inbox(ctx)
	if err != nil {
		return nil, err
	}
	if len(inbox2) != 1 {
		return nil, fmt.Errorf("dr-okafor received %d grants, want 1", len(inbox2))
	}
	okGot, err := okafor.FetchGranted(ctx, inbox2[0].Reads)
	if err != nil {
		return nil, err
	}
	sum.ColleagueBundles = len(okGot)
	say("  dr-okafor opened a grant from %s and reads %d bundle(s)", inbox2[0].From, len(okGot))
	sum.SameRecords = sameBundles(got, leeGot) && sameBundles(got, okGot)
	say("  patient, dr-lee and dr-okafor read identical records: %v", sum.SameRecords)
	_, err = okafor.PassOn(ctx, "mallory", inbox2[0].Reads, time.Now().Add(time.Minute))
	sum.NotDelegable = errors.Is(err, terminal.ErrDenied)
	say("  dr-okafor tries to pass it on again: %v", err)

	step(8, "the patient revokes dr-lee's grants; the cloud refuses dr-lee and dr-okafor from then on")
	for i, r := range leeReads {
		if err := patientT.Revoke(ctx, keys[i], r.ID); err != nil {
			return nil, err
		}
	}
	_, err = lee.FetchGranted(ctx, inbox[0].Reads)
	sum.RevokedDoctor = errors.Is(err, terminal.ErrDenied)
	say("  dr-lee fetches again: %v", err)
	_, err = okafor.FetchGranted(ctx, inbox2[0].Reads)
	sum.RevokedColleague = errors.Is(err, terminal.ErrDenied)
	say("  dr-okafor fetches again: %v", err)

	step(9, "a terminal guessing identities online is rate-limited by each relay")
	guess := typed
	for i := range relay.DefaultRateBurst + 2 {
		guess.NationalID = fmt.Sprintf("000-00-%04d", i) // outside the 999 test range: no such patient
		gkeys, err := guesser.DeriveKeys(ctx, guess, guessed)
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
	items, mail, err = p.Cloud.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	say("  cloud holds %d ciphertexts and %d pending sealed grants, and no key that opens a bundle", len(items), len(mail))
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
