package reconcile_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dimirror/dimirror/shared/reconcile"
	"github.com/dimirror/dimirror/shared/replication"
)

const (
	model      = replication.KindModel
	classifier = replication.KindClassifier
)

// mixedWorld builds a source and targets with one case of every category.
func mixedWorld(e *env) {
	e.t.Helper()
	for _, id := range []string{"in-sync", "stale", "gone", "failed-a", "failed-b", "conflict", "inflight", "missing-one"} {
		e.src.Seed(model, id)
	}
	e.src.Seed(model, "prebuilt-layout") // never copied
	e.src.Seed(classifier, "router")
	e.src.Seed(classifier, "router-old")
	now := e.clock.Now()
	e.src.Put(reconcile.Item{Kind: model, ID: "expiring", Created: now.Add(-720 * 24 * time.Hour), Expires: now.Add(10 * 24 * time.Hour)})
	e.replicate(model, "in-sync", "stale", "gone", "expiring")
	e.replicate(classifier, "router", "router-old")

	e.after(time.Hour)
	e.src.Remove(model, "stale")
	e.src.Seed(model, "stale") // retrained under the same id
	e.src.Remove(model, "gone")
	e.src.Remove(classifier, "router-old")
	for _, target := range []string{"westus2", "eastus"} {
		for id, code := range map[string]string{"failed-a": "InternalServerError", "failed-b": "DataProtectionTransformServiceError"} {
			e.store.Put(replication.Replica{Key: replication.Key{Kind: model, SourceID: id, Target: target}, TargetID: id,
				Status: replication.StatusFailed, Attempt: 6, FirstAttempt: 1, ErrorCode: code, ErrorMessage: "it failed",
				RequestedAt: now, CompletedAt: now.Add(time.Minute)})
		}
	}
	e.west.Put(reconcile.Item{Kind: model, ID: "conflict", Created: now, Expires: now.Add(time.Hour)}) // not dimirror's
	e.west.Put(reconcile.Item{Kind: model, ID: "theirs", Created: now, Expires: now.Add(time.Hour)})   // not dimirror's, not in source
	if _, err := e.engine.Request(e.ctx, replication.Request{Kind: model, SourceID: "inflight"}); err != nil {
		e.t.Fatal(err)
	}
	e.after(time.Minute)
}

var mixedPlan = []string{
	"missing start model conflict eastus",
	"missing start model missing-one eastus",
	"missing start model missing-one westus2",
	"stale report model stale eastus",
	"stale report model stale westus2",
	"orphaned report classifier router-old eastus",
	"orphaned report classifier router-old westus2",
	"orphaned report model gone eastus",
	"orphaned report model gone westus2",
	"failed redrive model failed-a eastus",
	"failed redrive model failed-a westus2",
	"failed report model failed-b eastus",
	"failed report model failed-b westus2",
	"inflight none model inflight eastus",
	"inflight none model inflight westus2",
	"conflict report model conflict westus2",
	"expiring report model expiring (source)",
}

