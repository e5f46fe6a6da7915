package devbus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"golang.org/x/sync/errgroup"

	"github.com/dimirror/dimirror/emulators/devbus"
)

// sendBatches sends n messages with ids prefix-0 .. prefix-(n-1) in batches.
func sendBatches(ctx context.Context, s *azservicebus.Sender, prefix string, n int) error {
	for i := 0; i < n; {
		batch, err := s.NewMessageBatch(ctx, nil)
		if err != nil {
			return err
		}
		for ; i < n && batch.NumMessages() < 100; i++ {
			id := fmt.Sprintf("%s-%d", prefix, i)
			if err := batch.AddMessage(&azservicebus.Message{MessageID: to.Ptr(id), Body: []byte(id)}, nil); err != nil {
				return err
			}
		}
		if err := s.SendMessageBatch(ctx, batch, nil); err != nil {
			return err
		}
	}
	return nil
}

func TestCompetingConsumersLoseAndDuplicateNothing(t *testing.T) {
	const total = 1000
	b := startBroker(t, devbus.Options{})
	ctx := testContext(t)
	if err := sendBatches(ctx, newSender(t, newClient(t, b), "work"), "job", total); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	seen := map[string]int{}
	perReceiver := make([]int, 2)
	// Once every message is in, the receiver still waiting is released by cancelling.
	rctx, allIn := context.WithCancel(ctx)
	defer allIn()
	isDone := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == total
	}
	g, gctx := errgroup.WithContext(rctx)
	for i := range perReceiver {
		// Each receiver has its own connection, as two instances of a service would.
		r := newReceiver(t, newClient(t, b), "work", nil)
		g.Go(func() error {
			for !isDone() {
				msgs, err := r.ReceiveMessages(gctx, 20, nil)
				if err != nil {
					if isDone() {
						return nil
					}
					return fmt.Errorf("receiver %d: %w", i, err)
				}
				for _, m := range msgs {
					if err := r.CompleteMessage(gctx, m, nil); err != nil {
						return fmt.Errorf("receiver %d completing %s: %w", i, m.MessageID, err)
					}
					mu.Lock()
					seen[m.MessageID]++
					perReceiver[i]++
					if len(seen) == total {
						allIn()
					}
					mu.Unlock()
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for i := range total {
		if id := fmt.Sprintf("job-%d", i); seen[id] != 1 {
			t.Errorf("%s received %d times", id, seen[id])
		}
	}
	if perReceiver[0] == 0 || perReceiver[1] == 0 {
		t.Errorf("receivers got %v messages: one of them did no work", perReceiver)
	}
	st := stats(t, b, "work")
	if st.Completed != total || st.Active+st.Locked+st.DeadLettered != 0 {
		t.Errorf("stats = %+v", st)
	}
	t.Logf("receiver split %v, %d deliveries for %d messages", perReceiver, st.Delivered, total)
}

func TestManyConcurrentConnections(t *testing.T) {
	const clients, each = 16, 20
	b := startBroker(t, devbus.Options{})
	ctx := testContext(t)
	g, gctx := errgroup.WithContext(ctx)
	for i := range clients {
		c := newClient(t, b)
		queue := fmt.Sprintf("conn-%d", i%4)
		g.Go(func() error {
			s, err := c.NewSender(queue, nil)
			if err != nil {
				return err
			}
			defer s.Close(gctx)
			for j := range each {
				if err := s.SendMessage(gctx, &azservicebus.Message{Body: []byte(fmt.Sprintf("%d/%d", i, j))}, nil); err != nil {
					return fmt.Errorf("client %d message %d: %w", i, j, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	var sum uint64
	for q := range 4 {
		sum += stats(t, b, fmt.Sprintf("conn-%d", q)).Enqueued
	}
	if sum != clients*each {
		t.Errorf("enqueued %d, want %d", sum, clients*each)
	}
}
