package devbus_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/Azure/go-amqp"

	"github.com/dimirror/dimirror/emulators/devbus"
	"github.com/dimirror/dimirror/emulators/devbus/amqpframe"
	"github.com/dimirror/dimirror/internal/syncbuf"
)

// rawConn is a hand-driven AMQP connection for protocol tests.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, b *devbus.Broker) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", b.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (r *rawConn) write(b []byte) {
	r.t.Helper()
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawConn) writeFrame(typ uint8, channel uint16, p amqpframe.Performative) {
	r.t.Helper()
	buf, err := amqpframe.AppendFrame(nil, amqpframe.Frame{Type: typ, Channel: channel, Body: p})
	if err != nil {
		r.t.Fatal(err)
	}
	r.write(buf)
}

func (r *rawConn) readHeader() []byte {
	r.t.Helper()
	h := make([]byte, 8)
	if _, err := io.ReadFull(r.br, h); err != nil {
		r.t.Fatal(err)
	}
	return h
}

func (r *rawConn) readFrame() amqpframe.Frame {
	r.t.Helper()
	for {
		f, err := amqpframe.ReadFrame(r.br, 1<<20)
		if err != nil {
			r.t.Fatalf("reading a frame: %v", err)
		}
		if f.Body != nil { // skip heartbeats
			return f
		}
	}
}

// open runs SASL ANONYMOUS and open, as go-amqp does.
func (r *rawConn) open() {
	r.t.Helper()
	r.write([]byte("AMQP\x03\x01\x00\x00"))
	if h := r.readHeader(); !bytes.Equal(h, []byte("AMQP\x03\x01\x00\x00")) {
		r.t.Fatalf("SASL header answered with %q", h)
	}
	if _, ok := r.readFrame().Body.(*amqpframe.SASLMechanisms); !ok {
		r.t.Fatal("no sasl-mechanisms")
	}
	r.writeFrame(amqpframe.TypeSASL, 0, &amqpframe.SASLInit{Mechanism: "ANONYMOUS"})
	if o, ok := r.readFrame().Body.(*amqpframe.SASLOutcome); !ok || o.Code != amqpframe.SASLCodeOK {
		r.t.Fatal("SASL did not succeed")
	}
	r.write([]byte("AMQP\x00\x01\x00\x00"))
	r.readHeader()
	r.writeFrame(amqpframe.TypeAMQP, 0, &amqpframe.Open{ContainerID: "raw-test", MaxFrameSize: 65536, ChannelMax: 10})
	if _, ok := r.readFrame().Body.(*amqpframe.Open); !ok {
		r.t.Fatal("no open")
	}
}

// expectClose reads until the broker's close and returns its error.
func (r *rawConn) expectClose() *amqpframe.Error {
	r.t.Helper()
	for {
		f := r.readFrame()
		if c, ok := f.Body.(*amqpframe.Close); ok {
			if c.Error == nil {
				r.t.Fatal("close without an error")
			}
			return c.Error
		}
	}
}

func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	b := startBroker(t, devbus.Options{})
	// A healthy client, connected before and used after the bad ones.
	c := newClient(t, b)
	s := newSender(t, c, "survivor")
	r := newReceiver(t, c, "survivor", nil)
	send(t, s, textMessage("before"))

	cases := []struct {
		name string
		bad  func(*rawConn)
		cond amqpframe.Symbol
	}{
		{"garbage body", func(rc *rawConn) {
			rc.write([]byte{0, 0, 0, 14, 2, 0, 0, 0, 0x00, 0x53, 0x10, 0xd0, 0xff, 0xff})
		}, amqpframe.ErrDecode},
		{"unknown descriptor", func(rc *rawConn) {
			rc.write([]byte{0, 0, 0, 12, 2, 0, 0, 0, 0x00, 0x53, 0x99, 0x45})
		}, amqpframe.ErrDecode},
		{"wrong field type", func(rc *rawConn) {
			// begin whose next-outgoing-id is a string
			rc.write([]byte{0, 0, 0, 19, 2, 0, 0, 0, 0x00, 0x53, 0x11, 0xc0, 0x06, 0x02, 0x40, 0xa1, 0x02, 'h', 'i'})
		}, amqpframe.ErrDecode},
		{"frame too large", func(rc *rawConn) {
			rc.write([]byte{0x7f, 0, 0, 0, 2, 0, 0, 0})
		}, amqpframe.ErrFramingError},
		{"attach without a session", func(rc *rawConn) {
			rc.writeFrame(amqpframe.TypeAMQP, 3, &amqpframe.Attach{Name: "x", Handle: 0, Role: amqpframe.RoleSender,
				Target: &amqpframe.Target{Address: "survivor"}})
		}, amqpframe.ErrNotAllowed},
		{"SASL frame after open", func(rc *rawConn) {
			rc.writeFrame(amqpframe.TypeSASL, 0, &amqpframe.SASLInit{Mechanism: "PLAIN"})
		}, amqpframe.ErrNotAllowed},
		{"transfer on an unattached handle", func(rc *rawConn) {
			rc.writeFrame(amqpframe.TypeAMQP, 0, &amqpframe.Begin{NextOutgoingID: 0, IncomingWindow: 100, OutgoingWindow: 100})
			rc.readFrame()
			id := uint32(0)
			rc.writeFrame(amqpframe.TypeAMQP, 0, &amqpframe.Transfer{Handle: 7, DeliveryID: &id, DeliveryTag: []byte{1}})
		}, amqpframe.ErrUnattachedHandle},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, b)
			rc.open()
			tc.bad(rc)
			e := rc.expectClose()
			if e.Condition != tc.cond || e.Description == "" {
				t.Errorf("closed with %s (%q), want %s with a description", e.Condition, e.Description, tc.cond)
			}
			if _, err := rc.br.ReadByte(); err == nil {
				t.Error("the connection stayed open after close")
			}
		})
	}

	send(t, s, textMessage("after"))
	msgs := receiveN(t, r, 2)
	if string(msgs[0].Body) != "before" || string(msgs[1].Body) != "after" {
		t.Errorf("healthy client received %q, %q", msgs[0].Body, msgs[1].Body)
	}
	complete(t, r, msgs...)
}

