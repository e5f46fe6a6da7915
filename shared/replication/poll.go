package replication

import (
	"context"
	"errors"
	"net/url"
	"path"
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
	now := e.now()
	var due []Replica
	next := ""
	for {
		page, err := e.Store.List(ctx, Filter{Status: []Status{StatusPending, StatusAuthorized, StatusCopying}}, next, 1000)
		if err != nil {
			return rep, err
		}
		for _, r := range page.Replicas {
			rep.Active++
			if r.Due(now) {
				due = append(due, r)
			}
		}
		if next = page.Next; next == "" {
			break
		}
	}
	rep.Due = len(due)
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.policy().Workers)
	for i := range due {
		r := &due[i]
		g.Go(func() error {
			before := *r
			err := e.advance(gctx, r)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				rep.Errors++
				e.log().ErrorContext(ctx, "poll step failed", append(replicaAttrs(&before), "err", err.Error())...)
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
	r, err := e.Store.Get(ctx, k)
	if err != nil {
		return nil, err
	}
	if err := e.advance(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

func (e *Engine) advance(ctx context.Context, r *Replica) error {
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
		if target := e.Targets[r.Target]; target != nil {
			op, ok, err := e.Source.FindCopyOperation(ctx, r.Kind, target.Location(r.Kind, r.TargetID))
			if err != nil {
				return e.transient(ctx, r, err)
			}
			if ok {
				e.adopt(r, op)
				return e.save(ctx, r)
			}
		}
		if !e.claim(ctx, r) {
			return nil
		}
		ctx, cancel := e.withinClaim(ctx, r)
		defer cancel()
		r.setError("CopyNotStarted", "no copy started before the authorization expired; authorizing again")
		return e.renew(ctx, r)
	}
	return nil
}

// claim takes a lease on r before a step with side effects on the service, so two pollers never
// both authorize the same replica. False: another instance has it.
func (e *Engine) claim(ctx context.Context, r *Replica) bool {
	r.NextAttemptAt = e.claimEnd(ctx, e.now())
	if err := e.Store.Update(ctx, r); err != nil {
		if !errors.Is(err, ErrConflict) {
			e.log().WarnContext(ctx, "claiming replica failed", append(replicaAttrs(r), "err", err.Error())...)
		}
		return false
	}
	return true
}

func (e *Engine) pollCopy(ctx context.Context, r *Replica) error {
	op, err := e.Source.GetOperation(ctx, r.OperationURL)
	if err != nil {
		if classOf(err) == ClassNotFound {
			// Operations are kept about a day: the target model decides the outcome.
			return e.verifyOr(ctx, r, func() {
				r.setError("OperationNotFound", "the copy operation record is gone; no copy in the target")
				e.retryLater(r)
			})
		}
		return e.transient(ctx, r, err)
	}
	switch op.Status {
	case OpNotStarted, OpRunning:
		if op.Percent != r.Percent {
			r.Percent = op.Percent
			return e.save(ctx, r)
		}
		return nil
	case OpSucceeded:
		return e.verifyOr(ctx, r, func() {
			r.setError("TargetMissing", "the copy operation succeeded but the target does not hold the model")
			e.retryLater(r)
		})
	default: // failed, canceled, skipped
		opErr := op.Err
		if opErr == nil {
			opErr = &ServiceError{Class: ClassRetryable, Code: "Copy" + string(op.Status), Message: "the copy operation ended " + string(op.Status)}
		}
		if opErr.Class == ClassAuthorization {
			// A second copyTo with a spent authorization fails like this while the first copy
			// runs or has finished: find that copy before retrying.
			if target := e.Targets[r.Target]; target != nil {
				found, ok, ferr := e.Source.FindCopyOperation(ctx, r.Kind, target.Location(r.Kind, r.TargetID))
				if ferr != nil {
					return e.transient(ctx, r, ferr)
				}
				if ok && found.URL != r.OperationURL {
					e.adopt(r, found)
					return e.save(ctx, r)
				}
			}
		}
		return e.verifyOr(ctx, r, func() {
			r.setError(opErr.Code, opErr.Message)
			if opErr.Class == ClassPermanent {
				r.Status = StatusFailed
				r.CompletedAt = e.now()
				return
			}
			e.retryLater(r)
		})
	}
}

// verifyOr checks the target model: a copy of this source version there means succeeded;
// otherwise orElse decides and r is saved.
func (e *Engine) verifyOr(ctx context.Context, r *Replica, orElse func()) error {
	target, ok := e.Targets[r.Target]
	if !ok {
		return e.fail(ctx, r, "UnknownTarget", "target "+r.Target+" is no longer configured")
	}
	m, err := target.GetModel(ctx, r.Kind, r.TargetID)
	switch {
	case err == nil && holdsSource(r, m):
		e.succeed(r, "target verified")
	case err == nil || classOf(err) == ClassNotFound:
		orElse()
	default:
		return e.transient(ctx, r, err)
	}
	return e.save(ctx, r)
}

// transient defers r after a throttled or unavailable call; attempts are not used up.
func (e *Engine) transient(ctx context.Context, r *Replica, err error) error {
	if classOf(err) != ClassTransient {
		return e.recordFailure(ctx, r, err)
	}
	r.NextAttemptAt = e.now().Add(e.transientWait(err))
	return e.save(ctx, r)
}

// OperationID is the last path segment of an operation URL, for logs.
func OperationID(opURL string) string {
	u, err := url.Parse(opURL)
	if err != nil {
		return ""
	}
	return path.Base(u.Path)
}
