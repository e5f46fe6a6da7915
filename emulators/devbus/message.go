package devbus

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/dimirror/dimirror/emulators/devbus/amqpframe"
)

// batchMessageFormat is the message-format of a Service Bus batch: the body is a run of
// data sections, each one whole encoded message.
const batchMessageFormat uint32 = 0x80013700

// Annotations the broker owns; values sent by clients under these keys are replaced.
const (
	annLockToken        amqpframe.Symbol = "x-opt-lock-token"
	annSequenceNumber   amqpframe.Symbol = "x-opt-sequence-number"
	annEnqueuedTime     amqpframe.Symbol = "x-opt-enqueued-time"
	annLockedUntil      amqpframe.Symbol = "x-opt-locked-until"
	annScheduledTime    amqpframe.Symbol = "x-opt-scheduled-enqueue-time"
	annMessageState     amqpframe.Symbol = "x-opt-message-state"
	annEnqueueSequence  amqpframe.Symbol = "x-opt-enqueue-sequence-number"
	annDeadLetterSource amqpframe.Symbol = "x-opt-deadletter-source"
)

// Application properties Service Bus sets on dead-lettered messages.
const (
	propDeadLetterReason      = "DeadLetterReason"
	propDeadLetterDescription = "DeadLetterErrorDescription"
)

// Values of x-opt-message-state.
const (
	messageStateActive    int32 = 0
	messageStateDeferred  int32 = 1
	messageStateScheduled int32 = 2
)

// message is one stored message. The bare message (properties, application-properties,
// body, footer) is kept as the bytes the client sent; header and message annotations are
// kept decoded because every delivery rewrites them.
type message struct {
	seq         int64
	header      header
	annotations amqpframe.Map // message annotations as sent, minus the broker's own
	bare        []byte        // properties .. footer, byte for byte
	msgID       string        // duplicate-detection key, "" when the message has no id

	enqueuedAt    time.Time
	scheduledAt   time.Time // zero unless scheduled
	deliveryCount uint32    // failed delivery attempts (abandons, lock expiries)
	state         msgState
	origSeq       int64  // in a dead-letter queue: the sequence number in the queue
	dlReason      string // in a dead-letter queue: why it is there
	wasDeferred   bool   // locked after a receive-by-sequence-number: returns to deferred

	// Peek-lock state; lockGen changes with every lock so stale expiry entries are skipped.
	lockToken   amqpframe.UUID
	lockedUntil time.Time
	lockGen     uint64
}

type msgState uint8

const (
	stateActive    msgState = iota // waiting for a receiver
	stateLocked                    // delivered under a peek-lock
	stateScheduled                 // waiting for its scheduled enqueue time
	stateDeferred                  // set aside by the receiver, received by sequence number
)

// header is the decoded header section.
type header struct {
	durable       bool
	priority      *uint8
	ttl           *uint32 // milliseconds
	firstAcquirer bool
}

// parseMessage decodes an encoded message as a client sent it.
func parseMessage(raw []byte) (*message, error) {
	sections, err := amqpframe.SplitMessage(raw)
	if err != nil {
		return nil, err
	}
	m := &message{}
	bareStart := len(raw)
	for _, s := range sections {
		switch s.Code {
		case amqpframe.SectionHeader:
			if m.header, err = parseHeader(s.Value.([]any)); err != nil {
				return nil, err
			}
		case amqpframe.SectionDeliveryAnnotations:
			// Delivery annotations are for the next hop only: the broker is that hop.
		case amqpframe.SectionMessageAnnotations:
			ann, _ := s.Value.(amqpframe.Map)
			for _, e := range ann {
				switch e.Key {
				case annLockToken, annSequenceNumber, annEnqueuedTime, annLockedUntil,
					annMessageState, annEnqueueSequence:
					continue
				}
				m.annotations = append(m.annotations, e)
			}
		default:
			if bareStart == len(raw) {
				bareStart = s.Offset
			}
		}
	}
	m.bare = append([]byte(nil), raw[bareStart:]...)
	var props []any
	for _, s := range sections {
		if s.Code == amqpframe.SectionProperties {
			props = s.Value.([]any)
		}
	}
	if len(props) > 0 && props[0] != nil {
		if m.msgID, err = messageIDKey(props[0]); err != nil {
			return nil, err
		}
	} else if m.bare, err = withMessageID(m.bare, props, newMessageID()); err != nil {
		return nil, err
	}
	if _, err := amqpframe.AppendValue(nil, m.annotations); err != nil {
		return nil, fmt.Errorf("message annotations: %w", err)
	}
	if v, ok := m.annotations.Get(annScheduledTime); ok {
		if t, ok := v.(time.Time); ok {
			m.scheduledAt = t
		}
	}
	return m, nil
}

