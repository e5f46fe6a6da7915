package testenv

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestAzuriteStartsAndStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := StartAzurite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(a.TableURL() + "/Tables")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 0 {
		t.Fatal("no answer from azurite")
	}
	a.Stop()
	if _, err := http.Get(a.TableURL() + "/Tables"); err == nil {
		t.Error("azurite still answers after Stop")
	}
}

// Between FreePort and Azurite's bind another process may take the port: the readiness check
// must not take that server for Azurite (before, a dial did, and the tests that followed met a
// stranger's 404s).
func TestReadinessRefusesAnotherServer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	a := &Azurite{Port: port, out: &bytes.Buffer{}, done: make(chan struct{})}
	err := a.waitReady(context.Background(), 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "not Azurite's") {
		t.Fatalf("readiness on another server's port: %v, want it refused", err)
	}
}
