// Package reconcile keeps the targets equal to the source without anyone calling the webhook, the
// way S3 pairs live replication with batch replication of what was missed:
//
//   - Watch (every 30 s by default) reads the source's operation list, newest first, back to a
//     watermark, and requests replication of every model or classifier a build or compose
//     operation finished since.
//   - Sweep (hourly by default) lists the source and every target and plans: missing (start),
//     stale (report, or replace with DIMIRROR_REPLACE), orphaned (report, or delete with
//     DIMIRROR_PRUNE, and only what dimirror put there), failed (re-drive when the cause may
//     have passed), expiring (report).
//
// Both act only through replication.Engine.Request, the same idempotent step the webhook uses, so
// a plan carried out twice, or by two instances at once, starts every copy once. The package is
// domain-level: it imports no Azure SDK and reaches the resources through Lister and its state
// through MetaStore, implemented by shared/resources and shared/store.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/dimirror/dimirror/shared/replication"
)

// Reconciler runs the watch and the sweep.
type Reconciler struct {
	// Engine is the replication engine (a *replication.Engine): reconciliation acts only
	// through it.
	Engine Replicator
	// Resources lists every resource of the engine's rules by name. Without it, Source (the
	// engine's default source) and Targets (by target name) are used.
	Resources map[string]Lister
	Source    Lister
	Targets   map[string]Lister
	// RuleFilters narrow single rules beyond Filter (DIMIRROR_RULES' include, exclude, kinds).
	RuleFilters map[replication.Rule]RuleFilter
	Meta        MetaStore
	Filter      Filter
	// Prune lets the sweep delete orphans (target copies whose source is gone); default: report.
	Prune bool
	// Workers bounds the requests and deletions one pass runs at once; default 4.
	Workers int
	// ExpiryWindow: models expiring sooner are reported; default 30 days.
	ExpiryWindow time.Duration
	// RPO is the recovery point objective the summary and the rpo-missed events judge replicas
	// by (DIMIRROR_RPO); default replication.DefaultRPO. See rpo.go.
	RPO time.Duration
	// Starts paces the copies reconciliation starts: a request for n targets waits for n
	// tokens. Each copy is an authorizeCopy in its target now and a copyTo on the source soon
	// after, so a rate under the S0 management limit (5 per second) keeps a large sweep from
	// drawing 429s (DIMIRROR_MANAGEMENT_RATE). Nil: unpaced. A *rate.Limiter is one.
	Starts Throttle
	Now    func() time.Time
	Log    *slog.Logger

	built bool // by New, which validated the wiring
	// source is the source resource a per-source pass (watch) works on; "" on the top-level
	// reconciler, which runs one such pass per source.
	source string
}

const (
	defaultWorkers      = 4
	defaultExpiryWindow = 30 * 24 * time.Hour
)

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

func (r *Reconciler) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (r *Reconciler) workers() int {
	if r.Workers > 0 {
		return r.Workers
	}
	return defaultWorkers
}

func (r *Reconciler) expiryWindow() time.Duration {
	if r.ExpiryWindow > 0 {
		return r.ExpiryWindow
	}
	return defaultExpiryWindow
}

func (r *Reconciler) replace() bool { return r.Engine.Policy().Replace }

// New validates the reconciler's wiring once (the engine, the listers of the source and of every
// target, the meta store, the filter's globs) and returns it ready to run; a pass of a
// Reconciler not built by New refuses to run instead of failing on a nil dependency midway.
func New(c Reconciler) (*Reconciler, error) {
	if c.Resources == nil && c.Engine != nil {
		c.Resources = map[string]Lister{}
		if c.Source != nil {
			c.Resources[c.Engine.DefaultSource()] = c.Source
		}
		for name, l := range c.Targets {
			c.Resources[name] = l
		}
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	c.built = true
	return &c, nil
}

// errNotBuilt is a pass of a reconciler New did not build.
var errNotBuilt = errors.New("reconcile: the reconciler was not built with reconcile.New")

func (r *Reconciler) ready() error {
	if r == nil || !r.built {
		return errNotBuilt
	}
	return nil
}

// check reports a reconciler that is not wired up.
func (r *Reconciler) check() error {
	switch {
	case r == nil || r.Engine == nil:
		return fmt.Errorf("reconcile: no replication engine")
	case r.Meta == nil:
		return fmt.Errorf("reconcile: no meta store")
	}
	for _, name := range r.Engine.SourceNames() {
		if r.Resources[name] == nil {
			return fmt.Errorf("reconcile: no source lister for %s", name)
		}
	}
	for _, name := range r.Engine.TargetNames() {
		if r.Resources[name] == nil {
			return fmt.Errorf("reconcile: target %s has no lister", name)
		}
	}
	for rule, f := range r.RuleFilters {
		if err := f.Validate(); err != nil {
			return fmt.Errorf("reconcile: rule %s: %w", rule, err)
		}
	}
	return r.Filter.Validate()
}

// Replicator is what reconciliation needs of the replication engine.
type Replicator interface {
	Request(ctx context.Context, req replication.Request) ([]replication.Replica, error)
	Replicas(ctx context.Context, f replication.Filter) iter.Seq2[replication.Replica, error]
	Get(ctx context.Context, k replication.Key) (*replication.Replica, error)
	MarkVanished(ctx context.Context, k replication.Key) error
	Prune(ctx context.Context, k replication.Key, targetID string) (replication.PruneResult, error)
	TargetNames() []string
	SourceNames() []string
	Rules() []replication.Rule
	RuleTargets(source string) []string
	DefaultSource() string
	Host(name string) string
	IsOrigin(name, origin string) bool
	RowOrigin(row *replication.Replica, expires time.Time) (replication.Origin, bool)
	RowOriginTag(row *replication.Replica) string
	SourceTag(kind replication.Kind, id string) string
	Policy() replication.Policy
}

var _ Replicator = (*replication.Engine)(nil)

// Throttle paces work: WaitN blocks until n units may go, or fails when ctx ends first.
type Throttle interface {
	WaitN(ctx context.Context, n int) error
}

// request is Engine.Request after the start pacing.
func (r *Reconciler) request(ctx context.Context, req replication.Request) ([]replication.Replica, error) {
	if r.Starts != nil && len(req.Targets) > 0 {
		if err := r.Starts.WaitN(ctx, len(req.Targets)); err != nil {
			// Out of time for this pass (or more targets than the burst, a wiring bug).
			if ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
				return nil, fmt.Errorf("reconcile: pacing the start of %s %s: %w", req.Kind, req.SourceID, err)
			}
			return nil, context.DeadlineExceeded
		}
	}
	return r.Engine.Request(ctx, req)
}

