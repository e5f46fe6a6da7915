package replication

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Handle runs one message of the copy queue: a check of a started copy (Check) or a copy
// message (StartCopy).
func (e *Engine) Handle(ctx context.Context, msg *CopyMessage, deliveryCount int) error {
	if msg.Check > 0 {
		return e.Check(ctx, msg)
	}
	return e.StartCopy(ctx, msg, deliveryCount)
}

// StartCopy runs one copy message: copyTo on the source with the message's authorization.
// Everything is recorded on the row and the message is done, except a transient failure (the
// source, the table or the operation lookup unavailable): then the message is sent again,
// scheduled after a backoff (Policy.messageRetryDelay), so an outage of a few seconds or minutes
// neither burns the queue's deliveries in a burst nor parks the replica until its authorization
// expires. Only when that send fails too is the error returned, for an ordinary redelivery.
func (e *Engine) StartCopy(ctx context.Context, msg *CopyMessage, deliveryCount int) error {
	err := e.startCopyMessage(ctx, msg, deliveryCount)
	if err == nil || classOf(err) != ClassTransient || ctx.Err() != nil {
		return err
	}
	return e.reschedule(ctx, msg, err)
}

// reschedule sends msg again, to be delivered after the backoff of its next retry; the current
// delivery is then done. Its MessageId differs (the retry number), so duplicate detection keeps it.
func (e *Engine) reschedule(ctx context.Context, msg *CopyMessage, cause error) error {
	next := *msg
	next.Retry++
	var se *ServiceError
	retryAfter := time.Duration(0)
	if errors.As(cause, &se) {
		retryAfter = se.RetryAfter
	}
	delay := e.policy.messageRetryDelay(next.Retry, retryAfter)
	if !msg.ExpiresAt.IsZero() && e.clock().Add(delay).After(msg.ExpiresAt) {
		return nil // the authorization ends first: the poller renews it at its expiry
	}
	if err := e.queue.Schedule(ctx, &next, delay); err != nil {
		return fmt.Errorf("%w (and rescheduling the message failed: %v)", cause, err)
	}
	e.log.InfoContext(ctx, "copy message rescheduled after a transient failure",
		"replica", msg.Key().String(), "attempt", msg.Attempt, "retry", next.Retry, "after", delay.String(), "err", cause.Error())
	return nil
}

// startCopyMessage claims the row and starts the copy. A transient failure is returned (the
// claim given back first); everything else ends on the row.
func (e *Engine) startCopyMessage(ctx context.Context, msg *CopyMessage, deliveryCount int) error {
	waiting, waits := false, 0
	for conflicts := 0; conflicts < 3; {
		r, err := e.store.Get(ctx, msg.Key())
		if errors.Is(err, ErrNotFound) {
			e.log.WarnContext(ctx, "copy message for an unknown replica dropped", "replica", msg.Key().String(), "attempt", msg.Attempt)
			return nil
		}
		if err != nil {
			return transientErr("the replica table", err)
		}
		if !msg.belongsTo(r) || (r.Status != StatusPending && r.Status != StatusAuthorized) {
			e.log.DebugContext(ctx, "copy message already handled", append(replicaAttrs(r), "messageAttempt", msg.Attempt)...)
			return nil
		}
		now := e.clock()
		if claimedByAnother(r, now) {
			// Another delivery of this message (its lock was lost while it worked) is starting
			// the copy: a second copyTo would spend the authorization twice. Wait for it, holding
			// this delivery: it either moves the row on (this message is then done), or gives the
			// claim back after a transient failure, or dies and its lease runs out; in the last
			// two cases this delivery, which still has the message, carries on.
			if !waiting {
				waiting = true
				if r.Status == StatusPending { // the authorizing step's write, the usual case
					e.log.DebugContext(ctx, "copy message came before its row was written authorized; waiting for it", append(replicaAttrs(r), "messageAttempt", msg.Attempt)...)
				} else {
					e.log.InfoContext(ctx, "copy message is being handled by another delivery; waiting for it", append(replicaAttrs(r), "messageAttempt", msg.Attempt)...)
				}
			}
			// Soon at first (the usual claim is the authorizing step's, ending with its write a
			// few milliseconds after it sent this message), then every claimPoll.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(min(claimPoll, claimPollFirst<<min(waits, 8))):
			}
			waits++
			continue
		}
		// Claim the row so a concurrent delivery of the same message waits.
		prev := r.NextAttemptAt
		r.NextAttemptAt = e.claimEnd(ctx, now)
		if err := e.store.Update(ctx, r); errors.Is(err, ErrConflict) {
			conflicts++
			continue
		} else if errors.Is(err, ErrNotFound) {
			return nil // deleted by an operator meanwhile
		} else if err != nil {
			return transientErr("the replica table", err)
		}
		e.log.DebugContext(ctx, "copy starter claimed the replica", append(replicaAttrs(r),
			"until", r.NextAttemptAt, "previous", prev, "retry", msg.Retry, "deliveryCount", deliveryCount)...)
		ctx, cancel := e.withinClaim(ctx, r)
		defer cancel()
		return e.startCopy(ctx, r, msg, deliveryCount, prev)
	}
	return transientErr("the replica table", fmt.Errorf("replica %s keeps changing under the copy starter", msg.Key()))
}

