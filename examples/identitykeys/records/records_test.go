package records

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mpsi-dev/mpsi/examples/identitykeys/identity"
	"github.com/stretchr/testify/require"
)

func sampleBundle() *Bundle {
	return &Bundle{
		Hospital: "hospital-a", Given: "José Eduardo181", Family: "Gómez206", BirthDate: "1989-05-25", Sex: "M",
		Conditions: []Condition{
			{Start: "2001-05-01", Code: "40055000", Description: "Chronic sinusitis (disorder)"},
			{Start: "2011-08-09", Stop: "2011-08-16", Code: "444814009", Description: "Viral sinusitis (disorder)"},
		},
	}
}

func TestBundleRoundTrip(t *testing.T) {
	for name, b := range map[string]*Bundle{"sample": sampleBundle(), "empty": {}} {
		enc, err := b.MarshalBinary()
		require.NoError(t, err, name)
		got, err := ParseBundle(enc)
		require.NoError(t, err, name)
		require.Equal(t, b, got, name)
	}
}

func TestParseBundleRejects(t *testing.T) {
	enc, err := sampleBundle().MarshalBinary()
	require.NoError(t, err)
	for n := range len(enc) {
		_, err := ParseBundle(enc[:n])
		require.ErrorIs(t, err, ErrMalformed, "truncated to %d bytes", n)
	}
	_, err = ParseBundle(append(bytes.Clone(enc), 0))
	require.ErrorIs(t, err, ErrMalformed)
	bad := bytes.Clone(enc)
	bad[1] ^= 1 // label
	_, err = ParseBundle(bad)
	require.ErrorIs(t, err, ErrMalformed)
}

func TestMarshalLimits(t *testing.T) {
	long := string(bytes.Repeat([]byte("x"), maxText+1))
	tests := []struct {
		name string
		b    *Bundle
	}{
		{"long name", &Bundle{Given: long}},
		{"long hospital", &Bundle{Hospital: long}},
		{"long description", &Bundle{Conditions: []Condition{{Description: long}}}},
		{"long code", &Bundle{Conditions: []Condition{{Code: long}}}},
		{"too many conditions", &Bundle{Conditions: make([]Condition, MaxConditions+1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.b.MarshalBinary()
			require.Error(t, err)
		})
	}
}

func FuzzParseBundle(f *testing.F) {
	enc, err := sampleBundle().MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add(enc[:len(enc)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBundle(data)
		if err != nil {
			if b != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("rejection = (%v, %v)", b, err)
			}
			return
		}
		re, err := b.MarshalBinary()
		if err != nil || !bytes.Equal(re, data) {
			t.Fatalf("accepted bundle does not re-encode identically (%v)", err)
		}
	})
}

func writeCSV(t *testing.T, patients, conditions string) string {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "patients.csv"), []byte(patients), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "conditions.csv"), []byte(conditions), 0o600))
	return dir
}

const patientsHeader = "Id,BIRTHDATE,DEATHDATE,SSN,FIRST,LAST,GENDER\n"
const conditionsHeader = "START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION\n"

func TestLoadSynthea(t *testing.T) {
	dir := writeCSV(t,
		patientsHeader+"p1,1989-05-25,,999-76-6866,José,Gómez,M\np2,1983-11-14,,999-73-5361,Milo,Feil,M\n",
		conditionsHeader+"2001-05-01,,p1,e1,40055000,Chronic sinusitis\n2011-08-09,2011-08-16,p1,e2,444814009,Viral sinusitis\n")
	ps, err := LoadSynthea(dir)
	require.NoError(t, err)
	require.Len(t, ps, 2)
	require.Equal(t, identity.Fields{Given: "José", Family: "Gómez", BirthDate: "1989-05-25", NationalID: "999-76-6866"}, ps[0].Identity)
	require.Len(t, ps[0].Conditions, 2)
	require.Empty(t, ps[1].Conditions)
	require.Equal(t, "2011-08-16", ps[0].Conditions[1].Stop)
}

