package funcproto

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeRequest checks that no input panics and that every binding that decodes as
// HTTP, Service Bus or timer re-encodes (the way the host would) to the same value.
func FuzzDecodeRequest(f *testing.F) {
	// testdata/fuzz/FuzzDecodeRequest holds the payload samples; these add shapes they lack.
	for _, seed := range []string{
		`{"Data":{"req":{"Url":"http://h/x?a=1&a=2","Method":"PUT","Query":{"a":"1,2"},"Headers":{"content-type":["application/octet-stream"]},"Params":{"id":null,"n":1},"Body":"AAEC/w=="}}}`,
		`{"Data":{"m":"\"\\\"q\\\"\""},"Metadata":{"SequenceNumber":3,"Label":"\"l\"","UserProperties":"{\"k\":1.5e3}","EnqueuedTimeUtc":"2025-01-15T10:15:30.5"}}`,
		`{"Data":{"t":"{\"IsPastDue\":true,\"ScheduleStatus\":{\"Next\":\"2025-01-15T10:05:00\"}}"}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeRequest(bytes.NewReader(body), 1<<20)
		if err != nil {
			if r != nil {
				t.Fatalf("request returned with error %v", err)
			}
			return
		}
		if r.Data == nil || r.Metadata == nil {
			t.Fatal("decoded request has nil Data or Metadata")
		}
		for _, v := range r.Metadata {
			_, _ = UnwrapString(v) // must not panic
		}
		names := make([]string, 0, len(r.Data))
		for name := range r.Data {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			_, _ = UnwrapString(r.Data[name])
			if h, err := r.HTTP(name); err == nil {
				checkHTTPRoundTrip(t, h)
			}
			if m, err := r.ServiceBus(name); err == nil {
				checkServiceBusRoundTrip(t, m)
			}
			if ti, err := r.Timer(name); err == nil {
				checkTimerRoundTrip(t, ti)
			}
		}
	})
}

// hostRequest marshals a request envelope with a single binding.
func hostRequest(t *testing.T, name string, data json.RawMessage, md map[string]json.RawMessage) *Request {
	t.Helper()
	if md == nil {
		md = map[string]json.RawMessage{}
	}
	body, err := json.Marshal(map[string]any{"Data": map[string]json.RawMessage{name: data}, "Metadata": md})
	if err != nil {
		t.Fatalf("encoding request: %v", err)
	}
	r, err := DecodeRequest(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("re-encoded request does not decode: %v\n%s", err, body)
	}
	return r
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hostString encodes s as the host encodes a .NET string: serialised, then placed as a string.
func hostString(t *testing.T, s string) json.RawMessage {
	return mustJSON(t, string(mustJSON(t, s)))
}

func checkHTTPRoundTrip(t *testing.T, h *HTTPRequest) {
	t.Helper()
	wire := map[string]any{
		"Url":     h.URL.String(),
		"Method":  h.Method,
		"Query":   map[string][]string(h.Query),
		"Headers": map[string][]string(h.Header),
		"Params":  h.Params,
	}
	if h.Body != nil {
		if binaryMediaType(h.Header.Get("Content-Type")) {
			wire["Body"] = base64.StdEncoding.EncodeToString(h.Body)
		} else {
			wire["Body"] = string(h.Body)
		}
	}
	got, err := hostRequest(t, "req", mustJSON(t, wire), nil).HTTP("req")
	if err != nil {
		t.Fatalf("re-encoded HTTP binding: %v", err)
	}
	if got.URL.String() != h.URL.String() || got.Method != h.Method ||
		!reflect.DeepEqual(got.Query, h.Query) || !reflect.DeepEqual(got.Header, h.Header) ||
		!reflect.DeepEqual(got.Params, h.Params) || (got.Body == nil) != (h.Body == nil) || !bytes.Equal(got.Body, h.Body) {
		t.Fatalf("HTTP round trip:\n got %#v\nwant %#v", got, h)
	}
}

func checkServiceBusRoundTrip(t *testing.T, m *ServiceBusMessage) {
	t.Helper()
	md := map[string]json.RawMessage{
		"SequenceNumber": mustJSON(t, strconv.FormatInt(m.SequenceNumber, 10)),
		"DeliveryCount":  mustJSON(t, strconv.Itoa(m.DeliveryCount)),
	}
	for k, v := range map[string]string{
		"MessageId": m.MessageID, "CorrelationId": m.CorrelationID, "ContentType": m.ContentType,
		"Subject": m.Subject, "SessionId": m.SessionID, "ReplyTo": m.ReplyTo, "To": m.To, "LockToken": m.LockToken,
	} {
		if v != "" {
			md[k] = hostString(t, v)
		}
	}
	if !m.EnqueuedTime.IsZero() {
		md["EnqueuedTime"] = mustJSON(t, m.EnqueuedTime.Format(time.RFC3339Nano))
	}
	if !m.ExpiresAt.IsZero() {
		md["ExpiresAt"] = mustJSON(t, m.ExpiresAt.Format(time.RFC3339Nano))
	}
	if m.ApplicationProperties != nil {
		md["ApplicationProperties"] = mustJSON(t, m.ApplicationProperties)
	}
	data := hostString(t, string(m.Body))
	if k := kindOf(m.Body); (k == "object" || k == "array") && json.Valid(m.Body) {
		data = bytes.Clone(m.Body) // a JSON body the host bound as an object
	}
	got, err := hostRequest(t, "message", data, md).ServiceBus("message")
	if err != nil {
		t.Fatalf("re-encoded Service Bus binding: %v", err)
	}
	if !got.EnqueuedTime.Equal(m.EnqueuedTime) || !got.ExpiresAt.Equal(m.ExpiresAt) {
		t.Fatalf("Service Bus times: got %v %v, want %v %v", got.EnqueuedTime, got.ExpiresAt, m.EnqueuedTime, m.ExpiresAt)
	}
	g, w := *got, *m
	g.EnqueuedTime, g.ExpiresAt, w.EnqueuedTime, w.ExpiresAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !bytes.Equal(g.Body, w.Body) {
		t.Fatalf("Service Bus body: got %q, want %q", g.Body, w.Body)
	}
	g.Body, w.Body = nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("Service Bus round trip:\n got %#v\nwant %#v", g, w)
	}
}

func checkTimerRoundTrip(t *testing.T, ti *TimerInfo) {
	t.Helper()
	status := map[string]string{}
	for k, v := range map[string]time.Time{"Last": ti.Last, "Next": ti.Next, "LastUpdated": ti.LastUpdated} {
		if !v.IsZero() {
			status[k] = v.Format(time.RFC3339Nano)
		}
	}
	wire := map[string]any{"Schedule": map[string]bool{"AdjustForDST": true}, "ScheduleStatus": status, "IsPastDue": ti.IsPastDue}
	got, err := hostRequest(t, "timer", mustJSON(t, wire), nil).Timer("timer")
	if err != nil {
		t.Fatalf("re-encoded timer binding: %v", err)
	}
	if got.IsPastDue != ti.IsPastDue || !got.Last.Equal(ti.Last) || !got.Next.Equal(ti.Next) || !got.LastUpdated.Equal(ti.LastUpdated) {
		t.Fatalf("timer round trip: got %+v, want %+v", *got, *ti)
	}
}

// unquoteGo reads a Go string literal as the fuzz corpus format writes it.
func unquoteGo(lit string) ([]byte, error) {
	s, err := strconv.Unquote(strings.TrimSpace(lit))
	if err != nil {
		return nil, err
	}
	return []byte(s), nil
}

// BenchmarkDecodeServiceBus measures the per-message decoding cost of the 5.x sample.
func BenchmarkDecodeServiceBus(b *testing.B) {
	body := readPayload(b, "servicebus-request.ext5.derived.json")
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		r, err := DecodeRequest(bytes.NewReader(body), DefaultMaxBytes)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.ServiceBus("message"); err != nil {
			b.Fatal(err)
		}
	}
}
