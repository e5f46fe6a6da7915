package reconcile_test

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dimirror/dimirror/shared/reconcile"
	"github.com/dimirror/dimirror/shared/replication"
)

func (e *env) authorizations() int {
	return e.west.Calls("AuthorizeCopy") + e.east.Calls("AuthorizeCopy")
}

func TestWatchRequestsWhatNewBuildsMade(t *testing.T) {
	e := newEnv(t)
	if p := e.watch(); len(p.Entries) != 0 || p.Watermark != nil {
		t.Fatalf("first watch on an idle source: %v, watermark %v", entries(p), p.Watermark)
	}
	e.after(time.Minute)
	e.src.Build(model, "invoice-v2")
	e.src.Build(classifier, "router-v2")
	built := e.clock.Now()
	p := e.watch()
	sameLines(t, "plan", entries(p), []string{
		"missing start classifier router-v2 eastus",
		"missing start classifier router-v2 westus2",
		"missing start model invoice-v2 eastus",
		"missing start model invoice-v2 westus2",
	})
	if p.Operations != 2 || p.Watermark == nil || !p.Watermark.Equal(built) {
		t.Errorf("operations %d watermark %v, want 2 and %s", p.Operations, p.Watermark, built)
	}
	for _, en := range p.Entries {
		if en.Result != "authorized" {
			t.Errorf("%s %s: %s", en.SourceID, en.Target, en.Result)
		}
	}
	e.drain()
	auths := e.authorizations()
	e.after(10 * time.Second) // within the overlap: the same operations are read again
	if p := e.watch(); len(p.Entries) != 0 || p.Operations != 2 {
		t.Errorf("second watch: %v, %d operations", entries(p), p.Operations)
	}
	reads := e.src.Calls("GetModel")
	e.after(2 * time.Minute)
	if p := e.watch(); len(p.Entries) != 0 || e.src.Calls("GetModel") != reads {
		t.Errorf("an idle source: entries %v, %d requests again", entries(p), e.src.Calls("GetModel")-reads)
	}
	if e.authorizations() != auths {
		t.Error("watching again authorized copies again")
	}
	for _, target := range []string{"westus2", "eastus"} {
		if _, ok := e.world.Resource(target).Item(model, "invoice-v2"); !ok {
			t.Errorf("%s lacks the new model", target)
		}
	}
	var st struct {
		Watermark time.Time `json:"watermark"`
	}
	raw, _ := e.store.Meta("watch")
	if err := json.Unmarshal(raw, &st); err != nil || !st.Watermark.Equal(built) {
		t.Errorf("stored watermark %s (%v), want %s", st.Watermark, err, built)
	}
}

func TestWatchFollowsABuildThatFinishesAfterTheWatermarkMoved(t *testing.T) {
	e := newEnv(t)
	slow := e.src.StartBuild(model, "slow-neural")
	if p := e.watch(); p.Running != 1 || len(p.Entries) != 0 {
		t.Fatalf("running %d, entries %v", p.Running, entries(p))
	}
	e.after(2 * time.Hour)
	e.src.Build(model, "fast")
	p := e.watch()
	sameLines(t, "second", entries(p), []string{"missing start model fast eastus", "missing start model fast westus2"})
	if p.Running != 1 {
		t.Errorf("running %d", p.Running)
	}
	e.after(2 * time.Hour)
	e.src.FinishBuild(slow)
	reads := e.src.Calls("Operation")
	p = e.watch()
	sameLines(t, "third", entries(p), []string{"missing start model slow-neural eastus", "missing start model slow-neural westus2"})
	if p.Running != 0 || e.src.Calls("Operation") != reads+1 {
		t.Errorf("running %d, operations read by id %d", p.Running, e.src.Calls("Operation")-reads)
	}
}

func TestWatchCarriesOnWhenTheWatermarkOperationExpired(t *testing.T) {
	e := newEnv(t)
	e.src.Build(model, "first")
	e.watch()
	e.drain()
	e.src.ForgetOperations() // kept about a day by the service
	e.after(30 * time.Hour)
	e.src.Build(model, "second")
	p := e.watch()
	sameLines(t, "plan", entries(p), []string{"missing start model second eastus", "missing start model second westus2"})
}

