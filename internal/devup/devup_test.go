package devup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dimirror/dimirror/shared/config"
)

// TestMain doubles as the child processes of the process tests: with DEVUP_TEST_CHILD set the
// test binary behaves as that kind of child instead of running the tests.
func TestMain(m *testing.M) {
	if mode := os.Getenv("DEVUP_TEST_CHILD"); mode != "" {
		os.Exit(testChild(mode))
	}
	os.Exit(m.Run())
}

// testChild: "term" ends on SIGTERM; "stubborn" ignores SIGTERM; "parent" starts a stubborn
// grandchild in its own group, prints its pid, and ends on SIGTERM (leaving the grandchild).
func testChild(mode string) int {
	switch mode {
	case "term":
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		fmt.Println("ready")
		<-c
		return 0
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(time.Minute)
		return 0
	case "parent":
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		gc := exec.Command(os.Args[0])
		gc.Env = append(os.Environ(), "DEVUP_TEST_CHILD=stubborn")
		out, _ := gc.StdoutPipe()
		if err := gc.Start(); err != nil {
			return 3
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		if line != "ready\n" {
			return 4
		}
		fmt.Println(gc.Process.Pid)
		<-c
		return 0
	}
	return 2
}

// alive reports whether pid is a live process (a zombie waiting for its reaper is not).
func alive(pid int) bool {
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		return len(fields) > 0 && fields[0] != "Z"
	}
	return syscall.Kill(pid, 0) == nil
}

func startTestChild(t *testing.T, mode string) (*child, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "DEVUP_TEST_CHILD="+mode)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = w
	c, err := startChild(mode, cmd, syscall.SIGTERM)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.terminate(0); r.Close() })
	out := bufio.NewReader(r)
	return c, out
}

func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line)
}

