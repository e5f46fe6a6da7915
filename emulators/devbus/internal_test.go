package devbus

import (
	"bytes"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/Azure/go-amqp"

	"github.com/dimirror/dimirror/emulators/devbus/amqpframe"
)

func TestParseQueueSpec(t *testing.T) {
	testParser(t, ParseQueueSpec, []parseCase[QueueOptions]{
		{"copy-requests,max-delivery=10,lock=60s,dup-window=10m",
			QueueOptions{Name: "copy-requests", MaxDeliveryCount: 10, LockDuration: time.Minute, DuplicateDetectionWindow: 10 * time.Minute}, ""},
		{"jobs", QueueOptions{Name: "jobs", MaxDeliveryCount: DefaultMaxDeliveryCount, LockDuration: DefaultLockDuration,
			DuplicateDetectionWindow: DefaultDuplicateDetectionWindow}, ""},
		{"q, lock=500ms ,dup-window=off", QueueOptions{Name: "q", MaxDeliveryCount: 10, LockDuration: 500 * time.Millisecond,
			DuplicateDetectionWindow: NoDuplicateDetection}, ""},
		{"q,dup-window=0", QueueOptions{Name: "q", MaxDeliveryCount: 10, LockDuration: time.Minute,
			DuplicateDetectionWindow: NoDuplicateDetection}, ""},
		{"", QueueOptions{}, "name comes first"},
		{",lock=1s", QueueOptions{}, "name comes first"},
		{"bad name", QueueOptions{}, "queue name"},
		{"q,max-delivery=0", QueueOptions{}, "max-delivery=0"},
		{"q,max-delivery=x", QueueOptions{}, "max-delivery=x"},
		{"q,lock=-1s", QueueOptions{}, "lock=-1s"},
		{"q,lock=soon", QueueOptions{}, "lock=soon"},
		{"q,dup-window=later", QueueOptions{}, "dup-window=later"},
		{"q,ttl=1h", QueueOptions{}, `unknown setting "ttl"`},
		{"q,lock", QueueOptions{}, "not key=value"},
	})
}

func TestParseAddress(t *testing.T) {
	testParser(t, parseAddress, []parseCase[entity]{
		{"copy-requests", entity{queue: "copy-requests"}, ""},
		{"copy-requests/$DeadLetterQueue", entity{queue: "copy-requests", dead: true}, ""},
		{"copy-requests/$management", entity{queue: "copy-requests", mgmt: true}, ""},
		{"copy-requests/$deadletterqueue/$Management", entity{queue: "copy-requests", dead: true, mgmt: true}, ""},
		{"amqp://127.0.0.1:5672/copy-requests", entity{queue: "copy-requests"}, ""},
		{"amqps://ns.servicebus.windows.net/q/$DeadLetterQueue", entity{queue: "q", dead: true}, ""},
		{"/q/", entity{queue: "q"}, ""},
		{"", entity{}, "no address"},
		{"amqp://host", entity{}, "no address"},
		{"topic/Subscriptions/sub", entity{}, "topic subscription"},
		{"topic/subscriptions/sub/$DeadLetterQueue", entity{}, "topic subscription"},
		{"q/$Transfer/$DeadLetterQueue", entity{}, "does not name a queue"},
		{"a/b", entity{}, "does not name a queue"},
	})
}

// parseCase is one input of a parser and either its result or a part of its error.
type parseCase[T comparable] struct {
	in      string
	want    T
	wantErr string
}

