package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dimirror/dimirror/shared/replication"
)

// SweepOptions tune one sweep.
type SweepOptions struct {
	// DryRun plans without changing anything: no request, no deletion, no state written.
	DryRun bool
}

// Sweep lists the source and every target, plans, and (unless DryRun) acts on the plan:
//
//   - missing: start replication (restore when a verified copy vanished from the target);
//   - stale: report, or with DIMIRROR_REPLACE request again, which deletes the old copy first;
//   - orphaned: report, or with DIMIRROR_PRUNE delete it, only when dimirror made it (its tags, or
//     for classifiers, which keep no tags, a verified replica row) and the source still lacks it;
//   - failed: re-drive when the cause may have passed, report when it needs an operator;
//   - expiring: report;
//   - a composed model is requested only once its component models and classifier are verified
//     in that target; until then it waits (and the watch picks it up as soon as they are);
//   - a target at its model limit gets only as many new copies as it has room for; the rest wait.
//
// The listings are read before the replica rows, so a copy that lands during the sweep is never
// mistaken for a missing one, and an orphan is checked against the source again just before it
// is deleted.
func (r *Reconciler) Sweep(ctx context.Context, o SweepOptions) (*Plan, error) {
	if err := r.ready(); err != nil {
		return nil, err
	}
	plan := &Plan{Run: runSweep, DryRun: o.DryRun, Started: r.now(), Targets: r.Engine.TargetNames(), Entries: []Entry{}}
	src, targets, err := r.readInventories(ctx, true)
	if err != nil {
		return nil, err
	}
	listedAt := plan.Started
	idx, err := r.readRows(ctx)
	if err != nil {
		return nil, err
	}
	for _, name := range plan.Targets {
		if err := targets[name].err; err != nil {
			plan.Errors++
			plan.Incomplete = true
			plan.note(fmt.Sprintf("target %s could not be listed and was skipped: %v", name, err))
			r.log().ErrorContext(ctx, "sweep: listing a target failed; it is skipped this time", "target", name, "err", err.Error())
		}
	}
	s := &sweep{r: r, plan: plan, src: src, targets: targets, idx: idx, listedAt: listedAt, now: r.now(),
		claimed: map[string]map[replication.Kind]map[string]bool{}}
	s.classify()
	s.orphans()
	s.gateDependencies(ctx)
	s.gateQuota()
	plan.sortEntries()
	if o.DryRun {
		plan.Finished = r.now()
		return plan, nil
	}
	s.act(ctx)
	ctx, cancel := finishing(ctx)
	defer cancel()
	if err := r.rememberWaiting(ctx, s.waiting); err != nil {
		plan.Errors++
		r.log().ErrorContext(ctx, "sweep: recording composed models that wait failed", "err", err.Error())
	}
	plan.Finished = r.now()
	rep := plan.Report()
	if err := updateMeta(ctx, r, metaSweep, func(st *sweepState) { st.Last = &rep }); err != nil {
		plan.Errors++
		r.log().ErrorContext(ctx, "sweep: saving the report failed", "err", err.Error())
	}
	r.logPlan(ctx, plan)
	lastWatch, _, err := r.Reports(ctx)
	if err != nil {
		lastWatch = nil
	}
	r.logFreshness(ctx, figures(idx.all, plan.Finished, plan.Targets), plan, lastWatch)
	return plan, nil
}

// sweep is one sweep's working state.
type sweep struct {
	r        *Reconciler
	plan     *Plan
	src      *inventory
	targets  map[string]*inventory
	idx      *rowIndex
	listedAt time.Time
	now      time.Time
	// claimed marks the target ids the source's items account for; what is left may be orphaned.
	claimed map[string]map[replication.Kind]map[string]bool
	waiting []waitEntry
}

func (s *sweep) claim(target string, kind replication.Kind, id string) {
	if s.claimed[target] == nil {
		s.claimed[target] = map[replication.Kind]map[string]bool{}
	}
	if s.claimed[target][kind] == nil {
		s.claimed[target][kind] = map[string]bool{}
	}
	s.claimed[target][kind][id] = true
}

