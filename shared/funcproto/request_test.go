package funcproto

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestDecodeRequestErrors(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		limit int64
		want  string
	}{
		{"empty", "", 100, "empty request body"},
		{"blank", "  \n", 100, "empty request body"},
		{"not JSON", `{"Data":`, 100, "not valid JSON"},
		{"trailing data", `{"Data":{}} {}`, 100, "not valid JSON"},
		{"array", `[]`, 100, "must be a JSON object, got array"},
		{"null", `null`, 100, "must be a JSON object, got null"},
		{"string", `"x"`, 100, "must be a JSON object, got string"},
		{"Data missing", `{"Metadata":{}}`, 100, `no "Data" object`},
		{"Data lower-case", `{"data":{}}`, 100, `no "Data" object`},
		{"Data null", `{"Data":null}`, 100, "Data is null"},
		{"Data array", `{"Data":[]}`, 100, "Data must be a JSON object, got array"},
		{"Data string", `{"Data":"{}"}`, 100, "Data must be a JSON object, got string"},
		{"Metadata number", `{"Data":{},"Metadata":1}`, 100, "Metadata must be a JSON object, got number"},
		{"over limit", `{"Data":{"x":"0123456789"}}`, 10, "more than 10 bytes"},
		{"zero limit", `{"Data":{}}`, 0, "size limit must be positive"},
		{"negative limit", `{"Data":{}}`, -1, "size limit must be positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := DecodeRequest(strings.NewReader(tc.body), tc.limit)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodeRequest = %v, %v; want error containing %q", r, err, tc.want)
			}
			if r != nil {
				t.Errorf("request %v returned with an error", r)
			}
		})
	}

	t.Run("ErrTooLarge", func(t *testing.T) {
		_, err := DecodeRequest(strings.NewReader(`{"Data":{}}`), 5)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("err = %v, want ErrTooLarge", err)
		}
	})
	t.Run("exactly at limit", func(t *testing.T) {
		body := `{"Data":{}}`
		r, err := DecodeRequest(strings.NewReader(body), int64(len(body)))
		if err != nil || r.Data == nil || r.Metadata == nil {
			t.Errorf("DecodeRequest = %+v, %v; want empty Data and Metadata", r, err)
		}
	})
	t.Run("max limit", func(t *testing.T) {
		if _, err := DecodeRequest(strings.NewReader(`{"Data":{}}`), math.MaxInt64); err != nil {
			t.Error(err)
		}
	})
	t.Run("nil reader", func(t *testing.T) {
		if _, err := DecodeRequest(nil, 10); err == nil {
			t.Error("no error for a nil reader")
		}
	})
	t.Run("read error", func(t *testing.T) {
		boom := errors.New("connection reset")
		_, err := DecodeRequest(iotest.ErrReader(boom), 10)
		if !errors.Is(err, boom) {
			t.Errorf("err = %v, want wrapped read error", err)
		}
	})
}

