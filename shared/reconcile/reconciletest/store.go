package reconciletest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/dimirror/dimirror/internal/memstore"
	"github.com/dimirror/dimirror/shared/replication"
)

type metaRow struct {
	value []byte
	etag  string
}

// Store is the domain's fake store: memstore's replica rows (the CLI's store, with the table's
// semantics), plus the reconciler's meta rows and failures injected per method.
type Store struct {
	*memstore.Store

	mu   sync.Mutex
	meta map[string]metaRow
	// metaVersion numbers the meta rows' ETags (the replica rows have memstore's).
	metaVersion int
	errs        map[string][]error
	// MetaWrites counts PutMeta calls that succeeded.
	MetaWrites int
}

// NewStore is an empty store.
func NewStore() *Store {
	return &Store{Store: memstore.New(), meta: map[string]metaRow{}, errs: map[string][]error{}}
}

// Fail makes the next calls of method (Get, Create, Update, List, Delete, GetMeta, PutMeta)
// return errs, one each.
func (s *Store) Fail(method string, errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs[method] = append(s.errs[method], errs...)
}

func (s *Store) fail(method string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.errs[method]; len(q) > 0 {
		s.errs[method] = q[1:]
		return q[0]
	}
	return nil
}

// Get reads a replica.
func (s *Store) Get(ctx context.Context, k replication.Key) (*replication.Replica, error) {
	if err := s.fail("Get"); err != nil {
		return nil, err
	}
	return s.Store.Get(ctx, k)
}

// Create inserts a replica.
func (s *Store) Create(ctx context.Context, r *replication.Replica) error {
	if err := s.fail("Create"); err != nil {
		return err
	}
	return s.Store.Create(ctx, r)
}

// Update replaces a replica when its ETag is current.
func (s *Store) Update(ctx context.Context, r *replication.Replica) error {
	if err := s.fail("Update"); err != nil {
		return err
	}
	return s.Store.Update(ctx, r)
}

// Delete forgets a replica.
func (s *Store) Delete(ctx context.Context, k replication.Key) error {
	if err := s.fail("Delete"); err != nil {
		return err
	}
	return s.Store.Delete(ctx, k)
}

// List pages through the replicas matching f, in the table's order.
func (s *Store) List(ctx context.Context, f replication.Filter, next string, limit int) (replication.Page, error) {
	if err := s.fail("List"); err != nil {
		return replication.Page{}, err
	}
	return s.Store.List(ctx, f, next, limit)
}

// GetMeta reads a meta row.
func (s *Store) GetMeta(_ context.Context, name string) ([]byte, string, error) {
	if err := s.fail("GetMeta"); err != nil {
		return nil, "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.meta[name]
	if !ok {
		return nil, "", replication.ErrNotFound
	}
	return append([]byte(nil), m.value...), m.etag, nil
}

// PutMeta creates (etag "") or replaces (etag current) a meta row.
func (s *Store) PutMeta(_ context.Context, name string, value []byte, etag string) (string, error) {
	if err := s.fail("PutMeta"); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.meta[name]
	switch {
	case etag == "" && ok:
		return "", replication.ErrConflict
	case etag != "" && (!ok || cur.etag != etag):
		return "", replication.ErrConflict
	}
	s.metaVersion++
	m := metaRow{value: append([]byte(nil), value...), etag: "W/\"meta-" + strconv.Itoa(s.metaVersion) + "\""}
	s.meta[name] = m
	s.MetaWrites++
	return m.etag, nil
}

// Meta returns a meta row's value.
func (s *Store) Meta(name string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.meta[name]
	return m.value, ok
}

// Queue records copy messages and drops duplicates by MessageID, like Service Bus.
type Queue struct {
	mu   sync.Mutex
	msgs []*replication.CopyMessage
	seen map[string]bool
}

// Schedule drops check messages (the tests' poll passes look at the copies) and queues a
// rescheduled copy message at once (the tests' clock moves on anyway).
func (q *Queue) Schedule(ctx context.Context, m *replication.CopyMessage, _ time.Duration) error {
	if m.Check > 0 {
		return nil
	}
	return q.SendCopy(ctx, m)
}

// SendCopy queues a message.
func (q *Queue) SendCopy(_ context.Context, m *replication.CopyMessage) error {
	q.mu.Lock()
	defer q.mu.Unlock()
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

// Take removes and returns the queued messages.
func (q *Queue) Take() []*replication.CopyMessage {
	q.mu.Lock()
	defer q.mu.Unlock()
	m := q.msgs
	q.msgs = nil
	return m
}

// Len is how many messages wait.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs)
}

// Drain runs the rest of the pipeline for every queued message: start the copy, then one poll
// pass to verify it (World copies complete at once).
func Drain(ctx context.Context, e *replication.Engine, q *Queue) error {
	for _, m := range q.Take() {
		if err := e.StartCopy(ctx, m, 1); err != nil {
			return fmt.Errorf("start copy %s: %w", m.Key(), err)
		}
	}
	rep, err := e.Poll(ctx)
	if err != nil {
		return err
	}
	if rep.Errors > 0 {
		return fmt.Errorf("poll: %d errors", rep.Errors)
	}
	return nil
}
