package identity_test

import (
	"bytes"
	"testing"

	"github.com/mpsi-dev/mpsi/examples/identitykeys/identity"
	"github.com/stretchr/testify/require"
)

var base = identity.Fields{Given: "José Eduardo181", Family: "Gómez206", BirthDate: "1989-05-25", NationalID: "999-76-6866"}

func TestNormalizeEquivalent(t *testing.T) {
	want, err := identity.Encode(base)
	require.NoError(t, err)
	tests := []struct {
		name string
		in   identity.Fields
	}{
		{"identical", base},
		{"upper case", identity.Fields{Given: "JOSÉ EDUARDO181", Family: "GÓMEZ206", BirthDate: "1989-05-25", NationalID: "999-76-6866"}},
		{"surrounding and inner spaces", identity.Fields{Given: "  José   Eduardo181\t", Family: " Gómez206 ", BirthDate: " 1989-05-25 ", NationalID: " 999 76 6866 "}},
		{"decomposed accents (NFD)", identity.Fields{Given: "Jose\u0301 Eduardo181", Family: "Go\u0301mez206", BirthDate: "1989-05-25", NationalID: "999766866"}},
		{"accents and punctuation dropped", identity.Fields{Given: "Jose Eduardo181.", Family: "Gomez'206", BirthDate: "1989-05-25", NationalID: "999-76-6866"}},
		{"full-width digits (NFKC)", identity.Fields{Given: "José Eduardo１８１", Family: "Gómez206", BirthDate: "1989-05-25", NationalID: "９９９-76-6866"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := identity.Encode(tc.in)
			require.NoError(t, err)
			if !bytes.Equal(got, want) {
				t.Errorf("Encode(%s) differs from the canonical encoding", tc.name)
			}
		})
	}
}

func TestNormalizeDistinct(t *testing.T) {
	want, err := identity.Encode(base)
	require.NoError(t, err)
	tests := []struct {
		name string
		in   identity.Fields
	}{
		{"other given name", identity.Fields{Given: "José Eduardo182", Family: base.Family, BirthDate: base.BirthDate, NationalID: base.NationalID}},
		{"other birth date", identity.Fields{Given: base.Given, Family: base.Family, BirthDate: "1989-05-26", NationalID: base.NationalID}},
		{"other national id", identity.Fields{Given: base.Given, Family: base.Family, BirthDate: base.BirthDate, NationalID: "999-76-6867"}},
		{"letter changed", identity.Fields{Given: "Josa Eduardo181", Family: base.Family, BirthDate: base.BirthDate, NationalID: base.NationalID}},
		{"names swapped", identity.Fields{Given: base.Family, Family: base.Given, BirthDate: base.BirthDate, NationalID: base.NationalID}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := identity.Encode(tc.in)
			require.NoError(t, err)
			if bytes.Equal(got, want) {
				t.Errorf("Encode(%s) collides with the base identity", tc.name)
			}
		})
	}
}

func TestEncodingIsUnambiguous(t *testing.T) {
	a, err := identity.Encode(identity.Fields{Given: "ab", Family: "c", BirthDate: "2000-01-01", NationalID: "1"})
	require.NoError(t, err)
	b, err := identity.Encode(identity.Fields{Given: "a", Family: "bc", BirthDate: "2000-01-01", NationalID: "1"})
	require.NoError(t, err)
	if bytes.Equal(a, b) {
		t.Fatal(`("ab","c") and ("a","bc") encode the same`)
	}
	c, err := identity.Encode(identity.Fields{Given: "a b", Family: "c", BirthDate: "2000-01-01", NationalID: "1"})
	require.NoError(t, err)
	if bytes.Equal(a, c) {
		t.Fatal(`"ab" and "a b" encode the same`)
	}
}

func TestNormalizeInvalid(t *testing.T) {
	long := string(bytes.Repeat([]byte("x"), identity.MaxFieldLen+1))
	tests := []struct {
		name string
		in   identity.Fields
	}{
		{"zero", identity.Fields{}},
		{"empty given", identity.Fields{Given: "  ", Family: "b", BirthDate: "2000-01-01", NationalID: "1"}},
		{"punctuation-only family", identity.Fields{Given: "a", Family: "'-.", BirthDate: "2000-01-01", NationalID: "1"}},
		{"empty family", identity.Fields{Given: "a", Family: "", BirthDate: "2000-01-01", NationalID: "1"}},
		{"punctuation-only id", identity.Fields{Given: "a", Family: "b", BirthDate: "2000-01-01", NationalID: "--- "}},
		{"date not ISO", identity.Fields{Given: "a", Family: "b", BirthDate: "05/25/1989", NationalID: "1"}},
		{"date out of range", identity.Fields{Given: "a", Family: "b", BirthDate: "1989-02-30", NationalID: "1"}},
		{"date unpadded", identity.Fields{Given: "a", Family: "b", BirthDate: "1989-5-25", NationalID: "1"}},
		{"name too long", identity.Fields{Given: long, Family: "b", BirthDate: "2000-01-01", NationalID: "1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := identity.Encode(tc.in)
			require.ErrorIs(t, err, identity.ErrInvalid)
		})
	}
}

func TestErrorsDoNotLeakValues(t *testing.T) {
	_, err := identity.Encode(identity.Fields{Given: "Secretname", Family: "", BirthDate: "2000-01-01", NationalID: "999-12-3456"})
	require.Error(t, err)
	for _, s := range []string{"Secretname", "secretname", "999", "3456"} {
		require.NotContains(t, err.Error(), s)
	}
}

// FuzzNormalize checks that normalisation never panics, is idempotent, and
// that normalised fields encode exactly as the raw ones.
func FuzzNormalize(f *testing.F) {
	f.Add(base.Given, base.Family, base.BirthDate, base.NationalID)
	f.Add("  ǅ  ß ", "ﬁ", "2000-02-29", "١٢٣")
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, g, fam, bd, id string) {
		in := identity.Fields{Given: g, Family: fam, BirthDate: bd, NationalID: id}
		n, err := identity.Normalize(in)
		if err != nil {
			if n != (identity.Normalized{}) {
				t.Fatal("non-zero Normalized on error")
			}
			return
		}
		n2, err := identity.Normalize(n.Fields())
		if err != nil {
			t.Fatalf("normalised fields do not normalise again: %v", err)
		}
		if n2.Fields() != n.Fields() {
			t.Fatalf("normalisation is not idempotent: %q → %q", n.Fields(), n2.Fields())
		}
		if !bytes.Equal(n.Encode(), n2.Encode()) {
			t.Fatal("encodings differ")
		}
	})
}
