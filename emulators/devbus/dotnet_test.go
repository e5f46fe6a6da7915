package devbus_test

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/dimirror/dimirror/emulators/devbus"
	"github.com/dimirror/dimirror/emulators/devbus/amqpframe"
)

// The tests in this file speak to devbus frame by frame, as the .NET client
// (Azure.Messaging.ServiceBus on Microsoft.Azure.Amqp) does; no .NET runtime is needed.
// Each shape is taken from that client's source: AmqpConnectionScope (SASL, links and
// their settle modes), AmqpCbsLink and RequestResponseAmqpLink in Microsoft.Azure.Amqp
// (put-token, request/response link pairs, pre-settled requests with an empty delivery
// tag), AmqpReceiver (dispositions, update-disposition, renew-lock, peek,
// receive-by-sequence-number) and AmqpMessageConverter (the typed property values).

// dotNetConn is one hand-driven connection that sends what the .NET client sends.
type dotNetConn struct {
	*rawConn
	nextOutgoing uint32 // transfers sent on the session
	nextIncoming uint32 // transfers received on the session
	deliveryID   uint32
}

func dialDotNet(t *testing.T, b *devbus.Broker) *dotNetConn {
	t.Helper()
	r := dialRaw(t, b)
	r.write([]byte("AMQP\x03\x01\x00\x00"))
	r.readHeader()
	mechs, ok := r.readFrame().Body.(*amqpframe.SASLMechanisms)
	if !ok {
		t.Fatal("no sasl-mechanisms")
	}
	// The .NET client authenticates with CBS and offers SASL only the anonymous handler
	// registered under the name MSSBCBS; it gives up when the server does not list it.
	offered := false
	for _, m := range mechs.Mechanisms {
		offered = offered || m == "MSSBCBS"
	}
	if !offered {
		t.Fatalf("sasl-mechanisms %v lack MSSBCBS", mechs.Mechanisms)
	}
	r.writeFrame(amqpframe.TypeSASL, 0, &amqpframe.SASLInit{Mechanism: "MSSBCBS"})
	if o, ok := r.readFrame().Body.(*amqpframe.SASLOutcome); !ok || o.Code != amqpframe.SASLCodeOK {
		t.Fatal("SASL MSSBCBS did not succeed")
	}
	r.write([]byte("AMQP\x00\x01\x00\x00"))
	r.readHeader()
	r.writeFrame(amqpframe.TypeAMQP, 0, &amqpframe.Open{
		ContainerID: "sb://127.0.0.1/-1a2b3c4d", Hostname: "127.0.0.1", MaxFrameSize: 65536,
		ChannelMax: 8191, IdleTimeout: 60000,
		Properties: amqpframe.Map{
			{Key: amqpframe.Symbol("product"), Value: "Azure.Messaging.ServiceBus"},
			{Key: amqpframe.Symbol("version"), Value: "7.18.0"},
			{Key: amqpframe.Symbol("framework"), Value: ".NET 8.0.0"},
			{Key: amqpframe.Symbol("platform"), Value: "Debian GNU/Linux 12 (bookworm)"},
			{Key: amqpframe.Symbol("user-agent"), Value: "azsdk-net-Messaging.ServiceBus/7.18.0 (.NET 8.0.0; Debian GNU/Linux 12 (bookworm))"},
		},
	})
	if _, ok := r.readFrame().Body.(*amqpframe.Open); !ok {
		t.Fatal("no open")
	}
	// Receiving sessions are opened with an unbounded incoming window.
	r.writeFrame(amqpframe.TypeAMQP, 0, &amqpframe.Begin{NextOutgoingID: 0, IncomingWindow: math.MaxUint32, OutgoingWindow: 5000})
	if _, ok := r.readFrame().Body.(*amqpframe.Begin); !ok {
		t.Fatal("no begin")
	}
	return &dotNetConn{rawConn: r}
}

// until reads frames (counting transfers for the session window) until want accepts one.
func (c *dotNetConn) until(what string, want func(amqpframe.Performative) bool) amqpframe.Performative {
	c.t.Helper()
	for {
		f := c.readFrame()
		switch p := f.Body.(type) {
		case *amqpframe.Transfer:
			c.nextIncoming++
		case *amqpframe.Detach:
			if p.Error != nil {
				c.t.Fatalf("waiting for %s: link %d detached: %v", what, p.Handle, p.Error)
			}
		case *amqpframe.Close:
			c.t.Fatalf("waiting for %s: connection closed: %v", what, p.Error)
		}
		if want(f.Body) {
			return f.Body
		}
	}
}