func TestSweepDryRunPlansEveryCategoryAndChangesNothing(t *testing.T) {
	e := newEnv(t)
	mixedWorld(e)
	authBefore := e.west.Calls("AuthorizeCopy") + e.east.Calls("AuthorizeCopy")
	writesBefore := e.store.MetaWrites
	queued := e.queue.Len()

	p := e.sweep(true)
	sameLines(t, "plan", entries(p), mixedPlan)
	if p.InSync() || !p.DryRun || p.Incomplete || p.Errors != 0 {
		t.Errorf("in sync %t, dry run %t, incomplete %t, errors %d", p.InSync(), p.DryRun, p.Incomplete, p.Errors)
	}
	if p.SourceModels != 8 || p.SourceClassifiers != 1 {
		t.Errorf("selected %d models, %d classifiers; want 8 and 1 (prebuilt and the removed one left out)", p.SourceModels, p.SourceClassifiers)
	}
	for _, en := range p.Entries {
		if en.Result != "" {
			t.Errorf("a dry run acted on %+v", en)
		}
	}
	if n := e.west.Calls("AuthorizeCopy") + e.east.Calls("AuthorizeCopy"); n != authBefore {
		t.Errorf("a dry run authorized %d copies", n-authBefore)
	}
	if e.store.MetaWrites != writesBefore || e.queue.Len() != queued {
		t.Errorf("a dry run wrote state: %d meta writes, %d messages", e.store.MetaWrites-writesBefore, e.queue.Len()-queued)
	}
	if r := e.row(model, "failed-a", "westus2"); r.Status != replication.StatusFailed {
		t.Errorf("a dry run re-drove failed-a: %s", r.Status)
	}
	if _, ok := e.west.Item(model, "gone"); !ok {
		t.Error("a dry run deleted an orphan")
	}
	// The plan is what the CLI prints with --json.
	b, err := json.Marshal(p)
	if err != nil || !strings.Contains(string(b), `"category":"stale"`) {
		t.Errorf("plan JSON %s (%v)", b, err)
	}
}

func TestSweepActsOnThePlan(t *testing.T) {
	e := newEnv(t)
	mixedWorld(e)
	p := e.sweep(false)
	results := map[string]string{}
	for _, en := range p.Entries {
		results[string(en.Category)+" "+en.SourceID+" "+en.Target] = en.Result
	}
	for k, want := range map[string]string{
		"missing missing-one westus2": "authorized",
		"missing conflict eastus":     "authorized",
		"failed failed-a eastus":      "authorized",
		"failed failed-b eastus":      "",
		"stale stale westus2":         "",
		"orphaned gone westus2":       "",
	} {
		if results[k] != want {
			t.Errorf("%s: result %q, want %q", k, results[k], want)
		}
	}
	if r := e.row(model, "failed-a", "eastus"); r.Status != replication.StatusAuthorized || r.Attempt != 7 || r.FirstAttempt != 7 {
		t.Errorf("failed-a re-drive: %s attempt %d first %d", r.Status, r.Attempt, r.FirstAttempt)
	}
	e.drain()
	e.after(time.Minute)
	p = e.sweep(false)
	sameLines(t, "second plan", entries(p), []string{
		"stale report model stale eastus",
		"stale report model stale westus2",
		"orphaned report classifier router-old eastus",
		"orphaned report classifier router-old westus2",
		"orphaned report model gone eastus",
		"orphaned report model gone westus2",
		"failed report model failed-b eastus",
		"failed report model failed-b westus2",
		"conflict report model conflict westus2",
		"expiring report model expiring (source)",
	})
	if _, ok := e.west.Item(model, "gone"); !ok {
		t.Error("an orphan was deleted without DIMIRROR_PRUNE")
	}
	if _, ok := e.west.Item(model, "theirs"); !ok {
		t.Error("a model dimirror did not create was touched")
	}
	// The report is kept for the summary.
	watch, sweep, err := e.rec.Reports(e.ctx)
	if err != nil || watch != nil || sweep == nil {
		t.Fatalf("reports: watch %v sweep %v err %v", watch, sweep, err)
	}
	if sweep.Planned[reconcile.Orphaned] != 4 || sweep.PerTarget["westus2"][reconcile.Conflict] != 1 || len(sweep.Sample) != 10 {
		t.Errorf("sweep report %+v", sweep)
	}
}

