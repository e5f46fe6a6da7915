package app

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dimirror/dimirror/shared/config"
	"github.com/dimirror/dimirror/shared/store"
)

type fakePresence struct {
	mu       sync.Mutex
	activeOn map[string]int // what the other instances report
	reported []string       // what this instance reported last
	beats    atomic.Int32
	fail     atomic.Bool
	left     atomic.Bool
}

func (f *fakePresence) Heartbeat(_ context.Context, _ string, _ time.Time, active []string) error {
	f.beats.Add(1)
	if f.fail.Load() {
		return errors.New("table unreachable")
	}
	f.mu.Lock()
	f.reported = active
	f.mu.Unlock()
	return nil
}

func (f *fakePresence) LiveInstances(context.Context, time.Time, time.Time) (store.Instances, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	on := map[string]int{}
	for h, n := range f.activeOn {
		on[h] = n
	}
	for _, h := range f.reported { // this instance's own row
		on[h]++
	}
	return store.Instances{Live: 4, ActiveOn: on}, nil
}

func (f *fakePresence) Leave(context.Context, string) error {
	f.left.Store(true)
	return nil
}

func (f *fakePresence) set(activeOn map[string]int) {
	f.mu.Lock()
	f.activeOn = activeOn
	f.mu.Unlock()
}

// Each instance starts from its part of a resource's management budget: 1/n, n the instances
// making management calls to that resource, itself included; an instance that uses a resource
// alone keeps all of it, whatever the number of instances alive.
func TestPresenceSharesTheManagementBudget(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	defer srv.Close()
	cfg := &config.Config{ManagementRate: 4.8, ListRate: 9, OperationRate: 45, BudgetShare: 0.8}
	p := newPacers(cfg)
	source := p.transport(srv.URL + "/source/")
	p.transport("https://westus2.example/") // a target this instance has not called yet
	// This instance makes management calls to the source only.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/source/documentModels/x:copyTo", nil)
	resp, err := source.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	a := &App{Log: slog.New(slog.DiscardHandler), pacers: p}
	rate := func(host string) float64 { return p.by[host].Stats()["management"].Rate }
	srcHost := hostOf(srv.URL)
	f := &fakePresence{}
	f.set(map[string]int{srcHost: 3}) // three other copy starters
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.presence(ctx, f, 20*time.Millisecond); close(done) }()
	share := 4.8 * 0.8
	waitFor(t, func() bool { return rate(srcHost) < share/2 })
	if got := rate(srcHost); !near(got, share/4) {
		t.Errorf("source management rate %v with 4 copy starters, want %v", got, share/4)
	}
	// Nobody else calls the target's management API: if this one starts to, it is alone there.
	if got := rate("westus2.example"); !near(got, share) {
		t.Errorf("target management rate %v, want all of it %v", got, share)
	}
	if got := p.by[srcHost].Stats()["list"].Rate; !near(got, 9*0.8) {
		t.Errorf("list rate %v, want the whole share (timers run on one instance)", got)
	}
	f.set(map[string]int{"westus2.example": 2}) // two others start calling the target
	waitFor(t, func() bool { return rate("westus2.example") < share/2 })
	if got := rate("westus2.example"); !near(got, share/3) {
		t.Errorf("target management rate %v with 2 others there, want to start from a third %v", got, share/3)
	}
	f.fail.Store(true) // the table down: the last count stands, nothing restarts
	before := rate("westus2.example")
	n := f.beats.Load()
	waitFor(t, func() bool { return f.beats.Load() > n+2 })
	if got := rate("westus2.example"); got < before {
		t.Errorf("target rate %v fell after failed beats (was %v)", got, before)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("presence did not stop with its context")
	}
	if !f.left.Load() {
		t.Error("a stopped instance did not remove its presence")
	}
}

// near allows for the recovery curve's climb during the test (well under 1 % a second).
func near(a, b float64) bool { return a-b < b/100 && b-a < b/100 }

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
