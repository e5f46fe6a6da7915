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

// The bound on dimirror's share: share × each limit, and on the source's management budget no
// more than what a competitor leaves.
func TestBoundWith(t *testing.T) {
	targets := []string{"westus2", "eastus"}
	tests := []struct {
		name              string
		share, competitor float64
		limits            map[string]float64
		wantRate          float64 // of the binding need, source management
		wantWall          time.Duration
	}{
		{"full limits", 1, 0, S0, 5, 119*time.Second + 2*time.Second},
		{"share 0.8", 0.8, 0, S0, 4, 149*time.Second + 2*time.Second},
		{"competitor within the share", 0.8, 1, S0, 4, 149*time.Second + 2*time.Second},
		{"competitor beyond the share", 0.8, 2, S0, 3, 199*time.Second + 2*time.Second},
		{"competitor on the full limits", 1, 1, S0, 4, 149*time.Second + 2*time.Second},
		{"limit 2", 1, 0, map[string]float64{"management": 2, "get-operation": 50, "list": 10}, 2, 299*time.Second + 2*time.Second},
	}
	for _, tt := range tests {
		b := boundWith(300, targets, 2*time.Second, tt.limits, tt.share, tt.competitor)
		if b.Binding.Resource != "source" || b.Binding.Category != "management" || !approx(b.Binding.Rate, tt.wantRate) {
			t.Errorf("%s: binding %+v, want source management at %g/s", tt.name, b.Binding, tt.wantRate)
		}
		if d := b.Wall - tt.wantWall; d < -time.Second || d > time.Second {
			t.Errorf("%s: wall %s, want about %s", tt.name, b.Wall, tt.wantWall)
		}
	}
}

func approx(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

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
	tput.Share = DefaultBudgetShare
	tput.OwnBound = boundWith(1000, []string{"westus2", "eastus"}, 2*time.Second, S0, DefaultBudgetShare, 0)
	tput.OwnRatio = float64(tput.OwnBound.Wall) / float64(tput.Wall)
	pacing := []ThroughputResult{{
		Options: ThroughputOptions{Models: 300, CopyDuration: 2 * time.Second, Instances: 1, Competitor: 1, Label: "a competitor"},
		Copies:  600, Wall: 160 * time.Second, Ratio: 0.93, OwnRatio: 0.94, Share: DefaultBudgetShare,
		Requests: 3200, Throttled: 3, Share429: 3.0 / 3200, CallsPerReplica: 5.33,
		CompetitorCalls: 160, CompetitorThrottled: 1, CompetitorShare429: 1.0 / 160,
	}}
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
		Pacing:      pacing,
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
		"(= bound / wall time) = **1.19** on dimirror's share (goal ≥ 0.9: met), 0.95 on the full limits",
		"## 5. Pacing with many instances", "| a competitor | 1 | 5/s | 600 (0) | 160.0 s |", "| 0.09 % (3 of 3200) | 5.33 | 0.62 % (1 of 160) |",
		"- one instance, S0: 429 share 30.00 % (**not met**)",
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
