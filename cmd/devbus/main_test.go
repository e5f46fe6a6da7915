package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
)

// TestMain lets the test binary stand in for the devbus binary in TestSignalStopsCleanly.
func TestMain(m *testing.M) {
	if os.Getenv("DEVBUS_TEST_RUN_MAIN") == "1" {
		os.Args = append([]string{"devbus"}, strings.Fields(os.Getenv("DEVBUS_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestFlagErrorsNameTheFlag(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-queue", "q,lock=soon"}, "-queue"},
		{[]string{"-queue", "q,colour=blue"}, `unknown setting "colour"`},
		{[]string{"-queue", "bad name"}, "-queue"},
		{[]string{"-listen", "nowhere"}, "-listen"},
		{[]string{"-log-level", "loud"}, "-log-level"},
		{[]string{"-bogus"}, "-bogus"},
		{[]string{"stray"}, `unexpected argument "stray"`},
		{[]string{"-queue", "dup", "-queue", "DUP"}, "declared twice"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), tc.args, io.Discard, &stderr)
			if err == nil {
				t.Fatal("run succeeded")
			}
			if msg := err.Error() + stderr.String(); !strings.Contains(msg, tc.want) {
				t.Errorf("error %q (stderr %q) does not mention %q", err, stderr.String(), tc.want)
			}
		})
	}
}

// lineWriter lets the test wait for a line of output.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
	once  sync.Once
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), "devbus: ready\n") {
		w.once.Do(func() { close(w.ready) })
	}
	return len(p), nil
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestRunServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &lineWriter{ready: make(chan struct{})}
	done := make(chan error, 1)
	dir := t.TempDir()
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-queue", "copy-requests,max-delivery=10,lock=60s,dup-window=10m",
			"-queue", "other", "-data", dir, "-log-level", "warn"}, out, io.Discard)
	}()
	select {
	case <-out.ready:
	case err := <-done:
		t.Fatalf("run ended early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no ready line")
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "devbus: listening on 127.0.0.1:") ||
		!strings.HasPrefix(lines[1], "devbus: connection string: Endpoint=sb://127.0.0.1:") ||
		!strings.HasSuffix(lines[1], ";SharedAccessKeyName=dev;SharedAccessKey=dev;UseDevelopmentEmulator=true") {
		t.Fatalf("output:\n%s", out.String())
	}

	// The printed connection string works with the SDK.
	connStr := strings.TrimPrefix(lines[1], "devbus: connection string: ")
	client, err := azservicebus.NewClientFromConnectionString(connStr, nil)
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
	defer scancel()
	sender, err := client.NewSender("copy-requests", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sender.SendMessage(sctx, &azservicebus.Message{Body: []byte("hi")}, nil); err != nil {
		t.Fatal(err)
	}
	_ = client.Close(sctx)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
	if !strings.Contains(out.String(), "devbus: stopping") {
		t.Errorf("no stopping line:\n%s", out.String())
	}
	if _, err := os.Stat(dir + "/copy-requests.journal"); err != nil {
		t.Errorf("no journal for the declared queue: %v", err)
	}
}

func TestSignalStopsCleanly(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "DEVBUS_TEST_RUN_MAIN=1", "DEVBUS_TEST_ARGS=-listen 127.0.0.1:0 -queue jobs")
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(stdout)
			var lines []string
			for sc.Scan() {
				lines = append(lines, sc.Text())
				if sc.Text() == "devbus: ready" {
					break
				}
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			for sc.Scan() {
				lines = append(lines, sc.Text())
			}
			waitErr := make(chan error, 1)
			go func() { waitErr <- cmd.Wait() }()
			select {
			case err := <-waitErr:
				if err != nil {
					t.Fatalf("devbus exited with %v; output %q", err, lines)
				}
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatal("devbus did not stop on the signal")
			}
			if got := lines[len(lines)-1]; got != "devbus: stopping" {
				t.Errorf("last line %q; output %q", got, lines)
			}
		})
	}
}
