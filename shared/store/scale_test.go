package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dimirror/dimirror/shared/replication"
)

// TestListingsAtScale fills a table with 5,000 replicas (50 sources × 100 targets, written in
// batch transactions of 100) of which a few are in flight, beside the reconciler's rows, and
// checks that the sweep's and the status list's listings return every row exactly once across
// pages, and that the in-flight listing reads the index and the rows in flight only.
func TestListingsAtScale(t *testing.T) {
	const sources, targets = 50, 100
	tb, rc := openRecorded(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var rows []*replication.Replica
	var inflight []string
	for s := range sources {
		for g := range targets {
			status := replication.StatusSucceeded
			switch {
			case (s*targets+g)%67 == 0:
				status = replication.StatusCopying
			case (s*targets+g)%71 == 0:
				status = replication.StatusPending
			case (s*targets+g)%97 == 0:
				status = replication.StatusFailed
			}
			r := replica(fmt.Sprintf("model-%03d", s), fmt.Sprintf("t%03d", g), status)
			rows = append(rows, r)
			if status.InFlight() {
				inflight = append(inflight, r.Key.String())
			}
		}
	}
	slices.Sort(inflight)
	start := time.Now()
	if err := tb.CreateMany(ctx, rows); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rows written in %s (%d requests)", len(rows), time.Since(start).Round(time.Millisecond), rc.n.Load())
	if _, err := tb.PutMeta(ctx, "sweep", []byte(`{}`), ""); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		f     replication.Filter
		limit int
		want  int
	}{
		{"sweep, pages of 1000", replication.Filter{}, 1000, len(rows)},
		{"sweep, pages of 333", replication.Filter{}, 333, len(rows)},
		{"status list of one target", replication.Filter{Target: "t042"}, 1000, sources},
		{"status list of succeeded", replication.Filter{Status: []replication.Status{replication.StatusSucceeded}}, 1000, len(rows) - len(inflight) - failedCount(rows)},
		{"in flight", inFlight, 1000, len(inflight)},
		{"in flight, pages of 7", inFlight, 7, len(inflight)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			got := listAll(t, tb, tt.f, tt.limit)
			if len(got) != tt.want {
				t.Errorf("listed %d, want %d", len(got), tt.want)
			}
			for _, r := range got {
				if len(tt.f.Status) > 0 && !slices.Contains(tt.f.Status, r.Status) || tt.f.Target != "" && r.Target != tt.f.Target {
					t.Fatalf("%s (%s) does not match the filter", r.Key, r.Status)
				}
			}
			t.Logf("%d rows in %s", len(got), time.Since(start).Round(time.Millisecond))
		})
	}

	// One poll pass's listing, once the index is built: one query of the index and one point
	// read per replica in flight, whatever else the table holds.
	rc.reset()
	got := keysOf(listAll(t, tb, inFlight, 1000))
	if !slices.Equal(got, inflight) {
		t.Fatalf("in flight: %d listed, want %d", len(got), len(inflight))
	}
	if n, want := rc.n.Load(), int64(1+len(inflight)); n != want || rc.scans.Load() != 0 {
		t.Errorf("the in-flight listing made %d requests (%d scans), want %d (1 query of the index + 1 read per replica in flight)",
			n, rc.scans.Load(), want)
	}
}

func failedCount(rs []*replication.Replica) int {
	n := 0
	for _, r := range rs {
		if r.Status == replication.StatusFailed {
			n++
		}
	}
	return n
}