func TestUnwrapString(t *testing.T) {
	tests := []struct {
		raw     string
		want    string
		wantErr string
	}{
		{`"\"088f\""`, "088f", ""},               // host's double encoding
		{`"088f"`, "088f", ""},                   // not double-encoded
		{`"1"`, "1", ""},                         // .NET int
		{`1`, "1", ""},                           // plain number
		{`-12.5e3`, "-12.5e3", ""},               // number text kept
		{`true`, "true", ""},                     // boolean
		{`"\"{\\\"a\\\":1}\""`, `{"a":1}`, ""},   // JSON body
		{`"\"\\\"quoted\\\"\""`, `"quoted"`, ""}, // a body that is a JSON string
		{`""`, "", ""},                           // empty
		{`"\"\""`, "", ""},                       // empty, double-encoded
		{`"\"a"`, `"a`, ""},                      // looks quoted, is not a literal
		{`"\"a\" \"b\""`, `"a" "b"`, ""},         // two literals are not one
		{` "\"x\"" `, "x", ""},                   // surrounding space
		{`"\"\u00e9\\u00e9\""`, "éé", ""},        // escapes at both levels
		{`{}`, "", "want a string, got object"},  // object
		{`[]`, "", "want a string, got array"},   // array
		{`null`, "", "want a string, got null"},  // null
		{``, "", "empty value"},                  // absent
		{`"abc`, "", "invalid JSON string"},      // unterminated
		{`1x`, "", "invalid JSON number"},        // bad number
		{`tru`, "", "invalid JSON boolean"},      // bad literal
		{`"\"2020-10-22T21:49:35.809Z\""`, "2020-10-22T21:49:35.809Z", ""},
	}
	for _, tc := range tests {
		got, err := UnwrapString(json.RawMessage(tc.raw))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("UnwrapString(%s) = %q, %v; want error %q", tc.raw, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("UnwrapString(%s) = %q, %v; want %q", tc.raw, got, err, tc.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		raw  string
		want string // RFC 3339; "" means an error
	}{
		{`"2025-01-15T10:15:30"`, "2025-01-15T10:15:30Z"},                 // DateTime, no zone: UTC
		{`"2025-01-15T10:15:30.1234567"`, "2025-01-15T10:15:30.1234567Z"}, // with fraction
		{`"2025-01-15T10:15:30+00:00"`, "2025-01-15T10:15:30Z"},           // DateTimeOffset
		{`"2025-01-15T12:15:30+02:00"`, "2025-01-15T10:15:30Z"},           // other offset
		{`"2025-01-15T10:00:00.0043214+00:00"`, "2025-01-15T10:00:00.0043214Z"},
		{`"\"2020-10-22T21:49:35.809Z\""`, "2020-10-22T21:49:35.809Z"}, // 4.x double-quoted
		{`"9999-12-31T23:59:59.9999999+00:00"`, "9999-12-31T23:59:59.9999999Z"},
		{`"yesterday"`, ""},
		{`"2025-01-15"`, ""},
		{`"2025-13-15T10:15:30"`, ""},
		{`{}`, ""},
		{`20250115`, ""},
	}
	for _, tc := range tests {
		got, err := parseTime(json.RawMessage(tc.raw))
		if tc.want == "" {
			if err == nil {
				t.Errorf("parseTime(%s) = %v, want an error", tc.raw, got)
			}
			continue
		}
		if err != nil || !got.Equal(mustTime(t, tc.want)) {
			t.Errorf("parseTime(%s) = %v, %v; want %s", tc.raw, got, err, tc.want)
		}
	}
}

// request builds a Request from a JSON Data object and Metadata object.
func request(t *testing.T, data, metadata string) *Request {
	t.Helper()
	if metadata == "" {
		metadata = "{}"
	}
	r, err := DecodeRequest(strings.NewReader(`{"Data":`+data+`,"Metadata":`+metadata+`}`), DefaultMaxBytes)
	if err != nil {
		t.Fatalf("DecodeRequest: %v", err)
	}
	return r
}

const minimalHTTP = `"Url":"https://example.net/api/replications","Method":"POST"`

func TestHTTP(t *testing.T) {
	tests := []struct {
		name string
		req  string // the fields of Data.req
		want HTTPRequest
	}{
		{"minimal", minimalHTTP, HTTPRequest{
			Method: "POST", URL: &url.URL{Scheme: "https", Host: "example.net", Path: "/api/replications"},
			Query: url.Values{}, Header: http.Header{}, Params: map[string]string{},
		}},
		{"repeated query keys come from the URL", `"Url":"http://h/x?a=1&a=2&b=x%2Cy","Method":"GET","Query":{"a":"1,2","b":"x,y"}`, HTTPRequest{
			Method: "GET", URL: &url.URL{Scheme: "http", Host: "h", Path: "/x", RawQuery: "a=1&a=2&b=x%2Cy"},
			Query: url.Values{"a": {"1", "2"}, "b": {"x,y"}}, Header: http.Header{}, Params: map[string]string{},
		}},
		{"query only in object, string form, nulls", `"Url":"http://h/x","Method":"GET","Query":"{\"k\":\"v\",\"n\":null,\"e\":[]}"`, HTTPRequest{
			Method: "GET", URL: &url.URL{Scheme: "http", Host: "h", Path: "/x"},
			Query: url.Values{"k": {"v"}}, Header: http.Header{}, Params: map[string]string{},
		}},
		{"empty query string form", `"Url":"http://h/x","Method":"GET","Query":""`, HTTPRequest{
			Method: "GET", URL: &url.URL{Scheme: "http", Host: "h", Path: "/x"},
			Query: url.Values{}, Header: http.Header{}, Params: map[string]string{},
		}},
		{"headers canonical, string value, params of several types", `"Url":"http://h/x","Method":"DELETE","Headers":{"x-ms-thing":["a","b"],"accept":"*/*","x-null":null},"Params":{"id":"42","n":7,"b":true,"opt":null}`, HTTPRequest{
			Method: "DELETE", URL: &url.URL{Scheme: "http", Host: "h", Path: "/x"}, Query: url.Values{},
			Header: http.Header{"X-Ms-Thing": {"a", "b"}, "Accept": {"*/*"}},
			Params: map[string]string{"id": "42", "n": "7", "b": "true"},
		}},
		{"octet-stream body is base64", `"Url":"http://h/x","Method":"PUT","Headers":{"Content-Type":["application/octet-stream"]},"Body":"AAEC/w=="`, HTTPRequest{
			Method: "PUT", URL: &url.URL{Scheme: "http", Host: "h", Path: "/x"}, Query: url.Values{},
			Header: http.Header{"Content-Type": {"application/octet-stream"}}, Params: map[string]string{},
			Body: []byte{0, 1, 2, 0xff},
		}},
		{"multipart body is base64", `"Url":"http://h/x","Method":"POST","Headers":{"Content-Type":["Multipart/Form-Data; boundary=x"]},"Body":"aGk="`, HTTPRequest{
			Method: "POST", URL: &url.URL{Scheme: "http", Host: "h", Path: "/x"}, Query: url.Values{},
			Header: http.Header{"Content-Type": {"Multipart/Form-Data; boundary=x"}}, Params: map[string]string{},
			Body: []byte("hi"),
		}},
		{"text body that looks like base64 stays text", `"Url":"http://h/x","Method":"POST","Headers":{"Content-Type":["text/plain"]},"Body":"aGk="`, HTTPRequest{
			Method: "POST", URL: &url.URL{Scheme: "http", Host: "h", Path: "/x"}, Query: url.Values{},
			Header: http.Header{"Content-Type": {"text/plain"}}, Params: map[string]string{},
			Body: []byte("aGk="),
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := request(t, `{"req":{`+tc.req+`}}`, "").HTTP("req")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("HTTP:\n got %#v\nwant %#v", *got, tc.want)
			}
		})
	}
}

func TestHTTPErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string
	}{
		{"binding missing", `{"other":{}}`, `Data has no "req" (present: other)`},
		{"no bindings", `{}`, `(present: none)`},
		{"binding null", `{"req":null}`, `binding "req" is null`},
		{"binding string", `{"req":"{}"}`, "must be a JSON object, got string"},
		{"method missing", `{"req":{"Url":"http://h/"}}`, "Method: missing"},
		{"method number", `{"req":{"Url":"http://h/","Method":1}}`, "Method: want a string, got number"},
		{"method not a token", `{"req":{"Url":"http://h/","Method":"GE T"}}`, "is not an HTTP method"},
		{"method empty", `{"req":{"Url":"http://h/","Method":""}}`, "is not an HTTP method"},
		{"url missing", `{"req":{"Method":"GET"}}`, "Url: missing"},
		{"url relative", `{"req":{"Url":"/api/x","Method":"GET"}}`, "Url: not an absolute URL"},
		{"url invalid", `{"req":{"Url":"http://[::1","Method":"GET"}}`, "Url: not a valid URL"},
		{"url bad query", `{"req":{"Url":"http://h/?a=%zz","Method":"GET"}}`, "invalid query string"},
		{"query number", `{"req":{` + minimalHTTP + `,"Query":5}}`, "Query: want a JSON object, got number"},
		{"query string not object", `{"req":{` + minimalHTTP + `,"Query":"a=b"}}`, "string form must contain a JSON object"},
		{"query value object", `{"req":{` + minimalHTTP + `,"Query":{"a":{}}}}`, `"a": want a string or an array of strings, got object`},
		{"headers array of numbers", `{"req":{` + minimalHTTP + `,"Headers":{"X":[1]}}}`, `"X": want an array of strings`},
		{"headers array", `{"req":{` + minimalHTTP + `,"Headers":[]}}`, "Headers: want a JSON object, got array"},
		{"params object value", `{"req":{` + minimalHTTP + `,"Params":{"id":{}}}}`, `Params: "id": want a string, got object`},
		{"params string", `{"req":{` + minimalHTTP + `,"Params":"{}"}}`, "Params: want a JSON object, got string"},
		{"body number", `{"req":{` + minimalHTTP + `,"Body":1}}`, "Body: want a string, got number"},
		{"body bad base64", `{"req":{` + minimalHTTP + `,"Headers":{"Content-Type":["application/octet-stream"]},"Body":"not base64!"}}`, "Body: not valid base64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := request(t, tc.data, "").HTTP("req")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("HTTP = %+v, %v; want error containing %q", got, err, tc.want)
			}
		})
	}
	t.Run("ErrNoBinding", func(t *testing.T) {
		if _, err := request(t, `{}`, "").HTTP("req"); !errors.Is(err, ErrNoBinding) {
			t.Errorf("err = %v, want ErrNoBinding", err)
		}
	})
	t.Run("nil request", func(t *testing.T) {
		var r *Request
		if _, err := r.HTTP("req"); err == nil {
			t.Error("no error from a nil request")
		}
	})
}

