// Package reconciletest provides in-memory fakes for testing reconciliation and what uses it: a
// World of Document Intelligence resources that are both replication.Resource and
// reconcile.Lister (copies complete at once), a Store of replica and meta rows with ETags, and a
// Queue. They follow the service's semantics that reconciliation depends on: authorizeCopy
// reserves the target id, copies carry the authorization's tags (models only) and keep the
// source's expiry, lists are newest-first for operations and by id for items.
package reconciletest

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dimirror/dimirror/internal/fakeclock"
	"github.com/dimirror/dimirror/shared/reconcile"
	"github.com/dimirror/dimirror/shared/replication"
)

// NewClock starts at a fixed instant.
func NewClock() *fakeclock.Clock { return fakeclock.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)) }

// World is a set of fake resources sharing one clock.
type World struct {
	mu    sync.Mutex
	clock *fakeclock.Clock
	res   map[string]*Resource
	seq   int
}

// NewWorld makes resources with the given names.
func NewWorld(c *fakeclock.Clock, names ...string) *World {
	w := &World{clock: c, res: map[string]*Resource{}}
	for _, n := range names {
		w.res[n] = &Resource{w: w, name: n, items: map[replication.Kind]map[string]*held{},
			reserved: map[string]string{}, copies: map[string]*copyOp{}, buildDeps: map[string][]reconcile.Dependency{}, calls: map[string]int{}, errs: map[string][]error{}}
	}
	return w
}

// Resource returns the resource called name.
func (w *World) Resource(name string) *Resource { return w.res[name] }

type held struct {
	item reconcile.Item
	deps []reconcile.Dependency
}

type copyOp struct {
	url      string
	kind     replication.Kind
	location string
	created  time.Time
}

// Resource is one fake resource.
type Resource struct {
	w        *World
	name     string
	items    map[replication.Kind]map[string]*held
	reserved map[string]string // kind/id → token
	ops      []reconcile.Operation
	copies   map[string]*copyOp
	// buildDeps are the dependencies of running composes, by operation id.
	buildDeps map[string][]reconcile.Dependency
	calls     map[string]int
	down      bool // SetDown: every call answers 503
	errs      map[string][]error

	// Limit is the custom model limit (0: none). NoClassifiers and NoOperations make the
	// resource answer like an api-version without them (ErrUnsupported).
	Limit         int
	NoClassifiers bool
	NoOperations  bool
}

func key(k replication.Kind, id string) string { return string(k) + "/" + id }

// Fail makes the next calls of method (Items, Operations, Operation, Info, Dependencies,
// AuthorizeCopy, CopyTo, GetModel, DeleteModel, ...) return errs, one each.
func (r *Resource) Fail(method string, errs ...error) {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	r.errs[method] = append(r.errs[method], errs...)
}

// Calls is how many times method was called.
func (r *Resource) Calls(method string) int {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	return r.calls[method]
}

// SetDown makes every call answer 503 (a regional outage) until SetDown(false).
func (r *Resource) SetDown(down bool) {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	r.down = down
}

func (r *Resource) call(method string) error {
	r.calls[method]++
	if r.down {
		return &replication.ServiceError{Class: replication.ClassTransient, Code: "ServiceUnavailable", StatusCode: 503, Message: "the resource is unreachable"}
	}
	if q := r.errs[method]; len(q) > 0 {
		r.errs[method] = q[1:]
		return q[0]
	}
	return nil
}

func (r *Resource) put(it reconcile.Item, deps []reconcile.Dependency) {
	if r.items[it.Kind] == nil {
		r.items[it.Kind] = map[string]*held{}
	}
	r.items[it.Kind][it.ID] = &held{item: it, deps: deps}
}

// Seed puts a ready item there now, with no operation (as if built long ago).
func (r *Resource) Seed(kind replication.Kind, id string, deps ...reconcile.Dependency) reconcile.Item {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	now := r.w.clock.Now()
	it := reconcile.Item{Kind: kind, ID: id, Created: now, Expires: now.Add(730 * 24 * time.Hour)}
	r.put(it, deps)
	return it
}

