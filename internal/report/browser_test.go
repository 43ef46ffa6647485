package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/mpsi-dev/mpsi/bench/cohort"
	"github.com/mpsi-dev/mpsi/internal/report"
	"github.com/mpsi-dev/mpsi/party"
	"github.com/mpsi-dev/mpsi/psi/session"
)

// chromiumEnv switches the browser test on; .ci/run sets it after
// installing Debian's chromium. Switched on without a browser, the test
// fails rather than skips.
const chromiumEnv = "MPSI_TEST_CHROMIUM"

// TestReportInChromium renders reports of a real session and of a Result
// with suppressed cells and privacy parameters in headless Chromium, takes
// a screenshot of each, checks that every number in the DOM equals the
// Result and that the page made no request beyond its own file.
// MPSI_REPORT_SCREENSHOTS=DIR keeps the screenshots.
func TestReportInChromium(t *testing.T) {
	if os.Getenv(chromiumEnv) != "1" {
		t.Skipf("set %s=1 to render the report in headless Chromium", chromiumEnv)
	}
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	require.NotEmpty(t, browser, "%s=1 but no chromium on PATH (apt-get install -y chromium)", chromiumEnv)

	pages := map[string][]byte{"session.json": realResult(t)}
	small, err := os.ReadFile("testdata/small.json")
	require.NoError(t, err)
	pages["small.json"] = bytes.TrimSpace(small)
	sup, err := os.ReadFile("testdata/suppressed.json")
	require.NoError(t, err)
	pages["suppressed.json"] = sup

	shots := os.Getenv("MPSI_REPORT_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	dir := t.TempDir()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(browser),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.WindowSize(1100, 900),
	)
	defer cancelAlloc()
	var mu sync.Mutex
	var requested []string
	bctx, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithListener(func(ev any) {
		var u string
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			u = e.Request.URL
		case network.EventRequestWillBeSent:
			u = e.Request.URL
		default:
			return
		}
		mu.Lock()
		requested = append(requested, u)
		mu.Unlock()
	}))
	defer cancelBrowser()
	_, err = chromedp.Call(bctx, network.Enable, network.EnableParams{})
	require.NoError(t, err, "starting %s", browser)

	for _, name := range []string{"session.json", "small.json", "suppressed.json"} {
		b := pages[name]
		opt := report.Options{}
		if name == "small.json" {
			sig, coord, ca := signedResult(t, b)
			opt.Signature = report.CheckSignature(b, sig, coord, ca.Pool(), time.Now())
			require.Equal(t, report.SignatureVerified, opt.Signature.Status)
		}
		var page bytes.Buffer
		require.NoError(t, report.Render(&page, b, opt))
		htmlPath := filepath.Join(dir, strings.TrimSuffix(name, ".json")+".html")
		require.NoError(t, os.WriteFile(htmlPath, page.Bytes(), 0o600))
		fileURL := (&url.URL{Scheme: "file", Path: htmlPath}).String()

		mu.Lock()
		requested = nil
		mu.Unlock()
		require.NoError(t, chromedp.Do(bctx, chromedp.Navigate(fileURL), chromedp.WaitReady("footer")), name)
		title, err := chromedp.Run(bctx, chromedp.Title())
		require.NoError(t, err)
		pairs, err := chromedp.Run(bctx, chromedp.Evaluate[[][]string](`Array.from(document.querySelectorAll('[data-k]')).map(e => [e.getAttribute('data-k'), e.textContent])`))
		require.NoError(t, err)
		svgWidth, err := chromedp.Run(bctx, chromedp.Evaluate[float64](`Math.max(0, ...Array.from(document.querySelectorAll('svg')).map(s => s.getBoundingClientRect().width))`))
		require.NoError(t, err)
		shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)

		var r session.Result
		require.NoError(t, json.Unmarshal(b, &r))
		require.Equal(t, "mpsi session "+r.Session, title)
		got := map[string][]string{}
		for _, p := range pairs {
			require.Len(t, p, 2)
			got[p[0]] = append(got[p[0]], p[1])
		}
		CheckReleased(t, got, Expected(t, b))
		wantSig := "not checked"
		if name == "small.json" {
			wantSig = "verified"
		}
		require.Equal(t, []string{wantSig}, got["signature"], name)
		require.Greater(t, svgWidth, 100.0, "%s: the charts are laid out", name)

		mu.Lock()
		require.Contains(t, requested, fileURL, "%s: the request listener saw the page load", name)
		for _, u := range requested {
			require.Equal(t, fileURL, u, "%s: the page fetched something beyond itself", name)
		}
		mu.Unlock()

		img, err := png.Decode(bytes.NewReader(shot))
		require.NoError(t, err, "%s: screenshot", name)
		require.GreaterOrEqual(t, img.Bounds().Dx(), 1000)
		require.Greater(t, distinctColours(img), 20, "%s: the screenshot shows more than a blank page", name)
		require.NoError(t, os.WriteFile(filepath.Join(shots, strings.TrimSuffix(name, ".json")+".png"), shot, 0o644))
	}
}

// realResult runs a small three-party session in process and returns its
// Result JSON.
func realResult(t *testing.T) []byte {
	c, err := cohort.Generate(cohort.Config{Seed: 18, Parties: 3, Records: 400, SharedAll: 0.3, SharedPair: 0.1, Noise: true, Mode: session.ModeKeyed, MinCell: 11})
	require.NoError(t, err)
	spec, err := session.ParseSpec(c.Spec)
	require.NoError(t, err)
	var ins []party.Input
	for _, p := range c.Parties {
		m, err := party.ParseMapping(p.Mapping)
		require.NoError(t, err)
		recs, err := party.ReadCSV(bytes.NewReader(p.CSV), spec, p.Name, party.LoadOptions{Mapping: m})
		require.NoError(t, err)
		ins = append(ins, party.Input{Name: p.Name, Records: recs})
	}
	out, err := party.RunLocal(context.Background(), spec, ins, party.Config{})
	require.NoError(t, err)
	b, err := json.Marshal(out.Result)
	require.NoError(t, err)
	return b
}

func distinctColours(img image.Image) int {
	seen := map[[3]uint32]bool{}
	bnd := img.Bounds()
	for y := bnd.Min.Y; y < bnd.Max.Y; y += 3 {
		for x := bnd.Min.X; x < bnd.Max.X; x += 3 {
			r, g, b, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r >> 8, g >> 8, b >> 8}] = true
		}
	}
	return len(seen)
}
