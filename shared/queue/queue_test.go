package queue

import (
	"context"
	"encoding/json"
	"errors"
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

func checkMessage(n int) *replication.CopyMessage {
	return &replication.CopyMessage{Kind: replication.KindModel, SourceID: "invoice-v1", Target: "westus2", TargetID: "invoice-v1", Attempt: 1, Check: n}
}

// A scheduled check stays invisible until its time, through the real client and devbus.
func TestScheduledCheckArrivesAfterItsDelay(t *testing.T) {
	env := startBus(t, 5*time.Second)
	s, err := NewSender(env.client, env.queue, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	if err := s.Schedule(context.Background(), checkMessage(1), 700*time.Millisecond); err != nil {
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

// typed adapts a test's handler of decoded messages to the loop's Handler, the way the copy
// starter decodes: a body that is not a copy message is poison.
func typed(h func(context.Context, *replication.CopyMessage, int) error) Handler {
	return func(ctx context.Context, body []byte, dc int) replication.Outcome {
		m, err := replication.DecodeMessage(body)
		if err != nil {
			return replication.OutcomeOf(err)
		}
		return replication.OutcomeOf(h(ctx, m, dc))
	}
}

func (e *busEnv) runLoop(t *testing.T, h func(context.Context, *replication.CopyMessage, int) error) (stop func()) {
	t.Helper()
	return e.runHandler(t, &Loop{Handle: typed(h), Workers: 4})
}

// runHandler runs l on the env's queue until stop.
func (e *busEnv) runHandler(t *testing.T, l *Loop) (stop func()) {
	t.Helper()
	rcv, err := e.client.NewReceiverForQueue(e.queue, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Receiver = rcv
		l.Run(ctx)
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

// A stop lets a message in progress finish within the grace, and cancels one that would take
// longer: Run returns soon after the grace and the cancelled message is abandoned, not lost.
func TestStopGivesInFlightWorkAGrace(t *testing.T) {
	tests := []struct {
		name          string
		work          time.Duration // how long the handler needs
		grace         time.Duration
		wantCancelled bool
		wantStat      func(devbus.QueueStats) bool
	}{
		{"finishes within the grace", 300 * time.Millisecond, 3 * time.Second, false,
			func(st devbus.QueueStats) bool { return st.Completed == 1 && st.Abandoned == 0 }},
		{"cancelled after the grace", time.Minute, 300 * time.Millisecond, true,
			func(st devbus.QueueStats) bool { return st.Completed == 0 && st.Abandoned == 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := startBus(t, 5*time.Second)
			s, _ := NewSender(env.client, env.queue, 5*time.Second)
			if err := s.SendCopy(context.Background(), sampleMessage(1)); err != nil {
				t.Fatal(err)
			}
			started := make(chan struct{})
			var cancelled atomic.Bool
			stop := env.runHandler(t, &Loop{Grace: tt.grace, Workers: 1, Handle: typed(func(ctx context.Context, _ *replication.CopyMessage, _ int) error {
				close(started)
				select {
				case <-time.After(tt.work):
					return nil
				case <-ctx.Done():
					cancelled.Store(true)
					return ctx.Err()
				}
			})})
			select {
			case <-started:
			case <-time.After(15 * time.Second):
				t.Fatal("the message never arrived")
			}
			begin := time.Now()
			stop()
			if took, bound := time.Since(begin), tt.grace+2*time.Second; took > bound {
				t.Errorf("the stop took %s, want under %s", took, bound)
			}
			if cancelled.Load() != tt.wantCancelled {
				t.Errorf("handler cancelled: %v, want %v", cancelled.Load(), tt.wantCancelled)
			}
			waitFor(t, "the settlement", func() bool {
				st, _ := env.broker.QueueStats(env.queue)
				return tt.wantStat(st)
			})
		})
	}
}

// The loop carries out each outcome its handler returns.
func TestLoopCarriesOutTheOutcome(t *testing.T) {
	tests := []struct {
		name string
		out  replication.Outcome
		want func(devbus.QueueStats) bool
	}{
		{"complete", replication.Outcome{Settle: replication.SettleComplete},
			func(st devbus.QueueStats) bool { return st.Completed == 1 }},
		{"dead-letter", replication.Outcome{Settle: replication.SettleDeadLetter, Reason: replication.DeadLetterPoison, Err: &replication.PoisonError{Reason: "bad"}},
			func(st devbus.QueueStats) bool {
				return st.DeadLettered == 1 && st.DeadLetterReasons[replication.DeadLetterPoison] == 1
			}},
		{"retry until the max delivery count", replication.Outcome{Settle: replication.SettleRetry, Err: errors.New("down")},
			func(st devbus.QueueStats) bool { return st.Abandoned == 3 && st.DeadLettered == 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := startBus(t, 5*time.Second)
			s, _ := NewSender(env.client, env.queue, 5*time.Second)
			if err := s.SendCopy(context.Background(), sampleMessage(1)); err != nil {
				t.Fatal(err)
			}
			stop := env.runHandler(t, &Loop{Workers: 2, Handle: func(context.Context, []byte, int) replication.Outcome { return tt.out }})
			defer stop()
			waitFor(t, tt.name, func() bool {
				st, _ := env.broker.QueueStats(env.queue)
				return tt.want(st)
			})
		})
	}
}
