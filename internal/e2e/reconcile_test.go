package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/handlers"
	"github.com/dimirror/dimirror/internal/app"
	"github.com/dimirror/dimirror/internal/devstack"
	"github.com/dimirror/dimirror/shared/reconcile"
	"github.com/dimirror/dimirror/shared/replication"
)

// never is a schedule that does not fire during a test.
const never = devstack.Never

// reconcileStack runs `dimirror run` with the watch and sweep on the given schedules.
func reconcileStack(t *testing.T, watch, sweep string, settings map[string]string, di func(*didev.Options)) *env {
	t.Helper()
	s := map[string]string{"DIMIRROR_WATCH_SCHEDULE": watch, "DIMIRROR_SWEEP_SCHEDULE": sweep}
	for k, v := range settings {
		s[k] = v
	}
	e := startStack(t, devstack.Options{Settings: s, DI: di})
	e.run()
	return e
}

// diPost sends a management request to the source's Document Intelligence API, as a training
// pipeline would: builds and composes are not dimirror's business.
func (e *env) diPost(path, body string) {
	e.t.Helper()
	u := e.stack.DI.Endpoint("source") + "/documentintelligence" + path + "?api-version=2024-11-30"
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Ocp-Apim-Subscription-Key", devstack.Key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
	}
}

const trainingBlob = `{"containerUrl":"https://acct.blob.core.windows.net/training"}`

func (e *env) trainModel(id string) {
	e.diPost("/documentModels:build", fmt.Sprintf(`{"modelId":%q,"buildMode":"template","azureBlobSource":%s}`, id, trainingBlob))
}

func (e *env) trainClassifier(id string) {
	e.diPost("/documentClassifiers:build", fmt.Sprintf(`{"classifierId":%q,"docTypes":{"invoice":{"azureBlobSource":%s},"receipt":{"azureBlobSource":%s}}}`, id, trainingBlob, trainingBlob))
}

// waitBoth waits until the source's replicas in both targets are verified or failed (the watch
// may request a composed model in one target before the other).
func (e *env) waitBoth(kind, id string) handlers.ReplicationAnswer {
	e.t.Helper()
	var ans handlers.ReplicationAnswer
	e.eventually(30*time.Second, kind+" "+id+" settled in both targets", func() (bool, string) {
		ans = e.waitReplicas(kind, id, 30*time.Second)
		return len(ans.Replicas) == 2, fmt.Sprintf("%+v", ans)
	})
	return ans
}

// eventually polls cond until it holds or within passes.
func (e *env) eventually(within time.Duration, what string, cond func() (bool, string)) {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not within %s; last: %s", what, within, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *env) summary() reconcile.Summary {
	e.t.Helper()
	st, _, b := e.call("GET", "/api/replications/summary", "", "")
	if st != http.StatusOK {
		e.t.Fatalf("summary: %d %s", st, b)
	}
	return decode[reconcile.Summary](e.t, b)
}

// holds reports what a target holds under id.
func (e *env) holds(target string, kind didev.Kind, id string) (didev.Model, bool) {
	m, ok := e.stack.DI.Resource(target).Model(kind, id)
	return m, ok && m.Status == "ready"
}

// sweptAfter waits for a sweep that started after t and returns its report.
func (e *env) sweptAfter(t time.Time) *reconcile.Report {
	e.t.Helper()
	var rep *reconcile.Report
	e.eventually(20*time.Second, "a sweep after "+t.Format(time.TimeOnly), func() (bool, string) {
		rep = e.summary().LastSweep
		if rep == nil {
			return false, "no sweep yet"
		}
		return rep.Started.After(t), fmt.Sprintf("last sweep started %s", rep.Started)
	})
	return rep
}

