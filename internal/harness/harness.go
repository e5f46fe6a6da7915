// Package harness runs dimirror the way operators do — `dimirror run` child processes against the
// local stack (devbus, didev, Azurite) — for the benchmarks and the fault-injection suite. It
// builds the binary, starts, kills and restarts instances, sends webhook requests, reads the
// replica table, summarises latencies and scans logs for secrets.
package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/dimirror/dimirror/internal/devstack"
	"github.com/dimirror/dimirror/internal/testenv"
	"github.com/dimirror/dimirror/shared/replication"
	"github.com/dimirror/dimirror/shared/store"
)

// Build compiles cmd/dimirror into dir (created if needed) and returns the binary's path. It runs
// the go command from the module root, so it works from any package directory.
func Build(ctx context.Context, dir string) (string, error) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out, err := filepath.Abs(filepath.Join(dir, "dimirror"))
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "./cmd/dimirror")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building dimirror: %w\n%s", err, msg)
	}
	return out, nil
}

// Binary returns path when it names an existing file, else builds dimirror into dir.
func Binary(ctx context.Context, path, dir string) (string, error) {
	if path != "" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", err
		}
		if st, err := os.Stat(abs); err != nil || st.IsDir() {
			return "", fmt.Errorf("dimirror binary %s: not a file (build it with `make build`)", path)
		}
		return abs, nil
	}
	return Build(ctx, dir)
}

// Stack is the local stack with direct access to dimirror's replica table.
type Stack struct {
	*devstack.Stack
	Store *store.Tables
}

// StartStack starts devbus and didev in process (Azurite as the shared child process) and opens
// the replica table the stack's settings name.
func StartStack(ctx context.Context, o devstack.Options) (*Stack, error) {
	st, err := devstack.Start(ctx, o)
	if err != nil {
		return nil, err
	}
	tables, err := store.Open(ctx, store.Options{
		ConnectionString: st.Settings["TableConnection"],
		Table:            st.Settings["DIMIRROR_TABLE"],
		CallTimeout:      30 * time.Second,
	})
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return &Stack{Stack: st, Store: tables}, nil
}

// Replicas lists every row that matches f.
func (s *Stack) Replicas(ctx context.Context, f replication.Filter) ([]replication.Replica, error) {
	var all []replication.Replica
	next := ""
	for {
		page, err := s.Store.List(ctx, f, next, 1000)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Replicas...)
		if next = page.Next; next == "" {
			return all, nil
		}
	}
}

// ErrNotSettled is returned by WaitSettled when the deadline passes first.
var ErrNotSettled = errors.New("replicas did not settle in time")

// WaitSettled polls the table until want rows exist and none is in flight, and returns them.
// progress, if set, is told the counts by status after every look. When ctx ends first it
// returns the last rows it read, with ErrNotSettled.
func (s *Stack) WaitSettled(ctx context.Context, want int, every time.Duration, progress func(map[replication.Status]int)) ([]replication.Replica, error) {
	var last []replication.Replica
	var lastErr error
	for {
		rows, err := s.Replicas(ctx, replication.Filter{})
		if lastErr = err; err == nil {
			last = rows
			counts := Counts(rows)
			if progress != nil {
				progress(counts)
			}
			if len(rows) >= want && counts[replication.StatusSucceeded]+counts[replication.StatusFailed] == len(rows) {
				return rows, nil
			}
		}
		select {
		case <-ctx.Done():
			if last == nil && lastErr != nil {
				return nil, fmt.Errorf("%w: reading the table: %w", ErrNotSettled, lastErr)
			}
			return last, fmt.Errorf("%w: %d rows, %v", ErrNotSettled, len(last), Counts(last))
		case <-time.After(every):
		}
	}
}

// Counts tallies rows by status.
func Counts(rows []replication.Replica) map[replication.Status]int {
	counts := map[replication.Status]int{}
	for _, r := range rows {
		counts[r.Status]++
	}
	return counts
}
