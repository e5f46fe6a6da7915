package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/dimirror/dimirror/shared/replication"
)

const (
	// watchOverlap re-reads a little of the list before the watermark, so an operation the
	// service listed late (same second, or list lag) is not skipped; requests are idempotent.
	watchOverlap = time.Minute
	// firstLookback is how far back the very first watch looks; older models are the sweep's.
	firstLookback = time.Hour
)

// Watch reads the source's operation list, newest first, back to the watermark, and requests
// replication of every model or classifier that a build or compose operation finished since.
//
// The watermark is the createdDateTime of the newest operation seen, not an operation id, so the
// watch carries on when the watermark's operation has expired (the service keeps them about a
// day). A build still running when it is listed is remembered and read by id on later passes,
// so one that finishes after the watermark moved past it still counts. A composed model is
// requested in a target only once its component models and classifier are verified there; until
// then its dependencies are requested and it waits on a list every pass works through. When a
// request fails the watermark stays, so the next pass sees the same operations again.
//
// With several source resources, each has its own pass, operation list and watermark row (the
// default source keeps the "watch" row); the plan is their union, its report saved once.
func (r *Reconciler) Watch(ctx context.Context) (*Plan, error) {
	if err := r.ready(); err != nil {
		return nil, err
	}
	sources := r.Engine.SourceNames()
	if len(sources) == 1 {
		return r.forSource(sources[0]).watchOne(ctx)
	}
	plan := &Plan{Run: runWatch, Started: r.now(), Targets: r.Engine.TargetNames(), Entries: []Entry{}}
	var errs []error
	for _, name := range sources {
		p, err := r.forSource(name).watchOne(ctx)
		if err != nil {
			// One source's meta row unreadable must not stop the others' watches.
			errs = append(errs, fmt.Errorf("source %s: %w", name, err))
			plan.Errors++
			continue
		}
		plan.Entries = append(plan.Entries, p.Entries...)
		plan.Operations += p.Operations
		plan.Running += p.Running
		plan.Waiting += p.Waiting
		plan.Errors += p.Errors
		for _, n := range p.Notes {
			plan.note("source " + name + ": " + n)
		}
		if p.Watermark != nil && (plan.Watermark == nil || p.Watermark.Before(*plan.Watermark)) {
			plan.Watermark = p.Watermark // the oldest: how far behind the watch may be
		}
	}
	if len(errs) == len(sources) {
		return nil, errors.Join(errs...)
	}
	plan.Finished = r.now()
	plan.sortEntries()
	rep := plan.Report()
	fctx, cancel := finishing(ctx)
	defer cancel()
	if err := updateMeta(fctx, r, metaWatch, func(cur *watchState) { cur.Last = &rep }); err != nil {
		plan.Errors++
		r.log().ErrorContext(ctx, "watch: saving the report failed", "err", err.Error())
	}
	return plan, nil
}

