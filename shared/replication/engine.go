package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"
)

// ErrSourceNotFound: the requested source model or classifier does not exist.
var ErrSourceNotFound = errors.New("source not found")

// Engine runs the replication steps. Every step is idempotent and safe to run concurrently on
// several instances: rows change only through ETag-checked writes, and a step that has side effects
// on the service first claims its row. The engine decides what happened; the replica's transition
// methods (machine.go) move it.
type Engine struct {
	source      Resource
	sourceName  string
	copySources map[string]Resource
	targets     map[string]Resource
	store       Store
	queue       Queue
	policy      Policy
	now         func() time.Time
	log         *slog.Logger
}

// Config is what an engine is built from.
type Config struct {
	Source     Resource
	SourceName string // how provenance tags name the source (its endpoint host)
	// CopySources optionally overrides, per target, the source client that copies into it (the
	// copy-degrade header is a per-target setting).
	CopySources map[string]Resource
	Targets     map[string]Resource
	Store       Store
	Queue       Queue
	Policy      Policy           // zero fields take DefaultPolicy's
	Now         func() time.Time // nil: time.Now
	Log         *slog.Logger     // nil: discard
}

// NewEngine validates the wiring and the policy once, naming everything that is missing.
func NewEngine(c Config) (*Engine, error) {
	var missing []string
	if c.Source == nil {
		missing = append(missing, "a source resource")
	}
	if c.SourceName == "" {
		missing = append(missing, "the source's name (for provenance tags)")
	}
	if len(c.Targets) == 0 {
		missing = append(missing, "at least one target")
	}
	for name, t := range c.Targets {
		if t == nil {
			missing = append(missing, "a resource for target "+name)
		}
	}
	for name := range c.CopySources {
		if _, ok := c.Targets[name]; !ok {
			missing = append(missing, "target "+name+" (it has a copy source but is not a target)")
		}
	}
	if c.Store == nil {
		missing = append(missing, "a replica store")
	}
	if c.Queue == nil {
		missing = append(missing, "a copy queue")
	}
	if len(missing) > 0 {
		sort.Strings(missing[1:])
		return nil, fmt.Errorf("replication engine: missing %s", strings.Join(missing, ", "))
	}
	p := c.Policy.withDefaults()
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("replication engine: %w", err)
	}
	e := &Engine{source: c.Source, sourceName: c.SourceName, copySources: c.CopySources, targets: c.Targets,
		store: c.Store, queue: c.Queue, policy: p, now: c.Now, log: c.Log}
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	return e, nil
}

func (e *Engine) clock() time.Time { return e.now().UTC() }

// Policy is the engine's policy, defaults filled in.
func (e *Engine) Policy() Policy { return e.policy }

// SourceName is how provenance tags name the source.
func (e *Engine) SourceName() string { return e.sourceName }

// SourceTag is the TagSource value of this engine's copies of kind/id.
func (e *Engine) SourceTag(kind Kind, id string) string { return SourceTag(e.sourceName, kind, id) }

func (e *Engine) copySource(target string) Resource {
	if s, ok := e.copySources[target]; ok {
		return s
	}
	return e.source
}

