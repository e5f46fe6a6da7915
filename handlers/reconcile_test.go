package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"iter"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/handlers"
	"github.com/dimirror/dimirror/shared/reconcile"
	rt "github.com/dimirror/dimirror/shared/reconcile/reconciletest"
	"github.com/dimirror/dimirror/shared/replication"
)

const apiKey = "handlers-test-key-0001"

// fixture is the functions over the in-memory fakes: a source with two models, two empty targets.
type fixture struct {
	app   *handlers.Functions
	rec   *reconcile.Reconciler
	src   *rt.Resource
	store *rt.Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	c := rt.NewClock()
	w := rt.NewWorld(c, "source", "westus2", "eastus")
	f := &fixture{src: w.Resource("source"), store: rt.NewStore()}
	f.src.Seed(replication.KindModel, "invoice-v1")
	f.src.Seed(replication.KindModel, "receipt-v2")
	engine, err := replication.NewEngine(replication.Config{Source: f.src, SourceName: "source.example",
		Targets: map[string]replication.Resource{"westus2": w.Resource("westus2"), "eastus": w.Resource("eastus")},
		Store:   f.store, Queue: &rt.Queue{}, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := reconcile.New(reconcile.Reconciler{Engine: engine, Source: f.src, Meta: f.store, Now: c.Now,
		Targets: map[string]reconcile.Lister{"westus2": w.Resource("westus2"), "eastus": w.Resource("eastus")}})
	if err != nil {
		t.Fatal(err)
	}
	f.rec = rec
	f.app = &handlers.Functions{Replicas: engine, Requests: engine, Copies: engine, Poller: engine, Reconciler: rec}
	return f
}

// timerPayload is the project's recorded timer invocation under the binding name "timer".
func timerPayload(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile("../testdata/functions/payloads/timer-request.derived.json")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Replace(raw, []byte(`"myTimer"`), []byte(`"timer"`), 1)
}

func invoke(t *testing.T, h http.Handler, function string, payload []byte) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/"+function, bytes.NewReader(payload)))
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s answered non-JSON %d: %s", function, rec.Code, rec.Body)
	}
	return rec.Code, out
}

func logs(out map[string]any) string {
	l, _ := out["Logs"].([]any)
	var s []string
	for _, x := range l {
		s = append(s, x.(string))
	}
	return strings.Join(s, "\n")
}

func TestTimerFunctionsInTheCustomHandler(t *testing.T) {
	f := newFixture(t)
	h := f.app.CustomHandler()
	code, out := invoke(t, h, "sweep", timerPayload(t))
	if code != http.StatusOK || logs(out) != "sweep: 4 missing, 0 stale, 0 orphaned, 0 failed, 0 inflight, 0 conflict, 0 expiring; 0 errors" {
		t.Fatalf("POST /sweep = %d %v", code, out)
	}
	if r, _ := f.store.Row(replication.Key{Kind: replication.KindModel, SourceID: "invoice-v1", Target: "eastus"}); r.Status != replication.StatusAuthorized {
		t.Errorf("the sweep did not start the copy: %s", r.Status)
	}
	f.src.Build(replication.KindModel, "trained-v3")
	code, out = invoke(t, h, "watch", timerPayload(t))
	if code != http.StatusOK || !strings.HasPrefix(logs(out), "watch: 2 missing") || !strings.Contains(logs(out), "1 operations read") {
		t.Fatalf("POST /watch = %d %v", code, out)
	}
	for _, fn := range []string{"watch", "sweep"} {
		if code, out := invoke(t, h, fn, []byte(`{"Data":{"req":{}},"Metadata":{}}`)); code != http.StatusBadRequest || !strings.Contains(logs(out), "timer") {
			t.Errorf("%s without its timer binding: %d %v", fn, code, out)
		}
	}
	f.src.Fail("Items", errors.New("the source is unreachable"))
	if code, out := invoke(t, h, "sweep", timerPayload(t)); code != http.StatusInternalServerError || !strings.Contains(logs(out), "the source is unreachable") {
		t.Errorf("a failed sweep: %d %v", code, out)
	}
}

