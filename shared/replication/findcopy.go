package replication

import (
	"context"
	"time"
)

// copyLookback is how much earlier than the row's AuthorizedAt a copy made with that
// authorization is still looked for: the row's time is the authorizing instance's clock, the
// operation's the service's. A finished copy a clock further off hides from the lookup is still
// found by the target (authorizing again meets the model); a running one is not adopted (see
// "Finding a copy again" in docs/ARCHITECTURE.md).
const copyLookback = time.Minute

// copySince is the oldest a copy started with r's current authorization can be (the
// authorization came first), less copyLookback; zero, no bound, when r has no authorization.
func copySince(r *Replica) time.Time {
	if r.AuthorizedAt.IsZero() {
		return time.Time{}
	}
	return r.AuthorizedAt.Add(-copyLookback)
}

// findCopy looks in r's source for a running or succeeded copy into r's target id created at or
// after since (zero: as far back as the source keeps operations).
func (e *Engine) findCopy(ctx context.Context, r *Replica, since time.Time) (Operation, bool, error) {
	loc := e.targets[r.Target].Location(r.Kind, r.TargetID)
	found, err := e.sourceRes(r).FindCopyOperations(ctx, r.Kind, since, loc)
	if err != nil {
		return Operation{}, false, err
	}
	op, ok := found[loc]
	return op, ok, nil
}

// copyFind is what a poll pass's shared scan found for one replica.
type copyFind struct {
	op  Operation
	ok  bool
	err error
}

// findCopies looks, for every due authorized replica of a poll pass (each one's authorization
// expired without its copy message starting a copy, as far as the row knows), for the copy it may
// have started after all, with one scan of each source's operation list per kind, reaching back
// to the oldest of their authorizations. One scan per replica, each through the source's paced
// list budget, is what held a pass past its deadline after an outage: dozens of replicas, each
// paging through hundreds of operations, every pass.
func (e *Engine) findCopies(ctx context.Context, due []Replica) map[Key]copyFind {
	type group struct {
		res   Resource
		kind  Kind
		since time.Time
		locs  []string
		keys  []Key
	}
	groups := map[[2]string]*group{}
	for i := range due {
		r := &due[i]
		target, ok := e.targets[r.Target]
		res := e.sourceRes(r)
		if r.Status != StatusAuthorized || !ok || res == nil {
			continue
		}
		gk := [2]string{e.sourceOf(r), string(r.Kind)}
		g := groups[gk]
		since := copySince(r)
		if g == nil {
			g = &group{res: res, kind: r.Kind, since: since}
			groups[gk] = g
		}
		if since.Before(g.since) { // a zero since (no bound) wins too
			g.since = since
		}
		g.locs = append(g.locs, target.Location(r.Kind, r.TargetID))
		g.keys = append(g.keys, r.Key)
	}
	out := make(map[Key]copyFind, len(due))
	for _, g := range groups {
		found, err := g.res.FindCopyOperations(ctx, g.kind, g.since, g.locs...)
		for i, k := range g.keys {
			op, ok := found[g.locs[i]]
			out[k] = copyFind{op: op, ok: ok, err: err}
		}
	}
	return out
}
