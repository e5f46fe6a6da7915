package devup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dimirror/dimirror/emulators/devbus"
	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/shared/config"
)

// Options configure a stack.
type Options struct {
	// Root is the project directory: node_modules/.bin/azurite-table and bin/dimirror are
	// found under it.
	Root string
	// DataDir keeps the state of Azurite, devbus and didev, the logs and the settings file.
	DataDir string
	Ports   Ports
	// Dimirror is the dimirror binary; default <Root>/bin/dimirror.
	Dimirror string
	// RunDimirror, when set, runs dimirror inside this process instead of the binary, with the
	// settings and its log writer, until ctx ends (tests).
	RunDimirror func(ctx context.Context, settings map[string]string, log io.Writer) error
	// Settings override dimirror's settings (e.g. faster schedules for a demo in a test).
	Settings map[string]string
	// DI adjusts didev's options after the stack's (e.g. shorter copy and build durations).
	DI func(*didev.Options)
	// Progress receives one line per step while the stack starts; nil discards them.
	Progress io.Writer
	// TwoWay writes the settings in the rules form (TwoWayRules) instead of the source and
	// targets pair: what is trained in westus2 flows back to the source and, through it, to
	// eastus. The demo shows that path.
	TwoWay bool
}

// Stack is a running local stack.
type Stack struct {
	// TwoWay says the settings are the rules form (Options.TwoWay).
	TwoWay       bool
	Ports        Ports
	DataDir      string
	LogDir       string
	Settings     map[string]string
	SettingsFile string
	API          string // dimirror's base URL
	DI           *didev.Server
	Bus          *devbus.Broker

	azurite   *child
	dimirror  *child
	inProc    context.CancelFunc
	inProcEnd chan error
	log       *logSink
	closers   []io.Closer
	exited    chan error
	force     chan struct{}
	forceOnce sync.Once
	stopping  chan struct{}
	stopOnce  sync.Once
	stopErr   error
}

// Timeouts of the start-up and of stopping.
const (
	readyWithin      = 60 * time.Second
	dimirrorGrace    = 10 * time.Second
	azuriteGrace     = 5 * time.Second
	healthPollPeriod = 100 * time.Millisecond
)

// AzuriteBinary is where npm ci installs Azurite's table server.
func AzuriteBinary(root string) string {
	return filepath.Join(root, "node_modules", ".bin", "azurite-table")
}

// Start starts the stack; ctx bounds the start-up. On failure everything started is stopped.
func Start(ctx context.Context, o Options) (s *Stack, err error) {
	if o.Root == "" || o.DataDir == "" {
		return nil, errors.New("devup: Root and DataDir are required")
	}
	azuriteBin := AzuriteBinary(o.Root)
	if _, err := os.Stat(azuriteBin); err != nil {
		return nil, fmt.Errorf("Azurite is not installed (%s is missing): run npm ci in the project directory (make run and make demo do it)", azuriteBin)
	}
	if o.RunDimirror == nil {
		if o.Dimirror == "" {
			o.Dimirror = filepath.Join(o.Root, "bin", "dimirror")
		}
		if _, err := os.Stat(o.Dimirror); err != nil {
			return nil, fmt.Errorf("the dimirror binary is missing (%s): run make build (make run and make demo do it)", o.Dimirror)
		}
	}
	sample, err := LoadSample(o.Root)
	if err != nil {
		return nil, err
	}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	ports := o.Ports
	if err := resolvePorts(&ports); err != nil {
		return nil, err
	}
	s = &Stack{Ports: ports, DataDir: o.DataDir, LogDir: filepath.Join(o.DataDir, "logs"),
		API: "http://" + loopback(ports.API), exited: make(chan error, 4), force: make(chan struct{}), stopping: make(chan struct{})}
	for _, d := range []string{"azurite", "devbus", "didev", "logs"} {
		if err := os.MkdirAll(filepath.Join(o.DataDir, d), 0o755); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Stop())
			s = nil
		}
	}()

	fmt.Fprintf(progress, "starting devbus (Service Bus) on %s\n", loopback(ports.Bus))
	busLog, err := s.logFile("devbus.log")
	if err != nil {
		return s, err
	}
	if s.Bus, err = devbus.Start(ctx, devbus.Options{
		Listen:  loopback(ports.Bus),
		Queues:  []devbus.QueueOptions{{Name: Queue}},
		DataDir: filepath.Join(o.DataDir, "devbus"),
		Logger:  slog.New(slog.NewTextHandler(busLog, nil)),
	}); err != nil {
		return s, fmt.Errorf("devbus: %w", err)
	}

	fmt.Fprintf(progress, "starting didev (Document Intelligence: source, %s) on ports %d, %d, %d\n", joinNames(Targets), ports.Source, ports.Westus2, ports.Eastus)
	diLog, err := s.logFile("didev.log")
	if err != nil {
		return s, err
	}
	dio := didev.Options{
		Resources: []didev.ResourceOptions{
			{Name: "source", Addr: loopback(ports.Source), Region: "centralus"},
			{Name: "westus2", Addr: loopback(ports.Westus2)},
			{Name: "eastus", Addr: loopback(ports.Eastus)},
		},
		Key:     Key,
		Seeds:   Seeds,
		DataDir: filepath.Join(o.DataDir, "didev"),
		Logger:  slog.New(slog.NewTextHandler(diLog, nil)),
	}
	if o.DI != nil {
		o.DI(&dio)
	}
	// didev serves until Close, not until the start-up deadline.
	if s.DI, err = didev.Start(context.WithoutCancel(ctx), dio); err != nil {
		return s, fmt.Errorf("didev: %w", err)
	}

	fmt.Fprintf(progress, "starting Azurite (Table Storage) on %s\n", loopback(ports.Tables))
	azLog, err := s.logFile("azurite.log")
	if err != nil {
		return s, err
	}
	az := exec.Command(azuriteBin, "--tableHost", "127.0.0.1", "--tablePort", strconv.Itoa(ports.Tables),
		"--location", filepath.Join(o.DataDir, "azurite"), "--disableTelemetry", "--skipApiVersionCheck", "--loose", "--silent")
	az.Stdout, az.Stderr = azLog, azLog
	// Azurite saves its tables on SIGINT; SIGTERM would end it without saving.
	if s.azurite, err = startChild("Azurite", az, syscall.SIGINT); err != nil {
		return s, err
	}
	s.watch(s.azurite)
	if err := waitListening(ctx, ports.Tables, s.azurite); err != nil {
		return s, fmt.Errorf("%w (see %s)", err, filepath.Join(s.LogDir, "azurite.log"))
	}

	s.Settings = Settings(sample, ports)
	if o.TwoWay {
		for k, v := range TwoWayAddresses(ports) {
			s.Settings[k] = v
		}
	}
	s.TwoWay = o.TwoWay
	for k, v := range o.Settings {
		s.Settings[k] = v
	}
	s.SettingsFile = filepath.Join(o.DataDir, "local.settings.json")
	if err := writeSettingsFile(s.SettingsFile, s.Settings); err != nil {
		return s, err
	}

	fmt.Fprintf(progress, "starting dimirror run on %s\n", loopback(ports.API))
	if s.log, err = newLogSink(filepath.Join(s.LogDir, "dimirror.log")); err != nil {
		return s, err
	}
	if err := s.startDimirror(o); err != nil {
		return s, err
	}
	if err := s.waitHealthy(ctx); err != nil {
		return s, err
	}
	return s, nil
}

