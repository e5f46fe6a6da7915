package docintel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseError(t *testing.T) {
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		noEcho bool
		want   Error
		ndet   int
	}{
		{name: "v3 with nested innererror: innermost code wins", status: 400,
			body: `{"error":{"code":"InvalidRequest","message":"Invalid request.","target":"modelId","innererror":{"code":"InvalidParameter","message":"outer","innererror":{"code":"InvalidParameterLength","message":"too long"}}}}`,
			want: Error{StatusCode: 400, Code: "InvalidRequest", InnerCode: "InvalidParameterLength", Message: "Invalid request.", InnerMessage: "too long", Target: "modelId"}},
		{name: "older innerError casing", status: 404, header: hdr("apim-request-id", "a1"),
			body: `{"error":{"code":"NotFound","message":"Resource not found.","innerError":{"code":"ModelNotFound","message":"The requested model was not found."}}}`,
			want: Error{StatusCode: 404, Code: "NotFound", InnerCode: "ModelNotFound", Message: "Resource not found.", InnerMessage: "The requested model was not found.", RequestID: "a1"}},
		{name: "innererror without a code keeps the outer one", status: 400,
			body: `{"error":{"code":"InvalidRequest","message":"m","innererror":{"code":"ModelNotReady","message":"nr","innererror":{"message":"no code here"}}}}`,
			want: Error{StatusCode: 400, Code: "InvalidRequest", InnerCode: "ModelNotReady", Message: "m", InnerMessage: "nr"}},
		{name: "v2.1 numeric-string code", status: 400,
			body: `{"error":{"code":"1002","message":"Copy request is invalid. Field 'TargetResourceId' must be a valid Azure Resource ID."}}`,
			want: Error{StatusCode: 400, Code: "1002", Message: "Copy request is invalid. Field 'TargetResourceId' must be a valid Azure Resource ID."}},
		{name: "gateway 404", status: 404, body: `{"error":{"code":"404","message":"Resource not found"}}`,
			want: Error{StatusCode: 404, Code: "404", Message: "Resource not found"}},
		{name: "401 body", status: 401, body: `{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint."}}`,
			want: Error{StatusCode: 401, Code: "401", Message: "Access denied due to invalid subscription key or wrong API endpoint."}},
		{name: "numeric code", status: 401, body: `{"error":{"code":401,"message":"x"}}`,
			want: Error{StatusCode: 401, Code: "401", Message: "x"}},
		{name: "APIM statusCode shape with Retry-After", status: 429, header: hdr("Retry-After", "7"),
			body: `{"statusCode":429,"message":"Rate limit is exceeded. Try again in 7 seconds."}`,
			want: Error{StatusCode: 429, Code: "429", Message: "Rate limit is exceeded. Try again in 7 seconds.", RetryAfter: 7 * time.Second}},
		{name: "bare code/message", status: 400, body: `{"code":"BadRequest","message":"Please provide an authentication key."}`,
			want: Error{StatusCode: 400, Code: "BadRequest", Message: "Please provide an authentication key."}},
		{name: "error as a string", status: 500, body: `{"error":"something broke"}`,
			want: Error{StatusCode: 500, Message: "something broke"}},
		{name: "plain text", status: 502, body: "<html>Bad Gateway</html>\n",
			want: Error{StatusCode: 502, Message: "<html>Bad Gateway</html>"}},
		{name: "plain text, not echoed", status: 500, body: "accessToken=abc", noEcho: true,
			want: Error{StatusCode: 500, Message: "unparsable error body (15 bytes, not shown)"}},
		{name: "JSON that is not an error", status: 500, body: `[1,2,3]`, want: Error{StatusCode: 500, Message: "[1,2,3]"}},
		{name: "empty body", status: 503, want: Error{StatusCode: 503, Message: "Service Unavailable"}},
		{name: "control characters and bad UTF-8", status: 500, body: "line1\nline2\x00\xff",
			want: Error{StatusCode: 500, Message: "line1 line2 \uFFFD"}},
		{name: "v2.1 header code", status: 400, header: hdr("ms-azure-ai-errorcode", "2024"), body: `{"error":{"message":"Could not retrieve authorization metadata."}}`,
			want: Error{StatusCode: 400, Code: "2024", Message: "Could not retrieve authorization metadata."}},
		{name: "retry-after-ms wins", status: 429, header: hdr("retry-after-ms", "1500", "Retry-After", "9"), body: `{"error":{"code":"429","message":"slow down"}}`,
			want: Error{StatusCode: 429, Code: "429", Message: "slow down", RetryAfter: 1500 * time.Millisecond}},
		{name: "details", status: 400,
			body: `{"error":{"code":"InvalidRequest","message":"m","details":[{"code":"InvalidParameter","message":"a","target":"x"},{"code":"InvalidParameter","message":"b","target":"y","innererror":{"code":"Deep"}}]}}`,
			want: Error{StatusCode: 400, Code: "InvalidRequest", Message: "m"}, ndet: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseError(tt.status, tt.header, []byte(tt.body), !tt.noEcho, nil)
			if len(got.Details) != tt.ndet {
				t.Fatalf("details = %+v, want %d", got.Details, tt.ndet)
			}
			det := got.Details
			got.Details = nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", *got, tt.want)
			}
			if tt.ndet == 2 && (det[0].Target != "x" || det[1].InnerCode != "Deep" || det[1].StatusCode != 0) {
				t.Errorf("details = %+v", det)
			}
		})
	}
}