func (s *sweep) classify() {
	for _, kind := range kinds {
		if s.src.unsupported[kind] {
			s.plan.note(fmt.Sprintf("the source's api-version has no %ss; none were reconciled", kind))
			continue
		}
		for _, t := range s.plan.Targets {
			if inv := s.targets[t]; inv.err == nil && inv.unsupported[kind] {
				s.plan.note(fmt.Sprintf("target %s's api-version has no %ss; none are copied there", t, kind))
			}
		}
		items := s.src.items[kind]
		for _, id := range sortedIDs(items) {
			if !s.r.Filter.Match(id) {
				continue
			}
			if kind == replication.KindModel {
				s.plan.SourceModels++
			} else {
				s.plan.SourceClassifiers++
			}
			it := items[id]
			if s.expiring(it.Expires) {
				exp := it.Expires
				s.plan.Entries = append(s.plan.Entries, Entry{Category: Expiring, Action: ActReport, Kind: kind, SourceID: id,
					Target: SourceResource, TargetID: id, Expires: &exp, Detail: "the source model expires " + exp.Format(time.RFC3339)})
			}
			for _, t := range s.plan.Targets {
				if e, ok := s.classifyOne(it, t); ok {
					s.plan.Entries = append(s.plan.Entries, e)
				}
			}
		}
	}
}

func (s *sweep) expiring(exp time.Time) bool {
	return !exp.IsZero() && exp.Sub(s.now) < s.r.expiryWindow()
}

// classifyOne decides what source item src needs in target t; ok is false when nothing (in sync,
// or the target cannot be judged).
func (s *sweep) classifyOne(src Item, t string) (Entry, bool) {
	inv := s.targets[t]
	if inv.err != nil || inv.unsupported[src.Kind] {
		return Entry{}, false
	}
	row := s.idx.byKey[replication.Key{Kind: src.Kind, SourceID: src.ID, Target: t}]
	tid := src.ID
	if row != nil && row.TargetID != "" {
		tid = row.TargetID
	}
	s.claim(t, src.Kind, tid)
	e := Entry{Kind: src.Kind, SourceID: src.ID, Target: t, TargetID: tid}
	held, has := inv.item(src.Kind, tid)
	var ver version
	if has {
		ver = s.r.provenance(src, held, row)
	}
	switch {
	case has && ver == current:
		if s.expiring(held.Expires) && !held.Expires.Equal(src.Expires) {
			exp := held.Expires
			e.Category, e.Action, e.Expires = Expiring, ActReport, &exp
			e.Detail = "the target's copy expires " + exp.Format(time.RFC3339)
			return e, true
		}
		return Entry{}, false
	case row != nil && row.Status.InFlight():
		e.Category, e.Action = InFlight, ActNone
		e.Detail = fmt.Sprintf("replica %s (attempt %d)", row.Status, row.Attempt)
		if row.ErrorCode != "" {
			e.Detail += "; last error " + row.ErrorCode
		}
	case has && ver == older:
		e.Category, e.Action = Stale, ActReport
		e.Detail = fmt.Sprintf("the source was rebuilt %s; the target holds the copy of an older version", src.Created.Format(time.RFC3339))
		if s.r.replace() {
			e.Action = ActReplace
		} else {
			e.Detail += " (set DIMIRROR_REPLACE=true to replace it)"
		}
	case has:
		e.Category, e.Action = Conflict, ActReport
		e.Detail = fmt.Sprintf("the target holds a different %s under this id that dimirror did not copy; delete it there or request another targetId", src.Kind)
	case row != nil && row.Status == replication.StatusFailed:
		e.Category = Failed
		e.Detail = errorDetail(row)
		if needsOperator[row.ErrorCode] {
			e.Action = ActReport
			e.Detail = "needs attention: " + e.Detail
		} else {
			e.Action = ActRedrive
		}
	case row != nil && row.Status == replication.StatusSucceeded:
		if !row.CompletedAt.Before(s.listedAt) {
			return Entry{}, false // verified after the target was listed: the listing is older than the copy
		}
		e.Category, e.Action = Missing, ActRestore
		e.Detail = "verified " + row.CompletedAt.Format(time.RFC3339) + ", since gone from the target"
	default:
		e.Category, e.Action = Missing, ActStart
	}
	return e, true
}

// needsOperator lists the failure codes that do not pass by themselves: configuration, access or
// request problems. Their replicas are reported; a new webhook request re-runs one once fixed.
var needsOperator = map[string]bool{
	"DataProtectionTransformServiceError": true,
	"InvalidDataProtectionKey":            true,
	"OutboundAccessForbidden":             true,
	"Forbidden":                           true,
	"401":                                 true,
	"403":                                 true,
	"InvalidRequest":                      true,
	"InvalidArgument":                     true,
	"InvalidParameter":                    true,
	"ParameterMissing":                    true,
	"ResourceResolverError":               true,
	"1002":                                true,
}

