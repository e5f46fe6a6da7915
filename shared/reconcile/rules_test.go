package reconcile_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/shared/reconcile"
	rt "github.com/dimirror/dimirror/shared/reconcile/reconciletest"
	"github.com/dimirror/dimirror/shared/replication"
)

// mesh is three resources a, b, c with replication rules, all in memory.
type mesh struct {
	t       *testing.T
	ctx     context.Context
	clock   interface{ Advance(time.Duration) }
	res     map[string]*rt.Resource
	store   *rt.Store
	queue   *rt.Queue
	engine  *replication.Engine
	rec     *reconcile.Reconciler
	hostOf  map[string]string
	nowFunc func() time.Time
}

func newMesh(t *testing.T, rules ...replication.Rule) *mesh {
	t.Helper()
	return newMeshSelecting(t, nil, rules...)
}

// newMeshSelecting is newMesh with the engine's rule filter (nil: every item).
func newMeshSelecting(t *testing.T, selects func(replication.Rule, replication.Kind, string) bool, rules ...replication.Rule) *mesh {
	t.Helper()
	c := rt.NewClock()
	w := rt.NewWorld(c, "a", "b", "c")
	m := &mesh{t: t, ctx: context.Background(), clock: c, res: map[string]*rt.Resource{}, store: rt.NewStore(), queue: &rt.Queue{},
		hostOf: map[string]string{}, nowFunc: c.Now}
	rcs := map[string]replication.ResourceConfig{}
	listers := map[string]reconcile.Lister{}
	for _, n := range []string{"a", "b", "c"} {
		m.res[n] = w.Resource(n)
		m.hostOf[n] = n + ".example"
		rcs[n] = replication.ResourceConfig{Resource: m.res[n], Host: m.hostOf[n]}
		listers[n] = m.res[n]
	}
	eng, err := replication.NewEngine(replication.Config{Resources: rcs, Rules: rules, Selects: selects, Store: m.store, Queue: m.queue, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	m.engine = eng
	if m.rec, err = reconcile.New(reconcile.Reconciler{Engine: eng, Resources: listers, Meta: m.store, Now: c.Now}); err != nil {
		t.Fatal(err)
	}
	return m
}

func rules(pairs ...string) []replication.Rule {
	var out []replication.Rule
	for _, p := range pairs {
		out = append(out, replication.Rule{From: p[:1], To: p[2:]})
	}
	return out
}

func (m *mesh) sweep(dry bool) *reconcile.Plan {
	m.t.Helper()
	p, err := m.rec.Sweep(m.ctx, reconcile.SweepOptions{DryRun: dry})
	if err != nil {
		m.t.Fatalf("sweep: %v", err)
	}
	return p
}

func (m *mesh) watch() *reconcile.Plan {
	m.t.Helper()
	p, err := m.rec.Watch(m.ctx)
	if err != nil {
		m.t.Fatalf("watch: %v", err)
	}
	return p
}

func (m *mesh) drain() {
	m.t.Helper()
	if err := rt.Drain(m.ctx, m.engine, m.queue); err != nil {
		m.t.Fatal(err)
	}
}

// origin is the origin tag of the copy of kind/id in resource n ("" for an original or none).
func (m *mesh) origin(n string, kind replication.Kind, id string) (string, bool) {
	it, ok := m.res[n].Item(kind, id)
	return it.Tags[replication.TagSource], ok
}

// TestTwoWayFailoverAndFailback plays the failover runbook on the domain: a>b, b>a, a>c; a's
// models reach b and c; a goes down; a model trained in b meanwhile waits for a (and is reported
// so); a comes back; b's model reaches a and, through a, c; nothing is ever copied into its
// origin; after settling a sweep plans nothing.
func TestTwoWayFailoverAndFailback(t *testing.T) {
	m := newMesh(t, rules("a>b", "b>a", "a>c")...)
	m.res["a"].Build(replication.KindModel, "invoice")
	m.res["a"].Seed(replication.KindClassifier, "router")
	m.watch()
	m.sweep(false) // the classifier was seeded without an operation: the sweep finds it
	m.drain()
	for _, n := range []string{"b", "c"} {
		if o, ok := m.origin(n, replication.KindModel, "invoice"); !ok || o != "a.example/model/invoice" {
			t.Errorf("%s: invoice %v origin %q", n, ok, o)
		}
		if _, ok := m.res[n].Item(replication.KindClassifier, "router"); !ok {
			t.Errorf("%s lacks the classifier", n)
		}
	}

	// a goes down; b trains a model.
	m.res["a"].SetDown(true)
	m.res["b"].Build(replication.KindModel, "receipt")
	m.watch()
	m.drain()
	row, err := m.engine.Get(m.ctx, replication.Key{Kind: replication.KindModel, SourceID: "receipt", Target: "a"})
	if err != nil || !row.Status.InFlight() || row.Source != "b" || row.Origin != "b.example/model/receipt" {
		t.Fatalf("during the outage: %+v %v", row, err)
	}
	if p := m.sweep(true); !p.Incomplete || !hasEntry(p, reconcile.InFlight, "receipt", "a") {
		t.Errorf("the sweep during the outage does not report receipt pending for a: %v", entries(p))
	}

	// a comes back: receipt reaches a (b>a) and through a, c (a>c).
	m.res["a"].SetDown(false)
	m.clock.Advance(10 * time.Minute)
	m.drain() // the poll re-drives the waiting replica: a new authorization and a queued copy
	m.drain()
	m.sweep(false)
	m.drain()
	if o, ok := m.origin("a", replication.KindModel, "receipt"); !ok || o != "b.example/model/receipt" {
		t.Errorf("a: receipt %v origin %q", ok, o)
	}
	if o, ok := m.origin("c", replication.KindModel, "receipt"); !ok || o != "b.example/model/receipt" {
		t.Errorf("c: receipt %v origin %q (a copy of a copy keeps its origin's tags)", ok, o)
	}
	// Never into the origin: a's invoice and classifier and b's receipt are the originals.
	if o, _ := m.origin("a", replication.KindModel, "invoice"); o != "" {
		t.Errorf("a's invoice was overwritten by a copy of %s", o)
	}
	if o, _ := m.origin("b", replication.KindModel, "receipt"); o != "" {
		t.Errorf("b's receipt was overwritten by a copy of %s", o)
	}
	for _, k := range []replication.Key{
		{Kind: replication.KindModel, SourceID: "invoice", Target: "a"},
		{Kind: replication.KindClassifier, SourceID: "router", Target: "a"},
		{Kind: replication.KindModel, SourceID: "receipt", Target: "b"},
	} {
		if _, err := m.engine.Get(m.ctx, k); err == nil {
			t.Errorf("a replica into the origin exists: %s", k)
		}
	}
	if p := m.sweep(true); !p.InSync() || len(p.Entries) != 0 {
		t.Errorf("after settling the sweep plans: %v", entries(p))
	}
}

// TestSecondHopStartsWhenTheFirstIsVerified: with a>b and b>c, the copy into c is requested the
// moment b's copy is verified, without a watch or a sweep; the onward request follows the rules'
// filters and never goes back into the origin.
func TestSecondHopStartsWhenTheFirstIsVerified(t *testing.T) {
	noReceipts := func(r replication.Rule, _ replication.Kind, id string) bool {
		return r != (replication.Rule{From: "b", To: "c"}) || !strings.HasPrefix(id, "receipt")
	}
	tests := []struct {
		name    string
		rules   []replication.Rule
		selects func(replication.Rule, replication.Kind, string) bool
		id      string
		wantC   bool
	}{
		{"a chain delivers to c", rules("a>b", "b>c"), nil, "invoice", true},
		{"a chain and a two-way rule", rules("a>b", "b>a", "b>c"), nil, "invoice", true},
		{"b>c's filter excludes the item", rules("a>b", "b>c"), noReceipts, "receipt", false},
		{"b>c's filter lets another item through", rules("a>b", "b>c"), noReceipts, "invoice", true},
		{"no rule out of b", rules("a>b", "a>c"), nil, "invoice", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMeshSelecting(t, tt.selects, tt.rules...)
			m.res["a"].Seed(replication.KindModel, tt.id)
			if _, err := m.engine.Request(m.ctx, replication.Request{Source: "a", SourceID: tt.id, Targets: []string{"b"}}); err != nil {
				t.Fatal(err)
			}
			m.drain() // b's copy starts and is verified; the onward request is queued at once
			if o, ok := m.origin("b", replication.KindModel, tt.id); !ok || o != "a.example/model/"+tt.id {
				t.Fatalf("b: %v origin %q", ok, o)
			}
			row, err := m.engine.Get(m.ctx, replication.Key{Kind: replication.KindModel, SourceID: tt.id, Target: "c"})
			if !tt.wantC {
				if err == nil {
					t.Errorf("an onward copy into c was requested: %+v", row)
				}
				return
			}
			if err != nil || row.Source != "b" || row.Origin != "a.example/model/"+tt.id {
				t.Fatalf("c right after b verified: %+v %v", row, err)
			}
			m.drain()
			if o, ok := m.origin("c", replication.KindModel, tt.id); !ok || o != "a.example/model/"+tt.id {
				t.Errorf("c: %v origin %q", ok, o)
			}
			if _, err := m.engine.Get(m.ctx, replication.Key{Kind: replication.KindModel, SourceID: tt.id, Target: "a"}); err == nil {
				t.Error("a replica into the origin exists")
			}
			if o, _ := m.origin("a", replication.KindModel, tt.id); o != "" {
				t.Errorf("a's original was overwritten by a copy of %s", o)
			}
		})
	}
}

// TestOriginConflictIsReportedNeverOverwritten: the same id trained in both resources of a
// two-way rule is a conflict in both directions, whatever REPLACE says.
func TestOriginConflictIsReportedNeverOverwritten(t *testing.T) {
	m := newMesh(t, rules("a>b", "b>a")...)
	m.res["a"].Seed(replication.KindModel, "invoice")
	m.clock.Advance(time.Minute)
	m.res["b"].Seed(replication.KindModel, "invoice")
	p := m.sweep(false)
	m.drain()
	for _, target := range []string{"a", "b"} {
		if !hasEntry(p, reconcile.Conflict, "invoice", target) {
			t.Errorf("no conflict for %s: %v", target, entries(p))
		}
	}
	if m.res["a"].Calls("DeleteModel")+m.res["b"].Calls("DeleteModel")+m.res["a"].Calls("AuthorizeCopy")+m.res["b"].Calls("AuthorizeCopy") != 0 {
		t.Error("a conflict was acted on")
	}
	// A request for it anyway ends in TargetExists, and nothing is deleted.
	reps, err := m.engine.Request(m.ctx, replication.Request{Source: "a", SourceID: "invoice"})
	if err != nil || len(reps) != 1 || reps[0].ErrorCode != replication.CodeTargetExists {
		t.Fatalf("request: %+v %v", reps, err)
	}
	if !strings.Contains(reps[0].ErrorMessage, "of another origin") || !strings.Contains(reps[0].ErrorMessage, "DIMIRROR_REPLACE cannot help") {
		t.Errorf("the reason %q does not name the other origin and the setting that cannot help", reps[0].ErrorMessage)
	}
	if m.res["b"].Calls("DeleteModel") != 0 {
		t.Error("a model of another origin was deleted")
	}
	// The failed replica stays a conflict for reconciliation, not a failure to re-drive.
	if p := m.sweep(true); !hasEntry(p, reconcile.Conflict, "invoice", "b") || p.Counts()[reconcile.Failed] != 0 {
		t.Errorf("after the failed request the sweep plans: %v", entries(p))
	}
}

// TestTwoRulesIntoOneTargetStartOneCopy: a>c and b>c both hold a's model; one copy starts.
func TestTwoRulesIntoOneTargetStartOneCopy(t *testing.T) {
	m := newMesh(t, rules("a>b", "a>c", "b>c")...)
	m.res["a"].Seed(replication.KindModel, "invoice")
	m.sweep(false)
	m.drain()
	// b now holds a's copy too: the next sweep sees it through both rules into c, and plans nothing.
	if p := m.sweep(true); !p.InSync() {
		t.Errorf("second sweep: %v", entries(p))
	}
	// Both sources requesting it at once start one copy into c.
	m.res["c"].Remove(replication.KindModel, "invoice")
	if err := m.engine.MarkVanished(m.ctx, replication.Key{Kind: replication.KindModel, SourceID: "invoice", Target: "c"}); err != nil {
		t.Fatal(err)
	}
	before := m.res["c"].Calls("AuthorizeCopy")
	for _, src := range []string{"a", "b"} {
		if _, err := m.engine.Request(m.ctx, replication.Request{Source: src, SourceID: "invoice", Targets: []string{"c"}}); err != nil {
			t.Fatal(err)
		}
	}
	m.drain()
	if n := m.res["c"].Calls("AuthorizeCopy") - before; n != 1 {
		t.Errorf("%d authorizations into c, want 1", n)
	}
	if o, _ := m.origin("c", replication.KindModel, "invoice"); o != "a.example/model/invoice" {
		t.Errorf("c's copy names origin %q", o)
	}
}

// TestRequestNamesTheSource: with several sources the request must name one; its targets
// default to its rules, and a target outside them is refused, naming the field.
func TestRequestNamesTheSource(t *testing.T) {
	m := newMesh(t, rules("a>b", "b>a", "a>c")...)
	m.res["a"].Seed(replication.KindModel, "invoice")
	for _, tc := range []struct {
		req   replication.Request
		field string
	}{
		{replication.Request{SourceID: "invoice"}, "source"},
		{replication.Request{Source: "c", SourceID: "invoice"}, "source"},
		{replication.Request{Source: "b", SourceID: "invoice", Targets: []string{"c"}}, "targets"},
	} {
		err := m.engine.Validate(&tc.req)
		fe, ok := err.(*replication.FieldError)
		if !ok || fe.Field != tc.field {
			t.Errorf("%+v: %v, want a FieldError on %s", tc.req, err, tc.field)
		}
	}
	req := replication.Request{Source: "a", SourceID: "invoice"}
	if err := m.engine.Validate(&req); err != nil || !slices.Equal(req.Targets, []string{"b", "c"}) {
		t.Errorf("targets default to a's rules: %v %v", req.Targets, err)
	}
	// A copy in b, requested from b explicitly into its origin a, is refused.
	m.sweep(false)
	m.drain()
	if _, err := m.engine.Request(m.ctx, replication.Request{Source: "b", SourceID: "invoice", Targets: []string{"a"}}); err == nil {
		t.Error("a request to copy into the origin was accepted")
	}
}

// TestRowsFromBeforeRulesKeepWorking: rows without Source and Origin (written by the single-source
// code) read as the default source's, so a sweep and a repeated request see them in sync.
func TestRowsFromBeforeRulesKeepWorking(t *testing.T) {
	e := newEnv(t)
	e.src.Seed(replication.KindModel, "invoice")
	e.src.Seed(replication.KindClassifier, "router")
	e.replicate(replication.KindModel, "invoice")
	e.replicate(replication.KindClassifier, "router")
	for _, k := range []replication.Key{
		{Kind: replication.KindModel, SourceID: "invoice", Target: "westus2"},
		{Kind: replication.KindClassifier, SourceID: "router", Target: "eastus"},
	} {
		r, err := e.store.Get(e.ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		r.Source, r.Origin = "", ""
		if err := e.store.Update(e.ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if p := e.sweep(true); !p.InSync() {
		t.Errorf("legacy rows out of sync: %v", entries(p))
	}
	before := e.west.Calls("AuthorizeCopy")
	reps, err := e.engine.Request(e.ctx, replication.Request{SourceID: "invoice"})
	if err != nil || reps[0].Status != replication.StatusSucceeded || e.west.Calls("AuthorizeCopy") != before {
		t.Errorf("repeated request over a legacy row: %+v %v", reps, err)
	}
}

func hasEntry(p *reconcile.Plan, c reconcile.Category, id, target string) bool {
	for _, e := range p.Entries {
		if e.Category == c && e.SourceID == id && e.Target == target {
			return true
		}
	}
	return false
}