// watchOne is the watch over one source resource (r.source). It saves its report in its own row;
// with several sources, Watch then saves the union as the last watch's report.
func (r *Reconciler) watchOne(ctx context.Context) (*Plan, error) {
	plan := &Plan{Run: runWatch, Started: r.now(), Targets: r.Engine.RuleTargets(r.sourceName()), Entries: []Entry{}}
	var st watchState
	if _, err := r.loadMeta(ctx, r.watchRow(r.source), &st); err != nil {
		return nil, err
	}
	cutoff := st.Watermark.Add(-watchOverlap)
	if st.Watermark.IsZero() {
		cutoff = plan.Started.Add(-firstLookback)
	}
	newest := st.Watermark
	handled := map[string]bool{}
	for _, h := range st.Handled {
		handled[h.ID] = true
	}
	seen := map[string]bool{}
	var done []Operation
	running := map[string]runningOp{}
	resolved := map[string]bool{}
	unsupported := false
	for op, err := range r.Source.Operations(ctx) {
		if errors.Is(err, ErrUnsupported) {
			unsupported = true
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reconcile: list the source's operations: %w", err)
		}
		if op.Created.Before(cutoff) {
			break // newest first: everything further is older
		}
		plan.Operations++
		if op.Created.After(newest) {
			newest = op.Created
		}
		if !makesItem(op.Kind) {
			continue
		}
		seen[op.ID] = true
		switch op.Status {
		case replication.OpSucceeded:
			if !handled[op.ID] {
				done = append(done, op)
			}
			resolved[op.ID] = true
		case replication.OpNotStarted, replication.OpRunning:
			running[op.ID] = runningOp{ID: op.ID, Kind: op.Kind, ItemID: op.ItemID, Created: op.Created}
		default:
			resolved[op.ID] = true
		}
	}
	if unsupported {
		plan.note("the source's api-version lists no operations: new models are found by the sweep alone")
	}
	// Builds seen running on an earlier pass that this window no longer covers.
	for _, p := range st.Running {
		if seen[p.ID] || unsupported {
			continue
		}
		op, err := r.Source.Operation(ctx, p.ID)
		switch {
		case errors.Is(err, ErrNotFound):
			resolved[p.ID] = true // forgotten by the service: the sweep covers it
		case err != nil:
			running[p.ID] = p // try again next pass
			r.log().WarnContext(ctx, "watch: reading a running build failed", "operation", p.ID, "err", err.Error())
		case op.Status == replication.OpSucceeded:
			if op.ItemID == "" {
				op.ItemID = p.ItemID
			}
			op.Kind = p.Kind
			done = append(done, op)
			resolved[p.ID] = true
		case op.Status == replication.OpNotStarted || op.Status == replication.OpRunning:
			running[p.ID] = p
		default:
			resolved[p.ID] = true
		}
	}
	var waiting []waitEntry
	r.watchRequests(ctx, plan, done, &waiting)
	r.workWaiting(ctx, plan)
	if err := r.rememberWaiting(ctx, waiting); err != nil {
		plan.Errors++
		r.log().ErrorContext(ctx, "watch: recording composed models that wait failed", "err", err.Error())
	}
	advance := plan.Errors == 0 // a failure keeps the watermark: the next pass tries the same again
	plan.Running = len(running)
	plan.Finished = r.now()
	plan.sortEntries()
	if advance && !newest.IsZero() {
		w := newest
		plan.Watermark = &w
	} else if !st.Watermark.IsZero() {
		w := st.Watermark
		plan.Watermark = &w
	}
	rep := plan.Report()
	ctx, cancel := finishing(ctx)
	defer cancel()
	err := updateMeta(ctx, r, r.watchRow(r.source), func(cur *watchState) {
		if advance && newest.After(cur.Watermark) {
			cur.Watermark = newest
		}
		if advance {
			cur.Handled = keepHandled(cur.Handled, done, cur.Watermark.Add(-watchOverlap))
		}
		merged := map[string]runningOp{}
		for _, p := range cur.Running {
			if !resolved[p.ID] {
				merged[p.ID] = p
			}
		}
		for id, p := range running {
			merged[id] = p
		}
		cur.Running = cur.Running[:0]
		for _, p := range merged {
			cur.Running = append(cur.Running, p)
		}
		sort.Slice(cur.Running, func(i, j int) bool { return cur.Running[i].Created.After(cur.Running[j].Created) })
		if len(cur.Running) > maxRunning {
			cur.Running = cur.Running[:maxRunning] // the oldest are left to the sweep
		}
		cur.Last = &rep
	})
	if err != nil {
		return plan, err
	}
	if plan.Errors > 0 || len(plan.Entries) > 0 {
		r.logPlan(ctx, plan)
	}
	return plan, nil
}

// keepHandled adds the operations acted on to the handled list and keeps only those the next
// pass can read again (created inside the overlap).
func keepHandled(list []handledOp, done []Operation, from time.Time) []handledOp {
	seen := map[string]bool{}
	var out []handledOp
	add := func(h handledOp) {
		if !seen[h.ID] && !h.Created.Before(from) {
			seen[h.ID] = true
			out = append(out, h)
		}
	}
	for _, h := range list {
		add(h)
	}
	for _, op := range done {
		add(handledOp{ID: op.ID, Created: op.Created})
	}
	return out
}

// makesItem reports whether an operation kind makes a model or classifier on the source.
func makesItem(kind string) bool {
	return kind == OpModelBuild || kind == OpModelCompose || kind == OpClassifierBuild
}

type candidate struct {
	kind      replication.Kind
	id        string
	composed  bool
	opCreated time.Time
}

