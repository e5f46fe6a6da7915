package queue

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/dimirror/dimirror/emulators/devbus"
	"github.com/dimirror/dimirror/shared/replication"
)

func sampleMessage(attempt int) *replication.CopyMessage {
	return &replication.CopyMessage{Kind: replication.KindModel, SourceID: "invoice-v1", Target: "westus2", TargetID: "invoice-v1",
		Attempt: attempt, ExpiresAt: time.Date(2026, 5, 1, 13, 0, 0, 0, time.UTC),
		Authorization: json.RawMessage(`{"targetModelId":"invoice-v1","accessToken":"SECRET-ACCESS-TOKEN"}`)}
}

func TestDecodeRejectsPoison(t *testing.T) {
	good, _ := Encode(sampleMessage(1))
	if m, err := Decode(good); err != nil || m.Attempt != 1 || string(m.Authorization) != string(sampleMessage(1).Authorization) {
		t.Fatalf("Decode(good) = %+v, %v", m, err)
	}
	tests := map[string]string{
		"not json":          `hello`,
		"unknown field":     `{"kind":"model","bogus":1}`,
		"missing":           `{"kind":"model","sourceId":"invoice-v1"}`,
		"bad kind":          strings.Replace(string(good), `"model"`, `"pipeline"`, 1),
		"trailing":          string(good) + `{}`,
		"stray brace":       string(good) + `}`,
		"bad auth":          strings.Replace(string(good), `{"targetModelId"`, `"x"`, 1),
		"secret in bad":     `{"kind":"model","sourceId":"SECRET-ACCESS-TOKEN"`,
		"check with auth":   strings.Replace(string(good), `"attempt":1`, `"attempt":1,"check":2`, 1),
		"negative check":    `{"kind":"model","sourceId":"a","target":"w","targetId":"a","attempt":1,"check":-1}`,
		"copy without auth": `{"kind":"model","sourceId":"a","target":"w","targetId":"a","attempt":1}`,
	}
	for name, body := range tests {
		_, err := Decode([]byte(body))
		var pe *PoisonError
		if !errors.As(err, &pe) {
			t.Errorf("%s: %v, want a PoisonError", name, err)
			continue
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: error echoes the body: %v", name, err)
		}
	}
}

func checkMessage(n int) *replication.CopyMessage {
	return &replication.CopyMessage{Kind: replication.KindModel, SourceID: "invoice-v1", Target: "westus2", TargetID: "invoice-v1", Attempt: 1, Check: n}
}

func TestCheckMessage(t *testing.T) {
	body, err := Encode(checkMessage(3))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(body), "authorization") {
		t.Errorf("a check message body names an authorization: %s", body)
	}
	m, err := Decode(body)
	if err != nil || m.Check != 3 || m.Attempt != 1 {
		t.Fatalf("Decode = %+v, %v", m, err)
	}
	if id := m.MessageID(); id != "model:invoice-v1:westus2:1:check3" {
		t.Errorf("MessageID %q", id)
	}
	if id := sampleMessage(1).MessageID(); id != "model:invoice-v1:westus2:1" {
		t.Errorf("copy MessageID %q", id)
	}
}

