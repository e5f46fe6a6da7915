package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/internal/devstack"
	"github.com/dimirror/dimirror/shared/docintel"
)

// requestAll asks for every id and fails the test on anything but 200/202. Like a well-behaved
// caller it tries again after a 503 (the answer when the source itself could not be read).
func (e *env) requestAll(ids ...string) {
	e.t.Helper()
	for _, id := range ids {
		st, _, b := e.call("POST", "/api/replications", `{"sourceId":"`+id+`"}`, "")
		for try := 0; st == http.StatusServiceUnavailable && try < 5; try++ {
			time.Sleep(time.Second)
			st, _, b = e.call("POST", "/api/replications", `{"sourceId":"`+id+`"}`, "")
		}
		if st != http.StatusAccepted && st != http.StatusOK {
			e.t.Fatalf("POST %s: %d %s", id, st, b)
		}
	}
}

// assertCopiedOnce checks that no authorization was accepted by copyTo twice and that each
// target holds each model.
func (e *env) assertCopiedOnce(ids ...string) {
	e.t.Helper()
	for _, a := range e.stack.DI.Stats().Authorizations {
		if a.CopyToAfterConsumed > 0 {
			e.t.Errorf("authorization for %s on %s sent to copyTo %d times after a copy had consumed it", a.TargetID, a.Resource, a.CopyToAfterConsumed)
		}
	}
	for _, target := range []string{"westus2", "eastus"} {
		for _, id := range ids {
			if _, ok := e.stack.DI.Resource(target).Model(didev.KindModel, id); !ok {
				e.t.Errorf("%s does not hold %s", target, id)
			}
		}
	}
}

func seeds(n int) (ids []string, s []didev.Seed) {
	for i := range n {
		id := fmt.Sprintf("form-%02d", i)
		ids = append(ids, id)
		s = append(s, didev.Seed{Resource: "source", Kind: didev.KindModel, ID: id})
	}
	return ids, s
}

// Throttling, server errors and dropped connections cost time, never a replica.
func TestRunThroughThrottlingAndServerErrors(t *testing.T) {
	t.Parallel() // waits on timers: overlap with the other waiting tests
	ids, sd := seeds(6)
	e := startStack(t, devstack.Options{DI: func(o *didev.Options) {
		o.Seeds = append(o.Seeds, sd...)
		o.Faults = didev.Faults{HTTP429: 0.15, HTTP500: 0.1, Reset: 0.05, Seed: 7}
	}})
	e.run()
	e.requestAll(ids...)
	for _, id := range ids {
		for _, r := range e.waitReplicas("model", id, 60*time.Second).Replicas {
			if r.Status != "succeeded" {
				t.Errorf("%s → %s: %s %+v", id, r.Target, r.Status, r.Error)
			}
		}
	}
	e.assertCopiedOnce(ids...)
	var injected int64
	for _, rs := range e.stack.DI.Stats().Resources {
		for _, c := range rs.Categories {
			injected += c.Injected429 + c.Injected5xx + c.Resets
		}
	}
	if injected == 0 {
		t.Error("no fault was injected: the test proved nothing")
	}
	e.assertNoSecrets()
}

// A copy operation that keeps failing is retried with backoff, then recorded as failed with the
// service's code; once the cause passes, a new request succeeds.
func TestRunFailedCopiesRetryThenFail(t *testing.T) {
	t.Parallel() // waits on timers: overlap with the other waiting tests
	e := startStack(t, devstack.Options{
		DI:       func(o *didev.Options) { o.Faults = didev.Faults{CopyFail: 1} },
		Settings: map[string]string{"DIMIRROR_MAX_ATTEMPTS": "3", "DIMIRROR_RETRY_BASE": "1s"},
	})
	e.run()
	e.requestAll("invoice-v1")
	for _, r := range e.waitReplicas("model", "invoice-v1", 60*time.Second).Replicas {
		if r.Status != "failed" || r.Attempt != 3 || r.Error == nil || r.Error.Code != "InternalServerError" {
			t.Errorf("%s: %s attempt %d error %+v", r.Target, r.Status, r.Attempt, r.Error)
		}
	}
	if err := e.stack.DI.SetFaults(didev.Faults{}); err != nil {
		t.Fatal(err)
	}
	e.requestAll("invoice-v1")
	for _, r := range e.waitReplicas("model", "invoice-v1", 30*time.Second).Replicas {
		if r.Status != "succeeded" || r.Attempt != 4 {
			t.Errorf("after the fault passed, %s: %s attempt %d", r.Target, r.Status, r.Attempt)
		}
	}
}

