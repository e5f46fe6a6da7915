package harness

import (
	"fmt"
	"slices"
	"time"
)

// Summary describes a sample of durations.
type Summary struct {
	N                  int
	P50, P95, Max, Min time.Duration
	Mean               time.Duration
}

// Summarize computes the nearest-rank percentiles of ds.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return Summary{N: len(s), P50: rank(s, 0.50), P95: rank(s, 0.95), Max: s[len(s)-1], Min: s[0], Mean: sum / time.Duration(len(s))}
}

// rank is the nearest-rank percentile of a sorted sample.
func rank(sorted []time.Duration, p float64) time.Duration {
	i := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func (s Summary) String() string {
	if s.N == 0 {
		return "no samples"
	}
	return fmt.Sprintf("n=%d p50=%s p95=%s max=%s", s.N, Round(s.P50), Round(s.P95), Round(s.Max))
}

// Round shortens a duration for reports: milliseconds below a minute, tenths of a second above.
func Round(d time.Duration) time.Duration {
	if d < -time.Minute || d > time.Minute {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