// webhookCalls counts POST /api/replications in the app's request log.
func (e *env) webhookCalls() int {
	n := 0
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"http"`) && strings.Contains(line, `"method":"POST"`) && strings.Contains(line, `"path":"/api/replications"`) {
			n++
		}
	}
	return n
}

// Models and classifiers trained on the source reach both targets with no webhook call: the watch
// sees the builds. A composed model follows once its parts are verified in each target.
func TestRunWatchReplicatesWhatIsTrained(t *testing.T) {
	t.Parallel() // mostly waiting on timers: the three reconciliation stacks share the wait
	e := reconcileStack(t, "*/1 * * * * *", never, nil, func(o *didev.Options) {
		o.Seeds = append(o.Seeds,
			didev.Seed{Resource: "source", Kind: didev.KindModel, ID: "part-a"},
			didev.Seed{Resource: "source", Kind: didev.KindModel, ID: "part-b"})
	})
	e.trainModel("trained-v1")
	e.trainClassifier("splitter-v1")
	for _, c := range []struct{ kind, id string }{{"model", "trained-v1"}, {"classifier", "splitter-v1"}} {
		for _, r := range e.waitBoth(c.kind, c.id).Replicas {
			if r.Status != "succeeded" {
				t.Fatalf("%s %s → %s: %s %+v", c.kind, c.id, r.Target, r.Status, r.Error)
			}
		}
	}
	// Composed of two seeded models (never requested by anyone) and the classifier just trained.
	e.diPost("/documentModels:compose", `{"modelId":"bundle-v1","classifierId":"splitter-v1","docTypes":{"a":{"modelId":"part-a"},"b":{"modelId":"part-b"}}}`)
	for _, r := range e.waitBoth("model", "bundle-v1").Replicas {
		if r.Status != "succeeded" {
			t.Fatalf("bundle-v1 → %s: %s %+v", r.Target, r.Status, r.Error)
		}
		for _, dep := range []string{"part-a", "part-b"} {
			parts := e.waitBoth("model", dep)
			for _, p := range parts.Replicas {
				if p.Target == r.Target && (p.CompletedAt == nil || p.CompletedAt.After(*r.RequestedAt)) {
					t.Errorf("%s in %s was verified at %v, after the composed model was requested at %v", dep, r.Target, p.CompletedAt, r.RequestedAt)
				}
			}
		}
	}
	for _, target := range []string{"westus2", "eastus"} {
		for _, it := range []struct {
			kind didev.Kind
			id   string
		}{{didev.KindModel, "trained-v1"}, {didev.KindClassifier, "splitter-v1"}, {didev.KindModel, "bundle-v1"}, {didev.KindModel, "part-b"}} {
			if _, ok := e.holds(target, it.kind, it.id); !ok {
				t.Errorf("%s lacks %s %s", target, it.kind, it.id)
			}
		}
	}
	if n := e.webhookCalls(); n != 0 {
		t.Errorf("%d webhook calls; the watch alone should have done it", n)
	}
	s := e.summary()
	if s.LastWatch == nil || s.LastWatch.Watermark == nil || len(s.Targets) != 2 {
		t.Fatalf("summary %+v", s)
	}
	for _, f := range s.Targets {
		if f.Replicas["succeeded"] != 5 || f.Lag.Count != 5 || f.Lag.MaxSeconds <= 0 || f.Lag.MaxSeconds > 60 {
			t.Errorf("%s figures %+v", f.Target, f)
		}
	}
	e.assertNoSecrets()
}

// The sweep restores a copy deleted from a target, reports a retrained model as stale and a model
// gone from the source as orphaned (deleting neither), and copies only what the filters select.
func TestRunSweepRestoresAndReports(t *testing.T) {
	t.Parallel() // mostly waiting on timers: the three reconciliation stacks share the wait
	e := reconcileStack(t, never, "*/1 * * * * *", map[string]string{"DIMIRROR_EXCLUDE": "receipt-*"}, nil)
	for _, c := range []struct{ kind, id string }{{"model", "invoice-v1"}, {"classifier", "router-v1"}} {
		for _, r := range e.waitReplicas(c.kind, c.id, 30*time.Second).Replicas {
			if r.Status != "succeeded" {
				t.Fatalf("%s %s → %s: %s", c.kind, c.id, r.Target, r.Status)
			}
		}
	}
	// In sync: a sweep plans nothing, and the excluded model was never copied.
	rep := e.sweptAfter(time.Now())
	if drift(rep) != 0 {
		t.Fatalf("not in sync: %+v", rep)
	}
	for _, target := range []string{"westus2", "eastus"} {
		if _, ok := e.holds(target, didev.KindModel, "receipt-v2"); ok {
			t.Errorf("%s holds receipt-v2, which DIMIRROR_EXCLUDE leaves out", target)
		}
	}

	// A copy deleted from a target comes back.
	if err := e.stack.DI.Resource("westus2").Delete(didev.KindModel, "invoice-v1"); err != nil {
		t.Fatal(err)
	}
	e.eventually(20*time.Second, "invoice-v1 restored in westus2", func() (bool, string) {
		_, ok := e.holds("westus2", didev.KindModel, "invoice-v1")
		return ok, "not there"
	})
	restored := e.waitReplicas("model", "invoice-v1", 20*time.Second)
	for _, r := range restored.Replicas {
		if r.Target == "westus2" && (r.Status != "succeeded" || r.Attempt != 2) {
			t.Errorf("restored replica %+v", r)
		}
	}

	// Retrained on the source: stale, reported, left alone. Removed from the source: orphaned,
	// reported, left alone.
	old, _ := e.holds("eastus", didev.KindModel, "invoice-v1")
	src := e.stack.DI.Resource("source")
	if err := src.Delete(didev.KindModel, "invoice-v1"); err != nil {
		t.Fatal(err)
	}
	if err := src.Train(didev.KindModel, "invoice-v1"); err != nil {
		t.Fatal(err)
	}
	if err := src.Delete(didev.KindClassifier, "router-v1"); err != nil {
		t.Fatal(err)
	}
	e.eventually(20*time.Second, "a sweep reporting the stale and orphaned copies", func() (bool, string) {
		rep := e.summary().LastSweep
		return rep != nil && rep.Planned[reconcile.Stale] == 2 && rep.Planned[reconcile.Orphaned] == 2, fmt.Sprintf("%+v", rep)
	})
	for _, target := range []string{"westus2", "eastus"} {
		if _, ok := e.holds(target, didev.KindClassifier, "router-v1"); !ok {
			t.Errorf("the orphaned classifier was deleted from %s without DIMIRROR_PRUNE", target)
		}
	}
	if now, _ := e.holds("eastus", didev.KindModel, "invoice-v1"); now.Tags[replication.TagSourceCreated] != old.Tags[replication.TagSourceCreated] {
		t.Errorf("the stale copy was replaced without DIMIRROR_REPLACE")
	}
	s := e.summary()
	if s.LastSweep.PerTarget["westus2"][reconcile.Stale] != 1 || s.Targets[1].Planned[reconcile.Orphaned] != 1 {
		t.Errorf("per target: %+v / %+v", s.LastSweep.PerTarget, s.Targets)
	}
	if !strings.Contains(e.logs.String(), `"msg":"freshness"`) {
		t.Error("no freshness event in the log")
	}
	e.assertNoSecrets()
}

func drift(rep *reconcile.Report) int {
	n := 0
	for c, k := range rep.Planned {
		if c.Drift() {
			n += k
		}
	}
	return n
}

// With DIMIRROR_REPLACE and DIMIRROR_PRUNE the sweep replaces the stale copy and deletes the
// orphan, and still never touches a model it did not create.
func TestRunSweepReplacesAndPrunes(t *testing.T) {
	t.Parallel() // mostly waiting on timers: the three reconciliation stacks share the wait
	e := reconcileStack(t, never, "*/1 * * * * *", map[string]string{"DIMIRROR_REPLACE": "true", "DIMIRROR_PRUNE": "true"},
		func(o *didev.Options) {
			o.Seeds = append(o.Seeds, didev.Seed{Resource: "westus2", Kind: didev.KindModel, ID: "hand-made", Description: "not dimirror's"})
		})
	e.waitReplicas("model", "invoice-v1", 30*time.Second)
	e.waitReplicas("classifier", "router-v1", 30*time.Second)
	src := e.stack.DI.Resource("source")
	if err := src.Delete(didev.KindModel, "invoice-v1"); err != nil {
		t.Fatal(err)
	}
	if err := src.Seed(didev.Seed{Kind: didev.KindModel, ID: "invoice-v1"}); err != nil {
		t.Fatal(err)
	}
	retrained, _ := src.Model(didev.KindModel, "invoice-v1")
	if err := src.Delete(didev.KindClassifier, "router-v1"); err != nil {
		t.Fatal(err)
	}
	want := retrained.Created.UTC().Format(time.RFC3339)
	e.eventually(30*time.Second, "the retrained model replaced and the orphan deleted in both targets", func() (bool, string) {
		for _, target := range []string{"westus2", "eastus"} {
			m, ok := e.holds(target, didev.KindModel, "invoice-v1")
			if !ok || m.Tags[replication.TagSourceCreated] != want {
				return false, fmt.Sprintf("%s holds %v", target, m.Tags)
			}
			if _, ok := e.holds(target, didev.KindClassifier, "router-v1"); ok {
				return false, target + " still holds router-v1"
			}
		}
		return true, ""
	})
	if _, ok := e.holds("westus2", didev.KindModel, "hand-made"); !ok {
		t.Error("a model dimirror did not create was deleted")
	}
	if st, _, _ := e.call("GET", "/api/replications/classifier/router-v1", "", ""); st != http.StatusNotFound {
		t.Errorf("the pruned classifier's rows are still there: %d", st)
	}
	e.assertNoSecrets()
}

// The custom handler runs the watch and sweep timers and answers the summary through the status
// function's route (replications/{kind?}/{id?} with kind "summary").
func TestServeReconcileFunctions(t *testing.T) {
	e := startStack(t, devstack.Options{})
	h := e.serve()
	timer := map[string]any{"Data": map[string]any{"timer": map[string]any{"Schedule": map[string]any{"AdjustForDST": true},
		"ScheduleStatus": nil, "IsPastDue": false}}, "Metadata": map[string]any{"sys": sys("sweep")}}
	st, out := h.post("sweep", timer)
	logs, _ := out["Logs"].([]any)
	if st != http.StatusOK || len(logs) != 1 || !strings.HasPrefix(fmt.Sprint(logs[0]), "sweep: 6 missing") {
		t.Fatalf("POST /sweep = %d %v", st, out)
	}
	st, out = h.post("watch", timer)
	logs, _ = out["Logs"].([]any)
	if st != http.StatusOK || len(logs) != 1 || !strings.HasPrefix(fmt.Sprint(logs[0]), "watch: ") {
		t.Fatalf("POST /watch = %d %v", st, out)
	}
	code, b := h.httpTrigger("status", "GET", "/api/replications/summary", map[string]string{"kind": "summary"}, "")
	if code != http.StatusOK {
		t.Fatalf("summary: %d %s", code, b)
	}
	s := decode[reconcile.Summary](t, b)
	if s.LastSweep == nil || s.LastSweep.Planned[reconcile.Missing] != 6 || len(s.Targets) != 2 || s.Targets[0].Replicas["authorized"] != 3 {
		t.Errorf("summary %s", b)
	}
	if st, out := h.post("sweep", map[string]any{"Data": map[string]any{}}); st != http.StatusBadRequest {
		t.Errorf("a sweep without its timer binding: %d %v", st, out)
	}
}

// The standalone API's summary route and its neighbours.
func TestRunSummaryRoute(t *testing.T) {
	e := reconcileStack(t, never, never, nil, nil)
	if st, _, b := e.call("GET", "/api/replications/summary", "", "-"); st != http.StatusUnauthorized {
		t.Errorf("without the key: %d %s", st, b)
	}
	if st, _, b := e.call("POST", "/api/replications/summary", "", ""); st != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d %s", st, b)
	}
	s := e.summary()
	if s.LastSweep != nil || s.LastWatch != nil || len(s.Targets) != 2 || s.Targets[0].Replicas["succeeded"] != 0 || s.Window != "24h0m0s" {
		t.Errorf("summary of a fresh stack %+v", s)
	}
	// The one-source status route is still there.
	if st, _, _ := e.call("GET", "/api/replications/model/invoice-v1", "", ""); st != http.StatusNotFound {
		t.Errorf("status of an unknown replication: %d", st)
	}
}

// BenchmarkSweep10000Models sweeps a source of 10,000 models whose two targets hold dimirror's
// copies of all of them, with didev's default S0 rate limits (list: 10 per second per resource)
// and the default pacing (9 per second). It reports the wall time of one sweep, the list calls it
// made, the 429s it drew, and the lower bound the brief sets: pages × resources / 10 per second
// (the resources are listed at once, each under its own limit, so the sweep can beat it).
func BenchmarkSweep10000Models(b *testing.B) {
	const n = 10000
	ctx := context.Background()
	var seeds []didev.Seed
	for i := range n {
		seeds = append(seeds, didev.Seed{Resource: "source", Kind: didev.KindModel, ID: fmt.Sprintf("model-%05d", i)})
	}
	st, err := devstack.Start(ctx, devstack.Options{
		Settings: map[string]string{"DIMIRROR_WATCH_SCHEDULE": never, "DIMIRROR_SWEEP_SCHEDULE": never, "DIMIRROR_LOG_LEVEL": "warn"},
		DI:       func(o *didev.Options) { o.Seeds = seeds },
	})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	host := strings.TrimPrefix(st.DI.Endpoint("source"), "http://")
	for _, target := range []string{"westus2", "eastus"} {
		for _, sd := range seeds {
			m, _ := st.DI.Resource("source").Model(didev.KindModel, sd.ID)
			err := st.DI.Resource(target).Seed(didev.Seed{Kind: didev.KindModel, ID: sd.ID, Tags: map[string]string{
				replication.TagSource:        host + "/model/" + sd.ID,
				replication.TagSourceCreated: m.Created.UTC().Format(time.RFC3339),
			}})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	cfg, err := st.Config()
	if err != nil {
		b.Fatal(err)
	}
	a, err := app.New(ctx, cfg, nil, app.Options{NoQueue: true})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close(ctx)
	time.Sleep(1100 * time.Millisecond) // start with full rate budgets
	before := st.DI.Stats()
	b.ResetTimer()
	var plan *reconcile.Plan
	for range b.N {
		if plan, err = a.Handlers.Sweep(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if !plan.InSync() || plan.SourceModels != n {
		b.Fatalf("plan: in sync %t, %d models, %d entries", plan.InSync(), plan.SourceModels, len(plan.Entries))
	}
	after := st.DI.Stats()
	var lists, throttled int64
	maxPerResource := int64(0)
	for name, rs := range after.Resources {
		l := rs.Categories["list"].Requests - before.Resources[name].Categories["list"].Requests
		lists += l
		maxPerResource = max(maxPerResource, l)
		throttled += rs.Categories["list"].Throttled - before.Resources[name].Categories["list"].Throttled
	}
	perSweep := float64(lists) / float64(b.N)
	b.ReportMetric(perSweep, "list-calls/sweep")
	b.ReportMetric(float64(throttled)/float64(b.N), "429s/sweep")
	// The brief's bound: every list call of every resource one after another at 10 per second.
	b.ReportMetric(perSweep/10, "bound-serial-s")
	// Each resource under its own limit, listed at once: the largest resource's calls at 10/s.
	b.ReportMetric(float64(maxPerResource)/float64(b.N)/10, "bound-parallel-s")
}
