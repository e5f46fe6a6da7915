package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dimirror/dimirror/shared/replication"
)

// Every error reaches the caller through the one table: the domain's errors by kind, code and
// field; anything else as a dependency failure whose cause stays in the log.
func TestErrorVocabulary(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		status     int
		code       string
		target     string
		retryAfter bool
	}{
		{"field error", &replication.FieldError{Field: "targets", Msg: "unknown target mars"}, 400, "InvalidRequest", "targets", false},
		{"invalid", invalid("top", "top must be a whole number"), 400, "InvalidRequest", "top", false},
		{"source not found", fmt.Errorf("model x: %w", replication.ErrSourceNotFound), 404, "SourceNotFound", "sourceId", false},
		{"replica not found", fmt.Errorf("no replication: %w", replication.ErrNotFound), 404, "ReplicationNotFound", "", false},
		{"invalid token", fmt.Errorf("list: %w", replication.ErrInvalidToken), 400, "InvalidRequest", "next", false},
		{"conflict", fmt.Errorf("update: %w", replication.ErrConflict), 409, "Conflict", "", false},
		{"not configured", errNoReconciler, 501, "NotConfigured", "", false},
		{"deadline", fmt.Errorf("table: %w", context.DeadlineExceeded), 503, "Timeout", "", true},
		{"dependency", errors.New("dial tcp 10.0.0.7:443: connection refused"), 503, "Unavailable", "", true},
		{"unauthorized", &apiError{Kind: eUnauthorized, Code: "Unauthorized", Message: "no key"}, 401, "Unauthorized", "", false},
		{"method", &apiError{Kind: eMethod, Code: "MethodNotAllowed", Message: "no"}, 405, "MethodNotAllowed", "", false},
		{"internal", &apiError{Kind: eInternal, Code: "InternalError", Message: "bug"}, 500, "InternalError", "", false},
		{"unknown kind", &apiError{Kind: "mystery", Code: "X", Message: "x"}, 500, "X", "", false},
	}
	a := &Functions{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			a.writeError(rec, httptest.NewRequest("GET", "/api/replications", nil), tt.err)
			var body errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if rec.Code != tt.status || body.Error.Code != tt.code || body.Error.Target != tt.target || body.Error.Message == "" {
				t.Errorf("%d %s, want %d %s target %q", rec.Code, rec.Body, tt.status, tt.code, tt.target)
			}
			if got := rec.Header().Get("Retry-After") != ""; got != tt.retryAfter {
				t.Errorf("Retry-After set: %v", got)
			}
			if strings.Contains(rec.Body.String(), "10.0.0.7") {
				t.Errorf("the answer echoes the cause: %s", rec.Body)
			}
		})
	}
	for kind, status := range statusOf {
		if status < 400 || http.StatusText(status) == "" {
			t.Errorf("kind %s maps to %d", kind, status)
		}
	}
}

func TestRoutePatterns(t *testing.T) {
	tests := []struct {
		route    string
		patterns []string
		params   []string
	}{
		{"replications", []string{"/api/replications"}, nil},
		{"replications/{kind?}/{id?}", []string{"/api/replications", "/api/replications/{kind}", "/api/replications/{kind}/{id}"}, []string{"kind", "id"}},
		{"replications/{kind}/{id:int}", []string{"/api/replications/{kind}/{id}"}, []string{"kind", "id"}},
	}
	for _, tt := range tests {
		t.Run(tt.route, func(t *testing.T) {
			p, params := routePatterns(tt.route)
			if fmt.Sprint(p) != fmt.Sprint(tt.patterns) || fmt.Sprint(params) != fmt.Sprint(tt.params) {
				t.Errorf("routePatterns = %v %v", p, params)
			}
		})
	}
}
