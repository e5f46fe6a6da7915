package replication_test

// The engine's tests were written inside the package; they run outside it now, on the shared
// fakes' store (which imports this package), and the dot import keeps them reading as the
// domain's own code.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/dimirror/dimirror/internal/fakeclock"
	. "github.com/dimirror/dimirror/shared/replication"
)

func newClock() *fakeclock.Clock { return fakeclock.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)) }

// errStoreDown is a failed write of the replica table.
var errStoreDown = fmt.Errorf("store unavailable")

// memQueue records sent messages and drops duplicates by MessageID, like Service Bus.
type memQueue struct {
	mu     sync.Mutex
	msgs   []*CopyMessage
	checks []scheduledCheck
	seen   map[string]bool
	fail   int
	delays []time.Duration // of rescheduled copy messages
}

type scheduledCheck struct {
	msg   *CopyMessage
	after time.Duration
}

// Schedule records check messages apart from copy messages (takeChecks); a rescheduled copy
// message joins the copy messages (its delay is recorded in delays).
func (q *memQueue) Schedule(ctx context.Context, m *CopyMessage, after time.Duration) error {
	if m.Check == 0 {
		q.mu.Lock()
		q.delays = append(q.delays, after)
		q.mu.Unlock()
		return q.SendCopy(ctx, m)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail > 0 {
		q.fail--
		return fmt.Errorf("queue unavailable")
	}
	c := *m
	q.checks = append(q.checks, scheduledCheck{&c, after})
	return nil
}

// takeChecks removes and returns the scheduled check messages.
func (q *memQueue) takeChecks() []scheduledCheck {
	q.mu.Lock()
	defer q.mu.Unlock()
	c := q.checks
	q.checks = nil
	return c
}

func (q *memQueue) SendCopy(_ context.Context, m *CopyMessage) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail > 0 {
		q.fail--
		return fmt.Errorf("queue unavailable")
	}
	if q.seen == nil {
		q.seen = map[string]bool{}
	}
	if q.seen[m.MessageID()] {
		return nil
	}
	q.seen[m.MessageID()] = true
	c := *m
	q.msgs = append(q.msgs, &c)
	return nil
}

// take removes and returns the queued messages.
func (q *memQueue) take() []*CopyMessage {
	q.mu.Lock()
	defer q.mu.Unlock()
	m := q.msgs
	q.msgs = nil
	return m
}

// world is a set of fake Document Intelligence resources with the service's copy semantics:
// authorizeCopy reserves the target id, an authorization is single-use and expires, copies take
// copyTime, operation records can be lost.
type world struct {
	mu        sync.Mutex
	clock     *fakeclock.Clock
	res       map[string]*fakeResource
	copyTime  time.Duration
	authTTL   time.Duration
	tokens    int
	copyFails []*ServiceError // failures for the next copy operations, in order
}

func newWorld(c *fakeclock.Clock, names ...string) *world {
	w := &world{clock: c, res: map[string]*fakeResource{}, copyTime: 2 * time.Second, authTTL: time.Hour}
	for _, n := range names {
		w.res[n] = &fakeResource{w: w, name: n, models: map[string]Model{}, reserved: map[string]string{}, resTags: map[string]map[string]string{},
			ops: map[string]*fakeOp{}, calls: map[string]int{}, errs: map[string][]error{}}
	}
	return w
}

type fakeOp struct {
	url      string
	target   *fakeResource
	kind     Kind
	targetID string
	created  time.Time
	done     time.Time
	fail     *ServiceError
	applied  bool
	model    Model
}

type fakeResource struct {
	w        *world
	name     string
	models   map[string]Model             // kind/id → model
	reserved map[string]string            // kind/id → token
	resTags  map[string]map[string]string // kind/id → the authorization's tags (models keep them, as the service does)
	ops      map[string]*fakeOp
	calls    map[string]int
	errs     map[string][]error // method → errors returned by the next calls
	opSeq    int
	accepted map[string]int // token → copyTo accepted
}

