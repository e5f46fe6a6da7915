package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/internal/syncbuf"
)

func TestFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no resource", []string{"-key", "k"}, "at least one -resource"},
		{"no key", []string{"-resource", "a=127.0.0.1:0"}, "-key KEY"},
		{"bad resource", []string{"-resource", "source", "-key", "k"}, `invalid value "source" for flag -resource`},
		{"bad resource shows the form", []string{"-resource", "a=localhost", "-key", "k"}, "NAME=HOST:PORT[,region=REGION][,encrypted][,max-models=N]"},
		{"bad seed", []string{"-resource", "a=127.0.0.1:0", "-key", "k", "-seed", "a:widget:x1"}, "invalid value"},
		{"seed of an unknown resource", []string{"-resource", "a=127.0.0.1:0", "-key", "k", "-seed", "b:model:m1"}, "unknown resource"},
		{"bad rate", []string{"-resource", "a=127.0.0.1:0", "-key", "k", "-rate", "fast"}, "flag -rate"},
		{"bad fault", []string{"-resource", "a=127.0.0.1:0", "-key", "k", "-fault", "reset=2"}, `invalid value "reset=2" for flag -fault`},
		{"negative duration", []string{"-resource", "a=127.0.0.1:0", "-key", "k", "-copy-duration", "-1s"}, "-copy-duration"},
		{"stray argument", []string{"-resource", "a=127.0.0.1:0", "-key", "k", "extra"}, "unexpected argument"},
		{"unknown flag", []string{"-colour"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), tt.args, io.Discard, &stderr)
			if err == nil {
				t.Fatal("run succeeded")
			}
			if msg := err.Error() + stderr.String(); !strings.Contains(msg, tt.want) {
				t.Errorf("error %q (stderr %q), want %q", err, stderr.String(), tt.want)
			}
		})
	}
}

// startRun runs didev with args until the returned cancel is called, and returns the endpoints
// it printed.
func startRun(t *testing.T, args []string) (map[string]string, func() error, *syncbuf.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	logs := &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() {
		err := run(ctx, args, pw, logs)
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	line := regexp.MustCompile(`^didev: resource (\S+) endpoint (http://\S+) region (\S+)$`)
	endpoints := map[string]string{}
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if sc.Text() == "didev: ready" {
			break
		}
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("unexpected output %q", sc.Text())
		}
		endpoints[m[1]] = m[2] + " " + m[3]
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("didev did not shut down")
			return nil
		}
	}
	t.Cleanup(func() { cancel() })
	return endpoints, stop, logs
}

func TestRunServesAndShutsDownCleanly(t *testing.T) {
	dir := t.TempDir()
	args := []string{
		"-resource", "source=127.0.0.1:0", "-resource", "westus2=127.0.0.1:0,encrypted",
		"-key", "devkey", "-seed", "source:model:invoice-v1", "-seed", "source:classifier:router-v1",
		"-copy-duration", "50ms", "-data", dir, "-log-level", "DEBUG",
	}
	endpoints, stop, logs := startRun(t, args)
	if len(endpoints) != 2 || !strings.HasSuffix(endpoints["source"], " eastus") || !strings.HasSuffix(endpoints["westus2"], " westus2") {
		t.Fatalf("endpoints %v", endpoints)
	}
	src := strings.Fields(endpoints["source"])[0]
	get := func(base, path string) int {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Ocp-Apim-Subscription-Key", "devkey")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(src, "/documentintelligence/documentModels/invoice-v1?api-version=2024-11-30"); got != 200 {
		t.Errorf("seeded model: %d", got)
	}
	if got := get(src, "/documentintelligence/documentClassifiers/router-v1?api-version=2024-11-30"); got != 200 {
		t.Errorf("seeded classifier: %d", got)
	}
	if err := stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if !strings.Contains(logs.String(), "didev: request") || strings.Contains(logs.String(), "devkey") {
		t.Errorf("logs: request lines missing or the key logged:\n%s", logs.String())
	}
	// The data dir survives: a restart without seeds still has them.
	endpoints, stop, _ = startRun(t, []string{"-resource", "source=127.0.0.1:0", "-key", "devkey", "-data", dir})
	if got := get(strings.Fields(endpoints["source"])[0], "/documentintelligence/documentModels/invoice-v1?api-version=2024-11-30"); got != 200 {
		t.Errorf("after restart: %d", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
