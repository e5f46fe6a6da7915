package replication_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dimirror/dimirror/internal/fakeclock"
	"github.com/dimirror/dimirror/internal/syncbuf"
	rt "github.com/dimirror/dimirror/shared/reconcile/reconciletest"
	. "github.com/dimirror/dimirror/shared/replication"
)

type harness struct {
	t     *testing.T
	clock *fakeclock.Clock
	w     *world
	src   *fakeResource
	west  *fakeResource
	east  *fakeResource
	store *rt.Store
	queue *memQueue
	cfg   Config // what eng was built from
	eng   *Engine
	logs  *syncbuf.Buffer
	ctx   context.Context
}

func newHarness(t *testing.T, tweak ...func(*Policy)) *harness {
	t.Helper()
	c := newClock()
	w := newWorld(c, "source", "westus2", "eastus")
	h := &harness{t: t, clock: c, w: w, src: w.res["source"], west: w.res["westus2"], east: w.res["eastus"],
		store: rt.NewStore(), queue: &memQueue{}, logs: &syncbuf.Buffer{}, ctx: context.Background()}
	p := Policy{MaxAttempts: 3, RetryBase: time.Minute, RetryMax: 10 * time.Minute, TransientDelay: 10 * time.Second,
		QuotaWait: 30 * time.Minute, AuthMargin: 5 * time.Minute, Lease: 2 * time.Minute, Workers: 4}
	for _, f := range tweak {
		f(&p)
	}
	h.cfg = Config{Source: h.src, SourceName: "source.example", Targets: map[string]Resource{"westus2": h.west, "eastus": h.east},
		Store: h.store, Queue: h.queue, Policy: p, Now: c.Now,
		Log: slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	h.eng = h.engine()
	h.src.addModel(KindModel, "invoice-v1", c.Now().Add(-time.Hour))
	h.src.addModel(KindClassifier, "router-v1", c.Now().Add(-time.Hour))
	return h
}

// engine builds another engine on the harness's configuration, changed by tweaks (another
// instance, or this one with a different source, target or store).
func (h *harness) engine(tweak ...func(*Config)) *Engine {
	h.t.Helper()
	cfg := h.cfg
	for _, f := range tweak {
		f(&cfg)
	}
	e, err := NewEngine(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	return e
}

func withSource(r Resource) func(*Config) { return func(c *Config) { c.Source = r } }

func (h *harness) request(kind Kind, id string, targets ...string) []Replica {
	h.t.Helper()
	reps, err := h.eng.Request(h.ctx, Request{Kind: kind, SourceID: id, Targets: targets})
	if err != nil {
		h.t.Fatalf("Request: %v", err)
	}
	return reps
}

// deliver runs every queued message through the copy starter, as a first delivery.
func (h *harness) deliver() {
	h.t.Helper()
	for _, m := range h.queue.take() {
		if err := h.eng.StartCopy(h.ctx, m, 1); err != nil {
			h.t.Fatalf("StartCopy: %v", err)
		}
	}
}

// settle runs the pipeline until nothing is in flight or rounds run out.
func (h *harness) settle(rounds int) {
	h.t.Helper()
	for range rounds {
		h.deliver()
		h.clock.Advance(5 * time.Second)
		rep, err := h.eng.Poll(h.ctx)
		if err != nil {
			h.t.Fatalf("Poll: %v", err)
		}
		if rep.Active == 0 && len(h.queue.msgs) == 0 {
			return
		}
		if rep.Due == 0 { // jump to the next scheduled step
			h.clock.Advance(time.Minute)
		}
	}
}

func (h *harness) row(target, id string) Replica {
	return h.rowOf(Key{Kind: KindModel, SourceID: id, Target: target})
}

func (h *harness) rowOf(k Key) Replica {
	r, _ := h.store.Row(k)
	return r
}

func TestHappyPathReachesEveryTarget(t *testing.T) {
	for _, kind := range []Kind{KindModel, KindClassifier} {
		t.Run(string(kind), func(t *testing.T) {
			h := newHarness(t)
			id := map[Kind]string{KindModel: "invoice-v1", KindClassifier: "router-v1"}[kind]
			reps := h.request(kind, id)
			if len(reps) != 2 {
				t.Fatalf("got %d replicas, want 2", len(reps))
			}
			for _, r := range reps {
				if r.Status != StatusAuthorized || r.Attempt != 1 {
					t.Fatalf("after request: %s status %s attempt %d", r.Target, r.Status, r.Attempt)
				}
			}
			h.deliver()
			for _, tgt := range []string{"westus2", "eastus"} {
				if r := h.rowOf(Key{kind, id, tgt}); r.Status != StatusCopying || r.OperationURL == "" {
					t.Fatalf("after startcopy: %s %s %q", tgt, r.Status, r.OperationURL)
				}
			}
			h.settle(5)
			for _, tgt := range []*fakeResource{h.west, h.east} {
				r := h.rowOf(Key{kind, id, tgt.name})
				if r.Status != StatusSucceeded || r.CompletedAt.IsZero() || r.Percent != 100 {
					t.Errorf("%s: status %s completed %v", tgt.name, r.Status, r.CompletedAt)
				}
				if _, ok := tgt.model(kind, id); !ok {
					t.Errorf("%s does not hold %s", tgt.name, id)
				}
				if n := tgt.count("AuthorizeCopy"); n != 1 {
					t.Errorf("%s: %d authorizations, want 1", tgt.name, n)
				}
			}
			if n := h.src.count("CopyTo"); n != 2 {
				t.Errorf("copyTo calls = %d, want 2", n)
			}
		})
	}
}

func TestRepeatedRequestDoesNotCopyAgain(t *testing.T) {
	h := newHarness(t)
	h.request(KindModel, "invoice-v1")
	again := h.request(KindModel, "invoice-v1") // in flight
	h.settle(5)
	done := h.request(KindModel, "invoice-v1") // done
	if again[0].Status != StatusAuthorized {
		t.Errorf("repeat while in flight answered %s", again[0].Status)
	}
	for _, r := range done {
		if r.Status != StatusSucceeded {
			t.Errorf("repeat when done answered %s for %s", r.Status, r.Target)
		}
	}
	if n := h.west.count("AuthorizeCopy"); n != 1 {
		t.Errorf("authorizeCopy on westus2 called %d times, want 1", n)
	}
	if len(h.queue.msgs) != 0 {
		t.Errorf("repeat queued %d messages", len(h.queue.msgs))
	}
}

func TestValidateNamesTheField(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		req   Request
		field string
	}{
		{Request{Kind: "pipeline", SourceID: "a1"}, "kind"},
		{Request{SourceID: "-bad"}, "sourceId"},
		{Request{SourceID: "x"}, "sourceId"}, // too short: the pattern needs two characters
		{Request{SourceID: "ok1", TargetID: strings.Repeat("a", 65)}, "targetId"},
		{Request{SourceID: "ok1", Targets: []string{"mars"}}, "targets"},
		{Request{SourceID: "ok1", Targets: []string{"eastus", "eastus"}}, "targets"},
	}
	for _, tt := range tests {
		err := h.eng.Validate(&tt.req)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("Validate(%+v) = %v, want a %s field error", tt.req, err, tt.field)
		}
	}
	if _, err := h.eng.Request(h.ctx, Request{SourceID: "nope-v9"}); !errors.Is(err, ErrSourceNotFound) {
		t.Errorf("missing source: %v, want ErrSourceNotFound", err)
	}
}

