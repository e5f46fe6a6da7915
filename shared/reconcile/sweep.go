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
	invs, err := r.readInventories(ctx, true)
	if err != nil {
		return nil, err
	}
	listedAt := plan.Started
	idx, err := r.readRows(ctx)
	if err != nil {
		return nil, err
	}
	for _, name := range sortedNames(invs) {
		if err := invs[name].err; err != nil {
			plan.Errors++
			plan.Incomplete = true
			plan.note(fmt.Sprintf("%s could not be listed; its rules were skipped: %v", name, err))
			r.log().ErrorContext(ctx, "sweep: listing a resource failed; its rules are skipped this time", "resource", name, "err", err.Error())
		}
	}
	s := &sweep{r: r, plan: plan, invs: invs, targets: invs, idx: idx, listedAt: listedAt, now: r.now(),
		claimed: map[string]map[replication.Kind]map[string]bool{}, planned: map[replication.Key]bool{}, counted: map[string]bool{}}
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

func sortedNames(m map[string]*inventory) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// sweep is one sweep's working state.
type sweep struct {
	r    *Reconciler
	plan *Plan
	// invs is every resource's listing by name; targets is the same map, read as targets.
	invs     map[string]*inventory
	targets  map[string]*inventory
	idx      *rowIndex
	listedAt time.Time
	now      time.Time
	// claimed marks the target ids the sources' items account for; what is left may be orphaned.
	claimed map[string]map[replication.Kind]map[string]bool
	// planned marks the replicas an entry already covers: two rules delivering one item into one
	// target (A>C and B>C, both holding A's model) plan it once.
	planned map[replication.Key]bool
	// counted marks the source items counted (and checked for expiry) once.
	counted map[string]bool
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

// origin is where source item it of resource source was trained: dimirror's tags on a copy; for
// a classifier (no tags), the verified row that made it; else source itself.
func (s *sweep) origin(source string, it Item) replication.Origin {
	if o, ok := replication.TaggedOrigin(it.Tags); ok {
		return o
	}
	if it.Kind == replication.KindClassifier {
		if o, ok := s.r.Engine.RowOrigin(s.idx.byTargetID[source][it.Kind][it.ID], it.Expires); ok {
			return o
		}
	}
	return replication.Origin{Tag: replication.SourceTag(s.r.Engine.Host(source), it.Kind, it.ID), Created: it.Created}
}

// classify plans every rule from>to: what from holds (originals and copies alike, so chains and
// meshes deliver transitively), except into the item's origin, and each item once per target.
func (s *sweep) classify() {
	for _, t := range s.plan.Targets {
		for _, kind := range kinds {
			if inv := s.targets[t]; inv.err == nil && inv.unsupported[kind] {
				s.plan.note(fmt.Sprintf("target %s's api-version has no %ss; none are copied there", t, kind))
			}
		}
	}
	noted := map[string]bool{}
	for _, rule := range s.r.Engine.Rules() {
		src := s.invs[rule.From]
		if src.err != nil {
			continue // noted with the listing error
		}
		for _, kind := range kinds {
			if src.unsupported[kind] {
				if n := rule.From + string(kind); !noted[n] {
					noted[n] = true
					s.plan.note(fmt.Sprintf("%s's api-version has no %ss; none were reconciled from it", rule.From, kind))
				}
				continue
			}
			items := src.items[kind]
			for _, id := range sortedIDs(items) {
				if !s.r.selects(rule, kind, id) {
					continue
				}
				it := items[id]
				s.count(rule.From, it)
				o := s.origin(rule.From, it)
				if s.r.Engine.IsOrigin(rule.To, o.Tag) {
					s.claim(rule.To, kind, id) // the origin itself: never copied back
					continue
				}
				k := replication.Key{Kind: kind, SourceID: id, Target: rule.To}
				if s.planned[k] {
					continue
				}
				s.planned[k] = true
				if e, ok := s.classifyOne(rule.From, it, o, rule.To); ok {
					s.plan.Entries = append(s.plan.Entries, e)
				}
			}
		}
	}
}

// count counts a selected source item once and reports it when it expires soon.
func (s *sweep) count(source string, it Item) {
	n := source + "\x00" + string(it.Kind) + "\x00" + it.ID
	if s.counted[n] {
		return
	}
	s.counted[n] = true
	if it.Kind == replication.KindModel {
		s.plan.SourceModels++
	} else {
		s.plan.SourceClassifiers++
	}
	if s.expiring(it.Expires) {
		exp := it.Expires
		target := SourceResource
		if len(s.r.Engine.SourceNames()) > 1 {
			target = source
		}
		s.plan.Entries = append(s.plan.Entries, Entry{Category: Expiring, Action: ActReport, Kind: it.Kind, Source: source, SourceID: it.ID,
			Target: target, TargetID: it.ID, Expires: &exp, Detail: "the source model expires " + exp.Format(time.RFC3339)})
	}
}

func (s *sweep) expiring(exp time.Time) bool {
	return !exp.IsZero() && exp.Sub(s.now) < s.r.expiryWindow()
}

// classifyOne decides what item src of resource source (of origin o) needs in target t; ok is
// false when nothing (in sync, or the target cannot be judged).
func (s *sweep) classifyOne(source string, src Item, o replication.Origin, t string) (Entry, bool) {
	inv := s.targets[t]
	row := s.idx.byKey[replication.Key{Kind: src.Kind, SourceID: src.ID, Target: t}]
	if inv.err != nil && row != nil && row.Status.InFlight() {
		// The target is down: what waits for it is still reported, so an outage shows which
		// replicas are pending there (and since when).
		return Entry{Category: InFlight, Action: ActNone, Kind: src.Kind, Source: source, SourceID: src.ID, Target: t, TargetID: row.TargetID,
			Detail: fmt.Sprintf("replica %s since %s; the target could not be listed (last error %s)", row.Status, row.RequestedAt.Format(time.RFC3339), row.ErrorCode)}, true
	}
	if inv.err != nil || inv.unsupported[src.Kind] {
		return Entry{}, false
	}
	tid := src.ID
	if row != nil && row.TargetID != "" {
		tid = row.TargetID
	}
	s.claim(t, src.Kind, tid)
	e := Entry{Kind: src.Kind, Source: source, SourceID: src.ID, Target: t, TargetID: tid}
	if o.Copy {
		e.Origin = o.Tag
	}
	held, has := inv.item(src.Kind, tid)
	var ver version
	if has {
		ver = s.r.provenance(src, o, held, row)
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
		e.Detail = fmt.Sprintf("the origin was rebuilt %s; the target holds the copy of an older version", o.Created.Format(time.RFC3339))
		if s.r.replace() {
			e.Action = ActReplace
		} else {
			e.Detail += " (set DIMIRROR_REPLACE=true to replace it)"
		}
	case has:
		e.Category, e.Action = Conflict, ActReport
		e.Detail = fmt.Sprintf("%s: the target holds a %s of another origin under this id (%s), not a copy of %s; it is never overwritten: rename or delete one of them, or request another targetId",
			replication.CodeTargetExists, src.Kind, s.heldOrigin(t, held), o.Tag)
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

// heldOrigin describes the origin of a target item for a conflict's detail.
func (s *sweep) heldOrigin(t string, held Item) string {
	if tag, ok := held.Tags[replication.TagSource]; ok {
		return "a copy of " + tag
	}
	if o, ok := s.r.Engine.RowOrigin(s.idx.byTargetID[t][held.Kind][held.ID], held.Expires); ok {
		return "a copy of " + o.Tag
	}
	return "trained in " + t + " or put there by someone else"
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
	foreign version = iota // not a copy of this origin item
	older                  // dimirror's copy of an older version of it
	current                // a copy of the version the origin holds now
)

// provenance says what target item held is relative to source item src of origin o: models carry
// dimirror's tags, which name the origin; classifiers keep none, so a verified replica row speaks
// for them; and every copy keeps the source's expirationDateTime, which identifies the version.
func (r *Reconciler) provenance(src Item, o replication.Origin, held Item, row *replication.Replica) version {
	if tag, ok := held.Tags[replication.TagSource]; ok {
		if tag != o.Tag {
			return foreign
		}
		created, err := time.Parse(time.RFC3339, held.Tags[replication.TagSourceCreated])
		if err != nil {
			return foreign
		}
		if sameInstant(created, o.Created) {
			return current
		}
		return older
	}
	if rowDescribes(row, held) {
		if r.Engine.RowOriginTag(row) != o.Tag {
			return foreign
		}
		if sameInstant(row.SourceCreated, o.Created) {
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

// owner names the origin id of a target item dimirror copied from one of this deployment's
// resources; ok is false for anything dimirror did not put there.
func (s *sweep) owner(target string, held Item) (string, bool) {
	if tag, ok := held.Tags[replication.TagSource]; ok {
		for _, name := range s.r.Engine.SourceNames() {
			prefix := replication.SourceTag(s.r.Engine.Host(name), held.Kind, "")
			if s.r.Engine.Host(name) != "" && strings.HasPrefix(tag, prefix) && len(tag) > len(prefix) {
				return tag[len(prefix):], true
			}
		}
		return "", false
	}
	row := s.idx.byTargetID[target][held.Kind][held.ID]
	if rowDescribes(row, held) {
		return row.SourceID, true
	}
	return "", false
}

// sourcesOf lists the resources whose rules copy into target t.
func (s *sweep) sourcesOf(t string) []string {
	var out []string
	for _, rule := range s.r.Engine.Rules() {
		if rule.To == t {
			out = append(out, rule.From)
		}
	}
	return out
}

// orphans finds dimirror's copies that no source of their target holds any more.
func (s *sweep) orphans() {
	for _, t := range s.plan.Targets {
		inv := s.targets[t]
		if inv.err != nil {
			continue
		}
		sources := s.sourcesOf(t)
		for _, kind := range kinds {
			judged := true
			for _, src := range sources {
				if si := s.invs[src]; si.err != nil || si.unsupported[kind] {
					judged = false // a source that cannot tell what it holds
				}
			}
			if !judged {
				continue
			}
			for _, tid := range sortedIDs(inv.items[kind]) {
				if s.claimed[t][kind][tid] {
					continue
				}
				srcID, ours := s.owner(t, inv.items[kind][tid])
				if !ours {
					continue
				}
				still := false
				for _, src := range sources {
					if _, ok := s.invs[src].item(kind, srcID); ok {
						still = true // a source has it (excluded by a filter, or copied under another id)
					}
				}
				if still {
					continue
				}
				e := Entry{Category: Orphaned, Action: ActReport, Kind: kind, SourceID: srcID, Target: t, TargetID: tid,
					Detail: fmt.Sprintf("dimirror's copy of %s %q, which no source of %s holds any more", kind, srcID, t)}
				if row := s.idx.byKey[replication.Key{Kind: kind, SourceID: srcID, Target: t}]; row != nil {
					e.Source = row.Source
				}
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
	need := map[depKey]bool{}
	for _, e := range s.plan.Entries {
		if e.Kind == replication.KindModel && e.Action.requests() {
			need[depKey{e.Source, e.SourceID}] = true
		}
	}
	keys := make([]depKey, 0, len(need))
	for k := range need {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].source != keys[j].source {
			return keys[i].source < keys[j].source
		}
		return keys[i].id < keys[j].id
	})
	deps, errs := s.r.dependencies(ctx, keys)
	for k, err := range errs {
		s.plan.Errors++
		s.plan.note(fmt.Sprintf("the dependencies of model %q in %s could not be read: %v", k.id, k.source, err))
	}
	type pending struct {
		d             Dependency
		t, of, source string
	}
	var ensure []pending
	for i := range s.plan.Entries {
		e := &s.plan.Entries[i]
		if e.Kind != replication.KindModel || !e.Action.requests() {
			continue
		}
		k := depKey{e.Source, e.SourceID}
		if err, failed := errs[k]; failed {
			e.Action, e.Detail = ActWait, "its dependencies could not be read: "+err.Error()
			continue
		}
		var missing []string
		for _, d := range deps[k] {
			if !s.verified(e.Source, e.Target, d) {
				missing = append(missing, string(d.Kind)+" "+d.ID)
				ensure = append(ensure, pending{d, e.Target, e.SourceID, e.Source})
			}
		}
		if len(missing) > 0 {
			e.Action = ActWait
			e.Detail = "waits for its dependencies in the target: " + strings.Join(missing, ", ")
			s.addWaiting(e.Source, e.SourceID, deps[k], e.Target)
		}
	}
	// Appended after the loop: entries must not move while the loop holds pointers into them.
	for _, p := range ensure {
		s.ensure(p.source, p.d, p.t, p.of)
	}
}

// depKey names a model of a source resource.
type depKey struct{ source, id string }

// verified reports whether dependency d of a composed model of source is in target t as a copy
// of the current version. A dependency the source no longer has cannot be waited for.
func (s *sweep) verified(source, t string, d Dependency) bool {
	src, ok := s.invs[source].item(d.Kind, d.ID)
	if !ok {
		return true
	}
	o := s.origin(source, src)
	if s.r.Engine.IsOrigin(t, o.Tag) {
		return true // the dependency was trained in t
	}
	inv := s.targets[t]
	row := s.idx.byKey[replication.Key{Kind: d.Kind, SourceID: d.ID, Target: t}]
	tid := d.ID
	if row != nil && row.TargetID != "" {
		tid = row.TargetID
	}
	held, has := inv.item(d.Kind, tid)
	return has && s.r.provenance(src, o, held, row) == current
}

// ensure gives dependency d an entry in target t when it has none yet (the filter may have left
// it out: a composed model's parts are copied with it).
func (s *sweep) ensure(source string, d Dependency, t, of string) {
	for _, e := range s.plan.Entries {
		if e.Kind == d.Kind && e.SourceID == d.ID && e.Target == t && e.Category != Expiring {
			return
		}
	}
	src, ok := s.invs[source].item(d.Kind, d.ID)
	if !ok {
		return
	}
	o := s.origin(source, src)
	if s.r.Engine.IsOrigin(t, o.Tag) {
		return
	}
	if e, ok := s.classifyOne(source, src, o, t); ok {
		e.Detail = strings.TrimPrefix(e.Detail+"; ", "; ") + "a dependency of " + of
		s.plan.Entries = append(s.plan.Entries, e)
	}
}

func (s *sweep) addWaiting(source, id string, deps []Dependency, target string) {
	for i := range s.waiting {
		if s.waiting[i].ID == id && s.waiting[i].Source == source {
			s.waiting[i].Targets = append(s.waiting[i].Targets, target)
			return
		}
	}
	s.waiting = append(s.waiting, waitEntry{Source: source, ID: id, Deps: deps, Targets: []string{target}, Since: s.now})
}

// dependencies reads the dependencies of models, a few at a time (the lister paces the calls).
func (r *Reconciler) dependencies(ctx context.Context, keys []depKey) (map[depKey][]Dependency, map[depKey]error) {
	deps := map[depKey][]Dependency{}
	errs := map[depKey]error{}
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(r.workers())
	for _, k := range keys {
		g.Go(func() error {
			d, err := r.Resources[k.source].Dependencies(ctx, k.id)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrNotFound), errors.Is(err, ErrUnsupported):
				// Gone since the listing (the request will say so), or no composition in this version.
			case err != nil:
				errs[k] = err
			default:
				deps[k] = d
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