type version int

const (
	foreign version = iota // not a copy of this source item
	older                  // dimirror's copy of an older version of it
	current                // a copy of the version the source holds now
)

// provenance says what a target item is relative to the source item src: models carry
// dimirror's tags; classifiers keep none, so a verified replica row speaks for them; and every
// copy keeps the source's expirationDateTime, which identifies the version.
func (r *Reconciler) provenance(src, held Item, row *replication.Replica) version {
	if tag, ok := held.Tags[replication.TagSource]; ok {
		if tag != r.sourceTag(src.Kind, src.ID) {
			return foreign
		}
		created, err := time.Parse(time.RFC3339, held.Tags[replication.TagSourceCreated])
		if err != nil {
			return foreign
		}
		if sameInstant(created, src.Created) {
			return current
		}
		return older
	}
	if rowDescribes(row, held) {
		if sameInstant(row.SourceCreated, src.Created) {
			return current
		}
		return older
	}
	if !src.Expires.IsZero() && held.Expires.Equal(src.Expires) {
		return current
	}
	return foreign
}

// rowDescribes reports whether a verified replica row is about this target item: the row names
// it and, when both are known, its expiry is the one the row's source version had.
func rowDescribes(row *replication.Replica, held Item) bool {
	if row == nil || row.Status != replication.StatusSucceeded || (row.TargetID != "" && row.TargetID != held.ID) {
		return false
	}
	return row.SourceExpires.IsZero() || held.Expires.IsZero() || row.SourceExpires.Equal(held.Expires)
}

// owner names the source item a target item is dimirror's copy of; ok is false for anything
// dimirror did not put there.
func (s *sweep) owner(target string, held Item) (string, bool) {
	if tag, ok := held.Tags[replication.TagSource]; ok {
		prefix := s.r.sourceTag(held.Kind, "")
		if strings.HasPrefix(tag, prefix) && len(tag) > len(prefix) {
			return tag[len(prefix):], true
		}
		return "", false
	}
	row := s.idx.byTargetID[target][held.Kind][held.ID]
	if rowDescribes(row, held) {
		return row.SourceID, true
	}
	return "", false
}

// orphans finds dimirror's copies whose source item is gone.
func (s *sweep) orphans() {
	for _, t := range s.plan.Targets {
		inv := s.targets[t]
		if inv.err != nil {
			continue
		}
		for _, kind := range kinds {
			if s.src.unsupported[kind] {
				continue // the source cannot tell what it holds
			}
			for _, tid := range sortedIDs(inv.items[kind]) {
				if s.claimed[t][kind][tid] {
					continue
				}
				srcID, ours := s.owner(t, inv.items[kind][tid])
				if !ours {
					continue
				}
				if _, still := s.src.item(kind, srcID); still {
					continue // the source has it (excluded by the filter, or copied under another id)
				}
				e := Entry{Category: Orphaned, Action: ActReport, Kind: kind, SourceID: srcID, Target: t, TargetID: tid,
					Detail: fmt.Sprintf("dimirror's copy of %s %q, which the source no longer has", kind, srcID)}
				if s.r.Prune {
					e.Action = ActDelete
				} else {
					e.Detail += " (set DIMIRROR_PRUNE=true to delete it)"
				}
				s.plan.Entries = append(s.plan.Entries, e)
			}
		}
	}
}

