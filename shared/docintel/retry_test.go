package docintel

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// scriptedServer answers the n-th request with script[n] (the last entry repeats) and records
// when each request arrived and what it carried.
type scriptedServer struct {
	srv    *httptest.Server
	mu     sync.Mutex
	script []cannedResponse
	at     []time.Time
	reqs   []captured
}

func newScriptedServer(t *testing.T, script ...cannedResponse) *scriptedServer {
	s := &scriptedServer{script: script}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		n := len(s.at)
		s.at = append(s.at, time.Now())
		s.reqs = append(s.reqs, captured{method: r.Method, path: r.URL.Path, query: r.URL.Query(), header: r.Header.Clone(), body: body})
		a := s.script[min(n, len(s.script)-1)]
		s.mu.Unlock()
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(a.status)
		_, _ = w.Write(a.body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *scriptedServer) requests() []captured {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]captured(nil), s.reqs...)
}

func (s *scriptedServer) attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.at)
}

func (s *scriptedServer) gaps() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Duration
	for i := 1; i < len(s.at); i++ {
		out = append(out, s.at[i].Sub(s.at[i-1]))
	}
	return out
}

const infoOK = `{"customDocumentModels":{"count":1,"limit":500}}`

func answer(status int, body string, header ...string) cannedResponse {
	h := map[string]string{"Content-Type": "application/json", "apim-request-id": "req-1"}
	for i := 0; i+1 < len(header); i += 2 {
		h[header[i]] = header[i+1]
	}
	return cannedResponse{status: status, header: h, body: []byte(body)}
}

func TestRetry(t *testing.T) {
	throttled := `{"error":{"code":"429","message":"Requests to the GetInfo Operation under Form Recognizer API have exceeded rate limit. Please retry after 1 second."}}`
	tests := []struct {
		name         string
		retry        policy.RetryOptions
		script       []cannedResponse
		wantAttempts int
		wantErr      func(error) bool // nil: success
		minGap       time.Duration    // lower bound between the first two attempts
	}{
		{name: "429 honours Retry-After 1s", retry: policy.RetryOptions{RetryDelay: time.Millisecond, MaxRetryDelay: 2 * time.Second}, minGap: 900 * time.Millisecond, wantAttempts: 2,
			script: []cannedResponse{answer(429, throttled, "Retry-After", "1"), answer(200, infoOK)}},
		{name: "429 Retry-After beyond MaxRetryDelay is not retried", retry: policy.RetryOptions{RetryDelay: time.Millisecond, MaxRetryDelay: time.Second},
			script: []cannedResponse{answer(429, throttled, "Retry-After", "120")}, wantAttempts: 1,
			wantErr: func(err error) bool {
				e, ok := asError(err)
				return ok && IsThrottled(err) && IsTransient(err) && e.RetryAfter == 120*time.Second && e.Code == "429"
			}},
		{name: "503 with Retry-After 0 retried", retry: fastRetry, wantAttempts: 2,
			script: []cannedResponse{answer(503, `{"error":{"code":"ServiceUnavailable","message":"busy"}}`, "Retry-After", "0"), answer(200, infoOK)}},
		{name: "408 retried", retry: fastRetry, wantAttempts: 2,
			script: []cannedResponse{answer(408, ""), answer(200, infoOK)}},
		{name: "500 until retries run out", retry: policy.RetryOptions{MaxRetries: 2, RetryDelay: time.Millisecond, MaxRetryDelay: time.Millisecond},
			script: []cannedResponse{answer(500, `{"error":{"code":"InternalServerError","message":"boom"}}`)}, wantAttempts: 3,
			wantErr: func(err error) bool { return IsTransient(err) && !IsThrottled(err) }},
		{name: "default is 4 retries", retry: policy.RetryOptions{RetryDelay: time.Millisecond, MaxRetryDelay: time.Millisecond},
			script: []cannedResponse{answer(502, "bad gateway")}, wantAttempts: 5, wantErr: IsTransient},
		{name: "negative MaxRetries disables retries", retry: policy.RetryOptions{MaxRetries: -1},
			script: []cannedResponse{answer(503, "")}, wantAttempts: 1, wantErr: IsTransient},
		{name: "400 not retried", retry: fastRetry, script: []cannedResponse{answer(400, `{"error":{"code":"InvalidRequest","message":"no"}}`)}, wantAttempts: 1,
			wantErr: func(err error) bool { return IsBadRequest(err) && !IsTransient(err) }},
		{name: "401 not retried", retry: fastRetry, script: []cannedResponse{answer(401, `{"error":{"code":"401","message":"Access denied"}}`)}, wantAttempts: 1,
			wantErr: func(err error) bool { return IsUnauthorized(err) && !IsTransient(err) }},
		{name: "403 not retried", retry: fastRetry, script: []cannedResponse{answer(403, `{"error":{"code":"Forbidden","message":"no","innererror":{"code":"AuthorizationFailed","message":"rbac"}}}`)}, wantAttempts: 1,
			wantErr: func(err error) bool { return IsForbidden(err) && !IsTransient(err) && !IsAuthorizationInvalid(err) }},
		{name: "404 not retried", retry: fastRetry, script: []cannedResponse{answer(404, `{"error":{"code":"404","message":"Resource not found"}}`)}, wantAttempts: 1,
			wantErr: func(err error) bool { return IsNotFound(err) && !IsTransient(err) }},
		{name: "409 not retried", retry: fastRetry, script: []cannedResponse{answer(409, `{"error":{"code":"Conflict","message":"c","innererror":{"code":"ModelExists","message":"exists"}}}`)}, wantAttempts: 1,
			wantErr: func(err error) bool { return IsModelExists(err) && !IsTransient(err) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScriptedServer(t, tt.script...)
			c, err := New(s.srv.URL, Options{Key: "retry-key-0123456789", Retry: tt.retry})
			if err != nil {
				t.Fatal(err)
			}
			info, err := c.Info(context.Background())
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("err = %v", err)
			case tt.wantErr == nil && info.CustomModelLimit != 500:
				t.Errorf("info = %+v", info)
			case tt.wantErr != nil && !tt.wantErr(err):
				t.Errorf("err = %v: predicate false", err)
			}
			check(t, "attempts", s.attempts(), tt.wantAttempts)
			if tt.minGap > 0 {
				if g := s.gaps(); len(g) == 0 || g[0] < tt.minGap {
					t.Errorf("gaps between attempts %v, want the first ≥ %s", g, tt.minGap)
				}
			}
		})
	}
}