// belongsTo reports whether msg was sent for r's current attempt of its current run. A message
// without a run (sent before runs were named) matches on the attempt alone.
func (m *CopyMessage) belongsTo(r *Replica) bool {
	return r.Attempt == m.Attempt && (m.Run == "" || m.Run == r.RunID())
}

// transientErr marks a failure outside the service (the table, the queue) as transient, naming
// what failed.
func transientErr(what string, err error) error {
	if classOf(err) == ClassTransient {
		var se *ServiceError
		if errors.As(err, &se) {
			return err
		}
	}
	return &ServiceError{Class: ClassTransient, Code: "Unavailable", Message: what + ": " + err.Error(), cause: err}
}

// claimPoll is how often a delivery waiting on another one's claim reads the row again, after
// reads claimPollFirst apart doubling up to it.
var claimPoll = time.Second

const claimPollFirst = 25 * time.Millisecond

// writeTimeout bounds the write of a step's outcome once the step's own context has ended.
const writeTimeout = 10 * time.Second

// claimedByAnother reports whether another step holds r, which a copy message found pending or
// authorized for its own attempt: an authorized row is due again at its authorization's expiry,
// unless a claim moved that to a lease's end. A pending row with its message's attempt was claimed
// too: the authorizing step sends the message before it writes the row authorized, so the row is
// pending while that step still holds it, or after a copy starter claimed it first (the
// authorized write then loses to the claim). Either claim must keep a second delivery off.
func claimedByAnother(r *Replica, now time.Time) bool {
	return (r.Status == StatusAuthorized || r.Status == StatusPending) &&
		r.NextAttemptAt.After(now) && !r.NextAttemptAt.Equal(r.AuthExpiresAt)
}

// claimEnd is when a claim taken now by a step running under ctx lapses: a lease from now, or
// sooner when ctx ends sooner, since the step can do nothing after that and holding the row
// longer would only keep the next delivery or pass waiting.
func (e *Engine) claimEnd(ctx context.Context, now time.Time) time.Time {
	d := e.policy.Lease
	if deadline, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(deadline))
	}
	return now.Add(max(d, 0))
}

// withinClaim bounds the step that holds the claim on r to the claim's end: past it another
// delivery or poll pass may take the row, and two steps must never both spend an authorization.
func (e *Engine) withinClaim(ctx context.Context, r *Replica) (context.Context, context.CancelFunc) {
	// A timeout rather than a deadline: the claim is on the engine's clock, ctx on the wall clock.
	return context.WithTimeout(ctx, r.NextAttemptAt.Sub(e.clock()))
}

