package amqpframe

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/Azure/go-amqp"
)

func u32(v uint32) *uint32 { return &v }
func u16(v uint16) *uint16 { return &v }
func u8(v uint8) *uint8    { return &v }

// samplePerformatives has one of every performative, with most fields set.
func samplePerformatives() []Frame {
	return []Frame{
		{Type: TypeSASL, Body: &SASLMechanisms{Mechanisms: []Symbol{"ANONYMOUS", "PLAIN"}}},
		{Type: TypeSASL, Body: &SASLInit{Mechanism: "PLAIN", InitialResponse: []byte("\x00u\x00p"), Hostname: "h"}},
		{Type: TypeSASL, Body: &SASLChallenge{Challenge: []byte("c")}},
		{Type: TypeSASL, Body: &SASLResponse{Response: []byte("r")}},
		{Type: TypeSASL, Body: &SASLOutcome{Code: SASLCodeAuth, AdditionalData: []byte("no")}},
		{Body: &Open{ContainerID: "c", Hostname: "h", MaxFrameSize: 65536, ChannelMax: 9, IdleTimeout: 30000,
			OfferedCapabilities: []Symbol{"x"}, Properties: Map{{Key: Symbol("product"), Value: "t"}}}},
		{Body: &Open{ContainerID: "defaults", MaxFrameSize: math32, ChannelMax: 65535}},
		{Channel: 3, Body: &Begin{RemoteChannel: u16(3), NextOutgoingID: 1, IncomingWindow: 5000, OutgoingWindow: 5000,
			HandleMax: 255, DesiredCapabilities: []Symbol{"d"}}},
		{Channel: 3, Body: &Attach{Name: "link", Handle: 2, Role: RoleReceiver, SndSettleMode: u8(SenderSettleUnsettled),
			RcvSettleMode: u8(ReceiverSettleSecond),
			Source: &Source{Address: "q", Durable: 1, ExpiryPolicy: "never", Timeout: 5, Dynamic: true,
				DistributionMode: "move", Filter: Map{{Key: Symbol("f"), Value: Described{Descriptor: uint64(0x137000000c), Value: "s"}}},
				DefaultOutcome: Described{Descriptor: uint64(descReleased), Value: []any{}}, Outcomes: []Symbol{"amqp:accepted:list"},
				Capabilities: []Symbol{"queue"}},
			Target:               &Target{Address: "reply", Timeout: 1, Capabilities: []Symbol{"t"}},
			InitialDeliveryCount: u32(0), MaxMessageSize: 1 << 20, Properties: Map{{Key: Symbol("p"), Value: int64(1)}}}},
		{Body: &Flow{NextIncomingID: u32(4), IncomingWindow: 10, NextOutgoingID: 5, OutgoingWindow: 11,
			Handle: u32(1), DeliveryCount: u32(7), LinkCredit: u32(100), Available: u32(3), Drain: true, Echo: true}},
		{Body: &Transfer{Handle: 1, DeliveryID: u32(9), DeliveryTag: []byte{1, 2}, MessageFormat: u32(0x80013700),
			Settled: true, More: true, RcvSettleMode: u8(1), State: &Received{SectionNumber: 1, SectionOffset: 2},
			Resume: true, Aborted: true, Batchable: true}, Payload: []byte("payload bytes")},
		{Body: &Disposition{Role: RoleSender, First: 1, Last: u32(5), Settled: true,
			State: &Rejected{Error: &Error{Condition: "com.microsoft:dead-letter", Info: Map{{Key: "DeadLetterReason", Value: "r"}}}}}},
		{Body: &Disposition{Role: RoleReceiver, First: 2, State: &Modified{DeliveryFailed: true, UndeliverableHere: true,
			MessageAnnotations: Map{{Key: Symbol("k"), Value: "v"}}}}},
		{Body: &Disposition{Role: RoleReceiver, First: 2, State: &Accepted{}}},
		{Body: &Disposition{Role: RoleReceiver, First: 2, State: &Released{}}},
		{Body: &Detach{Handle: 4, Closed: true, Error: &Error{Condition: ErrDetachForced, Description: "bye"}}},
		{Body: &End{Error: &Error{Condition: ErrInternal}}},
		{Body: &End{}},
		{Body: &Close{Error: &Error{Condition: ErrConnectionForced, Description: "stop"}}},
		{Body: &Close{}},
		{Channel: 7}, // heartbeat
	}
}

const math32 = 1<<32 - 1