// An authorization that expires while its message waits is renewed (Attempt+1) with no human.
func TestServeRenewsExpiredAuthorization(t *testing.T) {
	t.Parallel() // waits on timers: overlap with the other waiting tests
	e := startStack(t, devstack.Options{
		DI:       func(o *didev.Options) { o.AuthTTL = 2 * time.Second },
		Settings: map[string]string{"DIMIRROR_AUTH_MARGIN": "0s"},
	})
	h := e.serve()
	if st, b := h.httpTrigger("authorize", "POST", "/api/replications", nil, `{"sourceId":"invoice-v1","targets":["westus2"]}`); st != http.StatusAccepted {
		t.Fatalf("authorize: %d %s", st, b)
	}
	time.Sleep(2500 * time.Millisecond) // the message waits longer than the authorization lives
	h.deliver(1, true)
	r := h.status("model", "invoice-v1").Replicas[0]
	if r.Status != "authorized" || r.Attempt != 2 {
		t.Fatalf("after the expired delivery: %s attempt %d", r.Status, r.Attempt)
	}
	h.deliver(1, true)
	r = h.pollUntilSettled("model", "invoice-v1").Replicas[0]
	if r.Status != "succeeded" || r.Attempt != 2 {
		t.Errorf("%s attempt %d", r.Status, r.Attempt)
	}
	// The first authorization's reservation was freed, not left behind.
	if n := len(e.stack.DI.Resource("westus2").Reservations()); n != 0 {
		t.Errorf("%d reservations left on the target", n)
	}
}

