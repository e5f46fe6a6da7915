// Package drill answers, read-only, whether each target could serve now if the source's region
// went away: every source item reconciliation selects is present in the target, holds the
// source's version, has the same document types and field schema, is not about to expire, and
// the target speaks an api-version that is not past its published retirement. It lists and reads,
// never writes: a drill may run at any time, as often as an auditor likes.
package drill

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dimirror/dimirror/shared/reconcile"
	"github.com/dimirror/dimirror/shared/replication"
)

// Resource is what the drill reads of one Document Intelligence resource (shared/resources
// adapts a docintel client).
type Resource interface {
	// Items lists the custom models or classifiers; reconcile.ErrUnsupported when the
	// api-version has none of that kind.
	Items(ctx context.Context, kind replication.Kind) iter.Seq2[reconcile.Item, error]
	// Fingerprint digests one item's document types and field schema (docintel.SchemaFingerprint);
	// reconcile.ErrNotFound when it is gone.
	Fingerprint(ctx context.Context, kind replication.Kind, id string) (string, error)
	// APIVersion is the api-version the resource is spoken to with.
	APIVersion() string
}

// Reason codes: why a target could not serve an item (or at all).
const (
	// Missing: the target lacks the item.
	Missing = "missing"
	// KindUnsupported: the target's api-version holds no items of this kind (classifiers
	// before 2023-07-31).
	KindUnsupported = "kind-unsupported"
	// OtherVersion: the target holds something under the id that is not the source's version
	// (an older copy, or someone else's model).
	OtherVersion = "other-version"
	// SchemaMismatch: the copy's document types or field schema differ from the source's.
	SchemaMismatch = "schema-mismatch"
	// Expiring: the target's copy expires within DIMIRROR_EXPIRY_WARNING (or has expired).
	Expiring = "expiring"
	// APIVersionRetired: the target is spoken to with an api-version past its retirement date.
	APIVersionRetired = "api-version-retired"
)

// Retirements are the published end-of-support dates of the api-versions dimirror speaks, from
// Microsoft's "Migrate to Document Intelligence v4.0" page
// (https://learn.microsoft.com/azure/ai-services/document-intelligence/versioning/migration-guide-overview):
// "REST API v2.1 reaches end of support on September 15, 2027" and "REST API 2022-08-31 v3.0
// reaches end of support on March 30, 2029". 2023-07-31 and 2024-11-30 have no published date.
var Retirements = map[string]time.Time{
	"2.1":        time.Date(2027, 9, 15, 0, 0, 0, 0, time.UTC),
	"2022-08-31": time.Date(2029, 3, 30, 0, 0, 0, 0, time.UTC),
}

// DefaultExpiryWarning is DIMIRROR_EXPIRY_WARNING's default: 30 days.
const DefaultExpiryWarning = 30 * 24 * time.Hour

// Drill is one drill's inputs.
type Drill struct {
	Source  Resource
	Targets map[string]Resource
	// Filter selects the source items, as reconciliation does (DIMIRROR_INCLUDE/EXCLUDE).
	Filter reconcile.Filter
	// Select, when set, selects further (a rule's own kinds and globs in the rules form).
	Select func(kind replication.Kind, id string) bool
	// ExpiryWarning: a copy expiring sooner fails; default DefaultExpiryWarning.
	ExpiryWarning time.Duration
	// Workers bounds the details read at once from each resource (each resource's client paces
	// its calls besides); default 4.
	Workers int
	Now     func() time.Time
}

// Report is a drill's answer.
type Report struct {
	At time.Time `json:"at"`
	// Ready: every target could serve every selected item, and every target was read.
	Ready             bool           `json:"ready"`
	ExpiryWarning     string         `json:"expiryWarning"`
	SourceModels      int            `json:"sourceModels"`
	SourceClassifiers int            `json:"sourceClassifiers"`
	Targets           []TargetReport `json:"targets"`
}

// TargetReport is one target's verdict.
type TargetReport struct {
	Target string `json:"target"`
	// From names the source the target was judged against (the rules form: one entry per rule).
	From       string `json:"from,omitempty"`
	APIVersion string `json:"apiVersion"`
	// Ready: no reason and no error.
	Ready bool `json:"ready"`
	// Checked counts the selected source items checked in this target.
	Checked int `json:"checked"`
	// APIVersionRetires is the target's api-version's published retirement date, when it has one.
	APIVersionRetires *time.Time `json:"apiVersionRetires,omitempty"`
	// Reasons lists every reason the target could not serve, by item.
	Reasons []Reason `json:"reasons"`
	// Error says the target could not be read: the drill cannot tell whether it is ready.
	Error string `json:"error,omitempty"`
}

// Reason is one thing that keeps a target from serving.
type Reason struct {
	Code   string           `json:"code"`
	Kind   replication.Kind `json:"kind,omitempty"`
	ID     string           `json:"id,omitempty"`
	Detail string           `json:"detail"`
}