func TestDuplicateDeliveryStartsOneCopy(t *testing.T) {
	h := newHarness(t)
	h.request(KindModel, "invoice-v1", "westus2")
	msgs := h.queue.take()
	if len(msgs) != 1 {
		t.Fatalf("queued %d messages", len(msgs))
	}
	for i := 1; i <= 3; i++ {
		if err := h.eng.StartCopy(h.ctx, msgs[0], i); err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
	}
	h.settle(5)
	if n := h.src.count("CopyTo"); n != 1 {
		t.Errorf("copyTo called %d times, want 1", n)
	}
	if r := h.row("westus2", "invoice-v1"); r.Status != StatusSucceeded || r.Attempt != 1 {
		t.Errorf("row %s attempt %d", r.Status, r.Attempt)
	}
}

func TestCrashAfterCopyToBeforeRowWrite(t *testing.T) {
	h := newHarness(t)
	h.request(KindModel, "invoice-v1", "westus2")
	msg := h.queue.take()[0]
	// The claim write succeeds, the write after copyTo does not: the process "died" there.
	failAfterClaim := &failingUpdateStore{Store: h.store, failOn: 2}
	crashing := h.engine(func(c *Config) { c.Store = failAfterClaim })
	if err := crashing.StartCopy(h.ctx, msg, 1); err != nil {
		t.Fatalf("StartCopy: %v (a failed row write is transient: the message is rescheduled)", err)
	}
	again := h.queue.take()
	if len(again) != 1 || again[0].Retry != 1 {
		t.Fatalf("rescheduled %v, want the copy message once with retry 1", again)
	}
	h.clock.Advance(3 * time.Minute) // the claim's lease runs out; the rescheduled message arrives
	if err := h.eng.StartCopy(h.ctx, again[0], 1); err != nil {
		t.Fatalf("rescheduled delivery: %v", err)
	}
	h.settle(5)
	if n := h.src.count("CopyTo"); n != 1 {
		t.Errorf("copyTo called %d times, want 1 (the redelivery must find the running copy)", n)
	}
	r := h.row("westus2", "invoice-v1")
	if r.Status != StatusSucceeded || r.Attempt != 1 {
		t.Errorf("row %s attempt %d error %s", r.Status, r.Attempt, r.ErrorCode)
	}
}

// failingUpdateStore fails the failOn-th Update.
type failingUpdateStore struct {
	*rt.Store
	n, failOn int
}

func (s *failingUpdateStore) Update(ctx context.Context, r *Replica) error {
	s.n++
	if s.n == s.failOn {
		return errStoreDown
	}
	return s.Store.Update(ctx, r)
}

func TestExpiredAuthorizationIsRenewed(t *testing.T) {
	h := newHarness(t)
	h.request(KindModel, "invoice-v1", "westus2")
	h.clock.Advance(2 * time.Hour) // the message sat in the queue past the authorization's life
	h.deliver()
	r := h.row("westus2", "invoice-v1")
	if r.Attempt != 2 || r.Status != StatusAuthorized {
		t.Fatalf("after expired delivery: status %s attempt %d", r.Status, r.Attempt)
	}
	h.settle(5)
	r = h.row("westus2", "invoice-v1")
	if r.Status != StatusSucceeded || r.Attempt != 2 {
		t.Errorf("row %s attempt %d", r.Status, r.Attempt)
	}
	if n := h.west.count("DeleteModel"); n != 1 {
		t.Errorf("the unused reservation was freed %d times, want 1", n)
	}
}

func TestLostMessageIsRedrivenAfterExpiry(t *testing.T) {
	h := newHarness(t)
	h.request(KindModel, "invoice-v1", "westus2")
	h.queue.take() // dead-lettered, never processed
	h.clock.Advance(61 * time.Minute)
	if _, err := h.eng.Poll(h.ctx); err != nil {
		t.Fatal(err)
	}
	if r := h.row("westus2", "invoice-v1"); r.Status != StatusAuthorized || r.Attempt != 2 || r.ErrorCode != "" {
		t.Fatalf("after poll: %s attempt %d %s", r.Status, r.Attempt, r.ErrorCode)
	}
	h.settle(5)
	if r := h.row("westus2", "invoice-v1"); r.Status != StatusSucceeded {
		t.Errorf("row %s", r.Status)
	}
}

func TestFailedOperationsRetryThenFail(t *testing.T) {
	h := newHarness(t)
	internal := &ServiceError{Class: ClassRetryable, Code: "InternalServerError", Message: "An unexpected error occurred."}
	h.w.copyFails = []*ServiceError{internal, internal, internal}
	h.request(KindModel, "invoice-v1", "westus2")
	h.settle(40)
	r := h.row("westus2", "invoice-v1")
	if r.Status != StatusFailed || r.ErrorCode != "InternalServerError" || r.Attempt != 3 {
		t.Errorf("row %s code %s attempt %d, want failed InternalServerError after 3", r.Status, r.ErrorCode, r.Attempt)
	}
	// A later request starts a new run, which succeeds.
	h.request(KindModel, "invoice-v1", "westus2")
	h.settle(10)
	if r := h.row("westus2", "invoice-v1"); r.Status != StatusSucceeded || r.FirstAttempt != 4 {
		t.Errorf("re-request: %s first attempt %d", r.Status, r.FirstAttempt)
	}
}