func TestParseErrorBounds(t *testing.T) {
	long := strings.Repeat("é", 5000)
	e := parseError(500, nil, []byte(long), true, nil)
	if len(e.Message) > maxEchoLen+len("…") || !utf8.ValidString(e.Message) || !strings.HasSuffix(e.Message, "…") {
		t.Errorf("echoed text: %d bytes, valid %t", len(e.Message), utf8.ValidString(e.Message))
	}
	e = parseError(400, nil, []byte(`{"error":{"code":"X","message":"`+long+`"}}`), true, nil)
	if len(e.Message) > maxMessageLen+len("…") || !utf8.ValidString(e.Message) {
		t.Errorf("message: %d bytes", len(e.Message))
	}
	deep := strings.Repeat(`{"code":"D","details":[`, 100) + `{"code":"leaf"}` + strings.Repeat(`]}`, 100)
	e = parseError(400, nil, []byte(`{"error":`+deep+`}`), true, nil)
	depth := 0
	for d := e; len(d.Details) > 0; d = &d.Details[0] {
		depth++
	}
	if depth > maxDepth {
		t.Errorf("details nested %d deep, want ≤ %d", depth, maxDepth)
	}
}

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		header, value string
		want          time.Duration
	}{
		{"Retry-After", "1", time.Second},
		{"Retry-After", "0", 0},
		{"Retry-After", "-5", 0},
		{"Retry-After", "soon", 0},
		{"Retry-After", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"Retry-After", now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"retry-after-ms", "250", 250 * time.Millisecond},
		{"x-ms-retry-after-ms", "40", 40 * time.Millisecond},
		{"Retry-After", "259200", 72 * time.Hour}, // F0 quota: about three days
	}
	for _, tt := range tests {
		h := http.Header{}
		h.Set(tt.header, tt.value)
		if got := retryAfter(h, now); got != tt.want {
			t.Errorf("%s: %s = %s, want %s", tt.header, tt.value, got, tt.want)
		}
	}
}

type netErr struct{}

func (netErr) Error() string   { return "connection reset" }
func (netErr) Timeout() bool   { return false }
func (netErr) Temporary() bool { return true }

var _ net.Error = netErr{}

