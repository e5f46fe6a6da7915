package infra_test

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dimirror/dimirror/infra/pack"
	"github.com/dimirror/dimirror/internal/syncbuf"
	"github.com/dimirror/dimirror/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopShared()
	if built.tmp != "" {
		os.RemoveAll(built.tmp)
	}
	os.Exit(code)
}

// testVersion is stamped into the test build, as `make package` stamps VERSION.
const testVersion = "infra-test"

// built is the package built once per test binary: the binary compiled the way `make package`
// does, packed with infra/pack, and unzipped.
var built struct {
	once sync.Once
	tmp  string // removed by TestMain
	zip  string // the zip
	dir  string // where it was unzipped
	err  error
}

// builtPackage builds and unpacks the package on first use, in a temporary directory that
// TestMain removes.
func builtPackage(t *testing.T) (zipPath, dir string) {
	t.Helper()
	built.once.Do(func() {
		built.zip, built.dir, built.err = buildPackage()
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.zip, built.dir
}

func buildPackage() (string, string, error) {
	tmp, err := os.MkdirTemp("", "dimirror-infra-test-")
	if err != nil {
		return "", "", err
	}
	built.tmp = tmp
	root, err := testenv.ModuleRoot()
	if err != nil {
		return "", "", err
	}
	bin := filepath.Join(tmp, "build", "dimirror")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The flags of `make package` (Makefile), with a fixed version.
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+testVersion,
		"-o", bin, "./cmd/dimirror")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("go build ./cmd/dimirror: %v\n%s", err, out)
	}
	zipPath := filepath.Join(tmp, "dist", "dimirror.zip")
	if err := pack.WriteFile(zipPath, pack.Options{Root: root, Binary: bin, Machine: elf.EM_X86_64}); err != nil {
		return "", "", err
	}
	dir := filepath.Join(tmp, "app")
	if err := unzip(zipPath, dir); err != nil {
		return "", "", err
	}
	return zipPath, dir, nil
}

// unzip extracts with the recorded permissions, as zip deploy does.
func unzip(zipPath, dir string) error {
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		return err
	}
	defer zr.Close()
	for _, f := range zr.File {
		if !filepath.IsLocal(f.Name) {
			return fmt.Errorf("zip entry %q escapes the app root", f.Name)
		}
		dst := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		rc, err := f.Open()
		if err != nil {
			return err
		}
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, f.Mode().Perm())
		if err == nil {
			_, err = io.Copy(out, rc)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
		}
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func TestPackageLayout(t *testing.T) {
	zipPath, dir := builtPackage(t)
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	modes := map[string]os.FileMode{}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		modes[f.Name] = f.Mode()
	}

	// host.json at the root, byte for byte the project's, naming the binary that is in the zip.
	host, err := os.ReadFile(filepath.Join(dir, "host.json"))
	if err != nil {
		t.Fatal(err)
	}
	if src, _ := os.ReadFile("../host.json"); !bytes.Equal(host, src) {
		t.Error("the packaged host.json differs from the project's")
	}
	exe, err := pack.ExecutablePath(host)
	if err != nil {
		t.Fatal(err)
	}
	if exe != "bin/dimirror" {
		t.Errorf("host.json runs %s, want bin/dimirror", exe)
	}
	if m, ok := modes[exe]; !ok || m.Perm()&0o111 != 0o111 || !m.IsRegular() {
		t.Errorf("%s in the zip: present %v, mode %v; want an executable regular file", exe, ok, m)
	}
	if st, err := os.Stat(filepath.Join(dir, exe)); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("unzipped %s: %v, %v", exe, st, err)
	}
	ef, err := elf.Open(filepath.Join(dir, exe))
	if err != nil {
		t.Fatalf("%s is not an ELF binary: %v", exe, err)
	}
	if ef.Machine != elf.EM_X86_64 {
		t.Errorf("%s is built for %s, want x86-64 (Flex Consumption runs linux/amd64)", exe, ef.Machine)
	}
	ef.Close()

	// Every function folder, and nothing else, at the app root.
	entries, err := os.ReadDir("../functions")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"host.json", exe}
	for _, e := range entries {
		if e.IsDir() {
			want = append(want, e.Name()+"/function.json")
			src, _ := os.ReadFile(filepath.Join("../functions", e.Name(), "function.json"))
			got, err := os.ReadFile(filepath.Join(dir, e.Name(), "function.json"))
			if err != nil || !bytes.Equal(src, got) {
				t.Errorf("%s/function.json is missing or differs from the project's (%v)", e.Name(), err)
			}
			var doc struct {
				Bindings []map[string]any `json:"bindings"`
			}
			if err := json.Unmarshal(got, &doc); err != nil || len(doc.Bindings) == 0 {
				t.Errorf("%s/function.json: not valid function JSON (%v)", e.Name(), err)
			}
		}
	}
	slices.Sort(want)
	slices.Sort(names)
	if !slices.Equal(names, want) {
		t.Errorf("zip holds %v, want %v", names, want)
	}
}

