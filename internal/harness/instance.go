package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dimirror/dimirror/internal/testenv"
)

// Usage is what an instance's processes cost: CPU time (user + system) summed over every life
// that ended, and the highest peak resident set size of any life.
type Usage struct {
	CPU     time.Duration
	PeakRSS int64 // bytes
	Lives   int
	// Crashes counts lives that ended without being killed or stopped by the harness.
	Crashes int
}

// Instance is one `dimirror run` child process that can be killed and started again. Every life
// logs to its own file in LogDir. Its methods are safe for concurrent use.
type Instance struct {
	Name   string
	Binary string
	// Settings are the child's whole environment besides PATH and HOME: nothing else of the
	// parent's environment leaks into it. DIMIRROR_LISTEN is chosen by the instance.
	Settings map[string]string
	LogDir   string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current life's process has been waited for
	port    int
	logs    []string
	usage   Usage
	current int64 // peak RSS of the running life, sampled
	ending  bool  // the harness signalled the running life
}

// ErrExited is returned by Start when the process ends before it is ready.
var ErrExited = errors.New("dimirror exited before it was ready")

// Start runs a new life and waits until GET /healthz answers 200; it returns the time from
// exec to that answer (the cold start). When the instance's port was taken meanwhile, it moves
// to a free one.
func (in *Instance) Start(ctx context.Context) (time.Duration, error) {
	d, err := in.start(ctx)
	if errors.Is(err, errPortTaken) {
		in.mu.Lock()
		in.port = 0
		in.mu.Unlock()
		d, err = in.start(ctx)
	}
	return d, err
}

var errPortTaken = errors.New("port taken")

func (in *Instance) start(ctx context.Context) (time.Duration, error) {
	in.mu.Lock()
	if in.cmd != nil {
		in.mu.Unlock()
		return 0, fmt.Errorf("instance %s is already running", in.Name)
	}
	if in.port == 0 {
		p, err := testenv.FreePort()
		if err != nil {
			in.mu.Unlock()
			return 0, err
		}
		in.port = p
	}
	life := in.usage.Lives + 1
	logPath := filepath.Join(in.LogDir, fmt.Sprintf("%s-%d.log", in.Name, life))
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		in.mu.Unlock()
		return 0, err
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range in.Settings {
		if k != "DIMIRROR_LISTEN" {
			env = append(env, k+"="+v)
		}
	}
	env = append(env, "DIMIRROR_LISTEN=127.0.0.1:"+strconv.Itoa(in.port))
	cmd := exec.Command(in.Binary, "run")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	start := time.Now()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		in.mu.Unlock()
		return 0, fmt.Errorf("start %s: %w", in.Name, err)
	}
	done := make(chan struct{})
	in.cmd, in.done, in.current, in.ending = cmd, done, 0, false
	in.logs = append(in.logs, logPath)
	in.usage.Lives = life
	in.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		logFile.Close()
		in.mu.Lock()
		in.account(cmd)
		if !in.ending {
			in.usage.Crashes++
		}
		in.cmd = nil
		in.mu.Unlock()
		close(done)
	}()

	base := in.Base()
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
		if err != nil {
			return 0, err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		select {
		case <-done:
			tail := lastLines(logPath, 5)
			if strings.Contains(tail, "is already in use") {
				return 0, errPortTaken
			}
			return 0, fmt.Errorf("%w: %s (see %s): %s", ErrExited, in.Name, logPath, tail)
		case <-ctx.Done():
			in.Kill()
			return 0, fmt.Errorf("instance %s not ready: %w", in.Name, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// account adds an ended life's rusage; in.mu is held.
func (in *Instance) account(cmd *exec.Cmd) {
	if cmd.ProcessState == nil {
		return
	}
	in.usage.CPU += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	peak := in.current
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss*1024 > peak {
		peak = ru.Maxrss * 1024 // kilobytes on Linux
	}
	in.usage.PeakRSS = max(in.usage.PeakRSS, peak)
}

// Base is the instance's API base URL (stable across lives).
func (in *Instance) Base() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return "http://127.0.0.1:" + strconv.Itoa(in.port)
}

// Running reports whether a life is in progress.
func (in *Instance) Running() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.cmd != nil
}

// Pid is the running life's process id, or 0.
func (in *Instance) Pid() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cmd == nil || in.cmd.Process == nil {
		return 0
	}
	return in.cmd.Process.Pid
}

// Kill ends the running life with SIGKILL, as a crash or an evicted host would, and waits for it.
// It does nothing when no life is running.
func (in *Instance) Kill() {
	in.signal(syscall.SIGKILL, 0)
}

// Stop asks the running life to end (SIGTERM) and kills it if it has not within grace.
func (in *Instance) Stop(grace time.Duration) {
	in.signal(syscall.SIGTERM, grace)
}

func (in *Instance) signal(sig syscall.Signal, grace time.Duration) {
	in.SamplePeakRSS()
	in.mu.Lock()
	cmd, done := in.cmd, in.done
	if cmd != nil {
		in.ending = true
	}
	in.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	if sig == syscall.SIGKILL {
		<-done
		return
	}
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

// SamplePeakRSS reads the running life's VmHWM (its peak resident set so far) from /proc and
// keeps the highest value seen; rusage gives the same figure once the life ends.
func (in *Instance) SamplePeakRSS() int64 {
	pid := in.Pid()
	if pid == 0 {
		return 0
	}
	kb, err := vmHWM(pid)
	if err != nil {
		return 0
	}
	in.mu.Lock()
	in.current = max(in.current, kb*1024)
	v := in.current
	in.mu.Unlock()
	return v
}

func vmHWM(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// Usage returns the cost of every life that has ended.
func (in *Instance) Usage() Usage {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.usage
}

// LogFiles lists the log file of every life, oldest first.
func (in *Instance) LogFiles() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.logs...)
}

// lastLines is the tail of a log for error messages. dimirror's logs hold no secrets (the suite
// checks that), so quoting them is safe.
func lastLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
