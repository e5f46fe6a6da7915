package memstore_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dimirror/dimirror/internal/memstore"
	"github.com/dimirror/dimirror/shared/replication"
)

func key(kind replication.Kind, id, target string) replication.Key {
	return replication.Key{Kind: kind, SourceID: id, Target: target}
}

func TestWritesCheckTheETag(t *testing.T) {
	ctx := context.Background()
	k := key(replication.KindModel, "invoice-v1", "westus2")
	tests := []struct {
		name string
		// run does one write on a store holding k (created) and returns its error.
		run  func(s *memstore.Store, created replication.Replica) error
		want error
	}{
		{"create again", func(s *memstore.Store, created replication.Replica) error {
			return s.Create(ctx, &replication.Replica{Key: k})
		}, replication.ErrConflict},
		{"update with the current etag", func(s *memstore.Store, created replication.Replica) error {
			created.Status = replication.StatusAuthorized
			return s.Update(ctx, &created)
		}, nil},
		{"update with a stale etag", func(s *memstore.Store, created replication.Replica) error {
			fresh := created
			if err := s.Update(ctx, &fresh); err != nil {
				return err
			}
			return s.Update(ctx, &created)
		}, replication.ErrConflict},
		{"update with no etag", func(s *memstore.Store, created replication.Replica) error {
			created.ETag = ""
			return s.Update(ctx, &created)
		}, replication.ErrConflict},
		{"update of a deleted row", func(s *memstore.Store, created replication.Replica) error {
			if err := s.Delete(ctx, k); err != nil {
				return err
			}
			return s.Update(ctx, &created)
		}, replication.ErrConflict},
		{"update of a row that was never created", func(s *memstore.Store, created replication.Replica) error {
			other := created
			other.Target = "eastus"
			return s.Update(ctx, &other)
		}, replication.ErrConflict},
		{"delete twice", func(s *memstore.Store, created replication.Replica) error {
			if err := s.Delete(ctx, k); err != nil {
				return err
			}
			return s.Delete(ctx, k)
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := memstore.New()
			created := replication.Replica{Key: k, Status: replication.StatusPending, Attempt: 1}
			if err := s.Create(ctx, &created); err != nil || created.ETag == "" {
				t.Fatalf("Create: %v, etag %q", err, created.ETag)
			}
			if err := tt.run(s, created); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestGetReturnsACopyWithTheCurrentETag(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	k := key(replication.KindClassifier, "router-v1", "eastus")
	if _, err := s.Get(ctx, k); !errors.Is(err, replication.ErrNotFound) {
		t.Fatalf("Get of a missing row: %v, want ErrNotFound", err)
	}
	r := replication.Replica{Key: k, Status: replication.StatusPending}
	if err := s.Create(ctx, &r); err != nil {
		t.Fatal(err)
	}
	first := r.ETag
	r.Status = replication.StatusCopying
	if err := s.Update(ctx, &r); err != nil {
		t.Fatal(err)
	}
	if r.ETag == first {
		t.Errorf("Update kept the etag %q", first)
	}
	got, err := s.Get(ctx, k)
	if err != nil || got.Status != replication.StatusCopying || got.ETag != r.ETag {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	got.Status = replication.StatusFailed // the caller's copy, not the stored row
	if again, _ := s.Get(ctx, k); again.Status != replication.StatusCopying {
		t.Errorf("changing a returned replica changed the store: %s", again.Status)
	}
	if row, ok := s.Row(k); !ok || row.Status != replication.StatusCopying || s.Len() != 1 {
		t.Errorf("Row = %+v, %v; Len %d", row, ok, s.Len())
	}
}

// seeded holds model a and b in westus2 and eastus, classifier r in eastus, in mixed states.
func seeded(t *testing.T) *memstore.Store {
	t.Helper()
	s := memstore.New()
	for _, r := range []replication.Replica{
		{Key: key(replication.KindModel, "b", "westus2"), Status: replication.StatusFailed},
		{Key: key(replication.KindModel, "a", "westus2"), Status: replication.StatusSucceeded},
		{Key: key(replication.KindModel, "a", "eastus"), Status: replication.StatusCopying},
		{Key: key(replication.KindModel, "b", "eastus"), Status: replication.StatusPending},
		{Key: key(replication.KindClassifier, "r", "eastus"), Status: replication.StatusSucceeded},
		// "a-b" sorts after "a" as a partition key, though "a-b→" sorts before "a→" as a Key.String
		{Key: key(replication.KindModel, "a-b", "eastus"), Status: replication.StatusAuthorized},
	} {
		if err := s.Create(context.Background(), &r); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func names(rs []replication.Replica) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%s:%s/%s", r.Kind, r.SourceID, r.Target)
	}
	return out
}

func TestListFiltersInTableOrder(t *testing.T) {
	tests := []struct {
		name   string
		filter replication.Filter
		want   []string
	}{
		{"everything", replication.Filter{}, []string{"classifier:r/eastus", "model:a/eastus", "model:a/westus2", "model:a-b/eastus", "model:b/eastus", "model:b/westus2"}},
		{"kind", replication.Filter{Kind: replication.KindClassifier}, []string{"classifier:r/eastus"}},
		{"source id", replication.Filter{Kind: replication.KindModel, SourceID: "a"}, []string{"model:a/eastus", "model:a/westus2"}},
		{"target", replication.Filter{Target: "westus2"}, []string{"model:a/westus2", "model:b/westus2"}},
		{"statuses", replication.Filter{Status: []replication.Status{replication.StatusPending, replication.StatusAuthorized, replication.StatusCopying}},
			[]string{"model:a/eastus", "model:a-b/eastus", "model:b/eastus"}},
		{"all fields", replication.Filter{Kind: replication.KindModel, SourceID: "b", Target: "westus2", Status: []replication.Status{replication.StatusFailed}},
			[]string{"model:b/westus2"}},
		{"nothing matches", replication.Filter{SourceID: "zzz"}, []string{}},
	}
	s := seeded(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := s.List(context.Background(), tt.filter, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(p.Replicas); !slices.Equal(got, tt.want) || p.Next != "" {
				t.Errorf("got %v (next %q), want %v", got, p.Next, tt.want)
			}
		})
	}
}

// Paging by any page size yields every row once, in order, and the last page has no token.
func TestListPages(t *testing.T) {
	ctx := context.Background()
	full, _ := seeded(t).List(ctx, replication.Filter{}, "", 0)
	want := names(full.Replicas)
	for _, limit := range []int{1, 2, 4, 5, 6, 7, memstore.MaxPage, memstore.MaxPage + 1} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			s := seeded(t)
			var got []string
			next, pages := "", 0
			for {
				p, err := s.List(ctx, replication.Filter{}, next, limit)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if len(p.Replicas) > limit {
					t.Fatalf("page of %d rows with limit %d", len(p.Replicas), limit)
				}
				got = append(got, names(p.Replicas)...)
				if next = p.Next; next == "" {
					break
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
			if wantPages := max(1, (len(want)+min(limit, memstore.MaxPage)-1)/min(limit, memstore.MaxPage)); pages != wantPages {
				t.Errorf("%d pages, want %d", pages, wantPages)
			}
		})
	}
}

// A token names the last row returned: deleting that row or adding rows before it between
// pages neither repeats nor skips the rows after it.
func TestTokensSurviveChangesBetweenPages(t *testing.T) {
	ctx := context.Background()
	s := seeded(t)
	p, err := s.List(ctx, replication.Filter{}, "", 2)
	if err != nil || p.Next == "" {
		t.Fatalf("first page %v, %v", names(p.Replicas), err)
	}
	if err := s.Delete(ctx, p.Replicas[1].Key); err != nil {
		t.Fatal(err)
	}
	s.Put(replication.Replica{Key: key(replication.KindClassifier, "a", "eastus"), Status: replication.StatusPending})
	rest, err := s.List(ctx, replication.Filter{}, p.Next, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"model:a/westus2", "model:a-b/eastus", "model:b/eastus", "model:b/westus2"}
	if got := names(rest.Replicas); !slices.Equal(got, want) {
		t.Errorf("after the changes: %v, want %v", got, want)
	}
}

func TestListRefusesTokensItDidNotIssue(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	tests := []struct{ name, token string }{
		{"not base64", "!!!"},
		{"a number", "2"},
		{"not json", enc("model:a")},
		{"another version", enc(`{"v":"m0","a":{"p":"model:a","r":"eastus"}}`)},
		{"no version", enc(`{"a":{"p":"model:a","r":"eastus"}}`)},
		{"no row", enc(`{"v":"m1","a":{"p":"model:a"}}`)},
		{"a table token", enc(`["model:a","eastus"]`)},
	}
	s := seeded(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p, err := s.List(context.Background(), replication.Filter{}, tt.token, 10); !errors.Is(err, replication.ErrInvalidToken) {
				t.Errorf("List(%q) = %v, %v; want ErrInvalidToken", tt.token, names(p.Replicas), err)
			}
		})
	}
}

func TestCallsHonourTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := seeded(t)
	k := key(replication.KindModel, "a", "eastus")
	r, _ := s.Row(k)
	calls := map[string]func() error{
		"Get": func() error { _, err := s.Get(ctx, k); return err },
		"Create": func() error {
			return s.Create(ctx, &replication.Replica{Key: key(replication.KindModel, "new", "eastus")})
		},
		"Update": func() error { return s.Update(ctx, &r) },
		"Delete": func() error { return s.Delete(ctx, k) },
		"List":   func() error { _, err := s.List(ctx, replication.Filter{}, "", 0); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s on a canceled context: %v", name, err)
		}
	}
	if got, _ := s.Row(k); got.ETag != r.ETag || s.Len() != 6 {
		t.Error("a call on a canceled context changed the store")
	}
}

// Concurrent writers of one row: exactly one wins each round, as with the table's If-Match.
func TestConcurrentUpdatesOneWins(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	k := key(replication.KindModel, "invoice-v1", "westus2")
	base := replication.Replica{Key: k, Status: replication.StatusPending}
	if err := s.Create(ctx, &base); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := base
			r.ErrorMessage = strings.Repeat("x", i)
			err := s.Update(ctx, &r)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, replication.ErrConflict):
				conflicts++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || conflicts != 15 {
		t.Errorf("%d updates won and %d conflicted, want 1 and 15", wins, conflicts)
	}
}
