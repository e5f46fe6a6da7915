package queue

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/dimirror/dimirror/shared/replication"
)

// Handler processes one copy message. An error means "try again later": the message is
// abandoned and redelivered (and dead-lettered by the queue after its max delivery count).
type Handler func(ctx context.Context, m *replication.CopyMessage, deliveryCount int) error

// Receiver is what the loop needs of an azservicebus.Receiver.
type Receiver interface {
	ReceiveMessages(ctx context.Context, maxMessages int, options *azservicebus.ReceiveMessagesOptions) ([]*azservicebus.ReceivedMessage, error)
	CompleteMessage(ctx context.Context, m *azservicebus.ReceivedMessage, options *azservicebus.CompleteMessageOptions) error
	AbandonMessage(ctx context.Context, m *azservicebus.ReceivedMessage, options *azservicebus.AbandonMessageOptions) error
	DeadLetterMessage(ctx context.Context, m *azservicebus.ReceivedMessage, options *azservicebus.DeadLetterOptions) error
	RenewMessageLock(ctx context.Context, m *azservicebus.ReceivedMessage, options *azservicebus.RenewMessageLockOptions) error
}

// Loop receives copy messages in PeekLock mode and settles them as the Functions host does with
// autoCompleteMessages: complete on success, abandon on failure, and, like a poison-message
// policy, dead-letter a body that can never be processed.
type Loop struct {
	Receiver Receiver
	Handle   Handler
	// Workers bounds messages in progress at once (the host's maxConcurrentCalls); default 16.
	Workers int
	// HandleTimeout bounds one message's handling; default 2 minutes.
	HandleTimeout time.Duration
	// MaxLockRenewal bounds how long a lock is renewed (the host's maxAutoLockRenewalDuration);
	// default 5 minutes.
	MaxLockRenewal time.Duration
	// CallTimeout bounds each settle and renew call; default 30s.
	CallTimeout time.Duration
	Log         *slog.Logger
}

func (l *Loop) defaults() {
	if l.Workers <= 0 {
		l.Workers = 16
	}
	if l.HandleTimeout <= 0 {
		l.HandleTimeout = 2 * time.Minute
	}
	if l.MaxLockRenewal <= 0 {
		l.MaxLockRenewal = 5 * time.Minute
	}
	if l.CallTimeout <= 0 {
		l.CallTimeout = 30 * time.Second
	}
	if l.Log == nil {
		l.Log = slog.New(slog.DiscardHandler)
	}
}

// Run receives until ctx ends, then waits for the messages in progress.
func (l *Loop) Run(ctx context.Context) error {
	l.defaults()
	slots := make(chan struct{}, l.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	backoff := time.Second
	for {
		// Wait for at least one free worker, then ask for as many messages as there are free.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		free := 1
	fill:
		for free < l.Workers {
			select {
			case slots <- struct{}{}:
				free++
			default:
				break fill
			}
		}
		msgs, err := l.Receiver.ReceiveMessages(ctx, free, nil)
		if err != nil {
			for range free {
				<-slots
			}
			if ctx.Err() != nil {
				return nil
			}
			l.Log.Warn("receiving copy messages failed; retrying", "err", err.Error(), "wait", backoff.String())
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil
			}
			backoff = min(backoff*2, 30*time.Second)
			continue
		}
		backoff = time.Second
		for range free - len(msgs) {
			<-slots
		}
		for _, m := range msgs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				l.process(context.WithoutCancel(ctx), m)
			}()
		}
	}
}

func (l *Loop) process(ctx context.Context, m *azservicebus.ReceivedMessage) {
	log := l.Log.With("messageId", m.MessageID, "deliveryCount", m.DeliveryCount)
	cm, err := Decode(m.Body)
	if err != nil {
		var pe *PoisonError
		reason, desc := "PoisonMessage", err.Error()
		if errors.As(err, &pe) {
			desc = pe.Reason
		}
		log.Error("dead-lettering a message that is not a copy message", "reason", desc)
		l.settle(ctx, log, "dead-letter", func(c context.Context) error {
			return l.Receiver.DeadLetterMessage(c, m, &azservicebus.DeadLetterOptions{Reason: &reason, ErrorDescription: &desc})
		})
		return
	}
	hctx, cancel := context.WithTimeout(ctx, l.HandleTimeout)
	stopRenew := l.renewWhileHandling(hctx, log, m)
	// The host passes the 1-based delivery count; azservicebus reports it the same way.
	err = l.Handle(hctx, cm, int(m.DeliveryCount))
	stopRenew()
	cancel()
	if err != nil {
		log.Warn("copy message failed; abandoning for redelivery", "err", err.Error())
		l.settle(ctx, log, "abandon", func(c context.Context) error { return l.Receiver.AbandonMessage(c, m, nil) })
		return
	}
	l.settle(ctx, log, "complete", func(c context.Context) error { return l.Receiver.CompleteMessage(c, m, nil) })
}

func (l *Loop) settle(ctx context.Context, log *slog.Logger, what string, f func(context.Context) error) {
	c, cancel := context.WithTimeout(ctx, l.CallTimeout)
	defer cancel()
	if err := f(c); err != nil {
		// The lock lapses and the message comes back: the handlers are idempotent.
		log.Warn("settling a copy message failed", "settle", what, "err", err.Error())
	}
}

// renewWhileHandling renews the message lock at half its remaining time until stopped or
// MaxLockRenewal passes.
func (l *Loop) renewWhileHandling(ctx context.Context, log *slog.Logger, m *azservicebus.ReceivedMessage) func() {
	if m.LockedUntil == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		limit := time.Now().Add(l.MaxLockRenewal)
		for {
			wait := max(time.Until(*m.LockedUntil)/2, 500*time.Millisecond)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			if time.Now().After(limit) {
				return
			}
			c, cc := context.WithTimeout(ctx, l.CallTimeout)
			err := l.Receiver.RenewMessageLock(c, m, nil)
			cc()
			if err != nil && ctx.Err() == nil {
				log.Warn("renewing a message lock failed", "err", err.Error())
				return
			}
		}
	}()
	return func() { cancel(); <-done }
}