func TestRetryBacksOffExponentially(t *testing.T) {
	p := Policy{RetryBase: 30 * time.Second, RetryMax: 5 * time.Minute}
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute}
	for i, w := range want {
		if got := p.Backoff(i + 1); got != w {
			t.Errorf("Backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
}

func TestOperationRecordGone(t *testing.T) {
	tests := []struct {
		name       string
		targetHas  bool
		wantStatus Status
		wantTry    int
	}{
		{"target holds the copy", true, StatusSucceeded, 1},
		{"no copy in the target", false, StatusPending, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.request(KindModel, "invoice-v1", "westus2")
			h.deliver()
			h.clock.Advance(10 * time.Second)
			// The operation record expires, and (for the second case) the copy never landed.
			h.w.mu.Lock()
			for u, op := range h.src.ops {
				if !tt.targetHas {
					op.fail = &ServiceError{Class: ClassRetryable, Code: "x"}
				}
				h.w.settle()
				delete(h.src.ops, u)
			}
			h.w.mu.Unlock()
			if _, err := h.eng.Poll(h.ctx); err != nil {
				t.Fatal(err)
			}
			r := h.row("westus2", "invoice-v1")
			if r.Status != tt.wantStatus || r.Attempt != tt.wantTry {
				t.Errorf("row %s attempt %d, want %s %d", r.Status, r.Attempt, tt.wantStatus, tt.wantTry)
			}
		})
	}
}

func TestConflictOnAuthorize(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(h *harness)
		replace    bool
		wantStatus Status
		wantCode   string
	}{
		{"same model already there", func(h *harness) {
			src, _ := h.src.model(KindModel, "invoice-v1")
			h.w.mu.Lock()
			h.west.models[mkey(KindModel, "invoice-v1")] = Model{ID: "invoice-v1", Created: src.Created, Expires: src.Expires}
			h.w.mu.Unlock()
		}, false, StatusSucceeded, ""},
		{"different model, no replace", func(h *harness) {
			h.west.addModel(KindModel, "invoice-v1", h.clock.Now().Add(-48*time.Hour))
		}, false, StatusFailed, "TargetExists"},
		{"dimirror's older copy, replace", func(h *harness) {
			old := h.clock.Now().Add(-48 * time.Hour)
			h.w.mu.Lock()
			h.west.models[mkey(KindModel, "invoice-v1")] = Model{ID: "invoice-v1", Created: old, Expires: old.Add(time.Hour),
				Tags: CopyTags("source.example", KindModel, "invoice-v1", old)}
			h.w.mu.Unlock()
		}, true, StatusAuthorized, ""},
		{"dimirror's older copy, no replace", func(h *harness) {
			old := h.clock.Now().Add(-48 * time.Hour)
			h.w.mu.Lock()
			h.west.models[mkey(KindModel, "invoice-v1")] = Model{ID: "invoice-v1", Created: old, Expires: old.Add(time.Hour),
				Tags: CopyTags("source.example", KindModel, "invoice-v1", old)}
			h.w.mu.Unlock()
		}, false, StatusFailed, "TargetExists"},
		{"a model built there by hand, replace", func(h *harness) {
			h.west.addModel(KindModel, "invoice-v1", h.clock.Now().Add(-48*time.Hour))
		}, true, StatusFailed, "TargetExists"},
		{"another source item's copy, replace", func(h *harness) {
			old := h.clock.Now().Add(-48 * time.Hour)
			h.w.mu.Lock()
			h.west.models[mkey(KindModel, "invoice-v1")] = Model{ID: "invoice-v1", Created: old, Expires: old.Add(time.Hour),
				Tags: CopyTags("source.example", KindModel, "receipt-v2", old)}
			h.w.mu.Unlock()
		}, true, StatusFailed, "TargetExists"},
		{"a copy of the same id from another origin, replace", func(h *harness) {
			old := h.clock.Now().Add(-48 * time.Hour)
			h.w.mu.Lock()
			h.west.models[mkey(KindModel, "invoice-v1")] = Model{ID: "invoice-v1", Created: old, Expires: old.Add(time.Hour),
				Tags: CopyTags("other.example", KindModel, "invoice-v1", old)}
			h.w.mu.Unlock()
		}, true, StatusFailed, "TargetExists"},
		{"reserved by an unused authorization", func(h *harness) {
			if _, err := h.west.AuthorizeCopy(h.ctx, KindModel, "invoice-v1", nil); err != nil {
				h.t.Fatal(err)
			}
		}, false, StatusAuthorized, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(p *Policy) { p.Replace = tt.replace })
			tt.setup(h)
			r := h.request(KindModel, "invoice-v1", "westus2")[0]
			if r.Status != tt.wantStatus || r.ErrorCode != tt.wantCode {
				t.Fatalf("status %s code %q (%s), want %s %q", r.Status, r.ErrorCode, r.ErrorMessage, tt.wantStatus, tt.wantCode)
			}
			if r.Status == StatusAuthorized {
				h.settle(5)
				if got := h.row("westus2", "invoice-v1"); got.Status != StatusSucceeded {
					t.Errorf("then %s", got.Status)
				}
			}
			if tt.wantCode == CodeTargetExists {
				if n := h.west.count("DeleteModel"); n != 0 {
					t.Errorf("a model dimirror cannot prove it made was deleted (%d deletes)", n)
				}
				// With replacing on, only a model of another origin can still fail the replica.
				if tt.replace && !strings.Contains(r.ErrorMessage, "DIMIRROR_REPLACE cannot help") {
					t.Errorf("the reason %q does not say that the setting cannot help", r.ErrorMessage)
				}
				if tt.replace && !strings.Contains(r.ErrorMessage, "of another origin") {
					t.Errorf("the reason %q does not say that the model is of another origin", r.ErrorMessage)
				}
			}
		})
	}
}

func TestTransientErrorsDoNotUseAttempts(t *testing.T) {
	h := newHarness(t)
	throttled := &ServiceError{Class: ClassTransient, Code: "429", StatusCode: 429, RetryAfter: 20 * time.Second}
	h.west.failNext("AuthorizeCopy", throttled, throttled)
	r := h.request(KindModel, "invoice-v1", "westus2")[0]
	if r.Status != StatusPending || r.Attempt != 1 || r.ErrorCode != "429" {
		t.Fatalf("after throttled authorize: %s attempt %d code %s", r.Status, r.Attempt, r.ErrorCode)
	}
	if want := h.clock.Now().Add(20 * time.Second); !r.NextAttemptAt.Equal(want) {
		t.Errorf("next attempt %v, want Retry-After honoured (%v)", r.NextAttemptAt, want)
	}
	h.settle(20)
	if r := h.row("westus2", "invoice-v1"); r.Status != StatusSucceeded || r.Attempt != 1 {
		t.Errorf("row %s attempt %d", r.Status, r.Attempt)
	}
}

func TestTransientCopyToIsRedelivered(t *testing.T) {
	h := newHarness(t)
	h.request(KindModel, "invoice-v1", "westus2")
	msg := h.queue.take()[0]
	h.src.failNext("CopyTo", &ServiceError{Class: ClassTransient, Code: "InternalServerError", StatusCode: 500})
	if err := h.eng.StartCopy(h.ctx, msg, 1); err != nil {
		t.Fatalf("a transient copyTo failure reschedules the message: %v", err)
	}
	again := h.queue.take()
	if len(again) != 1 || again[0].Retry != 1 || again[0].MessageID() == msg.MessageID() {
		t.Fatalf("rescheduled %v, want one copy message with retry 1 and a new MessageId", again)
	}
	if d := h.queue.delays; len(d) != 1 || d[0] != time.Second {
		t.Errorf("rescheduled after %v, want 1s (the first backoff)", d)
	}
	h.clock.Advance(3 * time.Minute)
	if err := h.eng.StartCopy(h.ctx, again[0], 1); err != nil {
		t.Fatal(err)
	}
	h.settle(5)
	if r := h.row("westus2", "invoice-v1"); r.Status != StatusSucceeded || r.Attempt != 1 {
		t.Errorf("row %s attempt %d", r.Status, r.Attempt)
	}
}

// deliverDuring redelivers the message from inside the first CopyTo call: the first delivery's
// lock was lost while it waited on copyTo, and the queue handed the message to another instance.
type deliverDuring struct {
	*fakeResource
	fired   atomic.Bool
	deliver func()
}

func (d *deliverDuring) CopyTo(ctx context.Context, k Kind, sourceID string, body []byte) (string, error) {
	if d.fired.CompareAndSwap(false, true) {
		d.deliver()
	}
	return d.fakeResource.CopyTo(ctx, k, sourceID, body)
}

