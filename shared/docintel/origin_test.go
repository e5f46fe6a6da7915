package docintel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

const sigSecret = "SIG-7c6b5a493827-secret"

// prefixServer serves the Copy API below prefix, answers copyTo with the Operation-Location
// location(host) names, and records every path it was asked for.
type prefixServer struct {
	srv   *httptest.Server
	mu    sync.Mutex
	paths []string
}

func newPrefixServer(t *testing.T, location func(host string) string, nextLink func(host string) string) *prefixServer {
	p := &prefixServer{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.paths = append(p.paths, r.URL.Path)
		p.mu.Unlock()
		switch {
		case strings.HasSuffix(r.URL.Path, ":copyTo"):
			w.Header().Set("Operation-Location", location(r.Host))
			w.WriteHeader(http.StatusAccepted)
		case strings.Contains(r.URL.Path, "/operations/"):
			jsonAnswer(w, 200, `{"operationId":"1","kind":"documentModelCopyTo","status":"running","createdDateTime":"2026-01-01T00:00:00Z","lastUpdatedDateTime":"2026-01-01T00:00:00Z","resourceLocation":"https://t.example/documentintelligence/documentModels/t1"}`)
		case strings.HasSuffix(r.URL.Path, "/documentModels"):
			jsonAnswer(w, 200, fmt.Sprintf(`{"value":[{"modelId":"a"}],"nextLink":%q}`, nextLink(r.Host)))
		default:
			jsonAnswer(w, 200, `{"value":[{"modelId":"b"}]}`)
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *prefixServer) requested() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.paths...)
}

func noSecrets(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range append(allSecrets, sigSecret, "hunter2") {
		if strings.Contains(err.Error(), s) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), s) {
			t.Errorf("error shows a secret: %v", err)
		}
	}
}

// copyTo's Operation-Location is checked when copyTo answers, not only when it is polled: the
// caller stores it and polls it with the source's credential, so one that leaves the endpoint
// (another host, port or scheme, or another path below the same host) is an error at once.
func TestCopyToOperationLocationOrigin(t *testing.T) {
	const op = "/documentintelligence/operations/31443311833_852f?api-version=2024-11-30"
	tests := []struct {
		name     string
		prefix   string // endpoint path below the server's root
		location func(host string) string
		wantErr  bool
	}{
		{"same host", "", func(h string) string { return "http://" + h + op }, false},
		{"same host, host in upper case", "", func(h string) string { return "http://" + strings.ToUpper(h) + op }, false},
		{"relative", "", func(string) string { return op }, false},
		{"inside the prefix", "/di", func(h string) string { return "http://" + h + "/di" + op }, false},
		{"inside a deeper prefix", "/a/b", func(h string) string { return "http://" + h + "/a/b" + op }, false},
		{"relative inside the prefix", "/di", func(string) string { return "documentintelligence/operations/1" }, false},
		{"another host", "", func(string) string { return "http://evil.example" + op + "&sig=" + sigSecret }, true},
		{"another port", "", func(h string) string { return "http://" + strings.Split(h, ":")[0] + ":1" + op }, true},
		{"another scheme", "", func(h string) string { return "https://" + h + op }, true},
		{"user info", "", func(h string) string { return "http://x:hunter2@" + h + op }, true},
		{"not a URL", "", func(string) string { return "http://%zz/operations/1" }, true},
		{"outside the prefix", "/di", func(h string) string { return "http://" + h + "/other" + op }, true},
		{"at the root below a prefix", "/di", func(h string) string { return "http://" + h + op }, true},
		{"relative to the root below a prefix", "/di", func(string) string { return op }, true},
		{"sibling sharing the prefix's letters", "/di", func(h string) string { return "http://" + h + "/dixx" + op }, true},
		{"dot segments out of the prefix", "/di", func(h string) string { return "http://" + h + "/di/../other" + op }, true},
		{"encoded dot segments", "/di", func(h string) string { return "http://" + h + "/di/%2e%2e/other" + op }, true},
		{"encoded slash", "/di", func(h string) string { return "http://" + h + "/di%2F..%2Fother" + op }, true},
		{"backslash", "/di", func(h string) string { return "http://" + h + `/di/..\other` + op }, true},
		{"prefix in another case", "/di", func(h string) string { return "http://" + h + "/DI" + op }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPrefixServer(t, tt.location, func(string) string { return "" })
			c, err := New(p.srv.URL+tt.prefix, Options{Key: secretKey, Retry: fastRetry})
			if err != nil {
				t.Fatal(err)
			}
			loc, err := c.CopyTo(context.Background(), KindModel, "m1", v3Auth())
			noSecrets(t, err)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if !strings.HasPrefix(strings.ToLower(loc), strings.ToLower(p.srv.URL+tt.prefix+"/")) {
					t.Errorf("location %q is not below the endpoint", loc)
				}
				// What CopyTo accepted, GetOperation polls.
				if _, err := c.GetOperation(context.Background(), loc); err != nil {
					t.Errorf("polling the accepted location: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Operation-Location accepted: %q", loc)
			}
			// It says the copy was accepted: the caller must look for it, not assume nothing ran.
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "Operation-Location") || !strings.Contains(err.Error(), "accepted") {
				t.Errorf("err = %v, want an ErrInvalidArgument naming Operation-Location", err)
			}
			if loc != "" {
				t.Errorf("location %q returned with the error", loc)
			}
		})
	}
}

// Polling and paging refuse URLs outside the endpoint's path prefix before sending anything, so
// the credential never goes there.
func TestOriginRespectsPathPrefix(t *testing.T) {
	outside := "/other/documentintelligence/operations/1"
	p := newPrefixServer(t, func(string) string { return "" }, func(h string) string {
		return "http://" + h + "/other/documentintelligence/documentModels?page=2&sig=" + sigSecret
	})
	c, err := New(p.srv.URL+"/di/", Options{Key: secretKey, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("operation URL", func(t *testing.T) {
		_, err := c.GetOperation(context.Background(), p.srv.URL+outside+"?api-version=2024-11-30&sig="+sigSecret)
		noSecrets(t, err)
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("err = %v, want ErrInvalidArgument", err)
		}
	})
	t.Run("nextLink", func(t *testing.T) {
		var ids []string
		var last error
		for m, err := range c.Models(context.Background(), KindModel) {
			if err != nil {
				last = err
				break
			}
			ids = append(ids, m.ID)
		}
		noSecrets(t, last)
		if !errors.Is(last, ErrInvalidArgument) || !strings.Contains(last.Error(), "nextLink") {
			t.Errorf("err = %v, want an ErrInvalidArgument naming nextLink", last)
		}
		check(t, "items before the bad link", strings.Join(ids, ","), "a")
	})
	for _, path := range p.requested() {
		if !strings.HasPrefix(path, "/di/") {
			t.Errorf("a request went outside the endpoint's prefix: %s", path)
		}
	}
}
