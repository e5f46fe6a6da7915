package testenv

import (
	"bytes"
	"context"
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
)

// AzuriteAccountKey is Azurite's well-known development account key (public, documented by
// Microsoft; it protects nothing).
const AzuriteAccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

// Azurite is a running Azurite Table service.
type Azurite struct {
	Port int
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

// TableURL is the table service endpoint.
func (a *Azurite) TableURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d/devstoreaccount1", a.Port)
}

// ConnectionString is the storage connection string for the development account.
func (a *Azurite) ConnectionString() string {
	return "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + AzuriteAccountKey +
		";TableEndpoint=" + a.TableURL() + ";"
}

// AzuriteBinary is where `npm ci` (run by `make test`) installs the table server.
func AzuriteBinary() (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, "node_modules", ".bin", "azurite-table")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("azurite is not installed at %s: run `make test` (or `npm ci`) at the repository root first", bin)
	}
	return bin, nil
}

// StartAzurite starts an in-memory Azurite Table service on a free loopback port and waits until
// it accepts connections.
func StartAzurite(ctx context.Context) (*Azurite, error) {
	bin, err := AzuriteBinary()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 { // the free port can be taken between the check and Azurite's bind
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		a := &Azurite{Port: port, out: &bytes.Buffer{}, done: make(chan struct{})}
		a.cmd = exec.Command(bin, "--tableHost", "127.0.0.1", "--tablePort", strconv.Itoa(port),
			"--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck", "--silent", "--loose")
		a.cmd.Stdout, a.cmd.Stderr = a.out, a.out
		a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // so Stop ends node's children too
		if err := a.cmd.Start(); err != nil {
			return nil, fmt.Errorf("start azurite: %w", err)
		}
		go func() { _ = a.cmd.Wait(); close(a.done) }()
		if lastErr = a.waitReady(ctx, 30*time.Second); lastErr == nil {
			return a, nil
		}
		a.Stop()
	}
	return nil, lastErr
}

func (a *Azurite) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-a.done:
			return fmt.Errorf("azurite exited before it was ready: %s", a.out.String())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		// Ask, rather than dial: between FreePort and Azurite's bind another test process may
		// take the port, and a dial would then take that server for Azurite (whose own bind fails).
		resp, err := probe.Get(fmt.Sprintf("http://127.0.0.1:%d/", a.Port))
		if err == nil {
			resp.Body.Close()
			if !strings.HasPrefix(resp.Header.Get("Server"), "Azurite-Table") {
				return fmt.Errorf("port %d is another server's (Server %q), not Azurite's", a.Port, resp.Header.Get("Server"))
			}
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("azurite did not listen on port %d within %s", a.Port, limit)
}

// probe asks a port whether Azurite answers there.
var probe = &http.Client{Timeout: 500 * time.Millisecond}

// Stop ends Azurite and waits for it.
func (a *Azurite) Stop() {
	if a == nil || a.cmd == nil || a.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		<-a.done
	}
}

var shared struct {
	mu  sync.Mutex
	az  *Azurite
	err error
}

// SharedAzurite starts one Azurite per test binary on first use; StopShared (from TestMain)
// stops it.
func SharedAzurite() (*Azurite, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.az == nil && shared.err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		shared.az, shared.err = StartAzurite(ctx)
	}
	return shared.az, shared.err
}

// StopShared stops the shared Azurite, if one was started.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.az.Stop()
	shared.az, shared.err = nil, nil
}