func joinNames(names []string) string {
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ", "
		}
		out += n
	}
	return out
}

// logFile opens (appends to) a log under the log directory; Stop closes it.
func (s *Stack) logFile(name string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(s.LogDir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, f)
	return f, nil
}

// settingNames are the variables dimirror reads; a child gets devup's values for all of them,
// never the shell's.
func settingNames() map[string]bool {
	names := map[string]bool{"FUNCTIONS_WORKER_RUNTIME": true, "AzureWebJobsStorage": true}
	for _, n := range config.Names() {
		names[n] = true
	}
	return names
}

func (s *Stack) startDimirror(o Options) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	go s.log.readFrom(r)
	if o.RunDimirror != nil {
		ctx, cancel := context.WithCancel(context.Background())
		s.inProc, s.inProcEnd = cancel, make(chan error, 1)
		go func() {
			err := o.RunDimirror(ctx, s.Settings, w)
			w.Close()
			s.inProcEnd <- err
			if ctx.Err() == nil {
				s.exited <- fmt.Errorf("dimirror stopped: %v", err)
			}
		}()
		return nil
	}
	cmd := exec.Command(o.Dimirror, "run")
	cmd.Env = environWithout(settingNames())
	for k, v := range s.Settings {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = w, w
	s.dimirror, err = startChild("dimirror", cmd, syscall.SIGTERM)
	w.Close() // the child holds the write end now; EOF comes when it exits
	if err != nil {
		r.Close()
		return err
	}
	s.watch(s.dimirror)
	return nil
}

// watch reports a child that ends while the stack is not stopping.
func (s *Stack) watch(c *child) {
	go func() {
		<-c.done
		select {
		case <-s.stopping:
		default:
			s.exited <- c.exitError()
		}
	}()
}

// Exited delivers an error when a part of the stack ends on its own.
func (s *Stack) Exited() <-chan error { return s.exited }

// Follow copies dimirror's log, one formatted line per record, to w from now on; nil stops.
func (s *Stack) Follow(w io.Writer) { s.log.follow(w) }

// LogTail is the end of dimirror's log (at most n lines, leaving out the access log of its HTTP
// API, which the demo's polling fills), for error reports.
func (s *Stack) LogTail(n int) []string {
	if s.log == nil {
		return nil
	}
	return s.log.last(n)
}

