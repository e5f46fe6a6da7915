package reconcile_test

import (
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/dimirror/dimirror/shared/replication"
)

// rpoRow puts a westus2 row whose clock started ready ago (a fresh model: created then, requested
// a second later), completed done ago (0: not made).
func (e *env) rpoRow(id string, st replication.Status, ready, done time.Duration) {
	now := e.clock.Now()
	r := replication.Replica{Key: replication.Key{Kind: model, SourceID: id, Target: "westus2"}, TargetID: id, Status: st,
		Attempt: 1, FirstAttempt: 1, SourceCreated: now.Add(-ready), RequestedAt: now.Add(-ready + time.Second)}
	if done > 0 {
		r.CompletedAt = now.Add(-done)
	}
	if st == replication.StatusFailed {
		r.ErrorCode = "TargetExists"
	}
	e.store.Put(r)
}

func TestSummaryRPOFigures(t *testing.T) {
	e := newEnv(t)                                                                 // the default objective, 15 minutes
	e.rpoRow("met", replication.StatusSucceeded, 65*time.Minute, time.Hour)        // lag 5m
	e.rpoRow("late", replication.StatusSucceeded, 140*time.Minute, 2*time.Hour)    // lag 20m
	e.rpoRow("last-week", replication.StatusSucceeded, 31*time.Hour, 30*time.Hour) // outside the window
	e.rpoRow("copying", replication.StatusCopying, 20*time.Minute, 0)              // at risk
	e.rpoRow("failed", replication.StatusFailed, 3*time.Hour, 2*time.Hour)         // at risk
	e.rpoRow("long-failed", replication.StatusFailed, 72*time.Hour, 70*time.Hour)  // at risk, missed before the window
	e.rpoRow("soon", replication.StatusPending, 10*time.Minute, 0)                 // at risk soon
	e.rpoRow("fresh", replication.StatusAuthorized, 2*time.Minute, 0)              // on track

	s, err := e.rec.Summary(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.RPO != "15m0s" {
		t.Errorf("rpo %q", s.RPO)
	}
	west := s.Targets[1].RPO
	if west.WithinShare == nil || *west.WithinShare != 0.5 {
		t.Fatalf("share %v", west.WithinShare)
	}
	got := []int{west.Made24h, west.MadeWithin24h, west.Missed24h, west.AtRisk, west.AtRiskSoon}
	if want := []int{2, 1, 3, 3, 1}; !slices.Equal(got, want) || west.ObjectiveSeconds != 900 {
		t.Errorf("made, within, missed, at risk, soon = %v, want %v (%+v)", got, want, west)
	}
	var order []string
	for _, r := range west.AtRiskReplicas {
		order = append(order, r.SourceID+"/"+string(r.State))
	}
	if want := []string{"long-failed/at-risk", "failed/at-risk", "copying/at-risk", "soon/at-risk-soon"}; !slices.Equal(order, want) {
		t.Errorf("at risk %v, want %v", order, want)
	}
	if r := west.AtRiskReplicas[1]; r.ErrorCode != "TargetExists" || r.PendingSeconds != 3*3600 || r.Status != replication.StatusFailed {
		t.Errorf("failed entry %+v", r)
	}
	pts := s.Targets[1].LagPoints
	if len(pts) != 2 || pts[0].SourceID != "late" || pts[0].Seconds != 1200 || pts[1].SourceID != "met" || pts[1].Seconds != 300 {
		t.Errorf("lag points %+v", pts)
	}
	east := s.Targets[0]
	if east.RPO.WithinShare != nil || east.RPO.AtRiskReplicas == nil || east.LagPoints == nil || east.RPO.Missed24h != 0 {
		t.Errorf("an empty target: %+v", east)
	}
}

// The at-risk list is capped; the counts are not.
func TestSummaryRPOListCapped(t *testing.T) {
	e := newEnv(t)
	for i := range 210 {
		e.rpoRow("m"+time.Duration(i).String(), replication.StatusPending, time.Hour+time.Duration(i)*time.Second, 0)
	}
	s, err := e.rec.Summary(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	f := s.Targets[1].RPO
	if f.AtRisk != 210 || len(f.AtRiskReplicas) != 200 || !f.AtRiskTruncated {
		t.Errorf("at risk %d, listed %d, truncated %v", f.AtRisk, len(f.AtRiskReplicas), f.AtRiskTruncated)
	}
}

// Each replica run that misses the objective is announced once, whichever pass sees it and
// however many passes run; with its lag when made, with its wait when not.
func TestReportRPOOncePerRun(t *testing.T) {
	e := newEnv(t)
	e.rpoRow("late", replication.StatusSucceeded, 2*time.Hour, 100*time.Minute) // lag 20m
	e.rpoRow("met", replication.StatusSucceeded, time.Hour, 55*time.Minute)
	e.rpoRow("stuck", replication.StatusCopying, 20*time.Minute, 0)
	e.rpoRow("soon", replication.StatusPending, 10*time.Minute, 0)
	e.rpoRow("ancient", replication.StatusFailed, 72*time.Hour, 70*time.Hour) // missed long before the first pass

	events := func() []string {
		var out []string
		for _, ev := range e.logEvents("rpo-missed") {
			var keys []string
			for k := range ev {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if !slices.Equal(keys, []string{"kind", "lagSeconds", "level", "msg", "rpoSeconds", "sourceId", "sourceReady", "target", "targetId", "time"}) &&
				!slices.Equal(keys, []string{"kind", "level", "msg", "pendingSeconds", "rpoSeconds", "sourceId", "sourceReady", "target", "targetId", "time"}) {
				t.Errorf("attributes %v", keys)
			}
			if _, err := time.Parse(time.RFC3339, ev["sourceReady"].(string)); err != nil || ev["rpoSeconds"] != 900.0 || ev["target"] != "westus2" {
				t.Errorf("event %v", ev)
			}
			what := "pending"
			if _, ok := ev["lagSeconds"]; ok {
				what = "lag"
			}
			out = append(out, ev["sourceId"].(string)+"/"+what)
		}
		sort.Strings(out)
		return out
	}
	pass := func(want int) {
		t.Helper()
		n, err := e.rec.ReportRPO(e.ctx)
		if err != nil || n != want {
			t.Fatalf("ReportRPO = %d, %v; want %d", n, err, want)
		}
	}
	pass(2)
	if got, want := events(), []string{"late/lag", "stuck/pending"}; !slices.Equal(got, want) {
		t.Fatalf("first pass: %v, want %v", got, want)
	}
	pass(0) // nothing new
	// "soon" runs out of time; "stuck" is made meanwhile: only "soon" is new.
	e.after(6 * time.Minute)
	e.rpoRow("stuck", replication.StatusSucceeded, 26*time.Minute, time.Minute)
	// Another instance wrote the row first: the pass judges again against it, announcing nothing twice.
	e.store.Fail("PutMeta", replication.ErrConflict)
	pass(1)
	// A model created long ago (but within the backfill day) requested only now: missed from its request.
	e.after(time.Minute)
	now := e.clock.Now()
	e.store.Put(replication.Replica{Key: replication.Key{Kind: model, SourceID: "late-request", Target: "westus2"}, TargetID: "late-request",
		Status: replication.StatusPending, Attempt: 1, FirstAttempt: 1, SourceCreated: now.Add(-3 * time.Hour), RequestedAt: now})
	pass(1)
	for range 3 {
		e.after(30 * time.Second)
		pass(0)
	}
	if got, want := events(), []string{"late-request/pending", "late/lag", "soon/pending", "stuck/pending"}; !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}
