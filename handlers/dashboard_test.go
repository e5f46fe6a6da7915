package handlers_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/dimirror/dimirror/handlers"
	"github.com/dimirror/dimirror/shared/drill"
)

// The page is one document: nothing loaded from another origin, its script and style pinned by
// the CSP, and the headers that keep the key in its address from leaking on.
func TestDashboardPage(t *testing.T) {
	a := &handlers.Functions{}
	api, err := a.API("a-long-enough-api-key-01")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, header string
		want               int
	}{
		{"key in the address", "/api/dashboard?code=a-long-enough-api-key-01", "", http.StatusOK},
		{"key in the header", "/api/dashboard", "a-long-enough-api-key-01", http.StatusOK},
		{"no key", "/api/dashboard", "", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", tc.path, nil)
			if tc.header != "" {
				req.Header.Set("x-functions-key", tc.header)
			}
			api.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d %s", rec.Code, rec.Body)
			}
			if tc.want != http.StatusOK {
				return
			}
			h, body := rec.Header(), rec.Body.String()
			for k, v := range map[string]string{"Content-Type": "text/html; charset=utf-8", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
				if h.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, h.Get(k), v)
				}
			}
			csp := h.Get("Content-Security-Policy")
			if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") || !regexp.MustCompile(`script-src 'sha256-[A-Za-z0-9+/=]+'`).MatchString(csp) {
				t.Errorf("CSP %q", csp)
			}
			if strings.Contains(body, "{{") || strings.Contains(body, "a-long-enough-api-key-01") {
				t.Error("the page is not assembled, or echoes the key")
			}
			if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//`).FindString(body); m != "" {
				t.Errorf("the page loads something from elsewhere: %s", m)
			}
		})
	}
}

type fakeDriller struct {
	rep *drill.Report
	err error
}

func (f fakeDriller) Run(context.Context) (*drill.Report, error) { return f.rep, f.err }

func TestDrillFunction(t *testing.T) {
	notReady := &drill.Report{Targets: []drill.TargetReport{{Target: "eastus", Reasons: []drill.Reason{{Code: drill.Missing, Kind: "model", ID: "invoice-v1", Detail: "gone"}}}}}
	for _, tc := range []struct {
		name, path string
		d          fakeDriller
		want       int
		body       string
	}{
		{"not ready is still an answer", "/api/drill", fakeDriller{rep: notReady}, 200, `"code":"missing"`},
		{"ready", "/api/drill", fakeDriller{rep: &drill.Report{Ready: true}}, 200, `"ready":true`},
		{"a parameter it does not take", "/api/drill?target=eastus", fakeDriller{rep: notReady}, 400, `"target":"target"`},
		{"the source unreadable", "/api/drill", fakeDriller{err: errors.New("drill: source: 403")}, 503, `"error"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &handlers.Functions{Driller: tc.d}
			api, err := a.API("a-long-enough-api-key-01")
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", tc.path, nil)
			req.Header.Set("x-functions-key", "a-long-enough-api-key-01")
			api.ServeHTTP(rec, req)
			if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.body) {
				t.Errorf("%d %s, want %d with %s", rec.Code, rec.Body, tc.want, tc.body)
			}
		})
	}
}
