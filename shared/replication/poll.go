package replication

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"
)

// PollReport says what one poll pass did.
type PollReport struct {
	Active    int // replicas in flight
	Due       int // of those, due for a step now
	Succeeded int
	Retried   int
	Failed    int
	Errors    int // replicas whose step failed for a reason outside the service (store, context)
}

// Poll advances every in-flight replica that is due: copying replicas by their operation (then the
// target model, to verify), pending ones by authorizing (a retry, or a re-drive after a crash), and
// authorized ones whose message never started a copy before the authorization expired. One
// replica's failure does not stop the pass.
func (e *Engine) Poll(ctx context.Context) (PollReport, error) {
	var rep PollReport
	now := e.clock()
	var due []Replica
	for r, err := range e.Replicas(ctx, Filter{Status: []Status{StatusPending, StatusAuthorized, StatusCopying}}) {
		if err != nil {
			return rep, err
		}
		rep.Active++
		if r.Due(now) {
			due = append(due, r)
		}
	}
	rep.Due = len(due)
	finds := e.findCopies(ctx, due)
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.policy.Workers)
	for i := range due {
		r := &due[i]
		g.Go(func() error {
			before := *r
			var find *copyFind
			if f, ok := finds[r.Key]; ok {
				find = &f
			}
			err := e.advance(gctx, r, find)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				rep.Errors++
				e.log.ErrorContext(ctx, "poll step failed", append(replicaAttrs(&before), "err", err.Error())...)
			case r.Status == StatusSucceeded && before.Status != StatusSucceeded:
				rep.Succeeded++
			case r.Status == StatusFailed && before.Status != StatusFailed:
				rep.Failed++
			case r.Attempt > before.Attempt:
				rep.Retried++
			}
			return nil // per-replica errors never stop the pass
		})
	}
	_ = g.Wait()
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	return rep, nil
}

// Advance runs the step a single replica is due for (the operator's "poll this one now").
func (e *Engine) Advance(ctx context.Context, k Key) (*Replica, error) {
	r, err := e.store.Get(ctx, k)
	if err != nil {
		return nil, err
	}
	if err := e.advance(ctx, r, nil); err != nil {
		return nil, err
	}
	return r, nil
}

// advance runs r's step. find, when not nil, is what the pass's shared scan of the source's
// operations found for r (authorized replicas); nil: r looks for itself.
func (e *Engine) advance(ctx context.Context, r *Replica, find *copyFind) error {
	if _, ok := e.targets[r.Target]; !ok {
		// Its target was removed from the settings: nothing can move it any more.
		return e.fail(ctx, r, CodeUnknownTarget, fmt.Sprintf("target %q is no longer configured", r.Target))
	}
	if e.sourceRes(r) == nil {
		return e.fail(ctx, r, CodeUnknownSource, fmt.Sprintf("source %q is no longer configured", e.sourceOf(r)))
	}
	switch r.Status {
	case StatusCopying:
		return e.pollCopy(ctx, r)
	case StatusPending:
		if !e.claim(ctx, r) {
			return nil
		}
		ctx, cancel := e.withinClaim(ctx, r)
		defer cancel()
		return e.authorize(ctx, r)
	case StatusAuthorized:
		// Due only once the authorization expired without a copy starting (message lost,
		// dead-lettered, or the starter crashed after copyTo): look for that copy, else renew.
		if find == nil {
			var f copyFind
			f.op, f.ok, f.err = e.findCopy(ctx, r, copySince(r))
			find = &f
		}
		op, ok, err := find.op, find.ok, find.err
		if err != nil {
			return e.recordFailure(ctx, r, "the source (operation list)", err)
		}
		if ok {
			if err := e.adopt(r, op); err != nil {
				return err
			}
			return e.save(ctx, r)
		}
		if !e.claim(ctx, r) {
			return nil
		}
		ctx, cancel := e.withinClaim(ctx, r)
		defer cancel()
		return e.renew(ctx, r, CodeCopyNotStarted, "no copy started before the authorization expired; authorizing again")
	}
	return nil
}

// claim takes a lease on r before a step with side effects on the service, so two pollers never
// both authorize the same replica. False: another instance has it.
func (e *Engine) claim(ctx context.Context, r *Replica) bool {
	r.NextAttemptAt = e.claimEnd(ctx, e.clock())
	if err := e.store.Update(ctx, r); err != nil {
		if !errors.Is(err, ErrConflict) && !errors.Is(err, ErrNotFound) {
			e.log.WarnContext(ctx, "claiming replica failed", append(replicaAttrs(r), "err", err.Error())...)
		}
		return false
	}
	return true
}