// release gives a claim back after a transient failure (prev is the row's due time before it),
// recording the failure (a streak of them ends the run after Policy.GiveUpAfter), so the
// message's next delivery starts the copy, and returns err. It writes even when the step's
// context has ended (that is often why the step failed).
func (e *Engine) release(ctx context.Context, r *Replica, prev time.Time, what string, err error) error {
	gaveUp, werr := e.waitOrGiveUp(ctx, r, what, err, prev)
	if werr != nil {
		return werr
	}
	if gaveUp {
		return e.save(ctx, r)
	}
	if serr := e.save(ctx, r); serr != nil {
		e.log.WarnContext(ctx, "releasing the claim on a replica failed; the poller takes it over after the lease",
			append(replicaAttrs(r), "err", serr.Error())...)
	} else {
		e.log.DebugContext(ctx, "copy starter gave its claim back", append(replicaAttrs(r), "next", r.NextAttemptAt)...)
	}
	return transientErr(what, err)
}

func (e *Engine) startCopy(ctx context.Context, r *Replica, msg *CopyMessage, deliveryCount int, prev time.Time) error {
	target := e.targets[r.Target]
	if target == nil {
		return e.fail(ctx, r, CodeUnknownTarget, fmt.Sprintf("target %q is no longer configured", r.Target))
	}
	source := e.sourceRes(r)
	if source == nil {
		return e.fail(ctx, r, CodeUnknownSource, fmt.Sprintf("source %q is no longer configured", e.sourceOf(r)))
	}
	if deliveryCount > 1 || msg.Retry > 0 {
		// A redelivery may follow a crash or a lost answer after copyTo was accepted: find that
		// copy again rather than spend the authorization twice (or, expired, renew it in vain).
		op, ok, err := e.findCopy(ctx, r, copySince(r))
		if err != nil {
			return e.release(ctx, r, prev, "the source (operation list)", err)
		}
		if ok {
			if err := e.adopt(r, op); err != nil {
				return err
			}
			return e.saveAndFollow(ctx, r)
		}
	}
	if !msg.ExpiresAt.IsZero() && e.clock().After(msg.ExpiresAt.Add(-e.policy.AuthMargin)) {
		// No copy used it: a first delivery is the first to hold it, and a redelivery looked.
		return e.renew(ctx, r, CodeAuthorizationExpired, "the copy authorization expired before the copy started; authorizing again")
	}
	opURL, err := e.copySource(r).CopyTo(ctx, r.Kind, r.SourceID, msg.Authorization)
	if err != nil {
		switch classOf(err) {
		case ClassTransient:
			return e.release(ctx, r, prev, "the source (copyTo)", err)
		case ClassAuthorization:
			code, m := codeAndMessage(err)
			return e.renew(ctx, r, code, m)
		case ClassNotReady, ClassNotFound:
			if gone, gerr := e.sourceGone(ctx, r); gerr == nil && gone {
				return e.abandonReservation(ctx, r, target)
			}
			return e.recordFailure(ctx, r, "the source", err)
		default:
			return e.recordFailure(ctx, r, "the source", err)
		}
	}
	if err := r.Copying(opURL, e.clock()); err != nil {
		return err
	}
	e.log.InfoContext(ctx, "copy started", append(replicaAttrs(r), "authorizedFor", r.StartedAt.Sub(r.AuthorizedAt).String())...)
	return e.saveAndFollow(ctx, r)
}

// sourceGone reports whether the source item no longer exists.
func (e *Engine) sourceGone(ctx context.Context, r *Replica) (bool, error) {
	source := e.sourceRes(r)
	if source == nil {
		return false, fmt.Errorf("source %q is no longer configured", e.sourceOf(r))
	}
	_, err := source.GetModel(ctx, r.Kind, r.SourceID)
	if err == nil {
		return false, nil
	}
	if classOf(err) == ClassNotFound {
		return true, nil
	}
	return false, err
}

