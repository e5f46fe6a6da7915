package funcproto

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// Response is the handler's reply to an invocation.
type Response struct {
	// Outputs is keyed by output binding name. An HTTP output must be an object (use
	// HTTPResponse). For other outputs the host tries a string value as base64 unless the
	// binding says "dataType":"binary": a bare word such as "abcd" would be decoded into
	// garbage bytes, while JSON text cannot be mistaken for base64 because '{' and '"' are
	// not in its alphabet. So send JSON objects (marshalled as values) or JSON text; an array
	// value sends one Service Bus message per element.
	Outputs map[string]any `json:"Outputs"`
	// Logs are written to the function's log by the host, only when the status is 2xx.
	Logs        []string `json:"Logs"`
	ReturnValue any      `json:"ReturnValue"`
}

// MarshalJSON writes nil Outputs and Logs as {} and [] so the reply always has the shape
// the host documents.
func (r Response) MarshalJSON() ([]byte, error) {
	type plain Response // drops the method, avoiding recursion
	if r.Outputs == nil {
		r.Outputs = map[string]any{}
	}
	if r.Logs == nil {
		r.Logs = []string{}
	}
	return json.Marshal(plain(r))
}

// HTTPResponse is the value of an HTTP output binding.
type HTTPResponse struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers,omitempty"`
	Body       string            `json:"body,omitempty"`
}

// WriteResponse writes resp as JSON with the given status. The status of this reply is the
// invocation's outcome, not the HTTP trigger's status (that is HTTPResponse.StatusCode): any
// non-2xx fails the invocation. If resp cannot be encoded, or status is not a valid HTTP
// status, it writes 500 (failing the invocation, so a Service Bus message is redelivered
// rather than silently completed) and returns the error.
func WriteResponse(w http.ResponseWriter, status int, resp Response) error {
	body, err := json.Marshal(resp)
	if err != nil {
		err = fmt.Errorf("funcproto: encoding response: %w", err)
	} else if status < 100 || status > 999 {
		err = fmt.Errorf("funcproto: invalid response status %d", status)
	}
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal(Response{Logs: []string{err.Error()}})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if _, werr := w.Write(body); werr != nil && err == nil {
		err = fmt.Errorf("funcproto: writing response: %w", werr)
	}
	return err
}