// pollCopy follows r's copy one step with the copy poller and moves r by what it says.
func (e *Engine) pollCopy(ctx context.Context, r *Replica) error {
	if !e.claimLook(ctx, r) {
		return nil // another instance, or a check message, is looking at this copy now
	}
	target := e.targets[r.Target]
	p, err := NewCopyPoller(e.copySource(r), target, r.Kind, r.TargetID, r.SourceCreated, r.SourceExpires, r.OperationURL)
	if err != nil {
		return e.retryOrFailSave(ctx, r, CodeOperationNotFound, "the replica has no copy operation to follow")
	}
	op, err := p.Poll(ctx)
	if err != nil {
		return e.recordFailure(ctx, r, "the source (copy operation)", err)
	}
	if !p.Done() {
		if now := e.clock(); !r.StartedAt.IsZero() && now.Sub(r.StartedAt) > e.policy.GiveUpAfter {
			return e.fail(ctx, r, CodeCopyTimeout, fmt.Sprintf("the copy operation has run for %s without ending (DIMIRROR_GIVE_UP_AFTER); the next sweep or request starts a new run",
				now.Sub(r.StartedAt).Round(1e9)))
		}
		changed, err := r.Progress(op.Percent)
		if err != nil || !changed {
			return err
		}
		return e.save(ctx, r)
	}
	if op.Status == OpFailed && op.Err != nil && op.Err.Class == ClassAuthorization {
		// A second copyTo with a spent authorization fails like this while the first copy runs
		// or has finished: find that copy before retrying.
		found, ok, ferr := e.findCopy(ctx, r, copySince(r))
		if ferr != nil {
			return e.recordFailure(ctx, r, "the source (operation list)", ferr)
		}
		if ok && found.URL != r.OperationURL {
			if err := e.adopt(r, found); err != nil {
				return err
			}
			return e.save(ctx, r)
		}
	}
	res, err := p.Result(ctx)
	if err != nil {
		return e.recordFailure(ctx, r, "target "+r.Target, err)
	}
	switch {
	case res.Verified:
		e.succeed(ctx, r, "target verified")
		return e.saveAndForward(ctx, r)
	case res.Status == "":
		// Operations are kept about a day: the target decides, and it holds no copy.
		return e.retryOrFailSave(ctx, r, CodeOperationNotFound, "the copy operation record is gone; no copy in the target")
	case res.Status == OpSucceeded:
		return e.retryOrFailSave(ctx, r, CodeCopyNotInTarget, "the copy operation succeeded but the target does not hold the copy")
	case res.Err.Class == ClassPermanent:
		return e.fail(ctx, r, res.Err.Code, res.Err.Message)
	case res.Err.Class == ClassQuota:
		return e.recordFailure(ctx, r, "target "+r.Target, res.Err)
	default:
		return e.retryOrFailSave(ctx, r, res.Err.Code, res.Err.Message)
	}
}

// claimLook takes the next look at r's copy for this step: an ETag-checked write of when the look
// after it is due (CheckDelay of the copy's age, 0.5 to 5 s). Every instance's poll timer and
// every check message would otherwise read the operation — and, once it succeeded, verify the
// target — each on its own, multiplying the calls to the resource's budgets by the number of
// instances; with the claim one of them looks and the others find the copy not due. False: the
// row changed meanwhile (another looker won) or is gone.
func (e *Engine) claimLook(ctx context.Context, r *Replica) bool {
	now := e.clock()
	r.NextAttemptAt = now.Add(CheckDelay(now.Sub(r.StartedAt)))
	r.UpdatedAt = now
	if err := e.store.Update(ctx, r); err != nil {
		if !errors.Is(err, ErrConflict) && !errors.Is(err, ErrNotFound) {
			e.log.WarnContext(ctx, "claiming a look at a copy failed", append(replicaAttrs(r), "err", err.Error())...)
		}
		return false
	}
	return true
}

func (e *Engine) retryOrFailSave(ctx context.Context, r *Replica, code, msg string) error {
	if err := e.retryOrFail(ctx, r, code, msg, true); err != nil {
		return err
	}
	return e.save(ctx, r)
}
