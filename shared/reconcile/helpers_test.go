package reconcile_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/internal/fakeclock"
	"github.com/dimirror/dimirror/internal/syncbuf"
	"github.com/dimirror/dimirror/shared/reconcile"
	rt "github.com/dimirror/dimirror/shared/reconcile/reconciletest"
	"github.com/dimirror/dimirror/shared/replication"
)

const sourceName = "source.example"

// env is a source, two targets (westus2, eastus), the rows and the queue, all in memory.
type env struct {
	t      *testing.T
	ctx    context.Context
	clock  *fakeclock.Clock
	world  *rt.World
	src    *rt.Resource
	west   *rt.Resource
	east   *rt.Resource
	store  *rt.Store
	queue  *rt.Queue
	engine *replication.Engine
	cfg    replication.Config
	rec    *reconcile.Reconciler
	logs   *syncbuf.Buffer
}

func newEnv(t *testing.T, tweak ...func(*replication.Policy)) *env {
	t.Helper()
	c := rt.NewClock()
	w := rt.NewWorld(c, "source", "westus2", "eastus")
	e := &env{t: t, ctx: context.Background(), clock: c, world: w, src: w.Resource("source"), west: w.Resource("westus2"),
		east: w.Resource("eastus"), store: rt.NewStore(), queue: &rt.Queue{}, logs: &syncbuf.Buffer{}}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var p replication.Policy
	for _, f := range tweak {
		f(&p)
	}
	e.cfg = replication.Config{
		Source: e.src, SourceName: sourceName,
		Targets: map[string]replication.Resource{"westus2": e.west, "eastus": e.east},
		Store:   e.store, Queue: e.queue, Policy: p, Now: c.Now, Log: log,
	}
	eng, err := replication.NewEngine(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.engine = eng
	rec, err := reconcile.New(reconcile.Reconciler{
		Engine: e.engine, Source: e.src,
		Targets: map[string]reconcile.Lister{"westus2": e.west, "eastus": e.east},
		Meta:    e.store, Now: c.Now, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.rec = rec
	return e
}

// useSource rebuilds the engine (and the reconciler's use of it) with another source resource.
func (e *env) useSource(src replication.Resource) {
	e.t.Helper()
	cfg := e.cfg
	cfg.Source = src
	eng, err := replication.NewEngine(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.engine = eng
	cfg2 := *e.rec
	cfg2.Engine = eng
	rec, err := reconcile.New(cfg2)
	if err != nil {
		e.t.Fatal(err)
	}
	e.rec = rec
}

func (e *env) sweep(dry bool) *reconcile.Plan {
	e.t.Helper()
	p, err := e.rec.Sweep(e.ctx, reconcile.SweepOptions{DryRun: dry})
	if err != nil {
		e.t.Fatalf("sweep: %v", err)
	}
	return p
}

func (e *env) watch() *reconcile.Plan {
	e.t.Helper()
	p, err := e.rec.Watch(e.ctx)
	if err != nil {
		e.t.Fatalf("watch: %v", err)
	}
	return p
}

// drain runs the queued copies and one poll pass.
func (e *env) drain() {
	e.t.Helper()
	if err := rt.Drain(e.ctx, e.engine, e.queue); err != nil {
		e.t.Fatal(err)
	}
}

// replicate copies items to both targets through the pipeline and checks they got there.
func (e *env) replicate(kind replication.Kind, ids ...string) {
	e.t.Helper()
	for _, id := range ids {
		if _, err := e.engine.Request(e.ctx, replication.Request{Kind: kind, SourceID: id}); err != nil {
			e.t.Fatal(err)
		}
	}
	e.drain()
	for _, id := range ids {
		for _, target := range []string{"westus2", "eastus"} {
			if r := e.row(kind, id, target); r.Status != replication.StatusSucceeded {
				e.t.Fatalf("%s %s → %s: %s %s", kind, id, target, r.Status, r.ErrorCode)
			}
		}
	}
}

func (e *env) row(kind replication.Kind, id, target string) replication.Replica {
	r, _ := e.store.Row(replication.Key{Kind: kind, SourceID: id, Target: target})
	return r
}

// entries renders a plan's drift and expiring entries as "category action kind id target" lines.
func entries(p *reconcile.Plan) []string {
	var out []string
	for _, en := range p.Entries {
		out = append(out, strings.Join([]string{string(en.Category), string(en.Action), string(en.Kind), en.SourceID, en.Target}, " "))
	}
	return out
}

func sameLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got %s\nwant %s", what, strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

// logEvents returns the JSON log lines with the given msg.
func (e *env) logEvents(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func (e *env) after(d time.Duration) { e.clock.Advance(d) }