func TestWatchFirstPassLooksBackAnHour(t *testing.T) {
	e := newEnv(t)
	e.src.Build(model, "yesterday")
	e.after(2 * time.Hour)
	e.src.Build(model, "recent")
	p := e.watch()
	sameLines(t, "plan", entries(p), []string{"missing start model recent eastus", "missing start model recent westus2"})
}

func TestWatchComposedModelFollowsItsDependencies(t *testing.T) {
	e := newEnv(t)
	e.src.Build(model, "part-a")
	e.src.Build(classifier, "splitter")
	e.src.Build(model, "bundle", reconcile.Dependency{Kind: model, ID: "part-a"}, reconcile.Dependency{Kind: classifier, ID: "splitter"})
	p := e.watch()
	sameLines(t, "plan", entries(p), []string{
		"missing start classifier splitter eastus",
		"missing start classifier splitter westus2",
		"missing wait model bundle eastus",
		"missing wait model bundle westus2",
		"missing start model part-a eastus",
		"missing start model part-a westus2",
	})
	if p.Waiting != 1 {
		t.Errorf("waiting %d", p.Waiting)
	}
	e.drain()
	e.after(5 * time.Second)
	p = e.watch()
	sameLines(t, "next pass", entries(p), []string{"missing start model bundle eastus", "missing start model bundle westus2"})
	if p.Waiting != 0 {
		t.Errorf("still waiting: %d", p.Waiting)
	}
	e.drain()
	for _, target := range []string{"westus2", "eastus"} {
		bundle := e.row(model, "bundle", target)
		part := e.row(model, "part-a", target)
		if bundle.Status != replication.StatusSucceeded || part.CompletedAt.After(bundle.RequestedAt) {
			t.Errorf("%s: bundle %s requested %s, part verified %s", target, bundle.Status, bundle.RequestedAt, part.CompletedAt)
		}
	}
	raw, _ := e.store.Meta("waiting")
	if strings.Contains(string(raw), "bundle") {
		t.Errorf("the waiting list still holds the composed model: %s", raw)
	}
}

func TestWatchWithoutAnOperationList(t *testing.T) {
	e := newEnv(t)
	e.src.NoOperations = true // v2.1
	e.src.Build(model, "m1")
	p := e.watch()
	if len(p.Entries) != 0 || !strings.Contains(strings.Join(p.Notes, " "), "found by the sweep alone") {
		t.Errorf("entries %v notes %v", entries(p), p.Notes)
	}
}

func TestWatchKeepsTheWatermarkWhenARequestFails(t *testing.T) {
	e := newEnv(t)
	e.src.Build(model, "model-1")
	e.store.Fail("Get", errors.New("table unavailable"))
	p := e.watch()
	if p.Errors != 1 || p.Watermark != nil || !strings.HasPrefix(p.Entries[0].Result, "error: ") {
		t.Fatalf("errors %d watermark %v entries %+v", p.Errors, p.Watermark, p.Entries)
	}
	// The targets are authorized side by side: the one whose row read failed is missing, the
	// other may already be in flight. The retry starts what is missing.
	failed := ""
	for _, target := range []string{"eastus", "westus2"} {
		if _, ok := e.store.Row(replication.Key{Kind: model, SourceID: "model-1", Target: target}); !ok {
			failed = target
		}
	}
	if failed == "" {
		t.Fatal("both targets have rows after a failed request")
	}
	e.after(10 * time.Minute)
	p = e.watch()
	var started []string
	for _, line := range entries(p) {
		if strings.HasPrefix(line, "missing start ") {
			started = append(started, line)
		}
	}
	sameLines(t, "retry", started, []string{"missing start model model-1 " + failed})
	for _, target := range []string{"eastus", "westus2"} {
		if r := e.row(model, "model-1", target); !r.Status.InFlight() && r.Status != replication.StatusSucceeded {
			t.Errorf("%s after the retry: %q", target, r.Status)
		}
	}
}

func TestWatchFilters(t *testing.T) {
	e := newEnv(t)
	e.rec.Filter = reconcile.Filter{Include: []string{"invoice-*"}}
	e.src.Build(model, "invoice-x")
	e.src.Build(model, "receipt-x")
	p := e.watch()
	sameLines(t, "plan", entries(p), []string{"missing start model invoice-x eastus", "missing start model invoice-x westus2"})
	if !strings.Contains(strings.Join(p.Notes, " "), "1 finished build(s) left out") {
		t.Errorf("notes %v", p.Notes)
	}
}