func TestSummaryThroughTheStatusFunction(t *testing.T) {
	f := newFixture(t)
	if _, err := f.app.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	req := map[string]any{"Url": "http://localhost:7071/api/replications/summary", "Method": "GET", "Query": map[string]any{},
		"Headers": map[string][]string{"User-Agent": {"curl/8.5.0"}}, "Params": map[string]string{"kind": "summary"}, "Identities": []any{}}
	payload, _ := json.Marshal(map[string]any{"Data": map[string]any{"req": req},
		"Metadata": map[string]any{"kind": `"summary"`, "sys": map[string]any{"MethodName": "status", "UtcNow": "2026-05-01T12:00:00Z", "RandGuid": "5f1c6a2e-1111-4a1d-9a5b-0c6a6f6b7e8d"}}})
	code, out := invoke(t, f.app.CustomHandler(), "status", payload)
	res, _ := out["Outputs"].(map[string]any)["res"].(map[string]any)
	if code != http.StatusOK || res == nil || res["statusCode"] != 200.0 {
		t.Fatalf("status/summary = %d %v", code, out)
	}
	var s reconcile.Summary
	if err := json.Unmarshal([]byte(res["body"].(string)), &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Targets) != 2 || s.Targets[0].Replicas["authorized"] != 2 || s.LastSweep == nil || s.LastSweep.Planned[reconcile.Missing] != 4 {
		t.Errorf("summary %+v", s)
	}
}

func TestSummaryRoute(t *testing.T) {
	f := newFixture(t)
	api, err := f.app.API(apiKey)
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, key string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(method, path, nil)
		if key != "" {
			req.Header.Set("x-functions-key", key)
		}
		api.ServeHTTP(rec, req)
		return rec
	}
	rec := do("GET", "/api/replications/summary", apiKey)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"targets":[{"target":"eastus"`) || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Errorf("GET summary: %d %s", rec.Code, rec.Body)
	}
	if rec := do("POST", "/api/replications/summary", apiKey); rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET" {
		t.Errorf("POST summary: %d %s", rec.Code, rec.Body)
	}
	if rec := do("GET", "/api/replications/summary", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("without the key: %d", rec.Code)
	}
	// {kind}/{id} still routes to the status of one source.
	if rec := do("GET", "/api/replications/model/invoice-v1", apiKey); rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "ReplicationNotFound") {
		t.Errorf("one source: %d %s", rec.Code, rec.Body)
	}
	f.store.Fail("List", errors.New("table down"))
	if rec := do("GET", "/api/replications/summary", apiKey); rec.Code != http.StatusServiceUnavailable || strings.Contains(rec.Body.String(), "table down") {
		t.Errorf("table down: %d %s", rec.Code, rec.Body)
	}
	bare := &handlers.Functions{Replicas: f.app.Replicas, Requests: f.app.Requests, Copies: f.app.Copies, Poller: f.app.Poller}
	rec = httptest.NewRecorder()
	bare.Summary(rec, httptest.NewRequest("GET", "/api/replications/summary", nil))
	if rec.Code != http.StatusNotImplemented {
		t.Errorf("without a reconciler: %d %s", rec.Code, rec.Body)
	}
	if _, err := bare.Watch(context.Background()); err == nil {
		t.Error("a watch without a reconciler did not fail")
	}
}

// stuckSource lists operations until the pass's deadline ends it.
type stuckSource struct{ reconcile.Lister }

func (stuckSource) Operations(ctx context.Context) iter.Seq2[reconcile.Operation, error] {
	return func(yield func(reconcile.Operation, error) bool) {
		<-ctx.Done()
		yield(reconcile.Operation{}, ctx.Err())
	}
}

func TestPassesAreBounded(t *testing.T) {
	f := newFixture(t)
	f.rec.Resources[f.rec.Engine.DefaultSource()] = stuckSource{f.src}
	f.app.WatchTimeout = 50 * time.Millisecond
	if _, err := f.app.Watch(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a stuck watch ended with %v, want its deadline", err)
	}
}
