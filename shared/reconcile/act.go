package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dimirror/dimirror/shared/replication"
)

// act carries out the plan's requests and deletions, a few at a time. Entries the pass has no
// time left for are marked deferred: the next pass finds them again.
func (s *sweep) act(ctx context.Context) {
	r := s.r
	type group struct {
		kind     replication.Kind
		source   string
		id, tid  string
		entries  []int
		restores []int
	}
	groups := map[string]*group{}
	var order []string
	var deletes []int
	for i, e := range s.plan.Entries {
		switch {
		case e.Action.requests():
			key := e.Source + "\x00" + string(e.Kind) + "\x00" + e.SourceID + "\x00" + e.TargetID
			g := groups[key]
			if g == nil {
				g = &group{kind: e.Kind, source: e.Source, id: e.SourceID, tid: e.TargetID}
				groups[key] = g
				order = append(order, key)
			}
			g.entries = append(g.entries, i)
			if e.Action == ActRestore {
				g.restores = append(g.restores, i)
			}
		case e.Action == ActDelete:
			deletes = append(deletes, i)
		}
	}
	// A composed model whose dependencies are not verified waits (it is not requested in this
	// pass at all), so the requests below may run in any order.
	var mu sync.Mutex
	result := func(i int, res string, failed bool) {
		mu.Lock()
		defer mu.Unlock()
		s.plan.Entries[i].Result = res
		if failed {
			s.plan.Errors++
		}
	}
	var g errgroup.Group
	g.SetLimit(r.workers())
	for _, key := range order {
		grp := groups[key]
		g.Go(func() error {
			if ctx.Err() != nil {
				for _, i := range grp.entries {
					result(i, "deferred", false)
				}
				return nil
			}
			for _, i := range grp.restores {
				e := s.plan.Entries[i]
				if err := r.markMissing(ctx, replication.Key{Kind: e.Kind, SourceID: e.SourceID, Target: e.Target}); err != nil {
					r.log().ErrorContext(ctx, "sweep: marking a vanished copy failed", "kind", string(e.Kind), "sourceId", e.SourceID, "target", e.Target, "err", err.Error())
				}
			}
			targets := make([]string, 0, len(grp.entries))
			for _, i := range grp.entries {
				targets = append(targets, s.plan.Entries[i].Target)
			}
			reps, err := r.request(ctx, replication.Request{Source: grp.source, Kind: grp.kind, SourceID: grp.id, TargetID: grp.tid, Targets: targets})
			if err != nil {
				msg, failed := requestError(err)
				if failed {
					r.log().ErrorContext(ctx, "sweep: requesting replication failed", "kind", string(grp.kind), "sourceId", grp.id, "err", err.Error())
				}
				for _, i := range grp.entries {
					result(i, msg, failed)
				}
				return nil
			}
			for _, rep := range reps {
				for _, i := range grp.entries {
					if s.plan.Entries[i].Target == rep.Target {
						result(i, replicaResult(rep), false)
					}
				}
			}
			return nil
		})
	}
	for _, i := range deletes {
		g.Go(func() error {
			e := s.plan.Entries[i]
			if ctx.Err() != nil {
				result(i, "deferred", false)
				return nil
			}
			res, err := r.prune(ctx, e)
			if err != nil {
				r.log().ErrorContext(ctx, "sweep: deleting an orphan failed", "kind", string(e.Kind), "targetId", e.TargetID, "target", e.Target, "err", err.Error())
				result(i, "error: "+err.Error(), true)
				return nil
			}
			result(i, res, false)
			return nil
		})
	}
	_ = g.Wait()
}

// requestError renders a failed request for an entry; failed is false when the outcome is an
// answer rather than a fault (the source item is gone since the listing).
func requestError(err error) (string, bool) {
	if errors.Is(err, replication.ErrSourceNotFound) {
		return "skipped: the source no longer has it", false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return "deferred", false
	}
	return "error: " + err.Error(), true
}

// replicaResult is a replica's state after a request, as an entry's result.
func replicaResult(rep replication.Replica) string {
	if rep.ErrorCode != "" {
		return fmt.Sprintf("%s (%s)", rep.Status, rep.ErrorCode)
	}
	return string(rep.Status)
}

// markMissing records that a verified replica's copy vanished from the target (TargetVanished),
// so the request that follows starts a new run: a request leaves verified replicas alone.
func (r *Reconciler) markMissing(ctx context.Context, k replication.Key) error {
	return r.Engine.MarkVanished(ctx, k)
}

// prune deletes an orphan through the engine, which checks once more, right before the delete,
// that the source lacks it and that the target model is dimirror's copy of that source item.
func (r *Reconciler) prune(ctx context.Context, e Entry) (string, error) {
	res, err := r.Engine.Prune(ctx, replication.Key{Kind: e.Kind, SourceID: e.SourceID, Target: e.Target}, e.TargetID)
	return string(res), err
}

func isNotFound(err error) bool {
	var se *replication.ServiceError
	return errors.As(err, &se) && se.Class == replication.ClassNotFound
}

// rememberWaiting adds composed models that wait for their dependencies to the waiting list the
// watch works through.
func (r *Reconciler) rememberWaiting(ctx context.Context, add []waitEntry) error {
	if len(add) == 0 {
		return nil
	}
	return updateMeta(ctx, r, metaWaiting, func(st *waitingState) {
		for _, a := range add {
			merged := false
			for i := range st.Entries {
				if st.Entries[i].ID == a.ID && r.sourceOfWait(st.Entries[i]) == r.sourceOfWait(a) {
					st.Entries[i].Deps = a.Deps
					st.Entries[i].Targets = union(st.Entries[i].Targets, a.Targets)
					merged = true
				}
			}
			if !merged {
				st.Entries = append(st.Entries, a)
			}
		}
		if n := len(st.Entries); n > maxWaiting {
			// Oldest first out: the sweep finds them again.
			sort.SliceStable(st.Entries, func(i, j int) bool { return st.Entries[i].Since.After(st.Entries[j].Since) })
			st.Entries = st.Entries[:maxWaiting]
		}
	})
}

func union(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(append([]string(nil), a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// logPlan writes one line per pass with the counts, and one warning per target at its limit.
func (r *Reconciler) logPlan(ctx context.Context, p *Plan) {
	counts := p.Counts()
	attrs := []any{"run", p.Run, "duration", p.Finished.Sub(p.Started).Round(time.Millisecond).String(), "errors", p.Errors}
	for _, c := range Categories {
		attrs = append(attrs, string(c), counts[c])
	}
	if p.Run == runWatch {
		attrs = append(attrs, "operations", p.Operations, "running", p.Running, "waiting", p.Waiting)
	}
	level := r.log().InfoContext
	if p.Errors > 0 {
		level = r.log().WarnContext
	}
	level(ctx, p.Run+" planned", attrs...)
	for _, q := range p.Quota {
		r.log().WarnContext(ctx, "target at its model limit", "target", q.Target, "count", q.Count, "limit", q.Limit, "waiting", q.Waiting)
	}
}