// Two deliveries of one copy message at once (a lock lost mid-step): the second waits on the
// first's claim, and one copyTo spends the authorization. The authorizing step sends the message
// before it writes the row authorized, so a delivery can also meet the row still pending (and
// claim it, which makes that write lose): before, only an authorized row's claim counted there,
// and both deliveries called copyTo (found by the fault-injection suite).
func TestConcurrentDeliveryCopiesOnce(t *testing.T) {
	defer SetClaimPoll(10 * time.Millisecond)()
	for _, pending := range []bool{false, true} {
		t.Run(fmt.Sprintf("row pending %t", pending), func(t *testing.T) {
			h := newHarness(t)
			h.request(KindModel, "invoice-v1", "westus2")
			msg := h.queue.take()[0]
			if pending {
				r := h.row("westus2", "invoice-v1")
				r.Status, r.NextAttemptAt = StatusPending, time.Time{} // the authorized write lost
				h.store.Put(r)
			}
			other := h.engine()
			second := make(chan error, 1)
			first := h.engine(withSource(&deliverDuring{fakeResource: h.src, deliver: func() {
				go func() { second <- other.StartCopy(h.ctx, msg, 2) }()
				time.Sleep(50 * time.Millisecond) // the second delivery finds the row claimed and waits
			}}))
			if err := first.StartCopy(h.ctx, msg, 1); err != nil {
				t.Fatal(err)
			}
			if err := <-second; err != nil {
				t.Errorf("second delivery: %v", err)
			}
			if n := h.src.count("CopyTo"); n != 1 {
				t.Errorf("copyTo called %d times with one authorization, want 1", n)
			}
			h.settle(5)
			if r := h.row("westus2", "invoice-v1"); r.Status != StatusSucceeded || r.Attempt != 1 {
				t.Errorf("row %s attempt %d %s", r.Status, r.Attempt, r.ErrorCode)
			}
		})
	}
}

// A delivery that waited on another one's claim copies itself when that one gives up after a
// transient failure (and may have lost the message): the authorization is not wasted.
func TestWaitingDeliveryCopiesWhenTheOtherGivesUp(t *testing.T) {
	defer SetClaimPoll(10 * time.Millisecond)()
	h := newHarness(t)
	h.request(KindModel, "invoice-v1", "westus2")
	msg := h.queue.take()[0]
	other := h.engine()
	second := make(chan error, 1)
	h.src.failNext("CopyTo", &ServiceError{Class: ClassTransient, Code: "429", StatusCode: 429, RetryAfter: time.Second})
	first := h.engine(withSource(&deliverDuring{fakeResource: h.src, deliver: func() {
		go func() { second <- other.StartCopy(h.ctx, msg, 2) }()
		time.Sleep(50 * time.Millisecond)
	}}))
	if err := first.StartCopy(h.ctx, msg, 1); err != nil {
		t.Fatalf("the throttled first delivery reschedules its message: %v", err)
	}
	if err := <-second; err != nil {
		t.Fatalf("second delivery: %v", err)
	}
	if r := h.row("westus2", "invoice-v1"); r.Status != StatusCopying || r.Attempt != 1 {
		t.Errorf("row %s attempt %d, want copying on the first authorization", r.Status, r.Attempt)
	}
	if n := h.src.count("CopyTo"); n != 2 {
		t.Errorf("copyTo called %d times, want 2 (one throttled, one accepted)", n)
	}
}

func TestWaitingDeliveryGivesUpWithItsContext(t *testing.T) {
	h := newHarness(t)
	h.request(KindModel, "invoice-v1", "westus2")
	msg := h.queue.take()[0]
	r := h.row("westus2", "invoice-v1")
	r.NextAttemptAt = h.clock.Now().Add(time.Minute) // held by a delivery that hangs
	if err := h.store.Update(h.ctx, &r); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(h.ctx, 100*time.Millisecond)
	defer cancel()
	if err := h.eng.StartCopy(ctx, msg, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the context's deadline (the message is redelivered)", err)
	}
	if n := h.src.count("CopyTo"); n != 0 {
		t.Errorf("copyTo called %d times while another delivery held the row", n)
	}
}

func TestClaimLastsNoLongerThanTheStep(t *testing.T) {
	h := newHarness(t) // Lease is 2 minutes
	h.request(KindModel, "invoice-v1", "westus2")
	msg := h.queue.take()[0]
	var claimed time.Duration
	eng := h.engine(withSource(&deliverDuring{fakeResource: h.src, deliver: func() {
		claimed = h.row("westus2", "invoice-v1").NextAttemptAt.Sub(h.clock.Now())
	}}))
	ctx, cancel := context.WithTimeout(h.ctx, 30*time.Second) // the handler's deadline
	defer cancel()
	if err := eng.StartCopy(ctx, msg, 1); err != nil {
		t.Fatal(err)
	}
	if claimed <= 0 || claimed > 30*time.Second {
		t.Errorf("the claim lasted %s under a 30s deadline, want at most that (not the 2m lease)", claimed)
	}
}

// hangingCopy is a source whose copyTo never answers: only the caller's context ends it.
type hangingCopy struct{ *fakeResource }

func (h hangingCopy) CopyTo(ctx context.Context, _ Kind, _ string, _ []byte) (string, error) {
	<-ctx.Done()
	return "", &ServiceError{Class: ClassTransient, Code: "Timeout", Message: ctx.Err().Error()}
}

// A step must end with its claim: past the lease another delivery may take the row, and both
// would spend the authorization.
func TestStepEndsWithItsClaim(t *testing.T) {
	h := newHarness(t, func(p *Policy) { p.Lease = 100 * time.Millisecond })
	h.request(KindModel, "invoice-v1", "westus2")
	msg := h.queue.take()[0]
	eng := h.engine(withSource(hangingCopy{h.src}))
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- eng.StartCopy(h.ctx, msg, 1) }() // h.ctx has no deadline
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("a step cut off by its lease reschedules its message: %v", err)
		}
		if again := h.queue.take(); len(again) != 1 || again[0].Retry != 1 {
			t.Errorf("rescheduled %v, want the copy message with retry 1", again)
		}
		if d := time.Since(start); d < 90*time.Millisecond {
			t.Errorf("the step ended after %s, before its 100ms lease", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the step outlived its lease")
	}
	if r := h.row("westus2", "invoice-v1"); r.Status != StatusAuthorized {
		t.Errorf("row %s, want authorized with the claim given back", r.Status)
	}
}

func TestReleaseOutlivesTheStepsContext(t *testing.T) {
	h := newHarness(t)
	h.request(KindModel, "invoice-v1", "westus2")
	msg := h.queue.take()[0]
	before := h.row("westus2", "invoice-v1").NextAttemptAt
	ctx, cancel := context.WithCancel(h.ctx)
	// The handler's time runs out while copyTo is throttled.
	h.src.failNext("CopyTo", &ServiceError{Class: ClassTransient, Code: "429", StatusCode: 429})
	// The store fails calls whose context has ended, as the table on the network does.
	eng := h.engine(withSource(&deliverDuring{fakeResource: h.src, deliver: cancel}))
	if err := eng.StartCopy(ctx, msg, 1); err == nil {
		t.Fatal("want the transient failure")
	}
	if r := h.row("westus2", "invoice-v1"); !r.NextAttemptAt.Equal(before) || r.Status != StatusAuthorized {
		t.Errorf("row %s due %s after the step's context ended, want the claim given back (due %s)", r.Status, r.NextAttemptAt, before)
	}
}

