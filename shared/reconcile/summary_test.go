package reconcile_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/shared/reconcile"
	"github.com/dimirror/dimirror/shared/replication"
)

func TestSummaryFigures(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	put := func(id, target string, st replication.Status, sourceCreated, requested, completed time.Time) {
		e.store.Put(replication.Replica{Key: replication.Key{Kind: model, SourceID: id, Target: target}, TargetID: id, Status: st,
			Attempt: 1, FirstAttempt: 1, SourceCreated: sourceCreated, RequestedAt: requested, CompletedAt: completed})
	}
	var zero time.Time
	// Ten fresh models verified 10 s, 20 s, ... 100 s after they were ready.
	for i := 1; i <= 10; i++ {
		ready := now.Add(-time.Duration(i) * time.Hour)
		put(fmt.Sprintf("fresh-%02d", i), "westus2", replication.StatusSucceeded, ready, ready.Add(time.Second), ready.Add(time.Duration(i*10)*time.Second))
	}
	// A backfill of a model built long ago: its lag counts from the request (50 s).
	put("backfill", "westus2", replication.StatusSucceeded, now.AddDate(-1, 0, 0), now.Add(-time.Hour), now.Add(-time.Hour+50*time.Second))
	// Outside the window: neither lag nor failure counts.
	put("old-success", "westus2", replication.StatusSucceeded, now.Add(-50*time.Hour), now.Add(-50*time.Hour), now.Add(-30*time.Hour))
	put("old-failure", "westus2", replication.StatusFailed, now.Add(-50*time.Hour), now.Add(-50*time.Hour), now.Add(-48*time.Hour))
	put("new-failure", "westus2", replication.StatusFailed, now.Add(-2*time.Hour), now.Add(-2*time.Hour), now.Add(-time.Hour))
	put("waiting", "westus2", replication.StatusPending, now.Add(-10*time.Minute), now.Add(-5*time.Minute), zero)
	put("copying", "westus2", replication.StatusCopying, now.Add(-10*time.Minute), now.Add(-2*time.Minute), zero)
	put("gone-target", "brazil", replication.StatusFailed, now, now, now) // a target no longer configured

	s, err := e.rec.Summary(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Targets) != 2 || s.Targets[0].Target != "eastus" || s.Targets[1].Target != "westus2" || s.Window != "24h0m0s" {
		t.Fatalf("summary %+v", s)
	}
	east, west := s.Targets[0], s.Targets[1]
	if east.Replicas["succeeded"] != 0 || len(east.Replicas) != 5 || east.Lag != (reconcile.Lag{}) || east.OldestPendingSeconds != 0 {
		t.Errorf("eastus %+v", east)
	}
	want := map[string]int{"pending": 1, "authorized": 0, "copying": 1, "succeeded": 12, "failed": 2}
	for st, n := range want {
		if west.Replicas[st] != n {
			t.Errorf("westus2 %s = %d, want %d", st, west.Replicas[st], n)
		}
	}
	// Lags 10..100 s and 50 s: p50 is 50 s, p95 100 s.
	if west.Lag != (reconcile.Lag{Count: 11, P50Seconds: 50, P95Seconds: 100, MaxSeconds: 100}) {
		t.Errorf("lag %+v", west.Lag)
	}
	if west.OldestPendingSeconds != 300 || west.Failures != 1 {
		t.Errorf("oldest pending %v, failures %d", west.OldestPendingSeconds, west.Failures)
	}
	if s.LastSweep != nil || s.LastWatch != nil {
		t.Error("reports before any run")
	}

	e.src.Seed(model, "new-one")
	e.sweep(false)
	e.watch()
	s, err = e.rec.Summary(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.LastSweep == nil || s.LastWatch == nil || s.Targets[1].Planned[reconcile.Missing] != 1 {
		t.Errorf("after a sweep and a watch: sweep %+v watch %+v planned %v", s.LastSweep, s.LastWatch, s.Targets[1].Planned)
	}
}

func TestReconcilerChecksItsWiring(t *testing.T) {
	e := newEnv(t)
	good := *e.rec
	tests := []struct {
		name   string
		mutate func(r *reconcile.Reconciler)
		want   string
	}{
		{"a target without a lister", func(r *reconcile.Reconciler) {
			r.Resources, r.Targets = nil, map[string]reconcile.Lister{"westus2": e.west}
		}, "target eastus has no lister"},
		{"no engine", func(r *reconcile.Reconciler) { r.Engine = nil }, "no replication engine"},
		{"no source lister", func(r *reconcile.Reconciler) { r.Resources, r.Source = nil, nil }, "no source lister"},
		{"no meta store", func(r *reconcile.Reconciler) { r.Meta = nil }, "no meta store"},
		{"a source without a lister", func(r *reconcile.Reconciler) {
			r.Resources = map[string]reconcile.Lister{"westus2": e.west, "eastus": e.east}
		}, "no source lister for source"},
		{"a malformed rule filter", func(r *reconcile.Reconciler) {
			r.RuleFilters = map[replication.Rule]reconcile.RuleFilter{{From: "source", To: "westus2"}: {Filter: reconcile.Filter{Exclude: []string{"[z-"}}}}
		}, "rule source>westus2"},
		{"a malformed filter", func(r *reconcile.Reconciler) { r.Filter = reconcile.Filter{Include: []string{"[z-"}} }, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broken := good
			tt.mutate(&broken)
			if _, err := reconcile.New(broken); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error naming %q", err, tt.want)
			}
		})
	}
	var none *reconcile.Reconciler
	if _, err := none.Watch(e.ctx); err == nil {
		t.Error("a nil reconciler did not say so")
	}
	unbuilt := reconcile.Reconciler{Engine: good.Engine, Source: good.Source, Targets: good.Targets, Meta: good.Meta}
	if _, err := unbuilt.Sweep(e.ctx, reconcile.SweepOptions{}); err == nil || !strings.Contains(err.Error(), "reconcile.New") {
		t.Errorf("a reconciler not built by New ran: %v", err)
	}
}

func TestStateSurvivesAnUnreadableRow(t *testing.T) {
	e := newEnv(t)
	if _, err := e.store.PutMeta(e.ctx, "watch", []byte("not json"), ""); err != nil {
		t.Fatal(err)
	}
	e.src.Build(model, "model-1")
	p := e.watch()
	if len(p.Entries) != 2 {
		t.Errorf("entries %v", entries(p))
	}
	if raw, _ := e.store.Meta("watch"); string(raw) == "not json" {
		t.Error("the unreadable row was not replaced")
	}
}
