package reconciletest

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/dimirror/dimirror/shared/replication"
)

type metaRow struct {
	value []byte
	etag  string
}

// Store keeps replica rows and meta rows in memory with ETags, like the table.
type Store struct {
	mu      sync.Mutex
	rows    map[replication.Key]replication.Replica
	meta    map[string]metaRow
	version int
	errs    map[string][]error
	// MetaWrites counts PutMeta calls that succeeded.
	MetaWrites int
}

// NewStore is an empty store.
func NewStore() *Store {
	return &Store{rows: map[replication.Key]replication.Replica{}, meta: map[string]metaRow{}, errs: map[string][]error{}}
}

// Fail makes the next calls of method (Get, Create, Update, List, Delete, GetMeta, PutMeta)
// return errs, one each.
func (s *Store) Fail(method string, errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs[method] = append(s.errs[method], errs...)
}

func (s *Store) fail(method string) error {
	if q := s.errs[method]; len(q) > 0 {
		s.errs[method] = q[1:]
		return q[0]
	}
	return nil
}

func (s *Store) etag() string {
	s.version++
	return "W/\"" + strconv.Itoa(s.version) + "\""
}

// Get reads a replica.
func (s *Store) Get(_ context.Context, k replication.Key) (*replication.Replica, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail("Get"); err != nil {
		return nil, err
	}
	r, ok := s.rows[k]
	if !ok {
		return nil, replication.ErrNotFound
	}
	return &r, nil
}

// Create inserts a replica.
func (s *Store) Create(_ context.Context, r *replication.Replica) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail("Create"); err != nil {
		return err
	}
	if _, ok := s.rows[r.Key]; ok {
		return replication.ErrConflict
	}
	r.ETag = s.etag()
	s.rows[r.Key] = *r
	return nil
}

// Update replaces a replica when its ETag is current.
func (s *Store) Update(_ context.Context, r *replication.Replica) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail("Update"); err != nil {
		return err
	}
	cur, ok := s.rows[r.Key]
	if !ok || cur.ETag != r.ETag {
		return replication.ErrConflict
	}
	r.ETag = s.etag()
	s.rows[r.Key] = *r
	return nil
}

// Delete forgets a replica.
func (s *Store) Delete(_ context.Context, k replication.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail("Delete"); err != nil {
		return err
	}
	delete(s.rows, k)
	return nil
}

// List pages through the replicas matching f, in key order.
func (s *Store) List(_ context.Context, f replication.Filter, next string, limit int) (replication.Page, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail("List"); err != nil {
		return replication.Page{}, err
	}
	var all []replication.Replica
	for _, r := range s.rows {
		if f.Kind != "" && r.Kind != f.Kind || f.SourceID != "" && r.SourceID != f.SourceID || f.Target != "" && r.Target != f.Target {
			continue
		}
		if len(f.Status) > 0 && !contains(f.Status, r.Status) {
			continue
		}
		all = append(all, r)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Key.String() < all[j].Key.String() })
	start := 0
	if next != "" {
		n, err := strconv.Atoi(next)
		if err != nil || n < 0 || n > len(all) {
			return replication.Page{}, replication.ErrInvalidToken
		}
		start = n
	}
	if limit <= 0 {
		limit = 1000
	}
	end := min(start+limit, len(all))
	p := replication.Page{Replicas: all[start:end]}
	if end < len(all) {
		p.Next = strconv.Itoa(end)
	}
	return p, nil
}

func contains(list []replication.Status, s replication.Status) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Len is how many replicas there are.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rows)
}

// Row returns a replica (zero when absent).
func (s *Store) Row(k replication.Key) (replication.Replica, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rows[k]
	return r, ok
}

// Put writes a replica as given (test set-up).
func (s *Store) Put(r replication.Replica) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.ETag = s.etag()
	s.rows[r.Key] = r
}

// GetMeta reads a meta row.
func (s *Store) GetMeta(_ context.Context, name string) ([]byte, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail("GetMeta"); err != nil {
		return nil, "", err
	}
	m, ok := s.meta[name]
	if !ok {
		return nil, "", replication.ErrNotFound
	}
	return append([]byte(nil), m.value...), m.etag, nil
}

// PutMeta creates (etag "") or replaces (etag current) a meta row.
func (s *Store) PutMeta(_ context.Context, name string, value []byte, etag string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail("PutMeta"); err != nil {
		return "", err
	}
	cur, ok := s.meta[name]
	switch {
	case etag == "" && ok:
		return "", replication.ErrConflict
	case etag != "" && (!ok || cur.etag != etag):
		return "", replication.ErrConflict
	}
	m := metaRow{value: append([]byte(nil), value...), etag: s.etag()}
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