const sbMeta = `"SequenceNumber":"5","DeliveryCount":"2"`

func TestServiceBus(t *testing.T) {
	tests := []struct {
		name     string
		data     string
		metadata string
		want     ServiceBusMessage
	}{
		{"text body", `"\"hello\""`, `{` + sbMeta + `}`,
			ServiceBusMessage{Body: []byte("hello"), SequenceNumber: 5, DeliveryCount: 2}},
		{"JSON string body keeps its quotes", `"\"\\\"quoted\\\"\""`, `{` + sbMeta + `}`,
			ServiceBusMessage{Body: []byte(`"quoted"`), SequenceNumber: 5, DeliveryCount: 2}},
		{"empty body", `"\"\""`, `{` + sbMeta + `}`,
			ServiceBusMessage{Body: []byte{}, SequenceNumber: 5, DeliveryCount: 2}},
		{"single-encoded body", `"{\"a\":1}"`, `{` + sbMeta + `}`,
			ServiceBusMessage{Body: []byte(`{"a":1}`), SequenceNumber: 5, DeliveryCount: 2}},
		{"object body", `{"a":1}`, `{` + sbMeta + `}`,
			ServiceBusMessage{Body: []byte(`{"a":1}`), SequenceNumber: 5, DeliveryCount: 2}},
		{"4.x names: Label, UserProperties as a string", `"\"x\""`,
			`{"SequenceNumber":9,"Label":"\"copy\"","UserProperties":"{\"k\":\"v\"}","SessionId":"\"s1\"","ReplyTo":"\"q2\"","To":"\"t\""}`,
			ServiceBusMessage{Body: []byte("x"), SequenceNumber: 9, Subject: "copy", SessionID: "s1", ReplyTo: "q2", To: "t",
				ApplicationProperties: map[string]any{"k": "v"}}},
		{"5.x names win", `"\"x\""`,
			`{"SequenceNumber":"1","Subject":"\"new\"","Label":"\"old\"","ApplicationProperties":{"big":9007199254740993},"UserProperties":{"old":1}}`,
			ServiceBusMessage{Body: []byte("x"), SequenceNumber: 1, Subject: "new",
				ApplicationProperties: map[string]any{"big": json.Number("9007199254740993")}}},
		{"nulls are absent", `"\"x\""`,
			`{"SequenceNumber":"1","MessageId":null,"EnqueuedTime":null,"ApplicationProperties":null,"DeliveryCount":null}`,
			ServiceBusMessage{Body: []byte("x"), SequenceNumber: 1}},
		{"max sequence number", `"\"x\""`, `{"SequenceNumber":"9223372036854775807"}`,
			ServiceBusMessage{Body: []byte("x"), SequenceNumber: math.MaxInt64}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := request(t, `{"message":`+tc.data+`}`, tc.metadata).ServiceBus("message")
			if err != nil {
				t.Fatal(err)
			}
			assertMessage(t, got, &tc.want)
		})
	}
}