// testParser runs parse on every case, each as a subtest named after its input.
func testParser[T comparable](t *testing.T, parse func(string) (T, error), cases []parseCase[T]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parse(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("= %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestDotNetTag(t *testing.T) {
	u := amqpframe.UUID{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	want := []byte{3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15}
	if got := dotNetTag(u); !bytes.Equal(got, want) {
		t.Errorf("dotNetTag = %v, want %v", got, want)
	}
	if tok := newLockToken(); tok[6]>>4 != 4 || tok[8]>>6 != 2 || tok == newLockToken() {
		t.Errorf("lock token %v is not a random version-4 UUID", tok)
	}
}

// TestDeliveryRewritesOnlyBrokerSections checks what a receiver gets: the client's bare
// message byte for byte, the broker's annotations replacing any the client sent, and the
// client's delivery annotations dropped.
func TestDeliveryRewritesOnlyBrokerSections(t *testing.T) {
	sent := &amqp.Message{
		Header:              &amqp.MessageHeader{Durable: true, Priority: 7, TTL: time.Minute, DeliveryCount: 99},
		DeliveryAnnotations: amqp.Annotations{"hop": "by hop"},
		Annotations:         amqp.Annotations{"x-opt-sequence-number": int64(12345), "x-opt-partition-key": "pk"},
		Properties:          &amqp.MessageProperties{MessageID: "m-1", Subject: ptr("s")},
		ApplicationProperties: map[string]any{
			"a": "b",
		},
		Data:   [][]byte{[]byte("payload")},
		Footer: amqp.Annotations{"f": "g"},
	}
	raw, err := sent.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseMessage(raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.msgID != "s:m-1" {
		t.Errorf("message id key %q", m.msgID)
	}
	if !bytes.HasSuffix(raw, m.bare) {
		t.Error("bare message is not the tail of what the client sent")
	}
	m.seq, m.deliveryCount = 42, 3
	m.enqueuedAt = time.UnixMilli(1740830400000).UTC()
	m.lockToken, m.lockedUntil, m.state = amqpframe.UUID{9}, m.enqueuedAt.Add(time.Minute), stateLocked

	var got amqp.Message
	if err := got.UnmarshalBinary(m.deliveryBytes(true, false)); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"lock token", got.DeliveryAnnotations["x-opt-lock-token"], amqp.UUID{9}},
		{"client delivery annotation", got.DeliveryAnnotations["hop"], nil},
		{"sequence number", got.Annotations["x-opt-sequence-number"], int64(42)},
		{"enqueued time", utc(got.Annotations["x-opt-enqueued-time"]), m.enqueuedAt},
		{"locked until", utc(got.Annotations["x-opt-locked-until"]), m.lockedUntil},
		{"partition key", got.Annotations["x-opt-partition-key"], "pk"},
		{"delivery count", got.Header.DeliveryCount, uint32(3)},
		{"durable", got.Header.Durable, true},
		{"priority", got.Header.Priority, uint8(7)},
		{"ttl", got.Header.TTL, time.Minute},
		{"message id", got.Properties.MessageID, "m-1"},
		{"property", got.ApplicationProperties["a"], "b"},
		{"body", string(got.Data[0]), "payload"},
		{"footer", got.Footer["f"], "g"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}

	dl, err := m.withApplicationProperties(map[string]any{propDeadLetterReason: "R", "n": int64(5)})
	if err != nil {
		t.Fatal(err)
	}
	var back amqp.Message
	if err := back.UnmarshalBinary(dl.deliveryBytes(false, true)); err != nil {
		t.Fatal(err)
	}
	if back.ApplicationProperties["a"] != "b" || back.ApplicationProperties[propDeadLetterReason] != "R" ||
		back.ApplicationProperties["n"] != int64(5) || string(back.Data[0]) != "payload" || back.DeliveryAnnotations != nil {
		t.Errorf("after adding properties: %v %q %v", back.ApplicationProperties, back.Data, back.DeliveryAnnotations)
	}
	if _, err := m.withApplicationProperties(map[string]any{"bad": []string{"x"}}); err == nil {
		t.Error("a list property was accepted")
	}
}

func TestParseMessageAddsPropertiesSectionInOrder(t *testing.T) {
	// No application-properties section: it must go between properties and the body.
	raw, err := (&amqp.Message{Properties: &amqp.MessageProperties{MessageID: uint64(5)}, Value: "v"}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseMessage(raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.msgID != "u:5" {
		t.Errorf("message id key %q", m.msgID)
	}
	mod, err := m.withApplicationProperties(map[string]any{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	secs, err := amqpframe.SplitMessage(mod.bare)
	if err != nil {
		t.Fatal(err)
	}
	var codes []uint64
	for _, s := range secs {
		codes = append(codes, s.Code)
	}
	if want := []uint64{amqpframe.SectionProperties, amqpframe.SectionApplicationProperties, amqpframe.SectionValue}; !reflect.DeepEqual(codes, want) {
		t.Errorf("sections %#x, want %#x", codes, want)
	}
}

func TestParseMessageRejects(t *testing.T) {
	cases := map[string][]byte{
		"not a message":   {0x41},
		"bad message id":  mustAppend(t, amqpframe.SectionProperties, []any{true}),
		"bad header type": mustAppend(t, amqpframe.SectionHeader, []any{"durable?"}),
		"empty batch":     mustAppend(t, amqpframe.SectionValue, "no data sections"),
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			_, err1 := parseMessage(raw)
			_, err2 := parseIncoming(batchMessageFormat, raw)
			if err1 == nil && err2 == nil {
				t.Error("accepted")
			}
		})
	}
}

func mustAppend(t *testing.T, code uint64, v any) []byte {
	b, err := amqpframe.AppendSection(nil, code, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ptr[T any](v T) *T { return &v }

// utc normalises the local times go-amqp decodes.
func utc(v any) any {
	if t, ok := v.(time.Time); ok {
		return t.UTC()
	}
	return v
}

func TestParseRecordsStopsAtDamage(t *testing.T) {
	good := appendRecord(appendRecord(nil, record{kind: recRemove, data: []byte{0, 2}}), record{kind: recDefer, data: []byte{1, 4}})
	cases := []struct {
		name string
		data []byte
		recs int
	}{
		{"intact", good, 2},
		{"torn tail", append(append([]byte{}, good...), 0, 0, 0, 9, 1, 2), 2},
		{"flipped bit", func() []byte {
			b := append([]byte{}, good...)
			b[len(b)-1] ^= 1
			return b
		}(), 1},
		{"zero length", append(append([]byte{}, good...), 0, 0, 0, 0, 0, 0, 0, 0, 0), 2},
		{"empty", nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			recs, n := parseRecords(tc.data)
			if len(recs) != tc.recs {
				t.Fatalf("%d records, want %d", len(recs), tc.recs)
			}
			if tc.recs == 2 && n != len(good) {
				t.Errorf("valid prefix %d bytes, want %d", n, len(good))
			}
		})
	}
}

func TestQueueStateMachine(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	opts, _ := QueueOptions{Name: "q", MaxDeliveryCount: 2, LockDuration: time.Second}.withDefaults()
	q := newQueue(opts, clock, slog.New(slog.NewTextHandler(io.Discard, nil)))
	raw, _ := (&amqp.Message{Data: [][]byte{[]byte("x")}}).MarshalBinary()
	m, _ := parseMessage(raw)
	if _, err := q.enqueue([]*message{m}); err != nil {
		t.Fatal(err)
	}
	wake := make(chan struct{}, 1)

	d, ok := q.next(false, true, wake)
	if !ok {
		t.Fatal("no message")
	}
	if _, ok := q.next(false, true, wake); ok {
		t.Fatal("a locked message was handed out twice")
	}
	if err := q.settle(false, amqpframe.UUID{1}, outcome{kind: outcomeComplete}); err != errLockLost {
		t.Errorf("settling an unknown token: %v", err)
	}
	if err := q.settle(false, d.token, outcome{kind: outcomeRelease}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
	default:
		t.Fatal("a released message did not wake the waiting receiver")
	}
	if d, _ = q.next(false, true, wake); m.deliveryCount != 0 {
		t.Errorf("release counted as an attempt: %d", m.deliveryCount)
	}
	now = now.Add(2 * time.Second)
	q.tick() // lock expired: attempt 1
	if st := q.stats(); st.Active != 1 || st.LocksExpired != 1 {
		t.Fatalf("after expiry: %+v", st)
	}
	if err := q.settle(false, d.token, outcome{kind: outcomeComplete}); err != errLockLost {
		t.Errorf("settling an expired lock: %v", err)
	}
	d, _ = q.next(false, true, wake)
	if err := q.settle(false, d.token, outcome{kind: outcomeAbandon}); err != nil { // attempt 2: dead-lettered
		t.Fatal(err)
	}
	st := q.stats()
	if st.Active+st.Locked != 0 || st.DeadLetterReasons[reasonMaxDelivery] != 1 {
		t.Fatalf("after max deliveries: %+v", st)
	}
	dd, ok := q.next(true, false, wake)
	if !ok {
		t.Fatal("dead-letter queue is empty")
	}
	var got amqp.Message
	if err := got.UnmarshalBinary(dd.payload); err != nil {
		t.Fatal(err)
	}
	if got.ApplicationProperties[propDeadLetterReason] != reasonMaxDelivery || got.Annotations["x-opt-enqueue-sequence-number"] != int64(1) {
		t.Errorf("dead-lettered message: %v %v", got.ApplicationProperties, got.Annotations)
	}
}

// TestHeaderAlwaysCarriesTheDeliveryCount: the JavaScript SDK (rhea) reads an absent
// header delivery-count as undefined, not as the default 0, so a first delivery must
// carry the 0 explicitly, as Service Bus's does.
func TestHeaderAlwaysCarriesTheDeliveryCount(t *testing.T) {
	raw, err := amqp.NewMessage([]byte("x")).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseMessage(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, count := range []uint32{0, 1, 7} {
		m.deliveryCount = count
		sections, err := amqpframe.SplitMessage(m.deliveryBytes(false, false))
		if err != nil {
			t.Fatal(err)
		}
		if sections[0].Code != amqpframe.SectionHeader {
			t.Fatalf("first section is %#x, not the header", sections[0].Code)
		}
		h := sections[0].Value.([]any)
		if len(h) < 5 || h[4] != count {
			t.Errorf("delivery count %d: header is %#v, want delivery-count %d present", count, h, count)
		}
	}
}