// TestPackagedBindingsResolve checks the packaged function folders (not the sources) against the
// settings.
func TestPackagedBindingsResolve(t *testing.T) {
	_, dir := builtPackage(t)
	sub := t.TempDir()
	// funcdef reads every <dir>/<name>/function.json: copy the package's function folders, not
	// bin/, to a directory of their own.
	fns, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range fns {
		if !e.IsDir() || e.Name() == "bin" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name(), "function.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(sub, e.Name()), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sub, e.Name(), "function.json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	checkBindingsResolve(t, sub)
}

func TestPackagedBinaryVersion(t *testing.T) {
	_, dir := builtPackage(t)
	requireLinuxAMD64(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(dir, "bin", "dimirror"), "version").CombinedOutput()
	if err != nil {
		t.Fatalf("dimirror version: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "dimirror "+testVersion {
		t.Errorf("version = %q, want the stamped %q", got, "dimirror "+testVersion)
	}
}

func requireLinuxAMD64(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skipf("the package holds a linux/amd64 binary, which cannot run on %s/%s; its layout is still checked", runtime.GOOS, runtime.GOARCH)
	}
}

// Secret markers put in the settings: none may appear in the handler's output.
const (
	secretSourceKey = "source-key-should-not-leak-7f3a"
	secretTargetKey = "target-key-should-not-leak-91bc"
	secretBusKey    = "bus-key-should-not-leak-c0de"
)

// serveEnv is the environment the Functions host would give the handler: the local sample
// settings with Azurite for the table, loopback Document Intelligence endpoints with keys, and the
// development Service Bus connection string (serve mode connects only when it sends).
func serveEnv(t *testing.T, port int) []string {
	t.Helper()
	az, err := testenv.SharedAzurite()
	if err != nil {
		t.Fatal(err)
	}
	values := readSample(t)
	values["TableConnection"] = az.ConnectionString()
	values["DIMIRROR_SOURCE_KEY"] = secretSourceKey
	values["DIMIRROR_TARGET_KEYS"] = "westus2=" + secretTargetKey + ",eastus=" + secretTargetKey
	values["ServiceBusConnection"] = "Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=dev;SharedAccessKey=" + secretBusKey + ";UseDevelopmentEmulator=true"
	values["FUNCTIONS_CUSTOMHANDLER_PORT"] = fmt.Sprint(port)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range values {
		env = append(env, k+"="+v)
	}
	return env
}

// handler is the packaged binary running in serve mode.
type handler struct {
	cmd    *exec.Cmd
	out    *syncbuf.Buffer
	done   chan struct{}
	base   string
	client *http.Client
}

// redacted is the handler's output for failure messages, with the test's secrets masked so that
// a leak is reported without being repeated.
func (h *handler) redacted() string {
	out := h.out.String()
	for _, secret := range []string{secretSourceKey, secretTargetKey, secretBusKey, testenv.AzuriteAccountKey} {
		out = strings.ReplaceAll(out, secret, "[secret]")
	}
	return out
}

// startHandler starts the binary the way the host does (app root as working directory, the port
// in FUNCTIONS_CUSTOMHANDLER_PORT) and polls GET / as the host's readiness probe does.
func startHandler(t *testing.T, dir string) *handler {
	t.Helper()
	var lastErr error
	for range 3 { // the free port may be taken before the handler binds it
		port, err := testenv.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		h := &handler{out: &syncbuf.Buffer{}, done: make(chan struct{}), base: fmt.Sprintf("http://127.0.0.1:%d", port),
			client: &http.Client{Timeout: 10 * time.Second}}
		h.cmd = exec.Command(filepath.Join(dir, "bin", "dimirror"), "serve")
		h.cmd.Dir = dir
		h.cmd.Env = serveEnv(t, port)
		h.cmd.Stdout, h.cmd.Stderr = h.out, h.out
		if err := h.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = h.cmd.Wait(); close(h.done) }()
		if lastErr = h.waitReady(30 * time.Second); lastErr == nil {
			t.Cleanup(func() { h.stop(t) })
			return h
		}
		h.kill()
		if !strings.Contains(h.out.String(), "already in use") {
			break
		}
	}
	t.Fatal(lastErr)
	return nil
}