func TestServiceBusErrors(t *testing.T) {
	tests := []struct {
		name     string
		data     string
		metadata string
		want     string
	}{
		{"body null", `null`, `{` + sbMeta + `}`, `binding "message" is null`},
		{"SequenceNumber object", `true`, `{"SequenceNumber":{}}`, "Metadata.SequenceNumber: funcproto: want a string, got object"},
		{"no SequenceNumber", `"\"x\""`, `{"DeliveryCount":"1"}`, "Metadata has no SequenceNumber"},
		{"SequenceNumber not a number", `"\"x\""`, `{"SequenceNumber":"abc"}`, `Metadata.SequenceNumber: funcproto: "abc" is not a 64-bit integer`},
		{"SequenceNumber overflow", `"\"x\""`, `{"SequenceNumber":"9223372036854775808"}`, "is not a 64-bit integer"},
		{"SequenceNumber negative", `"\"x\""`, `{"SequenceNumber":"-1"}`, "Metadata.SequenceNumber: -1 is out of range"},
		{"DeliveryCount object", `"\"x\""`, `{"SequenceNumber":"1","DeliveryCount":{}}`, "Metadata.DeliveryCount: funcproto: want a string, got object"},
		{"DeliveryCount overflow", `"\"x\""`, `{"SequenceNumber":"1","DeliveryCount":"4294967296"}`, "is not a 32-bit integer"},
		{"DeliveryCount fraction", `"\"x\""`, `{"SequenceNumber":"1","DeliveryCount":1.5}`, "is not a 32-bit integer"},
		{"MessageId object", `"\"x\""`, `{"SequenceNumber":"1","MessageId":{}}`, "Metadata.MessageId: funcproto: want a string, got object"},
		{"Label array", `"\"x\""`, `{"SequenceNumber":"1","Label":[]}`, "Metadata.Label: funcproto: want a string, got array"},
		{"EnqueuedTime text", `"\"x\""`, `{"SequenceNumber":"1","EnqueuedTime":"yesterday"}`, `Metadata.EnqueuedTime: funcproto: "yesterday" is not an ISO 8601 date-time`},
		{"ExpiresAtUtc number", `"\"x\""`, `{"SequenceNumber":"1","ExpiresAtUtc":5}`, "Metadata.ExpiresAtUtc"},
		{"ApplicationProperties array", `"\"x\""`, `{"SequenceNumber":"1","ApplicationProperties":[]}`, "Metadata.ApplicationProperties: want a JSON object, got array"},
		{"UserProperties bad string", `"\"x\""`, `{"SequenceNumber":"1","UserProperties":"{\"a\""}`, "Metadata.UserProperties: want a JSON object, got invalid JSON"},
		{"UserProperties empty string", `"\"x\""`, `{"SequenceNumber":"1","UserProperties":""}`, "got an empty string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := request(t, `{"message":`+tc.data+`}`, tc.metadata).ServiceBus("message")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ServiceBus = %+v, %v; want error containing %q", got, err, tc.want)
			}
		})
	}
}

