package bench

import (
	"strconv"
	"strings"
)

// benchLine is one result line of `go test -bench` output: the benchmark's name and its
// metrics by unit (ns/op, and every b.ReportMetric unit).
type benchLine struct {
	name    string
	metrics map[string]float64
}

// benchLines returns the result lines of gobench whose benchmark name starts with prefix, in
// order.
func benchLines(gobench, prefix string) []benchLine {
	var out []benchLine
	for _, line := range strings.Split(gobench, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasPrefix(f[0], prefix) {
			continue
		}
		b := benchLine{name: f[0], metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				b.metrics[f[i+1]] = v
			}
		}
		out = append(out, b)
	}
	return out
}