// abandonReservation ends a replica whose source item was deleted after its authorization was
// issued: the reservation the unused authorization holds in the target is freed (it would keep
// the id taken until it expires) and the replica fails with SourceGone.
func (e *Engine) abandonReservation(ctx context.Context, r *Replica, target Resource) error {
	if _, err := target.GetModel(ctx, r.Kind, r.TargetID); classOf(err) == ClassNotFound {
		// Nothing but the reservation is there: deleting the id frees it.
		if derr := target.DeleteModel(ctx, r.Kind, r.TargetID); derr != nil && classOf(derr) != ClassNotFound {
			e.log.WarnContext(ctx, "freeing the reservation of a copy whose source is gone failed; it lapses with the authorization",
				append(replicaAttrs(r), "err", derr.Error())...)
		}
	}
	return e.fail(ctx, r, CodeSourceGone, fmt.Sprintf("the source %s %q was deleted before the copy started; the target's reservation was freed", r.Kind, r.SourceID))
}

// saveAndFollow saves a replica whose copy just started and schedules its first check.
func (e *Engine) saveAndFollow(ctx context.Context, r *Replica) error {
	opURL := r.OperationURL
	if err := e.save(ctx, r); err != nil {
		return err
	}
	if r.Status == StatusCopying && r.OperationURL == opURL { // not replaced by a newer state
		e.scheduleCheck(ctx, r, 1)
	}
	return nil
}

// Check runs one check message: it looks at the copy of the message's attempt as a poll pass
// would (the operation, then the target model once it succeeded) and, while the copy runs,
// schedules the next check. Checks only make a finished copy seen sooner: every failure is
// logged and the message is done, since the poll timer still looks at every copy.
func (e *Engine) Check(ctx context.Context, msg *CopyMessage) error {
	r, err := e.store.Get(ctx, msg.Key())
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			e.log.WarnContext(ctx, "check of a copy could not read its replica; the poll timer will see it", "replica", msg.Key().String(), "err", err.Error())
		}
		return nil
	}
	if !msg.belongsTo(r) || r.Status != StatusCopying {
		return nil // finished, or a newer attempt: nothing to follow
	}
	if r.Due(e.clock()) {
		if err := e.pollCopy(ctx, r); err != nil {
			e.log.WarnContext(ctx, "check of a copy failed; the poll timer will see it", append(replicaAttrs(r), "err", err.Error())...)
			return nil
		}
	}
	if r.Status == StatusCopying {
		e.scheduleCheck(ctx, r, msg.Check+1)
	}
	return nil
}

// scheduleCheck schedules check n of r's copy: CheckDelay after now (or when the row is next
// due, if later), while the copy is younger than Policy.Follow. Best effort, like Check.
func (e *Engine) scheduleCheck(ctx context.Context, r *Replica, n int) {
	now := e.clock()
	elapsed := now.Sub(r.StartedAt)
	if e.policy.Follow < 0 || elapsed >= e.policy.Follow {
		return
	}
	after := CheckDelay(elapsed)
	if due := r.NextAttemptAt.Sub(now); due > after {
		after = due
	}
	m := &CopyMessage{Kind: r.Kind, SourceID: r.SourceID, Target: r.Target, TargetID: r.TargetID, Attempt: r.Attempt, Run: r.RunID(), Check: n}
	if err := e.queue.Schedule(ctx, m, after); err != nil {
		e.log.WarnContext(ctx, "scheduling a check of the copy failed; the poll timer will see it", append(replicaAttrs(r), "err", err.Error())...)
	}
}

// renew starts a new attempt at once with a fresh authorization (no backoff: nothing failed on
// the service's side), or fails the replica when its attempts are used up.
func (e *Engine) renew(ctx context.Context, r *Replica, code, msg string) error {
	if err := e.retryOrFail(ctx, r, code, msg, false); err != nil {
		return err
	}
	if r.Status != StatusPending {
		return e.save(ctx, r)
	}
	return e.authorize(ctx, r)
}
