package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// ErrSourceNotFound: the requested source model or classifier does not exist.
var ErrSourceNotFound = errors.New("source not found")

// Engine runs the replication steps. Every step is idempotent and safe to run concurrently on
// several instances: rows change only through ETag-checked writes, and a step that has side effects
// on the service first claims its row. The engine decides what happened; the replica's transition
// methods (machine.go) move it.
//
// Resources are known by name and rules say what is copied where: a copy from S into T runs
// copyTo, the operation reads and the search for a lost copy on S, and authorizeCopy and the
// verification on T. The legacy wiring (one Source, Targets) is the rules source>target for each
// target, with the source under DefaultSource's name.
type Engine struct {
	resources     map[string]Resource
	hosts         map[string]string
	copyVia       map[string]map[string]Resource // source → target → client that copies (degrade header)
	rules         map[string][]string            // source → its targets, sorted
	sources       []string                       // sorted
	defaultSource string
	targets       map[string]Resource // every resource some rule copies into
	store         Store
	queue         Queue
	policy        Policy
	selects       func(rule Rule, kind Kind, id string) bool
	now           func() time.Time
	log           *slog.Logger
}

// Rule copies what From holds (its originals and the copies it received) into To.
type Rule struct{ From, To string }

func (r Rule) String() string { return r.From + ">" + r.To }

// ResourceConfig is one resource of the rules wiring.
type ResourceConfig struct {
	Resource Resource
	// Host is how provenance tags name the resource (its endpoint host); an item copied from it
	// carries TagSource "<Host>/<kind>/<id>" for good.
	Host string
	// Degrade says copies into this resource need the copy-degrade header on the source's copyTo
	// (copying from a customer-managed-key resource into one without).
	Degrade bool
	// Degraded is this resource's client that sends the copy-degrade header; required when it is
	// the source of a rule into a Degrade resource.
	Degraded Resource
}

// Config is what an engine is built from: either Resources and Rules, or the legacy Source,
// SourceName, CopySources and Targets.
type Config struct {
	Resources map[string]ResourceConfig
	Rules     []Rule
	// DefaultSource is the source of rows written before rules existed (their Source column is
	// empty). Legacy wiring: the source's name (default "source"). Rules: default the only
	// source, or the first rule's.
	DefaultSource string

	Source     Resource
	SourceName string // how provenance tags name the source (its endpoint host)
	// CopySources optionally overrides, per target, the source client that copies into it (the
	// copy-degrade header is a per-target setting).
	CopySources map[string]Resource
	Targets     map[string]Resource

	// Selects says whether rule copies kind/id (the settings' include, exclude and kinds filters);
	// nil: every item. The onward copies of a verified replica follow only the rules that select
	// the item, as the watch and the sweep do.
	Selects func(rule Rule, kind Kind, id string) bool

	Store  Store
	Queue  Queue
	Policy Policy           // zero fields take DefaultPolicy's
	Now    func() time.Time // nil: time.Now
	Log    *slog.Logger     // nil: discard
}

// legacySource is the name of the legacy wiring's source when Config.DefaultSource is empty.
const legacySource = "source"

// NewEngine validates the wiring and the policy once, naming everything that is missing.
func NewEngine(c Config) (*Engine, error) {
	e := &Engine{resources: map[string]Resource{}, hosts: map[string]string{}, copyVia: map[string]map[string]Resource{},
		rules: map[string][]string{}, targets: map[string]Resource{}, store: c.Store, queue: c.Queue, selects: c.Selects, now: c.Now, log: c.Log}
	var missing []string
	if c.Resources != nil || c.Rules != nil {
		missing = e.wireRules(c)
	} else {
		missing = e.wireLegacy(c)
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
	for s := range e.rules {
		sort.Strings(e.rules[s])
		e.sources = append(e.sources, s)
	}
	sort.Strings(e.sources)
	p := c.Policy.withDefaults()
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("replication engine: %w", err)
	}
	e.policy = p
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	return e, nil
}

func (e *Engine) wireLegacy(c Config) []string {
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
	e.defaultSource = c.DefaultSource
	if e.defaultSource == "" {
		e.defaultSource = legacySource
	}
	e.resources[e.defaultSource], e.hosts[e.defaultSource] = c.Source, c.SourceName
	for name, t := range c.Targets {
		switch {
		case t == nil:
			missing = append(missing, "a resource for target "+name)
		case name == e.defaultSource:
			missing = append(missing, "a target name other than the source's ("+name+")")
		}
		e.resources[name], e.targets[name] = t, t
		e.rules[e.defaultSource] = append(e.rules[e.defaultSource], name)
	}
	for name, via := range c.CopySources {
		if _, ok := c.Targets[name]; !ok {
			missing = append(missing, "target "+name+" (it has a copy source but is not a target)")
			continue
		}
		e.via(e.defaultSource)[name] = via
	}
	return missing
}