func (c *dotNetConn) attach(a *amqpframe.Attach) {
	c.t.Helper()
	c.writeFrame(amqpframe.TypeAMQP, 0, a)
	got := c.until("attach "+a.Name, func(p amqpframe.Performative) bool {
		r, ok := p.(*amqpframe.Attach)
		return ok && r.Handle == a.Handle
	}).(*amqpframe.Attach)
	if (a.Role == amqpframe.RoleReceiver && got.Source == nil) || (a.Role == amqpframe.RoleSender && got.Target == nil) {
		c.t.Fatalf("attach %q refused", a.Name)
	}
	if a.Role == amqpframe.RoleSender {
		c.until("credit for "+a.Name, func(p amqpframe.Performative) bool {
			f, ok := p.(*amqpframe.Flow)
			return ok && f.Handle != nil && *f.Handle == a.Handle && f.LinkCredit != nil && *f.LinkCredit > 0
		})
	}
}

func (c *dotNetConn) credit(handle, deliveryCount, credit uint32) {
	c.t.Helper()
	nid := c.nextIncoming
	c.writeFrame(amqpframe.TypeAMQP, 0, &amqpframe.Flow{NextIncomingID: &nid, IncomingWindow: math.MaxUint32,
		NextOutgoingID: c.nextOutgoing, OutgoingWindow: 5000, Handle: &handle, DeliveryCount: &deliveryCount, LinkCredit: &credit})
}

// send transfers one message and returns its delivery id.
func (c *dotNetConn) send(handle uint32, tag []byte, settled bool, msg []byte) uint32 {
	c.t.Helper()
	id := c.deliveryID
	c.deliveryID++
	c.nextOutgoing++
	buf, err := amqpframe.AppendFrame(nil, amqpframe.Frame{Type: amqpframe.TypeAMQP, Body: &amqpframe.Transfer{
		Handle: handle, DeliveryID: &id, DeliveryTag: tag, MessageFormat: new(uint32), Settled: settled}, Payload: msg})
	if err != nil {
		c.t.Fatal(err)
	}
	c.write(buf)
	return id
}

// receive waits for a transfer on handle and returns it with its message's sections.
func (c *dotNetConn) receive(handle uint32) (*amqpframe.Transfer, dotNetMessage) {
	c.t.Helper()
	for {
		f := c.readFrame()
		switch p := f.Body.(type) {
		case *amqpframe.Transfer:
			c.nextIncoming++
			if p.Handle != handle {
				continue
			}
			if p.More {
				c.t.Fatal("a multi-frame delivery; the test messages fit one frame")
			}
			return p, parseDotNetMessage(c.t, f.Payload)
		case *amqpframe.Detach, *amqpframe.Close:
			c.t.Fatalf("waiting for a transfer on %d: %s", handle, amqpframe.Name(p))
		}
	}
}

// dispose sends a receiver's unsettled outcome (the .NET client settles in
// receiver-settle-mode second), waits for devbus's settled answer, then settles.
func (c *dotNetConn) dispose(id uint32, state amqpframe.DeliveryState) amqpframe.DeliveryState {
	c.t.Helper()
	c.writeFrame(amqpframe.TypeAMQP, 0, &amqpframe.Disposition{Role: amqpframe.RoleReceiver, First: id, State: state, Batchable: true})
	d := c.until("the outcome", func(p amqpframe.Performative) bool {
		d, ok := p.(*amqpframe.Disposition)
		return ok && d.Role == amqpframe.RoleSender && d.First == id
	}).(*amqpframe.Disposition)
	if !d.Settled {
		c.t.Fatalf("devbus answered delivery %d unsettled", id)
	}
	c.writeFrame(amqpframe.TypeAMQP, 0, &amqpframe.Disposition{Role: amqpframe.RoleReceiver, First: id, Settled: true, State: state})
	return d.State
}

