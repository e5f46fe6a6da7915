package docintel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidArgument wraps every error about bad input caught before a request is sent.
var ErrInvalidArgument = errors.New("docintel: invalid argument")

// ErrUnsupported wraps every error about a call the client's api-version does not offer.
var ErrUnsupported = errors.New("docintel: not supported by this api-version")

// Error codes the service returns (top level or innermost innererror), shared by the client's
// predicates and the emulator.
const (
	// Top-level codes of v3/v4.
	CodeInvalidRequest      = "InvalidRequest"
	CodeInvalidArgument     = "InvalidArgument"
	CodeForbidden           = "Forbidden"
	CodeNotFound            = "NotFound"
	CodeConflict            = "Conflict"
	CodeInternalServerError = "InternalServerError"
	CodeServiceUnavailable  = "ServiceUnavailable"

	// Inner codes of v3/v4.
	CodeModelExists             = "ModelExists"
	CodeModelNotReady           = "ModelNotReady"
	CodeModelNotFound           = "ModelNotFound"
	CodeOperationNotFound       = "OperationNotFound"
	CodeDocumentModelLimit      = "DocumentModelLimit"
	CodeParameterMissing        = "ParameterMissing"
	CodeInvalidParameter        = "InvalidParameter"
	CodeDataProtectionTransform = "DataProtectionTransformServiceError"

	// Copy-authorization failures of v3/v4: expired (synchronous 400 on copyTo), altered (the
	// operation fails), already used by a successful copy (the operation fails).
	CodeAuthorizationExpired          = "AuthorizationExpired"
	CodeAuthorizationFailed           = "AuthorizationFailed"
	CodeAuthorizationMetadataNotFound = "AuthorizationMetadataNotFound"
	CodeAuthorizationInvalid          = CodeAuthorizationFailed           // altered authorization
	CodeAuthorizationUsed             = CodeAuthorizationMetadataNotFound // reused authorization

	// v2.1 codes (numeric strings) and the 2020-era v2.1-preview code.
	CodeV21InvalidRequest        = "1002" // invalid copy request: bad resource id, region, expired or altered authorization
	CodeV21AuthorizationMetadata = "2024" // could not retrieve authorization metadata (altered, reused, wrong region)
	CodeV21Timeout               = "3013" // operation exceeded maximum processing time
	CodeV21AuthorizationError    = "AuthorizationError"
)

// Error is every non-2xx answer and every failed operation's error. Its strings never hold keys,
// bearer tokens or copy access tokens: the client scrubs the ones it knows before returning it.
type Error struct {
	StatusCode   int    // 0 for an operation's error
	Code         string // error.code, or the ms-azure-ai-errorcode / x-ms-cs-error-code header
	InnerCode    string // innermost innererror/innerError code
	Message      string
	InnerMessage string // message that came with InnerCode
	Target       string
	RequestID    string // apim-request-id (for an operation's error: the requestId it names, if any)
	RetryAfter   time.Duration
	Details      []Error
}

// Error describes the failure: status, codes, message and request id.
func (e *Error) Error() string {
	if e == nil {
		return "docintel: <nil error>"
	}
	var b strings.Builder
	b.WriteString("docintel: ")
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
	} else {
		b.WriteString("operation failed")
	}
	if e.Code != "" && e.Code != strconv.Itoa(e.StatusCode) {
		b.WriteString(": ")
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.InnerCode != "" {
		b.WriteString(" (")
		b.WriteString(e.InnerCode)
		if e.InnerMessage != "" {
			b.WriteString(": ")
			b.WriteString(e.InnerMessage)
		}
		b.WriteString(")")
	}
	if e.Target != "" {
		fmt.Fprintf(&b, " [target %s]", e.Target)
	}
	if n := len(e.Details); n > 0 {
		fmt.Fprintf(&b, " (+%d more)", n)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [apim-request-id %s]", e.RequestID)
	}
	return b.String()
}

