package app

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dimirror/dimirror/shared/config"
)

type fakePresence struct {
	live  atomic.Int32
	beats atomic.Int32
	fail  atomic.Bool
}

func (f *fakePresence) Heartbeat(context.Context, string, time.Time) error {
	f.beats.Add(1)
	if f.fail.Load() {
		return errors.New("table unreachable")
	}
	return nil
}

func (f *fakePresence) LiveInstances(context.Context, time.Time, time.Time) (int, error) {
	return int(f.live.Load()), nil
}

// Each instance takes its part of a resource's management budget: with four alive, a quarter.
func TestPresenceDividesTheManagementBudget(t *testing.T) {
	cfg := &config.Config{ManagementRate: 4.8, ListRate: 9, OperationRate: 45, BudgetShare: 0.8}
	p := newPacers(cfg)
	p.transport("https://westus2.example/")
	a := &App{Log: slog.New(slog.DiscardHandler), pacers: p}
	rate := func(kind string) float64 {
		for _, pc := range p.by {
			return pc.Stats()[kind].Rate
		}
		return 0
	}
	f := &fakePresence{}
	f.live.Store(4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.presence(ctx, f, 20*time.Millisecond); close(done) }()
	waitFor(t, func() bool { return rate("management") < 1 })
	if got, want := rate("management"), 4.8*0.8/4; got < want-1e-9 || got > want+1e-9 {
		t.Errorf("management rate %v with 4 instances, want %v", got, want)
	}
	if got := rate("list"); got != 9*0.8 {
		t.Errorf("list rate %v, want the whole share (timers run on one instance)", got)
	}
	f.live.Store(0) // its own row not listed yet: still one instance, never zero
	waitFor(t, func() bool { return rate("management") > 3 })
	f.fail.Store(true) // the table down: the last count stands
	n := f.beats.Load()
	waitFor(t, func() bool { return f.beats.Load() > n+2 })
	if got := rate("management"); got != 4.8*0.8 {
		t.Errorf("management rate %v after failed beats, want the last count's", got)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("presence did not stop with its context")
	}
}

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