// watchRequests requests replication of what the finished operations made.
func (r *Reconciler) watchRequests(ctx context.Context, plan *Plan, done []Operation, waiting *[]waitEntry) {
	byKey := map[string]*candidate{}
	skipped := 0
	for _, op := range done {
		if op.ItemID == "" {
			continue
		}
		kind := replication.KindModel
		if op.Kind == OpClassifierBuild {
			kind = replication.KindClassifier
		}
		if !r.Filter.Match(op.ItemID) {
			skipped++
			continue
		}
		key := string(kind) + "/" + op.ItemID
		c := byKey[key]
		if c == nil {
			c = &candidate{kind: kind, id: op.ItemID}
			byKey[key] = c
		}
		c.composed = c.composed || op.Kind == OpModelCompose
		if op.Created.After(c.opCreated) {
			c.opCreated = op.Created
		}
	}
	if skipped > 0 {
		plan.note(fmt.Sprintf("%d finished build(s) left out by DIMIRROR_INCLUDE/DIMIRROR_EXCLUDE", skipped))
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if ctx.Err() != nil {
			plan.Errors++ // not done: keep the watermark so the next pass sees these again
			return
		}
		c := byKey[k]
		targets := r.targetsFor(c.kind, c.id)
		if c.composed {
			deps, err := r.Source.Dependencies(ctx, c.id)
			if errors.Is(err, ErrNotFound) {
				continue // deleted since it was built
			}
			if err != nil && !errors.Is(err, ErrUnsupported) {
				plan.Errors++
				r.log().ErrorContext(ctx, "watch: reading a composed model's dependencies failed", "sourceId", c.id, "err", err.Error())
				continue
			}
			ready, notReady, err := r.requestDependencies(ctx, plan, deps, targets, c.id)
			if err != nil {
				plan.Errors++
				r.log().ErrorContext(ctx, "watch: requesting dependencies failed", "sourceId", c.id, "err", err.Error())
				continue
			}
			for _, t := range notReady {
				plan.Entries = append(plan.Entries, Entry{Category: Missing, Action: ActWait, Kind: c.kind, SourceID: c.id, Target: t, TargetID: c.id,
					Detail: "waits for its dependencies in the target"})
			}
			if len(notReady) > 0 {
				*waiting = append(*waiting, waitEntry{Source: r.sourceName(), ID: c.id, Deps: deps, Targets: notReady, Since: plan.Started})
			}
			targets = ready
		}
		if len(targets) == 0 {
			continue
		}
		r.watchRequest(ctx, plan, c.kind, c.id, targets, c.opCreated, "")
	}
	plan.Waiting += len(*waiting)
}

// watchRequest requests one source item in some targets and records what became of it. ok is
// false when the request failed for a reason other than the item being gone.
func (r *Reconciler) watchRequest(ctx context.Context, plan *Plan, kind replication.Kind, id string, targets []string, opCreated time.Time, detail string) (reps []replication.Replica, gone, ok bool) {
	targets = slices.DeleteFunc(slices.Clone(targets), func(t string) bool { return plan.has(kind, id, t) })
	if len(targets) == 0 {
		return nil, false, true // already requested in this pass
	}
	reps, err := r.request(ctx, replication.Request{Source: r.sourceName(), Kind: kind, SourceID: id, Targets: targets})
	if err != nil {
		msg, failed := requestError(err)
		if failed {
			plan.Errors++
			r.log().ErrorContext(ctx, "watch: requesting replication failed", "kind", string(kind), "sourceId", id, "err", err.Error())
		}
		for _, t := range targets {
			plan.Entries = append(plan.Entries, Entry{Category: Missing, Action: ActStart, Kind: kind, Source: r.sourceName(), SourceID: id, Target: t, TargetID: id, Detail: detail, Result: msg})
		}
		return nil, errors.Is(err, replication.ErrSourceNotFound), !failed
	}
	for _, rep := range reps {
		e := Entry{Kind: kind, Source: r.sourceName(), Origin: rep.Origin, SourceID: id, Target: rep.Target, TargetID: rep.TargetID, Detail: detail, Result: replicaResult(rep)}
		switch {
		case rep.Status.InFlight() && !rep.RequestedAt.Before(plan.Started):
			e.Category, e.Action = Missing, ActStart
		case rep.Status.InFlight():
			e.Category, e.Action = InFlight, ActNone
		case rep.Status == replication.StatusFailed:
			e.Category, e.Action = Failed, ActReport
			e.Detail = errorDetail(&rep)
		case rep.Status == replication.StatusSucceeded && !opCreated.IsZero() && rep.SourceCreated.Before(opCreated.Truncate(time.Second)):
			// Made from a version older than this build: the source was rebuilt under the id
			// and DIMIRROR_REPLACE is off.
			e.Category, e.Action = Stale, ActReport
			e.Detail = "the source was rebuilt; set DIMIRROR_REPLACE=true to replace the target's copy"
		default:
			continue // already there
		}
		plan.Entries = append(plan.Entries, e)
	}
	return reps, false, true
}