func parseHeader(l []any) (header, error) {
	var h header
	get := func(i int) any {
		if i < len(l) {
			return l[i]
		}
		return nil
	}
	if v, ok := get(0).(bool); ok {
		h.durable = v
	} else if get(0) != nil {
		return h, errors.New("header.durable is not a boolean")
	}
	if v, ok := get(1).(uint8); ok {
		h.priority = &v
	} else if get(1) != nil {
		return h, errors.New("header.priority is not a ubyte")
	}
	if v, ok := get(2).(uint32); ok {
		h.ttl = &v
	} else if get(2) != nil {
		return h, errors.New("header.ttl is not a uint")
	}
	if v, ok := get(3).(bool); ok {
		h.firstAcquirer = v
	} else if get(3) != nil {
		return h, errors.New("header.first-acquirer is not a boolean")
	}
	return h, nil
}

// newMessageID is the id Service Bus gives a message sent without one: 32 hexadecimal
// digits. Receivers rely on it (the JavaScript SDK keys its lock renewal by message id).
// Such ids take no part in duplicate detection, as in Service Bus.
func newMessageID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// withMessageID returns the bare message with id as its message-id: the properties
// section (props, nil when the message has none) is rewritten or, absent, inserted first.
func withMessageID(bare []byte, props []any, id string) ([]byte, error) {
	sections, err := amqpframe.SplitMessage(bare)
	if err != nil {
		return nil, err
	}
	np := append([]any{id}, props[min(1, len(props)):]...)
	out, err := amqpframe.AppendSection(make([]byte, 0, len(bare)+48), amqpframe.SectionProperties, np)
	if err != nil {
		return nil, fmt.Errorf("properties: %w", err)
	}
	for _, s := range sections {
		if s.Code != amqpframe.SectionProperties {
			out = append(out, s.Raw...)
		}
	}
	return out, nil
}

// messageIDKey turns a message-id of any of its four allowed types into a map key.
func messageIDKey(v any) (string, error) {
	switch id := v.(type) {
	case string:
		return "s:" + id, nil
	case uint64:
		return "u:" + strconv.FormatUint(id, 10), nil
	case amqpframe.UUID:
		return "g:" + id.String(), nil
	case []byte:
		return "b:" + string(id), nil
	}
	return "", fmt.Errorf("message-id of type %T is not allowed", v)
}

