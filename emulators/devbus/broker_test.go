package devbus_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/dimirror/dimirror/emulators/devbus"
)

func TestSendReceiveCompletePreservesMessage(t *testing.T) {
	b := startBroker(t, devbus.Options{Queues: []devbus.QueueOptions{{Name: "copy-requests"}}})
	c := newClient(t, b)
	s := newSender(t, c, "copy-requests")
	r := newReceiver(t, c, "copy-requests", nil)

	sent := &azservicebus.Message{
		Body:          []byte(`{"modelId":"m1"}`),
		MessageID:     to.Ptr("msg-1"),
		CorrelationID: to.Ptr("corr-1"),
		ContentType:   to.Ptr("application/json"),
		Subject:       to.Ptr("copy"),
		To:            to.Ptr("westeurope"),
		ReplyTo:       to.Ptr("replies"),
		TimeToLive:    to.Ptr(time.Hour),
		ApplicationProperties: map[string]any{
			"target": "westeurope", "attempt": int64(3), "urgent": true, "ratio": 0.5,
		},
	}
	before := time.Now().Add(-time.Second)
	send(t, s, sent)
	got := receiveOne(t, r)

	checks := []struct {
		name      string
		got, want any
	}{
		{"body", string(got.Body), `{"modelId":"m1"}`},
		{"message id", got.MessageID, "msg-1"},
		{"correlation id", deref(got.CorrelationID), "corr-1"},
		{"content type", deref(got.ContentType), "application/json"},
		{"subject", deref(got.Subject), "copy"},
		{"to", deref(got.To), "westeurope"},
		{"reply to", deref(got.ReplyTo), "replies"},
		{"time to live", *got.TimeToLive, time.Hour},
		{"target property", got.ApplicationProperties["target"], "westeurope"},
		{"attempt property", got.ApplicationProperties["attempt"], int64(3)},
		{"urgent property", got.ApplicationProperties["urgent"], true},
		{"ratio property", got.ApplicationProperties["ratio"], 0.5},
		{"delivery count", got.DeliveryCount, uint32(1)},
		{"sequence number", *got.SequenceNumber, int64(1)},
		{"state", got.State, azservicebus.MessageStateActive},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
	if got.LockToken == [16]byte{} {
		t.Error("no lock token")
	}
	if got.EnqueuedTime == nil || got.EnqueuedTime.Before(before) {
		t.Errorf("enqueued time %v, want about now", got.EnqueuedTime)
	}
	if got.LockedUntil == nil || time.Until(*got.LockedUntil) < 50*time.Second {
		t.Errorf("locked until %v, want about a minute from now (default lock)", got.LockedUntil)
	}
	complete(t, r, got)

	st := stats(t, b, "copy-requests")
	if st.Enqueued != 1 || st.Delivered != 1 || st.Completed != 1 || st.Active+st.Locked != 0 {
		t.Errorf("stats after complete = %+v", st)
	}
	expectNone(t, r, 200*time.Millisecond)
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestBatchIsSplitIntoMessages(t *testing.T) {
	b := startBroker(t, devbus.Options{})
	c := newClient(t, b)
	s := newSender(t, c, "batches")
	ctx := testContext(t)

	batch, err := s.NewMessageBatch(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 250
	for i := range n {
		m := &azservicebus.Message{
			Body:                  []byte(fmt.Sprintf("m%d", i)),
			MessageID:             to.Ptr(fmt.Sprintf("id-%d", i)),
			ApplicationProperties: map[string]any{"i": int64(i)},
		}
		if err := batch.AddMessage(m, nil); err != nil {
			t.Fatalf("AddMessage %d: %v", i, err)
		}
	}
	if err := s.SendMessageBatch(ctx, batch, nil); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, b, "batches"); st.Enqueued != n || st.Active != n {
		t.Fatalf("after one batch: %+v, want %d separate messages", st, n)
	}

	r := newReceiver(t, c, "batches", nil)
	msgs := receiveN(t, r, n)
	for i, m := range msgs {
		if want := fmt.Sprintf("m%d", i); string(m.Body) != want || m.MessageID != fmt.Sprintf("id-%d", i) ||
			m.ApplicationProperties["i"] != int64(i) || *m.SequenceNumber != int64(i+1) || m.DeliveryCount != 1 {
			t.Fatalf("message %d: body %q id %q props %v seq %d", i, m.Body, m.MessageID,
				m.ApplicationProperties, *m.SequenceNumber)
		}
	}
	complete(t, r, msgs...)
}

func TestReceiveAndDelete(t *testing.T) {
	b := startBroker(t, devbus.Options{})
	c := newClient(t, b)
	send(t, newSender(t, c, "rad"), textMessage("a"), textMessage("b"))

	r := newReceiver(t, c, "rad", &azservicebus.ReceiverOptions{ReceiveMode: azservicebus.ReceiveModeReceiveAndDelete})
	msgs := receiveN(t, r, 2)
	if string(msgs[0].Body) != "a" || string(msgs[1].Body) != "b" {
		t.Fatalf("bodies %q %q", msgs[0].Body, msgs[1].Body)
	}
	if err := r.CompleteMessage(testContext(t), msgs[0], nil); err == nil {
		t.Error("completing a receive-and-delete message succeeded; the SDK should refuse")
	}
	if st := stats(t, b, "rad"); st.Active+st.Locked != 0 || st.Completed != 2 {
		t.Errorf("stats = %+v, want both messages gone", st)
	}
}

func TestAbandonRedeliversWithHigherDeliveryCount(t *testing.T) {
	b := startBroker(t, devbus.Options{})
	c := newClient(t, b)
	send(t, newSender(t, c, "abandon"), textMessage("x"))
	r := newReceiver(t, c, "abandon", nil)

	first := receiveOne(t, r)
	if err := r.AbandonMessage(testContext(t), first, &azservicebus.AbandonMessageOptions{
		PropertiesToModify: map[string]any{"retried": "yes"},
	}); err != nil {
		t.Fatal(err)
	}
	second := receiveOne(t, r)
	if second.DeliveryCount != 2 || *second.SequenceNumber != *first.SequenceNumber {
		t.Errorf("redelivery: count %d seq %d, want count 2 and the same sequence number %d",
			second.DeliveryCount, *second.SequenceNumber, *first.SequenceNumber)
	}
	if second.LockToken == first.LockToken {
		t.Error("redelivery reused the lock token")
	}
	if second.ApplicationProperties["retried"] != "yes" {
		t.Errorf("properties to modify not applied: %v", second.ApplicationProperties)
	}
	complete(t, r, second)
	if st := stats(t, b, "abandon"); st.Abandoned != 1 || st.Delivered != 2 || st.Completed != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestDeadLetterWithReasonIsReceivable(t *testing.T) {
	b := startBroker(t, devbus.Options{})
	c := newClient(t, b)
	send(t, newSender(t, c, "dl"), &azservicebus.Message{Body: []byte("poison"), MessageID: to.Ptr("p1")})
	r := newReceiver(t, c, "dl", nil)

	m := receiveOne(t, r)
	if err := r.DeadLetterMessage(testContext(t), m, &azservicebus.DeadLetterOptions{
		Reason:             to.Ptr("InvalidModel"),
		ErrorDescription:   to.Ptr("model m1 does not exist"),
		PropertiesToModify: map[string]any{"stage": "copy"},
	}); err != nil {
		t.Fatal(err)
	}
	st := stats(t, b, "dl")
	if st.DeadLettered != 1 || st.DeadLetterReasons["InvalidModel"] != 1 || st.Active+st.Locked != 0 {
		t.Fatalf("stats = %+v", st)
	}

	dlq := newReceiver(t, c, "dl", &azservicebus.ReceiverOptions{SubQueue: azservicebus.SubQueueDeadLetter})
	d := receiveOne(t, dlq)
	if string(d.Body) != "poison" || d.MessageID != "p1" || deref(d.DeadLetterReason) != "InvalidModel" ||
		deref(d.DeadLetterErrorDescription) != "model m1 does not exist" || d.ApplicationProperties["stage"] != "copy" {
		t.Errorf("dead-lettered message: body %q id %q reason %v description %v props %v",
			d.Body, d.MessageID, deref(d.DeadLetterReason), deref(d.DeadLetterErrorDescription), d.ApplicationProperties)
	}
	complete(t, dlq, d)
	if st := stats(t, b, "dl"); st.DeadLettered != 0 || st.TotalDeadLetters != 1 {
		t.Errorf("after completing from the dead-letter queue: %+v", st)
	}
}

func TestMaxDeliveryCountDeadLetters(t *testing.T) {
	spec, err := devbus.ParseQueueSpec("fragile,max-delivery=3")
	if err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, devbus.Options{Queues: []devbus.QueueOptions{spec}})
	c := newClient(t, b)
	send(t, newSender(t, c, "fragile"), textMessage("boom"))
	r := newReceiver(t, c, "fragile", nil)

	for attempt := 1; attempt <= 3; attempt++ {
		m := receiveOne(t, r)
		if m.DeliveryCount != uint32(attempt) {
			t.Fatalf("attempt %d: delivery count %d", attempt, m.DeliveryCount)
		}
		if err := r.AbandonMessage(testContext(t), m, nil); err != nil {
			t.Fatal(err)
		}
	}
	expectNone(t, r, 200*time.Millisecond)
	st := stats(t, b, "fragile")
	if st.DeadLetterReasons["MaxDeliveryCountExceeded"] != 1 {
		t.Fatalf("stats = %+v, want one MaxDeliveryCountExceeded", st)
	}
	dlq := newReceiver(t, c, "fragile", &azservicebus.ReceiverOptions{SubQueue: azservicebus.SubQueueDeadLetter})
	d := receiveOne(t, dlq)
	if deref(d.DeadLetterReason) != "MaxDeliveryCountExceeded" || !strings.Contains(deref(d.DeadLetterErrorDescription).(string), "3") {
		t.Errorf("reason %v description %v", deref(d.DeadLetterReason), deref(d.DeadLetterErrorDescription))
	}
}

func TestLockExpiryRedeliversAndLateSettleFails(t *testing.T) {
	b := startBroker(t, devbus.Options{Queues: []devbus.QueueOptions{{Name: "short", LockDuration: 300 * time.Millisecond}}})
	c := newClient(t, b)
	send(t, newSender(t, c, "short"), textMessage("slow"))
	r1 := newReceiver(t, c, "short", nil)
	r2 := newReceiver(t, newClient(t, b), "short", nil)

	held := receiveOne(t, r1)
	again := receiveOne(t, r2) // arrives once the lock has run out
	if again.DeliveryCount != 2 || string(again.Body) != "slow" {
		t.Fatalf("after expiry: count %d body %q", again.DeliveryCount, again.Body)
	}
	err := r1.CompleteMessage(testContext(t), held, nil)
	var sbErr *azservicebus.Error
	if !errors.As(err, &sbErr) || sbErr.Code != azservicebus.CodeLockLost {
		t.Fatalf("completing after the lock expired: %v, want CodeLockLost", err)
	}
	complete(t, r2, again)
	if st := stats(t, b, "short"); st.LocksExpired != 1 || st.Completed != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestRenewLockKeepsMessage(t *testing.T) {
	b := startBroker(t, devbus.Options{Queues: []devbus.QueueOptions{{Name: "renew", LockDuration: 400 * time.Millisecond}}})
	c := newClient(t, b)
	send(t, newSender(t, c, "renew"), textMessage("long job"))
	r := newReceiver(t, c, "renew", nil)

	m := receiveOne(t, r)
	firstUntil := *m.LockedUntil
	for range 4 {
		time.Sleep(150 * time.Millisecond)
		if err := r.RenewMessageLock(testContext(t), m, nil); err != nil {
			t.Fatalf("RenewMessageLock: %v", err)
		}
	}
	if !m.LockedUntil.After(firstUntil) {
		t.Errorf("locked until %v not after %v", m.LockedUntil, firstUntil)
	}
	complete(t, r, m) // 600ms after receipt: only alive thanks to the renewals
	if st := stats(t, b, "renew"); st.LocksExpired != 0 || st.Completed != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestReceiverDisconnectMidLockReturnsMessage(t *testing.T) {
	b := startBroker(t, devbus.Options{Queues: []devbus.QueueOptions{{Name: "dropout", LockDuration: 300 * time.Millisecond}}})
	send(t, newSender(t, newClient(t, b), "dropout"), textMessage("orphan"))

	gone := newClient(t, b)
	r := newReceiver(t, gone, "dropout", nil)
	m := receiveOne(t, r)
	if err := gone.Close(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, b, "dropout"); st.Locked != 1 {
		t.Fatalf("right after the disconnect: %+v, want the message still locked", st)
	}

	r2 := newReceiver(t, newClient(t, b), "dropout", nil)
	back := receiveOne(t, r2)
	if string(back.Body) != "orphan" || back.DeliveryCount != 2 || *back.SequenceNumber != *m.SequenceNumber {
		t.Errorf("redelivered %q count %d", back.Body, back.DeliveryCount)
	}
	complete(t, r2, back)
}

func TestDuplicateDetection(t *testing.T) {
	clock := newFakeClock()
	b := startBroker(t, devbus.Options{Now: clock.Now, Queues: []devbus.QueueOptions{
		{Name: "dedup", DuplicateDetectionWindow: time.Minute},
		{Name: "nodedup", DuplicateDetectionWindow: devbus.NoDuplicateDetection},
	}})
	c := newClient(t, b)
	s := newSender(t, c, "dedup")

	msg := func(id, body string) *azservicebus.Message {
		return &azservicebus.Message{MessageID: to.Ptr(id), Body: []byte(body)}
	}
	send(t, s, msg("a", "first"), msg("a", "again"), msg("b", "other"))
	ctx := testContext(t)
	batch, err := s.NewMessageBatch(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*azservicebus.Message{msg("b", "dup in batch"), msg("c", "new in batch")} {
		if err := batch.AddMessage(m, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SendMessageBatch(ctx, batch, nil); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, b, "dedup"); st.Enqueued != 3 || st.Duplicates != 2 {
		t.Fatalf("within the window: %+v, want 3 enqueued and 2 duplicates", st)
	}

	clock.Advance(2 * time.Minute)
	eventually(t, "the window to pass", func() bool {
		send(t, s, msg("a", "after window"))
		return stats(t, b, "dedup").Enqueued == 4
	})

	r := newReceiver(t, c, "dedup", nil)
	var bodies []string
	for _, m := range receiveN(t, r, 4) {
		bodies = append(bodies, string(m.Body))
	}
	if got := strings.Join(bodies, ","); got != "first,other,new in batch,after window" {
		t.Errorf("received %s", got)
	}

	plain := newSender(t, c, "nodedup")
	send(t, plain, msg("z", "1"), msg("z", "2"))
	if st := stats(t, b, "nodedup"); st.Enqueued != 2 {
		t.Errorf("with detection off: %+v", st)
	}
}

func TestScheduleCancelAndPeek(t *testing.T) {
	clock := newFakeClock()
	b := startBroker(t, devbus.Options{Now: clock.Now})
	c := newClient(t, b)
	s := newSender(t, c, "later")
	ctx := testContext(t)

	at := clock.Now().Add(time.Hour)
	seqs, err := s.ScheduleMessages(ctx, []*azservicebus.Message{textMessage("keep"), textMessage("cancel")}, at, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 2 || seqs[0] == seqs[1] {
		t.Fatalf("sequence numbers %v", seqs)
	}
	// A plain send with a scheduled enqueue time is scheduled too.
	send(t, s, &azservicebus.Message{Body: []byte("via send"), ScheduledEnqueueTime: to.Ptr(at)})
	send(t, s, textMessage("now"))
	if err := s.CancelScheduledMessages(ctx, seqs[1:], nil); err != nil {
		t.Fatal(err)
	}
	var sbErr *azservicebus.Error
	if err := s.CancelScheduledMessages(ctx, seqs[1:], nil); err == nil || errors.As(err, &sbErr) && sbErr.Code != azservicebus.CodeNotFound {
		t.Errorf("cancelling twice: %v, want not found", err)
	}
	if st := stats(t, b, "later"); st.Scheduled != 2 || st.Active != 1 {
		t.Fatalf("stats = %+v, want 2 scheduled and 1 active", st)
	}

	r := newReceiver(t, c, "later", nil)
	peeked, err := r.PeekMessages(ctx, 10, &azservicebus.PeekMessagesOptions{FromSequenceNumber: to.Ptr(int64(1))})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range peeked {
		got = append(got, fmt.Sprintf("%s:%v", p.Body, p.State))
	}
	if want := fmt.Sprintf("keep:%v,via send:%v,now:%v", azservicebus.MessageStateScheduled,
		azservicebus.MessageStateScheduled, azservicebus.MessageStateActive); strings.Join(got, ",") != want {
		t.Errorf("peeked %v, want %s", got, want)
	}

	now := receiveOne(t, r)
	if string(now.Body) != "now" {
		t.Fatalf("received %q before the schedule", now.Body)
	}
	complete(t, r, now)
	clock.Advance(time.Hour)
	msgs := receiveN(t, r, 2)
	if string(msgs[0].Body) != "keep" || string(msgs[1].Body) != "via send" {
		t.Errorf("after the schedule: %q %q", msgs[0].Body, msgs[1].Body)
	}
	if !msgs[0].EnqueuedTime.Equal(at) {
		t.Errorf("enqueued time %v, want the scheduled time %v", msgs[0].EnqueuedTime, at)
	}
	complete(t, r, msgs...)
	if peeked, err := r.PeekMessages(ctx, 10, &azservicebus.PeekMessagesOptions{FromSequenceNumber: to.Ptr(int64(1))}); err != nil || len(peeked) != 0 {
		t.Errorf("peek of an empty queue: %d messages, %v", len(peeked), err)
	}
}

func TestDeferAndReceiveDeferred(t *testing.T) {
	b := startBroker(t, devbus.Options{})
	c := newClient(t, b)
	send(t, newSender(t, c, "defer"), textMessage("not yet"))
	r := newReceiver(t, c, "defer", nil)

	m := receiveOne(t, r)
	if err := r.DeferMessage(testContext(t), m, nil); err != nil {
		t.Fatal(err)
	}
	expectNone(t, r, 200*time.Millisecond)
	if st := stats(t, b, "defer"); st.Deferred != 1 {
		t.Fatalf("stats = %+v", st)
	}
	got, err := r.ReceiveDeferredMessages(testContext(t), []int64{*m.SequenceNumber}, nil)
	if err != nil || len(got) != 1 {
		t.Fatalf("ReceiveDeferredMessages: %d, %v", len(got), err)
	}
	if string(got[0].Body) != "not yet" || got[0].State != azservicebus.MessageStateDeferred {
		t.Errorf("deferred message %q state %v", got[0].Body, got[0].State)
	}
	complete(t, r, got[0]) // settled through update-disposition: the SDK has no link delivery for it
	if st := stats(t, b, "defer"); st.Deferred+st.Active+st.Locked != 0 || st.Completed != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestSettleThroughManagementLinkAfterDetach(t *testing.T) {
	b := startBroker(t, devbus.Options{})
	c := newClient(t, b)
	send(t, newSender(t, c, "mgmt-settle"), textMessage("a"), textMessage("b"))
	r := newReceiver(t, c, "mgmt-settle", nil)
	msgs := receiveN(t, r, 2)

	if n := b.DetachReceivers("mgmt-settle"); n != 1 {
		t.Fatalf("DetachReceivers detached %d links", n)
	}
	// The message's link is gone: the SDK falls back to update-disposition.
	complete(t, r, msgs[0])
	if err := r.DeadLetterMessage(testContext(t), msgs[1], &azservicebus.DeadLetterOptions{Reason: to.Ptr("Manual")}); err != nil {
		t.Fatal(err)
	}
	st := stats(t, b, "mgmt-settle")
	if st.Completed != 1 || st.DeadLetterReasons["Manual"] != 1 || st.Locked != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestRefusedLinksFailClearly(t *testing.T) {
	b := startBroker(t, devbus.Options{NoAutoCreate: true, Queues: []devbus.QueueOptions{{Name: "known"}}})
	c := newClient(t, b)
	ctx := testContext(t)

	cases := []struct {
		name string
		run  func() error
		want string
	}{
		{"unknown queue without auto-creation", func() error {
			s, err := c.NewSender("unknown", nil)
			if err != nil {
				return err
			}
			defer s.Close(ctx)
			return s.SendMessage(ctx, textMessage("x"), nil)
		}, `"unknown" does not exist`},
		{"topic subscription", func() error {
			r, err := c.NewReceiverForSubscription("topic", "sub", nil)
			if err != nil {
				return err
			}
			defer r.Close(ctx)
			_, err = r.ReceiveMessages(ctx, 1, nil)
			return err
		}, "devbus has queues only"},
		{"session receiver", func() error {
			_, err := c.AcceptSessionForQueue(ctx, "known", "s1", nil)
			return err
		}, "does not support sessions"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestExpireLocksHook(t *testing.T) {
	b := startBroker(t, devbus.Options{})
	c := newClient(t, b)
	send(t, newSender(t, c, "hooks"), textMessage("m"))
	r := newReceiver(t, c, "hooks", nil)
	held := receiveOne(t, r)

	n, err := b.ExpireLocks("hooks")
	if err != nil || n != 1 {
		t.Fatalf("ExpireLocks = %d, %v", n, err)
	}
	if _, err := b.ExpireLocks("nope"); err == nil {
		t.Error("ExpireLocks of an unknown queue succeeded")
	}
	again := receiveOne(t, r)
	if again.DeliveryCount != 2 {
		t.Errorf("delivery count %d", again.DeliveryCount)
	}
	if err := r.CompleteMessage(testContext(t), held, nil); err == nil {
		t.Error("the expired lock still settles")
	}
	complete(t, r, again)
}

func TestDropConnectionsClientsRecover(t *testing.T) {
	b := startBroker(t, devbus.Options{})
	c := newClient(t, b)
	s := newSender(t, c, "failover")
	r := newReceiver(t, c, "failover", nil)
	send(t, s, textMessage("before"))
	complete(t, r, receiveOne(t, r))

	if n := b.DropConnections(); n < 1 {
		t.Fatalf("DropConnections closed %d connections", n)
	}
	eventually(t, "the client to reconnect and send", func() bool {
		return s.SendMessage(testContext(t), textMessage("after"), nil) == nil
	})
	m := receiveOne(t, r)
	if string(m.Body) != "after" {
		t.Errorf("received %q", m.Body)
	}
	complete(t, r, m)
}

func TestQueueStatsUnknownQueue(t *testing.T) {
	b := startBroker(t, devbus.Options{Queues: []devbus.QueueOptions{{Name: "Alpha"}, {Name: "beta"}}})
	if _, err := b.QueueStats("gamma"); err == nil {
		t.Error("QueueStats of an unknown queue succeeded")
	}
	if got := strings.Join(b.Queues(), ","); got != "Alpha,beta" {
		t.Errorf("Queues() = %s", got)
	}
	if _, err := b.QueueStats("ALPHA"); err != nil {
		t.Errorf("queue names are case-insensitive: %v", err)
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	cases := []struct {
		name string
		opts devbus.Options
		want string
	}{
		{"bad queue name", devbus.Options{Queues: []devbus.QueueOptions{{Name: "a b"}}}, "queue name"},
		{"duplicate queue", devbus.Options{Queues: []devbus.QueueOptions{{Name: "q"}, {Name: "Q"}}}, "declared twice"},
		{"negative max delivery", devbus.Options{Queues: []devbus.QueueOptions{{Name: "q", MaxDeliveryCount: -1}}}, "max-delivery"},
		{"bad listen address", devbus.Options{Listen: "256.0.0.1:x"}, "listen"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := devbus.Start(testContext(t), tc.opts)
			if err == nil {
				b.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}