func TestChildStop(t *testing.T) {
	t.Run("ends on SIGTERM", func(t *testing.T) {
		c, out := startTestChild(t, "term")
		if l := readLine(t, out); l != "ready" {
			t.Fatal(l)
		}
		start := time.Now()
		if err := c.terminate(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		if alive(c.Pid()) || time.Since(start) > 3*time.Second {
			t.Errorf("alive %t after %s", alive(c.Pid()), time.Since(start))
		}
	})
	t.Run("killed after the grace period", func(t *testing.T) {
		c, out := startTestChild(t, "stubborn")
		readLine(t, out)
		err := c.terminate(200 * time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "did not stop within 200ms of terminated and was killed") {
			t.Errorf("err %v", err)
		}
		if alive(c.Pid()) {
			t.Error("still alive")
		}
	})
	t.Run("what it started goes too, nothing else", func(t *testing.T) {
		// A process of the test's own, outside devup's children: it must survive.
		bystander := exec.Command(os.Args[0])
		bystander.Env = append(os.Environ(), "DEVUP_TEST_CHILD=stubborn")
		bystander.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := bystander.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = syscall.Kill(-bystander.Process.Pid, syscall.SIGKILL); _ = bystander.Wait() }()

		c, out := startTestChild(t, "parent")
		grandchild, err := strconv.Atoi(readLine(t, out))
		if err != nil || !alive(grandchild) {
			t.Fatalf("grandchild %d: %v", grandchild, err)
		}
		if err := c.terminate(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for alive(grandchild) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(grandchild) {
			t.Error("the child's own child survived")
		}
		if !alive(bystander.Process.Pid) {
			t.Error("a process devup did not start was stopped")
		}
	})
	t.Run("already ended", func(t *testing.T) {
		c, out := startTestChild(t, "term")
		readLine(t, out)
		_ = syscall.Kill(c.Pid(), syscall.SIGTERM)
		<-c.done
		if err := c.terminate(time.Second); err != nil {
			t.Error(err)
		}
		if err := c.exitError(); err == nil || !strings.Contains(err.Error(), "term exited") {
			t.Errorf("exit error %v", err)
		}
	})
}

// The launcher runs dimirror with local.settings.sample.json's settings, so that a user who
// reads the sample knows what `make run` runs with: on the default ports, the addresses it
// sets are the sample's own.
func TestSettingsMatchTheSample(t *testing.T) {
	sample, err := LoadSample("../..")
	if err != nil {
		t.Fatal(err)
	}
	ours := Settings(sample, DefaultPorts)
	for k, want := range sample {
		got := ours[k]
		if k == "TableConnection" {
			// The sample's shorthand, spelled out for the Go table client.
			if want != "UseDevelopmentStorage=true" || got != AzuriteConnectionString(10002) {
				t.Errorf("TableConnection: the sample has %q; the launcher's is not its explicit form", want)
			}
			continue
		}
		if got != want {
			t.Errorf("%s = %q, the sample has %q", k, got, want)
		}
	}
	for k := range Addresses(DefaultPorts) {
		if _, ok := sample[k]; !ok {
			t.Errorf("the launcher sets %s, which the sample lacks", k)
		}
	}
	for _, name := range config.Names() {
		if _, ok := ours[name]; !ok && !strings.HasPrefix(name, "FUNCTIONS_") {
			t.Errorf("dimirror reads %s, which neither the sample nor the launcher sets", name)
		}
	}
	cfg, err := config.LoadFrom(func(k string) (string, bool) { v, ok := ours[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ValidateStandalone(); err != nil {
		t.Fatal(err)
	}
}

func TestSettingsOnOtherPorts(t *testing.T) {
	sample, err := LoadSample("../..")
	if err != nil {
		t.Fatal(err)
	}
	p := Ports{Tables: 20002, Bus: 25672, Source: 25101, Westus2: 25102, Eastus: 25103, API: 27071}
	s := Settings(sample, p)
	want := map[string]string{
		"DIMIRROR_SOURCE_ENDPOINT": "http://127.0.0.1:25101",
		"DIMIRROR_TARGETS":         "westus2=http://127.0.0.1:25102,eastus=http://127.0.0.1:25103",
		"ServiceBusConnection":     "Endpoint=sb://127.0.0.1:25672;SharedAccessKeyName=dev;SharedAccessKey=dev;UseDevelopmentEmulator=true",
		"TableConnection":          AzuriteConnectionString(20002),
		"AzureWebJobsStorage":      AzuriteConnectionString(20002),
		"DIMIRROR_LISTEN":          "127.0.0.1:27071",
	}
	for k, v := range s {
		if w, moved := want[k]; moved {
			if v != w {
				t.Errorf("%s = %q, want %q", k, v, w)
			}
		} else if k != "TableConnection" && v != sample[k] {
			t.Errorf("%s changed with the ports: %q", k, v)
		}
	}
	if !strings.Contains(s["TableConnection"], "TableEndpoint=http://127.0.0.1:20002/devstoreaccount1;") {
		t.Error(s["TableConnection"])
	}
}

func TestPortsFromEnv(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want Ports
		err  string
	}{
		{nil, DefaultPorts, ""},
		{map[string]string{"DEV_API_PORT": "8080", "DEV_TABLES_PORT": "0", "DEV_BUS_PORT": ""},
			Ports{Tables: 0, Bus: 5672, Source: 5101, Westus2: 5102, Eastus: 5103, API: 8080}, ""},
		{map[string]string{"DEV_EASTUS_PORT": "70000"}, DefaultPorts, `DEV_EASTUS_PORT="70000": not a port number`},
		{map[string]string{"DEV_SOURCE_PORT": "http"}, DefaultPorts, `DEV_SOURCE_PORT="http"`},
	}
	for _, tt := range tests {
		got, err := PortsFromEnv(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%v: err %v, want %q", tt.env, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("%v: %+v %v, want %+v", tt.env, got, err, tt.want)
		}
	}
}

func TestResolvePorts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().(*net.TCPAddr).Port

	p := Ports{API: busy}
	err = resolvePorts(&p)
	var inUse *PortsInUseError
	if !errors.As(err, &inUse) || len(inUse.Busy) != 1 {
		t.Fatalf("err %v", err)
	}
	msg := err.Error()
	for _, want := range []string{fmt.Sprintf("port %d (dimirror's HTTP API) is already in use", busy), "DEV_API_PORT", "make run DEV_API_PORT=", "-api-port"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if p.Tables == 0 || p.Bus == 0 || p.Source == 0 || p.Westus2 == 0 || p.Eastus == 0 {
		t.Errorf("free ports not picked: %+v", p)
	}

	p = Ports{Source: 40000, Westus2: 40000}
	if err := resolvePorts(&p); err == nil || !strings.Contains(err.Error(), "port 40000 is given to both didev source resource and didev westus2 resource") {
		t.Errorf("duplicate: %v", err)
	}
}

func TestFormatLogLine(t *testing.T) {
	when := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	tests := []struct{ in, want string }{
		{`{"time":"` + when.Format(time.RFC3339Nano) + `","level":"INFO","msg":"http","app":"dimirror","mode":"run","version":"dev","method":"POST","status":202}`,
			when.Local().Format("15:04:05") + ` INFO  http method=POST status=202`},
		{`{"level":"ERROR","msg":"start-up failed","err":"store: the table connection string is not valid"}`,
			`ERROR start-up failed err="store: the table connection string is not valid"`},
		{`{"level":"WARN","msg":"x","targets":["eastus","westus2"],"settings":{"a": 1}}`, `WARN  x targets=["eastus","westus2"] settings={"a":1}`},
		{`plain text from a panic`, `plain text from a panic`},
		{`{"broken`, `{"broken`},
	}
	for _, tt := range tests {
		if got := FormatLogLine([]byte(tt.in)); got != tt.want {
			t.Errorf("FormatLogLine(%s)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestWithoutShutdownTimeouts(t *testing.T) {
	timeout := fmt.Errorf("didev: resource source: shutdown: %w", context.DeadlineExceeded)
	disk := errors.New("didev: writing state.json: no space left on device")
	tests := []struct {
		in   error
		want string
	}{
		{nil, ""},
		{timeout, ""},
		{errors.Join(timeout, timeout), ""},
		{errors.Join(timeout, disk), disk.Error()},
		{disk, disk.Error()},
	}
	for _, tt := range tests {
		got := withoutShutdownTimeouts(tt.in)
		if (got == nil) != (tt.want == "") || (got != nil && got.Error() != tt.want) {
			t.Errorf("withoutShutdownTimeouts(%v) = %v, want %q", tt.in, got, tt.want)
		}
	}
}