func waitListening(ctx context.Context, port int, c *child) error {
	deadline := time.Now().Add(readyWithin)
	for {
		conn, err := net.DialTimeout("tcp", loopback(port), 200*time.Millisecond)
		if err == nil {
			return conn.Close()
		}
		if c.exited() {
			return c.exitError()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not listen on %s after %s", c.name, loopback(port), readyWithin)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitHealthy polls dimirror's /healthz until it answers 200.
func (s *Stack) waitHealthy(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyWithin)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.API+"/healthz", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-s.exited:
			return fmt.Errorf("%w; the end of its log (%s):\n%s", err, filepath.Join(s.LogDir, "dimirror.log"), indent(s.LogTail(15)))
		case <-ctx.Done():
			return fmt.Errorf("dimirror did not answer on %s/healthz within %s; the end of its log:\n%s", s.API, readyWithin, indent(s.LogTail(15)))
		case <-time.After(healthPollPeriod):
		}
	}
}

func indent(lines []string) string {
	out := ""
	for _, l := range lines {
		out += "  " + l + "\n"
	}
	return out
}

// Force cuts the grace period of a Stop in progress (a second Ctrl-C): children still
// running are killed at once.
func (s *Stack) Force() { s.forceOnce.Do(func() { close(s.force) }) }

// Stop stops dimirror, then Azurite, then didev and devbus (which write their state), each
// child with a grace period after SIGTERM. It is safe to call more than once.
func (s *Stack) Stop() error {
	s.stopOnce.Do(func() {
		close(s.stopping)
		var errs []error
		if s.dimirror != nil {
			errs = append(errs, s.stopChild(s.dimirror, dimirrorGrace))
		}
		if s.inProc != nil {
			s.inProc()
			if err := <-s.inProcEnd; err != nil && !errors.Is(err, context.Canceled) {
				errs = append(errs, fmt.Errorf("dimirror: %w", err))
			}
		}
		if s.azurite != nil {
			errs = append(errs, s.stopChild(s.azurite, azuriteGrace))
		}
		if s.DI != nil {
			errs = append(errs, withoutShutdownTimeouts(s.DI.Close()))
		}
		if s.Bus != nil {
			errs = append(errs, s.Bus.Close())
		}
		if s.log != nil {
			errs = append(errs, s.log.close())
		}
		for _, c := range s.closers {
			errs = append(errs, c.Close())
		}
		s.stopErr = errors.Join(errs...)
	})
	return s.stopErr
}

// withoutShutdownTimeouts drops the errors of graceful HTTP shutdowns that ran out of time:
// the server then closes the connections it waited for (typically one a client dialled and
// never used), so they end all the same. Other errors (didev's state not written) remain.
func withoutShutdownTimeouts(err error) error {
	if err == nil {
		return nil
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var keep []error
	for _, e := range errs {
		if !errors.Is(e, context.DeadlineExceeded) {
			keep = append(keep, e)
		}
	}
	return errors.Join(keep...)
}

func (s *Stack) stopChild(c *child, grace time.Duration) error {
	select {
	case <-s.force:
		grace = 0
	default:
	}
	done := make(chan error, 1)
	go func() { done <- c.terminate(grace) }()
	select {
	case err := <-done:
		return err
	case <-s.force:
		if !c.exited() {
			_ = killGroup(c.cmd.Process)
		}
		<-done
		return fmt.Errorf("%s was killed (second interrupt)", c.name)
	}
}

// logSink writes dimirror's log to its file, keeps the last lines, and echoes formatted lines
// to a follower.
type logSink struct {
	mu       sync.Mutex
	file     *os.File
	lines    []string
	follower io.Writer
	done     chan struct{}
}

const keepLines = 200

func newLogSink(path string) (*logSink, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &logSink{file: f, done: make(chan struct{})}, nil
}

func (l *logSink) readFrom(r io.ReadCloser) {
	defer close(l.done)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		l.mu.Lock()
		_, _ = fmt.Fprintf(l.file, "%s\n", line)
		l.lines = append(l.lines, string(line))
		if len(l.lines) > keepLines {
			l.lines = l.lines[len(l.lines)-keepLines:]
		}
		if l.follower != nil {
			fmt.Fprintln(l.follower, FormatLogLine(line))
		}
		l.mu.Unlock()
	}
}

func (l *logSink) follow(w io.Writer) {
	l.mu.Lock()
	l.follower = w
	l.mu.Unlock()
}

func (l *logSink) last(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for i := len(l.lines) - 1; i >= 0 && len(out) < n; i-- {
		if strings.Contains(l.lines[i], `"msg":"http"`) && strings.Contains(l.lines[i], `"level":"INFO"`) {
			continue
		}
		out = append(out, FormatLogLine([]byte(l.lines[i])))
	}
	slices.Reverse(out)
	return out
}

// close waits (briefly) for the last lines, then closes the file.
func (l *logSink) close() error {
	select {
	case <-l.done:
	case <-time.After(3 * time.Second):
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.follower = nil
	return l.file.Close()
}
