// Package e2e drives the whole pipeline against the local stack: Azurite (Tables), devbus
// (Service Bus, through the real azservicebus client) and didev (Document Intelligence, through
// the real net/http client), in both hostings of the handlers.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dimirror/dimirror/handlers"
	"github.com/dimirror/dimirror/internal/app"
	"github.com/dimirror/dimirror/internal/devstack"
	"github.com/dimirror/dimirror/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopShared()
	os.Exit(code)
}

// logBuffer collects the app's JSON log lines (and checks them for secrets).
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type env struct {
	t     *testing.T
	stack *devstack.Stack
	app   *app.App
	logs  *logBuffer
	base  string // the standalone API's base URL, when running
}

func startStack(t *testing.T, o devstack.Options) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := devstack.Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &env{t: t, stack: st, logs: &logBuffer{}}
}

// newApp builds dimirror on the stack's settings.
func (e *env) newApp(onListen func(string)) *app.App {
	e.t.Helper()
	cfg, err := e.stack.Config()
	if err != nil {
		e.t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.New(context.Background(), cfg, log, app.Options{OnListen: onListen})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { a.Close(context.Background()) })
	e.app = a
	return a
}

// run starts `dimirror run` in process and waits for its listener.
func (e *env) run() {
	e.t.Helper()
	addr := make(chan string, 1)
	a := e.newApp(func(s string) { addr <- s })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && err != context.Canceled {
			e.t.Errorf("run: %v", err)
		}
	})
	select {
	case s := <-addr:
		e.base = "http://" + s
	case err := <-done:
		e.t.Fatalf("run stopped: %v", err)
	case <-time.After(30 * time.Second):
		e.t.Fatal("run did not listen")
	}
}

// call sends one API request with the stack's API key (unless key is "-").
func (e *env) call(method, path, body, key string) (int, http.Header, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if key == "" {
		key = devstack.APIKey
	}
	if key != "-" {
		req.Header.Set("x-functions-key", key)
	}
	req.Header.Set("Content-Type", "application/json")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

// waitReplicas polls the status API until every replica of the source is terminal.
func (e *env) waitReplicas(kind, id string, within time.Duration) handlers.ReplicationAnswer {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, _, b := e.call("GET", "/api/replications/"+kind+"/"+id, "", "")
		if st == http.StatusOK {
			ans := decode[handlers.ReplicationAnswer](e.t, b)
			done := len(ans.Replicas) > 0
			for _, r := range ans.Replicas {
				if r.Status != "succeeded" && r.Status != "failed" {
					done = false
				}
			}
			if done {
				return ans
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("replicas of %s %s not settled within %s; last answer %d %s", kind, id, within, st, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// assertNoSecrets checks the log for the keys and for access tokens didev issued.
func (e *env) assertNoSecrets() {
	e.t.Helper()
	logs := e.logs.String()
	for _, secret := range []string{devstack.Key, devstack.APIKey, "SharedAccessKey=", "AccountKey=", testenv.AzuriteAccountKey} {
		if strings.Contains(logs, secret) {
			e.t.Errorf("the log holds a secret (%q...)", secret[:4])
		}
	}
	if strings.Contains(logs, `"accessToken"`) {
		e.t.Error("the log holds an accessToken field")
	}
}
