package reconcile

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dimirror/dimirror/shared/replication"
)

// The recovery point objective (DIMIRROR_RPO) as the summary reports it and the rpo-missed events
// announce it. Whether one replica met it is the domain's (replication.Replica.RPO); this file
// counts per target and remembers what it announced.

func (r *Reconciler) rpo() time.Duration {
	if r.RPO > 0 {
		return r.RPO
	}
	return replication.DefaultRPO
}

// Caps that keep the summary small whatever the table holds.
const (
	// maxAtRiskListed bounds the replicas at risk listed per target (the counts are exact).
	maxAtRiskListed = 200
	// maxLagPoints bounds the lag points per target (the most recent are kept).
	maxLagPoints = 500
)

// RPOFigures is one target's standing against the objective.
type RPOFigures struct {
	ObjectiveSeconds float64 `json:"objectiveSeconds"`
	// Made24h counts the replicas verified in the window; MadeWithin24h those of them made
	// within the objective; WithinShare is their ratio (absent when none was made).
	Made24h       int      `json:"made24h"`
	MadeWithin24h int      `json:"madeWithin24h"`
	WithinShare   *float64 `json:"withinShare,omitempty"`
	// Missed24h counts the replicas whose objective ran out in the window: made late, or still
	// not made.
	Missed24h int `json:"missed24h"`
	// AtRisk counts the replicas not made (in flight or failed) past their objective, whenever
	// it ran out; AtRiskSoon those not made past half of it.
	AtRisk     int `json:"atRisk"`
	AtRiskSoon int `json:"atRiskSoon"`
	// AtRiskReplicas lists the replicas at risk, then at risk soon, the longest waiting first,
	// at most maxAtRiskListed; AtRiskTruncated says some were left out.
	AtRiskReplicas  []RiskEntry `json:"atRiskReplicas"`
	AtRiskTruncated bool        `json:"atRiskTruncated,omitempty"`
}

// RiskEntry is one replica not made past (half) its objective.
type RiskEntry struct {
	Kind           replication.Kind     `json:"kind"`
	SourceID       string               `json:"sourceId"`
	TargetID       string               `json:"targetId"`
	Status         replication.Status   `json:"status"`
	State          replication.RPOState `json:"rpoState"`
	SourceReady    time.Time            `json:"sourceReady"`
	PendingSeconds float64              `json:"pendingSeconds"`
	ErrorCode      string               `json:"errorCode,omitempty"`
}

// LagPoint is one replica verified in the window: when, and its lag (for the page's chart).
type LagPoint struct {
	At       time.Time        `json:"at"`
	Seconds  float64          `json:"seconds"`
	Kind     replication.Kind `json:"kind"`
	SourceID string           `json:"sourceId"`
}

