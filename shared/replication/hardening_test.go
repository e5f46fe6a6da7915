package replication_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dimirror/dimirror/internal/fakeclock"
	rt "github.com/dimirror/dimirror/shared/reconcile/reconciletest"
	"github.com/dimirror/dimirror/shared/replication"
)

// hard is a pipeline on the shared fakes, for the hardening cases: outages, deleted rows and
// sources, removed targets, skewed clocks.
type hard struct {
	t     *testing.T
	ctx   context.Context
	clock *fakeclock.Clock
	world *rt.World
	src   *rt.Resource
	west  *rt.Resource
	east  *rt.Resource
	store *rt.Store
	queue *rt.Queue
	cfg   replication.Config
	eng   *replication.Engine
}

func newHard(t *testing.T, tweak ...func(*replication.Config)) *hard {
	t.Helper()
	c := rt.NewClock()
	w := rt.NewWorld(c, "source", "westus2", "eastus")
	h := &hard{t: t, ctx: context.Background(), clock: c, world: w, src: w.Resource("source"), west: w.Resource("westus2"),
		east: w.Resource("eastus"), store: rt.NewStore(), queue: &rt.Queue{}}
	h.cfg = replication.Config{Source: h.src, SourceName: "source.example",
		Targets: map[string]replication.Resource{"westus2": h.west, "eastus": h.east}, Store: h.store, Queue: h.queue, Now: c.Now,
		Policy: replication.Policy{MaxAttempts: 3, RetryBase: time.Minute, RetryMax: 10 * time.Minute, TransientDelay: 10 * time.Second,
			Lease: 2 * time.Minute, GiveUpAfter: time.Hour}}
	for _, f := range tweak {
		f(&h.cfg)
	}
	h.eng = h.build(h.cfg)
	h.src.Seed(replication.KindModel, "invoice-v1")
	return h
}