func TestSweepInSyncAfterReplication(t *testing.T) {
	e := newEnv(t)
	e.src.Seed(model, "invoice-v1")
	e.src.Seed(classifier, "router-v1")
	p := e.sweep(false)
	sameLines(t, "first", entries(p), []string{
		"missing start classifier router-v1 eastus",
		"missing start classifier router-v1 westus2",
		"missing start model invoice-v1 eastus",
		"missing start model invoice-v1 westus2",
	})
	e.drain()
	auths := e.west.Calls("AuthorizeCopy")
	e.after(time.Minute)
	p = e.sweep(false)
	if !p.InSync() || len(p.Entries) != 0 {
		t.Errorf("not in sync after replication: %v", entries(p))
	}
	if e.west.Calls("AuthorizeCopy") != auths {
		t.Error("a sweep in sync authorized copies")
	}
	for _, target := range []string{"westus2", "eastus"} {
		if r := e.row(classifier, "router-v1", target); r.Status != replication.StatusSucceeded {
			t.Errorf("classifier in %s: %s", target, r.Status)
		}
	}
}

func TestSweepRestoresACopyDeletedFromATarget(t *testing.T) {
	e := newEnv(t)
	e.src.Seed(model, "invoice-v1")
	e.replicate(model, "invoice-v1")
	e.after(time.Minute)
	e.west.Remove(model, "invoice-v1")
	p := e.sweep(false)
	sameLines(t, "plan", entries(p), []string{"missing restore model invoice-v1 westus2"})
	if p.Entries[0].Result != "authorized" {
		t.Errorf("result %q", p.Entries[0].Result)
	}
	e.drain()
	if _, ok := e.west.Item(model, "invoice-v1"); !ok {
		t.Fatal("the copy was not restored")
	}
	if r := e.row(model, "invoice-v1", "westus2"); r.Status != replication.StatusSucceeded || r.Attempt != 2 {
		t.Errorf("row %s attempt %d", r.Status, r.Attempt)
	}
}

// A copy verified after the target was listed is not "missing": the listing is older.
func TestSweepDoesNotRestoreACopyVerifiedDuringTheSweep(t *testing.T) {
	e := newEnv(t)
	e.src.Seed(model, "invoice-v1")
	e.replicate(model, "invoice-v1")
	e.west.Remove(model, "invoice-v1") // the listing will lack it, but the row was verified just now
	p := e.sweep(true)
	if len(p.Entries) != 0 {
		t.Errorf("plan %v", entries(p))
	}
}

func TestSweepStaleIsReportedOrReplaced(t *testing.T) {
	for _, replace := range []bool{false, true} {
		t.Run(map[bool]string{false: "report", true: "replace"}[replace], func(t *testing.T) {
			e := newEnv(t, func(p *replication.Policy) { p.Replace = replace })
			e.src.Seed(model, "invoice-v1")
			e.src.Seed(classifier, "router-v1")
			e.replicate(model, "invoice-v1")
			e.replicate(classifier, "router-v1")
			e.after(time.Hour)
			e.src.Remove(model, "invoice-v1")
			retrained := e.src.Seed(model, "invoice-v1")
			e.src.Remove(classifier, "router-v1")
			e.src.Seed(classifier, "router-v1")
			p := e.sweep(false)
			action := "report"
			if replace {
				action = "replace"
			}
			sameLines(t, "plan", entries(p), []string{
				"stale " + action + " classifier router-v1 eastus",
				"stale " + action + " classifier router-v1 westus2",
				"stale " + action + " model invoice-v1 eastus",
				"stale " + action + " model invoice-v1 westus2",
			})
			e.drain()
			got, _ := e.west.Item(model, "invoice-v1")
			holdsNew := got.Tags[replication.TagSourceCreated] == retrained.Created.Format(time.RFC3339)
			if holdsNew != replace {
				t.Errorf("target holds the retrained version: %t, want %t", holdsNew, replace)
			}
			e.after(time.Minute)
			p = e.sweep(true)
			if p.InSync() != replace {
				t.Errorf("in sync afterwards %t, want %t: %v", p.InSync(), replace, entries(p))
			}
		})
	}
}

