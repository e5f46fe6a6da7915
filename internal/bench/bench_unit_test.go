package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/internal/harness"
	"github.com/dimirror/dimirror/shared/config"
)

func TestComputeBound(t *testing.T) {
	targets := []string{"westus2", "eastus"}
	tests := []struct {
		name          string
		models        int
		rates         map[string]float64
		wantResource  string
		wantCategory  string
		wantCalls     int
		wantWall      time.Duration
		wantNeedCount int
	}{
		// 2,000 copyTo calls on the source at 5/s, less the burst of 5: 399 s, plus a 2 s copy.
		{"1000 models at S0", 1000, S0, "source", didev.CategoryManagement, 2000, 401 * time.Second, 7},
		{"one model", 1, S0, "source", didev.CategoryManagement, 2, 2 * time.Second, 7},
		// With a generous management budget, the source's reads (one per model) bind.
		{"management not binding", 100, map[string]float64{didev.CategoryManagement: 1000, didev.CategoryGetOperation: 1000, didev.CategoryList: 2},
			"source", didev.CategoryList, 100, 49*time.Second + 2*time.Second, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := ComputeBound(tt.models, targets, 2*time.Second, tt.rates)
			if b.Binding.Resource != tt.wantResource || b.Binding.Category != tt.wantCategory || b.Binding.Calls != tt.wantCalls {
				t.Errorf("binding %+v, want %s %s with %d calls", b.Binding, tt.wantResource, tt.wantCategory, tt.wantCalls)
			}
			if b.Wall != tt.wantWall {
				t.Errorf("wall %s, want %s", b.Wall, tt.wantWall)
			}
			if len(b.Needs) != tt.wantNeedCount {
				t.Errorf("%d needs, want %d", len(b.Needs), tt.wantNeedCount)
			}
			for i := 1; i < len(b.Needs); i++ {
				if b.Needs[i].Time > b.Needs[i-1].Time {
					t.Errorf("needs not busiest first: %+v", b.Needs)
				}
			}
		})
	}
}

func TestCallsPerCopy(t *testing.T) {
	c := CallsPerCopy{Authorize: 20, CopyTo: 30, Polls: 40, Verify: 20, SourceReads: 10}.per(20)
	if c != (CallsPerCopy{Authorize: 1, CopyTo: 1.5, Polls: 2, Verify: 1, SourceReads: 0.5}) {
		t.Errorf("per copy %+v", c)
	}
	if (CallsPerCopy{CopyTo: 3}).per(0) != (CallsPerCopy{}) {
		t.Error("no copies must give zero, not infinity")
	}
}

func TestPollCostPerReplica(t *testing.T) {
	out := "BenchmarkPollPass/inflight=100-2  100  6342191 ns/op  63.42 µs/replica\n" +
		"BenchmarkPollPass/inflight=1000-2  100  57576960 ns/op  57.58 µs/replica\n"
	if got := pollCostPerReplica(out); got != "57.58 µs" {
		t.Errorf("got %q", got)
	}
	if got := pollCostPerReplica(""); got != "tens of µs" {
		t.Errorf("without benchmarks: %q", got)
	}
}

func sample(d ...time.Duration) harness.Summary { return harness.Summarize(d) }