func (h *hard) build(cfg replication.Config) *replication.Engine {
	h.t.Helper()
	e, err := replication.NewEngine(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	return e
}

func (h *hard) key(target string) replication.Key {
	return replication.Key{Kind: replication.KindModel, SourceID: "invoice-v1", Target: target}
}

func (h *hard) row(target string) replication.Replica {
	h.t.Helper()
	r, ok := h.store.Row(h.key(target))
	if !ok {
		h.t.Fatalf("no row for %s", target)
	}
	return r
}

func (h *hard) request(targets ...string) {
	h.t.Helper()
	if _, err := h.eng.Request(h.ctx, replication.Request{Kind: replication.KindModel, SourceID: "invoice-v1", Targets: targets}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *hard) poll() replication.PollReport {
	h.t.Helper()
	rep, err := h.eng.Poll(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return rep
}

var unavailable = &replication.ServiceError{Class: replication.ClassTransient, Code: "ServiceUnavailable", StatusCode: 503, Message: "down"}

func TestNewEngineNamesWhatIsMissing(t *testing.T) {
	_, err := replication.NewEngine(replication.Config{Targets: map[string]replication.Resource{"westus2": nil}})
	if err == nil {
		t.Fatal("an engine without dependencies was built")
	}
	for _, want := range []string{"a source resource", "the source's name", "a resource for target westus2", "a replica store", "a copy queue"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	h := newHard(t)
	cfg := h.cfg
	cfg.Policy.RetryBase, cfg.Policy.RetryMax = time.Hour, time.Minute
	if _, err := replication.NewEngine(cfg); err == nil || !strings.Contains(err.Error(), "retry base") {
		t.Errorf("error %v, want the inconsistent policy named", err)
	}
}

// A target that never answers (deleted, DNS gone) keeps a replica pending with transient waits,
// spending no attempt, only until GiveUpAfter: then it fails naming what was unreachable.
func TestTransientRetriesEnd(t *testing.T) {
	h := newHard(t)
	errs := make([]error, 500)
	for i := range errs {
		errs[i] = unavailable
	}
	h.west.Fail("AuthorizeCopy", errs...)
	h.request("westus2")
	if r := h.row("westus2"); r.Status != replication.StatusPending || r.Attempt != 1 || r.TransientSince.IsZero() {
		t.Fatalf("after the first failure: %s attempt %d since %v", r.Status, r.Attempt, r.TransientSince)
	}
	calls := 0
	for range 1000 {
		h.clock.Advance(10 * time.Second)
		h.poll()
		if h.row("westus2").Status == replication.StatusFailed {
			break
		}
		calls++
	}
	r := h.row("westus2")
	if r.Status != replication.StatusFailed || r.ErrorCode != replication.CodeUnreachable || r.Attempt != 1 {
		t.Fatalf("row %s %s attempt %d, want failed Unreachable on attempt 1", r.Status, r.ErrorCode, r.Attempt)
	}
	if !strings.Contains(r.ErrorMessage, "target westus2") || !strings.Contains(r.ErrorMessage, "ServiceUnavailable") {
		t.Errorf("the cause %q does not say what was unreachable", r.ErrorMessage)
	}
	if gave := r.CompletedAt.Sub(r.TransientSince); gave < time.Hour || gave > time.Hour+time.Minute {
		t.Errorf("gave up after %s of failures, want the 1h bound", gave)
	}
	before := h.west.Calls("AuthorizeCopy")
	h.clock.Advance(time.Hour)
	h.poll()
	if n := h.west.Calls("AuthorizeCopy"); n != before {
		t.Errorf("%d more calls after giving up", n-before)
	}
}

// neverEnding reports every copy as running.
type neverEnding struct{ *rt.Resource }

func (n neverEnding) GetOperation(ctx context.Context, u string) (replication.Operation, error) {
	op, err := n.Resource.GetOperation(ctx, u)
	op.Status, op.Percent = replication.OpRunning, 50
	return op, err
}

func TestCopyThatNeverEndsTimesOut(t *testing.T) {
	h := newHard(t)
	h.cfg.Source = neverEnding{h.src}
	h.eng = h.build(h.cfg)
	h.request("westus2")
	for _, m := range h.queue.Take() {
		if err := h.eng.StartCopy(h.ctx, m, 1); err != nil {
			t.Fatal(err)
		}
	}
	h.clock.Advance(30 * time.Minute)
	h.poll()
	if r := h.row("westus2"); r.Status != replication.StatusCopying || r.Percent != 50 {
		t.Fatalf("after 30 minutes: %s %d%%", r.Status, r.Percent)
	}
	h.clock.Advance(31 * time.Minute)
	h.poll()
	if r := h.row("westus2"); r.Status != replication.StatusFailed || r.ErrorCode != replication.CodeCopyTimeout {
		t.Fatalf("after 61 minutes: %s %s, want failed CopyTimeout", r.Status, r.ErrorCode)
	}
}

// An outage of the source while the copy starter works: every failure reschedules the message
// with a growing delay (never an immediate redelivery that burns the queue's deliveries), and
// the first delivery after the outage starts the copy.
func TestOutageReschedulesWithBackoff(t *testing.T) {
	h := newHard(t)
	h.request("westus2")
	msgs := h.queue.Take()
	h.src.Fail("CopyTo", unavailable, unavailable, unavailable, unavailable, unavailable, unavailable, unavailable)
	m := msgs[0]
	for i := 1; i <= 7; i++ {
		if err := h.eng.StartCopy(h.ctx, m, 1); err != nil {
			t.Fatalf("delivery %d: %v (a transient failure must reschedule, not return)", i, err)
		}
		next := h.queue.Take()
		if len(next) != 1 || next[0].Retry != i {
			t.Fatalf("after failure %d: %d messages (retry %v), want one with retry %d", i, len(next), next, i)
		}
		m = next[0]
		h.clock.Advance(30 * time.Second)
	}
	if err := h.eng.StartCopy(h.ctx, m, 1); err != nil {
		t.Fatal(err)
	}
	if r := h.row("westus2"); r.Status != replication.StatusCopying || r.Attempt != 1 {
		t.Fatalf("after the outage: %s attempt %d", r.Status, r.Attempt)
	}
}

// The table unreachable while the copy starter reads the row: the message is rescheduled too.
func TestTableOutageReschedules(t *testing.T) {
	h := newHard(t)
	h.request("westus2")
	m := h.queue.Take()[0]
	h.store.Fail("Get", errors.New("dial tcp: connection refused"))
	if err := h.eng.StartCopy(h.ctx, m, 1); err != nil {
		t.Fatalf("StartCopy: %v", err)
	}
	next := h.queue.Take()
	if len(next) != 1 || next[0].Retry != 1 {
		t.Fatalf("rescheduled %v, want the copy message with retry 1", next)
	}
	if err := h.eng.StartCopy(h.ctx, next[0], 1); err != nil {
		t.Fatal(err)
	}
	if r := h.row("westus2"); r.Status != replication.StatusCopying {
		t.Fatalf("row %s", r.Status)
	}
}

// An operator deletes a replica's row while its copy runs: nothing recreates it or fails.
func TestRowDeletedMidCopy(t *testing.T) {
	h := newHard(t)
	h.request("westus2")
	m := h.queue.Take()[0]
	if err := h.eng.StartCopy(h.ctx, m, 1); err != nil {
		t.Fatal(err)
	}
	if err := h.store.Delete(h.ctx, h.key("westus2")); err != nil {
		t.Fatal(err)
	}
	if rep := h.poll(); rep.Active != 0 || rep.Errors != 0 {
		t.Errorf("poll %+v after the row was deleted", rep)
	}
	check := &replication.CopyMessage{Kind: m.Kind, SourceID: m.SourceID, Target: m.Target, TargetID: m.TargetID, Attempt: 1, Run: m.Run, Check: 1}
	if err := h.eng.Handle(h.ctx, check, 1); err != nil {
		t.Errorf("check: %v", err)
	}
	if err := h.eng.StartCopy(h.ctx, m, 2); err != nil {
		t.Errorf("redelivery: %v", err)
	}
	if _, ok := h.store.Row(h.key("westus2")); ok {
		t.Error("a step recreated the deleted row")
	}
}

// A row deleted by an operator before its copy started, then requested again: the new run starts
// at attempt 1 again, and its copy message must neither be dropped by duplicate detection as the
// first run's nor be confused with a late delivery of the first run's message.
func TestRowDeletedAndRequestedAgain(t *testing.T) {
	h := newHard(t)
	h.request("westus2")
	first := h.queue.Take()[0]
	if err := h.store.Delete(h.ctx, h.key("westus2")); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Second)
	h.request("westus2")
	again := h.queue.Take()
	if len(again) != 1 || again[0].Attempt != first.Attempt || again[0].MessageID() == first.MessageID() {
		t.Fatalf("new run's messages %v, want one with attempt %d and a MessageId other than %s", again, first.Attempt, first.MessageID())
	}
	if err := h.eng.StartCopy(h.ctx, first, 2); err != nil { // a late delivery of the first run's message
		t.Fatal(err)
	}
	if n := h.src.Calls("CopyTo"); n != 0 {
		t.Errorf("the first run's stale message started a copy (%d copyTo calls)", n)
	}
	if err := h.eng.StartCopy(h.ctx, again[0], 1); err != nil {
		t.Fatal(err)
	}
	h.poll()
	if r := h.row("westus2"); r.Status != replication.StatusSucceeded || r.Attempt != 1 {
		t.Errorf("row %s attempt %d %s", r.Status, r.Attempt, r.ErrorCode)
	}
}

// A target removed from the settings while replicas for it exist: they fail with a cause that
// names it, instead of waiting for ever; the remaining target goes on.
func TestTargetRemovedFromTheSettings(t *testing.T) {
	h := newHard(t)
	h.request()
	msgs := h.queue.Take()
	cfg := h.cfg
	cfg.Targets = map[string]replication.Resource{"westus2": h.west}
	h.eng = h.build(cfg)
	for _, m := range msgs {
		if err := h.eng.StartCopy(h.ctx, m, 1); err != nil {
			t.Fatal(err)
		}
	}
	h.poll()
	if r := h.row("eastus"); r.Status != replication.StatusFailed || r.ErrorCode != replication.CodeUnknownTarget || !strings.Contains(r.ErrorMessage, "eastus") {
		t.Errorf("eastus: %s %s %q", r.Status, r.ErrorCode, r.ErrorMessage)
	}
	if r := h.row("westus2"); r.Status != replication.StatusSucceeded {
		t.Errorf("westus2: %s", r.Status)
	}
}

// The source model deleted between authorize and copyTo: the replica fails with SourceGone and
// the target's reservation is freed at once (not left until the authorization expires).
func TestSourceDeletedBeforeCopyTo(t *testing.T) {
	h := newHard(t)
	h.request("westus2")
	m := h.queue.Take()[0]
	h.src.Remove(replication.KindModel, "invoice-v1")
	if err := h.eng.StartCopy(h.ctx, m, 1); err != nil {
		t.Fatal(err)
	}
	if r := h.row("westus2"); r.Status != replication.StatusFailed || r.ErrorCode != replication.CodeSourceGone {
		t.Fatalf("row %s %s", r.Status, r.ErrorCode)
	}
	// The id is free again: a new authorization for it succeeds.
	if _, err := h.west.AuthorizeCopy(h.ctx, replication.KindModel, "invoice-v1", nil); err != nil {
		t.Errorf("the reservation was not freed: %v", err)
	}
}

// skewed delivers the message to a second instance from inside the first copyTo call.
type skewed struct {
	*rt.Resource
	fired   atomic.Bool
	deliver func()
}

func (s *skewed) CopyTo(ctx context.Context, k replication.Kind, id string, body []byte) (string, error) {
	if s.fired.CompareAndSwap(false, true) {
		s.deliver()
	}
	return s.Resource.CopyTo(ctx, k, id, body)
}

// Two instances whose clocks differ by more than the claim lease: the one ahead sees the other's
// claim as lapsed and may send copyTo with the same authorization. The service accepts a single-
// use authorization once, so one copy starts; the replica still ends succeeded on attempt 1 with
// exactly one copy in the target.
func TestClockSkewLargerThanTheLease(t *testing.T) {
	h := newHard(t)
	ahead := fakeclock.New(h.clock.Now().Add(5 * time.Minute)) // the lease is 2 minutes
	h.request("westus2")
	m := h.queue.Take()[0]
	cfgB := h.cfg
	cfgB.Now = ahead.Now
	b := h.build(cfgB)
	var secondErr error
	h.cfg.Source = &skewed{Resource: h.src, deliver: func() { secondErr = b.StartCopy(h.ctx, m, 2) }}
	a := h.build(h.cfg)
	if err := a.StartCopy(h.ctx, m, 1); err != nil {
		t.Fatal(err)
	}
	if secondErr != nil {
		t.Fatalf("the skewed instance: %v", secondErr)
	}
	for range 5 {
		h.clock.Advance(time.Minute)
		ahead.Advance(time.Minute)
		h.poll()
		if _, err := b.Poll(h.ctx); err != nil {
			t.Fatal(err)
		}
	}
	r := h.row("westus2")
	if r.Status != replication.StatusSucceeded || r.Attempt != 1 {
		t.Errorf("row %s attempt %d %s", r.Status, r.Attempt, r.ErrorCode)
	}
	if ids := h.west.IDs(replication.KindModel); len(ids) != 1 {
		t.Errorf("target holds %v, want the one copy", ids)
	}
}

// slowCopy reports copies as running until release is closed.
type slowCopy struct {
	*rt.Resource
	done *atomic.Bool
}

func (s slowCopy) GetOperation(ctx context.Context, u string) (replication.Operation, error) {
	op, err := s.Resource.GetOperation(ctx, u)
	if !s.done.Load() {
		op.Status, op.Percent = replication.OpRunning, 10
	}
	return op, err
}

// Several instances poll the same copies on their timers: one look per copy at a time, so the
// operation reads and the target verifications do not grow with the number of instances.
func TestInstancesShareTheLooksAtACopy(t *testing.T) {
	h := newHard(t)
	var done atomic.Bool
	h.cfg.Source = slowCopy{Resource: h.src, done: &done}
	instances := []*replication.Engine{h.build(h.cfg), h.build(h.cfg), h.build(h.cfg), h.build(h.cfg)}
	h.eng = instances[0]
	h.request("westus2")
	for _, m := range h.queue.Take() {
		if err := h.eng.StartCopy(h.ctx, m, 1); err != nil {
			t.Fatal(err)
		}
	}
	reads := func() int { return h.src.Calls("GetOperation") }
	for round := range 3 {
		h.clock.Advance(5 * time.Second)
		before := reads()
		for _, in := range instances {
			if _, err := in.Poll(h.ctx); err != nil {
				t.Fatal(err)
			}
		}
		if n := reads() - before; n != 1 {
			t.Errorf("round %d: 4 instances read the operation %d times, want once", round, n)
		}
	}
	done.Store(true)
	h.clock.Advance(5 * time.Second)
	verifies := h.west.Calls("GetModel")
	for _, in := range instances {
		if _, err := in.Poll(h.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.west.Calls("GetModel") - verifies; n != 1 {
		t.Errorf("the target was verified %d times by 4 instances, want once", n)
	}
	if r := h.row("westus2"); r.Status != replication.StatusSucceeded {
		t.Errorf("row %s", r.Status)
	}
}