func TestSweepOrphans(t *testing.T) {
	tests := []struct {
		name     string
		prune    bool
		reappear bool // the source has it again by the time of the deletion
		wantGone bool
		result   string
	}{
		{"reported", false, false, false, ""},
		{"pruned", true, false, true, "deleted"},
		{"kept when the source has it again", true, true, false, "kept: the source has it again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.rec.Prune = tt.prune
			e.src.Seed(model, "old-model")
			e.src.Seed(classifier, "old-router")
			e.replicate(model, "old-model")
			e.replicate(classifier, "old-router")
			now := e.clock.Now()
			e.west.Put(reconcile.Item{Kind: model, ID: "manual", Created: now, Expires: now.Add(time.Hour)})
			e.west.Put(reconcile.Item{Kind: classifier, ID: "manual-router", Created: now, Expires: now.Add(time.Hour)})
			e.west.Put(reconcile.Item{Kind: model, ID: "other-mirror", Created: now, Tags: map[string]string{replication.TagSource: "elsewhere.example/model/x"}})
			e.src.Remove(model, "old-model")
			e.src.Remove(classifier, "old-router")
			if tt.reappear {
				// The source has them again by the time of the deletion: the re-check sees it.
				e.useSource(reappearing{e.src})
			}
			e.after(time.Minute)
			p := e.sweep(false)
			action := "report"
			if tt.prune {
				action = "delete"
			}
			sameLines(t, "plan", entries(p), []string{
				"orphaned " + action + " classifier old-router eastus",
				"orphaned " + action + " classifier old-router westus2",
				"orphaned " + action + " model old-model eastus",
				"orphaned " + action + " model old-model westus2",
			})
			for _, en := range p.Entries {
				if en.Result != tt.result {
					t.Errorf("%s %s: result %q, want %q", en.SourceID, en.Target, en.Result, tt.result)
				}
			}
			for _, kind := range []replication.Kind{model, classifier} {
				id := map[replication.Kind]string{model: "old-model", classifier: "old-router"}[kind]
				_, held := e.east.Item(kind, id)
				if held == tt.wantGone {
					t.Errorf("%s %s held %t after the sweep, want %t", kind, id, held, !tt.wantGone)
				}
				_, hasRow := e.store.Row(replication.Key{Kind: kind, SourceID: id, Target: "eastus"})
				if hasRow == tt.wantGone {
					t.Errorf("%s %s row kept %t, want %t", kind, id, hasRow, !tt.wantGone)
				}
			}
			for _, id := range []string{"manual", "other-mirror"} {
				if _, ok := e.west.Item(model, id); !ok {
					t.Errorf("model %s, which dimirror did not create, was deleted", id)
				}
			}
			if _, ok := e.west.Item(classifier, "manual-router"); !ok {
				t.Error("a classifier dimirror did not create was deleted")
			}
		})
	}
}

// reappearing is a source whose items all exist when read one by one: what the listing lacked
// came back before the deletion.
type reappearing struct{ replication.Resource }

func (r reappearing) GetModel(_ context.Context, _ replication.Kind, id string) (replication.Model, error) {
	return replication.Model{ID: id, Created: time.Now()}, nil
}

func TestSweepFilters(t *testing.T) {
	tests := []struct {
		name             string
		include, exclude []string
		want             []string
	}{
		{"everything", nil, nil, []string{"invoice-v1", "receipt-v1", "router-v1"}},
		{"include", []string{"invoice-*", "router-*"}, nil, []string{"invoice-v1", "router-v1"}},
		{"exclude", nil, []string{"receipt-*"}, []string{"invoice-v1", "router-v1"}},
		{"include and exclude", []string{"*-v1"}, []string{"router-*", "invoice-?1"}, []string{"receipt-v1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.rec.Filter = reconcile.Filter{Include: tt.include, Exclude: tt.exclude}
			e.src.Seed(model, "invoice-v1")
			e.src.Seed(model, "receipt-v1")
			e.src.Seed(model, "prebuilt-invoice")
			e.src.Seed(classifier, "router-v1")
			p := e.sweep(false)
			var got []string
			for _, en := range p.Entries {
				if en.Target == "westus2" {
					got = append(got, en.SourceID)
				}
			}
			sameLines(t, "started", sortStrings(got), tt.want)
		})
	}
}