func (e *Error) hasCode(codes ...string) bool {
	for _, c := range codes {
		if c != "" && (strings.EqualFold(e.Code, c) || strings.EqualFold(e.InnerCode, c)) {
			return true
		}
	}
	return false
}

func asError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) && e != nil {
		return e, true
	}
	return nil, false
}

// IsNotFound reports a 404 of any kind (model, operation, or the gateway's unknown route).
func IsNotFound(err error) bool {
	e, ok := asError(err)
	return ok && e.StatusCode == http.StatusNotFound
}

// IsModelNotFound reports that the model or classifier does not exist.
func IsModelNotFound(err error) bool {
	e, ok := asError(err)
	return ok && e.hasCode(CodeModelNotFound)
}

// IsOperationNotFound reports an unknown or expired operation.
func IsOperationNotFound(err error) bool {
	e, ok := asError(err)
	return ok && e.hasCode(CodeOperationNotFound)
}

// IsModelExists reports that authorizeCopy's target id is taken: by a model, or reserved by an
// earlier authorization that no copy consumed.
func IsModelExists(err error) bool {
	e, ok := asError(err)
	return ok && (e.hasCode(CodeModelExists) || (e.StatusCode == http.StatusConflict && e.hasCode(CodeConflict)))
}

// IsModelNotReady reports copyTo of a source model that is missing or not ready (the service
// answers 400 ModelNotReady, not 404).
func IsModelNotReady(err error) bool {
	e, ok := asError(err)
	return ok && e.hasCode(CodeModelNotReady)
}

// IsThrottled reports a 429; Error.RetryAfter says how long the service asked to wait.
func IsThrottled(err error) bool {
	e, ok := asError(err)
	return ok && e.StatusCode == http.StatusTooManyRequests
}

// IsTransient reports a failure that may go away if the same call is tried again later: 429,
// 408, 5xx, network errors, and timeouts that were not the caller's own deadline or cancellation.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	if e, ok := asError(err); ok {
		s := e.StatusCode
		return s == http.StatusTooManyRequests || s == http.StatusRequestTimeout || s >= 500
	}
	var te *transportError
	if errors.As(err, &te) {
		return te.transient
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// IsAuthorizationInvalid reports that the copy authorization cannot be used (expired, altered or
// already used) and a new one from the target may work. A synchronous 401/403 is excluded: there
// AuthorizationFailed means the caller's own credential lacks permission.
func IsAuthorizationInvalid(err error) bool {
	e, ok := asError(err)
	if !ok || e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden {
		return false
	}
	if e.hasCode(CodeAuthorizationExpired, CodeAuthorizationFailed, CodeAuthorizationMetadataNotFound,
		CodeV21AuthorizationMetadata, CodeV21AuthorizationError) {
		return true
	}
	if e.hasCode(CodeV21InvalidRequest) {
		m := strings.ToLower(e.Message + " " + e.InnerMessage)
		return strings.Contains(m, "authoriz") || strings.Contains(m, "expir")
	}
	return false
}

// IsDowngradeRefused reports a copy from an encrypted (CMK) resource into a less protected one
// without Options.Degrade.
func IsDowngradeRefused(err error) bool {
	e, ok := asError(err)
	return ok && e.hasCode(CodeDataProtectionTransform)
}

// IsQuotaExhausted reports that the resource holds as many models as it may.
func IsQuotaExhausted(err error) bool {
	e, ok := asError(err)
	return ok && e.hasCode(CodeDocumentModelLimit)
}

// IsUnauthorized reports a 401: the key or token is wrong, or the endpoint is not the resource's.
func IsUnauthorized(err error) bool {
	e, ok := asError(err)
	return ok && e.StatusCode == http.StatusUnauthorized
}

// IsForbidden reports a 403: the credential lacks permission, the resource's network or
// encryption settings refuse the call, or an F0 call quota is used up.
func IsForbidden(err error) bool {
	e, ok := asError(err)
	return ok && e.StatusCode == http.StatusForbidden
}

// IsBadRequest reports a 400 of any kind (the request itself is wrong; retrying it cannot help).
func IsBadRequest(err error) bool {
	e, ok := asError(err)
	return ok && e.StatusCode == http.StatusBadRequest
}

// transportError is a call that got no HTTP answer. transient is false when the caller's own
// context ended it.
type transportError struct {
	msg       string
	err       error
	transient bool
}

func (e *transportError) Error() string { return e.msg }
func (e *transportError) Unwrap() error { return e.err }

const (
	maxMessageLen = 1024 // service-provided messages
	maxEchoLen    = 256  // raw text of a body that is not a JSON error
	maxDepth      = 16   // innererror chains and details nesting we follow
)

// wire shapes of error bodies. encoding/json matches keys case-insensitively, so "innererror"
// also reads the older "innerError".
type wireError struct {
	Code       flexString      `json:"code"`
	Message    flexString      `json:"message"`
	Target     flexString      `json:"target"`
	Details    []wireError     `json:"details"`
	InnerError *wireInnerError `json:"innererror"`
}

type wireInnerError struct {
	Code       flexString      `json:"code"`
	Message    flexString      `json:"message"`
	RequestID  flexString      `json:"requestId"`
	InnerError *wireInnerError `json:"innererror"`
}

// flexString reads a JSON string, number or bool as text (APIM sends numeric codes now and then);
// anything else reads as empty rather than failing the whole body.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] == '{' || b[0] == '[' || bytes.Equal(b, []byte("null")) {
		*f = ""
		return nil
	}
	if b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	*f = flexString(b)
	return nil
}