func TestWatchRebuiltSource(t *testing.T) {
	for _, replace := range []bool{false, true} {
		t.Run(map[bool]string{false: "reported stale", true: "replaced"}[replace], func(t *testing.T) {
			e := newEnv(t, func(p *replication.Policy) { p.Replace = replace })
			e.src.Seed(model, "invoice")
			e.replicate(model, "invoice")
			e.after(time.Hour)
			e.src.Build(model, "invoice") // rebuilt under the same id
			p := e.watch()
			want := []string{"stale report model invoice eastus", "stale report model invoice westus2"}
			if replace {
				want = []string{"missing start model invoice eastus", "missing start model invoice westus2"}
			}
			sameLines(t, "plan", entries(p), want)
		})
	}
}

// Two instances run the timers at once: every copy still starts once, and the state survives.
func TestConcurrentWatchesStartEachCopyOnce(t *testing.T) {
	e := newEnv(t)
	other := *e.rec
	for _, id := range []string{"m1-x", "m2-x", "m3-x", "m4-x", "m5-x"} {
		e.src.Build(model, id)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, r := range []*reconcile.Reconciler{e.rec, &other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.Watch(e.ctx)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := e.west.Calls("AuthorizeCopy"); n != 5 {
		t.Errorf("westus2 issued %d authorizations for 5 models", n)
	}
	if e.queue.Len() != 10 {
		t.Errorf("%d copy messages, want 10", e.queue.Len())
	}
	e.drain()
	for _, id := range []string{"m1-x", "m5-x"} {
		if r := e.row(model, id, "eastus"); r.Status != replication.StatusSucceeded || r.Attempt != 1 {
			t.Errorf("%s: %s attempt %d", id, r.Status, r.Attempt)
		}
	}
}

func TestWaitingListMergesExpiresAndForgetsDeletedModels(t *testing.T) {
	setup := func(t *testing.T) *env {
		e := newEnv(t)
		e.src.Seed(model, "part-a")
		e.src.Seed(model, "bundle", reconcile.Dependency{Kind: model, ID: "part-a"})
		e.sweep(false) // part-a starts, bundle waits
		e.after(time.Minute)
		e.sweep(false) // the same again: one entry, not two
		raw, _ := e.store.Meta("waiting")
		if strings.Count(string(raw), `"id":"bundle"`) != 1 || !strings.Contains(string(raw), `"targets":["eastus","westus2"]`) {
			t.Fatalf("waiting list %s", raw)
		}
		return e
	}
	t.Run("expires", func(t *testing.T) {
		e := setup(t)
		e.after(25 * time.Hour)
		p := e.watch()
		if !strings.Contains(strings.Join(p.Notes, " "), `composed model "bundle" waited more than 24h0m0s`) {
			t.Errorf("notes %v", p.Notes)
		}
		if raw, _ := e.store.Meta("waiting"); strings.Contains(string(raw), "bundle") {
			t.Errorf("the expired entry is still there: %s", raw)
		}
	})
	t.Run("deleted from the source", func(t *testing.T) {
		e := setup(t)
		e.drain()
		e.src.Remove(model, "bundle")
		p := e.watch()
		if p.Errors != 0 || len(p.Entries) != 0 {
			t.Errorf("errors %d entries %v", p.Errors, entries(p))
		}
		if raw, _ := e.store.Meta("waiting"); strings.Contains(string(raw), "bundle") {
			t.Errorf("the deleted model still waits: %s", raw)
		}
	})
}

func TestMetaWritesRetryLostRaces(t *testing.T) {
	e := newEnv(t)
	e.src.Build(model, "model-1")
	// Every write loses its race: the watch reports the failure instead of looping.
	for range 5 {
		e.store.Fail("PutMeta", replication.ErrConflict)
	}
	if _, err := e.rec.Watch(e.ctx); err == nil || !strings.Contains(err.Error(), "keeps changing") {
		t.Errorf("watch with every write conflicting: %v", err)
	}
	// One lost race is retried on the fresh row.
	e.store.Fail("PutMeta", replication.ErrConflict)
	e.after(time.Minute)
	if _, err := e.rec.Watch(e.ctx); err != nil {
		t.Errorf("watch with one conflict: %v", err)
	}
	if _, ok := e.store.Meta("watch"); !ok {
		t.Error("no watch state written")
	}
}