// rpoFigures computes a target's RPO figures and lag points from its rows at now.
func rpoFigures(rows []replication.Replica, now time.Time, rpo time.Duration) (RPOFigures, []LagPoint) {
	f := RPOFigures{ObjectiveSeconds: rpo.Seconds(), AtRiskReplicas: []RiskEntry{}}
	since := now.Add(-FreshnessWindow)
	var risks []RiskEntry
	points := []LagPoint{}
	for i := range rows {
		row := &rows[i]
		state := row.RPO(now, rpo)
		if at, ok := row.RPOMissedAt(now, rpo); ok && at.After(since) {
			f.Missed24h++
		}
		switch state {
		case replication.RPOMet, replication.RPOMissed:
			if !row.CompletedAt.After(since) {
				continue
			}
			f.Made24h++
			if state == replication.RPOMet {
				f.MadeWithin24h++
			}
			if lag, ok := row.Lag(); ok {
				points = append(points, LagPoint{At: row.CompletedAt, Seconds: round(lag.Seconds()), Kind: row.Kind, SourceID: row.SourceID})
			}
		case replication.RPOAtRisk, replication.RPOAtRiskSoon:
			if state == replication.RPOAtRisk {
				f.AtRisk++
			} else {
				f.AtRiskSoon++
			}
			tid := row.TargetID
			if tid == "" {
				tid = row.SourceID
			}
			risks = append(risks, RiskEntry{Kind: row.Kind, SourceID: row.SourceID, TargetID: tid, Status: row.Status, State: state,
				SourceReady: row.ReadyAt(), PendingSeconds: round(row.PendingFor(now).Seconds()), ErrorCode: row.ErrorCode})
		}
	}
	if f.Made24h > 0 {
		share := float64(f.MadeWithin24h) / float64(f.Made24h)
		f.WithinShare = &share
	}
	slices.SortFunc(risks, func(a, b RiskEntry) int {
		if a.State != b.State {
			if a.State == replication.RPOAtRisk {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(b.PendingSeconds, a.PendingSeconds), cmp.Compare(a.SourceID, b.SourceID))
	})
	if len(risks) > maxAtRiskListed {
		risks, f.AtRiskTruncated = risks[:maxAtRiskListed], true
	}
	f.AtRiskReplicas = append(f.AtRiskReplicas, risks...)
	slices.SortFunc(points, func(a, b LagPoint) int { return a.At.Compare(b.At) })
	if len(points) > maxLagPoints {
		points = points[len(points)-maxLagPoints:]
	}
	return f, points
}

// The rpo-missed event: one per replica run that missed the objective, with flat attributes
// whose names are stable (the Bicep alert queries them): kind, sourceId, target, targetId,
// rpoSeconds, lagSeconds (made late) or pendingSeconds (not made yet), sourceReady (RFC 3339).
const rpoMissedMsg = "rpo-missed"

// metaRPO is the row that remembers what the rpo-missed events announced.
const metaRPO = "rpo"

// rpoOverlap is how far before its watermark a pass looks again: a row written a moment after
// the previous pass read the table (its request time just before that pass's clock) is still
// seen; the runs announced in the overlap are remembered, so none is announced twice.
const rpoOverlap = 2 * time.Minute

// maxRPOReported bounds the remembered runs (those announced within the overlap).
const maxRPOReported = 1000

// rpoState is the rpo row: the moment up to which misses were announced, and the runs announced
// within rpoOverlap of it.
type rpoState struct {
	Watermark time.Time     `json:"watermark"`
	Reported  []reportedRun `json:"reported,omitempty"`
}

type reportedRun struct {
	Run string    `json:"run"`
	At  time.Time `json:"at"`
}

// runKey names one run of a replica as the objective sees it: its clock's start identifies the
// run (a rebuilt source, or a new request of a backfill, starts another).
func runKey(row *replication.Replica) string {
	return fmt.Sprintf("%s:%s:%s@%d", row.Kind, row.SourceID, row.Target, row.ReadyAt().Unix())
}

// ReportRPO logs one rpo-missed event for every replica run whose objective ran out since the
// last report, and returns how many it logged. A miss becomes a fact at a moment
// (replication.Replica.RPOMissedAt: the deadline, or a late request); the rpo meta row keeps the
// moment up to which misses were announced, so every pass (the watch timer runs one every 30 s,
// on every instance) announces each run once: the watermark is claimed with an ETag-checked
// write before the events are logged, so two instances never both announce one window. A
// replica not yet made when its objective runs out is announced then, with pendingSeconds; one
// made late between two passes is announced with its lagSeconds. A crash between the write and
// the log loses that pass's events (at most one pass's worth), never repeats them.
func (r *Reconciler) ReportRPO(ctx context.Context) (int, error) {
	if err := r.ready(); err != nil {
		return 0, err
	}
	// The clock is read before the rows: a row written after the read is judged next pass.
	now := r.now()
	idx, err := r.readRows(ctx)
	if err != nil {
		return 0, err
	}
	rpo := r.rpo()
	configured := map[string]bool{}
	for _, t := range r.Engine.TargetNames() {
		configured[t] = true
	}
	for range 5 {
		var st rpoState
		etag, err := r.loadMeta(ctx, metaRPO, &st)
		if err != nil {
			return 0, err
		}
		from := now.Add(-FreshnessWindow) // the first pass announces the last day's misses
		if !st.Watermark.IsZero() {
			from = st.Watermark.Add(-rpoOverlap)
		}
		seen := make(map[string]bool, len(st.Reported))
		for _, rr := range st.Reported {
			seen[rr.Run] = true
		}
		var due []*replication.Replica
		next := rpoState{Watermark: st.Watermark}
		if now.After(next.Watermark) {
			next.Watermark = now
		}
		keepFrom := next.Watermark.Add(-rpoOverlap)
		for _, rr := range st.Reported {
			if rr.At.After(keepFrom) {
				next.Reported = append(next.Reported, rr)
			}
		}
		for i := range idx.all {
			row := &idx.all[i]
			if !configured[row.Target] {
				continue
			}
			at, ok := row.RPOMissedAt(now, rpo)
			if !ok || !at.After(from) || seen[runKey(row)] {
				continue
			}
			due = append(due, row)
			if at.After(keepFrom) {
				next.Reported = append(next.Reported, reportedRun{Run: runKey(row), At: at})
			}
		}
		if len(next.Reported) > maxRPOReported {
			slices.SortFunc(next.Reported, func(a, b reportedRun) int { return a.At.Compare(b.At) })
			next.Reported = next.Reported[len(next.Reported)-maxRPOReported:]
		}
		data, err := json.Marshal(&next)
		if err != nil {
			return 0, fmt.Errorf("reconcile: encode %s state: %w", metaRPO, err)
		}
		wctx, cancel := finishing(ctx)
		_, err = r.Meta.PutMeta(wctx, metaRPO, data, etag)
		cancel()
		if errors.Is(err, replication.ErrConflict) {
			continue // another instance announced first: judge again against what it wrote
		}
		if err != nil {
			return 0, fmt.Errorf("reconcile: write %s state: %w", metaRPO, err)
		}
		for _, row := range due {
			r.logRPOMissed(ctx, row, now, rpo)
		}
		return len(due), nil
	}
	return 0, fmt.Errorf("reconcile: %s state keeps changing under this instance", metaRPO)
}

func (r *Reconciler) logRPOMissed(ctx context.Context, row *replication.Replica, now time.Time, rpo time.Duration) {
	tid := row.TargetID
	if tid == "" {
		tid = row.SourceID
	}
	attrs := []any{"kind", string(row.Kind), "sourceId", row.SourceID, "target", row.Target, "targetId", tid,
		"rpoSeconds", round(rpo.Seconds())}
	if lag, ok := row.Lag(); ok {
		attrs = append(attrs, "lagSeconds", round(lag.Seconds()))
	} else {
		attrs = append(attrs, "pendingSeconds", round(row.PendingFor(now).Seconds()))
	}
	attrs = append(attrs, "sourceReady", row.ReadyAt().UTC().Format(time.RFC3339))
	r.log().WarnContext(ctx, rpoMissedMsg, attrs...)
}