func TestFilterMatch(t *testing.T) {
	f := reconcile.Filter{Include: []string{"inv*", "router-?"}, Exclude: []string{"*-test"}}
	for id, want := range map[string]bool{"invoice": true, "router-1": true, "router-12": false, "invoice-test": false, "receipt": false, "prebuilt-invoice": false} {
		if got := f.Match(id); got != want {
			t.Errorf("Match(%q) = %t, want %t", id, got, want)
		}
	}
	if (reconcile.Filter{}).Match("prebuilt-layout") {
		t.Error("prebuilt models must never match")
	}
	if err := (reconcile.Filter{Exclude: []string{"[a-"}}).Validate(); err == nil {
		t.Error("a malformed glob passed validation")
	}
}

func TestSweepComposedModelWaitsForItsDependencies(t *testing.T) {
	e := newEnv(t)
	e.rec.Filter = reconcile.Filter{Include: []string{"bundle"}} // the parts follow the composed model
	e.src.Seed(model, "part-a")
	e.src.Seed(model, "part-b")
	e.src.Seed(classifier, "splitter")
	e.src.Seed(model, "bundle", reconcile.Dependency{Kind: model, ID: "part-a"}, reconcile.Dependency{Kind: model, ID: "part-b"},
		reconcile.Dependency{Kind: classifier, ID: "splitter"})
	e.replicate(model, "part-a") // already verified everywhere
	e.after(time.Minute)

	p := e.sweep(false)
	sameLines(t, "plan", entries(p), []string{
		"missing start classifier splitter eastus",
		"missing start classifier splitter westus2",
		"missing wait model bundle eastus",
		"missing wait model bundle westus2",
		"missing start model part-b eastus",
		"missing start model part-b westus2",
	})
	for _, en := range p.Entries {
		if en.SourceID == "bundle" && !strings.Contains(en.Detail, "model part-b, classifier splitter") {
			t.Errorf("detail %q", en.Detail)
		}
	}
	if _, ok := e.store.Row(replication.Key{Kind: model, SourceID: "bundle", Target: "westus2"}); ok {
		t.Fatal("the composed model was requested before its dependencies")
	}
	e.drain()
	// The watch picks it up from the waiting list as soon as the parts are verified.
	w := e.watch()
	if w.Waiting != 0 {
		t.Errorf("still waiting: %d", w.Waiting)
	}
	e.drain()
	for _, target := range []string{"westus2", "eastus"} {
		bundle := e.row(model, "bundle", target)
		if bundle.Status != replication.StatusSucceeded {
			t.Fatalf("bundle in %s: %s", target, bundle.Status)
		}
		for _, dep := range []replication.Key{{Kind: model, SourceID: "part-b", Target: target}, {Kind: classifier, SourceID: "splitter", Target: target}} {
			d, _ := e.store.Row(dep)
			if d.CompletedAt.After(bundle.RequestedAt) {
				t.Errorf("%s was verified (%s) after the composed model was requested (%s)", dep, d.CompletedAt, bundle.RequestedAt)
			}
		}
	}
	e.after(time.Minute)
	if p := e.sweep(true); !p.InSync() {
		t.Errorf("not in sync: %v", entries(p))
	}
}

func TestSweepQuotaLetsModelsWaitAndReportsOnce(t *testing.T) {
	e := newEnv(t)
	e.west.Limit = 3
	e.west.Seed(model, "local-1")
	e.west.Seed(model, "local-2")
	for _, id := range []string{"m1", "m2", "m3"} {
		e.src.Seed(model, id)
	}
	e.src.Seed(classifier, "router")
	p := e.sweep(false)
	if len(p.Quota) != 1 || p.Quota[0] != (reconcile.Quota{Target: "westus2", Count: 2, Limit: 3, Waiting: 2}) {
		t.Fatalf("quota %+v", p.Quota)
	}
	var waits, starts []string
	for _, en := range p.Entries {
		if en.Target != "westus2" {
			continue
		}
		switch en.Action {
		case reconcile.ActWait:
			waits = append(waits, en.SourceID)
		case reconcile.ActStart:
			starts = append(starts, en.SourceID)
		}
	}
	sameLines(t, "started", starts, []string{"router", "m1"})
	sameLines(t, "waiting", waits, []string{"m2", "m3"})
	if n := e.west.Calls("AuthorizeCopy"); n != 2 {
		t.Errorf("%d authorizations in the full target, want 2 (a classifier and one model)", n)
	}
	if got := len(e.logEvents("target at its model limit")); got != 1 {
		t.Errorf("%d quota warnings, want 1", got)
	}
}

