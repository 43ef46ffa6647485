package report_test

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/internal/devcert"
	"github.com/mpsi-dev/mpsi/internal/envelope"
	"github.com/mpsi-dev/mpsi/internal/report"
	"github.com/mpsi-dev/mpsi/psi/session"
)

func ExampleRender() {
	result := []byte(`{"session":"s1","parties":["a","b"],"match_mode":"dh","intersection":40,
		"pairwise":[[100,40],[40,120]],"aggregates":{"age":{"kind":"mean","value":51.5,"contributions":40}}}`)
	var page bytes.Buffer
	if err := report.Render(&page, result, report.Options{}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(strings.Contains(page.String(), `<span data-k="agg/age/value">51.5</span>`))
	fmt.Println(strings.Contains(page.String(), `data-k="pairwise/0/1">40</text>`))
	// Output:
	// true
	// true
}

var dataK = regexp.MustCompile(`data-k="([^"]+)"[^>]*>([^<]*)<`)

// released reads back every data-k element of a page as key → texts.
func released(page string) map[string][]string {
	out := map[string][]string{}
	for _, m := range dataK.FindAllStringSubmatch(page, -1) {
		out[m[1]] = append(out[m[1]], m[2])
	}
	return out
}

// Expected lists, independently of the renderer, the text each data-k
// element must show for a Result.
func Expected(t testing.TB, resultJSON []byte) map[string]string {
	var r session.Result
	require.NoError(t, jsonUnmarshal(resultJSON, &r))
	want := map[string]string{}
	cell := func(p *int64) string {
		if p == nil {
			return "suppressed"
		}
		return fmt.Sprint(*p)
	}
	switch {
	case r.Intersection != nil:
		want["intersection"] = fmt.Sprint(*r.Intersection)
	case r.IntersectionSuppressed:
		want["intersection"] = "suppressed"
	}
	for i, row := range r.Pairwise {
		for j, c := range row {
			want[fmt.Sprintf("pairwise/%d/%d", i, j)] = cell(c)
		}
	}
	for _, a := range r.Aggregates {
		k := "agg/" + a.Name
		if a.Kind == session.KindHistogram {
			for b, c := range a.Counts {
				want[fmt.Sprintf("%s/count/%d", k, b)] = cell(c)
			}
			continue
		}
		switch {
		case a.Suppressed:
			want[k+"/value"] = "suppressed"
		case a.Value == nil:
			want[k+"/value"] = "no contributions"
		default:
			want[k+"/value"] = a.Value.String()
		}
		if a.Kind == session.KindMean || a.Kind == session.KindVariance {
			want[k+"/contributions"] = cell(a.Contributions)
		}
	}
	return want
}

// CheckReleased asserts that the page shows exactly the Result's numbers:
// every expected key at least once, every occurrence equal, no stray key.
func CheckReleased(t testing.TB, got map[string][]string, want map[string]string) {
	t.Helper()
	for k, w := range want {
		require.NotEmpty(t, got[k], "page lacks %s", k)
		for _, g := range got[k] {
			require.Equal(t, w, strings.TrimSpace(g), k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok && !strings.HasPrefix(k, "param/") && k != "signature" {
			t.Errorf("page shows %s, which the Result does not hold", k)
		}
	}
}

func TestRenderShowsTheResult(t *testing.T) {
	for _, name := range []string{"small.json", "suppressed.json"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile("testdata/" + name)
			require.NoError(t, err)
			var page bytes.Buffer
			require.NoError(t, report.Render(&page, b, report.Options{}))
			html := page.String()
			CheckReleased(t, released(html), Expected(t, b))
			require.Contains(t, html, `<span class="badge sig-not-checked" data-k="signature">not checked</span>`)
			selfContained(t, html)
		})
	}
}

func TestRenderMarksSuppressedNeverZero(t *testing.T) {
	b, err := os.ReadFile("testdata/suppressed.json")
	require.NoError(t, err)
	var page bytes.Buffer
	require.NoError(t, report.Render(&page, b, report.Options{}))
	got := released(page.String())
	for _, k := range []string{"intersection", "pairwise/0/1", "agg/n/value", "agg/h/count/0", "agg/h/count/1"} {
		for _, v := range got[k] {
			require.Equal(t, "suppressed", v, k)
		}
	}
	require.Contains(t, page.String(), "url(#hatch-matrix)")
	require.Contains(t, page.String(), "it is suppressed, and so is everything derived from it")
}

func TestRenderParams(t *testing.T) {
	b, err := os.ReadFile("testdata/small.json")
	require.NoError(t, err)
	var page bytes.Buffer
	require.NoError(t, report.Render(&page, b, report.Options{SpecPrivacy: map[string]any{"delta": 1e-6}}))
	got := released(page.String())
	require.Equal(t, []string{"skellam"}, got["param/result/privacy.mechanism"])
	require.Equal(t, []string{"1.5"}, got["param/result/privacy.epsilon"])
	require.Equal(t, []string{"0.000001"}, got["param/spec/privacy.delta"])

	var plain bytes.Buffer
	require.NoError(t, report.Render(&plain, []byte(`{"session":"s","parties":["a","b"],"intersection":3}`), report.Options{}))
	require.NotContains(t, plain.String(), "Privacy parameters")
}

func TestRenderWithSpec(t *testing.T) {
	spec, err := session.ParseSpec([]byte(`{"id":"trial-7","parties":["hospital-a","hospital-b","hospital-c"],
		"fields":{"id":"id","age":"number"},"match":{"fields":["id"],"mode":"keyed"},
		"reveal":["cardinality","pairwise","aggregates"],"min_cell":5,
		"aggregates":[{"name":"age","kind":"mean","field":"age","min":0,"max":130,"from":["hospital-a"]}]}`))
	require.NoError(t, err)
	b, err := os.ReadFile("testdata/small.json")
	require.NoError(t, err)
	var page bytes.Buffer
	require.NoError(t, report.Render(&page, b, report.Options{Spec: spec}))
	require.Contains(t, page.String(), "field age; bounds [0, 130]; from hospital-a")
	require.Contains(t, page.String(), "5 (released counts c with 0 &lt; c &lt; 5 are suppressed)")

	other := *spec
	other.ID = "another"
	err = report.Render(&bytes.Buffer{}, b, report.Options{Spec: &other})
	require.ErrorIs(t, err, report.ErrInvalid)
	require.ErrorContains(t, err, `spec is for session "another"`)
}

func TestRenderRefusesMalformed(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`not json`, "invalid character"},
		{`{}`, "no session id or no parties"},
		{`{"session":"s","parties":["a","b"],"pairwise":[[1,2]]}`, "pairwise has 1 rows for 2 parties"},
		{`{"session":"s","parties":["a","b"],"pairwise":[[1,2],[3]]}`, "pairwise row 1 has 1 cells"},
		{`{"session":"s","parties":["a"],"aggregates":{"h":{"kind":"histogram","edges":[0,1],"counts":[1,2]}}}`, "histogram h has 2 edges for 2 counts"},
	} {
		var out bytes.Buffer
		err := report.Render(&out, []byte(tc.in), report.Options{})
		require.ErrorIs(t, err, report.ErrInvalid, tc.in)
		require.ErrorContains(t, err, tc.want, tc.in)
		require.Zero(t, out.Len(), "nothing written on error")
	}
}