// A scheduled check stays invisible until its time, through the real client and devbus.
func TestScheduledCheckArrivesAfterItsDelay(t *testing.T) {
	env := startBus(t, 5*time.Second)
	s, err := NewSender(env.client, env.queue, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	if err := s.ScheduleCheck(context.Background(), checkMessage(1), 700*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	arrived := make(chan time.Time, 1)
	stop := env.runLoop(t, func(_ context.Context, m *replication.CopyMessage, _ int) error {
		if m.Check == 1 {
			arrived <- time.Now()
		}
		return nil
	})
	defer stop()
	select {
	case at := <-arrived:
		if d := at.Sub(sent); d < 600*time.Millisecond {
			t.Errorf("the check arrived %s after it was scheduled 700ms ahead", d)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the scheduled check never arrived")
	}
}

type busEnv struct {
	broker *devbus.Broker
	client *azservicebus.Client
	queue  string
}

func startBus(t *testing.T, lock time.Duration) *busEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := devbus.Start(ctx, devbus.Options{Listen: "127.0.0.1:0",
		Queues: []devbus.QueueOptions{{Name: "copy-requests", MaxDeliveryCount: 3, LockDuration: lock}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	c, err := NewClient(b.ConnectionString(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return &busEnv{broker: b, client: c, queue: "copy-requests"}
}

func (e *busEnv) runLoop(t *testing.T, h Handler) (stop func()) {
	t.Helper()
	rcv, err := e.client.NewReceiverForQueue(e.queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		(&Loop{Receiver: rcv, Handle: h, Workers: 4}).Run(ctx)
	}()
	return func() { cancel(); <-done; rcv.Close(context.Background()) }
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSendReceiveComplete(t *testing.T) {
	env := startBus(t, 5*time.Second)
	s, err := NewSender(env.client, env.queue, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// The same attempt sent twice is one message (duplicate detection on the MessageId).
	for _, m := range []*replication.CopyMessage{sampleMessage(1), sampleMessage(1), sampleMessage(2)} {
		if err := s.SendCopy(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var got []*replication.CopyMessage
	stop := env.runLoop(t, func(_ context.Context, m *replication.CopyMessage, dc int) error {
		if dc != 1 {
			t.Errorf("delivery count %d on first delivery", dc)
		}
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
		return nil
	})
	defer stop()
	waitFor(t, "two completions", func() bool {
		st, _ := env.broker.QueueStats(env.queue)
		return st.Completed == 2
	})
	st, _ := env.broker.QueueStats(env.queue)
	if st.Duplicates != 1 || st.Active != 0 || st.DeadLettered != 0 {
		t.Errorf("stats %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || string(got[0].Authorization) != string(sampleMessage(1).Authorization) {
		t.Errorf("received %d messages", len(got))
	}
}

func TestFailureIsRedeliveredThenCompleted(t *testing.T) {
	env := startBus(t, 5*time.Second)
	s, _ := NewSender(env.client, env.queue, 5*time.Second)
	if err := s.SendCopy(context.Background(), sampleMessage(1)); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	var lastCount atomic.Int32
	stop := env.runLoop(t, func(_ context.Context, m *replication.CopyMessage, dc int) error {
		lastCount.Store(int32(dc))
		if calls.Add(1) == 1 {
			return errors.New("throttled")
		}
		return nil
	})
	defer stop()
	waitFor(t, "completion after one abandon", func() bool {
		st, _ := env.broker.QueueStats(env.queue)
		return st.Completed == 1
	})
	st, _ := env.broker.QueueStats(env.queue)
	if st.Abandoned != 1 || lastCount.Load() != 2 {
		t.Errorf("abandoned %d, last delivery count %d", st.Abandoned, lastCount.Load())
	}
}

func TestPoisonIsDeadLetteredWithReason(t *testing.T) {
	env := startBus(t, 5*time.Second)
	snd, err := env.client.NewSender(env.queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snd.SendMessage(context.Background(), &azservicebus.Message{Body: []byte(`{"not":"a copy message"}`)}, nil); err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int32
	stop := env.runLoop(t, func(context.Context, *replication.CopyMessage, int) error { handled.Add(1); return nil })
	defer stop()
	waitFor(t, "dead-letter", func() bool {
		st, _ := env.broker.QueueStats(env.queue)
		return st.DeadLettered == 1
	})
	st, _ := env.broker.QueueStats(env.queue)
	if st.DeadLetterReasons["PoisonMessage"] != 1 || handled.Load() != 0 {
		t.Errorf("reasons %v, handled %d", st.DeadLetterReasons, handled.Load())
	}
}

func TestLockIsRenewedWhileHandling(t *testing.T) {
	env := startBus(t, time.Second) // a handler slower than the lock
	s, _ := NewSender(env.client, env.queue, 5*time.Second)
	if err := s.SendCopy(context.Background(), sampleMessage(1)); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	stop := env.runLoop(t, func(ctx context.Context, m *replication.CopyMessage, dc int) error {
		calls.Add(1)
		time.Sleep(2500 * time.Millisecond)
		return nil
	})
	defer stop()
	waitFor(t, "completion", func() bool {
		st, _ := env.broker.QueueStats(env.queue)
		return st.Completed == 1
	})
	st, _ := env.broker.QueueStats(env.queue)
	if calls.Load() != 1 || st.LocksExpired != 0 {
		t.Errorf("handled %d times, %d locks expired: the lock was not renewed", calls.Load(), st.LocksExpired)
	}
}