func TestTimer(t *testing.T) {
	tests := []struct {
		name string
		data string
		want TimerInfo
	}{
		{"no status yet", `{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":true}`, TimerInfo{IsPastDue: true}},
		{"status absent", `{"IsPastDue":false}`, TimerInfo{}},
		{"zone-less whole seconds", `{"ScheduleStatus":{"Last":"2025-01-15T10:00:00","Next":"2025-01-15T10:05:00","LastUpdated":null},"IsPastDue":false}`,
			TimerInfo{Last: time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC), Next: time.Date(2025, 1, 15, 10, 5, 0, 0, time.UTC)}},
		{"Z and offsets", `{"ScheduleStatus":{"Last":"2025-01-15T10:00:00.5Z","Next":"2025-01-15T11:05:00+01:00","LastUpdated":"2025-01-15T10:00:00.5+00:00"},"IsPastDue":false}`,
			TimerInfo{Last: time.Date(2025, 1, 15, 10, 0, 0, 5e8, time.UTC), Next: time.Date(2025, 1, 15, 10, 5, 0, 0, time.UTC), LastUpdated: time.Date(2025, 1, 15, 10, 0, 0, 5e8, time.UTC)}},
		{"serialised object", `"{\"IsPastDue\":true}"`, TimerInfo{IsPastDue: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := request(t, `{"timer":`+tc.data+`}`, "").Timer("timer")
			if err != nil {
				t.Fatal(err)
			}
			if got.IsPastDue != tc.want.IsPastDue || !got.Last.Equal(tc.want.Last) || !got.Next.Equal(tc.want.Next) || !got.LastUpdated.Equal(tc.want.LastUpdated) {
				t.Errorf("Timer = %+v, want %+v", *got, tc.want)
			}
		})
	}
}

func TestTimerErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		want string
	}{
		{"number", `5`, `timer binding "timer" must be a JSON object, got number`},
		{"string not object", `"x"`, `timer binding "timer" must be a JSON object, got string`},
		{"IsPastDue missing", `{"ScheduleStatus":null}`, "IsPastDue: missing"},
		{"IsPastDue string", `{"IsPastDue":"false"}`, "IsPastDue: want a boolean, got string"},
		{"status array", `{"IsPastDue":false,"ScheduleStatus":[]}`, "ScheduleStatus must be a JSON object, got array"},
		{"bad Last", `{"IsPastDue":false,"ScheduleStatus":{"Last":"soon"}}`, `ScheduleStatus.Last: funcproto: "soon" is not an ISO 8601 date-time`},
		{"bad Next type", `{"IsPastDue":false,"ScheduleStatus":{"Next":{}}}`, "ScheduleStatus.Next: funcproto: want a string, got object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := request(t, `{"timer":`+tc.data+`}`, "").Timer("timer")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Timer = %+v, %v; want error containing %q", got, err, tc.want)
			}
		})
	}
}

func TestWriteResponse(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		resp       Response
		wantStatus int
		wantErr    string
		wantBody   string
	}{
		{"empty", http.StatusOK, Response{}, 200, "", `{"Outputs":{},"Logs":[],"ReturnValue":null}`},
		{"http output", http.StatusOK,
			Response{Outputs: map[string]any{"res": HTTPResponse{StatusCode: 202}}, Logs: []string{"queued"}, ReturnValue: 1},
			200, "", `{"Outputs":{"res":{"statusCode":202}},"Logs":["queued"],"ReturnValue":1}`},
		{"failure status", http.StatusInternalServerError, Response{Logs: []string{"boom"}},
			500, "", `{"Outputs":{},"Logs":["boom"],"ReturnValue":null}`},
		{"unencodable output", http.StatusOK, Response{Outputs: map[string]any{"x": math.NaN()}},
			500, "encoding response", ""},
		{"invalid status", 42, Response{}, 500, "invalid response status 42", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			err := WriteResponse(rec, tc.status, tc.resp)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if rec.Code != tc.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tc.wantStatus)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q", ct)
			}
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("body is not JSON: %s", rec.Body)
			}
			if tc.wantBody != "" && rec.Body.String() != tc.wantBody {
				t.Errorf("body = %s, want %s", rec.Body, tc.wantBody)
			}
			var shape map[string]json.RawMessage
			if err := json.Unmarshal(rec.Body.Bytes(), &shape); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"Outputs", "Logs", "ReturnValue"} {
				if _, ok := shape[k]; !ok {
					t.Errorf("body has no %s: %s", k, rec.Body)
				}
			}
		})
	}
}

func TestHTTPResponseJSON(t *testing.T) {
	tests := []struct {
		in   HTTPResponse
		want string
	}{
		{HTTPResponse{StatusCode: 200}, `{"statusCode":200}`},
		{HTTPResponse{StatusCode: 201, Headers: map[string]string{"Location": "/x"}, Body: `{"a":1}`},
			`{"statusCode":201,"headers":{"Location":"/x"},"body":"{\"a\":1}"}`},
	}
	for _, tc := range tests {
		got, err := json.Marshal(tc.in)
		if err != nil || string(got) != tc.want {
			t.Errorf("Marshal(%+v) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}