type fakeAuth struct {
	Target string `json:"target"`
	Kind   Kind   `json:"kind"`
	ID     string `json:"id"`
	Token  string `json:"accessToken"`
	Exp    string `json:"expirationDateTime"`
}

func mkey(k Kind, id string) string { return string(k) + "/" + id }

func (f *fakeResource) takeErr(method string) error {
	f.calls[method]++
	if q := f.errs[method]; len(q) > 0 {
		f.errs[method] = q[1:]
		return q[0]
	}
	return nil
}

func (f *fakeResource) addModel(k Kind, id string, created time.Time) Model {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	m := Model{ID: id, Created: created, Expires: created.Add(730 * 24 * time.Hour)}
	f.models[mkey(k, id)] = m
	return m
}

// settle applies finished copies. Called with w.mu held.
func (w *world) settle() {
	now := w.clock.Now()
	for _, r := range w.res {
		for _, op := range r.ops {
			if !op.applied && op.fail == nil && !now.Before(op.done) {
				op.applied = true
				op.target.models[mkey(op.kind, op.targetID)] = op.model
			}
		}
	}
}

func (f *fakeResource) AuthorizeCopy(_ context.Context, k Kind, id string, tags map[string]string) (Authorization, error) {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	f.w.settle()
	if err := f.takeErr("AuthorizeCopy"); err != nil {
		return Authorization{}, err
	}
	key := mkey(k, id)
	if _, ok := f.models[key]; ok {
		return Authorization{}, &ServiceError{Class: ClassExists, Code: "ModelExists", StatusCode: 409, Message: "A model with the provided name already exists."}
	}
	if _, ok := f.reserved[key]; ok || f.copyingInto(k, id) {
		return Authorization{}, &ServiceError{Class: ClassExists, Code: "ModelExists", StatusCode: 409, Message: "A model with the provided name already exists."}
	}
	f.w.tokens++
	tok := fmt.Sprintf("SECRET-TOKEN-%d", f.w.tokens)
	f.reserved[key] = tok
	if k == KindModel && len(tags) > 0 { // classifiers keep no tags
		f.resTags[key] = maps.Clone(tags)
	}
	exp := f.w.clock.Now().Add(f.w.authTTL)
	body, _ := json.Marshal(fakeAuth{Target: f.name, Kind: k, ID: id, Token: tok, Exp: exp.Format(time.RFC3339)})
	return Authorization{TargetID: id, ExpiresAt: exp, Body: body}, nil
}

// copyingInto reports whether a copy into this (target) resource's id is running: the id is
// taken until it ends. Called with w.mu held.
func (f *fakeResource) copyingInto(k Kind, id string) bool {
	for _, r := range f.w.res {
		for _, op := range r.ops {
			if op.target == f && op.kind == k && op.targetID == id && op.fail == nil && !op.applied {
				return true
			}
		}
	}
	return false
}

func (f *fakeResource) CopyTo(_ context.Context, k Kind, sourceID string, body []byte) (string, error) {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	f.w.settle()
	if err := f.takeErr("CopyTo"); err != nil {
		return "", err
	}
	src, ok := f.models[mkey(k, sourceID)]
	if !ok {
		return "", &ServiceError{Class: ClassNotReady, Code: "ModelNotReady", StatusCode: 400, Message: "Model is not ready for the requested operation."}
	}
	var a fakeAuth
	if err := json.Unmarshal(body, &a); err != nil {
		return "", &ServiceError{Class: ClassPermanent, Code: "InvalidArgument", StatusCode: 400, Message: "bad body"}
	}
	exp, _ := time.Parse(time.RFC3339, a.Exp)
	if f.w.clock.Now().After(exp) {
		return "", &ServiceError{Class: ClassAuthorization, Code: "AuthorizationExpired", StatusCode: 400, Message: "The copy authorization has expired."}
	}
	target := f.w.res[a.Target]
	now := f.w.clock.Now()
	f.opSeq++
	op := &fakeOp{url: fmt.Sprintf("https://%s/operations/%d", f.name, f.opSeq), target: target, kind: k, targetID: a.ID,
		created: now, done: now.Add(f.w.copyTime),
		model: Model{ID: a.ID, Created: now, Expires: src.Expires, Tags: target.resTags[mkey(k, a.ID)]}}
	if target.reserved[mkey(k, a.ID)] != a.Token {
		op.fail = &ServiceError{Class: ClassAuthorization, Code: "AuthorizationMetadataNotFound", Message: "Couldn't retrieve authorization metadata."}
	} else {
		delete(target.reserved, mkey(k, a.ID))
		if f.accepted == nil {
			f.accepted = map[string]int{}
		}
		f.accepted[a.Token]++
		if len(f.w.copyFails) > 0 {
			op.fail = f.w.copyFails[0]
			f.w.copyFails = f.w.copyFails[1:]
		}
	}
	f.ops[op.url] = op
	return op.url, nil
}

