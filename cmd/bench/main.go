// Command bench measures dimirror against the local stack and writes docs/BENCHMARKS.md: the
// replication overhead next to a user's copy script, throughput against the rate-limit bound,
// the automatic-copy lag, CPU, memory and cold start. `make bench` runs it after the Go
// benchmarks; internal/bench says what each figure means.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/dimirror/dimirror/internal/bench"
	"github.com/dimirror/dimirror/internal/harness"
	"github.com/dimirror/dimirror/internal/testenv"
)

// commands are what `make bench` runs, shown in the report.
var commands = []string{
	"make bench",
	"# which runs:",
	"make build",
	"go test -run '^$' -bench . -benchtime=200x ./internal/bench | tee bin/gobench.txt",
	"go test -run '^$' -bench SweepTwoWay -benchtime=3x ./internal/e2e | tee -a bin/gobench.txt",
	"go run ./cmd/bench -dimirror bin/dimirror -gobench bin/gobench.txt -chaos-summary bin/chaos.txt -json bin/bench.json -out docs/BENCHMARKS.md",
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	testenv.StopShared()
	os.Exit(code)
}

type options struct {
	binary, logDir, out, goBench, chaosSummary, only string
	saveJSON, fromJSON                               string
	overheadModels, throughputModels, lagModels      int
	pacingModels                                     int
	coldStarts                                       int
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.binary, "dimirror", "", "the dimirror binary to measure (default: build one)")
	fs.StringVar(&o.logDir, "logs", "", "where dimirror's logs go (default: a new temporary directory)")
	fs.StringVar(&o.out, "out", "", "write the report here (docs/BENCHMARKS.md); default stdout")
	fs.StringVar(&o.goBench, "gobench", "", "a file with the Go benchmarks' output, included in the report")
	fs.StringVar(&o.chaosSummary, "chaos-summary", "", "a file with `make chaos` output; its summary line is quoted in the report")
	fs.StringVar(&o.saveJSON, "json", "", "also write the measurements as JSON here (to render again with -from)")
	fs.StringVar(&o.fromJSON, "from", "", "render the report from measurements saved with -json instead of measuring")
	fs.StringVar(&o.only, "only", "", "comma list of the figures to measure: coldstart, overhead, baseline, lag, throughput, pacing (default all)")
	fs.IntVar(&o.overheadModels, "overhead-models", 30, "overhead and baseline runs: webhook requests, each copying into 2 targets")
	fs.IntVar(&o.throughputModels, "throughput-models", 300, "throughput run (one instance, S0): models, each copied into 2 targets")
	fs.IntVar(&o.pacingModels, "pacing-models", 300, "pacing runs (2 and 4 instances, unknown limits, a competing client): models, each copied into 2 targets")
	fs.IntVar(&o.lagModels, "lag-models", 20, "automatic-copy run: models built on the source")
	fs.IntVar(&o.coldStarts, "cold-starts", 10, "cold start: how many starts")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: go run ./cmd/bench [flags]\n\nMeasures dimirror against the local stack (needs Azurite: npm ci) and writes the report.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	for name, n := range map[string]int{"overhead-models": o.overheadModels, "throughput-models": o.throughputModels, "pacing-models": o.pacingModels, "lag-models": o.lagModels, "cold-starts": o.coldStarts} {
		if n < 1 {
			fmt.Fprintf(stderr, "bench: -%s must be at least 1\n", name)
			return 2
		}
	}
	known := map[string]bool{"coldstart": true, "overhead": true, "baseline": true, "lag": true, "throughput": true, "pacing": true}
	for _, f := range strings.Split(o.only, ",") {
		if f = strings.TrimSpace(f); f != "" && !known[f] {
			fmt.Fprintf(stderr, "bench: -only: unknown figure %q (coldstart, overhead, baseline, lag, throughput, pacing)\n", f)
			return 2
		}
	}
	var rep *bench.Report
	var err error
	if o.fromJSON != "" {
		rep, err = load(o.fromJSON)
	} else {
		rep, err = measure(ctx, o, stderr)
	}
	if err == nil && o.goBench != "" {
		var b []byte
		if b, err = os.ReadFile(o.goBench); err == nil {
			rep.GoBench = benchLines(b)
		}
	}
	if err == nil && o.chaosSummary != "" {
		if line := chaosLine(o.chaosSummary); line != "" {
			rep.ChaosSummary = line
		}
	}
	if err == nil && o.saveJSON != "" {
		err = save(rep, o.saveJSON)
	}
	if err == nil {
		err = write(rep, o.out, stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	return 0
}

func load(path string) (*bench.Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &rep, nil
}

func save(rep *bench.Report, path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func write(rep *bench.Report, out string, stderr io.Writer) error {
	var buf bytes.Buffer
	rep.WriteMarkdown(&buf)
	if out == "" {
		_, err := os.Stdout.Write(buf.Bytes())
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench: wrote %s\n", out)
	return nil
}

func measure(ctx context.Context, o options, stderr io.Writer) (*bench.Report, error) {
	dir := o.logDir
	if dir == "" {
		d, err := os.MkdirTemp("", "dimirror-bench-")
		if err != nil {
			return nil, err
		}
		dir = d
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	bin, err := harness.Binary(ctx, o.binary, filepath.Join(dir, "bin"))
	if err != nil {
		return nil, err
	}
	env := &bench.Env{Binary: bin, LogDir: dir, Progress: stderr}
	want := func(name string) bool { return o.only == "" || strings.Contains(","+o.only+",", ","+name+",") }
	rep := &bench.Report{
		Started:     time.Now(),
		Machine:     fmt.Sprintf("%d CPUs shared with other work, %s/%s, %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version()),
		Commands:    commands,
		NotMeasured: map[string]string{},
	}
	fmt.Fprintf(stderr, "bench: logs in %s\n", dir)
	const copyDuration = 2 * time.Second
	if want("coldstart") {
		s, err := env.ColdStart(ctx, o.coldStarts)
		if err != nil {
			return nil, fmt.Errorf("cold start: %w", err)
		}
		rep.ColdStart = &s
	}
	if want("overhead") {
		// dimirror as deployed, then without check messages (only the poll timer sees copies end).
		for _, follow := range []string{"", "0s"} {
			r, err := env.Overhead(ctx, bench.OverheadOptions{Models: o.overheadModels, Interval: 600 * time.Millisecond,
				CopyDuration: copyDuration, PollSchedule: bench.DefaultPollSchedule, FollowFor: follow})
			if err != nil {
				return nil, fmt.Errorf("overhead: %w", err)
			}
			rep.Overhead = append(rep.Overhead, r)
		}
	}
	if want("baseline") {
		r, err := env.Baseline(ctx, bench.BaselineOptions{Models: o.overheadModels, Interval: 600 * time.Millisecond,
			CopyDuration: copyDuration, PollInterval: 5 * time.Second})
		if err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
		rep.Baseline = &r
	}
	if want("lag") {
		r, err := env.Lag(ctx, bench.LagOptions{Models: o.lagModels, Interval: 3 * time.Second, BuildDuration: 4 * time.Second,
			CopyDuration: copyDuration})
		switch {
		case err == nil:
			rep.Lag = &r
		case errors.Is(err, bench.ErrNoWatch):
			rep.NotMeasured["automatic-copy lag"] = err.Error()
		default:
			return nil, fmt.Errorf("lag: %w", err)
		}
	}
	if want("throughput") {
		r, err := env.Throughput(ctx, bench.ThroughputOptions{Models: o.throughputModels, CopyDuration: copyDuration,
			PollSchedule: bench.DefaultPollSchedule, Parallel: 8})
		if err != nil {
			return nil, fmt.Errorf("throughput: %w", err)
		}
		rep.Throughput = &r
	}
	if want("pacing") {
		// Beside the one-instance S0 run above (which is also the "5 management calls/s" run).
		for _, p := range pacingRuns {
			r, err := env.Throughput(ctx, bench.ThroughputOptions{Models: o.pacingModels, CopyDuration: copyDuration,
				PollSchedule: bench.DefaultPollSchedule, Parallel: 8, Instances: p.Instances, ManagementLimit: p.ManagementLimit,
				Competitor: p.Competitor, Label: p.Label})
			if err != nil {
				return nil, fmt.Errorf("pacing, %s: %w", p.Label, err)
			}
			rep.Pacing = append(rep.Pacing, r)
		}
	}
	rep.Elapsed = time.Since(rep.Started)
	return rep, nil
}

// pacingRuns are the runs beside the one-instance S0 throughput run: more instances sharing the
// queue, management limits dimirror was not told (5/s is the S0 run), and a client using 1 call/s
// of the source's management budget throughout.
var pacingRuns = []bench.ThroughputOptions{
	{Label: "2 instances, S0", Instances: 2},
	{Label: "4 instances, S0", Instances: 4},
	{Label: "one instance, resources allowing 2 management calls/s", Instances: 1, ManagementLimit: 2},
	{Label: "one instance, resources allowing 15 management calls/s", Instances: 1, ManagementLimit: 15},
	{Label: "one instance, S0, a client using 1 management call/s of the source", Instances: 1, Competitor: 1},
}

// benchLines keeps the benchmark result lines and the header of `go test -bench` output.
func benchLines(b []byte) string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := sc.Text()
		for _, p := range []string{"goos:", "goarch:", "pkg:", "cpu:", "Benchmark"} {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// chaosLine is the summary line of a `make chaos` run's output, or "" when there is none.
func chaosLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	line := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "chaos seed=") {
			line = sc.Text()
		}
	}
	return line
}