func TestFramesRoundTrip(t *testing.T) {
	var stream []byte
	for _, f := range samplePerformatives() {
		b, err := AppendFrame(nil, f)
		if err != nil {
			t.Fatalf("AppendFrame(%T): %v", f.Body, err)
		}
		got, n, err := ParseFrame(b, 1<<20)
		if err != nil {
			t.Fatalf("ParseFrame(%T): %v", f.Body, err)
		}
		if n != len(b) {
			t.Errorf("%T: parsed %d of %d bytes", f.Body, n, len(b))
		}
		if !reflect.DeepEqual(got, f) {
			t.Errorf("round trip:\n got %#v\nwant %#v", got.Body, f.Body)
		}
		stream = append(stream, b...)
	}
	// The same frames back to back through ReadFrame.
	r := bytes.NewReader(stream)
	for i, want := range samplePerformatives() {
		got, err := ReadFrame(r, 1<<20)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("ReadFrame %d = %#v, %v", i, got.Body, err)
		}
	}
	if _, err := ReadFrame(r, 1<<20); !errors.Is(err, io.EOF) {
		t.Errorf("after the last frame: %v, want EOF", err)
	}
}

func TestOpenDefaultsAreOmittedAndRestored(t *testing.T) {
	b, err := AppendFrame(nil, Frame{Body: &Open{ContainerID: "c", MaxFrameSize: math32, ChannelMax: 65535}})
	if err != nil {
		t.Fatal(err)
	}
	// 8 header + 0x00 0x53 0x10 + list8(size, count=1) + str8 "c"
	if len(b) != 8+3+3+3 {
		t.Errorf("open with defaults encoded in %d bytes: % x", len(b), b)
	}
	f, _, err := ParseFrame(b, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if o := f.Body.(*Open); o.MaxFrameSize != math32 || o.ChannelMax != 65535 || o.IdleTimeout != 0 {
		t.Errorf("defaults not restored: %+v", o)
	}
}

func TestReadFrameRejects(t *testing.T) {
	transferWithTrailer, _ := AppendFrame(nil, Frame{Body: &End{}})
	transferWithTrailer = append(transferWithTrailer, 0x41)
	transferWithTrailer[3]++
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"size below header", []byte{0, 0, 0, 4, 2, 0, 0, 0}, ErrMalformed},
		{"data offset below 2", []byte{0, 0, 0, 8, 1, 0, 0, 0}, ErrMalformed},
		{"data offset beyond frame", []byte{0, 0, 0, 8, 3, 0, 0, 0}, ErrMalformed},
		{"unknown frame type", []byte{0, 0, 0, 8, 2, 9, 0, 0}, ErrMalformed},
		{"too large", []byte{0, 1, 0, 1, 2, 0, 0, 0}, ErrFrameTooLarge},
		{"truncated body", []byte{0, 0, 0, 12, 2, 0, 0, 0, 0}, io.ErrUnexpectedEOF},
		{"not described", []byte{0, 0, 0, 9, 2, 0, 0, 0, 0x41}, ErrMalformed},
		{"not a performative", []byte{0, 0, 0, 12, 2, 0, 0, 0, 0x00, 0x53, 0x24, 0x45}, ErrMalformed},
		{"described non-list", []byte{0, 0, 0, 12, 2, 0, 0, 0, 0x00, 0x53, 0x10, 0x41}, ErrMalformed},
		{"SASL body in AMQP frame", []byte{0, 0, 0, 13, 2, 0, 0, 0, 0x00, 0x53, 0x44, 0xc0, 2, 1, 0x50, 0}[:13], ErrMalformed},
		{"AMQP body in SASL frame", []byte{0, 0, 0, 12, 2, 1, 0, 0, 0x00, 0x53, 0x17, 0x45}, ErrMalformed},
		{"missing mandatory field", []byte{0, 0, 0, 12, 2, 0, 0, 0, 0x00, 0x53, 0x12, 0x45}, ErrMalformed},
		{"bytes after a non-transfer", transferWithTrailer, ErrMalformed},
		{"delivery tag over 32 bytes", func() []byte {
			b, _ := AppendFrame(nil, Frame{Body: &Transfer{Handle: 0, DeliveryTag: make([]byte, 33)}})
			return b
		}(), ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ReadFrame(bytes.NewReader(tc.in), 65536)
			if !errors.Is(err, tc.want) {
				t.Errorf("ReadFrame(% x) = %#v, %v; want %v", tc.in, f.Body, err, tc.want)
			}
		})
	}
}

