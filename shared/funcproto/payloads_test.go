package funcproto

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const payloadDir = "../../testdata/functions/payloads"

// readPayload returns the JSON request body of a payload file. A .http file is a raw HTTP
// capture ("METHOD URL", headers, blank line, body): it is parsed and replayed through an
// httptest request so the body reaches DecodeRequest the way a handler would read it.
func readPayload(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(payloadDir, name))
	if err != nil {
		t.Fatalf("reading payload: %v", err)
	}
	if !strings.HasSuffix(name, ".http") {
		return data
	}
	br := bufio.NewReader(bytes.NewReader(data))
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		t.Fatalf("%s: request line: %v", name, err)
	}
	method, target, ok := strings.Cut(line, " ")
	if !ok {
		t.Fatalf("%s: malformed request line %q", name, line)
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("%s: headers: %v", name, err)
	}
	body, err := io.ReadAll(br)
	if err != nil {
		t.Fatalf("%s: body: %v", name, err)
	}
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	req.Header = http.Header(hdr)
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s: capture is %s with Content-Type %q, want POST application/json", name, req.Method, req.Header.Get("Content-Type"))
	}
	if !strings.HasPrefix(req.URL.Path, "/") || strings.Count(req.URL.Path, "/") != 1 {
		t.Fatalf("%s: host posts to /{FunctionName}, capture has %q", name, req.URL.Path)
	}
	got, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// requestPayloads lists every request payload with value-by-value assertions.
