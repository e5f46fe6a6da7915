package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dimirror/dimirror/internal/testenv"
	"github.com/dimirror/dimirror/shared/replication"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopShared()
	os.Exit(code)
}

var tableSeq atomic.Int64

// openTable opens a fresh table in the shared Azurite.
func openTable(t *testing.T) *Tables {
	t.Helper()
	az, err := testenv.SharedAzurite()
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("replicas%d%d", time.Now().UnixNano()%1e6, tableSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tb, err := Open(ctx, Options{ConnectionString: az.ConnectionString(), Table: name})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func sample(target string) *replication.Replica {
	now := time.Date(2026, 5, 1, 12, 0, 0, 123456000, time.UTC)
	return &replication.Replica{
		Key:      replication.Key{Kind: replication.KindModel, SourceID: "invoice-v1", Target: target},
		TargetID: "invoice-v1", Status: replication.StatusPending, Attempt: 1, FirstAttempt: 1,
		SourceCreated: now.Add(-time.Hour), SourceExpires: now.Add(730 * 24 * time.Hour), RequestedAt: now, UpdatedAt: now,
	}
}

func TestRoundTripEveryField(t *testing.T) {
	tb := openTable(t)
	ctx := context.Background()
	r := sample("westus2")
	r.Status = replication.StatusCopying
	r.OperationURL = "https://src.example/documentintelligence/operations/31443311838_ccfe?api-version=2024-11-30"
	r.Percent = 40
	r.ErrorCode, r.ErrorMessage = "AuthorizationExpired", "it's expired (with a quote ')"
	r.AuthorizedAt = r.RequestedAt.Add(time.Second)
	r.AuthExpiresAt = r.RequestedAt.Add(time.Hour)
	r.StartedAt = r.RequestedAt.Add(2 * time.Second)
	r.NextAttemptAt = r.RequestedAt.Add(time.Minute)
	r.Source, r.Origin = "eastus", "east.example/model/invoice-v1"
	r.FirstAttempt = r.Attempt
	r.CompletedAt = r.RequestedAt.Add(3 * time.Second)
	r.TransientSince = r.RequestedAt.Add(4 * time.Second)
	r.CopyExpires = r.SourceExpires.Add(time.Hour)
	r.ReservedAt = r.RequestedAt.Add(500 * time.Millisecond)
	if err := tb.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.ETag == "" {
		t.Fatal("Create set no ETag")
	}
	// Every field set, so a field the table forgets cannot pass as a zero that round-tripped.
	v := reflect.ValueOf(*r)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Errorf("the sample leaves %s zero: set it, so its round trip is tested", v.Type().Field(i).Name)
		}
	}
	got, err := tb.Get(ctx, r.Key)
	if err != nil {
		t.Fatal(err)
	}
	want := *r
	if *got != want {
		t.Errorf("round trip:\n got %+v\nwant %+v", *got, want)
	}
}

func TestETagConcurrency(t *testing.T) {
	tb := openTable(t)
	ctx := context.Background()
	r := sample("eastus")
	if err := tb.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := tb.Create(ctx, sample("eastus")); !errors.Is(err, replication.ErrConflict) {
		t.Fatalf("second Create: %v, want ErrConflict", err)
	}
	a, _ := tb.Get(ctx, r.Key)
	b, _ := tb.Get(ctx, r.Key)
	a.Status = replication.StatusAuthorized
	if err := tb.Update(ctx, a); err != nil {
		t.Fatal(err)
	}
	b.Status = replication.StatusFailed
	if err := tb.Update(ctx, b); !errors.Is(err, replication.ErrConflict) {
		t.Fatalf("stale Update: %v, want ErrConflict", err)
	}
	if got, _ := tb.Get(ctx, r.Key); got.Status != replication.StatusAuthorized {
		t.Errorf("status %s, the stale write won", got.Status)
	}
	if _, err := tb.Get(ctx, replication.Key{Kind: replication.KindModel, SourceID: "nope", Target: "x"}); !errors.Is(err, replication.ErrNotFound) {
		t.Errorf("Get missing: %v", err)
	}
}

func TestConcurrentWritersOneWins(t *testing.T) {
	tb := openTable(t)
	ctx := context.Background()
	r := sample("westus2")
	if err := tb.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := *r
			c.Attempt = 10 + i
			if err := tb.Update(ctx, &c); err == nil {
				wins.Add(1)
			} else if !errors.Is(err, replication.ErrConflict) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Errorf("%d writers with the same ETag won, want 1", wins.Load())
	}
}

