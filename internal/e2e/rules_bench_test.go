package e2e

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/internal/app"
	"github.com/dimirror/dimirror/internal/devstack"
	"github.com/dimirror/dimirror/shared/reconcile"
	"github.com/dimirror/dimirror/shared/replication"
)

// BenchmarkSweepTwoWay3x1000 sweeps three resources of 1,000 models each under two-way rules
// between every pair (a>b, b>a, a>c, c>a, b>c, c>b), in sync: each resource trained a third of
// the models and holds dimirror's copies of the others'. didev's default S0 rate limits apply
// (list: 10 per second per resource) with the default pacing. It reports the wall time of one
// sweep, its list calls, the 429s it drew, and the list-rate bound: each resource is listed once
// per sweep, whatever the number of rules, under its own limit, so a sweep should take about the
// largest resource's list calls at 10 per second (bound-parallel-s), or at dimirror's own pace
// (bound-paced-s), never the rules' count times that.
func BenchmarkSweepTwoWay3x1000(b *testing.B) {
	const perResource = 1000
	names := []string{"a", "b", "c"}
	ctx := context.Background()
	var seeds []didev.Seed
	for i := range perResource {
		// Model i was trained in one resource, round robin.
		seeds = append(seeds, didev.Seed{Resource: names[i%len(names)], Kind: didev.KindModel, ID: fmt.Sprintf("model-%04d", i)})
	}
	st, err := devstack.Start(ctx, devstack.Options{
		Rules:    "a>b,b>a,a>c,c>a,b>c,c>b",
		Settings: map[string]string{"DIMIRROR_WATCH_SCHEDULE": never, "DIMIRROR_SWEEP_SCHEDULE": never, "DIMIRROR_LOG_LEVEL": "warn"},
		DI:       func(o *didev.Options) { o.Seeds = seeds },
	})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	host := func(name string) string {
		u, err := url.Parse(st.DI.Endpoint(name))
		if err != nil {
			b.Fatal(err)
		}
		return u.Host
	}
	// Every other resource holds dimirror's copy of each original, tagged with its origin.
	for _, sd := range seeds {
		orig, _ := st.DI.Resource(sd.Resource).Model(didev.KindModel, sd.ID)
		for _, n := range names {
			if n == sd.Resource {
				continue
			}
			err := st.DI.Resource(n).Seed(didev.Seed{Kind: didev.KindModel, ID: sd.ID, Tags: map[string]string{
				replication.TagSource:        host(sd.Resource) + "/model/" + sd.ID,
				replication.TagSourceCreated: orig.Created.UTC().Format(time.RFC3339),
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
	if !plan.InSync() || len(plan.Entries) != 0 {
		b.Fatalf("plan: in sync %t, %d models, %d entries (first %+v)", plan.InSync(), plan.SourceModels, len(plan.Entries), plan.Entries[:min(1, len(plan.Entries))])
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
	b.ReportMetric(float64(lists)/float64(b.N), "list-calls/sweep")
	b.ReportMetric(float64(throttled)/float64(b.N), "429s/sweep")
	b.ReportMetric(float64(lists)/float64(b.N)/10, "bound-serial-s")
	b.ReportMetric(float64(maxPerResource)/float64(b.N)/10, "bound-parallel-s")
	// dimirror's own pace: DIMIRROR_LIST_RATE × DIMIRROR_BUDGET_SHARE per resource, below the
	// service's limit on purpose; the sweep cannot beat this, and should not take much longer.
	b.ReportMetric(float64(maxPerResource)/float64(b.N)/(cfg.ListRate*cfg.BudgetShare), "bound-paced-s")
}