var requestPayloads = []struct {
	file  string
	check func(t *testing.T, r *Request)
}{
	{"http-request.default.derived.json", func(t *testing.T, r *Request) {
		h, err := r.HTTP("req")
		if err != nil {
			t.Fatal(err)
		}
		want := &HTTPRequest{
			Method: "POST",
			URL:    &url.URL{Scheme: "http", Host: "localhost:7071", Path: "/api/orders/42", RawQuery: "verbose=true"},
			Query:  url.Values{"verbose": {"true"}},
			Header: http.Header{
				"Content-Type":   {"application/json"},
				"Content-Length": {"29"},
				"User-Agent":     {"curl/8.5.0"},
			},
			Params: map[string]string{"id": "42"},
			Body:   []byte(`{"sku":"A-1","quantity":2}`),
		}
		if !reflect.DeepEqual(h, want) {
			t.Errorf("HTTP:\n got %#v\nwant %#v", h, want)
		}
		// The derived sample's Content-Length (29) does not match its 26-byte body; Body is
		// taken from "Body", never sized by the header.
		if len(h.Body) != 26 {
			t.Errorf("body is %d bytes, want 26", len(h.Body))
		}
		wantMeta := map[string]string{"id": "42", "sku": "A-1", "quantity": "2"}
		for k, want := range wantMeta {
			if got, err := UnwrapString(r.Metadata[k]); err != nil || got != want {
				t.Errorf("Metadata.%s = %q, %v; want %q", k, got, err, want)
			}
		}
		if _, err := r.ServiceBus("req"); err == nil || !strings.Contains(err.Error(), "SequenceNumber") {
			t.Errorf("ServiceBus on an HTTP request: err = %v, want a SequenceNumber error", err)
		}
		if _, err := r.Timer("req"); err == nil || !strings.Contains(err.Error(), "IsPastDue") {
			t.Errorf("Timer on an HTTP request: err = %v, want an IsPastDue error", err)
		}
	}},
	{"http-request.docs-example.json", func(t *testing.T, r *Request) {
		h, err := r.HTTP("req")
		if err != nil {
			t.Fatal(err)
		}
		want := &HTTPRequest{
			Method: "POST",
			URL:    &url.URL{Scheme: "http", Host: "localhost:7071", Path: "/api/order"},
			Query:  url.Values{},
			Header: http.Header{"Content-Type": {"application/json"}},
			Params: map[string]string{},
			Body:   []byte(`{"id":1005,"quantity":2,"color":"black"}`),
		}
		if !reflect.DeepEqual(h, want) {
			t.Errorf("HTTP:\n got %#v\nwant %#v", h, want)
		}
		if len(r.Metadata) != 0 {
			t.Errorf("Metadata = %v, want empty", r.Metadata)
		}
	}},
	{"queue-request.docs-example.json", func(t *testing.T, r *Request) {
		// A Storage queue trigger, single-encoded as in the docs: UnwrapString tolerates it,
		// ServiceBus rejects it for lacking a SequenceNumber.
		got, err := UnwrapString(r.Data["myQueueItem"])
		if err != nil || got != `{ message: "Message sent" }` {
			t.Errorf("UnwrapString(myQueueItem) = %q, %v", got, err)
		}
		if n, err := parseInt(r.Metadata["DequeueCount"], 32); err != nil || n != 1 {
			t.Errorf("DequeueCount = %d, %v; want 1", n, err)
		}
		if ts, err := parseTime(r.Metadata["ExpirationTime"]); err != nil || !ts.Equal(mustTime(t, "2019-10-16T17:58:31Z")) {
			t.Errorf("ExpirationTime = %v, %v", ts, err)
		}
		if _, err := r.ServiceBus("myQueueItem"); err == nil || !strings.Contains(err.Error(), "SequenceNumber") {
			t.Errorf("ServiceBus: err = %v, want a SequenceNumber error", err)
		}
		if _, err := r.HTTP("myQueueItem"); err == nil || !strings.Contains(err.Error(), "got string") {
			t.Errorf("HTTP: err = %v, want a type error", err)
		}
	}},
	{"servicebus-request.anthonychu-test.http", func(t *testing.T, r *Request) {
		m, err := r.ServiceBus("myQueueItem")
		if err != nil {
			t.Fatal(err)
		}
		want := &ServiceBusMessage{
			Body:           []byte(`{"hello":"world"}`),
			MessageID:      "088fb2b9aede42e7a154dbc7f803a566",
			ContentType:    "application/json",
			LockToken:      "4223106e-36f4-45ed-b1ab-96ead73e225b",
			DeliveryCount:  1,
			SequenceNumber: 1,
			EnqueuedTime:   mustTime(t, "2020-10-08T21:49:35.809Z"),
			ExpiresAt:      mustTime(t, "2020-10-22T21:49:35.809Z"),
			ApplicationProperties: map[string]any{
				"Sec-Fetch-Site": "cross-site",
				"Sec-Fetch-Mode": "cors",
			},
		}
		assertMessage(t, m, want)
		// The host copies the JSON body's top-level fields into Metadata, double-encoded.
		if got, err := UnwrapString(r.Metadata["hello"]); err != nil || got != "world" {
			t.Errorf("Metadata.hello = %q, %v", got, err)
		}
	}},
	{"servicebus-request.ext5.derived.json", func(t *testing.T, r *Request) {
		m, err := r.ServiceBus("message")
		if err != nil {
			t.Fatal(err)
		}
		want := &ServiceBusMessage{
			Body:           []byte(`{"orderId":42,"kind":"created"}`),
			MessageID:      "088fb2b9aede42e7a154dbc7f803a566",
			CorrelationID:  "req-123",
			ContentType:    "application/json",
			LockToken:      "4223106e-36f4-45ed-b1ab-96ead73e225b",
			DeliveryCount:  1,
			SequenceNumber: 17,
			EnqueuedTime:   mustTime(t, "2025-01-15T10:15:30Z"),
			ExpiresAt:      mustTime(t, "2025-01-29T10:15:30Z"),
			ApplicationProperties: map[string]any{
				"tenant":  "contoso",
				"attempt": json.Number("1"),
			},
		}
		assertMessage(t, m, want)
		// The zone-less *Utc DateTimes must agree with the DateTimeOffsets.
		for utc, off := range map[string]string{"EnqueuedTimeUtc": "EnqueuedTime", "ExpiresAtUtc": "ExpiresAt"} {
			a, err1 := parseTime(r.Metadata[utc])
			b, err2 := parseTime(r.Metadata[off])
			if err1 != nil || err2 != nil || !a.Equal(b) {
				t.Errorf("%s = %v (%v), %s = %v (%v)", utc, a, err1, off, b, err2)
			}
		}
		if got, err := UnwrapString(r.Metadata["kind"]); err != nil || got != "created" {
			t.Errorf("Metadata.kind = %q, %v", got, err)
		}
	}},
	{"timer-request.derived.json", func(t *testing.T, r *Request) {
		ti, err := r.Timer("myTimer")
		if err != nil {
			t.Fatal(err)
		}
		want := TimerInfo{
			IsPastDue:   false,
			Last:        mustTime(t, "2025-01-15T10:00:00.0043214Z"),
			Next:        mustTime(t, "2025-01-15T10:05:00Z"),
			LastUpdated: mustTime(t, "2025-01-15T10:00:00.0043214Z"),
		}
		if ti.IsPastDue != want.IsPastDue || !ti.Last.Equal(want.Last) || !ti.Next.Equal(want.Next) || !ti.LastUpdated.Equal(want.LastUpdated) {
			t.Errorf("Timer = %+v, want %+v", *ti, want)
		}
		if _, err := r.ServiceBus("myTimer"); err == nil {
			t.Error("ServiceBus on a timer request succeeded")
		}
	}},
}

