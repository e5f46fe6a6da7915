package docintel

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// silentServer accepts TCP connections and never answers (nor closes them until the test ends):
// a resource whose gateway took the request and hung.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// CallTimeout bounds every call, also one whose context already has a (later) deadline: a claim
// lease or a sweep hands its whole remaining time down, and one hung call must not use it all.
func TestCallTimeoutUnderCallerDeadline(t *testing.T) {
	endpoint := "http://" + silentServer(t)
	const callTimeout = 200 * time.Millisecond
	c, err := New(endpoint, Options{Key: secretKey, CallTimeout: callTimeout, Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	opURL := c.OperationURL("31443311833_852f228c")
	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"info", func(ctx context.Context) error { _, err := c.Info(ctx); return err }},
		{"get model", func(ctx context.Context) error { _, err := c.GetModel(ctx, KindModel, "m1"); return err }},
		{"authorize", func(ctx context.Context) error {
			_, err := c.AuthorizeCopy(ctx, KindModel, AuthorizeRequest{TargetID: "m1"})
			return err
		}},
		{"copyTo", func(ctx context.Context) error { _, err := c.CopyTo(ctx, KindModel, "m1", v3Auth()); return err }},
		{"get operation", func(ctx context.Context) error { _, err := c.GetOperation(ctx, opURL); return err }},
		{"list models", func(ctx context.Context) error {
			for _, err := range c.Models(ctx, KindModel) {
				if err != nil {
					return err
				}
			}
			return nil
		}},
		{"delete", func(ctx context.Context) error { return c.DeleteModel(ctx, KindModel, "m1") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// The caller's deadline is far later than CallTimeout; the call must end near the latter.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			err := tt.call(ctx)
			elapsed := time.Since(start)
			if elapsed > 2*time.Second {
				t.Fatalf("call took %s under a caller deadline; CallTimeout %s was not applied", elapsed, callTimeout)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want DeadlineExceeded", err)
			}
			// The caller still has time: our own timeout is worth another try, unlike the caller's.
			if !IsTransient(err) {
				t.Errorf("err = %v: CallTimeout under a live caller context must be transient", err)
			}
			if ctx.Err() != nil {
				t.Error("the caller's context ended; the test proves nothing")
			}
		})
	}
}

// The transport docintel builds bounds each connection and each try on its own: dial, TLS
// handshake and the wait for response headers, so a try that hangs ends even for a caller that
// gave no deadline, and azcore can retry it within the call's.
func TestHTTPClientTimeouts(t *testing.T) {
	hc := defaultHTTPClient()
	tr, ok := hc.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport is %T, want *http.Transport", hc.Transport)
	}
	check(t, "ResponseHeaderTimeout", tr.ResponseHeaderTimeout, ResponseHeaderTimeout)
	check(t, "TLSHandshakeTimeout", tr.TLSHandshakeTimeout, TLSHandshakeTimeout)
	if tr.DialContext == nil {
		t.Error("no DialContext: dials would have no timeout of their own")
	}
	if hc.CheckRedirect == nil {
		t.Error("redirects would be followed (the key header would go to another host)")
	}
	if _, isExported := NewHTTPClient().Transport.(*http.Transport); !isExported {
		t.Error("NewHTTPClient does not build an *http.Transport")
	}

	addr := silentServer(t)
	short := newHTTPClient(transportTimeouts{dial: time.Second, tlsHandshake: 200 * time.Millisecond, responseHeader: 200 * time.Millisecond})
	tests := []struct{ name, url string }{
		{"response headers never come", "http://" + addr + "/formrecognizer/info"},
		{"TLS handshake never answered", "https://" + addr + "/formrecognizer/info"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No deadline on the request: only the transport can end it.
			req, err := http.NewRequest(http.MethodGet, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			done := make(chan error, 1)
			go func() {
				resp, err := short.Do(req)
				if resp != nil {
					_ = resp.Body.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("a silent server answered")
				}
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					t.Errorf("err = %v, want a timeout", err)
				}
				if elapsed := time.Since(start); elapsed > 3*time.Second {
					t.Errorf("gave up after %s", elapsed)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the transport waits forever on a server that never answers")
			}
		})
	}
}
