package queue

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/dimirror/dimirror/shared/replication"
)

// Handler handles one message body with its 1-based delivery count and says how to settle it.
// It is the same queue function the Functions host invokes in `dimirror serve`, so a message
// is decoded and judged the same way in both hostings; the loop only carries the outcome out.
type Handler func(ctx context.Context, body []byte, deliveryCount int) replication.Outcome

// Receiver is what the loop needs of an azservicebus.Receiver.
type Receiver interface {
	ReceiveMessages(ctx context.Context, maxMessages int, options *azservicebus.ReceiveMessagesOptions) ([]*azservicebus.ReceivedMessage, error)
	CompleteMessage(ctx context.Context, m *azservicebus.ReceivedMessage, options *azservicebus.CompleteMessageOptions) error
	AbandonMessage(ctx context.Context, m *azservicebus.ReceivedMessage, options *azservicebus.AbandonMessageOptions) error
	DeadLetterMessage(ctx context.Context, m *azservicebus.ReceivedMessage, options *azservicebus.DeadLetterOptions) error
	RenewMessageLock(ctx context.Context, m *azservicebus.ReceivedMessage, options *azservicebus.RenewMessageLockOptions) error
}

// Loop receives copy messages in PeekLock mode and settles each as its handler's outcome says:
// complete, abandon (redelivered, and dead-lettered by the queue after its max delivery count),
// or dead-letter at once with a reason.
type Loop struct {
	Receiver Receiver
	Handle   Handler
	// Workers bounds messages in progress at once (the host's maxConcurrentCalls); default 16.
	Workers int
	// HandleTimeout bounds one message's handling; default 2 minutes.
	HandleTimeout time.Duration
	// Grace is how long messages in progress may run on once the loop is told to stop; then
	// their context is cancelled, the handler gives up and the message is abandoned (a step's
	// claim lapses as designed). Default 10 seconds.
	Grace time.Duration
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
	if l.Grace <= 0 {
		l.Grace = 10 * time.Second
	}
	if l.Log == nil {
		l.Log = slog.New(slog.DiscardHandler)
	}
}

// Run receives until ctx ends, then waits for the messages in progress: up to Grace, after
// which their context is cancelled and Run waits for them to give up.
func (l *Loop) Run(ctx context.Context) error {
	l.defaults()
	slots := make(chan struct{}, l.Workers)
	var wg sync.WaitGroup
	// Handling outlives ctx by the grace only: a stop must not wait for a slow step.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	defer l.drain(&wg, cancelWork)
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
				l.process(work, m)
			}()
		}
	}
}

// drain waits for the messages in progress, cancelling them once the grace has passed.
func (l *Loop) drain(wg *sync.WaitGroup, cancelWork context.CancelFunc) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	grace := time.NewTimer(l.Grace)
	defer grace.Stop()
	select {
	case <-done:
		return
	case <-grace.C:
	}
	l.Log.Warn("stopping: cancelling the copy messages still in progress", "grace", l.Grace.String())
	cancelWork()
	<-done
}

func (l *Loop) process(ctx context.Context, m *azservicebus.ReceivedMessage) {
	log := l.Log.With("messageId", m.MessageID, "deliveryCount", m.DeliveryCount)
	hctx, cancel := context.WithTimeout(ctx, l.HandleTimeout)
	stopRenew := l.renewWhileHandling(hctx, log, m)
	// The host passes the 1-based delivery count; azservicebus reports it the same way.
	out := l.Handle(hctx, m.Body, int(m.DeliveryCount))
	stopRenew()
	cancel()
	// Settling must work even when a stop cancelled the handling: an abandon hands the message
	// to another instance at once instead of after its lock expires.
	sctx := context.WithoutCancel(ctx)
	switch out.Settle {
	case replication.SettleComplete:
		l.settle(sctx, log, "complete", func(c context.Context) error { return l.Receiver.CompleteMessage(c, m, nil) })
	case replication.SettleDeadLetter:
		reason, desc := out.Reason, out.Description()
		log.Error("dead-lettering a copy message", "reason", reason, "description", desc)
		l.settle(sctx, log, "dead-letter", func(c context.Context) error {
			return l.Receiver.DeadLetterMessage(c, m, &azservicebus.DeadLetterOptions{Reason: &reason, ErrorDescription: &desc})
		})
	default:
		log.Warn("copy message failed; abandoning for redelivery", "err", out.Description())
		l.settle(sctx, log, "abandon", func(c context.Context) error { return l.Receiver.AbandonMessage(c, m, nil) })
	}
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