func TestSweepRedrivesOnlyFailuresThatMayHavePassed(t *testing.T) {
	tests := []struct {
		code string
		want reconcile.Action
	}{
		{"AttemptsExhausted", reconcile.ActRedrive},
		{"InternalServerError", reconcile.ActRedrive},
		{"DocumentModelLimit", reconcile.ActRedrive},
		{"TargetExists", reconcile.ActRedrive}, // the id is free now: the target no longer lists it
		{"OperationNotFound", reconcile.ActRedrive},
		{"DataProtectionTransformServiceError", reconcile.ActReport},
		{"Forbidden", reconcile.ActReport},
		{"InvalidRequest", reconcile.ActReport},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			e := newEnv(t)
			e.src.Seed(model, "model-1")
			now := e.clock.Now()
			for _, target := range []string{"westus2", "eastus"} {
				e.store.Put(replication.Replica{Key: replication.Key{Kind: model, SourceID: "model-1", Target: target}, TargetID: "model-1",
					Status: replication.StatusFailed, Attempt: 3, FirstAttempt: 1, ErrorCode: tt.code, RequestedAt: now, CompletedAt: now})
			}
			e.after(time.Minute)
			p := e.sweep(false)
			if len(p.Entries) != 2 || p.Entries[0].Category != reconcile.Failed || p.Entries[0].Action != tt.want {
				t.Fatalf("plan %v", entries(p))
			}
			wantStatus := replication.StatusFailed
			if tt.want == reconcile.ActRedrive {
				wantStatus = replication.StatusAuthorized
			}
			if r := e.row(model, "model-1", "westus2"); r.Status != wantStatus {
				t.Errorf("row %s, want %s", r.Status, wantStatus)
			}
		})
	}
}

func TestSweepReportsExpiringModels(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	e.src.Put(reconcile.Item{Kind: model, ID: "soon", Created: now.Add(-700 * 24 * time.Hour), Expires: now.Add(29 * 24 * time.Hour)})
	e.src.Put(reconcile.Item{Kind: model, ID: "later", Created: now, Expires: now.Add(31 * 24 * time.Hour)})
	e.src.Put(reconcile.Item{Kind: model, ID: "target-only", Created: now, Expires: now.Add(400 * 24 * time.Hour)})
	e.replicate(model, "soon", "later", "target-only")
	// A copy in one target expires sooner than its source (made from an earlier version that had
	// the same creation time: the row and tags still say "current").
	cp, _ := e.east.Item(model, "target-only")
	cp.Expires = now.Add(5 * 24 * time.Hour)
	e.east.Put(cp)
	e.after(time.Minute)
	p := e.sweep(true)
	sameLines(t, "plan", entries(p), []string{
		"expiring report model soon (source)",
		"expiring report model target-only eastus",
	})
	if !p.InSync() {
		t.Error("expiring models are not drift")
	}
	if p.Entries[0].Expires == nil || !p.Entries[0].Expires.Equal(now.Add(29*24*time.Hour)) {
		t.Errorf("expiry %v", p.Entries[0].Expires)
	}
}

