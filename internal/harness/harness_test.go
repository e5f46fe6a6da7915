package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The test binary doubles as a fake `dimirror run` (re-executed by the Instance tests): it
// serves /healthz on DIMIRROR_LISTEN and logs to stderr, or exits at once when told to.
func TestMain(m *testing.M) {
	if os.Getenv("HARNESS_FAKE_DIMIRROR") == "1" {
		fakeDimirror()
		return
	}
	os.Exit(m.Run())
}

func fakeDimirror() {
	if os.Getenv("FAKE_EXIT") != "" {
		fmt.Fprintln(os.Stderr, `{"msg":"start-up failed"}`)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", os.Getenv("DIMIRROR_LISTEN"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s is already in use: %v\n", os.Getenv("DIMIRROR_LISTEN"), err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, `{"msg":"dimirror running","listen":%q,"leak":%q}`+"\n", ln.Addr().String(), os.Getenv("PARENT_ONLY"))
	_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.WriteHeader(http.StatusOK)
		}
	}))
}

func fakeInstance(t *testing.T, extra map[string]string) *Instance {
	t.Helper()
	settings := map[string]string{"HARNESS_FAKE_DIMIRROR": "1"}
	for k, v := range extra {
		settings[k] = v
	}
	return &Instance{Name: "fake", Binary: os.Args[0], Settings: settings, LogDir: t.TempDir()}
}