// requestDependencies requests the dependencies of composed model `of` in every target where
// they are not verified yet, and splits the targets into those where all of them are (ready for
// the composed model) and the rest. A dependency the source no longer has is not waited for.
func (r *Reconciler) requestDependencies(ctx context.Context, plan *Plan, deps []Dependency, targets []string, of string) (ready, notReady []string, err error) {
	pending := map[string]bool{}
	for _, d := range deps {
		var ts []string
		for _, t := range targets {
			row, err := r.Engine.Get(ctx, replication.Key{Kind: d.Kind, SourceID: d.ID, Target: t})
			switch {
			case errors.Is(err, replication.ErrNotFound):
			case err != nil:
				return nil, nil, err
			case row.Status == replication.StatusSucceeded:
				continue
			}
			ts = append(ts, t)
		}
		for _, t := range ts {
			if plan.has(d.Kind, d.ID, t) {
				pending[t] = true // requested earlier in this pass, not verified yet
			}
		}
		if len(ts) == 0 {
			continue
		}
		reps, gone, ok := r.watchRequest(ctx, plan, d.Kind, d.ID, ts, time.Time{}, "a dependency of "+of)
		switch {
		case gone:
			continue
		case !ok:
			return nil, nil, fmt.Errorf("dependency %s %s could not be requested", d.Kind, d.ID)
		}
		for _, rep := range reps {
			if rep.Status != replication.StatusSucceeded {
				pending[rep.Target] = true
			}
		}
	}
	for _, t := range targets {
		if pending[t] {
			notReady = append(notReady, t)
		} else {
			ready = append(ready, t)
		}
	}
	return ready, notReady, nil
}

// workWaiting requests the composed models whose dependencies became verified in a target.
func (r *Reconciler) workWaiting(ctx context.Context, plan *Plan) {
	var st waitingState
	if _, err := r.loadMeta(ctx, metaWaiting, &st); err != nil {
		plan.Errors++
		r.log().ErrorContext(ctx, "watch: reading the waiting list failed", "err", err.Error())
		return
	}
	if len(st.Entries) == 0 {
		return
	}
	doneTargets := map[string][]string{}
	drop := map[string]bool{}
	for _, w := range st.Entries {
		if ctx.Err() != nil {
			break
		}
		if r.sourceOfWait(w) != r.sourceName() {
			continue // another source's pass works through it
		}
		if plan.Started.Sub(w.Since) > waitTTL {
			drop[w.ID] = true
			plan.note(fmt.Sprintf("composed model %q waited more than %s for its dependencies; the sweep takes it over", w.ID, waitTTL))
			continue
		}
		ready, notReady, err := r.requestDependencies(ctx, plan, w.Deps, w.Targets, w.ID)
		if err != nil {
			plan.Errors++
			r.log().ErrorContext(ctx, "watch: checking a composed model's dependencies failed", "sourceId", w.ID, "err", err.Error())
			continue
		}
		plan.Waiting += boolInt(len(notReady) > 0)
		if len(ready) == 0 {
			continue
		}
		doneTargets[w.ID] = ready
		ready = slices.DeleteFunc(slices.Clone(ready), func(t string) bool { return plan.has(replication.KindModel, w.ID, t) })
		if len(ready) == 0 {
			continue // requested earlier in this pass
		}
		reps, err := r.request(ctx, replication.Request{Source: r.sourceName(), Kind: replication.KindModel, SourceID: w.ID, Targets: ready})
		switch {
		case errors.Is(err, replication.ErrSourceNotFound):
			drop[w.ID] = true
			continue
		case err != nil:
			delete(doneTargets, w.ID)
			plan.Errors++
			r.log().ErrorContext(ctx, "watch: requesting a composed model failed", "sourceId", w.ID, "err", err.Error())
			continue
		}
		for _, rep := range reps {
			plan.Entries = append(plan.Entries, Entry{Category: Missing, Action: ActStart, Kind: replication.KindModel, Source: r.sourceName(), SourceID: w.ID,
				Target: rep.Target, TargetID: rep.TargetID, Detail: "its dependencies are verified", Result: replicaResult(rep)})
		}
	}
	if len(doneTargets) == 0 && len(drop) == 0 {
		return
	}
	err := updateMeta(ctx, r, metaWaiting, func(cur *waitingState) {
		kept := cur.Entries[:0]
		for _, w := range cur.Entries {
			if r.sourceOfWait(w) != r.sourceName() {
				kept = append(kept, w)
				continue
			}
			if drop[w.ID] {
				continue
			}
			w.Targets = without(w.Targets, doneTargets[w.ID])
			if len(w.Targets) > 0 {
				kept = append(kept, w)
			}
		}
		cur.Entries = kept
	})
	if err != nil {
		plan.Errors++
		r.log().ErrorContext(ctx, "watch: updating the waiting list failed", "err", err.Error())
	}
}

func without(list, remove []string) []string {
	var out []string
	for _, s := range list {
		keep := true
		for _, x := range remove {
			if s == x {
				keep = false
			}
		}
		if keep {
			out = append(out, s)
		}
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