func (f *fakeResource) status(op *fakeOp) Operation {
	o := Operation{URL: op.url, TargetID: op.targetID, Created: op.created, Status: OpRunning}
	now := f.w.clock.Now()
	switch {
	case op.fail != nil && !now.Before(op.done):
		o.Status, o.Err = OpFailed, op.fail
	case !now.Before(op.done):
		o.Status, o.Percent = OpSucceeded, 100
	}
	return o
}

func (f *fakeResource) GetOperation(_ context.Context, u string) (Operation, error) {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	f.w.settle()
	if err := f.takeErr("GetOperation"); err != nil {
		return Operation{}, err
	}
	op, ok := f.ops[u]
	if !ok {
		return Operation{}, &ServiceError{Class: ClassNotFound, Code: "OperationNotFound", StatusCode: 404}
	}
	return f.status(op), nil
}

func (f *fakeResource) FindCopyOperations(_ context.Context, k Kind, since time.Time, locs ...string) (map[string]Operation, error) {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	f.w.settle()
	if err := f.takeErr("FindCopyOperations"); err != nil {
		return nil, err
	}
	found := map[string]Operation{}
	for _, loc := range locs {
		var best *fakeOp
		for _, op := range f.ops {
			if op.kind == k && op.target.Location(k, op.targetID) == loc && op.fail == nil && !op.created.Before(since) {
				if best == nil || op.created.After(best.created) {
					best = op
				}
			}
		}
		if best != nil {
			found[loc] = f.status(best)
		}
	}
	return found, nil
}

func (f *fakeResource) GetModel(_ context.Context, k Kind, id string) (Model, error) {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	f.w.settle()
	if err := f.takeErr("GetModel"); err != nil {
		return Model{}, err
	}
	m, ok := f.models[mkey(k, id)]
	if !ok {
		return Model{}, &ServiceError{Class: ClassNotFound, Code: "ModelNotFound", StatusCode: 404}
	}
	return m, nil
}

func (f *fakeResource) DeleteModel(_ context.Context, k Kind, id string) error {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	f.w.settle()
	if err := f.takeErr("DeleteModel"); err != nil {
		return err
	}
	key := mkey(k, id)
	_, m := f.models[key]
	_, r := f.reserved[key]
	if !m && !r {
		return &ServiceError{Class: ClassNotFound, Code: "ModelNotFound", StatusCode: 404}
	}
	delete(f.models, key)
	delete(f.reserved, key)
	return nil
}

func (f *fakeResource) Location(k Kind, id string) string {
	return "https://" + f.name + "/" + strings.ToLower(string(k)) + "s/" + id
}

func (f *fakeResource) model(k Kind, id string) (Model, bool) {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	f.w.settle()
	m, ok := f.models[mkey(k, id)]
	return m, ok
}

func (f *fakeResource) count(method string) int {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	return f.calls[method]
}

func (f *fakeResource) failNext(method string, errs ...error) {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	f.errs[method] = append(f.errs[method], errs...)
}