// A retried POST carries its body again.
func TestRetryResendsBody(t *testing.T) {
	auth := `{"targetResourceId":"r","targetResourceRegion":"westus2","targetModelId":"t1","targetModelLocation":"l","accessToken":"tok-123456","expirationDateTime":"2030-01-01T00:00:00Z"}`
	s := newScriptedServer(t, answer(503, ""), answer(200, auth))
	c, err := New(s.srv.URL, Options{Key: "retry-key-0123456789", Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AuthorizeCopy(context.Background(), KindModel, AuthorizeRequest{TargetID: "t1"}); err != nil {
		t.Fatal(err)
	}
	reqs := s.requests()
	if len(reqs) != 2 || string(reqs[0].body) != `{"modelId":"t1"}` || string(reqs[1].body) != string(reqs[0].body) {
		t.Errorf("bodies = %q, %q", reqs[0].body, reqs[len(reqs)-1].body)
	}
}

// copyTo spends its authorization: the client may send it again only after a 429, which the
// service refused unread. After a 5xx or a lost answer the copy may have started, so the error
// goes back to the caller (transient), which looks for the operation before sending it again.
func TestCopyToRetriesOnlyThrottling(t *testing.T) {
	accepted := func(base string) cannedResponse {
		return answer(202, "", "Operation-Location", base+"/documentintelligence/operations/31533456_abc?api-version=2024-11-30")
	}
	tests := []struct {
		name         string
		first        func(base string) cannedResponse
		hangUp       bool // the first request is read, then the connection dropped unanswered
		wantAttempts int
		wantErr      func(error) bool // nil: success
	}{
		{name: "429 retried", first: func(string) cannedResponse {
			return answer(429, `{"error":{"code":"429","message":"slow down"}}`, "Retry-After", "0")
		}, wantAttempts: 2},
		{name: "500 not retried", first: func(string) cannedResponse {
			return answer(500, `{"error":{"code":"InternalServerError","message":"boom"}}`)
		}, wantAttempts: 1, wantErr: IsTransient},
		{name: "503 not retried", first: func(string) cannedResponse { return answer(503, "") }, wantAttempts: 1, wantErr: IsTransient},
		{name: "408 not retried", first: func(string) cannedResponse { return answer(408, "") }, wantAttempts: 1, wantErr: IsTransient},
		{name: "lost answer not retried", hangUp: true, wantAttempts: 1, wantErr: IsTransient},
	}
	auth := &Authorization{Kind: KindModel, Body: []byte(`{"targetResourceId":"r","targetResourceRegion":"westus2","targetModelId":"t1","targetModelLocation":"l","accessToken":"tok-copy-0123456789","expirationDateTime":"2030-01-01T00:00:00Z"}`)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu    sync.Mutex
				calls int
			)
			srv := httptest.NewServer(nil)
			t.Cleanup(srv.Close)
			srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.ReadAll(r.Body)
				mu.Lock()
				calls++
				n := calls
				mu.Unlock()
				a := accepted(srv.URL)
				if n == 1 && tt.hangUp {
					conn, _, err := w.(http.Hijacker).Hijack()
					if err == nil {
						_ = conn.Close()
					}
					return
				}
				if n == 1 {
					a = tt.first(srv.URL)
				}
				for k, v := range a.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(a.status)
				_, _ = w.Write(a.body)
			})
			c, err := New(srv.URL, Options{Key: "copy-key-0123456789", Retry: fastRetry})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.CopyTo(context.Background(), KindModel, "m1", auth)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("err = %v", err)
			case tt.wantErr != nil && !tt.wantErr(err):
				t.Errorf("err = %v: predicate false", err)
			}
			mu.Lock()
			defer mu.Unlock()
			check(t, "copyTo requests", calls, tt.wantAttempts)
		})
	}
	// Other calls keep the full retry: a GET after a 500 is tried again.
	s := newScriptedServer(t, answer(500, ""), answer(200, infoOK))
	c, err := New(s.srv.URL, Options{Key: "copy-key-0123456789", Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	check(t, "info requests", s.attempts(), 2)
}

func TestDeadlines(t *testing.T) {
	// The server holds every request until the client gives up.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(hang.Close)

	t.Run("caller deadline", func(t *testing.T) {
		c, err := New(hang.URL, Options{Key: "deadline-key-0123456789", CallTimeout: time.Minute, Retry: fastRetry})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = c.Info(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
		if IsTransient(err) {
			t.Error("the caller's own deadline reported as transient")
		}
		if time.Since(start) > 30*time.Second {
			t.Error("the caller's deadline was not respected")
		}
	})
	t.Run("CallTimeout when the context has none", func(t *testing.T) {
		c, err := New(hang.URL, Options{Key: "deadline-key-0123456789", CallTimeout: 100 * time.Millisecond, Retry: fastRetry})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Info(context.Background())
		if !errors.Is(err, context.DeadlineExceeded) || !IsTransient(err) {
			t.Fatalf("err = %v, want a transient DeadlineExceeded", err)
		}
	})
	t.Run("canceled caller", func(t *testing.T) {
		c, err := New(hang.URL, Options{Key: "deadline-key-0123456789", Retry: fastRetry})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err = c.GetModel(ctx, KindModel, "m1")
		if !errors.Is(err, context.Canceled) || IsTransient(err) {
			t.Fatalf("err = %v, want a non-transient Canceled", err)
		}
	})
}

func TestBearerToken(t *testing.T) {
	s := newScriptedServer(t, answer(200, infoOK))
	cred := &fakeCredential{token: "bearer-token-0123456789"}
	c, err := New(s.srv.URL, Options{Credential: cred, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := s.requests()[0].header
	check(t, "Authorization", h.Get("Authorization"), "Bearer bearer-token-0123456789")
	check(t, "key header", h.Get(keyHeader), "")
	if got := cred.scopes(); len(got) != 1 || !slices.Equal(got[0], []string{"https://cognitiveservices.azure.com/.default"}) {
		t.Errorf("scopes = %v", got)
	}
	if ua := h.Get("User-Agent"); !strings.HasPrefix(ua, "dimirror azsdk-go-docintel/") {
		t.Errorf("User-Agent = %q", ua)
	}
}

func TestKeyHeader(t *testing.T) {
	s := newScriptedServer(t, answer(200, infoOK))
	c, err := New(s.srv.URL, Options{Key: "key-0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := s.requests()[0].header
	check(t, "key header", h.Get(keyHeader), "key-0123456789abcdef")
	check(t, "Authorization", h.Get("Authorization"), "")
	check(t, "Accept", h.Get("Accept"), "application/json")
}

// The default transport must not follow a redirect: net/http would forward the key header to the
// redirect's host.
func TestRedirectNotFollowed(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("redirect followed; key header %q", r.Header.Get(keyHeader))
	}))
	t.Cleanup(other.Close)
	s := newScriptedServer(t, answer(http.StatusTemporaryRedirect, "", "Location", other.URL+"/steal"))
	c, err := New(s.srv.URL, Options{Key: "redirect-key-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Info(context.Background())
	e, ok := asError(err)
	if !ok || e.StatusCode != http.StatusTemporaryRedirect {
		t.Fatalf("err = %v, want the 307 as an *Error", err)
	}
}