func TestReportMarkdown(t *testing.T) {
	tput := &ThroughputResult{
		Options: ThroughputOptions{Models: 1000, CopyDuration: 2 * time.Second, Parallel: 8},
		Copies:  2000, Wall: 420 * time.Second, Bound: ComputeBound(1000, []string{"westus2", "eastus"}, 2*time.Second, S0),
		Requests: 10000, Throttled: 3000, Share429: 0.3,
		Calls: CallsPerCopy{Authorize: 1.2, CopyTo: 3.1, Polls: 1.4, Verify: 1, SourceReads: 1.6},
		Usage: harness.Usage{CPU: 8 * time.Second, PeakRSS: 40 << 20},
	}
	tput.Ratio = float64(tput.Bound.Wall) / float64(tput.Wall)
	r := &Report{
		Started: time.Date(2026, 11, 21, 23, 0, 0, 0, time.UTC), Elapsed: 15 * time.Minute, Machine: "2 CPUs",
		Commands: []string{"make bench"},
		Overhead: []OverheadResult{
			{Options: OverheadOptions{Models: 30, Interval: 600 * time.Millisecond, CopyDuration: 2 * time.Second, PollSchedule: DefaultPollSchedule},
				Copies: 60, Overhead: sample(500*time.Millisecond, 600*time.Millisecond), Start: sample(20 * time.Millisecond), Detect: sample(480 * time.Millisecond)},
			{Options: OverheadOptions{Models: 30, Interval: 600 * time.Millisecond, CopyDuration: 2 * time.Second, PollSchedule: DefaultPollSchedule, FollowFor: "0s"},
				Copies: 60, Overhead: sample(2500 * time.Millisecond)},
		},
		Baseline:    &BaselineResult{Options: BaselineOptions{PollInterval: 5 * time.Second}, Copies: 60, Overhead: sample(3 * time.Second), Polls: 1},
		Throughput:  tput,
		ColdStart:   &harness.Summary{N: 10, P50: 15 * time.Millisecond},
		NotMeasured: map[string]string{"automatic-copy lag": "no watch"},
	}
	var buf bytes.Buffer
	r.WriteMarkdown(&buf)
	md := buf.String()
	for _, want := range []string{
		"# dimirror benchmarks", "make bench", "absolute times are noise",
		"| replication overhead, check messages on (default), poll `*/5 * * * * *` (default), p50 / p95 | 500 ms / 600 ms | p50 < 1 s: met |",
		"`DIMIRROR_FOLLOW_FOR=0s` (no check messages), poll `*/5 * * * * *` (default), p50 / p95 | 2.50 s / 2.50 s | p50 < 1 s: **not met** |",
		"0.17× the script's", // 500 ms vs 3 s, the deployed defaults
		"(= bound / wall time) = **0.95**", "goal ≥ 0.9: met",
		"**30.0 %** (goal < 1 %: **not met**)", "copyTo calls per copy", "3.10",
		"**4.00 s per 1,000 copies**", "**40 MiB**", "p50 **15 ms**",
		"automatic-copy lag: no watch", "its form (no `make chaos` output was found)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	r.ChaosSummary = "chaos seed=7: 520 replications, outcome PASS"
	buf.Reset()
	r.WriteMarkdown(&buf)
	if !strings.Contains(buf.String(), "the last run's (bin/chaos.txt):\n\n```\nchaos seed=7: 520 replications, outcome PASS") {
		t.Error("the chaos summary is not quoted")
	}
}

// The benchmarks claim to run dimirror with its deployed defaults: keep them in step.
func TestDefaultsMatchTheSettings(t *testing.T) {
	settings := map[string]string{
		"DIMIRROR_SOURCE_ENDPOINT": "http://127.0.0.1:5101", "DIMIRROR_SOURCE_KEY": "k",
		"DIMIRROR_TARGETS": "westus2=http://127.0.0.1:5102", "DIMIRROR_TARGET_KEYS": "westus2=k",
		"ServiceBusConnection": "Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=a;SharedAccessKey=b;UseDevelopmentEmulator=true",
		"TableConnection":      "UseDevelopmentStorage=true",
	}
	cfg, err := config.LoadFrom(func(k string) (string, bool) { v, ok := settings[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PollSchedule != DefaultPollSchedule || cfg.WatchSchedule != DefaultWatchSchedule {
		t.Errorf("settings default to poll %q and watch %q; the benchmarks assume %q and %q",
			cfg.PollSchedule, cfg.WatchSchedule, DefaultPollSchedule, DefaultWatchSchedule)
	}
	for k, got := range map[string]time.Duration{"DIMIRROR_RETRY_BASE": cfg.RetryBase, "DIMIRROR_RETRY_MAX": cfg.RetryMax,
		"DIMIRROR_CALL_TIMEOUT": cfg.CallTimeout, "DIMIRROR_CLAIM_LEASE": cfg.ClaimLease} {
		if want, err := time.ParseDuration(deployedSettings[k]); err != nil || got != want {
			t.Errorf("%s defaults to %s; the benchmarks set %q", k, got, deployedSettings[k])
		}
	}
}
