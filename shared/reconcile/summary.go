package reconcile

import (
	"context"
	"math"
	"sort"
	"time"

	"github.com/dimirror/dimirror/shared/replication"
)

// FreshnessWindow is the span the lag and failure figures cover.
const FreshnessWindow = 24 * time.Hour

// Summary is the freshness of every target: GET /api/replications/summary.
type Summary struct {
	At     time.Time `json:"at"`
	Window string    `json:"window"`
	// RPO is the recovery point objective the targets' RPO figures are judged by.
	RPO       string            `json:"rpo"`
	Targets   []TargetFreshness `json:"targets"`
	LastWatch *Report           `json:"lastWatch,omitempty"`
	LastSweep *Report           `json:"lastSweep,omitempty"`
}

// TargetFreshness is one target's figures.
type TargetFreshness struct {
	Target string `json:"target"`
	// Replicas counts the target's replicas by status (every status present, zeros included).
	Replicas map[string]int `json:"replicas"`
	// OldestPendingSeconds is the age of the oldest replica still in flight (pending,
	// authorized or copying), from its request; 0 when none is.
	OldestPendingSeconds float64 `json:"oldestPendingSeconds"`
	// Lag is the replication lag of the replicas verified in the window.
	Lag Lag `json:"lag"`
	// Failures is how many replicas failed in the window (and are still failed).
	Failures int `json:"failures24h"`
	// Planned is what the last sweep found in this target, by category.
	Planned map[Category]int `json:"planned,omitempty"`
	// RPO is the target's standing against the recovery point objective (rpo.go).
	RPO RPOFigures `json:"rpo"`
	// LagPoints are the replicas verified in the window with their lag, oldest first, at most
	// the most recent 500: the page's chart.
	LagPoints []LagPoint `json:"lagPoints"`
}

// Lag is the distribution of replication lag: from the source model being ready (its
// createdDateTime) to the copy verified in the target. For a model that predates its replica's
// request by more than the window (a backfill of an old model, not a new one waiting), the lag
// is counted from the request instead, so one first sweep does not read as a year of lag.
type Lag struct {
	Count      int     `json:"count"`
	P50Seconds float64 `json:"p50Seconds"`
	P95Seconds float64 `json:"p95Seconds"`
	MaxSeconds float64 `json:"maxSeconds"`
}

// Summary computes the freshness figures from every replica row and the last reports.
func (r *Reconciler) Summary(ctx context.Context) (*Summary, error) {
	if err := r.ready(); err != nil {
		return nil, err
	}
	idx, err := r.readRows(ctx)
	if err != nil {
		return nil, err
	}
	watch, sweep, err := r.Reports(ctx)
	if err != nil {
		return nil, err
	}
	now := r.now()
	s := &Summary{At: now, Window: FreshnessWindow.String(), RPO: r.rpo().String(), LastWatch: watch, LastSweep: sweep}
	byTarget := map[string][]replication.Replica{}
	for _, row := range idx.all {
		byTarget[row.Target] = append(byTarget[row.Target], row)
	}
	for _, f := range figures(idx.all, now, r.Engine.TargetNames()) {
		if sweep != nil {
			f.Planned = sweep.PerTarget[f.Target]
		}
		f.RPO, f.LagPoints = rpoFigures(byTarget[f.Target], now, r.rpo())
		s.Targets = append(s.Targets, f)
	}
	return s, nil
}

// figures computes each target's figures from the replica rows at now.
func figures(rows []replication.Replica, now time.Time, targets []string) []TargetFreshness {
	by := map[string]*TargetFreshness{}
	lags := map[string][]time.Duration{}
	out := make([]TargetFreshness, len(targets))
	for i, t := range targets {
		out[i] = TargetFreshness{Target: t, Replicas: map[string]int{}}
		for _, st := range replication.Statuses {
			out[i].Replicas[string(st)] = 0
		}
		by[t] = &out[i]
	}
	since := now.Add(-FreshnessWindow)
	for _, row := range rows {
		f := by[row.Target]
		if f == nil {
			continue // a target no longer configured
		}
		f.Replicas[string(row.Status)]++
		switch {
		case row.Status.InFlight():
			if !row.RequestedAt.IsZero() {
				f.OldestPendingSeconds = max(f.OldestPendingSeconds, now.Sub(row.RequestedAt).Seconds())
			}
		case row.Status == replication.StatusFailed:
			if row.CompletedAt.After(since) {
				f.Failures++
			}
		case row.Status == replication.StatusSucceeded:
			if row.CompletedAt.After(since) {
				lags[row.Target] = append(lags[row.Target], lagOf(row))
			}
		}
	}
	for t, ds := range lags {
		by[t].Lag = lagFigures(ds)
	}
	return out
}

func lagOf(row replication.Replica) time.Duration {
	lag, _ := row.Lag()
	return lag
}

func lagFigures(ds []time.Duration) Lag {
	if len(ds) == 0 {
		return Lag{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return Lag{Count: len(ds), P50Seconds: percentile(ds, 0.50), P95Seconds: percentile(ds, 0.95), MaxSeconds: ds[len(ds)-1].Seconds()}
}

// percentile is the nearest-rank percentile of sorted durations, in seconds.
func percentile(sorted []time.Duration, p float64) float64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)].Seconds()
}

// Freshness log event. One event per target per sweep, flat attributes with stable names, so an
// alert query reads them directly (docs/ARCHITECTURE.md lists them):
const freshnessMsg = "freshness"

// logFreshness writes the freshness event of every target.
func (r *Reconciler) logFreshness(ctx context.Context, figs []TargetFreshness, p *Plan, lastWatch *Report) {
	planned := p.TargetCounts()
	waiting := map[string]int{}
	for _, q := range p.Quota {
		waiting[q.Target] = q.Waiting
	}
	lastWatchAt := ""
	if lastWatch != nil {
		lastWatchAt = lastWatch.Finished.UTC().Format(time.RFC3339)
	}
	for _, f := range figs {
		pc := planned[f.Target]
		r.log().InfoContext(ctx, freshnessMsg,
			"target", f.Target,
			"replicasPending", f.Replicas[string(replication.StatusPending)],
			"replicasAuthorized", f.Replicas[string(replication.StatusAuthorized)],
			"replicasCopying", f.Replicas[string(replication.StatusCopying)],
			"replicasSucceeded", f.Replicas[string(replication.StatusSucceeded)],
			"replicasFailed", f.Replicas[string(replication.StatusFailed)],
			"oldestPendingSeconds", round(f.OldestPendingSeconds),
			"lagCount", f.Lag.Count,
			"lagP50Seconds", round(f.Lag.P50Seconds),
			"lagP95Seconds", round(f.Lag.P95Seconds),
			"lagMaxSeconds", round(f.Lag.MaxSeconds),
			"failures24h", f.Failures,
			"plannedMissing", pc[Missing],
			"plannedStale", pc[Stale],
			"plannedOrphaned", pc[Orphaned],
			"plannedFailed", pc[Failed],
			"plannedInflight", pc[InFlight],
			"plannedConflict", pc[Conflict],
			"plannedExpiring", pc[Expiring],
			"quotaWaiting", waiting[f.Target],
			"inSync", pc[Missing]+pc[Stale]+pc[Orphaned]+pc[Failed]+pc[InFlight]+pc[Conflict] == 0 && !p.Incomplete,
			"lastSweep", p.Finished.UTC().Format(time.RFC3339),
			"lastWatch", lastWatchAt,
		)
	}
}

func round(s float64) float64 { return math.Round(s*1000) / 1000 }