// Put stores an item as given (a copy made by someone, a model about to expire, ...).
func (r *Resource) Put(it reconcile.Item) {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	r.put(it, nil)
}

// Build makes a ready item now and lists a succeeded build operation for it (compose when it
// has dependencies); it returns the operation id.
func (r *Resource) Build(kind replication.Kind, id string, deps ...reconcile.Dependency) string {
	op := r.StartBuild(kind, id, deps...)
	r.FinishBuild(op)
	return op
}

// StartBuild lists a running build operation; the item appears when FinishBuild is called.
func (r *Resource) StartBuild(kind replication.Kind, id string, deps ...reconcile.Dependency) string {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	r.w.seq++
	opKind := reconcile.OpModelBuild
	switch {
	case kind == replication.KindClassifier:
		opKind = reconcile.OpClassifierBuild
	case len(deps) > 0:
		opKind = reconcile.OpModelCompose
	}
	now := r.w.clock.Now()
	id2 := fmt.Sprintf("%011d_%04d", 33166367999-now.Unix(), r.w.seq)
	r.ops = append(r.ops, reconcile.Operation{ID: id2, Kind: opKind, Status: replication.OpRunning, Created: now, LastUpdated: now, ItemID: id})
	r.buildDeps[id2] = deps
	return id2
}

// FinishBuild completes a running build: the item is ready now (replacing one of the same id).
func (r *Resource) FinishBuild(opID string) {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	now := r.w.clock.Now()
	for i := range r.ops {
		op := &r.ops[i]
		if op.ID != opID {
			continue
		}
		op.Status, op.LastUpdated = replication.OpSucceeded, now
		kind := replication.KindModel
		if op.Kind == reconcile.OpClassifierBuild {
			kind = replication.KindClassifier
		}
		deps := r.buildDeps[opID]
		r.put(reconcile.Item{Kind: kind, ID: op.ItemID, Created: now, Expires: now.Add(730 * 24 * time.Hour)}, deps)
	}
}

// ForgetOperations drops every operation record (the service keeps them about a day).
func (r *Resource) ForgetOperations() {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	r.ops = nil
}

// Remove deletes an item directly (not through the API; no call is counted).
func (r *Resource) Remove(kind replication.Kind, id string) {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	delete(r.items[kind], id)
}

// Item returns what the resource holds under id.
func (r *Resource) Item(kind replication.Kind, id string) (reconcile.Item, bool) {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	h, ok := r.items[kind][id]
	if !ok {
		return reconcile.Item{}, false
	}
	return h.item, true
}

