package devbus_test

import (
	"regexp"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/go-amqp"

	"github.com/dimirror/dimirror/emulators/devbus"
)

// TestRepliesRouteByTargetOrLinkName: Service Bus sends a $cbs or management reply to the
// link whose target address is the request's reply-to or, for a link attached without a
// target address, whose name is. The JavaScript SDK (rhea) attaches its $cbs receiver that
// way; the Go and .NET clients set the target.
func TestRepliesRouteByTargetOrLinkName(t *testing.T) {
	b := startBroker(t, devbus.Options{})
	cases := []struct {
		name     string
		node     string
		linkName string
		target   string // "" attaches the reply link without a target address
		replyTo  string
		op       string
		status   int32
	}{
		{"cbs, by target address", "$cbs", "cbs-link", "cbs-replies", "cbs-replies", "put-token", 202},
		{"cbs, by link name", "$cbs", "cbs-reply-link-1", "", "cbs-reply-link-1", "put-token", 202},
		{"management, by target address", "q/$management", "mgmt-link", "mgmt-replies", "mgmt-replies", "com.microsoft:frobnicate", 501},
		{"management, by link name", "q/$management", "mgmt-reply-link", "", "mgmt-reply-link", "com.microsoft:frobnicate", 501},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			conn, err := amqp.Dial(ctx, "amqp://"+b.Addr(), &amqp.ConnOptions{SASLType: amqp.SASLTypeAnonymous()})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			sess, err := conn.NewSession(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			snd, err := sess.NewSender(ctx, tc.node, nil)
			if err != nil {
				t.Fatal(err)
			}
			rcv, err := sess.NewReceiver(ctx, tc.node, &amqp.ReceiverOptions{Name: tc.linkName, TargetAddress: tc.target, Credit: 10})
			if err != nil {
				t.Fatalf("attaching the reply link: %v", err)
			}
			req := &amqp.Message{
				Properties:            &amqp.MessageProperties{MessageID: uint64(7), ReplyTo: to.Ptr(tc.replyTo)},
				ApplicationProperties: map[string]any{"operation": tc.op},
			}
			if err := snd.Send(ctx, req, nil); err != nil {
				t.Fatal(err)
			}
			resp, err := rcv.Receive(ctx, nil)
			if err != nil {
				t.Fatalf("no reply on link %q: %v", tc.linkName, err)
			}
			if resp.Properties == nil || resp.Properties.CorrelationID != uint64(7) {
				t.Errorf("reply correlated with %+v, want the request's ulong message id 7", resp.Properties)
			}
			key := "statusCode"
			if tc.node == "$cbs" {
				key = "status-code"
			}
			if got := resp.ApplicationProperties[key]; got != tc.status {
				t.Errorf("%s = %#v, want %d", key, got, tc.status)
			}
		})
	}
}

// TestReceivedMessagesCarryWhatClientsRead: a message sent without a message id gets one
// from the broker, as in Service Bus (the JavaScript SDK keys lock renewal by it), and
// such ids take no part in duplicate detection.
func TestReceivedMessagesCarryWhatClientsRead(t *testing.T) {
	b := startBroker(t, devbus.Options{})
	ctx := testContext(t)
	conn, err := amqp.Dial(ctx, "amqp://"+b.Addr(), &amqp.ConnOptions{SASLType: amqp.SASLTypeAnonymous()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sess, err := conn.NewSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	snd, err := sess.NewSender(ctx, "ids", nil)
	if err != nil {
		t.Fatal(err)
	}
	sent := []*amqp.Message{
		amqp.NewMessage([]byte("no properties")),
		{Data: [][]byte{[]byte("properties without an id")}, Properties: &amqp.MessageProperties{Subject: to.Ptr("s"), ContentType: to.Ptr("text/plain")}},
		amqp.NewMessage([]byte("no properties")), // the same again: not a duplicate
		{Data: [][]byte{[]byte("own id")}, Properties: &amqp.MessageProperties{MessageID: "mine"}},
	}
	for _, m := range sent {
		if err := snd.Send(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
	}
	rcv, err := sess.NewReceiver(ctx, "ids", &amqp.ReceiverOptions{Credit: 10})
	if err != nil {
		t.Fatal(err)
	}
	hexID := regexp.MustCompile(`^[0-9a-f]{32}$`)
	ids := map[any]bool{}
	for i, want := range sent {
		m, err := rcv.Receive(ctx, nil)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if string(m.GetData()) != string(want.GetData()) {
			t.Fatalf("message %d is %q, want %q", i, m.GetData(), want.GetData())
		}
		if m.Properties == nil {
			t.Fatalf("message %d has no properties", i)
		}
		id := m.Properties.MessageID
		switch {
		case want.Properties != nil && want.Properties.MessageID != nil:
			if id != want.Properties.MessageID {
				t.Errorf("message %d: id %#v, want the sender's %#v", i, id, want.Properties.MessageID)
			}
		default:
			if s, _ := id.(string); !hexID.MatchString(s) {
				t.Errorf("message %d: broker-assigned id %#v, want 32 hexadecimal digits", i, id)
			}
		}
		if ids[id] {
			t.Errorf("message %d: id %v given twice", i, id)
		}
		ids[id] = true
		if want.Properties != nil && want.Properties.Subject != nil &&
			(m.Properties.Subject == nil || *m.Properties.Subject != "s" || m.Properties.ContentType == nil || *m.Properties.ContentType != "text/plain") {
			t.Errorf("message %d: other properties lost with the id: %+v", i, m.Properties)
		}
		if err := rcv.AcceptMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	// Settled dispositions are not answered: wait for devbus to have taken the last one.
	eventually(t, "every message completed", func() bool { return stats(t, b, "ids").Completed == 4 })
	if st := stats(t, b, "ids"); st.Duplicates != 0 {
		t.Errorf("stats = %+v, want no duplicates", st)
	}
}
