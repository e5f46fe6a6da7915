package app

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/dimirror/dimirror"
	"github.com/dimirror/dimirror/handlers"
	"github.com/dimirror/dimirror/shared/funcdef"
)

var discard = slog.New(slog.DiscardHandler)

// A stop while a timer pass runs returns within the grace: a pass that ends within it is left
// to finish, a longer one is cancelled.
func TestStopDuringATimerPass(t *testing.T) {
	const grace = 300 * time.Millisecond
	tests := []struct {
		name          string
		pass          time.Duration
		wantCancelled bool
	}{
		{"short pass finishes", 100 * time.Millisecond, false},
		{"long pass is cancelled", 10 * time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			started := make(chan struct{}, 1)
			var cancelled, finished atomic.Bool
			job := timerJob{name: "sweep", spec: "@every 1s", schedule: cron.Every(time.Second), timeout: time.Hour,
				run: func(ctx context.Context) (string, error) {
					select {
					case started <- struct{}{}:
					default:
					}
					select {
					case <-time.After(tt.pass):
						finished.Store(true)
						return "done", nil
					case <-ctx.Done():
						cancelled.Store(true)
						return "", ctx.Err()
					}
				}}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- runTimers(ctx, []timerJob{job}, grace, discard) }()
			select {
			case <-started:
			case <-time.After(5 * time.Second):
				t.Fatal("the timer never ran")
			}
			stop := time.Now()
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(grace + 2*time.Second):
				t.Fatalf("the stop did not return within %s", grace+2*time.Second)
			}
			if took := time.Since(stop); took > grace+time.Second {
				t.Errorf("the stop took %s", took)
			}
			if cancelled.Load() != tt.wantCancelled || finished.Load() == tt.wantCancelled {
				t.Errorf("cancelled %v, finished %v", cancelled.Load(), finished.Load())
			}
		})
	}
}

// startServer runs serveHTTP on a loopback port with lim; stop ends it and reports how long
// the stop took.
func startServer(t *testing.T, h http.Handler, lim serverLimits, grace time.Duration) (addr string, stop func() time.Duration) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveHTTP(ctx, ln, h, lim, grace, discard) }()
	stopped := false
	stop = func() time.Duration {
		if stopped {
			return 0
		}
		stopped = true
		begin := time.Now()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serveHTTP: %v", err)
		}
		return time.Since(begin)
	}
	t.Cleanup(func() { stop() })
	return ln.Addr().String(), stop
}

// Each limit of the servers holds: header size, slow headers, slow answers, idle connections.
func TestServerLimits(t *testing.T) {
	lim := serverLimits{ReadHeader: 300 * time.Millisecond, Read: time.Second, Write: 300 * time.Millisecond,
		Idle: 300 * time.Millisecond, MaxHeaderBytes: 4 << 10}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(800 * time.Millisecond)
		}
		io.WriteString(w, "ok")
	})
	addr, _ := startServer(t, h, lim, time.Second)
	// closedWithin reads from conn until the server closes it, failing past d.
	closedWithin := func(t *testing.T, conn net.Conn, d time.Duration) {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(d))
		_, err := io.Copy(io.Discard, conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("the connection was still open after %s", d)
		}
	}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"header too large", func(t *testing.T) {
			req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
			req.Header.Set("X-Big", strings.Repeat("a", 16<<10))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("status %d, want 431", resp.StatusCode)
			}
		}},
		{"slow headers", func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n") // never finishes the headers
			closedWithin(t, conn, lim.ReadHeader+2*time.Second)
		}},
		{"slow answer", func(t *testing.T) {
			resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get("http://" + addr + "/slow")
			if err == nil {
				body, rerr := io.ReadAll(resp.Body)
				resp.Body.Close()
				if rerr == nil {
					t.Errorf("an answer past the write timeout arrived: %d %q", resp.StatusCode, body)
				}
			}
		}},
		{"idle connection", func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			closedWithin(t, conn, lim.Idle+2*time.Second)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// A stop gives a request in progress the grace, then cancels it.
func TestStopCancelsRequestsAfterTheGrace(t *testing.T) {
	const grace = 300 * time.Millisecond
	started := make(chan struct{})
	var cancelled atomic.Bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			cancelled.Store(true)
		case <-time.After(time.Minute):
		}
	})
	addr, stop := startServer(t, h, serverLimits{Write: time.Minute}, grace)
	go func() {
		if resp, err := http.Get("http://" + addr + "/"); err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	if took := stop(); took > grace+time.Second {
		t.Errorf("the stop took %s", took)
	}
	deadline := time.Now().Add(2 * time.Second)
	for !cancelled.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !cancelled.Load() {
		t.Error("the request's context was not cancelled")
	}
}

// The servers' limits follow the function table: no function is cut off by a write timeout.
func TestLimitsFollowTheTable(t *testing.T) {
	table := (&handlers.Functions{}).Table()
	tests := []struct {
		name string
		lim  serverLimits
		// the functions whose invocations the server waits for
		serves func(handlers.Function) bool
	}{
		{"standalone API", apiLimits(table), func(f handlers.Function) bool { return f.Trigger == funcdef.HTTPTrigger }},
		{"custom handler", customHandlerLimits(table), func(handlers.Function) bool { return true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.lim.ReadHeader <= 0 || tt.lim.Read <= 0 || tt.lim.Idle <= 0 || tt.lim.MaxHeaderBytes <= 0 {
				t.Errorf("a limit is unset: %+v", tt.lim)
			}
			for _, f := range table {
				if tt.serves(f) && tt.lim.Write < f.Timeout+writeMargin {
					t.Errorf("write timeout %s cuts %s (timeout %s) off", tt.lim.Write, f.Name, f.Timeout)
				}
			}
		})
	}
}

// run reads the queue and the timers' schedules from the function definitions.
func TestRunReadsTheDefinitions(t *testing.T) {
	fns := &handlers.Functions{}
	defs, err := fns.Check(dimirror.Functions)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{"DIMIRROR_QUEUE": "copy-requests", "DIMIRROR_POLL_SCHEDULE": "*/5 * * * * *",
		"DIMIRROR_WATCH_SCHEDULE": "*/30 * * * * *", "DIMIRROR_SWEEP_SCHEDULE": "0 0 * * * *"}
	lookup := func(k string) (string, bool) { v, ok := settings[k]; return v, ok }
	fn, name, err := queueFunction(fns.Table(), defs, lookup)
	if err != nil || fn.Queue == nil || name != "copy-requests" {
		t.Errorf("queue function %q on %q: %v", fn.Name, name, err)
	}
	jobs, err := timerJobs(fns.Table(), defs, lookup)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, j := range jobs {
		got[j.name] = j.spec
	}
	if len(got) != 3 || got["poll"] != "*/5 * * * * *" || got["sweep"] != "0 0 * * * *" {
		t.Errorf("timers %v", got)
	}
	tests := []struct {
		name, setting, value, want string
	}{
		{"unset setting", "DIMIRROR_WATCH_SCHEDULE", "", "function watch"},
		{"bad schedule", "DIMIRROR_SWEEP_SCHEDULE", "every hour", "function sweep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := func(k string) (string, bool) {
				if k == tt.setting {
					return tt.value, tt.value != ""
				}
				return lookup(k)
			}
			if _, err := timerJobs(fns.Table(), defs, bad); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to name %s", err, tt.want)
			}
		})
	}
}