func (h *handler) waitReady(limit time.Duration) error {
	probe := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-h.done:
			return fmt.Errorf("dimirror serve exited before it was ready (%v):\n%s", h.cmd.ProcessState, h.redacted())
		default:
		}
		resp, err := probe.Get(h.base + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("dimirror serve did not answer GET / within %s:\n%s", limit, h.redacted())
}

func (h *handler) kill() {
	_ = h.cmd.Process.Kill()
	<-h.done
}

// stop ends the handler as the host does on shutdown and expects a clean exit.
func (h *handler) stop(t *testing.T) {
	select {
	case <-h.done:
		return
	default:
	}
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.done:
		if code := h.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("dimirror serve exited with %d after SIGTERM:\n%s", code, h.redacted())
		}
	case <-time.After(15 * time.Second):
		h.kill()
		t.Error("dimirror serve did not stop within 15s of SIGTERM")
	}
}

func (h *handler) post(t *testing.T, path string, body []byte) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Azure-Functions-InvocationId", "00000000-0000-0000-0000-0000000000a1")
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("POST %s: %d, not JSON: %s", path, resp.StatusCode, data)
	}
	return resp.StatusCode, out
}

// bindingName reads the trigger binding's name from a packaged function.json.
func bindingName(t *testing.T, dir, fn string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, fn, "function.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Bindings []struct{ Type, Name string } `json:"bindings"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, b := range doc.Bindings {
		if strings.HasSuffix(b.Type, "Trigger") {
			return b.Name
		}
	}
	t.Fatalf("%s has no trigger", fn)
	return ""
}

// TestPackagedBinaryServes runs the packaged binary as the Functions host would and invokes it:
// the readiness probe, the timer function and an HTTP function (both read the table in Azurite).
func TestPackagedBinaryServes(t *testing.T) {
	_, dir := builtPackage(t)
	requireLinuxAMD64(t)
	h := startHandler(t, dir)

	resp, err := h.client.Get(h.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	var ready map[string]string
	err = json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || ready["status"] != "ready" {
		t.Errorf("GET / = %d %v (%v), want 200 {status: ready}", resp.StatusCode, ready, err)
	}

	// The timer invocation: the project's derived timer payload, under poll's binding name.
	raw, err := os.ReadFile("../testdata/functions/payloads/timer-request.derived.json")
	if err != nil {
		t.Fatal(err)
	}
	var timer struct {
		Data     map[string]json.RawMessage `json:"Data"`
		Metadata json.RawMessage            `json:"Metadata"`
	}
	if err := json.Unmarshal(raw, &timer); err != nil || len(timer.Data) != 1 {
		t.Fatalf("timer payload: %v", err)
	}
	var body json.RawMessage
	for _, v := range timer.Data {
		body = v
	}
	payload, _ := json.Marshal(map[string]any{"Data": map[string]json.RawMessage{bindingName(t, dir, "poll"): body}, "Metadata": timer.Metadata})
	code, out := h.post(t, "/poll", payload)
	logs, _ := out["Logs"].([]any)
	if code != http.StatusOK || len(logs) != 1 || !strings.HasPrefix(fmt.Sprint(logs[0]), "poll: 0 active") {
		t.Errorf("POST /poll = %d %v, want 200 with the pass summary", code, out)
	}

	// The HTTP invocation: list replicas (an empty table).
	httpReq, _ := json.Marshal(map[string]any{
		"Data": map[string]any{bindingName(t, dir, "status"): map[string]any{
			"Url": "http://localhost:7071/api/replications", "Method": "GET",
			"Query": map[string]string{}, "Headers": map[string][]string{}, "Params": map[string]string{},
		}},
		"Metadata": map[string]any{"sys": map[string]string{"MethodName": "status"}},
	})
	code, out = h.post(t, "/status", httpReq)
	res, _ := out["Outputs"].(map[string]any)["res"].(map[string]any)
	if code != http.StatusOK || fmt.Sprint(res["statusCode"]) != "200" {
		t.Errorf("POST /status = %d %v, want 200 with an HTTP 200 output", code, out)
	}

	h.stop(t)
	logText := h.out.String()
	if !strings.Contains(logText, "custom handler listening") {
		t.Errorf("no start-up log line:\n%s", h.redacted())
	}
	for _, secret := range []string{secretSourceKey, secretTargetKey, secretBusKey, testenv.AzuriteAccountKey} {
		if strings.Contains(logText, secret) {
			t.Errorf("the handler's output contains a secret (%d chars)", len(secret))
		}
	}
}
