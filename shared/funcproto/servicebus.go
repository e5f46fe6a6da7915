package funcproto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// ServiceBusMessage is a Service Bus trigger's message: the body from Data and the system
// properties from Metadata. String fields are empty when the host did not send them.
type ServiceBusMessage struct {
	// Body is the message body exactly as sent (see the package doc for the encoding).
	Body          []byte
	MessageID     string
	CorrelationID string
	ContentType   string
	// Subject is Subject (extension 5.x) or Label (4.x).
	Subject   string
	SessionID string
	ReplyTo   string
	To        string
	LockToken string
	// DeliveryCount counts deliveries including this one; the queue dead-letters the message
	// once it exceeds MaxDeliveryCount.
	DeliveryCount  int
	SequenceNumber int64
	// EnqueuedTime and ExpiresAt come from EnqueuedTime/ExpiresAt (5.x, with offset) or
	// EnqueuedTimeUtc/ExpiresAtUtc; zero when absent.
	EnqueuedTime time.Time
	ExpiresAt    time.Time
	// ApplicationProperties is ApplicationProperties (5.x) or UserProperties (4.x); numbers
	// are json.Number so 64-bit values survive. Nil when absent.
	ApplicationProperties map[string]any
}

// ServiceBus decodes the Service Bus trigger binding called name. SequenceNumber, which the
// broker assigns to every message, must be in Metadata: without it the request is not a
// Service Bus trigger.
func (r *Request) ServiceBus(name string) (*ServiceBusMessage, error) {
	raw, err := r.binding(name)
	if err != nil {
		return nil, err
	}
	m := &ServiceBusMessage{}
	switch kindOf(raw) {
	case "object", "array":
		// A body the host bound as a POCO/JObject arrives as JSON; keep its text.
		m.Body = bytes.Clone(bytes.TrimSpace(raw))
	default:
		s, err := UnwrapString(raw)
		if err != nil {
			return nil, fmt.Errorf("funcproto: Service Bus binding %q: body: %w", name, err)
		}
		m.Body = []byte(s)
	}

	md := r.Metadata
	if isNull(md["SequenceNumber"]) {
		return nil, fmt.Errorf("funcproto: Service Bus binding %q: Metadata has no SequenceNumber; is this a Service Bus trigger?", name)
	}
	if m.SequenceNumber, err = metaInt(md, "SequenceNumber", 64); err != nil {
		return nil, err
	}
	dc, err := metaInt(md, "DeliveryCount", 32)
	if err != nil {
		return nil, err
	}
	m.DeliveryCount = int(dc)
	for _, f := range []struct {
		dst  *string
		keys []string
	}{
		{&m.MessageID, []string{"MessageId"}},
		{&m.CorrelationID, []string{"CorrelationId"}},
		{&m.ContentType, []string{"ContentType"}},
		{&m.Subject, []string{"Subject", "Label"}},
		{&m.SessionID, []string{"SessionId"}},
		{&m.ReplyTo, []string{"ReplyTo"}},
		{&m.To, []string{"To"}},
		{&m.LockToken, []string{"LockToken"}},
	} {
		if *f.dst, err = metaString(md, f.keys...); err != nil {
			return nil, err
		}
	}
	if m.EnqueuedTime, err = metaTime(md, "EnqueuedTime", "EnqueuedTimeUtc"); err != nil {
		return nil, err
	}
	if m.ExpiresAt, err = metaTime(md, "ExpiresAt", "ExpiresAtUtc"); err != nil {
		return nil, err
	}
	if m.ApplicationProperties, err = metaProperties(md, "ApplicationProperties", "UserProperties"); err != nil {
		return nil, err
	}
	return m, nil
}

// firstPresent returns the first key of keys whose value is present and not null.
func firstPresent(md map[string]json.RawMessage, keys ...string) (string, json.RawMessage) {
	for _, k := range keys {
		if v := md[k]; !isNull(v) {
			return k, v
		}
	}
	return "", nil
}

func metaString(md map[string]json.RawMessage, keys ...string) (string, error) {
	k, raw := firstPresent(md, keys...)
	if raw == nil {
		return "", nil
	}
	s, err := UnwrapString(raw)
	if err != nil {
		return "", fmt.Errorf("funcproto: Metadata.%s: %w", k, err)
	}
	return s, nil
}

// metaInt reads a non-negative integer; absent is 0.
func metaInt(md map[string]json.RawMessage, key string, bits int) (int64, error) {
	raw := md[key]
	if isNull(raw) {
		return 0, nil
	}
	n, err := parseInt(raw, bits)
	if err != nil {
		return 0, fmt.Errorf("funcproto: Metadata.%s: %w", key, err)
	}
	if n < 0 {
		return 0, fmt.Errorf("funcproto: Metadata.%s: %d is out of range", key, n)
	}
	return n, nil
}

func metaTime(md map[string]json.RawMessage, keys ...string) (time.Time, error) {
	k, raw := firstPresent(md, keys...)
	if raw == nil {
		return time.Time{}, nil
	}
	t, err := parseTime(raw)
	if err != nil {
		return time.Time{}, fmt.Errorf("funcproto: Metadata.%s: %w", k, err)
	}
	return t, nil
}

// metaProperties reads a property dictionary: a JSON object, or a string holding one.
func metaProperties(md map[string]json.RawMessage, keys ...string) (map[string]any, error) {
	k, raw := firstPresent(md, keys...)
	if raw == nil {
		return nil, nil
	}
	if kindOf(raw) == "string" {
		s, err := UnwrapString(raw)
		if err != nil {
			return nil, fmt.Errorf("funcproto: Metadata.%s: %w", k, err)
		}
		raw = json.RawMessage(s)
	}
	if kind := kindOf(raw); kind != "object" || !json.Valid(raw) {
		switch kind {
		case "object":
			kind = "invalid JSON"
		case "":
			kind = "an empty string"
		}
		return nil, fmt.Errorf("funcproto: Metadata.%s: want a JSON object, got %s", k, kind)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var props map[string]any
	if err := dec.Decode(&props); err != nil {
		return nil, fmt.Errorf("funcproto: Metadata.%s: %v", k, err)
	}
	return props, nil
}