func TestInstanceLivesKillsAndRestarts(t *testing.T) {
	t.Setenv("PARENT_ONLY", "not for the child")
	in := fakeInstance(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cold, err := in.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cold <= 0 || !in.Running() || in.Pid() == 0 {
		t.Fatalf("cold start %s, running %t, pid %d", cold, in.Running(), in.Pid())
	}
	base := in.Base()
	if _, err := in.Start(ctx); err == nil {
		t.Fatal("a second Start of a running instance must fail")
	}
	if rss := in.SamplePeakRSS(); rss <= 0 {
		t.Errorf("peak RSS %d", rss)
	}
	in.Kill()
	if in.Running() {
		t.Fatal("still running after Kill")
	}
	if _, err := in.Start(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if in.Base() != base {
		t.Errorf("the base URL moved from %s to %s across lives", base, in.Base())
	}
	in.Stop(5 * time.Second)
	u := in.Usage()
	if u.Lives != 2 || u.Crashes != 0 || u.CPU <= 0 || u.PeakRSS <= 0 {
		t.Errorf("usage %+v: want 2 lives, no crash, some CPU and memory", u)
	}
	logs := in.LogFiles()
	if len(logs) != 2 {
		t.Fatalf("log files %v", logs)
	}
	b, err := os.ReadFile(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "dimirror running") || strings.Contains(string(b), "not for the child") {
		t.Errorf("first life's log %q: want the start line and none of the parent's environment", b)
	}
}

func TestInstanceThatExitsIsACrash(t *testing.T) {
	in := fakeInstance(t, map[string]string{"FAKE_EXIT": "1"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := in.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "start-up failed") {
		t.Fatalf("error %v, want ErrExited with the log's tail", err)
	}
	if u := in.Usage(); u.Crashes != 1 {
		t.Errorf("crashes %d, want 1", u.Crashes)
	}
}

func TestInstanceMovesOffATakenPort(t *testing.T) {
	in := fakeInstance(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := in.Start(ctx); err != nil {
		t.Fatal(err)
	}
	in.Kill()
	// Someone else takes the port between two lives.
	ln, err := net.Listen("tcp", strings.TrimPrefix(in.Base(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := in.Start(ctx); err != nil {
		t.Fatalf("restart on a taken port: %v", err)
	}
	defer in.Stop(5 * time.Second)
	if in.Base() == "http://"+ln.Addr().String() {
		t.Error("the instance kept the taken port")
	}
}

func TestSummarize(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	tests := []struct {
		in            []time.Duration
		p50, p95, max time.Duration
	}{
		{nil, 0, 0, 0},
		{ms(7), 7 * time.Millisecond, 7 * time.Millisecond, 7 * time.Millisecond},
		{ms(5, 1, 4, 2, 3), 3 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), 10 * time.Millisecond, 19 * time.Millisecond, 20 * time.Millisecond},
	}
	for _, tt := range tests {
		s := Summarize(tt.in)
		if s.N != len(tt.in) || s.P50 != tt.p50 || s.P95 != tt.p95 || s.Max != tt.max {
			t.Errorf("Summarize(%v) = %+v, want p50 %s p95 %s max %s", tt.in, s, tt.p50, tt.p95, tt.max)
		}
	}
	if s := Summarize(ms(3, 1)); s.Min != time.Millisecond || s.Mean != 2*time.Millisecond {
		t.Errorf("min/mean %+v", s)
	}
}

func TestSecretsScan(t *testing.T) {
	token := "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"[:43]
	other := strings.Repeat("A", 43) // token-shaped, but not a token didev issued
	dir := t.TempDir()
	log := filepath.Join(dir, "a.log")
	lines := []string{
		`{"msg":"authorized","targetId":"m1"}`,
		`{"msg":"bad","key":"devkey-123"}`,
		`{"msg":"op","operation":"` + other + `"}`,
		`{"msg":"leak","x":"` + token + `"}`,
		`{"msg":"body","accessToken":"redacted"}`,
		`{"msg":"conn","cs":"Endpoint=sb://h;SharedAccessKeyName=a;SharedAccessKey=b"}`,
	}
	if err := os.WriteFile(log, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := Secrets{Literals: []string{"devkey", "SharedAccessKey="}, TokenHashes: map[string]bool{hashToken(token): true}}
	got, err := s.Scan([]string{log})
	if err != nil {
		t.Fatal(err)
	}
	wantLines := map[int]bool{2: true, 4: true, 5: true, 6: true}
	if len(got) != len(wantLines) {
		t.Fatalf("findings %v, want lines 2, 4, 5 and 6", got)
	}
	for _, f := range got {
		if !wantLines[f.Line] {
			t.Errorf("unexpected finding %s", f)
		}
		if strings.Contains(f.String(), token) || strings.Contains(f.String(), "devkey") {
			t.Errorf("a finding repeats the secret: %s", f)
		}
	}
	if _, err := s.Scan([]string{filepath.Join(dir, "missing.log")}); err == nil {
		t.Error("a missing log must be an error, not a clean scan")
	}
}

func TestTokenHashes(t *testing.T) {
	dir := t.TempDir()
	h1, h2 := hashToken("one"), hashToken("two")
	state, _ := json.Marshal(map[string]any{"resources": map[string]any{"eastus": map[string]any{"auths": map[string]any{h1: map[string]string{"hash": h1}}}}})
	if err := os.WriteFile(filepath.Join(dir, "state.json"), state, 0o600); err != nil {
		t.Fatal(err)
	}
	journal := `{"auth":{"id":"x","hash":"` + h2 + `","state":"pending"}}` + "\n" + `{"torn":`
	if err := os.WriteFile(filepath.Join(dir, "journal.jsonl"), []byte(journal), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := TokenHashes(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[h1] || !got[h2] {
		t.Errorf("hashes %v, want both", got)
	}
	if got, err := TokenHashes(t.TempDir()); err != nil || len(got) != 0 {
		t.Errorf("empty dir: %v %v", got, err)
	}
}

func TestClientRetriesAnotherInstance(t *testing.T) {
	var calls atomic.Int32
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer busy.Close()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("x-functions-key") != "k" || r.URL.Path != "/api/replications" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, `{"kind":"model","sourceId":"m1","replicas":[{"target":"eastus","status":"pending"}]}`)
	}))
	defer ok.Close()
	dead := "http://" + deadAddr(t)
	c := NewClient("k", func() []string { return []string{dead, busy.URL, ok.URL} })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	acc, err := c.Replicate(ctx, "model", "m1")
	if err != nil {
		t.Fatal(err)
	}
	if acc.Status != http.StatusAccepted || acc.Answer.SourceID != "m1" || len(acc.Answer.Replicas) != 1 || acc.At.Before(acc.Sent) {
		t.Errorf("answer %+v", acc)
	}
	if calls.Load() != 1 {
		t.Errorf("the busy instance was asked %d times, want once", calls.Load())
	}
}

func TestClientStopsOnAPermanentAnswer(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":{"code":"InvalidRequest"}}`)
	}))
	defer srv.Close()
	c := NewClient("k", func() []string { return []string{srv.URL} })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Replicate(ctx, "model", "m1"); err == nil || !strings.Contains(err.Error(), "HTTP 400") {
		t.Fatalf("error %v, want the 400", err)
	}
	if calls.Load() != 1 {
		t.Errorf("asked %d times, want once", calls.Load())
	}
}

func TestClientGivesUpWithTheContext(t *testing.T) {
	dead := "http://" + deadAddr(t)
	c := NewClient("k", func() []string { return []string{dead} })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.Replicate(ctx, "model", "m1"); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("error %v, want the context's", err)
	}
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