func TestSweepSkipsATargetItCannotListAndFailsWithoutTheSource(t *testing.T) {
	e := newEnv(t)
	e.src.Seed(model, "model-1")
	e.west.Fail("Items", errors.New("listing westus2 failed"))
	p := e.sweep(false)
	sameLines(t, "plan", entries(p), []string{"missing start model model-1 eastus"})
	if !p.Incomplete || p.Errors != 1 || p.InSync() || !strings.Contains(strings.Join(p.Notes, " "), "westus2") {
		t.Errorf("incomplete %t errors %d notes %v", p.Incomplete, p.Errors, p.Notes)
	}
	e.src.Fail("Items", errors.New("listing the source failed"))
	if _, err := e.rec.Sweep(e.ctx, reconcile.SweepOptions{}); err == nil || !strings.Contains(err.Error(), "listing the source failed") {
		t.Errorf("sweep without the source: %v", err)
	}
}

func TestSweepNotesKindsAnApiVersionLacks(t *testing.T) {
	e := newEnv(t)
	e.east.NoClassifiers = true
	e.src.Seed(classifier, "router")
	p := e.sweep(true)
	sameLines(t, "plan", entries(p), []string{"missing start classifier router westus2"})
	if !strings.Contains(strings.Join(p.Notes, " "), "target eastus's api-version has no classifiers") {
		t.Errorf("notes %v", p.Notes)
	}
}

func TestSweepLogsFreshnessPerTarget(t *testing.T) {
	e := newEnv(t)
	e.src.Seed(model, "m1")
	e.replicate(model, "m1")
	e.after(time.Minute)
	e.src.Seed(model, "m2")
	e.sweep(false)
	events := e.logEvents("freshness")
	if len(events) != 2 {
		t.Fatalf("%d freshness events, want one per target", len(events))
	}
	for _, ev := range events {
		for _, attr := range []string{"target", "replicasPending", "replicasSucceeded", "replicasFailed", "oldestPendingSeconds",
			"lagP50Seconds", "lagP95Seconds", "lagMaxSeconds", "lagCount", "failures24h", "plannedMissing", "plannedStale",
			"plannedOrphaned", "plannedFailed", "plannedExpiring", "quotaWaiting", "inSync", "lastSweep", "lastWatch"} {
			if _, ok := ev[attr]; !ok {
				t.Errorf("freshness event lacks %s: %v", attr, ev)
			}
		}
		if ev["plannedMissing"] != 1.0 || ev["replicasSucceeded"] != 1.0 || ev["lagCount"] != 1.0 || ev["inSync"] != false {
			t.Errorf("event %v", ev)
		}
	}
}

func sortStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// countingThrottle records what the reconciler asked to start; fail makes it refuse (a pass out
// of time).
type countingThrottle struct {
	mu    sync.Mutex
	waits []int
	fail  bool
}

func (c *countingThrottle) WaitN(ctx context.Context, n int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail {
		return context.DeadlineExceeded
	}
	c.waits = append(c.waits, n)
	return nil
}

func TestSweepPacesTheCopiesItStarts(t *testing.T) {
	e := newEnv(t)
	th := &countingThrottle{}
	e.rec.Starts = th
	for _, id := range []string{"m1-x", "m2-x", "m3-x"} {
		e.src.Seed(model, id)
	}
	e.sweep(false)
	if fmt.Sprint(th.waits) != "[2 2 2]" {
		t.Errorf("waits %v, want one per request for its two targets", th.waits)
	}
	e.drain()
	// A pass with no time left defers what it has not started; the next one starts it.
	e.src.Seed(model, "m4-x")
	th.fail = true
	e.after(time.Minute)
	p := e.sweep(false)
	if len(p.Entries) != 2 || p.Entries[0].Result != "deferred" || p.Errors != 0 {
		t.Errorf("entries %+v errors %d", p.Entries, p.Errors)
	}
	th.fail = false
	e.after(time.Minute)
	if p := e.sweep(false); len(p.Entries) != 2 || p.Entries[0].Result != "authorized" {
		t.Errorf("entries %+v", p.Entries)
	}
}