// errorEnvelope is every top-level shape we accept: {"error":{...}}, {"error":"text"}, and the
// bare {"code","message"} / APIM {"statusCode","message"}.
type errorEnvelope struct {
	Error      json.RawMessage `json:"error"`
	Code       flexString      `json:"code"`
	StatusCode flexString      `json:"statusCode"`
	Message    flexString      `json:"message"`
}

// parseError turns a non-2xx answer into an *Error; it never fails. echo=false keeps the raw
// body text out of the result (authorizeCopy answers may carry an access token). Secrets are
// removed before any text is shortened, so no prefix of one survives a cut.
func parseError(status int, header http.Header, body []byte, echo bool, secrets []string) *Error {
	e := &Error{StatusCode: status}
	if !fillFromBody(e, body) {
		trimmed := bytes.TrimSpace(body)
		switch {
		case len(trimmed) == 0:
		case echo:
			e.Message = string(trimmed)
		default:
			e.Message = fmt.Sprintf("unparsable error body (%d bytes, not shown)", len(trimmed))
		}
		e.Message = cleanText(redact(e.Message, secrets), maxEchoLen)
	}
	applyHeaders(e, header)
	e.finish(secrets)
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

// finish scrubs secrets, then bounds and sanitises every string.
func (e *Error) finish(secrets []string) {
	e.scrub(secrets)
	e.clean(0)
}

func (e *Error) clean(depth int) {
	e.Code = cleanText(e.Code, 128)
	e.InnerCode = cleanText(e.InnerCode, 128)
	e.Message = cleanText(e.Message, maxMessageLen)
	e.InnerMessage = cleanText(e.InnerMessage, maxMessageLen)
	e.Target = cleanText(e.Target, 256)
	e.RequestID = cleanText(e.RequestID, 128)
	if depth >= maxDepth {
		e.Details = nil
	}
	for i := range e.Details {
		e.Details[i].clean(depth + 1)
	}
}

func fillFromBody(e *Error, body []byte) bool {
	var env errorEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return false
	}
	raw := bytes.TrimSpace(env.Error)
	switch {
	case len(raw) > 0 && raw[0] == '{':
		var we wireError
		if err := json.Unmarshal(raw, &we); err != nil {
			return false
		}
		*e = fromWire(we, 0, e.StatusCode)
		return true
	case len(raw) > 0 && raw[0] == '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return false
		}
		e.Message = s
		return true
	case env.Code != "" || env.StatusCode != "" || env.Message != "":
		e.Code = string(env.Code)
		if e.Code == "" {
			e.Code = string(env.StatusCode)
		}
		e.Message = string(env.Message)
		return true
	}
	return false
}