func TestTransientCopyToReleasesTheClaim(t *testing.T) {
	h := newHarness(t)
	h.request(KindModel, "invoice-v1", "westus2")
	msg := h.queue.take()[0]
	h.src.failNext("CopyTo", &ServiceError{Class: ClassTransient, Code: "429", StatusCode: 429, RetryAfter: time.Second})
	if err := h.eng.StartCopy(h.ctx, msg, 1); err != nil {
		t.Fatalf("a transient copyTo failure reschedules the message: %v", err)
	}
	again := h.queue.take()
	if d := h.queue.delays; len(again) != 1 || len(d) != 1 || d[0] != time.Second {
		t.Fatalf("rescheduled %v after %v, want one message after the Retry-After of 1s", again, d)
	}
	// The rescheduled message comes a second later, well inside the lease: it must copy, not
	// wait for the poller.
	h.clock.Advance(time.Second)
	if err := h.eng.StartCopy(h.ctx, again[0], 1); err != nil {
		t.Fatal(err)
	}
	if r := h.row("westus2", "invoice-v1"); r.Status != StatusCopying {
		t.Fatalf("after the redelivery the row is %s, want copying", r.Status)
	}
	if n := h.src.count("CopyTo"); n != 2 {
		t.Errorf("copyTo called %d times, want 2 (one throttled, one accepted)", n)
	}
}

func TestTargetTakenAgainAfterFreeingIsRetried(t *testing.T) {
	h := newHarness(t)
	exists := &ServiceError{Class: ClassExists, Code: "ModelExists", StatusCode: 409}
	// The first two authorizations meet 409s (a lost answer retried by the client reserves the
	// id again right after it was freed); the next run of the step authorizes.
	h.west.failNext("AuthorizeCopy", exists, exists)
	r := h.request(KindModel, "invoice-v1", "westus2")[0]
	if r.Status != StatusPending || r.ErrorCode != "TargetReserved" || r.Attempt != 2 {
		t.Fatalf("after the second 409: %s attempt %d %s, want a pending retry", r.Status, r.Attempt, r.ErrorCode)
	}
	h.settle(10)
	if r := h.row("westus2", "invoice-v1"); r.Status != StatusSucceeded {
		t.Errorf("row %s %s", r.Status, r.ErrorCode)
	}
}

func TestTargetThatStaysTakenFailsAfterItsAttempts(t *testing.T) {
	h := newHarness(t)
	exists := &ServiceError{Class: ClassExists, Code: "ModelExists", StatusCode: 409}
	for range 20 {
		h.west.failNext("AuthorizeCopy", exists)
	}
	h.request(KindModel, "invoice-v1", "westus2")
	h.settle(20)
	if r := h.row("westus2", "invoice-v1"); r.Status != StatusFailed || r.ErrorCode != "TargetReserved" || r.Attempt-r.FirstAttempt+1 != 3 {
		t.Errorf("row %s %s after %d attempts, want failed TargetReserved after 3", r.Status, r.ErrorCode, r.Attempt-r.FirstAttempt+1)
	}
}

func TestPermanentCopyFailure(t *testing.T) {
	h := newHarness(t)
	h.request(KindModel, "invoice-v1", "westus2")
	h.src.failNext("CopyTo", &ServiceError{Class: ClassPermanent, Code: "DataProtectionTransformServiceError", StatusCode: 400,
		Message: "Data transfer request isn't allowed as it downgrades to a less secure data protection scheme."})
	h.deliver()
	r := h.row("westus2", "invoice-v1")
	if r.Status != StatusFailed || r.ErrorCode != "DataProtectionTransformServiceError" || !strings.Contains(r.ErrorMessage, "downgrades") {
		t.Errorf("row %s %s %q", r.Status, r.ErrorCode, r.ErrorMessage)
	}
}

func TestQuotaWaits(t *testing.T) {
	h := newHarness(t)
	h.west.failNext("AuthorizeCopy", &ServiceError{Class: ClassQuota, Code: "DocumentModelLimit", StatusCode: 400, Message: "Account can't create more than 500 models."})
	r := h.request(KindModel, "invoice-v1", "westus2")[0]
	if r.Status != StatusPending || r.Attempt != 1 || r.ErrorCode != "DocumentModelLimit" {
		t.Fatalf("%s attempt %d code %s", r.Status, r.Attempt, r.ErrorCode)
	}
	if r.NextAttemptAt.Sub(h.clock.Now()) != 30*time.Minute {
		t.Errorf("waits %v", r.NextAttemptAt.Sub(h.clock.Now()))
	}
}

func TestQueueDownLeavesPendingForRedrive(t *testing.T) {
	h := newHarness(t)
	h.queue.fail = 1
	r := h.request(KindModel, "invoice-v1", "westus2")[0]
	if r.Status != StatusPending || r.ErrorCode != "QueueUnavailable" {
		t.Fatalf("%s %s", r.Status, r.ErrorCode)
	}
	h.settle(10)
	if r := h.row("westus2", "invoice-v1"); r.Status != StatusSucceeded {
		t.Errorf("row %s %s", r.Status, r.ErrorCode)
	}
	if n := h.west.count("DeleteModel"); n != 1 {
		t.Errorf("reservation freed %d times, want 1", n)
	}
}

