// Package memstore is a replica store in memory with the table's semantics: one row per
// replica, ETag-checked writes, filtered listings in (PartitionKey, RowKey) order paged with
// opaque continuation tokens, and deletes for pruning. `dimirror copy` runs the engine on it
// (a one-off copy has nothing to remember), and the domain's tests use it as their store.
package memstore

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"sync"

	"github.com/dimirror/dimirror/shared/replication"
)

// MaxPage is the most replicas one List call returns, as the table answers at most 1000 rows
// per page; a larger or non-positive limit reads that many.
const MaxPage = 1000

// Store is a replication.Store and replication.RowDeleter in memory, safe for concurrent use.
// The zero value is not usable: call New.
type Store struct {
	mu      sync.Mutex
	rows    map[replication.Key]replication.Replica
	version uint64
}

var (
	_ replication.Store      = (*Store)(nil)
	_ replication.RowDeleter = (*Store)(nil)
)

// New is an empty store.
func New() *Store { return &Store{rows: map[replication.Key]replication.Replica{}} }

// nextETag is a new ETag, in the table's weak form. Called with s.mu held.
func (s *Store) nextETag() string {
	s.version++
	return `W/"` + strconv.FormatUint(s.version, 10) + `"`
}

// Get reads one replica; replication.ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, k replication.Key) (*replication.Replica, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rows[k]
	if !ok {
		return nil, replication.ErrNotFound
	}
	return &r, nil
}

// Create inserts r and sets its ETag; replication.ErrConflict when the row exists.
func (s *Store) Create(ctx context.Context, r *replication.Replica) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rows[r.Key]; ok {
		return replication.ErrConflict
	}
	r.ETag = s.nextETag()
	s.rows[r.Key] = *r
	return nil
}

// Update replaces the row when r.ETag is current and sets the new ETag. A stale ETag, or a row
// deleted meanwhile, is replication.ErrConflict, as the table answers an If-Match that matches
// nothing.
func (s *Store) Update(ctx context.Context, r *replication.Replica) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.rows[r.Key]
	if !ok || cur.ETag != r.ETag {
		return replication.ErrConflict
	}
	r.ETag = s.nextETag()
	s.rows[r.Key] = *r
	return nil
}

// Delete forgets a replica; a missing row is not an error (the table's delete is idempotent too).
func (s *Store) Delete(ctx context.Context, k replication.Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rows, k)
	return nil
}

// Put writes r as given, whatever the row held, and sets its ETag: a test or a tool seeding state.
func (s *Store) Put(r replication.Replica) replication.Replica {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.ETag = s.nextETag()
	s.rows[r.Key] = r
	return r
}

// Row reads a replica without a context; ok is false when there is none.
func (s *Store) Row(k replication.Key) (replication.Replica, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rows[k]
	return r, ok
}

// Len is how many replicas the store holds.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rows)
}

// List returns up to limit replicas matching f after the continuation token next, in the
// table's order (PartitionKey "<kind>:<sourceId>", then the target). The token names the last
// row returned, not a position, so rows created or deleted between pages neither repeat nor
// hide the rows after it; a token this package did not issue is replication.ErrInvalidToken.
func (s *Store) List(ctx context.Context, f replication.Filter, next string, limit int) (replication.Page, error) {
	if err := ctx.Err(); err != nil {
		return replication.Page{}, err
	}
	var after *rowKey
	if next != "" {
		k, err := decodeToken(next)
		if err != nil {
			return replication.Page{}, err
		}
		after = &k
	}
	if limit <= 0 || limit > MaxPage {
		limit = MaxPage
	}
	s.mu.Lock()
	all := make([]replication.Replica, 0, len(s.rows))
	for _, r := range s.rows {
		if matches(f, &r) && (after == nil || compareKeys(keyOf(r.Key), *after) > 0) {
			all = append(all, r)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(all, func(a, b replication.Replica) int { return compareKeys(keyOf(a.Key), keyOf(b.Key)) })
	p := replication.Page{Replicas: all}
	if len(all) > limit {
		p.Replicas = all[:limit:limit]
		p.Next = encodeToken(keyOf(all[limit-1].Key))
	}
	return p, nil
}

// matches applies a Filter: zero fields match everything, Status matches any listed status.
func matches(f replication.Filter, r *replication.Replica) bool {
	switch {
	case f.Kind != "" && r.Kind != f.Kind,
		f.SourceID != "" && r.SourceID != f.SourceID,
		f.Target != "" && r.Target != f.Target,
		len(f.Status) > 0 && !slices.Contains(f.Status, r.Status):
		return false
	}
	return true
}

// rowKey is a row's place in the table's order.
type rowKey struct {
	Partition string `json:"p"`
	Row       string `json:"r"`
}

func keyOf(k replication.Key) rowKey {
	return rowKey{Partition: string(k.Kind) + ":" + k.SourceID, Row: k.Target}
}

func compareKeys(a, b rowKey) int {
	return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Row, b.Row))
}

// tokenVersion marks this package's tokens, so a token of another store (or a hand-made one)
// is refused instead of silently read as a place in the listing.
const tokenVersion = "m1"

type token struct {
	V     string `json:"v"`
	After rowKey `json:"a"`
}

func encodeToken(k rowKey) string {
	b, _ := json.Marshal(token{V: tokenVersion, After: k}) // two strings: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(s string) (rowKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return rowKey{}, replication.ErrInvalidToken
	}
	var t token
	if json.Unmarshal(b, &t) != nil || t.V != tokenVersion || t.After.Partition == "" || t.After.Row == "" {
		return rowKey{}, replication.ErrInvalidToken
	}
	return t.After, nil
}