// Errors reports whether any target could not be read.
func (r *Report) Errors() bool {
	for _, t := range r.Targets {
		if t.Error != "" {
			return true
		}
	}
	return false
}

func (d *Drill) now() time.Time {
	if d.Now != nil {
		return d.Now().UTC()
	}
	return time.Now().UTC()
}

func (d *Drill) workers() int {
	if d.Workers > 0 {
		return d.Workers
	}
	return 4
}

func (d *Drill) expiryWarning() time.Duration {
	if d.ExpiryWarning > 0 {
		return d.ExpiryWarning
	}
	return DefaultExpiryWarning
}

var kinds = []replication.Kind{replication.KindModel, replication.KindClassifier}

// inventory is one resource's items by kind and id; unsupported marks the kinds its api-version
// has none of.
type inventory struct {
	items       map[replication.Kind]map[string]reconcile.Item
	unsupported map[replication.Kind]bool
}

func list(ctx context.Context, r Resource, keep func(reconcile.Item) bool) (*inventory, error) {
	inv := &inventory{items: map[replication.Kind]map[string]reconcile.Item{}, unsupported: map[replication.Kind]bool{}}
	for _, k := range kinds {
		inv.items[k] = map[string]reconcile.Item{}
		for it, err := range r.Items(ctx, k) {
			if errors.Is(err, reconcile.ErrUnsupported) {
				inv.unsupported[k] = true
				break
			}
			if err != nil {
				return nil, fmt.Errorf("list %ss: %w", k, err)
			}
			if keep(it) {
				inv.items[k][it.ID] = it
			}
		}
	}
	return inv, nil
}

