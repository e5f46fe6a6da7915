package bench

import (
	"fmt"
	"io"
)

// sweepTwoWay is the BenchmarkSweepTwoWay3x1000 line of the Go benchmarks' output.
type sweepTwoWay struct {
	nsPerOp, lists, throttled, boundParallel, boundPaced float64
}

// sweepTwoWayPrefix names the benchmark (internal/e2e) whose line the section renders.
const sweepTwoWayPrefix = "BenchmarkSweepTwoWay3x1000"

// parseSweepTwoWay reads the last BenchmarkSweepTwoWay3x1000 line of `go test -bench` output.
func parseSweepTwoWay(gobench string) (sweepTwoWay, bool) {
	ls := benchLines(gobench, sweepTwoWayPrefix)
	if len(ls) == 0 {
		return sweepTwoWay{}, false
	}
	m := ls[len(ls)-1].metrics
	return sweepTwoWay{nsPerOp: m["ns/op"], lists: m["list-calls/sweep"], throttled: m["429s/sweep"],
		boundParallel: m["bound-parallel-s"], boundPaced: m["bound-paced-s"]}, true
}

// sweepTwoWaySection renders the two-way sweep's figures (nothing when the benchmark did not run).
func (r *Report) sweepTwoWaySection(w io.Writer) {
	s, ok := parseSweepTwoWay(r.GoBench)
	if !ok {
		return
	}
	within := "yes"
	if s.boundPaced > 0 && s.nsPerOp/1e9 > 1.1*s.boundPaced {
		within = "no"
	}
	fmt.Fprintf(w, "## 7. A sweep of three resources under two-way rules\n\n"+
		"Resources a, b and c hold 1,000 models each under the rules `a>b,b>a,a>c,c>a,b>c,c>b`: each trained a third of\n"+
		"them and holds dimirror's copies of the others'. A sweep in sync lists every resource once, whatever the number\n"+
		"of rules, each under its own limit (didev's S0 limits: lists 10/s per resource; dimirror paces itself at\n"+
		"`DIMIRROR_LIST_RATE` × `DIMIRROR_BUDGET_SHARE`, 9 × 0.8 by default), so its bound is the largest resource's list\n"+
		"calls at that pace, not six rules' worth:\n\n"+
		"```\ngo test -run '^$' -bench SweepTwoWay -benchtime=3x ./internal/e2e\n```\n\n")
	fmt.Fprintf(w, "| time per sweep | list calls | 429s | bound at dimirror's pace | bound at the service's limit | within the bound |\n|---|---|---|---|---|---|\n")
	row(w, fmt.Sprintf("%.2f s", s.nsPerOp/1e9), fmt.Sprintf("%.0f", s.lists), fmt.Sprintf("%.0f", s.throttled),
		fmt.Sprintf("%.2f s", s.boundPaced), fmt.Sprintf("%.2f s", s.boundParallel), within)
	fmt.Fprintln(w)
}