// TargetNames lists the configured targets, sorted.
func (e *Engine) TargetNames() []string {
	names := make([]string, 0, len(e.targets))
	for n := range e.targets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// HasTarget reports whether name is a configured target.
func (e *Engine) HasTarget(name string) bool { _, ok := e.targets[name]; return ok }

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
		if !e.HasTarget(t) {
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
	src, err := e.source.GetModel(ctx, req.Kind, req.SourceID)
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
	now := e.clock()
	r, err := e.store.Get(ctx, k)
	switch {
	case errors.Is(err, ErrNotFound):
		// The row is born claimed (NextAttemptAt a lease away): a poll pass meanwhile must not
		// authorize it too while this request does. Every way out of authorize sets the next
		// due time; if this instance dies first, the poller re-drives the row after the lease.
		r = &Replica{Key: k}
		if err := r.Start(src, targetID, now); err != nil {
			return nil, err
		}
		r.NextAttemptAt = e.claimEnd(ctx, now)
		if err := e.store.Create(ctx, r); err != nil {
			if errors.Is(err, ErrConflict) { // a concurrent request created it: its state is the answer
				return e.store.Get(ctx, k)
			}
			return nil, err
		}
	case err != nil:
		return nil, err
	case r.Status.InFlight():
		return r, nil
	case r.Status == StatusSucceeded && (sameVersion(r, src) || !e.policy.Replace):
		return r, nil // done, or stale and replacing is not allowed: reconciliation reports it
	default: // failed, or a stale copy to replace: a new run
		if err := r.Start(src, targetID, now); err != nil {
			return nil, err
		}
		r.NextAttemptAt = e.claimEnd(ctx, now) // claimed by this request, as a new row is
		if err := e.store.Update(ctx, r); err != nil {
			if errors.Is(err, ErrConflict) {
				return e.store.Get(ctx, k)
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

// authorize asks the target for a copy authorization and queues the copy. Service failures are
// recorded on the row; only a store failure is returned.
func (e *Engine) authorize(ctx context.Context, r *Replica) error {
	target, ok := e.targets[r.Target]
	if !ok {
		return e.fail(ctx, r, CodeUnknownTarget, fmt.Sprintf("target %q is no longer configured", r.Target))
	}
	tags := CopyTags(e.sourceName, r.Kind, r.SourceID, r.SourceCreated)
	var auth Authorization
	var err error
	for try := 0; ; try++ {
		auth, err = target.AuthorizeCopy(ctx, r.Kind, r.TargetID, tags)
		if err == nil || classOf(err) != ClassExists {
			break
		}
		if try == 1 {
			// Taken again right after it was freed: by this very call when its first answer was
			// lost and the client sent it again, or by another instance. Neither is final, so
			// the run tries again after its backoff and fails only when its attempts are used up.
			return e.retryOrFailSave(ctx, r, CodeTargetReserved, fmt.Sprintf(
				"the id %q stays taken in target %s after it was freed; if this persists, delete it there or request another targetId", r.TargetID, r.Target))
		}
		retry, rerr := e.resolveExisting(ctx, r, target)
		if rerr != nil {
			return e.recordFailure(ctx, r, "target "+r.Target, rerr)
		}
		if !retry {
			return e.save(ctx, r)
		}
	}
	if err != nil {
		return e.recordFailure(ctx, r, "target "+r.Target, err)
	}
	msg := &CopyMessage{Kind: r.Kind, SourceID: r.SourceID, Target: r.Target, TargetID: r.TargetID,
		Attempt: r.Attempt, Run: r.RunID(), ExpiresAt: auth.ExpiresAt, Authorization: auth.Body}
	if auth.TargetID != "" {
		msg.TargetID = auth.TargetID
	}
	if err := e.queue.SendCopy(ctx, msg); err != nil {
		// The reservation stays until the next pass re-authorizes (and frees it first).
		return e.wait(ctx, r, "the copy queue", &ServiceError{Class: ClassTransient, Code: CodeQueueUnavailable,
			Message: "sending the copy message failed: " + err.Error()})
	}
	if err := r.Authorize(auth.TargetID, auth.ExpiresAt, e.clock()); err != nil {
		return err
	}
	e.log.InfoContext(ctx, "authorized", replicaAttrs(r)...)
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
			e.succeed(ctx, r, "target already holds this version")
			return false, nil
		}
		if !MadeBy(m, r.Kind, e.SourceTag(r.Kind, r.SourceID), r.CopyExpires) {
			// Someone else's model (built there by hand, or another source's copy): never
			// touched, whatever DIMIRROR_REPLACE says.
			return false, e.failNow(ctx, r, CodeTargetExists, fmt.Sprintf(
				"target %s already holds a %s %q (created %s) that dimirror did not copy from source %s %q; dimirror never deletes what it did not make, so DIMIRROR_REPLACE cannot help: delete it there yourself, or request another targetId",
				r.Target, r.Kind, r.TargetID, m.Created.Format(time.RFC3339), r.Kind, r.SourceID))
		}
		if !e.policy.Replace {
			return false, e.failNow(ctx, r, CodeTargetExists, fmt.Sprintf(
				"target %s holds dimirror's copy of an older version of %s %q (created %s); set DIMIRROR_REPLACE=true (dimirror copy: --replace) to replace it, or request another targetId",
				r.Target, r.Kind, r.SourceID, m.Created.Format(time.RFC3339)))
		}
		if err := e.deleteOwnCopy(ctx, target, r); err != nil {
			return false, err
		}
		e.log.InfoContext(ctx, "replaced stale target copy", replicaAttrs(r)...)
		return true, nil
	case classOf(err) == ClassNotFound:
		// Reserved: by a copy still running into it, or by an authorization that was never used.
		op, ok, ferr := e.source.FindCopyOperation(ctx, r.Kind, target.Location(r.Kind, r.TargetID))
		if ferr != nil {
			return false, ferr
		}
		if ok {
			return false, e.adopt(r, op)
		}
		if err := target.DeleteModel(ctx, r.Kind, r.TargetID); err != nil && classOf(err) != ClassNotFound {
			return false, err
		}
		e.log.InfoContext(ctx, "freed target id reserved by an unused authorization", replicaAttrs(r)...)
		return true, nil
	default:
		return false, err
	}
}

// deleteOwnCopy deletes dimirror's older copy under r's target id, reading it once more right
// before the delete: between the decision and the delete someone may have put their own model
// there, and that one must survive.
func (e *Engine) deleteOwnCopy(ctx context.Context, target Resource, r *Replica) error {
	m, err := target.GetModel(ctx, r.Kind, r.TargetID)
	switch {
	case classOf(err) == ClassNotFound:
		return nil
	case err != nil:
		return err
	case !MadeBy(m, r.Kind, e.SourceTag(r.Kind, r.SourceID), r.CopyExpires):
		return &ServiceError{Class: ClassPermanent, Code: CodeTargetExists, Message: fmt.Sprintf(
			"target %s now holds a %s %q that dimirror did not make; it is left alone", r.Target, r.Kind, r.TargetID)}
	}
	if err := target.DeleteModel(ctx, r.Kind, r.TargetID); err != nil && classOf(err) != ClassNotFound {
		return err
	}
	return nil
}

func (e *Engine) adopt(r *Replica, op Operation) error {
	started := op.Created
	if started.IsZero() {
		started = e.clock()
	}
	return r.Copying(op.URL, started)
}

// retryOrFail ends the attempt with a cause a new authorization may fix: a new attempt after
// the run's backoff (or at once), or failed when the run's attempts are used up.
func (e *Engine) retryOrFail(ctx context.Context, r *Replica, code, msg string, backoff bool) error {
	now := e.clock()
	if r.AttemptsUsed() >= e.policy.MaxAttempts {
		if code == "" {
			code, msg = CodeAttemptsExhausted, "the copy did not succeed within the allowed attempts"
		}
		return e.failNow(ctx, r, code, fmt.Sprintf("%s (attempts used up: %d)", msg, r.AttemptsUsed()))
	}
	at := time.Time{}
	if backoff {
		at = now.Add(e.policy.Backoff(r.AttemptsUsed()))
	}
	if err := r.Retry(code, msg, at, true); err != nil {
		return err
	}
	e.log.InfoContext(ctx, "replica retries", replicaAttrs(r)...)
	return nil
}

// recordFailure records a service error on r by its class (what names the resource that
// answered, for the message of a replica that gives up) and saves r.
func (e *Engine) recordFailure(ctx context.Context, r *Replica, what string, err error) error {
	code, msg := codeAndMessage(err)
	var serr error
	switch classOf(err) {
	case ClassTransient:
		return e.wait(ctx, r, what, err)
	case ClassQuota:
		// Quota is handled one way, wherever it shows (authorizeCopy, copyTo or the copy
		// operation): the replica waits QuotaWait, spending no attempt, then tries with a new
		// authorization (the one it had is spent or useless); the sweep reports the full target
		// with its numbers.
		at := e.clock().Add(e.policy.QuotaWait)
		if r.Status == StatusPending {
			serr = r.Wait(code, msg, at, e.clock(), false)
		} else {
			serr = r.Retry(code, msg, at, false)
		}
		if serr == nil {
			e.log.WarnContext(ctx, "target at its model limit; replica waits", replicaAttrs(r)...)
		}
	case ClassAuthorization, ClassRetryable, ClassNotReady, ClassNotFound:
		serr = e.retryOrFail(ctx, r, code, msg, true)
	default:
		serr = e.failNow(ctx, r, code, msg)
	}
	if serr != nil {
		return serr
	}
	return e.save(ctx, r)
}

// wait defers r after a throttled or unreachable call (what names the resource), without using
// up an attempt, at most until the streak of such failures is Policy.GiveUpAfter long: then r
// fails with Unreachable, naming what did not answer. Saves r.
func (e *Engine) wait(ctx context.Context, r *Replica, what string, err error) error {
	until := e.clock().Add(e.transientWait(err))
	if r.Status == StatusAuthorized {
		until = r.AuthExpiresAt // the copy message carries the replica on; this is only the safety net
	}
	if _, werr := e.waitOrGiveUp(ctx, r, what, err, until); werr != nil {
		return werr
	}
	return e.save(ctx, r)
}

// waitOrGiveUp records a transient failure on r: a wait until until, or, once the streak of such
// failures is Policy.GiveUpAfter long, failed with Unreachable naming what did not answer. The
// caller saves r.
func (e *Engine) waitOrGiveUp(ctx context.Context, r *Replica, what string, err error, until time.Time) (gaveUp bool, _ error) {
	now := e.clock()
	code, msg := codeAndMessage(err)
	if d := r.TransientFor(now); d >= e.policy.GiveUpAfter {
		return true, e.failNow(ctx, r, CodeUnreachable, fmt.Sprintf(
			"%s did not answer usefully for %s (last: %s: %s); giving up until the next sweep or request", what, d.Round(time.Second), code, msg))
	}
	return false, r.Wait(code, msg, until, now, true)
}

// transientWait is how long to wait after a transient failure: the service's Retry-After when
// it gave one, else Policy.TransientDelay.
func (e *Engine) transientWait(err error) time.Duration {
	var se *ServiceError
	if errors.As(err, &se) && se.RetryAfter > 0 {
		return se.RetryAfter
	}
	return e.policy.TransientDelay
}

// failNow moves r to failed with the cause and logs it; the caller saves.
func (e *Engine) failNow(ctx context.Context, r *Replica, code, msg string) error {
	if err := r.Fail(code, msg, e.clock()); err != nil {
		return err
	}
	e.log.WarnContext(ctx, "replica failed", replicaAttrs(r)...)
	return nil
}

// fail moves r to failed and saves it.
func (e *Engine) fail(ctx context.Context, r *Replica, code, msg string) error {
	if err := e.failNow(ctx, r, code, msg); err != nil {
		return err
	}
	return e.save(ctx, r)
}

func (e *Engine) succeed(ctx context.Context, r *Replica, why string) {
	if err := r.Succeed(e.clock()); err != nil {
		e.log.ErrorContext(ctx, "replica could not move to succeeded", append(replicaAttrs(r), "err", err.Error())...)
		return
	}
	attrs := append(replicaAttrs(r), "why", why)
	if lag, ok := r.Lag(); ok {
		attrs = append(attrs, "lag", lag.String())
	}
	e.log.InfoContext(ctx, "replica succeeded", attrs...)
}

// save writes r. Losing an ETag race is not an error: the other instance's newer state stands,
// and r is refreshed to it.
func (e *Engine) save(ctx context.Context, r *Replica) error {
	r.UpdatedAt = e.clock()
	err := e.store.Update(ctx, r)
	if errors.Is(err, ErrConflict) {
		e.log.DebugContext(ctx, "replica changed concurrently; keeping the newer state", replicaAttrs(r)...)
		fresh, gerr := e.store.Get(ctx, r.Key)
		if gerr != nil {
			return gerr
		}
		*r = *fresh
		return nil
	}
	if errors.Is(err, ErrNotFound) {
		// An operator deleted the row mid-step: the replica is forgotten, as they asked.
		e.log.InfoContext(ctx, "replica row deleted while a step ran; dropping the step", replicaAttrs(r)...)
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
