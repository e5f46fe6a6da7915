package devbus_test

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/dimirror/dimirror/emulators/devbus"
	"github.com/dimirror/dimirror/internal/fakeclock"
	"github.com/dimirror/dimirror/internal/syncbuf"
)

// testTimeout bounds every test's conversation with the broker.
const testTimeout = 30 * time.Second

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// startBroker starts an in-process devbus that the test closes.
func startBroker(t *testing.T, opts devbus.Options) *devbus.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := devbus.Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// newClient connects the real azservicebus client with the emulator connection string.
// Retries are quick so that failure tests stay fast.
func newClient(t *testing.T, b *devbus.Broker) *azservicebus.Client {
	t.Helper()
	return newClientFor(t, b.ConnectionString())
}

func newClientFor(t *testing.T, connStr string) *azservicebus.Client {
	t.Helper()
	c, err := azservicebus.NewClientFromConnectionString(connStr, &azservicebus.ClientOptions{
		RetryOptions: azservicebus.RetryOptions{
			MaxRetries: 3, RetryDelay: 20 * time.Millisecond, MaxRetryDelay: 200 * time.Millisecond,
		},
	})
	if err != nil {
		t.Fatalf("NewClientFromConnectionString: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

func newSender(t *testing.T, c *azservicebus.Client, queue string) *azservicebus.Sender {
	t.Helper()
	s, err := c.NewSender(queue, nil)
	if err != nil {
		t.Fatalf("NewSender(%s): %v", queue, err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func newReceiver(t *testing.T, c *azservicebus.Client, queue string, opts *azservicebus.ReceiverOptions) *azservicebus.Receiver {
	t.Helper()
	r, err := c.NewReceiverForQueue(queue, opts)
	if err != nil {
		t.Fatalf("NewReceiverForQueue(%s): %v", queue, err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

func send(t *testing.T, s *azservicebus.Sender, msgs ...*azservicebus.Message) {
	t.Helper()
	for _, m := range msgs {
		if err := s.SendMessage(testContext(t), m, nil); err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
	}
}

func textMessage(body string) *azservicebus.Message {
	return &azservicebus.Message{Body: []byte(body)}
}

// receiveOne waits for one message.
func receiveOne(t *testing.T, r *azservicebus.Receiver) *azservicebus.ReceivedMessage {
	t.Helper()
	return receiveN(t, r, 1)[0]
}

// receiveN receives until it has n messages and returns them in sequence-number order:
// messages the SDK prefetched beyond a ReceiveMessages call are released and come back
// later, so arrival order is not sequence order. ReceiveMessages may also return none
// after a recoverable error (the SDK recovers on the next call), hence the loop.
func receiveN(t *testing.T, r *azservicebus.Receiver, n int) []*azservicebus.ReceivedMessage {
	t.Helper()
	var out []*azservicebus.ReceivedMessage
	for len(out) < n {
		msgs, err := r.ReceiveMessages(testContext(t), n-len(out), nil)
		if err != nil {
			t.Fatalf("ReceiveMessages after %d of %d: %v", len(out), n, err)
		}
		out = append(out, msgs...)
	}
	slices.SortFunc(out, func(a, b *azservicebus.ReceivedMessage) int {
		return cmp.Compare(*a.SequenceNumber, *b.SequenceNumber)
	})
	return out
}

// expectNone checks that nothing arrives within d.
func expectNone(t *testing.T, r *azservicebus.Receiver, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	msgs, err := r.ReceiveMessages(ctx, 1, nil)
	if len(msgs) > 0 {
		t.Fatalf("received %q, want nothing", msgs[0].Body)
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReceiveMessages: %v", err)
	}
}

func complete(t *testing.T, r *azservicebus.Receiver, msgs ...*azservicebus.ReceivedMessage) {
	t.Helper()
	for _, m := range msgs {
		if err := r.CompleteMessage(testContext(t), m, nil); err != nil {
			t.Fatalf("CompleteMessage(%q): %v", m.Body, err)
		}
	}
}

func stats(t *testing.T, b *devbus.Broker, queue string) devbus.QueueStats {
	t.Helper()
	st, err := b.QueueStats(queue)
	if err != nil {
		t.Fatalf("QueueStats(%s): %v", queue, err)
	}
	return st
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newFakeClock() *fakeclock.Clock {
	return fakeclock.New(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
}

func debugLogger(w *syncbuf.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