// A copy message delivered twice (the host's at-least-once delivery) starts one copy.
func TestServeDuplicateDeliveryCopiesOnce(t *testing.T) {
	t.Parallel() // waits on timers: overlap with the other waiting tests
	e := startStack(t, devstack.Options{})
	h := e.serve()
	if st, b := h.httpTrigger("authorize", "POST", "/api/replications", nil, `{"sourceId":"invoice-v1","targets":["westus2"]}`); st != http.StatusAccepted {
		t.Fatalf("authorize: %d %s", st, b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msgs, err := h.rcv.ReceiveMessages(ctx, 1, nil)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("receive: %v %d", err, len(msgs))
	}
	for delivery := 1; delivery <= 3; delivery++ {
		p := serviceBusPayload(msgs[0])
		p["Metadata"].(map[string]any)["DeliveryCount"] = fmt.Sprint(delivery)
		if st, out := h.post("startcopy", p); st != http.StatusOK {
			t.Fatalf("delivery %d: %d %v", delivery, st, out)
		}
	}
	if r := h.pollUntilSettled("model", "invoice-v1").Replicas[0]; r.Status != "succeeded" || r.Attempt != 1 {
		t.Errorf("%s attempt %d", r.Status, r.Attempt)
	}
	accepted := 0
	for _, a := range e.stack.DI.Stats().Authorizations {
		accepted += a.CopyToAccepted
	}
	if accepted != 1 {
		t.Errorf("copyTo accepted %d times, want 1", accepted)
	}
}

// When the operation record is gone (the service keeps them about a day), the target decides.
func TestServeOperationRecordGone(t *testing.T) {
	e := startStack(t, devstack.Options{DI: func(o *didev.Options) { o.OpTTL = 500 * time.Millisecond }})
	h := e.serve()
	if st, b := h.httpTrigger("authorize", "POST", "/api/replications", nil, `{"sourceId":"invoice-v1","targets":["westus2"]}`); st != http.StatusAccepted {
		t.Fatalf("authorize: %d %s", st, b)
	}
	h.deliver(1, true)
	time.Sleep(time.Second) // the copy finished and its operation was forgotten
	h.poll()
	if r := h.status("model", "invoice-v1").Replicas[0]; r.Status != "succeeded" || r.Attempt != 1 {
		t.Errorf("%s attempt %d error %+v", r.Status, r.Attempt, r.Error)
	}
}

// 409 on authorizeCopy: a different model under the id fails the replica with a clear reason
// (dimirror never overwrites what it cannot prove is its own); a reservation left by an unused
// authorization is freed.
func TestRunConflictOnAuthorize(t *testing.T) {
	t.Parallel() // waits on timers: overlap with the other waiting tests
	e := startStack(t, devstack.Options{})
	// Someone else's model under the same id, trained later than the source's.
	time.Sleep(1100 * time.Millisecond)
	if err := e.stack.DI.Resource("westus2").Seed(didev.Seed{Kind: didev.KindModel, ID: "receipt-v2", Description: "someone else's"}); err != nil {
		t.Fatal(err)
	}
	// An authorization nobody used reserves invoice-v1 on eastus.
	target, err := docintel.New(e.stack.DI.Endpoint("eastus"), docintel.Options{Key: devstack.Key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := target.AuthorizeCopy(context.Background(), docintel.KindModel, docintel.AuthorizeRequest{TargetID: "invoice-v1"}); err != nil {
		t.Fatal(err)
	}
	e.run()
	e.requestAll("receipt-v2", "invoice-v1")
	for _, r := range e.waitReplicas("model", "receipt-v2", 30*time.Second).Replicas {
		switch r.Target {
		case "westus2":
			if r.Status != "failed" || r.Error == nil || r.Error.Code != "TargetExists" || !strings.Contains(r.Error.Message, "DIMIRROR_REPLACE") {
				t.Errorf("westus2: %s %+v", r.Status, r.Error)
			}
		case "eastus":
			if r.Status != "succeeded" {
				t.Errorf("eastus: %s %+v", r.Status, r.Error)
			}
		}
	}
	if m, _ := e.stack.DI.Resource("westus2").Model(didev.KindModel, "receipt-v2"); m.Description != "someone else's" {
		t.Errorf("the foreign model was touched: %+v", m)
	}
	for _, r := range e.waitReplicas("model", "invoice-v1", 30*time.Second).Replicas {
		if r.Status != "succeeded" {
			t.Errorf("invoice-v1 → %s: %s %+v", r.Target, r.Status, r.Error)
		}
	}
}

// Several `dimirror run` instances at once share the work safely.
func TestTwoRunInstances(t *testing.T) {
	t.Parallel() // waits on timers: overlap with the other waiting tests
	ids, sd := seeds(12)
	e := startStack(t, devstack.Options{DI: func(o *didev.Options) { o.Seeds = append(o.Seeds, sd...) }})
	e.run()
	first := e.base
	e.run()
	for i, id := range ids {
		e.base = []string{first, e.base}[i%2] // alternate the instance that takes each request
		e.requestAll(id)
	}
	for _, id := range ids {
		for _, r := range e.waitReplicas("model", id, 60*time.Second).Replicas {
			if r.Status != "succeeded" || r.Attempt != 1 {
				t.Errorf("%s → %s: %s attempt %d", id, r.Target, r.Status, r.Attempt)
			}
		}
	}
	e.assertCopiedOnce(ids...)
	if n := len(e.stack.DI.Stats().Authorizations); n != 2*len(ids) {
		t.Errorf("%d authorizations for %d replicas", n, 2*len(ids))
	}
}

// A message that is not a copy message is dead-lettered with a reason by `dimirror run`.
func TestRunDeadLettersPoison(t *testing.T) {
	e := startStack(t, devstack.Options{})
	e.run()
	client, err := azservicebus.NewClientFromConnectionString(e.stack.Settings["ServiceBusConnection"], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(context.Background())
	snd, err := client.NewSender(e.stack.Settings["DIMIRROR_QUEUE"], nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snd.SendMessage(context.Background(), &azservicebus.Message{Body: []byte(`{"orderId":42}`)}, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, _ := e.stack.Bus.QueueStats(e.stack.Settings["DIMIRROR_QUEUE"])
		if st.DeadLettered == 1 {
			if st.DeadLetterReasons["PoisonMessage"] != 1 {
				t.Errorf("reasons %v", st.DeadLetterReasons)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not dead-lettered: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