// Run lists the source and every target, compares, and reads the details of every item a target
// holds in the source's version. An error reading the source is the drill's error; an error
// reading a target is that target's (the others are still judged).
func (d *Drill) Run(ctx context.Context) (*Report, error) {
	if d.Source == nil {
		return nil, errors.New("drill: no source resource")
	}
	if err := d.Filter.Validate(); err != nil {
		return nil, err
	}
	now := d.now()
	names := make([]string, 0, len(d.Targets))
	for n := range d.Targets {
		names = append(names, n)
	}
	sort.Strings(names)

	// The listings, all at once (each resource's client paces itself).
	var src *inventory
	tinv := make([]*inventory, len(names))
	terr := make([]error, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		keep := func(it reconcile.Item) bool {
			return d.Filter.Match(it.ID) && (d.Select == nil || d.Select(it.Kind, it.ID))
		}
		if src, err = list(gctx, d.Source, keep); err != nil {
			return fmt.Errorf("drill: source: %w", err)
		}
		return nil
	})
	for i, n := range names {
		g.Go(func() error {
			tinv[i], terr[i] = list(gctx, d.Targets[n], func(reconcile.Item) bool { return true })
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	rep := &Report{At: now, ExpiryWarning: d.expiryWarning().String(), SourceModels: len(src.items[replication.KindModel]),
		SourceClassifiers: len(src.items[replication.KindClassifier]), Targets: make([]TargetReport, len(names))}
	g, gctx = errgroup.WithContext(ctx)
	// The source's details are read under the drill's context, not a target's: one target
	// failing must not leave a cancelled read behind for the others to find.
	fps := &sourceFingerprints{ctx: gctx, res: d.Source, sem: make(chan struct{}, d.workers()), by: map[string]*fpResult{}}
	for i, n := range names {
		tr := TargetReport{Target: n, APIVersion: d.Targets[n].APIVersion(), Reasons: []Reason{}}
		if retires, ok := Retirements[tr.APIVersion]; ok {
			tr.APIVersionRetires = &retires
		}
		if terr[i] != nil {
			tr.Error = terr[i].Error()
			rep.Targets[i] = tr
			continue
		}
		g.Go(func() error {
			err := d.judge(gctx, &tr, d.Targets[n], src, tinv[i], fps, now)
			if errors.Is(err, errSource) {
				return err
			}
			if err != nil {
				tr.Error = err.Error()
			}
			tr.Ready = tr.Error == "" && len(tr.Reasons) == 0
			rep.Targets[i] = tr
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	rep.Ready = len(names) > 0
	for _, t := range rep.Targets {
		rep.Ready = rep.Ready && t.Ready
	}
	return rep, nil
}

// errSource marks a failure to read the source during the judging: the drill's own error.
var errSource = errors.New("drill: source")

// judge fills one target's reasons.
func (d *Drill) judge(ctx context.Context, tr *TargetReport, target Resource, src, tgt *inventory, fps *sourceFingerprints, now time.Time) error {
	if tr.APIVersionRetires != nil && !now.Before(*tr.APIVersionRetires) {
		tr.Reasons = append(tr.Reasons, Reason{Code: APIVersionRetired,
			Detail: fmt.Sprintf("api-version %s reached end of support on %s: the service may refuse it; move the target to 2024-11-30", tr.APIVersion, tr.APIVersionRetires.Format(time.DateOnly))})
	}
	warn := d.expiryWarning()
	type check struct {
		kind    replication.Kind
		s, t    reconcile.Item
		srcFP   string
		fpError error
	}
	var toRead []*check
	for _, k := range kinds {
		ids := make([]string, 0, len(src.items[k]))
		for id := range src.items[k] {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			s := src.items[k][id]
			tr.Checked++
			if tgt.unsupported[k] {
				tr.Reasons = append(tr.Reasons, Reason{Code: KindUnsupported, Kind: k, ID: id,
					Detail: fmt.Sprintf("api-version %s holds no %ss: speak 2024-11-30 to this target", tr.APIVersion, k)})
				continue
			}
			t, ok := tgt.items[k][id]
			if !ok {
				tr.Reasons = append(tr.Reasons, Reason{Code: Missing, Kind: k, ID: id, Detail: fmt.Sprintf("the target has no %s %s", k, id)})
				continue
			}
			if !replication.HoldsVersion(replication.Model{ID: t.ID, Created: t.Created, Expires: t.Expires, Tags: t.Tags}, s.Created, s.Expires) {
				tr.Reasons = append(tr.Reasons, Reason{Code: OtherVersion, Kind: k, ID: id,
					Detail: fmt.Sprintf("the target's %s is not the source's version created %s", k, s.Created.UTC().Format(time.RFC3339))})
				continue
			}
			exp := t.Expires
			if exp.IsZero() {
				exp = s.Expires
			}
			if !exp.IsZero() && exp.Sub(now) < warn {
				detail := fmt.Sprintf("expires %s, within %s", exp.UTC().Format(time.RFC3339), warn)
				if !exp.After(now) {
					detail = fmt.Sprintf("expired %s", exp.UTC().Format(time.RFC3339))
				}
				tr.Reasons = append(tr.Reasons, Reason{Code: Expiring, Kind: k, ID: id, Detail: detail + ": retrain it on the source (a copy keeps the source's expiry)"})
			}
			toRead = append(toRead, &check{kind: k, s: s, t: t})
		}
	}
	// The details of both sides, a few at a time.
	sem := make(chan struct{}, d.workers())
	g, gctx := errgroup.WithContext(ctx)
	var mu sync.Mutex
	for _, c := range toRead {
		g.Go(func() error {
			sfp, err := fps.get(gctx, c.kind, c.s.ID)
			if errors.Is(err, reconcile.ErrNotFound) {
				return nil // deleted from the source meanwhile: no longer the source's
			}
			if err != nil {
				return fmt.Errorf("%w: read %s %s: %v", errSource, c.kind, c.s.ID, err)
			}
			select {
			case sem <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			tfp, err := target.Fingerprint(gctx, c.kind, c.t.ID)
			<-sem
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, reconcile.ErrNotFound):
				tr.Reasons = append(tr.Reasons, Reason{Code: Missing, Kind: c.kind, ID: c.s.ID, Detail: fmt.Sprintf("the target's %s %s was deleted during the drill", c.kind, c.s.ID)})
			case err != nil:
				return fmt.Errorf("read %s %s: %w", c.kind, c.t.ID, err)
			case tfp != sfp:
				tr.Reasons = append(tr.Reasons, Reason{Code: SchemaMismatch, Kind: c.kind, ID: c.s.ID,
					Detail: fmt.Sprintf("document types or field schema differ from the source's (%s, the source %s)", tfp, sfp)})
			}
			return nil
		})
	}
	err := g.Wait()
	sort.SliceStable(tr.Reasons, func(i, j int) bool {
		a, b := tr.Reasons[i], tr.Reasons[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.ID < b.ID
	})
	return err
}

// sourceFingerprints reads each source item's fingerprint once, whichever targets ask for it.
type sourceFingerprints struct {
	ctx context.Context
	res Resource
	sem chan struct{}
	mu  sync.Mutex
	by  map[string]*fpResult
}

type fpResult struct {
	done chan struct{}
	fp   string
	err  error
}

func (s *sourceFingerprints) get(ctx context.Context, kind replication.Kind, id string) (string, error) {
	key := string(kind) + "/" + id
	s.mu.Lock()
	r, ok := s.by[key]
	if !ok {
		r = &fpResult{done: make(chan struct{})}
		s.by[key] = r
	}
	s.mu.Unlock()
	if ok {
		select {
		case <-r.done:
			return r.fp, r.err
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	defer close(r.done)
	select {
	case s.sem <- struct{}{}:
	case <-s.ctx.Done():
		r.err = s.ctx.Err()
		return "", r.err
	}
	r.fp, r.err = s.res.Fingerprint(s.ctx, kind, id)
	<-s.sem
	return r.fp, r.err
}
