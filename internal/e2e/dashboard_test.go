package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/internal/devstack"
)

// chromiumPath is Debian's chromium, which `make test` installs (make browser-deps) when missing.
const chromiumPath = "/usr/bin/chromium"

// screenshotDir is where the browser test leaves its screenshot: DIMIRROR_TEST_OUTPUT, or the
// repository's bin/test-output (ignored by git).
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("DIMIRROR_TEST_OUTPUT"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "bin", "test-output")
}

// rendered is what the page shows, read from its DOM.
type rendered struct {
	Href     string     `json:"href"`
	Rows     []string   `json:"rows"`
	Cells    [][]string `json:"cells"` // per row: each target cell's data-status
	Failed   []string   `json:"failed"`
	Head     []string   `json:"head"`
	Cards    []string   `json:"cards"`
	CardText string     `json:"cardText"`
	Points   int        `json:"points"`
	RPOLine  int        `json:"rpoLine"`
	Fetched  []string   `json:"fetched"`
}

const readPage = `(() => {
  const rows = [...document.querySelectorAll("#matrix-body tr.item-row")];
  return JSON.stringify({
    href: location.href,
    rows: rows.map(r => r.dataset.kind + ":" + r.dataset.id),
    cells: rows.map(r => [...r.querySelectorAll("td.cell")].map(c => c.dataset.target + "=" + c.dataset.status)),
    failed: [...document.querySelectorAll("td.cell.failed .reason")].map(e => e.closest("tr").dataset.id + "@" + e.closest("td").dataset.target + ": " + e.textContent),
    head: [...document.querySelectorAll("#matrix-head th")].map(th => th.textContent),
    cards: [...document.querySelectorAll("#freshness .target-card")].map(c => c.dataset.target),
    cardText: document.getElementById("freshness").innerText,
    points: document.querySelectorAll("svg#lag-chart circle.point").length,
    rpoLine: document.querySelectorAll("svg#lag-chart line.rpo-line").length,
    fetched: performance.getEntriesByType("resource").map(e => e.name),
  });
})()`

// The status page in a real headless Chromium, served by `dimirror run` on the local stack: a
// model and a classifier replicated into two targets, the model's copy into eastus failed on
// purpose (eastus already holds someone else's invoice-v1). The page shows one row per item, one
// cell per target, the failed cell's reason, the freshness panel and the lag chart; it keeps
// the key out of its address and of every request's URL.
func TestDashboardInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing: run make browser-deps (make test does), or apt-get install chromium", chromiumPath)
	}
	e := startStack(t, devstack.Options{})
	// Someone else's invoice-v1 in eastus, built a moment after the source's (the service's
	// timestamps are whole seconds): not the source's version, so the copy fails TargetExists.
	time.Sleep(1100 * time.Millisecond)
	if err := e.stack.DI.Resource("eastus").Seed(didev.Seed{Resource: "eastus", Kind: didev.KindModel, ID: "invoice-v1", Description: "someone else's"}); err != nil {
		t.Fatal(err)
	}
	e.run()
	for _, body := range []string{`{"sourceId":"invoice-v1"}`, `{"kind":"classifier","sourceId":"router-v1"}`} {
		if st, _, b := e.call("POST", "/api/replications", body, ""); st != http.StatusAccepted && st != http.StatusOK {
			t.Fatalf("POST %s: %d %s", body, st, b)
		}
	}
	e.waitReplicas("model", "invoice-v1", 30*time.Second)
	e.waitReplicas("classifier", "router-v1", 30*time.Second)

	dir := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:0:0],
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(1400, 1000),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	// Each step under the test's deadline; the page has loaded once its script marks the body.
	if _, err := chromedp.Run(ctx, chromedp.Navigate(e.base+"/api/dashboard?code="+devstack.APIKey)); err != nil {
		t.Fatalf("chromium: navigate: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.WaitVisible(chromedp.CSS(`body[data-loaded="true"]`))); err != nil {
		t.Fatalf("chromium: the page did not load: %v", err)
	}
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](readPage))
	if err != nil {
		t.Fatalf("chromium: read the page: %v", err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG (a lower quality is JPEG)
	if err != nil {
		t.Fatalf("chromium: screenshot: %v", err)
	}
	var got rendered
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatal(err)
	}
	out := screenshotDir(t)
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(out, "dashboard.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))

	if strings.Contains(got.Href, "code=") || !strings.HasSuffix(got.Href, "/api/dashboard") {
		t.Errorf("the address still holds the key: %s", got.Href)
	}
	for _, u := range got.Fetched {
		if strings.Contains(u, devstack.APIKey) || strings.Contains(u, "code=") {
			t.Errorf("a request carried the key in its URL: %s", u)
		}
	}
	if want := []string{"classifier:router-v1", "model:invoice-v1"}; strings.Join(got.Rows, ",") != strings.Join(want, ",") {
		t.Errorf("rows %v, want %v", got.Rows, want)
	}
	if want := "Kind,Id,eastus,westus2"; strings.Join(got.Head, ",") != want {
		t.Errorf("header %v, want %s", got.Head, want)
	}
	wantCells := [][]string{{"eastus=succeeded", "westus2=succeeded"}, {"eastus=failed", "westus2=succeeded"}}
	for i, row := range got.Cells {
		if i >= len(wantCells) || strings.Join(row, ",") != strings.Join(wantCells[i], ",") {
			t.Errorf("row %d cells %v, want %v", i, row, wantCells)
		}
	}
	if len(got.Failed) != 1 || !strings.HasPrefix(got.Failed[0], "invoice-v1@eastus: TargetExists: ") {
		t.Errorf("failed cells %v, want invoice-v1 in eastus with TargetExists", got.Failed)
	}
	if strings.Join(got.Cards, ",") != "eastus,westus2" {
		t.Errorf("freshness cards %v", got.Cards)
	}
	for _, want := range []string{"Lag 24 h", "p50", "Made within RPO", "100 %", "Failures 24 h", "At risk now", "Last sweep", "(objective 15.0 min)"} {
		if !strings.Contains(got.CardText, want) {
			t.Errorf("the freshness panel lacks %q:\n%s", want, got.CardText)
		}
	}
	// Three copies made (two in westus2, one in eastus): three points, and the objective's line.
	if got.Points != 3 || got.RPOLine != 1 {
		t.Errorf("chart: %d points, %d RPO lines", got.Points, got.RPOLine)
	}
	e.assertNoSecrets()
}
