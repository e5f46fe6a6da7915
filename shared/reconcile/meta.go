package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dimirror/dimirror/shared/replication"
)

// The reconciler's rows in the MetaStore.
const (
	metaWatch   = "watch"   // watchState
	metaSweep   = "sweep"   // sweepState
	metaWaiting = "waiting" // waitingState
)

// Bounds that keep each meta row well under the table's 64 KiB property limit. What falls off
// a list is left to the next sweep, which finds everything by listing.
const (
	maxRunning = 200
	maxWaiting = 200
)

// watchState is the watch's row: where it stands in the source's operation list, the builds it
// saw running (so one that finishes after the watermark moved on is not missed), and its last
// report.
type watchState struct {
	Watermark time.Time   `json:"watermark"`
	Running   []runningOp `json:"running,omitempty"`
	// Handled are the finished operations of the overlap window already acted on, so reading
	// them again does not request them again.
	Handled []handledOp `json:"handled,omitempty"`
	Last    *Report     `json:"last,omitempty"`
}

type handledOp struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
}

type runningOp struct {
	ID      string    `json:"id"`
	Kind    string    `json:"kind"`
	ItemID  string    `json:"itemId"`
	Created time.Time `json:"created"`
}

type sweepState struct {
	Last *Report `json:"last,omitempty"`
}

// waitingState lists composed models whose replication waits for their dependencies in some
// targets; every watch pass checks them, so a composed model follows its parts within seconds.
type waitingState struct {
	Entries []waitEntry `json:"entries,omitempty"`
}

type waitEntry struct {
	// Source is the resource the composed model is in; "" in entries written before rules (the
	// default source).
	Source  string       `json:"source,omitempty"`
	ID      string       `json:"id"`
	Deps    []Dependency `json:"deps"`
	Targets []string     `json:"targets"`
	Since   time.Time    `json:"since"`
}

// watchRow is the meta row of the watch over source: "watch" for the default source (the row of
// deployments from before rules keeps its watermark), "watch:<name>" for every other source.
func (r *Reconciler) watchRow(source string) string {
	if source == "" || source == r.Engine.DefaultSource() {
		return metaWatch
	}
	return metaWatch + ":" + source
}

// sourceOfWait is the source of a waiting entry.
func (r *Reconciler) sourceOfWait(w waitEntry) string {
	if w.Source != "" {
		return w.Source
	}
	return r.Engine.DefaultSource()
}

// waitTTL: an entry still waiting after this is dropped; the sweep reports and retries it.
const waitTTL = 24 * time.Hour

// finishGrace is how long a pass may take to save its state after its own deadline passed: the
// report and the watermark are what the next pass and the summary stand on.
const finishGrace = 30 * time.Second

// finishing is the context a pass saves its state with: not cancelled with the pass, bounded by
// finishGrace.
func finishing(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), finishGrace)
}

// loadMeta reads a meta row into v; a missing row leaves v as it is and returns etag "".
func (r *Reconciler) loadMeta(ctx context.Context, name string, v any) (string, error) {
	data, etag, err := r.Meta.GetMeta(ctx, name)
	if errors.Is(err, replication.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reconcile: read %s state: %w", name, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		// A row this version cannot read is replaced rather than wedging every pass.
		r.log().WarnContext(ctx, "reconcile state unreadable; starting afresh", "row", name, "err", err.Error())
		return etag, nil
	}
	return etag, nil
}

// updateMeta is an ETag-checked read-modify-write of a meta row: mutate runs on the current
// value, again after every lost race.
func updateMeta[T any](ctx context.Context, r *Reconciler, name string, mutate func(*T)) error {
	for range 5 {
		var v T
		etag, err := r.loadMeta(ctx, name, &v)
		if err != nil {
			return err
		}
		mutate(&v)
		data, err := json.Marshal(&v)
		if err != nil {
			return fmt.Errorf("reconcile: encode %s state: %w", name, err)
		}
		_, err = r.Meta.PutMeta(ctx, name, data, etag)
		if errors.Is(err, replication.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reconcile: write %s state: %w", name, err)
		}
		return nil
	}
	return fmt.Errorf("reconcile: %s state keeps changing under this instance", name)
}

// Reports are the last watch's and sweep's reports, as the summary shows them.
func (r *Reconciler) Reports(ctx context.Context) (watch, sweep *Report, err error) {
	var ws watchState
	if _, err := r.loadMeta(ctx, metaWatch, &ws); err != nil {
		return nil, nil, err
	}
	var ss sweepState
	if _, err := r.loadMeta(ctx, metaSweep, &ss); err != nil {
		return nil, nil, err
	}
	return ws.Last, ss.Last, nil
}