// responsePayloads pairs every response sample with the Response that must encode to it.
var responsePayloads = []struct {
	file string
	resp Response
}{
	{"response.docs-example.json", Response{
		Outputs: map[string]any{
			"res":           map[string]any{"body": "Message enqueued"},
			"myQueueOutput": []string{"queue message 1", "queue message 2"},
		},
		Logs:        []string{"Log message 1", "Log message 2"},
		ReturnValue: `{"hello":"world"}`,
	}},
	{"response.http-and-outputs.json", Response{
		Outputs: map[string]any{
			"res": HTTPResponse{
				StatusCode: 201,
				Headers:    map[string]string{"Content-Type": "application/json", "Location": "/api/orders/42"},
				Body:       `{"id":42,"status":"accepted"}`,
			},
			"outMessage": `{"orderId":42,"kind":"created"}`,
			"outRows":    []map[string]string{{"PartitionKey": "orders", "RowKey": "42", "Status": "accepted"}},
		},
		Logs: []string{"accepted order 42"},
	}},
	{"response.servicebus-no-outputs.json", Response{
		Logs: []string{"processed message 088fb2b9aede42e7a154dbc7f803a566"},
	}},
}

func assertMessage(t *testing.T, got, want *ServiceBusMessage) {
	t.Helper()
	if !got.EnqueuedTime.Equal(want.EnqueuedTime) || !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Errorf("times: got enqueued %v expires %v, want %v %v", got.EnqueuedTime, got.ExpiresAt, want.EnqueuedTime, want.ExpiresAt)
	}
	g, w := *got, *want
	g.EnqueuedTime, g.ExpiresAt, w.EnqueuedTime, w.ExpiresAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("ServiceBus:\n got %#v\nwant %#v", g, w)
	}
}

func TestRequestPayloads(t *testing.T) {
	for _, tc := range requestPayloads {
		t.Run(tc.file, func(t *testing.T) {
			body := readPayload(t, tc.file)
			r, err := DecodeRequest(bytes.NewReader(body), DefaultMaxBytes)
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			// Every sample carries sys except the docs' HTTP example, whose Metadata is {}.
			if _, ok := r.Metadata["sys"]; !ok && tc.file != "http-request.docs-example.json" {
				t.Error("Metadata has no sys")
			}
			tc.check(t, r)
		})
	}
}

func TestResponsePayloads(t *testing.T) {
	for _, tc := range responsePayloads {
		t.Run(tc.file, func(t *testing.T) {
			var want any
			if err := json.Unmarshal(readPayload(t, tc.file), &want); err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			if err := WriteResponse(rec, http.StatusOK, tc.resp); err != nil {
				t.Fatal(err)
			}
			var got any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("response is not JSON: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("encoded response:\n got %v\nwant %v", got, want)
			}
			// Decoding the sample into Response must give back the same JSON.
			var back Response
			if err := json.Unmarshal(readPayload(t, tc.file), &back); err != nil {
				t.Fatal(err)
			}
			again, err := json.Marshal(back)
			if err != nil {
				t.Fatal(err)
			}
			var againAny any
			if err := json.Unmarshal(again, &againAny); err != nil || !reflect.DeepEqual(againAny, want) {
				t.Errorf("sample does not round-trip through Response: %s", again)
			}
		})
	}
}

// TestPayloadsCovered fails when a payload file is added without assertions.
func TestPayloadsCovered(t *testing.T) {
	entries, err := os.ReadDir(payloadDir)
	if err != nil {
		t.Fatal(err)
	}
	var covered []string
	for _, p := range requestPayloads {
		covered = append(covered, p.file)
	}
	for _, p := range responsePayloads {
		covered = append(covered, p.file)
	}
	if len(entries) == 0 {
		t.Fatal("no payload files found")
	}
	for _, e := range entries {
		if !slices.Contains(covered, e.Name()) {
			t.Errorf("payload %s has no test case", e.Name())
		}
	}
}

// TestFuzzSeedsMatchPayloads keeps the fuzz seed corpus identical to the request payloads.
func TestFuzzSeedsMatchPayloads(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeRequest")
	seeds := map[string][]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := readCorpusFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		seeds[e.Name()] = b
	}
	for _, p := range requestPayloads {
		name := strings.TrimSuffix(strings.TrimSuffix(p.file, ".json"), ".http")
		got, ok := seeds[name]
		if !ok {
			t.Errorf("no seed %s for payload %s", name, p.file)
			continue
		}
		if want := readPayload(t, p.file); !bytes.Equal(got, want) {
			t.Errorf("seed %s differs from payload %s", name, p.file)
		}
	}
}

// readCorpusFile reads a one-value []byte corpus file ("go test fuzz v1" format).
func readCorpusFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	header, rest, ok := strings.Cut(string(data), "\n")
	if !ok || header != "go test fuzz v1" {
		return nil, errors.New("missing corpus header")
	}
	rest = strings.TrimSpace(rest)
	if !strings.HasPrefix(rest, "[]byte(") || !strings.HasSuffix(rest, ")") {
		return nil, errors.New("want one []byte value")
	}
	return unquoteGo(rest[len("[]byte(") : len(rest)-1])
}