func TestProtocolHeaderMismatchIsAnswered(t *testing.T) {
	b := startBroker(t, devbus.Options{})
	for _, hdr := range []string{"AMQP\x02\x01\x00\x00", "HTTP/1.1"} {
		rc := dialRaw(t, b)
		rc.write([]byte(hdr))
		if got := rc.readHeader(); !bytes.Equal(got, []byte("AMQP\x03\x01\x00\x00")) {
			t.Errorf("header %q answered with %q", hdr, got)
		}
		if _, err := rc.br.ReadByte(); err == nil {
			t.Errorf("header %q: connection left open", hdr)
		}
	}
}

// rpc sends one management request with the public go-amqp client and returns the reply.
func rpc(t *testing.T, b *devbus.Broker, node string, props map[string]any, value any) *amqp.Message {
	t.Helper()
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
	snd, err := sess.NewSender(ctx, node, nil)
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := sess.NewReceiver(ctx, node, &amqp.ReceiverOptions{TargetAddress: "test-replies", Credit: 10,
		SettlementMode: amqp.ReceiverSettleModeFirst.Ptr(), RequestedSenderSettleMode: amqp.SenderSettleModeSettled.Ptr()})
	if err != nil {
		t.Fatal(err)
	}
	req := &amqp.Message{
		Properties:            &amqp.MessageProperties{MessageID: "req-1", ReplyTo: to.Ptr("test-replies")},
		ApplicationProperties: props,
		Value:                 value,
	}
	if err := snd.Send(ctx, req, nil); err != nil {
		t.Fatal(err)
	}
	resp, err := rcv.Receive(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Properties == nil || resp.Properties.CorrelationID != "req-1" {
		t.Errorf("reply not correlated: %+v", resp.Properties)
	}
	return resp
}

func TestManagementAnswersEveryRequest(t *testing.T) {
	b := startBroker(t, devbus.Options{})
	cases := []struct {
		name      string
		node      string
		props     map[string]any
		value     any
		statusKey string
		status    int32
		desc      string
		cond      string // errorCondition of management replies (a symbol; go-amqp reads it as a string)
	}{
		{"unknown operation", "q/$management", map[string]any{"operation": "com.microsoft:frobnicate"}, nil,
			"statusCode", 501, `does not implement the management operation "com.microsoft:frobnicate"`, "amqp:not-implemented"},
		{"no operation", "q/$management", map[string]any{}, nil, "statusCode", 400, "without an operation", "com.microsoft:argument-error"},
		{"malformed body", "q/$management", map[string]any{"operation": "com.microsoft:renew-lock"},
			map[string]any{"lock-tokens": "nope"}, "statusCode", 400, "lock-tokens", "com.microsoft:argument-error"},
		{"unknown lock token", "q/$management", map[string]any{"operation": "com.microsoft:renew-lock"},
			map[string]any{"lock-tokens": []amqp.UUID{{1}}}, "statusCode", 410, "MessageLockLost", "com.microsoft:message-lock-lost"},
		{"session operation", "q/$management", map[string]any{"operation": "com.microsoft:renew-session-lock"},
			map[string]any{"session-id": "s"}, "statusCode", 501, "renew-session-lock", "amqp:not-implemented"},
		{"cbs put-token", "$cbs", map[string]any{"operation": "put-token", "type": "servicebus.windows.net:sastoken",
			"name": "amqp://x/q", "expiration": time.Now().Add(time.Hour)}, "SharedAccessSignature sr=x&sig=secret",
			"status-code", 202, "Accepted", ""},
		{"cbs other operation", "$cbs", map[string]any{"operation": "delete-token"}, nil, "status-code", 501, "put-token only", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := rpc(t, b, tc.node, tc.props, tc.value)
			if got := resp.ApplicationProperties[tc.statusKey]; got != tc.status {
				t.Errorf("%s = %#v, want %d", tc.statusKey, got, tc.status)
			}
			descKey := strings.Replace(strings.Replace(tc.statusKey, "Code", "Description", 1), "code", "description", 1)
			if d, _ := resp.ApplicationProperties[descKey].(string); !strings.Contains(d, tc.desc) {
				t.Errorf("%s = %q, want it to contain %q", descKey, d, tc.desc)
			}
			// Failed management requests name their error as Service Bus does (the .NET
			// client picks its exception by it).
			if got, _ := resp.ApplicationProperties["errorCondition"].(string); got != tc.cond {
				t.Errorf("errorCondition = %q, want %q", got, tc.cond)
			}
		})
	}
}