// duplex attaches a request/response link pair as RequestResponseAmqpLink does: a
// pre-settled sender to node and a receiver from node whose target is the reply-to.
func (c *dotNetConn) duplex(name, node string, sender, receiver uint32, props amqpframe.Map) string {
	c.t.Helper()
	replyTo := fmt.Sprintf("5f1c0c3e9b2a4d8e8f7a6b5c4d3e%04x", receiver) // a Guid in "N" format, one per link pair
	settled := amqpframe.SenderSettleSettled
	idc := uint32(0)
	c.attach(&amqpframe.Attach{Name: name + ":sender", Handle: sender, Role: amqpframe.RoleSender,
		SndSettleMode: &settled, Source: &amqpframe.Source{}, Target: &amqpframe.Target{Address: node},
		InitialDeliveryCount: &idc, Properties: props})
	c.attach(&amqpframe.Attach{Name: name + ":receiver", Handle: receiver, Role: amqpframe.RoleReceiver,
		SndSettleMode: &settled, Source: &amqpframe.Source{Address: node}, Target: &amqpframe.Target{Address: replyTo},
		Properties: props})
	c.credit(receiver, 0, 50)
	return replyTo
}

// request sends one request, pre-settled and with an empty delivery tag as
// RequestResponseAmqpLink does, and returns the reply.
func (c *dotNetConn) request(sender, receiver uint32, msgID, replyTo string, props amqpframe.Map, body any) dotNetMessage {
	c.t.Helper()
	msg := dotNetEncode(c.t, []any{msgID, nil, nil, nil, replyTo}, props, body)
	c.send(sender, []byte{}, true, msg)
	_, reply := c.receive(receiver)
	if reply.props == nil || len(reply.props) < 6 || reply.props[5] != msgID {
		c.t.Fatalf("reply properties %v do not correlate with message id %q", reply.props, msgID)
	}
	return reply
}

// dotNetMessage is a decoded message.
type dotNetMessage struct {
	header      []any
	deliveryAnn amqpframe.Map
	ann         amqpframe.Map
	props       []any
	appProps    amqpframe.Map
	body        any // the amqp-value, or the data bytes
}

func parseDotNetMessage(t *testing.T, raw []byte) dotNetMessage {
	t.Helper()
	sections, err := amqpframe.SplitMessage(raw)
	if err != nil {
		t.Fatalf("devbus sent an undecodable message: %v", err)
	}
	var m dotNetMessage
	for _, s := range sections {
		switch s.Code {
		case amqpframe.SectionHeader:
			m.header = s.Value.([]any)
		case amqpframe.SectionDeliveryAnnotations:
			m.deliveryAnn, _ = s.Value.(amqpframe.Map)
		case amqpframe.SectionMessageAnnotations:
			m.ann, _ = s.Value.(amqpframe.Map)
		case amqpframe.SectionProperties:
			m.props = s.Value.([]any)
		case amqpframe.SectionApplicationProperties:
			m.appProps, _ = s.Value.(amqpframe.Map)
		case amqpframe.SectionValue, amqpframe.SectionData:
			v, _, err := amqpframe.DecodeValue(s.Raw)
			if err != nil {
				t.Fatal(err)
			}
			m.body = v.(amqpframe.Described).Value
		}
	}
	return m
}