func TestListFiltersAndPages(t *testing.T) {
	tb := openTable(t)
	ctx := context.Background()
	statuses := []replication.Status{replication.StatusPending, replication.StatusCopying, replication.StatusSucceeded}
	for i := range 25 {
		for _, tgt := range []string{"eastus", "westus2"} {
			r := sample(tgt)
			r.SourceID = fmt.Sprintf("model-%02d", i)
			r.Status = statuses[i%3]
			if i == 7 {
				r.Kind = replication.KindClassifier
			}
			if err := tb.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name string
		f    replication.Filter
		want int
	}{
		{"all", replication.Filter{}, 50},
		{"copying", replication.Filter{Status: []replication.Status{replication.StatusCopying}}, 16},
		{"in flight", replication.Filter{Status: []replication.Status{replication.StatusPending, replication.StatusCopying}}, 34},
		{"target", replication.Filter{Target: "eastus"}, 25},
		{"target and status", replication.Filter{Target: "eastus", Status: []replication.Status{replication.StatusSucceeded}}, 8},
		{"one source", replication.Filter{Kind: replication.KindModel, SourceID: "model-03"}, 2},
		{"classifiers", replication.Filter{Kind: replication.KindClassifier}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[replication.Key]bool{}
			next, pages := "", 0
			for {
				p, err := tb.List(ctx, tt.f, next, 7)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if len(p.Replicas) > 7 {
					t.Fatalf("page of %d, limit 7", len(p.Replicas))
				}
				for _, r := range p.Replicas {
					if seen[r.Key] {
						t.Fatalf("%s listed twice", r.Key)
					}
					seen[r.Key] = true
				}
				if next = p.Next; next == "" {
					break
				}
			}
			if len(seen) != tt.want {
				t.Errorf("listed %d, want %d (in %d pages)", len(seen), tt.want, pages)
			}
		})
	}
	if _, err := tb.List(ctx, replication.Filter{}, "%%%not-a-token", 10); err == nil {
		t.Error("a forged continuation token was accepted")
	}
}

func TestOpenRejectsBadConnectionStringWithoutEchoingIt(t *testing.T) {
	_, err := Open(context.Background(), Options{ConnectionString: "AccountKey=SECRETVALUE;nonsense", Table: "replicas"})
	if err == nil {
		t.Fatal("accepted a bad connection string")
	}
	if s := err.Error(); strings.Contains(s, "SECRETVALUE") {
		t.Errorf("error echoes the connection string: %s", s)
	}
}

func TestExpandDevelopmentStorage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"UseDevelopmentStorage=true", azuriteDevelopmentStorage},
		{" usedevelopmentstorage = TRUE ;", azuriteDevelopmentStorage},
		{"UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://x", azuriteDevelopmentStorage},
		{"UseDevelopmentStorage=false", "UseDevelopmentStorage=false"},
		{"AccountName=a;AccountKey=k", "AccountName=a;AccountKey=k"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := ExpandDevelopmentStorage(tt.in); got != tt.want {
			t.Errorf("ExpandDevelopmentStorage(%q) = %q", tt.in, got)
		}
	}
}

// TestRowsWrittenBeforeRules writes a row the way dimirror wrote them before replication rules
// (no Source, no Origin column) straight into the table and reads it back as a valid legacy row:
// the engine takes "" for the default source, which was the origin.
func TestRowsWrittenBeforeRules(t *testing.T) {
	tb := openTable(t)
	ctx := context.Background()
	completed := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	legacy := map[string]any{
		"PartitionKey": PartitionKey(replication.KindModel, "invoice-v1"), "RowKey": "westus2",
		"Kind": "model", "SourceId": "invoice-v1", "Target": "westus2", "TargetId": "invoice-v1",
		"Status": "succeeded", "Attempt": 1, "FirstAttempt": 1, "Percent": 100,
		"SourceCreated": "2026-03-31T08:00:00Z", "SourceCreated@odata.type": timeType,
		"SourceExpires": "2028-03-31T08:00:00Z", "SourceExpires@odata.type": timeType,
		"RequestedAt": "2026-04-01T08:59:00Z", "RequestedAt@odata.type": timeType,
		"CompletedAt": "2026-04-01T09:00:00Z", "CompletedAt@odata.type": timeType,
		"UpdatedAt": "2026-04-01T09:00:00Z", "UpdatedAt@odata.type": timeType,
	}
	body, err := json.Marshal(legacy)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tb.client.AddEntity(ctx, body, nil); err != nil {
		t.Fatal(err)
	}
	got, err := tb.Get(ctx, replication.Key{Kind: replication.KindModel, SourceID: "invoice-v1", Target: "westus2"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Source != "" || got.Origin != "" {
		t.Errorf("legacy row read with Source %q, Origin %q; want both empty", got.Source, got.Origin)
	}
	if got.Status != replication.StatusSucceeded || !got.CompletedAt.Equal(completed) || got.SourceCreated.IsZero() || got.TargetID != "invoice-v1" {
		t.Errorf("legacy row = %+v", got)
	}
	// Written back by today's code, it gains the columns only when they are set.
	got.Source, got.Origin = "source", "src.example/model/invoice-v1"
	if err := tb.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	again, err := tb.Get(ctx, got.Key)
	if err != nil {
		t.Fatal(err)
	}
	if again.Source != "source" || again.Origin != "src.example/model/invoice-v1" {
		t.Errorf("after update: Source %q, Origin %q", again.Source, again.Origin)
	}
}