func TestConcurrentPollersAuthorizeOnce(t *testing.T) {
	h := newHarness(t)
	h.queue.fail = 2 // both replicas stay pending after the request
	h.request(KindModel, "invoice-v1")
	h.clock.Advance(time.Minute)
	other := h.engine()
	var wg sync.WaitGroup
	for _, e := range []*Engine{h.eng, other, h.eng, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.Poll(h.ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, tgt := range []*fakeResource{h.west, h.east} {
		// one failed send, then exactly one more authorization (after freeing the reservation)
		if n := tgt.count("AuthorizeCopy"); n > 3 {
			t.Errorf("%s authorized %d times", tgt.name, n)
		}
	}
	if n := len(h.queue.msgs); n != 2 {
		t.Errorf("queued %d messages, want 2", n)
	}
	h.settle(5)
	for _, tgt := range []string{"westus2", "eastus"} {
		if r := h.row(tgt, "invoice-v1"); r.Status != StatusSucceeded {
			t.Errorf("%s: %s", tgt, r.Status)
		}
	}
}

// pollDuring runs a poll pass from inside the first AuthorizeCopy call: another instance's timer
// firing while a webhook request is still authorizing.
type pollDuring struct {
	*fakeResource
	polled atomic.Bool
	poll   func()
}

func (p *pollDuring) AuthorizeCopy(ctx context.Context, kind Kind, id string, tags map[string]string) (Authorization, error) {
	if p.polled.CompareAndSwap(false, true) {
		p.poll()
	}
	return p.fakeResource.AuthorizeCopy(ctx, kind, id, tags)
}

func TestPollLeavesARequestsNewRowAlone(t *testing.T) {
	h := newHarness(t)
	var other *Engine
	west := &pollDuring{fakeResource: h.west, poll: func() {
		if _, err := other.Poll(h.ctx); err != nil {
			t.Error(err)
		}
	}}
	h.cfg.Targets = map[string]Resource{"westus2": west, "eastus": h.east}
	h.eng, other = h.engine(), h.engine()
	r := h.request(KindModel, "invoice-v1", "westus2")[0]
	if r.Status != StatusAuthorized {
		t.Fatalf("status %s %s", r.Status, r.ErrorCode)
	}
	if n := h.west.count("AuthorizeCopy"); n != 1 {
		t.Errorf("authorized %d times, want once", n)
	}
	if n := h.west.count("DeleteModel"); n != 0 {
		t.Errorf("the concurrent poll freed the request's reservation %d times", n)
	}
	h.settle(5)
	if r := h.row("westus2", "invoice-v1"); r.Status != StatusSucceeded || r.Attempt != 1 {
		t.Errorf("row %s attempt %d %s", r.Status, r.Attempt, r.ErrorCode)
	}
}

func TestStaleSourceIsReplacedOnlyWithReplace(t *testing.T) {
	for _, replace := range []bool{false, true} {
		t.Run(fmt.Sprintf("replace=%v", replace), func(t *testing.T) {
			h := newHarness(t, func(p *Policy) { p.Replace = replace })
			h.request(KindModel, "invoice-v1", "westus2")
			h.settle(5)
			h.clock.Advance(time.Hour)
			retrained := h.src.addModel(KindModel, "invoice-v1", h.clock.Now())
			r := h.request(KindModel, "invoice-v1", "westus2")[0]
			if !replace {
				if r.Status != StatusSucceeded || r.Attempt != 1 {
					t.Fatalf("without replace: %s attempt %d", r.Status, r.Attempt)
				}
				return
			}
			h.settle(5)
			got, _ := h.west.model(KindModel, "invoice-v1")
			if !got.Expires.Equal(retrained.Expires) {
				t.Errorf("target holds the old version (expires %v, want %v)", got.Expires, retrained.Expires)
			}
			if r := h.row("westus2", "invoice-v1"); r.Status != StatusSucceeded || r.Attempt != 2 {
				t.Errorf("row %s attempt %d", r.Status, r.Attempt)
			}
		})
	}
}

func TestNoSecretInRowsOrLogs(t *testing.T) {
	h := newHarness(t)
	h.request(KindModel, "invoice-v1")
	h.clock.Advance(2 * time.Hour) // force a renewal too
	h.settle(10)
	rows := 0
	for r, err := range h.eng.Replicas(h.ctx, Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		rows++
		if s := fmt.Sprintf("%+v", r); strings.Contains(s, "SECRET-TOKEN") {
			t.Errorf("row %s holds a token: %s", r.Key, s)
		}
	}
	if rows != 2 {
		t.Errorf("%d rows, want 2", rows)
	}
	if strings.Contains(h.logs.String(), "SECRET-TOKEN") {
		t.Error("a token reached the log")
	}
	m := CopyMessage{Authorization: []byte(`{"accessToken":"SECRET-TOKEN-1"}`)}
	if s := fmt.Sprint(m); strings.Contains(s, "SECRET") {
		t.Errorf("CopyMessage prints its authorization: %s", s)
	}
	if !strings.Contains(h.logs.String(), `"msg":"replica succeeded"`) {
		t.Error("no structured success log")
	}
}

func TestMessageIDIsPerAttempt(t *testing.T) {
	a := CopyMessage{Kind: KindModel, SourceID: "invoice-v1", Target: "westus2", Attempt: 1}
	b := a
	b.Attempt = 2
	if a.MessageID() == b.MessageID() || a.MessageID() != "model:invoice-v1:westus2:1" {
		t.Errorf("ids %q %q", a.MessageID(), b.MessageID())
	}
}

func TestCheckDelay(t *testing.T) {
	for _, tt := range []struct{ elapsed, want time.Duration }{
		{0, 500 * time.Millisecond},
		{time.Second, 500 * time.Millisecond},
		{3 * time.Second, 1500 * time.Millisecond},
		{10 * time.Second, 5 * time.Second},
		{time.Hour, 5 * time.Second},
	} {
		if got := CheckDelay(tt.elapsed); got != tt.want {
			t.Errorf("CheckDelay(%s) = %s, want %s", tt.elapsed, got, tt.want)
		}
	}
}

// checkUntilSettled delivers each scheduled check after its delay, as the queue would, until
// no check is left; it returns the delays.
func (h *harness) checkUntilSettled() []time.Duration {
	h.t.Helper()
	var delays []time.Duration
	for range 100 {
		checks := h.queue.takeChecks()
		if len(checks) == 0 {
			return delays
		}
		for _, c := range checks {
			delays = append(delays, c.after)
			h.clock.Advance(c.after)
			if err := h.eng.Check(h.ctx, c.msg); err != nil {
				h.t.Fatalf("Check: %v", err)
			}
		}
	}
	h.t.Fatal("checks never stopped")
	return nil
}

// The copy starter follows the copy it started with checks, so a finished copy is seen within a
// fraction of its duration rather than at the next poll pass; the checks stop with the copy.
func TestChecksFollowTheCopyUntilItSucceeds(t *testing.T) {
	h := newHarness(t) // copies take 2 s
	h.request(KindModel, "invoice-v1", "westus2")
	h.deliver()
	started := h.row("westus2", "invoice-v1").StartedAt
	delays := h.checkUntilSettled()
	want := []time.Duration{500 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond, 750 * time.Millisecond}
	if !slices.Equal(delays, want) {
		t.Errorf("checks after %v, want %v", delays, want)
	}
	r := h.row("westus2", "invoice-v1")
	if r.Status != StatusSucceeded {
		t.Fatalf("row %s after the checks, want succeeded", r.Status)
	}
	if seen := r.CompletedAt.Sub(started); seen < 2*time.Second || seen > 3*time.Second {
		t.Errorf("a 2 s copy was seen done after %s", seen)
	}
	if n := h.src.count("GetOperation"); n != len(want) {
		t.Errorf("%d operation reads for %d checks", n, len(want))
	}
}

func TestCheckLeavesOtherStatesAlone(t *testing.T) {
	tests := []struct {
		name  string
		setup func(h *harness, m *CopyMessage)
	}{
		{"replica gone", func(h *harness, m *CopyMessage) { m.SourceID = "unknown" }},
		{"newer attempt", func(h *harness, m *CopyMessage) { m.Attempt = 0 }},
		{"already succeeded", func(h *harness, m *CopyMessage) {
			h.clock.Advance(time.Minute)
			if _, err := h.eng.Poll(h.ctx); err != nil {
				h.t.Fatal(err)
			}
		}},
		{"followed long enough", func(h *harness, m *CopyMessage) { h.w.copyTime = time.Hour; h.clock.Advance(2 * time.Minute) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.request(KindModel, "invoice-v1", "westus2")
			h.deliver()
			checks := h.queue.takeChecks()
			if len(checks) != 1 || checks[0].msg.Check != 1 || len(checks[0].msg.Authorization) != 0 {
				t.Fatalf("scheduled %+v, want one check without an authorization", checks)
			}
			tt.setup(h, checks[0].msg)
			reads := h.src.count("GetOperation")
			if err := h.eng.Check(h.ctx, checks[0].msg); err != nil {
				t.Fatal(err)
			}
			if next := h.queue.takeChecks(); len(next) != 0 {
				t.Errorf("scheduled %d more checks", len(next))
			}
			if tt.name != "followed long enough" && h.src.count("GetOperation") != reads {
				t.Error("the check read the operation")
			}
		})
	}
}

// A check is best effort: a failed operation read leaves the copy to the next check or pass,
// never a redelivery of the check.
func TestCheckThatFailsIsDone(t *testing.T) {
	h := newHarness(t)
	h.request(KindModel, "invoice-v1", "westus2")
	h.deliver()
	c := h.queue.takeChecks()[0]
	h.src.failNext("GetOperation", &ServiceError{Class: ClassTransient, Code: "429", StatusCode: 429, RetryAfter: 3 * time.Second})
	h.clock.Advance(c.after)
	if err := h.eng.Check(h.ctx, c.msg); err != nil {
		t.Fatalf("a failed check returned %v; it must not be redelivered", err)
	}
	next := h.queue.takeChecks()
	if len(next) != 1 || next[0].after != 3*time.Second {
		t.Fatalf("next checks %+v, want one when the throttled read may be tried again (3s)", next)
	}
	h.queue.fail = 1 // the queue is down: the poll timer sees the copy
	h.clock.Advance(next[0].after)
	if err := h.eng.Check(h.ctx, next[0].msg); err != nil {
		t.Fatal(err)
	}
	h.settle(3)
	if r := h.row("westus2", "invoice-v1"); r.Status != StatusSucceeded {
		t.Errorf("row %s, want succeeded by the poll timer", r.Status)
	}
}

// scanRecorder records the bounds of the source's operation-list scans.
type scanRecorder struct {
	*fakeResource
	mu     sync.Mutex
	sinces []time.Time
	asked  []int // locations per scan
}

func (s *scanRecorder) FindCopyOperations(ctx context.Context, k Kind, since time.Time, locs ...string) (map[string]Operation, error) {
	s.mu.Lock()
	s.sinces = append(s.sinces, since)
	s.asked = append(s.asked, len(locs))
	s.mu.Unlock()
	return s.fakeResource.FindCopyOperations(ctx, k, since, locs...)
}

// After an outage many authorized replicas are due at once, their authorizations spent or
// expired without their copy messages starting a copy as far as the rows know. The poll pass
// looks for all their copies with one scan of the source's operations, reaching back only to the
// oldest authorization (less a minute for clocks): one scan per replica, each paging through a
// day of operations at the list budget's pace, held every pass past its deadline.
func TestPollPassScansTheOperationListOnce(t *testing.T) {
	h := newHarness(t)
	rec := &scanRecorder{fakeResource: h.src}
	eng := h.engine(withSource(rec))
	ids := []string{"m0", "m1", "m2", "m3", "m4"}
	for _, id := range ids {
		h.src.addModel(KindModel, id, h.clock.Now().Add(-time.Hour))
	}
	firstAuth := h.clock.Now()
	for i, id := range ids {
		if _, err := eng.Request(h.ctx, Request{Kind: KindModel, SourceID: id}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			h.clock.Advance(time.Second)
		}
	}
	// Every message is lost; those of m0 and m1 only after copyTo was accepted (the answer lost).
	for _, m := range h.queue.take() {
		if m.SourceID == "m0" || m.SourceID == "m1" {
			if _, err := h.src.CopyTo(h.ctx, KindModel, m.SourceID, m.Authorization); err != nil {
				t.Fatal(err)
			}
		}
	}
	h.clock.Advance(61 * time.Minute)
	rep, err := eng.Poll(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Due != 10 || rep.Errors != 0 {
		t.Fatalf("poll pass %+v, want 10 due without errors", rep)
	}
	if len(rec.sinces) != 1 || rec.asked[0] != 10 {
		t.Fatalf("%d scans of the operation list asking for %v locations, want 1 for all 10", len(rec.sinces), rec.asked)
	}
	if want := firstAuth.Add(-time.Minute); !rec.sinces[0].Equal(want) {
		t.Errorf("the scan reached back to %v, want the oldest authorization less a minute (%v)", rec.sinces[0], want)
	}
	for _, id := range ids {
		for _, target := range []string{"westus2", "eastus"} {
			r := h.row(target, id)
			copied := id == "m0" || id == "m1"
			switch {
			case copied && (r.Status != StatusCopying || r.Attempt != 1):
				t.Errorf("%s in %s: %s attempt %d, want its lost copy adopted (copying, attempt 1)", id, target, r.Status, r.Attempt)
			case !copied && (r.Status != StatusAuthorized || r.Attempt != 2):
				t.Errorf("%s in %s: %s attempt %d, want authorized again (attempt 2)", id, target, r.Status, r.Attempt)
			}
		}
	}
	h.eng = eng
	h.settle(10)
	for _, id := range ids {
		for _, target := range []string{"westus2", "eastus"} {
			if r := h.row(target, id); r.Status != StatusSucceeded {
				t.Errorf("%s in %s: %s %s", id, target, r.Status, r.ErrorCode)
			}
		}
	}
	if n := h.src.count("CopyTo"); n != 10 {
		t.Errorf("%d copyTo calls for 10 replicas, want 10 (no authorization spent twice, none wasted)", n)
	}
}

// A pass's shared scan that fails counts against every replica it was for, like each one's own
// scan would have; none renews its authorization without knowing whether its copy started.
func TestPollPassSharedScanFails(t *testing.T) {
	h := newHarness(t)
	h.request(KindModel, "invoice-v1")
	h.queue.take()
	h.clock.Advance(61 * time.Minute)
	h.src.failNext("FindCopyOperations", &ServiceError{Class: ClassTransient, Code: "ServiceUnavailable", StatusCode: 503})
	rep, err := h.eng.Poll(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Due != 2 {
		t.Fatalf("poll pass %+v, want 2 due", rep)
	}
	if n := h.src.count("FindCopyOperations"); n != 1 {
		t.Errorf("%d scans, want 1", n)
	}
	for _, target := range []string{"westus2", "eastus"} {
		if r := h.row(target, "invoice-v1"); r.Status != StatusAuthorized || r.Attempt != 1 || r.TransientSince.IsZero() {
			t.Errorf("%s: %s attempt %d transient since %v, want still authorized on attempt 1 with the failure recorded", target, r.Status, r.Attempt, r.TransientSince)
		}
	}
	h.settle(10)
	for _, target := range []string{"westus2", "eastus"} {
		if r := h.row(target, "invoice-v1"); r.Status != StatusSucceeded {
			t.Errorf("%s: %s %s", target, r.Status, r.ErrorCode)
		}
	}
}

// takenMessage requests invoice-v1 into westus2, with copies that take copyTime, and takes its
// copy message off the queue; with started, a copy is started with it whose answer was lost.
func (h *harness) takenMessage(copyTime time.Duration, started bool) *CopyMessage {
	h.t.Helper()
	h.w.copyTime = copyTime
	h.request(KindModel, "invoice-v1", "westus2")
	msg := h.queue.take()[0]
	if started {
		if _, err := h.src.CopyTo(h.ctx, KindModel, msg.SourceID, msg.Authorization); err != nil {
			h.t.Fatal(err)
		}
	}
	return msg
}

// A copy message handled after its authorization's margin renews it. On a first delivery the
// authorization is known to be unused, so the 409 on its id is freed at once; a redelivery may
// follow a delivery that started the copy and lost the answer, so the copy is looked for first.
func TestLateCopyMessageRenews(t *testing.T) {
	tests := []struct {
		name         string
		delivery     int
		copyStarted  bool
		scans, frees int
		status       Status
		attempt      int
		copyToCalls  int
	}{
		{"first delivery", 1, false, 0, 1, StatusAuthorized, 2, 0},
		{"redelivery, no copy", 2, false, 1, 1, StatusAuthorized, 2, 0},
		{"redelivery after a copy whose answer was lost", 2, true, 1, 0, StatusCopying, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			msg := h.takenMessage(2*time.Hour, tt.copyStarted) // still running when the message comes back
			h.clock.Advance(56 * time.Minute)                  // inside AuthMargin (5 min) of the 1 h lifetime
			if err := h.eng.StartCopy(h.ctx, msg, tt.delivery); err != nil {
				t.Fatal(err)
			}
			r := h.row("westus2", "invoice-v1")
			if r.Status != tt.status || r.Attempt != tt.attempt {
				t.Errorf("row %s attempt %d (%s), want %s attempt %d", r.Status, r.Attempt, r.ErrorCode, tt.status, tt.attempt)
			}
			if n := h.src.count("FindCopyOperations"); n != tt.scans {
				t.Errorf("%d scans of the source's operations, want %d", n, tt.scans)
			}
			if n := h.west.count("DeleteModel"); n != tt.frees {
				t.Errorf("%d deletes in the target, want %d", n, tt.frees)
			}
			if n := h.src.count("CopyTo"); n != tt.copyToCalls {
				t.Errorf("%d copyTo calls, want %d", n, tt.copyToCalls)
			}
		})
	}
}

// The first authorization of a run that meets its target id reserved cannot tell whose the
// reservation is: an earlier run's copy may still be running into it (the row was deleted and
// requested again), so it looks through the source's operations and adopts that copy. Once the
// run has reserved the id itself (ReservedAt), a reservation is its own: freed without a search.
func TestReservedIDOnARunsFirstAuthorization(t *testing.T) {
	tests := []struct {
		name        string
		earlierCopy bool // an earlier run's copy is running into the id; else a bare reservation
		status      Status
		scans       int
		frees       int
	}{
		{"an earlier run's copy still running", true, StatusCopying, 1, 0},
		{"a reservation no copy used", false, StatusAuthorized, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.takenMessage(5*time.Minute, tt.earlierCopy) // still running when the new run starts
			if err := h.store.Delete(h.ctx, Key{Kind: KindModel, SourceID: "invoice-v1", Target: "westus2"}); err != nil {
				t.Fatal(err)
			}
			h.clock.Advance(time.Minute)
			h.request(KindModel, "invoice-v1", "westus2")
			r := h.row("westus2", "invoice-v1")
			if r.Status != tt.status || r.ReservedAt.IsZero() != tt.earlierCopy {
				t.Errorf("row %s reserved at %v, want %s", r.Status, r.ReservedAt, tt.status)
			}
			if n := h.src.count("FindCopyOperations"); n != tt.scans {
				t.Errorf("%d scans, want %d", n, tt.scans)
			}
			if n := h.west.count("DeleteModel"); n != tt.frees {
				t.Errorf("%d deletes, want %d", n, tt.frees)
			}
			h.clock.Advance(h.w.copyTime) // the earlier copy ends
			h.w.copyTime = 2 * time.Second
			h.settle(10)
			if r := h.row("westus2", "invoice-v1"); r.Status != StatusSucceeded {
				t.Errorf("row %s %s", r.Status, r.ErrorCode)
			}
			if n := h.src.count("CopyTo"); n != 1 {
				t.Errorf("%d copyTo calls, want 1", n)
			}
		})
	}
}

// hangingAuthorize answers authorizeCopy only when the caller gives up.
type hangingAuthorize struct{ *fakeResource }

func (h hangingAuthorize) AuthorizeCopy(ctx context.Context, _ Kind, _ string, _ map[string]string) (Authorization, error) {
	<-ctx.Done()
	return Authorization{}, ctx.Err()
}

// A step cut short by its claim's end still records why: the write of its outcome does not share
// the deadline that ended it. Without the record the row stays due and every pass runs into the
// same deadline at once, with no back-off and no end (DIMIRROR_GIVE_UP_AFTER counts from the
// recorded streak).
func TestStepCutShortByItsClaimRecordsTheFailure(t *testing.T) {
	h := newHarness(t, func(p *Policy) { p.Lease = 50 * time.Millisecond })
	eng := h.engine(func(c *Config) {
		c.Targets = map[string]Resource{"westus2": hangingAuthorize{h.west}, "eastus": h.east}
	})
	if _, err := eng.Request(h.ctx, Request{Kind: KindModel, SourceID: "invoice-v1", Targets: []string{"westus2"}}); err != nil {
		t.Fatal(err)
	}
	r := h.row("westus2", "invoice-v1")
	if r.Status != StatusPending || r.ErrorCode != "Timeout" || r.TransientSince.IsZero() {
		t.Fatalf("after the request: %s %q transient since %v, want pending, Timeout recorded", r.Status, r.ErrorCode, r.TransientSince)
	}
	if want := h.clock.Now().Add(h.cfg.Policy.TransientDelay); !r.NextAttemptAt.Equal(want) {
		t.Errorf("next attempt at %v, want after the transient delay (%v)", r.NextAttemptAt, want)
	}
	h.clock.Advance(h.cfg.Policy.TransientDelay)
	rep, err := eng.Poll(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Due != 1 || rep.Errors != 0 {
		t.Errorf("poll %+v, want the step's failure recorded on the row, not a pass error", rep)
	}
	if r := h.row("westus2", "invoice-v1"); r.NextAttemptAt.Before(h.clock.Now().Add(h.cfg.Policy.TransientDelay)) {
		t.Errorf("after the pass: next attempt at %v, want a back-off", r.NextAttemptAt)
	}
}

// meetAtAuthorize answers authorizeCopy only once every target of the request has been asked.
type meetAtAuthorize struct {
	*fakeResource
	arrived *sync.WaitGroup
	met     chan struct{}
}

func (m meetAtAuthorize) AuthorizeCopy(ctx context.Context, k Kind, id string, tags map[string]string) (Authorization, error) {
	m.arrived.Done()
	select {
	case <-m.met:
		return m.fakeResource.AuthorizeCopy(ctx, k, id, tags)
	case <-time.After(5 * time.Second):
		return Authorization{}, errors.New("the other target was not asked while this one was")
	}
}

// A webhook naming several targets waits for the slowest of them, not for their sum: each target
// is its own resource with its own budget, so their authorizations go side by side.
func TestRequestAuthorizesTargetsSideBySide(t *testing.T) {
	h := newHarness(t)
	var arrived sync.WaitGroup
	arrived.Add(2)
	met := make(chan struct{})
	go func() { arrived.Wait(); close(met) }()
	eng := h.engine(func(c *Config) {
		c.Targets = map[string]Resource{"westus2": meetAtAuthorize{h.west, &arrived, met}, "eastus": meetAtAuthorize{h.east, &arrived, met}}
	})
	reps, err := eng.Request(h.ctx, Request{Kind: KindModel, SourceID: "invoice-v1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 2 || reps[0].Target != "eastus" || reps[1].Target != "westus2" {
		t.Fatalf("replicas %v, want eastus and westus2 in the targets' order", reps)
	}
	for _, r := range reps {
		if r.Status != StatusAuthorized {
			t.Errorf("%s: %s %s %s", r.Target, r.Status, r.ErrorCode, r.ErrorMessage)
		}
	}
}
