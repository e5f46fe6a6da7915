package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/dimirror/dimirror/shared/replication"
)

// One error vocabulary for every function. A failure has a kind, which alone decides the HTTP
// status (statusOf), and a code, which the answer's body carries for callers to branch on
// ({"error":{"code","message","target"}}). Domain errors are mapped to both in errorOf, once.
const (
	eInvalid        = "invalid"            // the caller's input is wrong: 400, naming the field
	eUnauthorized   = "unauthorized"       // no or a wrong API key: 401
	eNotFound       = "not_found"          // 404
	eMethod         = "method_not_allowed" // 405, with Allow
	eConflict       = "conflict"           // 409: another instance moved the replica first
	eUnprocessable  = "unprocessable"      // 422: well-formed, but can never be processed (poison)
	eInternal       = "internal"           // 500: a pass or a handler failed in a way retrying will not fix by itself
	eNotImplemented = "not_implemented"    // 501: a feature this app was not configured with
	eUnavailable    = "unavailable"        // 503: a dependency failed or timed out; try again
)

// statusOf is the one error kind → HTTP status table.
var statusOf = map[string]int{
	eInvalid:        http.StatusBadRequest,
	eUnauthorized:   http.StatusUnauthorized,
	eNotFound:       http.StatusNotFound,
	eMethod:         http.StatusMethodNotAllowed,
	eConflict:       http.StatusConflict,
	eUnprocessable:  http.StatusUnprocessableEntity,
	eInternal:       http.StatusInternalServerError,
	eNotImplemented: http.StatusNotImplemented,
	eUnavailable:    http.StatusServiceUnavailable,
}

// apiError is a failure as the API answers it. Message and Target are shown to the caller;
// Cause is logged and never shown (it may name internal endpoints).
type apiError struct {
	Kind    string
	Code    string
	Message string
	Target  string
	Cause   error
}

func (e *apiError) Error() string {
	if e.Cause != nil {
		return e.Message + ": " + e.Cause.Error()
	}
	return e.Message
}

func (e *apiError) Unwrap() error { return e.Cause }

// status is the HTTP status of e's kind; an unknown kind is a bug, answered as internal.
func (e *apiError) status() int {
	if s, ok := statusOf[e.Kind]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// invalid is a 400 about field ("" when no single field is to blame).
func invalid(field, format string, args ...any) *apiError {
	return &apiError{Kind: eInvalid, Code: "InvalidRequest", Message: fmt.Sprintf(format, args...), Target: field}
}

// errNoReconciler: the app runs without reconciliation (tests, CLI tools).
var errNoReconciler = errors.New("reconciliation is not configured in this app")

// errorOf maps any error to the vocabulary: the domain's errors to their kind and code, a
// deadline to a timeout, anything else to a dependency failure.
func errorOf(err error) *apiError {
	var ae *apiError
	var fe *replication.FieldError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &fe):
		return &apiError{Kind: eInvalid, Code: "InvalidRequest", Message: err.Error(), Target: fe.Field}
	case errors.Is(err, replication.ErrSourceNotFound):
		return &apiError{Kind: eNotFound, Code: "SourceNotFound", Message: err.Error(), Target: "sourceId"}
	case errors.Is(err, replication.ErrNotFound):
		return &apiError{Kind: eNotFound, Code: "ReplicationNotFound", Message: err.Error()}
	case errors.Is(err, replication.ErrInvalidToken):
		return &apiError{Kind: eInvalid, Code: "InvalidRequest", Message: "the next token is not valid: use the nextLink of an earlier page", Target: "next"}
	case errors.Is(err, replication.ErrConflict):
		return &apiError{Kind: eConflict, Code: "Conflict", Message: "the replica changed while this request ran; try again", Cause: err}
	case errors.Is(err, errNoReconciler):
		return &apiError{Kind: eNotImplemented, Code: "NotConfigured", Message: err.Error()}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &apiError{Kind: eUnavailable, Code: "Timeout", Message: "a dependency did not answer in time; try again", Cause: err}
	}
	return &apiError{Kind: eUnavailable, Code: "Unavailable", Message: "a dependency failed; try again (details are in the app's log)", Cause: err}
}

// errorBody is every error answer: {"error":{"code":"...","message":"..."}}, plus the field a
// 400 is about.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Target  string `json:"target,omitempty"`
}

// writeError answers err in the vocabulary. Failures on the app's side (5xx) are logged with
// their cause; 503s say when to try again.
func (a *Functions) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := errorOf(err)
	status := e.status()
	if status >= 500 {
		cause := err.Error()
		a.log().ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path,
			"status", status, "code", e.Code, "err", cause)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	writeJSON(w, status, errorBody{Error: errorDetail{Code: e.Code, Message: e.Message, Target: e.Target}})
}