// IDs lists the ids the resource holds of a kind, sorted.
func (r *Resource) IDs(kind replication.Kind) []string {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	var out []string
	for id := range r.items[kind] {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func (r *Resource) modelCount() int { return len(r.items[replication.KindModel]) + r.reservedModels() }

func (r *Resource) reservedModels() int {
	n := 0
	for k := range r.reserved {
		if strings.HasPrefix(k, string(replication.KindModel)+"/") {
			n++
		}
	}
	return n
}

func notFound(what string) error {
	return &replication.ServiceError{Class: replication.ClassNotFound, Code: "ModelNotFound", StatusCode: 404, Message: what + " was not found"}
}

// --- replication.Resource ---

// TokenPrefix starts every access token the fake targets put in an authorization: a test looks
// for it where no token may go (answers, logs, rows).
const TokenPrefix = "SECRET-TOKEN-"

type auth struct {
	Target string            `json:"target"`
	Kind   replication.Kind  `json:"kind"`
	ID     string            `json:"id"`
	Token  string            `json:"accessToken"`
	Tags   map[string]string `json:"tags"`
}

// AuthorizeCopy reserves id on this (target) resource.
func (r *Resource) AuthorizeCopy(_ context.Context, k replication.Kind, id string, tags map[string]string) (replication.Authorization, error) {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	if err := r.call("AuthorizeCopy"); err != nil {
		return replication.Authorization{}, err
	}
	if _, ok := r.items[k][id]; ok || r.reserved[key(k, id)] != "" {
		return replication.Authorization{}, &replication.ServiceError{Class: replication.ClassExists, Code: "ModelExists", StatusCode: 409, Message: "A model with the provided name already exists."}
	}
	if k == replication.KindModel && r.Limit > 0 && r.modelCount() >= r.Limit {
		return replication.Authorization{}, &replication.ServiceError{Class: replication.ClassQuota, Code: "DocumentModelLimit", StatusCode: 400,
			Message: fmt.Sprintf("Account can't create more than %d models.", r.Limit)}
	}
	r.w.seq++
	tok := TokenPrefix + strconv.Itoa(r.w.seq)
	r.reserved[key(k, id)] = tok
	if k == replication.KindClassifier {
		tags = nil // classifiers keep no tags
	}
	body, _ := json.Marshal(auth{Target: r.name, Kind: k, ID: id, Token: tok, Tags: tags})
	return replication.Authorization{TargetID: id, ExpiresAt: r.w.clock.Now().Add(time.Hour), Body: body}, nil
}

// CopyTo copies at once into the authorization's target.
func (r *Resource) CopyTo(_ context.Context, k replication.Kind, sourceID string, body []byte) (string, error) {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	if err := r.call("CopyTo"); err != nil {
		return "", err
	}
	src, ok := r.items[k][sourceID]
	if !ok {
		return "", &replication.ServiceError{Class: replication.ClassNotReady, Code: "ModelNotReady", StatusCode: 400, Message: "Model is not ready"}
	}
	var a auth
	if err := json.Unmarshal(body, &a); err != nil {
		return "", &replication.ServiceError{Class: replication.ClassPermanent, Code: "InvalidArgument", StatusCode: 400, Message: "bad body"}
	}
	target := r.w.res[a.Target]
	if target == nil || target.reserved[key(k, a.ID)] != a.Token {
		return "", &replication.ServiceError{Class: replication.ClassAuthorization, Code: "AuthorizationMetadataNotFound", StatusCode: 400, Message: "Couldn't retrieve authorization metadata."}
	}
	delete(target.reserved, key(k, a.ID))
	now := r.w.clock.Now()
	target.put(reconcile.Item{Kind: k, ID: a.ID, Created: now, Expires: src.item.Expires, Tags: a.Tags}, src.deps)
	r.w.seq++
	op := &copyOp{url: fmt.Sprintf("https://%s/operations/%d", r.name, r.w.seq), kind: k, location: target.Location(k, a.ID), created: now}
	r.copies[op.url] = op
	return op.url, nil
}

// GetOperation answers every copy as succeeded (copies complete at once).
func (r *Resource) GetOperation(_ context.Context, u string) (replication.Operation, error) {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	if err := r.call("GetOperation"); err != nil {
		return replication.Operation{}, err
	}
	op, ok := r.copies[u]
	if !ok {
		return replication.Operation{}, &replication.ServiceError{Class: replication.ClassNotFound, Code: "OperationNotFound", StatusCode: 404}
	}
	return replication.Operation{URL: op.url, Status: replication.OpSucceeded, Percent: 100, Created: op.created}, nil
}

// FindCopyOperations finds the copies into the given locations created at or after since.
func (r *Resource) FindCopyOperations(_ context.Context, k replication.Kind, since time.Time, locs ...string) (map[string]replication.Operation, error) {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	if err := r.call("FindCopyOperations"); err != nil {
		return nil, err
	}
	found := map[string]replication.Operation{}
	for _, loc := range locs {
		for _, op := range r.copies {
			if op.kind == k && op.location == loc && !op.created.Before(since) {
				found[loc] = replication.Operation{URL: op.url, Status: replication.OpSucceeded, Percent: 100, Created: op.created}
			}
		}
	}
	return found, nil
}

// GetModel reads an item.
func (r *Resource) GetModel(_ context.Context, k replication.Kind, id string) (replication.Model, error) {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	if err := r.call("GetModel"); err != nil {
		return replication.Model{}, err
	}
	h, ok := r.items[k][id]
	if !ok {
		return replication.Model{}, notFound(string(k) + " " + id)
	}
	return replication.Model{ID: id, Created: h.item.Created, Expires: h.item.Expires, Tags: h.item.Tags}, nil
}

// DeleteModel deletes an item or frees a reservation.
func (r *Resource) DeleteModel(_ context.Context, k replication.Kind, id string) error {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	if err := r.call("DeleteModel"); err != nil {
		return err
	}
	_, has := r.items[k][id]
	_, res := r.reserved[key(k, id)]
	if !has && !res {
		return notFound(string(k) + " " + id)
	}
	delete(r.items[k], id)
	delete(r.reserved, key(k, id))
	return nil
}

// Location is the item's URL as copy operations name it.
func (r *Resource) Location(k replication.Kind, id string) string {
	return "https://" + r.name + ".example/" + string(k) + "s/" + id
}

// --- reconcile.Lister ---

// Items lists the items of a kind by id.
func (r *Resource) Items(_ context.Context, kind replication.Kind) iter.Seq2[reconcile.Item, error] {
	return func(yield func(reconcile.Item, error) bool) {
		r.w.mu.Lock()
		err := r.call("Items")
		if err == nil && kind == replication.KindClassifier && r.NoClassifiers {
			err = reconcile.ErrUnsupported
		}
		var items []reconcile.Item
		for _, h := range r.items[kind] {
			items = append(items, h.item)
		}
		r.w.mu.Unlock()
		if err != nil {
			yield(reconcile.Item{}, err)
			return
		}
		sort.Slice(items, func(i, j int) bool { return items[i].ID < items[j].ID })
		for _, it := range items {
			if !yield(it, nil) {
				return
			}
		}
	}
}

// Operations lists the build operations, newest first.
func (r *Resource) Operations(_ context.Context) iter.Seq2[reconcile.Operation, error] {
	return func(yield func(reconcile.Operation, error) bool) {
		r.w.mu.Lock()
		err := r.call("Operations")
		if err == nil && r.NoOperations {
			err = reconcile.ErrUnsupported
		}
		ops := slices.Clone(r.ops)
		r.w.mu.Unlock()
		if err != nil {
			yield(reconcile.Operation{}, err)
			return
		}
		sort.SliceStable(ops, func(i, j int) bool { return ops[i].ID < ops[j].ID }) // ids count down: newest first
		for _, op := range ops {
			if !yield(op, nil) {
				return
			}
		}
	}
}

// Operation reads one build operation.
func (r *Resource) Operation(_ context.Context, id string) (reconcile.Operation, error) {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	if err := r.call("Operation"); err != nil {
		return reconcile.Operation{}, err
	}
	for _, op := range r.ops {
		if op.ID == id {
			return op, nil
		}
	}
	return reconcile.Operation{}, fmt.Errorf("operation %s: %w", id, reconcile.ErrNotFound)
}

// Info is the model count (reservations included) and limit.
func (r *Resource) Info(_ context.Context) (reconcile.Info, error) {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	if err := r.call("Info"); err != nil {
		return reconcile.Info{}, err
	}
	limit := r.Limit
	if limit == 0 {
		limit = 5000
	}
	return reconcile.Info{Count: r.modelCount(), Limit: limit}, nil
}

// Dependencies lists a composed model's dependencies.
func (r *Resource) Dependencies(_ context.Context, id string) ([]reconcile.Dependency, error) {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	if err := r.call("Dependencies"); err != nil {
		return nil, err
	}
	h, ok := r.items[replication.KindModel][id]
	if !ok {
		return nil, fmt.Errorf("model %s: %w", id, reconcile.ErrNotFound)
	}
	return slices.Clone(h.deps), nil
}

var (
	_ replication.Resource = (*Resource)(nil)
	_ reconcile.Lister     = (*Resource)(nil)
)