// RuleFilter narrows one rule: its own include and exclude globs, and the kinds it copies
// (empty: both).
type RuleFilter struct {
	Filter
	Kinds []replication.Kind
}

// Match reports whether the rule copies kind/id (Filter.Match, then the kinds).
func (f RuleFilter) Match(kind replication.Kind, id string) bool {
	if len(f.Kinds) > 0 && !slices.Contains(f.Kinds, kind) {
		return false
	}
	return f.Filter.Match(id)
}

// selects reports whether rule copies kind/id: DIMIRROR_INCLUDE/EXCLUDE and the rule's own filter.
func (r *Reconciler) selects(rule replication.Rule, kind replication.Kind, id string) bool {
	return Selects(r.Filter, r.RuleFilters)(rule, kind, id)
}

// Selects is the selection of the watch and the sweep as a function (the engine's
// Config.Selects), so the onward copies of a verified replica follow the same filters: global
// (DIMIRROR_INCLUDE/EXCLUDE), then the rule's own.
func Selects(global Filter, rules map[replication.Rule]RuleFilter) func(replication.Rule, replication.Kind, string) bool {
	return func(rule replication.Rule, kind replication.Kind, id string) bool {
		if !global.Match(id) {
			return false
		}
		f, ok := rules[rule]
		return !ok || f.Match(kind, id)
	}
}

// forSource is the reconciler of a pass over one source resource.
func (r *Reconciler) forSource(name string) *Reconciler {
	c := *r
	c.source = name
	c.Source = r.Resources[name]
	return &c
}

// sourceName is the source of a per-source pass.
func (r *Reconciler) sourceName() string {
	if r.source != "" {
		return r.source
	}
	return r.Engine.DefaultSource()
}

// targetsFor lists the targets the pass's source's rules copy kind/id into.
func (r *Reconciler) targetsFor(kind replication.Kind, id string) []string {
	var out []string
	for _, t := range r.Engine.RuleTargets(r.sourceName()) {
		if r.selects(replication.Rule{From: r.sourceName(), To: t}, kind, id) {
			out = append(out, t)
		}
	}
	return out
}

// Filter selects the ids reconciliation copies: DIMIRROR_INCLUDE and DIMIRROR_EXCLUDE, path.Match
// globs. Prebuilt models are never copied.
type Filter struct {
	Include, Exclude []string
}

// Validate reports a malformed glob.
func (f Filter) Validate() error {
	for _, g := range append(append([]string(nil), f.Include...), f.Exclude...) {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("reconcile: pattern %q is malformed: %v", g, err)
		}
	}
	return nil
}

// Match reports whether id is selected: not prebuilt, matched by an include glob (when there are
// any) and by no exclude glob.
func (f Filter) Match(id string) bool {
	if strings.HasPrefix(id, "prebuilt-") {
		return false
	}
	if len(f.Include) > 0 && !anyMatch(f.Include, id) {
		return false
	}
	return !anyMatch(f.Exclude, id)
}

func anyMatch(globs []string, id string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, id); ok {
			return true
		}
	}
	return false
}

// sameInstant compares service timestamps at the wire's precision (whole seconds).
func sameInstant(a, b time.Time) bool {
	return a.Truncate(time.Second).Equal(b.Truncate(time.Second))
}

// sourceTag is the dimirror-source tag a copy of kind/id from this source carries.
func (r *Reconciler) sourceTag(kind replication.Kind, id string) string {
	return r.Engine.SourceTag(kind, id)
}