func (e *Engine) wireRules(c Config) []string {
	var missing []string
	if len(c.Rules) == 0 {
		missing = append(missing, "at least one rule")
	}
	for name, rc := range c.Resources {
		if rc.Resource == nil {
			missing = append(missing, "a client for resource "+name)
		}
		if rc.Host == "" {
			missing = append(missing, "the host of resource "+name+" (for provenance tags)")
		}
		e.resources[name], e.hosts[name] = rc.Resource, rc.Host
	}
	seen := map[Rule]bool{}
	for _, r := range c.Rules {
		from, okF := c.Resources[r.From]
		to, okT := c.Resources[r.To]
		switch {
		case !okF || !okT:
			missing = append(missing, "the resources of rule "+r.String())
			continue
		case r.From == r.To:
			missing = append(missing, "a rule between two resources (not "+r.String()+")")
			continue
		case seen[r]:
			continue
		}
		seen[r] = true
		e.rules[r.From] = append(e.rules[r.From], r.To)
		e.targets[r.To] = to.Resource
		if to.Degrade {
			if from.Degraded == nil {
				missing = append(missing, "the copy-degrade client of "+r.From+" (rule "+r.String()+")")
				continue
			}
			e.via(r.From)[r.To] = from.Degraded
		}
	}
	e.defaultSource = c.DefaultSource
	if e.defaultSource == "" && len(c.Rules) > 0 {
		e.defaultSource = c.Rules[0].From
		if _, ok := c.Resources[legacySource]; ok {
			e.defaultSource = legacySource
		}
	}
	if _, ok := c.Resources[e.defaultSource]; !ok && e.defaultSource != "" {
		missing = append(missing, "the default source "+e.defaultSource+" among the resources")
	}
	return missing
}

func (e *Engine) via(source string) map[string]Resource {
	if e.copyVia[source] == nil {
		e.copyVia[source] = map[string]Resource{}
	}
	return e.copyVia[source]
}

func (e *Engine) clock() time.Time { return e.now().UTC() }

// Policy is the engine's policy, defaults filled in.
func (e *Engine) Policy() Policy { return e.policy }

// SourceName is how provenance tags name the default source.
func (e *Engine) SourceName() string { return e.hosts[e.defaultSource] }

// SourceTag is the TagSource value of the default source's original kind/id.
func (e *Engine) SourceTag(kind Kind, id string) string { return SourceTag(e.SourceName(), kind, id) }

// DefaultSource is the source of rows written before rules (their Source column is empty).
func (e *Engine) DefaultSource() string { return e.defaultSource }

// Host is how provenance tags name resource name ("" when unknown: a legacy target).
func (e *Engine) Host(name string) string { return e.hosts[name] }

// SourceNames lists the resources some rule copies from, sorted.
func (e *Engine) SourceNames() []string { return slices.Clone(e.sources) }

// Rules lists the rules, sorted by source, then target.
func (e *Engine) Rules() []Rule {
	var out []Rule
	for _, s := range e.sources {
		for _, t := range e.rules[s] {
			out = append(out, Rule{From: s, To: t})
		}
	}
	return out
}

// RuleTargets lists the targets of source's rules, sorted.
func (e *Engine) RuleTargets(source string) []string { return slices.Clone(e.rules[source]) }

// sourceOf is the name of the resource r is copied from.
func (e *Engine) sourceOf(r *Replica) string {
	if r.Source != "" {
		return r.Source
	}
	return e.defaultSource
}

// sourceRes is the resource r is copied from; nil when the settings no longer name it.
func (e *Engine) sourceRes(r *Replica) Resource { return e.resources[e.sourceOf(r)] }

// originOf is the TagSource value of the item r is a copy of.
func (e *Engine) originOf(r *Replica) string {
	if r.Origin != "" {
		return r.Origin
	}
	return SourceTag(e.hosts[e.defaultSource], r.Kind, r.SourceID)
}

// copySource is the client that runs r's copyTo: the source's, or its copy-degrade variant when
// the target needs it.
func (e *Engine) copySource(r *Replica) Resource {
	if s, ok := e.copyVia[e.sourceOf(r)][r.Target]; ok {
		return s
	}
	return e.sourceRes(r)
}

