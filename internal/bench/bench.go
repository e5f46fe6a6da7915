// Package bench measures dimirror against the local stack (didev with the S0 rate limits, devbus,
// Azurite) running `dimirror run` as a child process, as docs/BENCHMARKS.md reports: replication
// overhead next to a user's copy script, throughput against the rate-limit bound, the automatic
// copy lag, and what a handler costs (CPU, peak memory, cold start). cmd/bench drives it.
package bench

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/internal/devstack"
	"github.com/dimirror/dimirror/internal/harness"
	"github.com/dimirror/dimirror/shared/replication"
)

// Env is what every measurement needs.
type Env struct {
	Binary   string    // the dimirror binary
	LogDir   string    // dimirror's logs, one file per process life
	Progress io.Writer // a line per step; nil discards

	mu   sync.Mutex
	runs int // numbers the instances, so every run's logs have names of their own
}

// instanceName names a run's dimirror instance: "overhead-2" is the second run's.
func (e *Env) instanceName(run string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.runs++
	return fmt.Sprintf("%s-%d", run, e.runs)
}

func (e *Env) logf(format string, args ...any) {
	if e.Progress != nil {
		fmt.Fprintf(e.Progress, time.Now().Format("15:04:05 ")+format+"\n", args...)
	}
}

// DefaultPollSchedule is dimirror's poll timer when DIMIRROR_POLL_SCHEDULE is not set.
const DefaultPollSchedule = "*/5 * * * * *"

// deployedSettings undo the test tweaks of devstack: the benchmarks run dimirror with the
// settings a deployment gets by default (only the connections and what a run names differ).
var deployedSettings = map[string]string{
	"DIMIRROR_RETRY_BASE":     "30s",
	"DIMIRROR_RETRY_MAX":      "30m",
	"DIMIRROR_CALL_TIMEOUT":   "30s",
	"DIMIRROR_CLAIM_LEASE":    "1m",
	"DIMIRROR_LOG_LEVEL":      "info",
	"DIMIRROR_POLL_SCHEDULE":  DefaultPollSchedule,
	"DIMIRROR_WATCH_SCHEDULE": DefaultWatchSchedule,
	// The hourly sweep re-reads every model of every resource: out of the runs' way.
	"DIMIRROR_SWEEP_SCHEDULE": devstack.Never,
}

// DefaultWatchSchedule is the watch timer when DIMIRROR_WATCH_SCHEDULE is not set.
const DefaultWatchSchedule = "*/30 * * * * *"

// stackOptions is a stack with didev's default S0 rate limits, copies of copyDuration and n
// models on the source named prefix-0000...; settings override the deployed defaults.
func stackOptions(prefix string, n int, copyDuration time.Duration, settings map[string]string) devstack.Options {
	s := map[string]string{}
	for k, v := range deployedSettings {
		s[k] = v
	}
	for k, v := range settings {
		s[k] = v
	}
	return devstack.Options{
		Settings: s,
		DI: func(o *didev.Options) {
			o.CopyDuration = copyDuration
			o.Rate = didev.RateOptions{} // zero: the S0 figures (management 5/s, get-operation 50/s, list 10/s)
			o.Seeds = append(o.Seeds, modelSeeds(prefix, n)...)
		},
	}
}

// ModelID is the i-th benchmark model of a run.
func ModelID(prefix string, i int) string { return fmt.Sprintf("%s-%04d", prefix, i) }

func modelSeeds(prefix string, n int) []didev.Seed {
	out := make([]didev.Seed, n)
	for i := range out {
		out[i] = didev.Seed{Resource: "source", Kind: didev.KindModel, ID: ModelID(prefix, i)}
	}
	return out
}

// startStack starts a stack and one dimirror instance on it.
func (e *Env) startStack(ctx context.Context, o devstack.Options, name string) (*harness.Stack, *harness.Instance, error) {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	st, err := harness.StartStack(sctx, o)
	if err != nil {
		return nil, nil, err
	}
	in := &harness.Instance{Name: e.instanceName(name), Binary: e.Binary, Settings: st.Settings, LogDir: e.LogDir}
	if _, err := in.Start(sctx); err != nil {
		_ = st.Close()
		return nil, nil, err
	}
	return st, in, nil
}

// requestAll posts one webhook per id, spaced by interval (0: all at once, with at most
// parallel in flight), and returns when each was answered.
func requestAll(ctx context.Context, c *harness.Client, ids []string, interval time.Duration, parallel int) (map[string]harness.Accepted, error) {
	var mu sync.Mutex
	out := make(map[string]harness.Accepted, len(ids))
	var firstErr error
	slots := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	tick := time.Now()
	for _, id := range ids {
		if interval > 0 {
			tick = tick.Add(interval)
			if d := time.Until(tick); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			acc, err := c.Replicate(ctx, "model", id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			out[id] = acc
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return out, firstErr
}

// copyOps indexes the source's copy operations by the target model URL they copy into (without
// the query), keeping a succeeded one where there are several.
func copyOps(st *harness.Stack) map[string]didev.Operation {
	out := map[string]didev.Operation{}
	for _, op := range st.DI.Resource("source").Operations() {
		loc, _, _ := strings.Cut(op.ResourceLocation, "?")
		if prev, ok := out[loc]; ok && prev.Status == "succeeded" {
			continue
		}
		out[loc] = op
	}
	return out
}

// targetLocation is the URL a copy into r's target model reports (2024-11-30 paths).
func targetLocation(st *harness.Stack, r replication.Replica) string {
	return st.DI.Endpoint(r.Target) + "/documentintelligence/documentModels/" + r.TargetID
}