// fromWire converts one error object; the innermost innererror that names a code wins. Strings
// are taken as sent: finish cleans them once secrets are gone.
func fromWire(we wireError, depth, status int) Error {
	e := Error{
		StatusCode: status,
		Code:       string(we.Code),
		Message:    string(we.Message),
		Target:     string(we.Target),
	}
	for in, d := we.InnerError, 0; in != nil && d < maxDepth; in, d = in.InnerError, d+1 {
		if in.Code != "" {
			e.InnerCode = string(in.Code)
			e.InnerMessage = string(in.Message)
		}
		if in.RequestID != "" && e.RequestID == "" {
			e.RequestID = string(in.RequestID)
		}
	}
	if depth < maxDepth {
		for _, d := range we.Details {
			e.Details = append(e.Details, fromWire(d, depth+1, 0))
		}
	}
	return e
}

func applyHeaders(e *Error, h http.Header) {
	if h == nil {
		return
	}
	if id := h.Get("apim-request-id"); id != "" {
		e.RequestID = id
	} else if id := h.Get("x-ms-request-id"); id != "" && e.RequestID == "" {
		e.RequestID = id
	}
	if e.Code == "" {
		e.Code = headerErrorCode(h)
	}
	e.RetryAfter = retryAfter(h, time.Now())
}

// headerErrorCode is the code v2.1 puts in a header, also on a failed copy result served with 200.
func headerErrorCode(h http.Header) string {
	for _, name := range []string{"ms-azure-ai-errorcode", "x-ms-cs-error-code", "x-ms-error-code"} {
		if c := h.Get(name); c != "" {
			return c
		}
	}
	return ""
}

// retryAfter reads retry-after-ms, x-ms-retry-after-ms and Retry-After (seconds or HTTP date),
// in the order azcore's retry policy prefers them.
func retryAfter(h http.Header, now time.Time) time.Duration {
	for _, name := range []string{"retry-after-ms", "x-ms-retry-after-ms"} {
		if v := strings.TrimSpace(h.Get(name)); v != "" {
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 0 && ms < int64(365*24*time.Hour/time.Millisecond) {
				return time.Duration(ms) * time.Millisecond
			}
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s > 0 && s < int64(365*24*time.Hour/time.Second) {
			return time.Duration(s) * time.Second
		}
		return 0
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// cleanText makes service text safe to print: valid UTF-8, no control characters, bounded.
func cleanText(s string, max int) string {
	if s == "" {
		return ""
	}
	var b strings.Builder
	n := 0
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if unicode.IsControl(r) {
			r = ' '
		}
		if n+utf8.RuneLen(r) > max {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
		n += utf8.RuneLen(r)
	}
	return strings.TrimSpace(b.String())
}

// scrub removes secrets from every string of e.
func (e *Error) scrub(secrets []string) {
	if e == nil || len(secrets) == 0 {
		return
	}
	e.Code = redact(e.Code, secrets)
	e.InnerCode = redact(e.InnerCode, secrets)
	e.Message = redact(e.Message, secrets)
	e.InnerMessage = redact(e.InnerMessage, secrets)
	e.Target = redact(e.Target, secrets)
	e.RequestID = redact(e.RequestID, secrets)
	for i := range e.Details {
		e.Details[i].scrub(secrets)
	}
}

const redacted = "[REDACTED]"

// minSecretLen keeps a degenerate one-letter "secret" from shredding every message.
const minSecretLen = 4

func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= minSecretLen && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, redacted)
		}
	}
	return s
}
