package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpsi-dev/mpsi/examples/identitykeys/records"
	"github.com/mpsi-dev/mpsi/examples/identitykeys/relay"
)

// TestRun runs the whole example flow, on the Synthea sample when it is
// there and on generated patients in any case, and checks what it
// established, not just that it ran.
func TestRun(t *testing.T) {
	sources := []struct {
		name, dir string
	}{{"generated", "-"}}
	if dir, ok := records.Locate("."); ok {
		sources = append(sources, struct{ name, dir string }{"synthea", dir})
	} else {
		t.Log("Synthea sample not found; running on generated patients only")
	}
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var out bytes.Buffer
			sum, err := run(ctx, &out, src.dir)
			if err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			for i := range 2 {
				if sum.Stored[i] == 0 || sum.Stored[i] > sum.Patients[i] {
					t.Errorf("hospital %d: stored %d bundles for %d rows", i, sum.Stored[i], sum.Patients[i])
				}
			}
			if sum.PatientBundles != 2 || strings.Join(sum.PatientHosps, ",") != hospitalA+","+hospitalB {
				t.Errorf("patient opened %d bundles from %v, want one from each hospital", sum.PatientBundles, sum.PatientHosps)
			}
			if !sum.Retried {
				t.Error("the patient terminal never met a relay on the hospital side")
			}
			if sum.WrongIdentity != 0 {
				t.Errorf("mistyped identity found %d bundles, want 0", sum.WrongIdentity)
			}
			if sum.DoctorBundles != 2 || sum.ColleagueBundles != 2 || !sum.SameRecords {
				t.Errorf("doctor %d, colleague %d bundles, same=%v; want 2, 2, true", sum.DoctorBundles, sum.ColleagueBundles, sum.SameRecords)
			}
			if sum.Enrolled[0] == 0 || sum.Enrolled[1] == 0 {
				t.Errorf("enrolled %v patients", sum.Enrolled)
			}
			if sum.NoCredentialHits != 0 || !sum.ForgedFetch {
				t.Errorf("without the credential: %d bundles found, forged fetch refused %v; want 0, true", sum.NoCredentialHits, sum.ForgedFetch)
			}
			if !sum.RevokedDoctor || !sum.RevokedColleague || !sum.NotDelegable {
				t.Errorf("after revocation: doctor refused %v, colleague refused %v; re-delegation refused %v", sum.RevokedDoctor, sum.RevokedColleague, sum.NotDelegable)
			}
			if sum.RateLimitedAfter != relay.DefaultRateBurst || sum.GuessHits != 0 {
				t.Errorf("guesser: %d queries answered, %d hits; want %d, 0", sum.RateLimitedAfter, sum.GuessHits, relay.DefaultRateBurst)
			}
			if sum.BothConnected || sum.LinkEvents < 14 {
				t.Errorf("link: %d events, both connected %v", sum.LinkEvents, sum.BothConnected)
			}
			for _, want := range []string{": summary", "proof verified", "dr-okafor opened a grant from dr-lee", "too many queries"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q", want)
				}
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	small := t.TempDir()
	writeFile(t, filepath.Join(small, "patients.csv"), "Id,BIRTHDATE,SSN,FIRST,LAST,GENDER\np1,1989-05-25,999-76-6866,A,B,M\n")
	writeFile(t, filepath.Join(small, "conditions.csv"), "START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION\n")
	tests := []struct {
		name, dir, want string
	}{
		{"missing folder", filepath.Join(t.TempDir(), "none"), "no such file"},
		{"too few patients", small, "need at least 3 patients"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(context.Background(), io.Discard, tc.dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run(%s) = %v, want an error containing %q", tc.dir, err, tc.want)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