func TestRenderEscapes(t *testing.T) {
	b := []byte(`{"session":"<script>alert(1)</script>","parties":["<b>x</b>","y"],"intersection":1,"pairwise":[[1,1],[1,1]]}`)
	var page bytes.Buffer
	require.NoError(t, report.Render(&page, b, report.Options{}))
	require.NotContains(t, page.String(), "<script>")
	require.NotContains(t, page.String(), "<b>x</b>")
}

// selfContained asserts that a page references nothing outside itself.
func selfContained(t *testing.T, html string) {
	t.Helper()
	for _, bad := range []string{"<script", "<link", "<img", "<iframe", "@import", "src=", "url(http", "href=\"http"} {
		require.NotContains(t, html, bad)
	}
	stripped := strings.ReplaceAll(html, `xmlns="http://www.w3.org/2000/svg"`, "")
	require.NotContains(t, stripped, "http://")
	require.NotContains(t, stripped, "https://")
}

// signedResult signs b as a coordinator named "coordinator" of a fresh CA.
func signedResult(t testing.TB, b []byte) (sig []byte, coord *x509.Certificate, ca *devcert.CA) {
	ca, err := devcert.NewCA("report test CA")
	require.NoError(t, err)
	leaf, err := ca.Issue("coordinator")
	require.NoError(t, err)
	tc, err := leaf.TLSCertificate()
	require.NoError(t, err)
	var r session.Result
	require.NoError(t, jsonUnmarshal(b, &r))
	sig, err = envelope.SignResult(tc.PrivateKey.(crypto.Signer), r.Session, b)
	require.NoError(t, err)
	blk, _ := pem.Decode(leaf.CertPEM)
	coord, err = x509.ParseCertificate(blk.Bytes)
	require.NoError(t, err)
	return sig, coord, ca
}