// TestGoAMQPInterop checks the codec against go-amqp's own encoding of a message.
func TestGoAMQPInterop(t *testing.T) {
	ts := time.UnixMilli(1740830400000).UTC()
	msg := &amqp.Message{
		Header:              &amqp.MessageHeader{Durable: true, DeliveryCount: 2, TTL: time.Minute},
		DeliveryAnnotations: amqp.Annotations{"x-opt-lock-token": amqp.UUID{1}},
		Annotations:         amqp.Annotations{"x-opt-scheduled-enqueue-time": ts, "x-opt-partition-key": "p"},
		Properties:          &amqp.MessageProperties{MessageID: "id-1", CorrelationID: uint64(7), ContentType: ptr("application/json")},
		ApplicationProperties: map[string]any{
			"s": "v", "i": int32(-5), "l": int64(1 << 40), "b": true, "f": 1.5, "t": ts, "u": amqp.UUID{2}, "bin": []byte{1},
		},
		Data: [][]byte{[]byte("one"), []byte("two")},
	}
	raw, err := msg.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	sections, err := SplitMessage(raw)
	if err != nil {
		t.Fatal(err)
	}
	var codes []uint64
	for _, s := range sections {
		codes = append(codes, s.Code)
		if !bytes.Equal(raw[s.Offset:s.Offset+len(s.Raw)], s.Raw) {
			t.Errorf("section %#x offset %d does not locate its bytes", s.Code, s.Offset)
		}
	}
	want := []uint64{SectionHeader, SectionDeliveryAnnotations, SectionMessageAnnotations, SectionProperties,
		SectionApplicationProperties, SectionData, SectionData}
	if !reflect.DeepEqual(codes, want) {
		t.Fatalf("sections %#x, want %#x", codes, want)
	}
	ann := sections[2].Value.(Map)
	if v, _ := ann.Get(Symbol("x-opt-scheduled-enqueue-time")); v != ts {
		t.Errorf("scheduled time annotation = %#v", v)
	}
	props := sections[3].Value.([]any)
	if props[0] != "id-1" || props[5] != uint64(7) || props[6] != Symbol("application/json") {
		t.Errorf("properties = %#v", props)
	}
	app := sections[4].Value.(Map)
	for k, v := range map[string]any{"s": "v", "i": int32(-5), "l": int64(1 << 40), "b": true, "f": 1.5, "t": ts, "u": UUID{2}} {
		if got, _ := app.Get(k); got != v {
			t.Errorf("application property %s = %#v, want %#v", k, got, v)
		}
	}

	// Re-encoding every section with this package yields bytes go-amqp reads back.
	var rebuilt []byte
	for _, s := range sections {
		if s.Value == nil {
			rebuilt = append(rebuilt, s.Raw...)
			continue
		}
		if rebuilt, err = AppendSection(rebuilt, s.Code, s.Value); err != nil {
			t.Fatal(err)
		}
	}
	var back amqp.Message
	if err := back.UnmarshalBinary(rebuilt); err != nil {
		t.Fatalf("go-amqp cannot read the re-encoded message: %v", err)
	}
	if back.Header.DeliveryCount != 2 || back.Header.TTL != time.Minute || back.Properties.MessageID != "id-1" ||
		back.ApplicationProperties["l"] != int64(1<<40) || string(back.Data[1]) != "two" {
		t.Errorf("go-amqp read back %+v %+v %v %q", back.Header, back.Properties, back.ApplicationProperties, back.Data)
	}
}

func ptr[T any](v T) *T { return &v }

func TestSplitMessageRejectsBadOrder(t *testing.T) {
	sec := func(code uint64, v any) []byte {
		b, err := AppendSection(nil, code, v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	data := sec(SectionData, []byte("x"))
	props := sec(SectionProperties, []any{"id"})
	cases := []struct {
		name string
		in   []byte
	}{
		{"properties after body", append(append([]byte{}, data...), props...)},
		{"repeated properties", append(append([]byte{}, props...), props...)},
		{"value after data", append(append([]byte{}, data...), sec(SectionValue, "v")...)},
		{"two values", append(sec(SectionValue, "v"), sec(SectionValue, "w")...)},
		{"unknown section", sec(0x99, "v")},
		{"properties not a list", sec(SectionProperties, "nope")},
		{"annotations not a map", sec(SectionMessageAnnotations, []any{})},
		{"not described", []byte{0x41}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := SplitMessage(tc.in); !errors.Is(err, ErrMalformed) {
				t.Errorf("SplitMessage = %v, want ErrMalformed", err)
			}
		})
	}
	if s, err := SplitMessage(append(append([]byte{}, data...), data...)); err != nil || len(s) != 2 {
		t.Errorf("two data sections: %d, %v", len(s), err)
	}
}
