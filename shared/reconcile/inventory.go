package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/dimirror/dimirror/shared/replication"
)

var kinds = []replication.Kind{replication.KindModel, replication.KindClassifier}

// inventory is what one resource holds.
type inventory struct {
	items       map[replication.Kind]map[string]Item
	unsupported map[replication.Kind]bool
	info        *Info
	err         error // the listing failed: nothing can be concluded about this resource
}

func newInventory() *inventory {
	return &inventory{items: map[replication.Kind]map[string]Item{}, unsupported: map[replication.Kind]bool{}}
}

func (inv *inventory) item(kind replication.Kind, id string) (Item, bool) {
	it, ok := inv.items[kind][id]
	return it, ok
}

// readInventories lists every resource of the rules once, all at once: each resource paces its
// own calls, so the wall time is that of the largest resource, not the sum, and a resource that is
// the source of some rules and the target of others is listed once. A resource that cannot be
// read is marked (its err); only every source failing fails the pass.
func (r *Reconciler) readInventories(ctx context.Context, withInfo bool) (map[string]*inventory, error) {
	invs := map[string]*inventory{}
	var mu sync.Mutex
	var g errgroup.Group // no shared cancellation: one resource's failure must not stop the others
	list := func(name string, l Lister, inv *inventory, kind replication.Kind) {
		g.Go(func() error {
			items, err := readItems(ctx, l, kind)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrUnsupported):
				inv.unsupported[kind] = true
			case err != nil:
				inv.err = errors.Join(inv.err, fmt.Errorf("list %ss of %s: %w", kind, name, err))
			default:
				inv.items[kind] = items
			}
			return nil
		})
	}
	targets := r.Engine.TargetNames()
	names := append(r.Engine.SourceNames(), targets...)
	for _, name := range names {
		if invs[name] != nil {
			continue
		}
		inv := newInventory()
		invs[name] = inv
		l := r.Resources[name]
		for _, k := range kinds {
			list(name, l, inv, k)
		}
		if withInfo && slices.Contains(targets, name) {
			g.Go(func() error {
				info, err := l.Info(ctx)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					inv.info = &info
				} else if !errors.Is(err, ErrUnsupported) {
					r.log().WarnContext(ctx, "reading a target's model count failed; quota is left to the service", "target", name, "err", err.Error())
				}
				return nil
			})
		}
	}
	_ = g.Wait()
	var errs []error
	for _, name := range r.Engine.SourceNames() {
		if err := invs[name].err; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == len(r.Engine.SourceNames()) {
		return nil, fmt.Errorf("reconcile: %w", errors.Join(errs...))
	}
	return invs, nil
}

func readItems(ctx context.Context, l Lister, kind replication.Kind) (map[string]Item, error) {
	out := map[string]Item{}
	for it, err := range l.Items(ctx, kind) {
		if err != nil {
			return nil, err
		}
		it.Kind = kind
		out[it.ID] = it
	}
	return out, nil
}

// rowIndex is every replica row, by key and by where the copy lives.
type rowIndex struct {
	byKey      map[replication.Key]*replication.Replica
	byTargetID map[string]map[replication.Kind]map[string]*replication.Replica // target → kind → target id
	all        []replication.Replica
}

func (r *Reconciler) readRows(ctx context.Context) (*rowIndex, error) {
	idx := &rowIndex{byKey: map[replication.Key]*replication.Replica{}, byTargetID: map[string]map[replication.Kind]map[string]*replication.Replica{}}
	for row, err := range r.Engine.Replicas(ctx, replication.Filter{}) {
		if err != nil {
			return nil, fmt.Errorf("reconcile: read replica rows: %w", err)
		}
		idx.all = append(idx.all, row)
	}
	for i := range idx.all {
		row := &idx.all[i]
		idx.byKey[row.Key] = row
		byKind := idx.byTargetID[row.Target]
		if byKind == nil {
			byKind = map[replication.Kind]map[string]*replication.Replica{}
			idx.byTargetID[row.Target] = byKind
		}
		if byKind[row.Kind] == nil {
			byKind[row.Kind] = map[string]*replication.Replica{}
		}
		tid := row.TargetID
		if tid == "" {
			tid = row.SourceID
		}
		// Two rows may name one target id (a later request reused it): the verified one says
		// who owns the copy.
		if cur := byKind[row.Kind][tid]; cur == nil || (cur.Status != replication.StatusSucceeded && row.Status == replication.StatusSucceeded) {
			byKind[row.Kind][tid] = row
		}
	}
	return idx, nil
}

func sortedIDs(m map[string]Item) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