func TestLoadSyntheaErrors(t *testing.T) {
	tests := []struct {
		name, patients, conditions, want string
	}{
		{"missing column", "Id,BIRTHDATE,SSN,FIRST,GENDER\n", conditionsHeader, "missing column LAST"},
		{"bad date", patientsHeader + "p1,25/05/1989,,999,A,B,M\n", conditionsHeader, "line 2"},
		{"repeated id", patientsHeader + "p1,1989-05-25,,1,A,B,M\np1,1989-05-25,,2,C,D,F\n", conditionsHeader, "line 3: repeated"},
		{"unknown patient", patientsHeader + "p1,1989-05-25,,1,A,B,M\n", conditionsHeader + "2001-05-01,,zz,e,1,x\n", "line 2: condition of an unknown patient"},
		{"ragged row", patientsHeader + "p1,1989-05-25\n", conditionsHeader, "wrong number of fields"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadSynthea(writeCSV(t, tc.patients, tc.conditions))
			require.ErrorContains(t, err, tc.want)
		})
	}
	_, err := LoadSynthea(t.TempDir())
	require.Error(t, err)
}

func TestSplit(t *testing.T) {
	ps := Generate(30)
	dbs := Split([2]string{"a", "b"}, ps)
	require.Len(t, dbs[0].Patients, 20)
	require.Len(t, dbs[1].Patients, 20)
	conds := 0
	for _, db := range dbs {
		for _, p := range db.Patients {
			conds += len(p.Conditions)
		}
	}
	want := 0
	for _, p := range ps {
		want += len(p.Conditions)
	}
	require.Equal(t, want, conds, "conditions lost or duplicated by the split")
	// Patient 2 is at both, with its conditions alternated.
	require.Equal(t, ps[2].Identity, dbs[0].Patients[1].Identity)
	require.Equal(t, ps[2].Identity, dbs[1].Patients[1].Identity)
	require.Equal(t, ps[2].Conditions[0], dbs[0].Patients[1].Conditions[0])
	require.Equal(t, ps[2].Conditions[1], dbs[1].Patients[1].Conditions[0])
}

func TestGenerateDistinctValid(t *testing.T) {
	ps := Generate(2000)
	seen := map[string]bool{}
	for i, p := range ps {
		enc, err := identity.Encode(p.Identity)
		require.NoError(t, err, "patient %d", i)
		require.False(t, seen[string(enc)], "patient %d repeats an identity", i)
		seen[string(enc)] = true
		require.NotEmpty(t, p.Conditions)
	}
}

func TestLocate(t *testing.T) {
	root := t.TempDir()
	mod := filepath.Join(root, "main")
	data := filepath.Join(root, "shared", "data", "synthea", SyntheaSubdir)
	require.NoError(t, os.MkdirAll(filepath.Join(mod, "examples", "x"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module m\n"), 0o600))
	_, ok := Locate(filepath.Join(mod, "examples", "x"))
	require.False(t, ok, "found data that is not there")
	require.NoError(t, os.MkdirAll(data, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(data, "patients.csv"), []byte(patientsHeader), 0o600))
	got, ok := Locate(filepath.Join(mod, "examples", "x"))
	require.True(t, ok)
	require.Equal(t, data, got)
}

// FuzzLoadCSV feeds arbitrary patients.csv and conditions.csv contents to
// the loader: it must never panic, and whatever it accepts must normalise.
func FuzzLoadCSV(f *testing.F) {
	f.Add(patientsHeader+"p1,1989-05-25,,999-76-6866,José,Gómez,M\n", conditionsHeader+"2001-05-01,,p1,e1,40055000,Chronic sinusitis\n")
	f.Add("Id\n", "")
	f.Add(patientsHeader+"p1,\"1989-05-25,,1,A,B,M\n", conditionsHeader)
	f.Fuzz(func(t *testing.T, patients, conditions string) {
		ps, byID, err := readPatients(strings.NewReader(patients))
		if err != nil {
			return
		}
		for _, p := range ps {
			if _, err := identity.Normalize(p.Identity); err != nil {
				t.Fatalf("loader accepted an identity that does not normalise: %v", err)
			}
		}
		_ = readConditions(strings.NewReader(conditions), ps, byID)
	})
}
