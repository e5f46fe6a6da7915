package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"
)

// ErrSourceNotFound: the requested source model or classifier does not exist.
var ErrSourceNotFound = errors.New("source not found")

// Tags dimirror puts on every model it copies (the authorizeCopy request's tags become the target
// model's tags), so a target model can be traced back to its source version.
const (
	TagSource        = "dimirror-source"
	TagSourceCreated = "dimirror-source-created"
)

// Engine runs the replication steps. Every step is idempotent and safe to run concurrently on
// several instances: rows change only through ETag-checked writes, and a step that has side effects
// on the service first claims its row.
type Engine struct {
	Source     Resource
	SourceName string // how tags name the source (its endpoint host)
	// CopySources optionally overrides the source client used to copy into a target (the
	// copy-degrade header is a per-target setting).
	CopySources map[string]Resource
	Targets     map[string]Resource
	Store       Store
	Queue       Queue
	Policy      Policy
	Now         func() time.Time
	Log         *slog.Logger
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

func (e *Engine) log() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (e *Engine) policy() Policy { return e.Policy.withDefaults() }

func (e *Engine) copySource(target string) Resource {
	if s, ok := e.CopySources[target]; ok {
		return s
	}
	return e.Source
}

// TargetNames lists the configured targets, sorted.
func (e *Engine) TargetNames() []string {
	names := make([]string, 0, len(e.Targets))
	for n := range e.Targets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Request asks for one source model or classifier in some targets (all when Targets is empty).
type Request struct {
	Kind     Kind
	SourceID string
	TargetID string // "" = SourceID
	Targets  []string
}

// Validate checks a request against the configured targets; the error names the bad field.
func (e *Engine) Validate(req *Request) error {
	if req.Kind == "" {
		req.Kind = KindModel
	}
	if _, err := ParseKind(string(req.Kind)); err != nil {
		return &FieldError{Field: "kind", Msg: err.Error()}
	}
	if !ValidID(req.SourceID) {
		return &FieldError{Field: "sourceId", Msg: fmt.Sprintf("%q is not a valid id: it must match %s", req.SourceID, idPattern)}
	}
	if req.TargetID == "" {
		req.TargetID = req.SourceID
	}
	if !ValidID(req.TargetID) {
		return &FieldError{Field: "targetId", Msg: fmt.Sprintf("%q is not a valid id: it must match %s", req.TargetID, idPattern)}
	}
	if len(req.Targets) == 0 {
		req.Targets = e.TargetNames()
	}
	seen := map[string]bool{}
	for _, t := range req.Targets {
		if _, ok := e.Targets[t]; !ok {
			return &FieldError{Field: "targets", Msg: fmt.Sprintf("unknown target %q: configured targets are %v", t, e.TargetNames())}
		}
		if seen[t] {
			return &FieldError{Field: "targets", Msg: fmt.Sprintf("target %q is listed twice", t)}
		}
		seen[t] = true
	}
	return nil
}

// FieldError is a request field that failed validation.
type FieldError struct{ Field, Msg string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Request starts replication of one source into each requested target and returns the replicas'
// states. Repeating it while a replica is in flight or done changes nothing: the answer is the
// current state. A failed replica, or (with Policy.Replace) one holding an older version of the
// source, starts a new run.
func (e *Engine) Request(ctx context.Context, req Request) ([]Replica, error) {
	if err := e.Validate(&req); err != nil {
		return nil, err
	}
	src, err := e.Source.GetModel(ctx, req.Kind, req.SourceID)
	if err != nil {
		if classOf(err) == ClassNotFound {
			return nil, fmt.Errorf("%w: %s %q does not exist in the source resource", ErrSourceNotFound, req.Kind, req.SourceID)
		}
		return nil, fmt.Errorf("read source %s %q: %w", req.Kind, req.SourceID, err)
	}
	out := make([]Replica, 0, len(req.Targets))
	for _, t := range req.Targets {
		r, err := e.requestOne(ctx, Key{Kind: req.Kind, SourceID: req.SourceID, Target: t}, req.TargetID, src)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, nil
}

func (e *Engine) requestOne(ctx context.Context, k Key, targetID string, src Model) (*Replica, error) {
	now := e.now()
	r, err := e.Store.Get(ctx, k)
	switch {
	case errors.Is(err, ErrNotFound):
		// The row is born claimed (NextAttemptAt a lease away): a poll pass meanwhile must not
		// authorize it too while this request does. Every way out of authorize sets the next
		// due time; if this instance dies first, the poller re-drives the row after the lease.
		r = &Replica{Key: k, TargetID: targetID, Status: StatusPending, Attempt: 1, FirstAttempt: 1,
			SourceCreated: src.Created, SourceExpires: src.Expires, RequestedAt: now, UpdatedAt: now,
			NextAttemptAt: e.claimEnd(ctx, now)}
		if err := e.Store.Create(ctx, r); err != nil {
			if errors.Is(err, ErrConflict) { // a concurrent request created it: its state is the answer
				return e.Store.Get(ctx, k)
			}
			return nil, err
		}
	case err != nil:
		return nil, err
	case r.Status.InFlight():
		return r, nil
	case r.Status == StatusSucceeded && (sameVersion(r, src) || !e.policy().Replace):
		return r, nil // done, or stale and replacing is not allowed: reconciliation reports it
	default: // failed, or a stale copy to replace: a new run
		r.restart(src, targetID, now)
		r.NextAttemptAt = e.claimEnd(ctx, now) // claimed by this request, as a new row is
		if err := e.Store.Update(ctx, r); err != nil {
			if errors.Is(err, ErrConflict) {
				return e.Store.Get(ctx, k)
			}
			return nil, err
		}
	}
	ctx, cancel := e.withinClaim(ctx, r)
	defer cancel()
	if err := e.authorize(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Replica) restart(src Model, targetID string, now time.Time) {
	r.Attempt++
	r.FirstAttempt = r.Attempt
	r.Status = StatusPending
	r.TargetID = targetID
	r.SourceCreated, r.SourceExpires = src.Created, src.Expires
	r.OperationURL, r.Percent = "", 0
	r.RequestedAt = now
	r.AuthorizedAt, r.AuthExpiresAt, r.StartedAt, r.CompletedAt, r.NextAttemptAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	r.clearError()
}

// sameVersion reports whether a replica was made from this version of the source.
func sameVersion(r *Replica, src Model) bool {
	if !r.SourceExpires.IsZero() && !src.Expires.IsZero() {
		return r.SourceExpires.Equal(src.Expires) && r.SourceCreated.Equal(src.Created)
	}
	return r.SourceCreated.Equal(src.Created)
}

// holdsSource reports whether a target model is a copy of the source version r was made from.
// Copies keep the source's expirationDateTime (every api-version) and dimirror's tags; through
// 2023-07-31 they also keep its createdDateTime.
func holdsSource(r *Replica, m Model) bool {
	if v, ok := m.Tags[TagSourceCreated]; ok {
		return v == r.SourceCreated.UTC().Format(time.RFC3339)
	}
	if !r.SourceExpires.IsZero() && !m.Expires.IsZero() {
		return r.SourceExpires.Equal(m.Expires)
	}
	return r.SourceCreated.Equal(m.Created)
}

func (e *Engine) tags(r *Replica) map[string]string {
	return map[string]string{
		TagSource:        fmt.Sprintf("%s/%s/%s", e.SourceName, r.Kind, r.SourceID),
		TagSourceCreated: r.SourceCreated.UTC().Format(time.RFC3339),
	}
}

// authorize asks the target for a copy authorization and queues the copy. Service failures are
// recorded on the row; only a store failure is returned.
func (e *Engine) authorize(ctx context.Context, r *Replica) error {
	target, ok := e.Targets[r.Target]
	if !ok {
		return e.fail(ctx, r, "UnknownTarget", fmt.Sprintf("target %q is no longer configured", r.Target))
	}
	var auth Authorization
	var err error
	for try := 0; ; try++ {
		auth, err = target.AuthorizeCopy(ctx, r.Kind, r.TargetID, e.tags(r))
		if err == nil || classOf(err) != ClassExists {
			break
		}
		if try == 1 {
			// Taken again right after it was freed: by this very call when its first answer was
			// lost and the client sent it again, or by another instance. Neither is final, so
			// the run tries again after its backoff and fails only when its attempts are used up.
			r.setError("TargetReserved", fmt.Sprintf(
				"the id %q stays taken in target %s after it was freed; if this persists, delete it there or request another targetId", r.TargetID, r.Target))
			e.retryLater(r)
			return e.save(ctx, r)
		}
		retry, rerr := e.resolveExisting(ctx, r, target)
		if rerr != nil {
			return e.recordFailure(ctx, r, rerr)
		}
		if !retry {
			return e.save(ctx, r)
		}
	}
	if err != nil {
		return e.recordFailure(ctx, r, err)
	}
	if auth.TargetID != "" { // v2.1 targets pick the id themselves
		r.TargetID = auth.TargetID
	}
	msg := &CopyMessage{Kind: r.Kind, SourceID: r.SourceID, Target: r.Target, TargetID: r.TargetID,
		Attempt: r.Attempt, ExpiresAt: auth.ExpiresAt, Authorization: auth.Body}
	if err := e.Queue.SendCopy(ctx, msg); err != nil {
		// The reservation stays until the next pass re-authorizes (and frees it first).
		r.setError("QueueUnavailable", "sending the copy message failed: "+err.Error())
		r.NextAttemptAt = e.now().Add(e.policy().TransientDelay)
		return e.save(ctx, r)
	}
	now := e.now()
	r.Status = StatusAuthorized
	r.AuthorizedAt, r.AuthExpiresAt = now, auth.ExpiresAt
	// Due again when the authorization expires: if no copy started by then, the message was lost.
	r.NextAttemptAt = auth.ExpiresAt
	r.clearError()
	e.log().InfoContext(ctx, "authorized", replicaAttrs(r)...)
	return e.save(ctx, r)
}

// resolveExisting handles a 409 on authorizeCopy: the target id holds a model, or is reserved by
// an authorization no copy consumed. It settles r (succeeded, copying, failed) and returns false,
// or frees the id and returns true so the caller authorizes again.
func (e *Engine) resolveExisting(ctx context.Context, r *Replica, target Resource) (retry bool, err error) {
	m, err := target.GetModel(ctx, r.Kind, r.TargetID)
	switch {
	case err == nil:
		if holdsSource(r, m) {
			e.succeed(r, "target already holds this version")
			return false, nil
		}
		if !e.policy().Replace {
			r.Status = StatusFailed
			r.CompletedAt = e.now()
			r.setError("TargetExists", fmt.Sprintf(
				"target %s already holds a different %s %q (created %s); set DIMIRROR_REPLACE=true to replace it, or request another targetId",
				r.Target, r.Kind, r.TargetID, m.Created.Format(time.RFC3339)))
			return false, nil
		}
		if err := target.DeleteModel(ctx, r.Kind, r.TargetID); err != nil && classOf(err) != ClassNotFound {
			return false, err
		}
		e.log().InfoContext(ctx, "replaced stale target copy", replicaAttrs(r)...)
		return true, nil
	case classOf(err) == ClassNotFound:
		// Reserved: by a copy still running into it, or by an authorization that was never used.
		op, ok, ferr := e.Source.FindCopyOperation(ctx, r.Kind, target.Location(r.Kind, r.TargetID))
		if ferr != nil {
			return false, ferr
		}
		if ok {
			e.adopt(r, op)
			return false, nil
		}
		if err := target.DeleteModel(ctx, r.Kind, r.TargetID); err != nil && classOf(err) != ClassNotFound {
			return false, err
		}
		e.log().InfoContext(ctx, "freed target id reserved by an unused authorization", replicaAttrs(r)...)
		return true, nil
	default:
		return false, err
	}
}

// Handle runs one message of the copy queue: a check of a started copy (Check) or a copy
// message (StartCopy).
func (e *Engine) Handle(ctx context.Context, msg *CopyMessage, deliveryCount int) error {
	if msg.Check > 0 {
		return e.Check(ctx, msg)
	}
	return e.StartCopy(ctx, msg, deliveryCount)
}

// StartCopy runs one copy message: copyTo on the source with the message's authorization. It
// returns an error only for a transient failure, so the message is redelivered; everything else is
// recorded on the row and the message is done.
func (e *Engine) StartCopy(ctx context.Context, msg *CopyMessage, deliveryCount int) error {
	waiting := false
	for conflicts := 0; conflicts < 3; {
		r, err := e.Store.Get(ctx, msg.Key())
		if errors.Is(err, ErrNotFound) {
			e.log().WarnContext(ctx, "copy message for an unknown replica dropped", "replica", msg.Key().String(), "attempt", msg.Attempt)
			return nil
		}
		if err != nil {
			return err
		}
		if r.Attempt != msg.Attempt || (r.Status != StatusPending && r.Status != StatusAuthorized) {
			e.log().DebugContext(ctx, "copy message already handled", append(replicaAttrs(r), "messageAttempt", msg.Attempt)...)
			return nil
		}
		now := e.now()
		if claimedByAnother(r, now) {
			// Another delivery of this message (its lock was lost while it worked) is starting
			// the copy: a second copyTo would spend the authorization twice. Wait for it, holding
			// this delivery: it either moves the row on (this message is then done), or gives the
			// claim back after a transient failure, or dies and its lease runs out; in the last
			// two cases this delivery, which still has the message, carries on.
			if !waiting {
				waiting = true
				e.log().InfoContext(ctx, "copy message is being handled by another delivery; waiting for it", append(replicaAttrs(r), "messageAttempt", msg.Attempt)...)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(claimPoll):
			}
			continue
		}
		// Claim the row so a concurrent delivery of the same message waits.
		prev := r.NextAttemptAt
		r.NextAttemptAt = e.claimEnd(ctx, now)
		if err := e.Store.Update(ctx, r); errors.Is(err, ErrConflict) {
			conflicts++
			continue
		} else if err != nil {
			return err
		}
		ctx, cancel := e.withinClaim(ctx, r)
		defer cancel()
		return e.startCopy(ctx, r, msg, deliveryCount, prev)
	}
	return fmt.Errorf("replica %s keeps changing under the copy starter", msg.Key())
}

// claimPoll is how often a delivery waiting on another one's claim reads the row again.
var claimPoll = time.Second

// releaseTimeout bounds the write that gives a claim back.
const releaseTimeout = 10 * time.Second

// claimedByAnother reports whether a copy starter holds r: an authorized row is due again at its
// authorization's expiry, unless a claim moved that to a lease's end.
func claimedByAnother(r *Replica, now time.Time) bool {
	return r.Status == StatusAuthorized && r.NextAttemptAt.After(now) && !r.NextAttemptAt.Equal(r.AuthExpiresAt)
}

// claimEnd is when a claim taken now by a step running under ctx lapses: a lease from now, or
// sooner when ctx ends sooner, since the step can do nothing after that and holding the row
// longer would only keep the next delivery or pass waiting.
func (e *Engine) claimEnd(ctx context.Context, now time.Time) time.Time {
	d := e.policy().Lease
	if deadline, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(deadline))
	}
	return now.Add(max(d, 0))
}

// withinClaim bounds the step that holds the claim on r to the claim's end: past it another
// delivery or poll pass may take the row, and two steps must never both spend an authorization.
func (e *Engine) withinClaim(ctx context.Context, r *Replica) (context.Context, context.CancelFunc) {
	// A timeout rather than a deadline: the claim is on the engine's clock, ctx on the wall clock.
	return context.WithTimeout(ctx, r.NextAttemptAt.Sub(e.now()))
}

// release gives a claim back after a transient failure (prev is the row's due time before it),
// so the message's redelivery starts the copy at once, and returns err to have it redelivered.
// It writes even when the step's context has ended (that is often why the step failed).
func (e *Engine) release(ctx context.Context, r *Replica, prev time.Time, err error) error {
	r.NextAttemptAt = prev
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if serr := e.save(sctx, r); serr != nil {
		e.log().WarnContext(ctx, "releasing the claim on a replica failed; the poller takes it over after the lease",
			append(replicaAttrs(r), "err", serr.Error())...)
	}
	return err
}

func (e *Engine) startCopy(ctx context.Context, r *Replica, msg *CopyMessage, deliveryCount int, prev time.Time) error {
	p := e.policy()
	now := e.now()
	if !msg.ExpiresAt.IsZero() && now.After(msg.ExpiresAt.Add(-p.AuthMargin)) {
		r.setError("AuthorizationExpired", "the copy authorization expired before the copy started; authorizing again")
		return e.renew(ctx, r)
	}
	target := e.Targets[r.Target]
	if deliveryCount > 1 && target != nil {
		// A redelivery may follow a crash after copyTo was accepted: find that copy again rather
		// than spend the authorization twice.
		op, ok, err := e.Source.FindCopyOperation(ctx, r.Kind, target.Location(r.Kind, r.TargetID))
		if err != nil {
			return e.release(ctx, r, prev, err)
		}
		if ok {
			e.adopt(r, op)
			return e.saveAndFollow(ctx, r)
		}
	}
	opURL, err := e.copySource(r.Target).CopyTo(ctx, r.Kind, r.SourceID, msg.Authorization)
	if err != nil {
		switch classOf(err) {
		case ClassTransient:
			return e.release(ctx, r, prev, err)
		case ClassAuthorization:
			code, m := codeAndMessage(err)
			r.setError(code, m)
			return e.renew(ctx, r)
		default:
			return e.recordFailure(ctx, r, err)
		}
	}
	r.Status = StatusCopying
	r.OperationURL = opURL
	r.StartedAt = e.now()
	r.NextAttemptAt = time.Time{}
	r.clearError()
	e.log().InfoContext(ctx, "copy started", append(replicaAttrs(r), "authorizedFor", r.StartedAt.Sub(r.AuthorizedAt).String())...)
	return e.saveAndFollow(ctx, r)
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
	r, err := e.Store.Get(ctx, msg.Key())
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			e.log().WarnContext(ctx, "check of a copy could not read its replica; the poll timer will see it", "replica", msg.Key().String(), "err", err.Error())
		}
		return nil
	}
	if r.Attempt != msg.Attempt || r.Status != StatusCopying {
		return nil // finished, or a newer attempt: nothing to follow
	}
	if r.Due(e.now()) {
		if err := e.pollCopy(ctx, r); err != nil {
			e.log().WarnContext(ctx, "check of a copy failed; the poll timer will see it", append(replicaAttrs(r), "err", err.Error())...)
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
	p := e.policy()
	now := e.now()
	elapsed := now.Sub(r.StartedAt)
	if p.Follow < 0 || elapsed >= p.Follow {
		return
	}
	after := CheckDelay(elapsed)
	if due := r.NextAttemptAt.Sub(now); due > after {
		after = due
	}
	m := &CopyMessage{Kind: r.Kind, SourceID: r.SourceID, Target: r.Target, TargetID: r.TargetID, Attempt: r.Attempt, Check: n}
	if err := e.Queue.ScheduleCheck(ctx, m, after); err != nil {
		e.log().WarnContext(ctx, "scheduling a check of the copy failed; the poll timer will see it", append(replicaAttrs(r), "err", err.Error())...)
	}
}

func (e *Engine) adopt(r *Replica, op Operation) {
	r.Status = StatusCopying
	r.OperationURL = op.URL
	if r.StartedAt.IsZero() {
		r.StartedAt = op.Created
	}
	r.NextAttemptAt = time.Time{}
	r.clearError()
}

// renew starts a new attempt at once with a fresh authorization (no backoff: nothing failed on
// the service's side).
func (e *Engine) renew(ctx context.Context, r *Replica) error {
	if !e.nextAttempt(r) {
		return e.save(ctx, r)
	}
	r.NextAttemptAt = time.Time{}
	return e.authorize(ctx, r)
}

// nextAttempt moves r to a new pending attempt, or to failed when the run's attempts are used up.
func (e *Engine) nextAttempt(r *Replica) bool {
	if r.Attempt-r.FirstAttempt+1 >= e.policy().MaxAttempts {
		r.Status = StatusFailed
		r.CompletedAt = e.now()
		if r.ErrorCode == "" {
			r.setError("AttemptsExhausted", "the copy did not succeed within the allowed attempts")
		}
		e.log().Warn("replica failed: attempts exhausted", replicaAttrs(r)...)
		return false
	}
	r.Attempt++
	r.Status = StatusPending
	r.OperationURL, r.Percent = "", 0
	r.AuthorizedAt, r.AuthExpiresAt, r.StartedAt = time.Time{}, time.Time{}, time.Time{}
	return true
}

// retryLater schedules a new attempt after the run's backoff.
func (e *Engine) retryLater(r *Replica) {
	if e.nextAttempt(r) {
		r.NextAttemptAt = e.now().Add(e.policy().Backoff(r.Attempt - r.FirstAttempt))
	}
}

// recordFailure records a service error on r by its class and saves r.
func (e *Engine) recordFailure(ctx context.Context, r *Replica, err error) error {
	code, msg := codeAndMessage(err)
	r.setError(code, msg)
	p := e.policy()
	switch classOf(err) {
	case ClassTransient:
		r.NextAttemptAt = e.now().Add(e.transientWait(err))
	case ClassQuota:
		r.Status = StatusPending
		r.NextAttemptAt = e.now().Add(p.QuotaWait)
		e.log().WarnContext(ctx, "target at its model limit; replica waits", replicaAttrs(r)...)
	case ClassAuthorization, ClassRetryable, ClassNotReady, ClassNotFound:
		e.retryLater(r)
	default:
		r.Status = StatusFailed
		r.CompletedAt = e.now()
		e.log().WarnContext(ctx, "replica failed", replicaAttrs(r)...)
	}
	return e.save(ctx, r)
}

// transientWait is how long to wait after a transient failure: the service's Retry-After when
// it gave one, else Policy.TransientDelay.
func (e *Engine) transientWait(err error) time.Duration {
	var se *ServiceError
	if errors.As(err, &se) && se.RetryAfter > 0 {
		return se.RetryAfter
	}
	return e.policy().TransientDelay
}

func (e *Engine) fail(ctx context.Context, r *Replica, code, msg string) error {
	r.Status = StatusFailed
	r.CompletedAt = e.now()
	r.setError(code, msg)
	e.log().WarnContext(ctx, "replica failed", replicaAttrs(r)...)
	return e.save(ctx, r)
}

func (e *Engine) succeed(r *Replica, why string) {
	r.Status = StatusSucceeded
	r.Percent = 100
	r.CompletedAt = e.now()
	r.NextAttemptAt = time.Time{}
	r.clearError()
	attrs := append(replicaAttrs(r), "why", why)
	if !r.SourceCreated.IsZero() {
		attrs = append(attrs, "lag", r.CompletedAt.Sub(r.RequestedAt).String())
	}
	e.log().Info("replica succeeded", attrs...)
}

// save writes r. Losing an ETag race is not an error: the other instance's newer state stands,
// and r is refreshed to it.
func (e *Engine) save(ctx context.Context, r *Replica) error {
	r.UpdatedAt = e.now()
	err := e.Store.Update(ctx, r)
	if errors.Is(err, ErrConflict) {
		e.log().DebugContext(ctx, "replica changed concurrently; keeping the newer state", replicaAttrs(r)...)
		fresh, gerr := e.Store.Get(ctx, r.Key)
		if gerr != nil {
			return gerr
		}
		*r = *fresh
		return nil
	}
	return err
}

func replicaAttrs(r *Replica) []any {
	attrs := []any{"kind", string(r.Kind), "sourceId", r.SourceID, "target", r.Target, "targetId", r.TargetID,
		"status", string(r.Status), "attempt", r.Attempt}
	if r.OperationURL != "" {
		attrs = append(attrs, "operation", OperationID(r.OperationURL))
	}
	if r.ErrorCode != "" {
		attrs = append(attrs, "errorCode", r.ErrorCode, "error", r.ErrorMessage)
	}
	return attrs
}