// gateDependencies holds back composed models whose component models or classifier are not yet
// verified in a target, and makes sure those dependencies are on their way.
func (s *sweep) gateDependencies(ctx context.Context) {
	need := map[string]bool{}
	for _, e := range s.plan.Entries {
		if e.Kind == replication.KindModel && e.Action.requests() {
			need[e.SourceID] = true
		}
	}
	ids := make([]string, 0, len(need))
	for id := range need {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	deps, errs := s.r.dependencies(ctx, ids)
	for id, err := range errs {
		s.plan.Errors++
		s.plan.note(fmt.Sprintf("the dependencies of model %q could not be read: %v", id, err))
	}
	type pending struct {
		d     Dependency
		t, of string
	}
	var ensure []pending
	for i := range s.plan.Entries {
		e := &s.plan.Entries[i]
		if e.Kind != replication.KindModel || !e.Action.requests() {
			continue
		}
		if err, failed := errs[e.SourceID]; failed {
			e.Action, e.Detail = ActWait, "its dependencies could not be read: "+err.Error()
			continue
		}
		var missing []string
		for _, d := range deps[e.SourceID] {
			if !s.verified(e.Target, d) {
				missing = append(missing, string(d.Kind)+" "+d.ID)
				ensure = append(ensure, pending{d, e.Target, e.SourceID})
			}
		}
		if len(missing) > 0 {
			e.Action = ActWait
			e.Detail = "waits for its dependencies in the target: " + strings.Join(missing, ", ")
			s.addWaiting(e.SourceID, deps[e.SourceID], e.Target)
		}
	}
	// Appended after the loop: entries must not move while the loop holds pointers into them.
	for _, p := range ensure {
		s.ensure(p.d, p.t, p.of)
	}
}

// verified reports whether dependency d of a composed model is in target t as a copy of the
// source's current version. A dependency the source no longer has cannot be waited for.
func (s *sweep) verified(t string, d Dependency) bool {
	src, ok := s.src.item(d.Kind, d.ID)
	if !ok {
		return true
	}
	inv := s.targets[t]
	row := s.idx.byKey[replication.Key{Kind: d.Kind, SourceID: d.ID, Target: t}]
	tid := d.ID
	if row != nil && row.TargetID != "" {
		tid = row.TargetID
	}
	held, has := inv.item(d.Kind, tid)
	return has && s.r.provenance(src, held, row) == current
}

// ensure gives dependency d an entry in target t when it has none yet (the filter may have left
// it out: a composed model's parts are copied with it).
func (s *sweep) ensure(d Dependency, t, of string) {
	for _, e := range s.plan.Entries {
		if e.Kind == d.Kind && e.SourceID == d.ID && e.Target == t && e.Category != Expiring {
			return
		}
	}
	src, ok := s.src.item(d.Kind, d.ID)
	if !ok {
		return
	}
	if e, ok := s.classifyOne(src, t); ok {
		e.Detail = strings.TrimPrefix(e.Detail+"; ", "; ") + "a dependency of " + of
		s.plan.Entries = append(s.plan.Entries, e)
	}
}

func (s *sweep) addWaiting(id string, deps []Dependency, target string) {
	for i := range s.waiting {
		if s.waiting[i].ID == id {
			s.waiting[i].Targets = append(s.waiting[i].Targets, target)
			return
		}
	}
	s.waiting = append(s.waiting, waitEntry{ID: id, Deps: deps, Targets: []string{target}, Since: s.now})
}

// dependencies reads the dependencies of models, a few at a time (the lister paces the calls).
func (r *Reconciler) dependencies(ctx context.Context, ids []string) (map[string][]Dependency, map[string]error) {
	deps := map[string][]Dependency{}
	errs := map[string]error{}
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(r.workers())
	for _, id := range ids {
		g.Go(func() error {
			d, err := r.Source.Dependencies(ctx, id)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrNotFound), errors.Is(err, ErrUnsupported):
				// Gone since the listing (the request will say so), or no composition in this version.
			case err != nil:
				errs[id] = err
			default:
				deps[id] = d
			}
			return nil
		})
	}
	_ = g.Wait()
	return deps, errs
}

// gateQuota lets a target at its model limit take only as many new models as it has room for;
// the rest wait (a replacement frees its slot first, so it needs none). Classifiers do not count.
func (s *sweep) gateQuota() {
	for _, t := range s.plan.Targets {
		info := s.targets[t].info
		if info == nil || info.Limit <= 0 {
			continue
		}
		var want []int
		for i, e := range s.plan.Entries {
			if e.Target == t && e.Kind == replication.KindModel && e.Action.requests() && e.Action != ActReplace {
				want = append(want, i)
			}
		}
		room := max(info.Limit-info.Count, 0)
		waiting := 0
		for n, i := range want {
			if n < room {
				continue
			}
			e := &s.plan.Entries[i]
			e.Action = ActWait
			e.Detail = strings.TrimPrefix(e.Detail+"; ", "; ") + fmt.Sprintf("the target is at its model limit (%d of %d)", info.Count, info.Limit)
			waiting++
		}
		if info.Count >= info.Limit || waiting > 0 {
			s.plan.Quota = append(s.plan.Quota, Quota{Target: t, Count: info.Count, Limit: info.Limit, Waiting: waiting})
		}
	}
}

func errorDetail(row *replication.Replica) string {
	if row.ErrorMessage == "" {
		return row.ErrorCode
	}
	return row.ErrorCode + ": " + row.ErrorMessage
}