func TestCheckSignature(t *testing.T) {
	b, err := os.ReadFile("testdata/small.json")
	require.NoError(t, err)
	b = bytes.TrimSpace(b)
	sig, coord, ca := signedResult(t, b)
	now := time.Now()

	ok := report.CheckSignature(b, sig, coord, ca.Pool(), now)
	require.Equal(t, report.SignatureVerified, ok.Status, ok.Detail)
	require.Equal(t, "coordinator", ok.Signer)

	tampered := bytes.Replace(b, []byte(`"intersection":90`), []byte(`"intersection":91`), 1)
	require.Equal(t, report.SignatureFailed, report.CheckSignature(tampered, sig, coord, ca.Pool(), now).Status)

	_, _, otherCA := signedResult(t, b)
	bad := report.CheckSignature(b, sig, coord, otherCA.Pool(), now)
	require.Equal(t, report.SignatureFailed, bad.Status)
	require.Contains(t, bad.Detail, "does not verify against the CA")

	require.Equal(t, report.SignatureFailed, report.CheckSignature(b, sig, coord, ca.Pool(), now.Add(devcert.Validity+time.Hour)).Status)

	var page bytes.Buffer
	require.NoError(t, report.Render(&page, b, report.Options{Signature: ok}))
	require.Contains(t, page.String(), `<span class="badge sig-verified" data-k="signature">verified</span>`)
}

func FuzzRender(f *testing.F) {
	for _, name := range []string{"small.json", "suppressed.json"} {
		b, err := os.ReadFile("testdata/" + name)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte(`{"session":"s","parties":["a"],"aggregates":{"h":{"kind":"histogram","edges":[],"counts":[]}}}`))
	f.Add([]byte(`{"session":"s","parties":["a"],"pairwise":[[null]],"privacy":[1,{"x":null}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var out bytes.Buffer
		err := report.Render(&out, b, report.Options{})
		if err != nil {
			if !errors.Is(err, report.ErrInvalid) {
				t.Fatalf("error not wrapping ErrInvalid: %v", err)
			}
			if out.Len() != 0 {
				t.Fatal("output written on error")
			}
			return
		}
		if !bytes.HasPrefix(out.Bytes(), []byte("<!DOCTYPE html>")) {
			t.Fatal("no page")
		}
		if bytes.Contains(out.Bytes(), []byte("<script")) {
			t.Fatal("script in page")
		}
	})
}

// A Result of a session with several match keys shows the groups each key
// completed and the refused links.
func TestRenderShowsLinkage(t *testing.T) {
	b, err := os.ReadFile("testdata/small.json")
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	m["linkage"] = map[string]any{"keys": []int{40, 7}, "ambiguous": 3}
	b, err = json.Marshal(m)
	require.NoError(t, err)
	var page bytes.Buffer
	require.NoError(t, report.Render(&page, b, report.Options{}))
	require.Contains(t, page.String(), "key 1: 40, key 2: 7")
	require.Contains(t, page.String(), "Ambiguous links refused")
}