func TestPredicates(t *testing.T) {
	preds := map[string]func(error) bool{
		"NotFound": IsNotFound, "ModelNotFound": IsModelNotFound, "OperationNotFound": IsOperationNotFound,
		"ModelExists": IsModelExists, "ModelNotReady": IsModelNotReady, "Throttled": IsThrottled,
		"Transient": IsTransient, "AuthorizationInvalid": IsAuthorizationInvalid, "DowngradeRefused": IsDowngradeRefused,
		"QuotaExhausted": IsQuotaExhausted, "Unauthorized": IsUnauthorized, "Forbidden": IsForbidden, "BadRequest": IsBadRequest,
	}
	op := func(code, inner, msg string) *Error { return &Error{Code: code, InnerCode: inner, Message: msg} }
	httpErr := func(status int, code, inner string) *Error {
		return &Error{StatusCode: status, Code: code, InnerCode: inner}
	}
	var nilErr *Error
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"nil", nil, nil},
		{"nil *Error (Operation.Error of a good op)", nilErr, nil},
		{"unrelated error", errors.New("x"), nil},
		{"model not found", httpErr(404, CodeNotFound, CodeModelNotFound), []string{"NotFound", "ModelNotFound"}},
		{"wrapped model not found", fmt.Errorf("step: %w", httpErr(404, CodeNotFound, CodeModelNotFound)), []string{"NotFound", "ModelNotFound"}},
		{"operation not found", httpErr(404, CodeNotFound, CodeOperationNotFound), []string{"NotFound", "OperationNotFound"}},
		{"gateway 404", httpErr(404, "404", ""), []string{"NotFound"}},
		{"model exists", httpErr(409, CodeConflict, CodeModelExists), []string{"ModelExists"}},
		{"409 conflict without inner code", httpErr(409, CodeConflict, ""), []string{"ModelExists"}},
		{"model not ready", httpErr(400, CodeInvalidRequest, CodeModelNotReady), []string{"ModelNotReady", "BadRequest"}},
		{"model limit", httpErr(400, CodeInvalidRequest, CodeDocumentModelLimit), []string{"QuotaExhausted", "BadRequest"}},
		{"throttled", httpErr(429, "429", ""), []string{"Throttled", "Transient"}},
		{"500", httpErr(500, CodeInternalServerError, ""), []string{"Transient"}},
		{"503", httpErr(503, CodeServiceUnavailable, ""), []string{"Transient"}},
		{"408", httpErr(408, "", ""), []string{"Transient"}},
		{"network", &transportError{msg: "x", err: netErr{}, transient: true}, []string{"Transient"}},
		{"caller canceled", &transportError{msg: "x", err: context.Canceled}, nil},
		{"raw net.Error", netErr{}, []string{"Transient"}},
		{"401", httpErr(401, "401", ""), []string{"Unauthorized"}},
		{"expired authorization (sync 400)", httpErr(400, CodeInvalidRequest, CodeAuthorizationExpired), []string{"AuthorizationInvalid", "BadRequest"}},
		{"altered authorization (failed op)", op(CodeForbidden, CodeAuthorizationFailed, "Forbidden."), []string{"AuthorizationInvalid"}},
		{"reused authorization (failed op)", op(CodeInvalidRequest, CodeAuthorizationMetadataNotFound, "Invalid request."), []string{"AuthorizationInvalid"}},
		{"403 AuthorizationFailed is the caller's permission", httpErr(403, CodeForbidden, CodeAuthorizationFailed), []string{"Forbidden"}},
		{"v2.1 2024 (failed op)", op(CodeV21AuthorizationMetadata, "", "Could not retrieve authorization metadata."), []string{"AuthorizationInvalid"}},
		{"v2.1-preview AuthorizationError", op(CodeV21AuthorizationError, "", ""), []string{"AuthorizationInvalid"}},
		{"v2.1 1002 about expiry", &Error{StatusCode: 400, Code: "1002", Message: "Copy request is invalid. The authorization has expired."}, []string{"AuthorizationInvalid", "BadRequest"}},
		{"v2.1 1002 about the resource id", &Error{StatusCode: 400, Code: "1002", Message: "Copy request is invalid. Field 'TargetResourceId' must be a valid Azure Resource ID."}, []string{"BadRequest"}},
		{"downgrade refused (failed op)", op(CodeDataProtectionTransform, "", ""), []string{"DowngradeRefused"}},
		{"downgrade refused as inner code", httpErr(403, CodeForbidden, CodeDataProtectionTransform), []string{"DowngradeRefused", "Forbidden"}},
		{"v2.1 timeout", op(CodeV21Timeout, "", "Operation exceeded maximum processing time."), nil},
	}
	for _, tt := range tests {
		var got []string
		for name, p := range preds {
			if p(tt.err) {
				got = append(got, name)
			}
		}
		slices.Sort(got)
		want := slices.Clone(tt.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: predicates %v, want %v", tt.name, got, want)
		}
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{StatusCode: 404, Code: "NotFound", InnerCode: "ModelNotFound", Message: "Resource not found.", InnerMessage: "The requested model was not found.", RequestID: "r1"},
			"docintel: HTTP 404: NotFound: Resource not found. (ModelNotFound: The requested model was not found.) [apim-request-id r1]"},
		{&Error{StatusCode: 401, Code: "401", Message: "Access denied"}, "docintel: HTTP 401: Access denied"},
		{&Error{Code: "2024", Message: "Could not retrieve authorization metadata.", Details: []Error{{Code: "x"}}},
			"docintel: operation failed: 2024: Could not retrieve authorization metadata. (+1 more)"},
		{nil, "docintel: <nil error>"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestV21OperationError(t *testing.T) {
	h := http.Header{}
	h.Set("x-ms-cs-error-code", "AuthorizationError")
	e := v21OperationError(nil, h)
	check(t, "code from header", e.Code, CodeV21AuthorizationError)
	e = v21OperationError([]wireError{{Code: "2024", Message: "a"}, {Code: "3013", Message: "b"}}, nil)
	check(t, "first code", e.Code, "2024")
	if len(e.Details) != 1 || e.Details[0].Code != "3013" {
		t.Errorf("details = %+v", e.Details)
	}
	e = v21OperationError(nil, nil)
	check(t, "message without anything", e.Message, "copy failed without error details")
}