// splitBatch returns the messages of a batch transfer: each data section of the envelope
// is one encoded message.
func splitBatch(raw []byte) ([][]byte, error) {
	sections, err := amqpframe.SplitMessage(raw)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, s := range sections {
		if s.Code != amqpframe.SectionData {
			continue
		}
		_, n, err := amqpframe.DecodeValue(s.Raw[1:])
		if err != nil {
			return nil, err
		}
		v, _, err := amqpframe.DecodeValue(s.Raw[1+n:])
		if err != nil {
			return nil, err
		}
		b, ok := v.([]byte)
		if !ok {
			return nil, errors.New("batch data section is not binary")
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.New("batch message without data sections")
	}
	return out, nil
}

// encode returns the message as stored and as delivered, without the annotations a
// delivery adds: header, message annotations, then the bare message.
func (m *message) encode() []byte {
	b, _ := m.appendSections(nil, nil, nil)
	return b
}

// appendSections writes header (with the current delivery count), the given delivery
// annotations, the message annotations merged with extra, and the bare message.
func (m *message) appendSections(b []byte, deliveryAnn, extra amqpframe.Map) ([]byte, error) {
	h := []any{m.header.durable, nil, nil, nil, nil}
	if m.header.priority != nil {
		h[1] = *m.header.priority
	}
	if m.header.ttl != nil {
		h[2] = *m.header.ttl
	}
	if m.header.firstAcquirer {
		h[3] = true
	}
	// Service Bus always writes the delivery count, 0 included: the JavaScript SDK reads
	// an absent field as undefined rather than as the default 0.
	h[4] = m.deliveryCount
	for len(h) > 1 && h[len(h)-1] == nil {
		h = h[:len(h)-1]
	}
	var err error
	if b, err = amqpframe.AppendSection(b, amqpframe.SectionHeader, h); err != nil {
		return b, err
	}
	if len(deliveryAnn) > 0 {
		if b, err = amqpframe.AppendSection(b, amqpframe.SectionDeliveryAnnotations, deliveryAnn); err != nil {
			return b, err
		}
	}
	ann := m.annotations
	if len(extra) > 0 {
		ann = append(append(amqpframe.Map(nil), m.annotations...), extra...)
	}
	if len(ann) > 0 {
		if b, err = amqpframe.AppendSection(b, amqpframe.SectionMessageAnnotations, ann); err != nil {
			return b, err
		}
	}
	return append(b, m.bare...), nil
}

// deliveryBytes is the message as a receiver gets it: lock token (when locked), sequence
// number, enqueued time, lock expiry and, for peeks, the message state.
func (m *message) deliveryBytes(locked, withState bool) []byte {
	extra := amqpframe.Map{
		{Key: annSequenceNumber, Value: m.seq},
		{Key: annEnqueuedTime, Value: m.enqueuedAt},
	}
	var da amqpframe.Map
	if locked {
		da = amqpframe.Map{{Key: annLockToken, Value: m.lockToken}}
		extra = append(extra, amqpframe.MapEntry{Key: annLockedUntil, Value: m.lockedUntil})
	}
	if m.origSeq != 0 {
		extra = append(extra, amqpframe.MapEntry{Key: annEnqueueSequence, Value: m.origSeq})
	}
	if withState {
		st := messageStateActive
		switch {
		case m.state == stateDeferred, m.state == stateLocked && m.wasDeferred:
			st = messageStateDeferred
		case m.state == stateScheduled:
			st = messageStateScheduled
		}
		extra = append(extra, amqpframe.MapEntry{Key: annMessageState, Value: st})
	}
	b, err := m.appendSections(make([]byte, 0, len(m.bare)+160), da, extra)
	if err != nil {
		// parseMessage checked that the client's annotations encode, so this is not
		// expected; deliver without them rather than not at all.
		c := *m
		c.annotations = nil
		b, _ = c.appendSections(nil, da, extra)
	}
	return b
}

// withApplicationProperties returns a copy of m whose application properties are
// updated with props (string keys, as the SDKs read them).
func (m *message) withApplicationProperties(props map[string]any) (*message, error) {
	sections, err := amqpframe.SplitMessage(m.bare)
	if err != nil {
		return nil, err
	}
	var out []byte
	wrote := false
	write := func() error {
		var ap amqpframe.Map
		for _, s := range sections {
			if s.Code == amqpframe.SectionApplicationProperties {
				ap, _ = s.Value.(amqpframe.Map)
			}
		}
		ap = append(amqpframe.Map(nil), ap...)
		for _, k := range slices.Sorted(maps.Keys(props)) {
			v, err := toAMQPValue(props[k])
			if err != nil {
				return fmt.Errorf("property %q: %w", k, err)
			}
			ap = ap.Set(k, v)
		}
		out, err = amqpframe.AppendSection(out, amqpframe.SectionApplicationProperties, ap)
		wrote = true
		return err
	}
	for _, s := range sections {
		switch {
		case s.Code == amqpframe.SectionApplicationProperties:
			if err := write(); err != nil {
				return nil, err
			}
			continue
		case s.Code > amqpframe.SectionApplicationProperties && !wrote:
			if err := write(); err != nil {
				return nil, err
			}
		}
		out = append(out, s.Raw...)
	}
	if !wrote {
		if err := write(); err != nil {
			return nil, err
		}
	}
	c := *m
	c.bare = out
	return &c, nil
}

// toAMQPValue checks that a decoded value may be an application property: the AMQP
// simple types Service Bus allows there, and the described values the .NET client uses for
// the .NET types AMQP has no type for (com.microsoft:datetime-offset, :timespan and :uri,
// see its AmqpMessageConverter), which it also sends among the properties to modify when
// it abandons, defers or dead-letters a message.
func toAMQPValue(v any) (any, error) {
	switch v := v.(type) {
	case nil, bool, uint8, uint16, uint32, uint64, int8, int16, int32, int64, float32, float64,
		amqpframe.Char, amqpframe.Decimal32, amqpframe.Decimal64, amqpframe.Decimal128,
		string, []byte, time.Time, amqpframe.UUID, amqpframe.Symbol:
		return v, nil
	case amqpframe.Described:
		switch v.Descriptor.(type) {
		case amqpframe.Symbol, uint64:
		default:
			return nil, fmt.Errorf("described value with a %T descriptor is not allowed in application properties", v.Descriptor)
		}
		if _, err := toAMQPValue(v.Value); err != nil {
			return nil, fmt.Errorf("described value: %w", err)
		}
		return v, nil
	}
	return nil, fmt.Errorf("value of type %T is not allowed in application properties", v)
}
