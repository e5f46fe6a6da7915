// Package jsclient runs the official JavaScript Service Bus SDK (@azure/service-bus, whose
// AMQP layer is rhea) against devbus: suite.js, under Node.js, with the SDK installed from
// the repository's package-lock.json (`npm ci` at the root; `make test` does it). A missing
// node or SDK fails the test rather than skipping it: the suite is how devbus's claim to
// work with clients other than Go's is kept true.
package jsclient

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/emulators/devbus"
	"github.com/dimirror/dimirror/internal/syncbuf"
)

// suiteTimeout bounds the whole node run; the checks take about 20 s together, and each
// is bounded by 30 s inside the script.
const suiteTimeout = 4 * time.Minute

// checks are the names suite.js reports; one missing from its output is a failure too
// (the script died or skipped it).
var checks = []string{
	"send-single-and-batch",
	"receive-and-delete",
	"peek-lock-complete",
	"abandon",
	"dead-letter",
	"duplicate-detection",
	"schedule-and-cancel",
	"renew-lock",
	"peek",
	"deferral",
	"competing-receivers",
	"properties",
	"sessions-refused",
	"topics-refused",
}

// result is one line of the script's output.
type result struct {
	Check string `json:"check"`
	OK    bool   `json:"ok"`
	MS    int    `json:"ms"`
	Error string `json:"error"`
	Note  string `json:"note"`
	Done  bool   `json:"done"`
}

func TestJavaScriptSDK(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed (Node.js 18 or later is required, as for Azurite): %v", err)
	}
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "node_modules", "@azure", "service-bus", "package.json")); err != nil {
		t.Fatalf("@azure/service-bus is not installed: run `npm ci` at the repository root (make test does): %v", err)
	}

	var logs syncbuf.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), suiteTimeout)
	defer cancel()
	b, err := devbus.Start(ctx, devbus.Options{
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatalf("devbus.Start: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("devbus Close: %v", err)
		}
	})

	cmd := exec.CommandContext(ctx, node, "suite.js")
	cmd.Env = append(os.Environ(), "DEVBUS_CONNECTION_STRING="+b.ConnectionString())
	cmd.WaitDelay = 5 * time.Second // a hung child's pipes do not hold the test past the deadline
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting node: %v", err)
	}
	got := map[string]result{}
	done := false
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Errorf("unexpected output from suite.js: %q", sc.Text())
			continue
		}
		switch {
		case r.Done:
			done = true
		case r.OK:
			got[r.Check] = r
			t.Logf("ok   %-22s %5d ms %s", r.Check, r.MS, r.Note)
		default:
			got[r.Check] = r
			t.Errorf("FAIL %s (%d ms): %s", r.Check, r.MS, r.Error)
		}
	}
	waitErr := cmd.Wait()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Errorf("suite.js did not finish within %s", suiteTimeout)
	}
	for _, name := range checks {
		if _, ok := got[name]; !ok {
			t.Errorf("check %s never reported", name)
		}
	}
	for name := range got {
		if !contains(checks, name) {
			t.Errorf("suite.js reported check %s, which this test does not list", name)
		}
	}
	if !done || (waitErr != nil && !t.Failed()) {
		t.Errorf("suite.js did not finish cleanly (finished: %v, exit: %v)", done, waitErr)
	}

	// What devbus saw must agree with what the SDK reported.
	if st, err := b.QueueStats("js-competing-receivers"); err != nil {
		t.Errorf("QueueStats: %v", err)
	} else if st.Enqueued != 100 || st.Delivered != 100 || st.Completed != 100 || st.Active+st.Locked != 0 {
		t.Errorf("competing receivers: devbus counted enqueued %d, delivered %d, completed %d, left %d; want 100, 100, 100, 0",
			st.Enqueued, st.Delivered, st.Completed, st.Active+st.Locked)
	}
	if st, err := b.QueueStats("js-dead-letter"); err != nil {
		t.Errorf("QueueStats: %v", err)
	} else if st.TotalDeadLetters != 1 || st.DeadLettered != 0 {
		t.Errorf("dead-letter: devbus counted %d dead letters, %d left; want 1 and 0 (completed from the dead-letter queue)",
			st.TotalDeadLetters, st.DeadLettered)
	}
	if st, err := b.QueueStats("js-duplicate-detection"); err != nil {
		t.Errorf("QueueStats: %v", err)
	} else if st.Duplicates != 1 {
		t.Errorf("duplicate detection: devbus dropped %d duplicates, want 1", st.Duplicates)
	}

	if t.Failed() {
		t.Logf("node stderr:\n%s", stderr.String())
		t.Logf("devbus log:\n%s", logs.String())
	}
}

// repoRoot is the directory holding go.mod, where node_modules is installed.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", dir)
		}
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if strings.EqualFold(e, s) {
			return true
		}
	}
	return false
}