func TestSecretsAreNotLogged(t *testing.T) {
	var logs syncbuf.Buffer
	b := startBroker(t, devbus.Options{Logger: debugLogger(&logs)})
	const key = "Sup3rSecretSASKeyValue"
	connStr := strings.Replace(b.ConnectionString(), "SharedAccessKey=dev", "SharedAccessKey="+key, 1)
	c := newClientFor(t, connStr)
	s := newSender(t, c, "secret")
	send(t, s, &azservicebus.Message{Body: []byte("body-with-data"), ApplicationProperties: map[string]any{"k": "v"}})
	r := newReceiver(t, c, "secret", nil)
	complete(t, r, receiveOne(t, r))
	// Provoke the logging paths: a refused link and a dropped connection.
	_, _ = c.NewReceiverForSubscription("t", "s", nil)
	b.DropConnections()
	eventually(t, "the connection to be logged", func() bool { return strings.Contains(logs.String(), "connection") })

	out := logs.String()
	for _, secret := range []string{key, "sig=", "SharedAccessSignature", "body-with-data"} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
}

// TestLockTokenTravelsTwice drives a receiver with go-amqp directly: the lock token is in
// the x-opt-lock-token annotation and, in .NET byte order, in the delivery tag; credit can
// be drained; accepted and rejected settle the messages.
func TestLockTokenTravelsTwice(t *testing.T) {
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
	snd, err := sess.NewSender(ctx, "raw", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"one", "two"} {
		if err := snd.Send(ctx, amqp.NewMessage([]byte(body)), nil); err != nil {
			t.Fatal(err)
		}
	}
	rcv, err := sess.NewReceiver(ctx, "raw", &amqp.ReceiverOptions{Credit: -1, SettlementMode: amqp.ReceiverSettleModeSecond.Ptr()})
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.IssueCredit(5); err != nil {
		t.Fatal(err)
	}
	var msgs []*amqp.Message
	for range 2 {
		m, err := rcv.Receive(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
		tok, ok := m.DeliveryAnnotations["x-opt-lock-token"].(amqp.UUID)
		if !ok {
			t.Fatalf("no lock token annotation: %v", m.DeliveryAnnotations)
		}
		tag := m.DeliveryTag
		swapped := []byte{tag[3], tag[2], tag[1], tag[0], tag[5], tag[4], tag[7], tag[6]}
		if len(tag) != 16 || !bytes.Equal(swapped, tok[:8]) || !bytes.Equal(tag[8:], tok[8:]) {
			t.Errorf("delivery tag % x is not lock token %v in .NET byte order", tag, tok)
		}
		if m.Header != nil && m.Header.DeliveryCount != 0 {
			t.Errorf("first delivery has delivery-count %d", m.Header.DeliveryCount)
		}
	}
	// Three credits are left and nothing to send: draining must end promptly.
	if err := rcv.DrainCredit(ctx, nil); err != nil {
		t.Fatalf("DrainCredit: %v", err)
	}
	if err := rcv.AcceptMessage(ctx, msgs[0]); err != nil {
		t.Fatal(err)
	}
	if err := rcv.RejectMessage(ctx, msgs[1], &amqp.Error{Condition: "com.microsoft:dead-letter",
		Info: map[string]any{"DeadLetterReason": "raw-reject", "DeadLetterErrorDescription": "by hand"}}); err != nil {
		t.Fatalf("RejectMessage: %v (devbus must answer with a bare rejected)", err)
	}
	st := stats(t, b, "raw")
	if st.Completed != 1 || st.DeadLetterReasons["raw-reject"] != 1 || st.Active+st.Locked != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// TestHeartbeatsKeepIdleClientsConnected: go-amqp drops a connection that stays silent
// longer than its idle timeout, so devbus must send empty frames often enough.
func TestHeartbeatsKeepIdleClientsConnected(t *testing.T) {
	b := startBroker(t, devbus.Options{})
	ctx := testContext(t)
	conn, err := amqp.Dial(ctx, "amqp://"+b.Addr(), &amqp.ConnOptions{SASLType: amqp.SASLTypeAnonymous(), IdleTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	time.Sleep(time.Second)
	sess, err := conn.NewSession(ctx, nil)
	if err != nil {
		t.Fatalf("after a second of silence: %v", err)
	}
	snd, err := sess.NewSender(ctx, "idle", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snd.Send(ctx, amqp.NewMessage([]byte("still here")), nil); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, b, "idle"); st.Enqueued != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// TestFramesBeforeOpenAreHeldToTheMinimumSize: until open has negotiated a frame size,
// no frame may exceed 512 bytes (the protocol's minimum max-frame-size); devbus refuses
// larger SASL and open frames instead of buffering them.
func TestFramesBeforeOpenAreHeldToTheMinimumSize(t *testing.T) {
	b := startBroker(t, devbus.Options{})
	// sized pads a frame's variable part so that the whole frame takes size bytes.
	sized := func(size int, build func(pad string) amqpframe.Frame) []byte {
		base, err := amqpframe.AppendFrame(nil, build(""))
		if err != nil {
			t.Fatal(err)
		}
		// Length fields grow with the padding; step around the first guess.
		for n := max(size-len(base)-16, 0); n <= size-len(base); n++ {
			buf, err := amqpframe.AppendFrame(nil, build(strings.Repeat("x", n)))
			if err != nil {
				t.Fatal(err)
			}
			if len(buf) == size {
				return buf
			}
		}
		t.Fatalf("cannot build a frame of exactly %d bytes", size)
		return nil
	}
	saslInit := func(pad string) amqpframe.Frame {
		return amqpframe.Frame{Type: amqpframe.TypeSASL, Body: &amqpframe.SASLInit{Mechanism: "PLAIN", Hostname: pad}}
	}
	open := func(pad string) amqpframe.Frame {
		return amqpframe.Frame{Body: &amqpframe.Open{ContainerID: "big-open", MaxFrameSize: 65536,
			Properties: amqpframe.Map{{Key: amqpframe.Symbol("platform"), Value: pad}}}}
	}
	cases := []struct {
		name   string
		sasl   []byte // the sasl-init frame
		open   []byte // the open frame, when SASL succeeds
		wantOK bool
	}{
		{"sasl-init and open of 512 bytes", sized(512, saslInit), sized(512, open), true},
		{"sasl-init of 513 bytes", sized(513, saslInit), nil, false},
		{"sasl-init of 2 KiB", sized(2048, saslInit), nil, false},
		{"open of 513 bytes", sized(200, saslInit), sized(513, open), false},
		{"open of 60 KiB", sized(200, saslInit), sized(60<<10, open), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, b)
			rc.write([]byte("AMQP\x03\x01\x00\x00"))
			rc.readHeader()
			if _, ok := rc.readFrame().Body.(*amqpframe.SASLMechanisms); !ok {
				t.Fatal("no sasl-mechanisms")
			}
			rc.write(tc.sasl)
			outcome, ok := rc.readFrame().Body.(*amqpframe.SASLOutcome)
			if !ok {
				t.Fatal("sasl-init not answered with sasl-outcome")
			}
			if tc.open == nil {
				if outcome.Code == amqpframe.SASLCodeOK {
					t.Fatalf("a %d-byte sasl-init was accepted", len(tc.sasl))
				}
				if _, err := rc.br.ReadByte(); err == nil {
					t.Error("the connection stayed open after a failed SASL exchange")
				}
				return
			}
			if outcome.Code != amqpframe.SASLCodeOK {
				t.Fatalf("sasl-outcome %d for a %d-byte sasl-init", outcome.Code, len(tc.sasl))
			}
			rc.write([]byte("AMQP\x00\x01\x00\x00"))
			rc.readHeader()
			rc.write(tc.open)
			if _, ok := rc.readFrame().Body.(*amqpframe.Open); !ok {
				t.Fatal("open not answered with open")
			}
			if tc.wantOK {
				rc.writeFrame(amqpframe.TypeAMQP, 0, &amqpframe.Close{})
				if _, ok := rc.readFrame().Body.(*amqpframe.Close); !ok {
					t.Fatal("a 512-byte open did not open the connection")
				}
				return
			}
			e := rc.expectClose()
			if e.Condition != amqpframe.ErrFramingError || !strings.Contains(e.Description, "limit 512") {
				t.Errorf("a %d-byte open closed with %s (%q), want %s naming the 512-byte limit",
					len(tc.open), e.Condition, e.Description, amqpframe.ErrFramingError)
			}
		})
	}
}