// TargetNames lists every resource some rule copies into, sorted.
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

// Request asks for one model or classifier of a source resource in some targets.
type Request struct {
	// Source names the resource the item is in; optional when only one resource is a source.
	Source   string
	Kind     Kind
	SourceID string
	TargetID string // "" = SourceID
	// Targets defaults to the targets of Source's rules; each must be one of them.
	Targets []string
}

// Validate checks a request against the rules; the error names the bad field.
func (e *Engine) Validate(req *Request) error {
	if req.Kind == "" {
		req.Kind = KindModel
	}
	if _, err := ParseKind(string(req.Kind)); err != nil {
		return &FieldError{Field: "kind", Msg: err.Error()}
	}
	if req.Source == "" {
		if len(e.sources) != 1 {
			return &FieldError{Field: "source", Msg: fmt.Sprintf("required: several resources are sources (%s); name the one that holds the item", strings.Join(e.sources, ", "))}
		}
		req.Source = e.sources[0]
	}
	if _, ok := e.rules[req.Source]; !ok {
		return &FieldError{Field: "source", Msg: fmt.Sprintf("%q is not the source of any rule: sources are %s", req.Source, strings.Join(e.sources, ", "))}
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
		req.Targets = e.RuleTargets(req.Source)
	}
	seen := map[string]bool{}
	for _, t := range req.Targets {
		if !e.HasTarget(t) {
			return &FieldError{Field: "targets", Msg: fmt.Sprintf("unknown target %q: configured targets are %v", t, e.TargetNames())}
		}
		if !slices.Contains(e.rules[req.Source], t) {
			return &FieldError{Field: "targets", Msg: fmt.Sprintf("no rule copies %s into %q: %s's rules copy into %v", req.Source, t, req.Source, e.rules[req.Source])}
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
//
// Loop-free: the copy carries its origin's tags (a copy of a copy keeps them), a target that is
// the item's origin is skipped (or, named explicitly, refused), and a target that holds a model
// of another origin under the id is never overwritten (TargetExists).
func (e *Engine) Request(ctx context.Context, req Request) ([]Replica, error) {
	return e.request(ctx, req, len(req.Targets) > 0)
}

// request is Request; explicit says the caller named the targets, so a target that is the item's
// origin is refused instead of skipped.
func (e *Engine) request(ctx context.Context, req Request, explicit bool) ([]Replica, error) {
	if err := e.Validate(&req); err != nil {
		return nil, err
	}
	src, err := e.resources[req.Source].GetModel(ctx, req.Kind, req.SourceID)
	if err != nil {
		if classOf(err) == ClassNotFound {
			return nil, fmt.Errorf("%w: %s %q does not exist in source resource %s", ErrSourceNotFound, req.Kind, req.SourceID, req.Source)
		}
		return nil, fmt.Errorf("read %s %q in source %s: %w", req.Kind, req.SourceID, req.Source, err)
	}
	origin, err := e.Origin(ctx, req.Source, req.Kind, req.SourceID, src)
	if err != nil {
		return nil, err
	}
	// The replica records the origin version: its createdDateTime is what copies are tagged with
	// and compared by, wherever along a chain they were made.
	src.Created = origin.Created
	targets := make([]string, 0, len(req.Targets))
	for _, t := range req.Targets {
		if e.isOrigin(t, origin.Tag) {
			if explicit {
				return nil, &FieldError{Field: "targets", Msg: fmt.Sprintf("%s is the origin of %s %q (%s): a model is never copied into its origin", t, req.Kind, req.SourceID, origin.Tag)}
			}
			continue
		}
		targets = append(targets, t)
	}
	// Each target is its own resource with its own budget: authorizing them side by side makes
	// the caller wait for the slowest target, not for the sum of them.
	reps := make([]*Replica, len(targets))
	var g errgroup.Group
	for i, t := range targets {
		g.Go(func() error {
			r, err := e.requestOne(ctx, Key{Kind: req.Kind, SourceID: req.SourceID, Target: t}, req.TargetID, src, req.Source, origin.Tag)
			reps[i] = r
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make([]Replica, 0, len(reps))
	for _, r := range reps {
		out = append(out, *r)
	}
	return out, nil
}

// Origin says where an item of resource source was trained: a copy names its origin in
// dimirror's tags; a classifier (no tags) by the verified replica row that made it; anything else
// is an original of source.
type Origin struct {
	Tag     string    // TagSource value: "<host>/<kind>/<id>"
	Created time.Time // the origin's createdDateTime
	Copy    bool      // the item is a copy (of Tag)
}

// Origin reads the origin of m, item kind/id of resource source.
func (e *Engine) Origin(ctx context.Context, source string, kind Kind, id string, m Model) (Origin, error) {
	if o, ok := TaggedOrigin(m.Tags); ok {
		return o, nil
	}
	if kind == KindClassifier {
		row, err := e.store.Get(ctx, Key{Kind: kind, SourceID: id, Target: source})
		switch {
		case err == nil:
			if o, ok := e.RowOrigin(row, m.Expires); ok {
				return o, nil
			}
		case !errors.Is(err, ErrNotFound):
			return Origin{}, fmt.Errorf("read the replica row of %s %q in %s: %w", kind, id, source, err)
		}
	}
	return Origin{Tag: SourceTag(e.hosts[source], kind, id), Created: m.Created}, nil
}

// RowOrigin is the origin a verified replica row gives the copy it made in its target (the only
// record classifiers keep); ok is false when the row does not describe a copy expiring at expires.
func (e *Engine) RowOrigin(row *Replica, expires time.Time) (Origin, bool) {
	if row == nil || row.Status != StatusSucceeded || (row.TargetID != "" && row.TargetID != row.SourceID) {
		return Origin{}, false
	}
	exp := row.CopyExpires
	if exp.IsZero() {
		exp = row.SourceExpires
	}
	if !exp.IsZero() && !expires.IsZero() && !exp.Equal(expires) {
		return Origin{}, false
	}
	return Origin{Tag: e.originOf(row), Created: row.SourceCreated, Copy: true}, true
}

// RowOriginTag is the TagSource value of the item a replica row copies.
func (e *Engine) RowOriginTag(r *Replica) string { return e.originOf(r) }

// isOrigin reports whether resource name is where the item tagged origin was trained.
func (e *Engine) isOrigin(name, origin string) bool {
	h := e.hosts[name]
	return h != "" && OriginHost(origin) == h
}

// IsOrigin reports whether resource name is where the item tagged origin was trained.
func (e *Engine) IsOrigin(name, origin string) bool { return e.isOrigin(name, origin) }

func (e *Engine) requestOne(ctx context.Context, k Key, targetID string, src Model, source, origin string) (*Replica, error) {
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
		r.Source, r.Origin = source, origin
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
		return r, nil // another rule (or request) delivers this item into the target already
	case r.Status == StatusSucceeded && e.originOf(r) != origin:
		return r, nil // the target holds another origin's item under the id: a conflict, reported by reconciliation
	case r.Status == StatusSucceeded && (sameVersion(r, src) || !e.policy.Replace):
		return r, nil // done, or stale and replacing is not allowed: reconciliation reports it
	default: // failed, or a stale copy to replace: a new run
		if err := r.Start(src, targetID, now); err != nil {
			return nil, err
		}
		r.Source, r.Origin = source, origin
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
	if e.sourceRes(r) == nil {
		return e.fail(ctx, r, CodeUnknownSource, fmt.Sprintf("source %q is no longer configured", e.sourceOf(r)))
	}
	tags := OriginTags(e.originOf(r), r.SourceCreated)
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
			e.reserved(r)
			return e.retryOrFailSave(ctx, r, CodeTargetReserved, fmt.Sprintf(
				"the id %q stays taken in target %s after it was freed; if this persists, delete it there or request another targetId", r.TargetID, r.Target))
		}
		retry, rerr := e.resolveExisting(ctx, r, target)
		if rerr != nil {
			return e.recordFailure(ctx, r, "target "+r.Target, rerr)
		}
		if !retry {
			return e.saveAndForward(ctx, r)
		}
	}
	if err == nil || classOf(err) == ClassTransient { // a lost answer may have reserved it
		e.reserved(r)
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

// reserved notes that the run has (or may have) reserved r's target id itself (ReservedAt),
// saved with the step's outcome.
func (e *Engine) reserved(r *Replica) {
	if r.ReservedAt.IsZero() {
		r.ReservedAt = e.clock()
	}
}

// resolveExisting handles a 409 on authorizeCopy: the target id holds a model, or is reserved by
// an authorization no copy consumed. It settles r (succeeded, copying, failed) and returns false,
// or frees the id and returns true so the caller authorizes again.
func (e *Engine) resolveExisting(ctx context.Context, r *Replica, target Resource) (retry bool, err error) {
	m, err := target.GetModel(ctx, r.Kind, r.TargetID)
	switch {
	case err == nil:
		if holdsSource(r, e.originOf(r), m) {
			e.succeed(ctx, r, "target already holds this version")
			return false, nil
		}
		if !MadeBy(m, r.Kind, e.originOf(r), r.CopyExpires) {
			// A model of another origin (trained there, or a copy of another resource's model):
			// never touched, whatever DIMIRROR_REPLACE says.
			return false, e.failNow(ctx, r, CodeTargetExists, fmt.Sprintf(
				"target %s already holds a %s %q (created %s) of another origin (%s), not a copy of %s %q from %s; dimirror never overwrites a model of another origin, so DIMIRROR_REPLACE cannot help: rename or delete one of them, or request another targetId",
				r.Target, r.Kind, r.TargetID, m.Created.Format(time.RFC3339), originDescription(m, r.Target), r.Kind, r.SourceID, e.sourceOf(r)))
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
		// Once the run has reserved the id itself (ReservedAt), the reservation is its own and its
		// copies are known to the row. Before that it may be an earlier run's, whose copy may
		// still run: look for one through the whole list.
		if r.ReservedAt.IsZero() {
			op, ok, ferr := e.findCopy(ctx, r, time.Time{})
			if ferr != nil {
				return false, ferr
			}
			if ok {
				return false, e.adopt(r, op)
			}
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
	case !MadeBy(m, r.Kind, e.originOf(r), r.CopyExpires):
		return &ServiceError{Class: ClassPermanent, Code: CodeTargetExists, Message: fmt.Sprintf(
			"target %s now holds a %s %q of another origin (%s); it is left alone", r.Target, r.Kind, r.TargetID, originDescription(m, r.Target))}
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

// saveAndForward saves r and, when it is now succeeded, requests its onward copies.
func (e *Engine) saveAndForward(ctx context.Context, r *Replica) error {
	if err := e.save(ctx, r); err != nil {
		return err
	}
	if r.Status == StatusSucceeded {
		e.forward(ctx, r)
	}
	return nil
}

// forward requests the copies onward from r's target, now that it holds the item: with rules
// T>X the second hop starts at once instead of at the next sweep. Each onward copy is an ordinary
// request (idempotent: a replica in flight or done is left as it is; the origin is skipped, so
// a two-way rule never sends the copy back). A failure is only logged: the watch and the sweep
// list T and request what is missing, so they are the safety net.
func (e *Engine) forward(ctx context.Context, r *Replica) {
	source, id := r.Target, r.TargetID
	if id == "" {
		id = r.SourceID
	}
	var targets []string
	for _, t := range e.rules[source] {
		if t == e.sourceOf(r) || e.isOrigin(t, e.originOf(r)) {
			continue // where the copy came from holds it already; the origin is never a target
		}
		if e.selects != nil && !e.selects(Rule{From: source, To: t}, r.Kind, id) {
			continue
		}
		targets = append(targets, t)
	}
	if len(targets) == 0 {
		return
	}
	reps, err := e.request(ctx, Request{Source: source, Kind: r.Kind, SourceID: id, Targets: targets}, false)
	attrs := append(replicaAttrs(r), "onward", strings.Join(targets, ","))
	if err != nil {
		e.log.WarnContext(ctx, "requesting the onward copies failed; the next watch or sweep requests them", append(attrs, "err", err.Error())...)
		return
	}
	for _, o := range reps {
		e.log.InfoContext(ctx, "onward copy requested", append(attrs, "to", o.Target, "status", string(o.Status))...)
	}
}

// save writes r, a step's outcome. Losing an ETag race is not an error: the other instance's
// newer state stands, and r is refreshed to it. It writes even when the step's context has ended,
// within writeTimeout: a deadline that cut a call short is often why the step failed, and the
// record of that failure is what spaces out the next try (without it the row stays due, and every
// pass runs into the same deadline). The ETag keeps a late write from overwriting anything another
// instance wrote after the claim ran out.
func (e *Engine) save(ctx context.Context, r *Replica) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
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
	if r.Source != "" {
		attrs = append(attrs, "source", r.Source)
	}
	if r.OperationURL != "" {
		attrs = append(attrs, "operation", OperationID(r.OperationURL))
	}
	if r.ErrorCode != "" {
		attrs = append(attrs, "errorCode", r.ErrorCode, "error", r.ErrorMessage)
	}
	return attrs
}