func dotNetEncode(t *testing.T, props []any, appProps amqpframe.Map, body any) []byte {
	t.Helper()
	b, err := amqpframe.AppendSection(nil, amqpframe.SectionProperties, props)
	if err == nil && appProps != nil {
		b, err = amqpframe.AppendSection(b, amqpframe.SectionApplicationProperties, appProps)
	}
	if err == nil {
		if data, ok := body.([]byte); ok {
			b, err = amqpframe.AppendSection(b, amqpframe.SectionData, data)
		} else {
			b, err = amqpframe.AppendSection(b, amqpframe.SectionValue, body)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mapValue(t *testing.T, m amqpframe.Map, key any) any {
	t.Helper()
	v, ok := m.Get(key)
	if !ok {
		t.Fatalf("no %v in %v", key, m)
	}
	return v
}

// dotNetProperties are values of every kind AmqpMessageConverter puts into
// propertiesToModify (abandon, defer, dead-letter): the .NET types without an AMQP type of
// their own travel as values described by a com.microsoft symbol.
func dotNetProperties() amqpframe.Map {
	return amqpframe.Map{
		{Key: amqpframe.Symbol("retry-at"), Value: amqpframe.Described{Descriptor: amqpframe.Symbol("com.microsoft:datetime-offset"), Value: int64(638700000000000000)}},
		{Key: amqpframe.Symbol("backoff"), Value: amqpframe.Described{Descriptor: amqpframe.Symbol("com.microsoft:timespan"), Value: int64(300000000)}},
		{Key: amqpframe.Symbol("source"), Value: amqpframe.Described{Descriptor: amqpframe.Symbol("com.microsoft:uri"), Value: "https://example.test/model"}},
		{Key: amqpframe.Symbol("grade"), Value: amqpframe.Char('B')},
		{Key: amqpframe.Symbol("price"), Value: amqpframe.Decimal128{0x30, 0x3c, 15: 0x2a}},
		{Key: amqpframe.Symbol("attempt"), Value: int32(2)},
		{Key: amqpframe.Symbol("id"), Value: amqpframe.UUID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}},
	}
}

// checkProperties fails unless every property of want is in got (where devbus writes
// them with string keys, as application properties are) with its value.
func checkProperties(t *testing.T, what string, got amqpframe.Map, want amqpframe.Map) {
	t.Helper()
	for _, e := range want {
		k := string(e.Key.(amqpframe.Symbol))
		v, ok := got.Get(k)
		if !ok || !reflect.DeepEqual(v, e.Value) {
			t.Errorf("%s: application property %q = %#v (present %v), want %#v", what, k, v, ok, e.Value)
		}
	}
}

// TestDotNetPutToken: the put-token request of Microsoft.Azure.Amqp's AmqpCbsLink, for
// both token types the .NET client uses, and the reply it casts: status-code unboxed as an
// int, status-description as a string, correlated by the request's string message id.
func TestDotNetPutToken(t *testing.T) {
	b := startBroker(t, devbus.Options{})
	c := dialDotNet(t, b)
	replyTo := c.duplex("duplex1:2:3", "$cbs", 0, 1, amqpframe.Map{{Key: amqpframe.Symbol("com.microsoft:timeout"), Value: uint32(60000)}})
	for i, tokenType := range []string{"servicebus.windows.net:sastoken", "jwt"} {
		props := amqpframe.Map{
			{Key: "operation", Value: "put-token"},
			{Key: "type", Value: tokenType},
			{Key: "name", Value: "sb://127.0.0.1/orders"},
			{Key: "expiration", Value: time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)},
		}
		reply := c.request(0, 1, "duplex1:2:3"+string(rune('1'+i)), replyTo, props, "SharedAccessSignature sr=x&sig=y&se=1&skn=dev")
		if got, ok := mapValue(t, reply.appProps, "status-code").(int32); !ok || (got != 200 && got != 202) {
			t.Errorf("%s: status-code = %#v, want an int 200 or 202", tokenType, mapValue(t, reply.appProps, "status-code"))
		}
		if _, ok := mapValue(t, reply.appProps, "status-description").(string); !ok {
			t.Errorf("%s: status-description is not a string", tokenType)
		}
	}
}

// TestDotNetReceiveAndSettle drives a receiver the way the .NET client (and so the
// Functions host's Service Bus trigger) does: a peek-lock link in receiver-settle-mode
// second from the entity's absolute path, the lock token taken from the delivery tag,
// abandon as modified with the properties to modify as message annotations, dead-letter as
// rejected with com.microsoft:dead-letter, defer as modified with undeliverable-here, and
// the management operations with the .NET keys and value types.
func TestDotNetReceiveAndSettle(t *testing.T) {
	b := startBroker(t, devbus.Options{})
	c := dialDotNet(t, b)
	timeout := amqpframe.Map{{Key: amqpframe.Symbol("com.microsoft:timeout"), Value: uint32(60000)}}

	// Sender: target is the entity's absolute path, messages go unsettled with Guid tags.
	idc := uint32(0)
	c.attach(&amqpframe.Attach{Name: "sb-1;1:2:3", Handle: 3, Role: amqpframe.RoleSender,
		Source: &amqpframe.Source{Address: "0b5e0a64-5b9f-4a0e-9f0e-1c2d3e4f5a6b"}, Target: &amqpframe.Target{Address: "/orders"},
		InitialDeliveryCount: &idc, Properties: timeout})
	for i, id := range []string{"abandon-then-dead-letter", "dead-letter-on-link", "defer"} {
		tag := []byte{byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
		msg := dotNetEncode(t, []any{id}, amqpframe.Map{{Key: "origin", Value: "dotnet"}}, []byte("body "+id))
		sent := c.send(3, tag, false, msg)
		d := c.until("the send outcome", func(p amqpframe.Performative) bool {
			d, ok := p.(*amqpframe.Disposition)
			return ok && d.Role == amqpframe.RoleReceiver && d.First == sent
		}).(*amqpframe.Disposition)
		if _, ok := d.State.(*amqpframe.Accepted); !ok || !d.Settled {
			t.Fatalf("send of %q answered %#v", id, d)
		}
	}

	// Receiver: peek-lock is snd-settle-mode unsettled, rcv-settle-mode second.
	unsettled, second := amqpframe.SenderSettleUnsettled, amqpframe.ReceiverSettleSecond
	rcvName := "sb-1;1:4:5:source(address:/orders,filter:[])"
	c.attach(&amqpframe.Attach{Name: rcvName, Handle: 2, Role: amqpframe.RoleReceiver,
		SndSettleMode: &unsettled, RcvSettleMode: &second,
		Source: &amqpframe.Source{Address: "/orders", Filter: amqpframe.Map{}},
		Target: &amqpframe.Target{Address: "7d9e1f20-3a4b-4c5d-8e6f-708192a3b4c5"}})
	c.credit(2, 0, 3)
	type received struct {
		id    uint32
		token amqpframe.UUID
		seq   int64
		msg   dotNetMessage
	}
	got := map[string]received{}
	for range 3 {
		tr, m := c.receive(2)
		if tr.Settled || len(tr.DeliveryTag) != 16 {
			t.Fatalf("peek-lock delivery settled=%v with a %d-byte tag", tr.Settled, len(tr.DeliveryTag))
		}
		// AmqpMessageConverter: new Guid(deliveryTag); Guid's byte order swaps the first
		// three groups relative to the uuid the x-opt-lock-token annotation carries.
		tag := tr.DeliveryTag
		var tok amqpframe.UUID
		copy(tok[:], []byte{tag[3], tag[2], tag[1], tag[0], tag[5], tag[4], tag[7], tag[6]})
		copy(tok[8:], tag[8:])
		if ann, _ := m.deliveryAnn.Get(amqpframe.Symbol("x-opt-lock-token")); ann != tok {
			t.Errorf("x-opt-lock-token %v is not the delivery tag % x read as a Guid", ann, tag)
		}
		// The converter casts these annotations: (long), (DateTime), (DateTime).
		seq, ok := mapValue(t, m.ann, amqpframe.Symbol("x-opt-sequence-number")).(int64)
		if !ok {
			t.Errorf("x-opt-sequence-number is not a long")
		}
		for _, k := range []string{"x-opt-enqueued-time", "x-opt-locked-until"} {
			if _, ok := mapValue(t, m.ann, amqpframe.Symbol(k)).(time.Time); !ok {
				t.Errorf("%s is not a timestamp", k)
			}
		}
		if len(m.header) < 5 || m.header[4] != uint32(0) {
			t.Errorf("first delivery's header %v lacks delivery-count 0", m.header)
		}
		got[m.props[0].(string)] = received{*tr.DeliveryID, tok, seq, m}
	}
	props := dotNetProperties()

	// Abandon through the link: modified, properties to modify as message annotations
	// (symbol keys), delivery-failed left unset as GetModifiedOutcome leaves it.
	a := got["abandon-then-dead-letter"]
	if st, ok := c.dispose(a.id, &amqpframe.Modified{MessageAnnotations: props}).(*amqpframe.Modified); !ok {
		t.Fatalf("abandon answered %#v", st)
	}
	c.credit(2, 3, 1)
	_, again := c.receive(2)
	if again.props[0] != "abandon-then-dead-letter" || len(again.header) < 5 || again.header[4] != uint32(1) {
		t.Fatalf("after abandon got %v with header %v, want the message again with delivery-count 1", again.props, again.header)
	}
	checkProperties(t, "abandoned with properties", again.appProps, props)
	var aTok amqpframe.UUID
	aTok, _ = mapValue(t, again.deliveryAnn, amqpframe.Symbol("x-opt-lock-token")).(amqpframe.UUID)

	// Management link, as AmqpConnectionScope attaches it.
	mgmtProps := append(amqpframe.Map{{Key: amqpframe.Symbol("com.microsoft:entity-type"), Value: "entity-mgmt"}}, timeout...)
	replyTo := c.duplex("duplex4:5:6", "orders/$management", 4, 5, mgmtProps)
	n := 0
	call := func(op string, body amqpframe.Map) dotNetMessage {
		t.Helper()
		n++
		reply := c.request(4, 5, "duplex4:5:6"+string(rune('0'+n)), replyTo, amqpframe.Map{
			{Key: "operation", Value: op},
			{Key: "com.microsoft:server-timeout", Value: uint32(60000)},
			{Key: "com.microsoft:tracking-id", Value: "c0ffee00-0000-4000-8000-000000000001"},
			{Key: "associated-link-name", Value: rcvName},
		}, body)
		return reply
	}
	status := func(reply dotNetMessage) int32 {
		t.Helper()
		s, ok := mapValue(t, reply.appProps, "statusCode").(int32)
		if !ok {
			t.Fatalf("statusCode is not an int: %#v", reply.appProps)
		}
		return s
	}
	uuids := func(u ...amqpframe.UUID) amqpframe.Array {
		a := amqpframe.Array{Code: 0x98}
		for _, x := range u {
			a.Values = append(a.Values, x)
		}
		return a
	}

	// renew-lock: lock-tokens a Guid[], expirations read back as a DateTime[].
	reply := call("com.microsoft:renew-lock", amqpframe.Map{{Key: "lock-tokens", Value: uuids(aTok)}})
	if s := status(reply); s != 200 {
		t.Fatalf("renew-lock: status %d", s)
	}
	exp, ok := mapValue(t, reply.body.(amqpframe.Map), "expirations").(amqpframe.Array)
	if !ok || len(exp.Values) != 1 {
		t.Fatalf("expirations = %#v, want an array of one timestamp", exp)
	}
	if _, ok := exp.Values[0].(time.Time); !ok {
		t.Errorf("expirations holds %T, not timestamps", exp.Values[0])
	}

	// update-disposition suspended (dead-letter) with reason, description and typed
	// properties to modify (a map with string keys).
	ptm := amqpframe.Map{}
	for _, e := range props {
		ptm = append(ptm, amqpframe.MapEntry{Key: string(e.Key.(amqpframe.Symbol)), Value: e.Value})
	}
	reply = call("com.microsoft:update-disposition", amqpframe.Map{
		{Key: "lock-tokens", Value: uuids(aTok)},
		{Key: "disposition-status", Value: "suspended"},
		{Key: "deadletter-reason", Value: "bad-input"},
		{Key: "deadletter-description", Value: "settled through $management"},
		{Key: "properties-to-modify", Value: ptm},
	})
	if s := status(reply); s != 200 {
		t.Fatalf("update-disposition: status %d (%v)", s, reply.appProps)
	}

	// Dead-letter through the link: rejected with com.microsoft:dead-letter, reason,
	// description and the properties as error info.
	d := got["dead-letter-on-link"]
	info := append(amqpframe.Map{
		{Key: amqpframe.Symbol("DeadLetterReason"), Value: "on-link"},
		{Key: amqpframe.Symbol("DeadLetterErrorDescription"), Value: "rejected with info"},
	}, props...)
	if st, ok := c.dispose(d.id, &amqpframe.Rejected{Error: &amqpframe.Error{Condition: "com.microsoft:dead-letter", Info: info}}).(*amqpframe.Rejected); !ok || st.Error != nil {
		t.Fatalf("dead-letter answered %#v, want a bare rejected", st)
	}

	// Defer through the link, then receive-by-sequence-number with a long[] and a uint
	// receiver-settle-mode (1: peek-lock), and complete through $management.
	f := got["defer"]
	if st, ok := c.dispose(f.id, &amqpframe.Modified{UndeliverableHere: true}).(*amqpframe.Modified); !ok {
		t.Fatalf("defer answered %#v", st)
	}
	reply = call("com.microsoft:receive-by-sequence-number", amqpframe.Map{
		{Key: "sequence-numbers", Value: amqpframe.Array{Code: 0x81, Values: []any{f.seq}}},
		{Key: "receiver-settle-mode", Value: uint32(1)},
	})
	if s := status(reply); s != 200 {
		t.Fatalf("receive-by-sequence-number: status %d (%v)", s, reply.appProps)
	}
	list, ok := mapValue(t, reply.body.(amqpframe.Map), "messages").([]any) // cast to List<object>
	if !ok || len(list) != 1 {
		t.Fatalf("messages = %#v, want a list of one map", list)
	}
	entry := list[0].(amqpframe.Map)
	fTok, ok := mapValue(t, entry, "lock-token").(amqpframe.UUID)
	if !ok {
		t.Fatal("lock-token is not a uuid")
	}
	deferred := parseDotNetMessage(t, mapValue(t, entry, "message").([]byte))
	if _, ok := mapValue(t, deferred.ann, amqpframe.Symbol("x-opt-locked-until")).(time.Time); !ok {
		t.Error("a message received by sequence number lacks x-opt-locked-until")
	}
	reply = call("com.microsoft:update-disposition", amqpframe.Map{
		{Key: "lock-tokens", Value: uuids(fTok)},
		{Key: "disposition-status", Value: "completed"},
	})
	if s := status(reply); s != 200 {
		t.Fatalf("complete by lock token: status %d", s)
	}

	// peek-message on the dead-letter queue: from-sequence-number a long, message-count an
	// int; both dead-lettered messages carry reason, description and the typed properties.
	dlqReply := c.duplex("duplex7:8:9", "orders/$DeadLetterQueue/$management", 6, 7, mgmtProps)
	reply = c.request(6, 7, "duplex7:8:9-peek", dlqReply, amqpframe.Map{
		{Key: "operation", Value: "com.microsoft:peek-message"},
		{Key: "com.microsoft:server-timeout", Value: uint32(60000)},
		{Key: "com.microsoft:tracking-id", Value: "c0ffee00-0000-4000-8000-000000000002"},
	}, amqpframe.Map{{Key: "from-sequence-number", Value: int64(1)}, {Key: "message-count", Value: int32(10)}})
	if s := status(reply); s != 200 {
		t.Fatalf("peek-message: status %d", s)
	}
	peeked, _ := mapValue(t, reply.body.(amqpframe.Map), "messages").([]any)
	if len(peeked) != 2 {
		t.Fatalf("peeked %d dead-lettered messages, want 2", len(peeked))
	}
	reasons := map[string]string{"abandon-then-dead-letter": "bad-input", "dead-letter-on-link": "on-link"}
	for _, p := range peeked {
		m := parseDotNetMessage(t, mapValue(t, p.(amqpframe.Map), "message").([]byte))
		id, _ := m.props[0].(string)
		if r, _ := m.appProps.Get("DeadLetterReason"); r != reasons[id] {
			t.Errorf("%s: DeadLetterReason %v, want %q", id, r, reasons[id])
		}
		checkProperties(t, id+" in the dead-letter queue", m.appProps, props)
		if !bytes.Equal(m.body.([]byte), []byte("body "+id)) {
			t.Errorf("%s: body %q", id, m.body)
		}
	}
	// schedule-message: a list of maps holding the encoded message and its message-id;
	// the sequence numbers come back as a long[]. cancel-scheduled-message takes them.
	scheduled, err := amqpframe.AppendSection(nil, amqpframe.SectionMessageAnnotations, amqpframe.Map{
		{Key: amqpframe.Symbol("x-opt-scheduled-enqueue-time"), Value: time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)}})
	if err != nil {
		t.Fatal(err)
	}
	scheduled = append(scheduled, dotNetEncode(t, []any{"scheduled"}, nil, []byte("later"))...)
	reply = call("com.microsoft:schedule-message", amqpframe.Map{{Key: "messages", Value: []any{
		amqpframe.Map{{Key: "message", Value: scheduled}, {Key: "message-id", Value: "scheduled"}}}}})
	if s := status(reply); s != 200 {
		t.Fatalf("schedule-message: status %d (%v)", s, reply.appProps)
	}
	seqs, ok := mapValue(t, reply.body.(amqpframe.Map), "sequence-numbers").(amqpframe.Array)
	if !ok || len(seqs.Values) != 1 {
		t.Fatalf("sequence-numbers = %#v, want an array of one long", seqs)
	}
	if _, ok := seqs.Values[0].(int64); !ok {
		t.Fatalf("sequence-numbers holds %T, not longs", seqs.Values[0])
	}
	if s := stats(t, b, "orders"); s.Scheduled != 1 {
		t.Errorf("after schedule-message: stats = %+v", s)
	}
	reply = call("com.microsoft:cancel-scheduled-message", amqpframe.Map{{Key: "sequence-numbers", Value: seqs}})
	if s := status(reply); s != 200 {
		t.Fatalf("cancel-scheduled-message: status %d (%v)", s, reply.appProps)
	}

	st := stats(t, b, "orders")
	if st.Completed != 1 || st.DeadLettered != 2 || st.Abandoned != 1 || st.Active+st.Locked+st.Deferred+st.Scheduled != 0 {
		t.Errorf("stats = %+v", st)
	}
}
