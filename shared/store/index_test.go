package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/dimirror/dimirror/internal/testenv"
	"github.com/dimirror/dimirror/shared/replication"
)

// recorder is the table client's transport in these tests: it counts requests, notes which
// ones scan the table, and can refuse chosen ones (a 400, which the client does not retry)
// to stand for a process that died before sending them.
type recorder struct {
	mu    sync.Mutex
	fail  func(*http.Request) bool
	n     atomic.Int64
	scans atomic.Int64 // queries not limited to one partition
}

func (rc *recorder) Do(req *http.Request) (*http.Response, error) {
	rc.n.Add(1)
	if req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "()") &&
		!strings.Contains(req.URL.Query().Get("$filter"), "PartitionKey eq") {
		rc.scans.Add(1)
	}
	rc.mu.Lock()
	fail := rc.fail
	rc.mu.Unlock()
	if fail != nil && fail(req) {
		return &http.Response{StatusCode: http.StatusBadRequest, Status: "400 injected", Header: http.Header{},
			Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
	}
	return http.DefaultClient.Do(req)
}

// failWhen arms the fault; nil disarms it.
func (rc *recorder) failWhen(f func(*http.Request) bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.fail = f
}

func (rc *recorder) reset() { rc.n.Store(0); rc.scans.Store(0) }

// toIndex reports whether a request reads or writes the index partition (the marker included).
func toIndex(req *http.Request) bool {
	p, _ := url.PathUnescape(req.URL.EscapedPath())
	return strings.Contains(p, "'"+IndexPartition+"'") || strings.Contains(req.URL.Query().Get("$filter"), "'"+IndexPartition+"'")
}

// rowWrite is a write of a replica row (not of the index).
func rowWrite(req *http.Request) bool {
	return (req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch) && !toIndex(req)
}

func newTableName() string { return fmt.Sprintf("idx%d%d", time.Now().UnixNano()%1e6, tableSeq.Add(1)) }

// openRecorded opens a fresh table through a recorder; name "" picks a new one.
func openRecorded(t *testing.T, name string) (*Tables, *recorder) {
	t.Helper()
	az, err := testenv.SharedAzurite()
	if err != nil {
		t.Fatal(err)
	}
	if name == "" {
		name = newTableName()
	}
	rc := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tb, err := Open(ctx, Options{ConnectionString: az.ConnectionString(), Table: name, Transport: rc})
	if err != nil {
		t.Fatal(err)
	}
	return tb, rc
}

var inFlight = replication.Filter{Status: inFlightStatuses}

// listAll follows a listing to its end and fails the test on a repeat.
func listAll(t *testing.T, tb *Tables, f replication.Filter, limit int) []replication.Replica {
	t.Helper()
	var all []replication.Replica
	seen := map[replication.Key]bool{}
	next := ""
	for {
		p, err := tb.List(context.Background(), f, next, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Replicas) > limit {
			t.Fatalf("a page of %d, limit %d", len(p.Replicas), limit)
		}
		for _, r := range p.Replicas {
			if seen[r.Key] {
				t.Fatalf("%s listed twice", r.Key)
			}
			seen[r.Key] = true
			all = append(all, r)
		}
		if next = p.Next; next == "" {
			return all
		}
	}
}

func keysOf(rs []replication.Replica) []string {
	var ks []string
	for _, r := range rs {
		ks = append(ks, r.Key.String())
	}
	slices.Sort(ks)
	return ks
}

// intents reads the index's intents of k.
func intents(t *testing.T, tb *Tables, k replication.Key) []intent {
	t.Helper()
	g := groupOf(k)
	q := "PartitionKey eq " + quote(IndexPartition) + " and RowKey gt " + quote(g) + " and RowKey lt " + quote(g+groupEnd)
	pager := tb.client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &q})
	var out []intent
	for pager.More() {
		resp, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range resp.Entities {
			var in intent
			if err := json.Unmarshal(v, &in); err != nil {
				t.Fatal(err)
			}
			out = append(out, in)
		}
	}
	return out
}

// putOld writes a row as the code before the index did: the row alone.
func putOld(t *testing.T, tb *Tables, r *replication.Replica) {
	t.Helper()
	body, err := json.Marshal(toEntity(r))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tb.client.AddEntity(context.Background(), body, nil); err != nil {
		t.Fatal(err)
	}
}

func replica(src, target string, s replication.Status) *replication.Replica {
	r := sample(target)
	r.SourceID, r.TargetID, r.Status = src, src, s
	return r
}

func TestInFlightListingsReadTheIndexOnly(t *testing.T) {
	tb, rc := openRecorded(t, "")
	ctx := context.Background()
	statuses := replication.Statuses
	var want []*replication.Replica
	for i := range 30 {
		for _, tgt := range []string{"eastus", "westus2"} {
			r := replica(fmt.Sprintf("m-%02d", i), tgt, statuses[i%len(statuses)])
			if i%7 == 0 {
				r.Kind = replication.KindClassifier
			}
			if err := tb.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
			want = append(want, r)
		}
	}
	// The reconciler's rows and the index share the table; neither may show in a listing.
	if _, err := tb.PutMeta(ctx, "watch", []byte(`{}`), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.List(ctx, inFlight, "", 1); err != nil || !tb.built.Load() { // the one-time backfill
		t.Fatalf("building the index: %v", err)
	}
	expect := func(f replication.Filter) []string {
		var ks []string
		for _, r := range want {
			if (len(f.Status) == 0 || slices.Contains(f.Status, r.Status)) && (f.Kind == "" || r.Kind == f.Kind) &&
				(f.Target == "" || r.Target == f.Target) && (f.SourceID == "" || r.SourceID == f.SourceID) {
				ks = append(ks, r.Key.String())
			}
		}
		slices.Sort(ks)
		return ks
	}
	tests := []struct {
		name  string
		f     replication.Filter
		index bool
	}{
		{"in flight", inFlight, true},
		{"copying", replication.Filter{Status: []replication.Status{replication.StatusCopying}}, true},
		{"pending to one target", replication.Filter{Status: []replication.Status{replication.StatusPending}, Target: "eastus"}, true},
		{"classifiers in flight", replication.Filter{Kind: replication.KindClassifier, Status: inFlightStatuses}, true},
		{"in flight of one source", replication.Filter{Kind: replication.KindModel, SourceID: "m-01", Status: inFlightStatuses}, false},
		{"in flight and failed", replication.Filter{Status: []replication.Status{replication.StatusPending, replication.StatusFailed}}, false},
		{"everything", replication.Filter{}, false},
		{"one source, no kind", replication.Filter{SourceID: "m-03"}, false},
		{"one target", replication.Filter{Target: "westus2"}, false},
	}
	for _, tt := range tests {
		for _, limit := range []int{1, 4, 1000} {
			t.Run(fmt.Sprintf("%s/limit=%d", tt.name, limit), func(t *testing.T) {
				rc.reset()
				got := keysOf(listAll(t, tb, tt.f, limit))
				if w := expect(tt.f); !slices.Equal(got, w) {
					t.Errorf("listed %v\nwant %v", got, w)
				}
				if scans := rc.scans.Load(); tt.index && scans != 0 {
					t.Errorf("%d table scans for a listing the index serves", scans)
				}
			})
		}
	}
	// The index is what answers: a row put in flight behind its back is not listed by it.
	putOld(t, tb, replica("m-hidden", "eastus", replication.StatusCopying))
	if got := listAll(t, tb, inFlight, 1000); slices.ContainsFunc(got, func(r replication.Replica) bool { return r.SourceID == "m-hidden" }) {
		t.Error("a row without an intent was listed: the listing did not come from the index")
	}
}

func TestTokensStayOpaqueAndValidated(t *testing.T) {
	tb, _ := openRecorded(t, "")
	ctx := context.Background()
	for i := range 5 {
		if err := tb.Create(ctx, replica(fmt.Sprintf("m-%d", i), "eastus", replication.StatusPending)); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := tb.List(ctx, inFlight, "", 2)
	if err != nil || idx.Next == "" {
		t.Fatalf("first index page: %v, next %q", err, idx.Next)
	}
	scan, err := tb.List(ctx, replication.Filter{}, "", 2)
	if err != nil || scan.Next == "" {
		t.Fatalf("first scan page: %v, next %q", err, scan.Next)
	}
	raw := func(s string) string { return encodeRaw([]byte(s)) }
	tests := []struct {
		name string
		f    replication.Filter
		next string
		ok   bool
	}{
		{"index token, index filter", inFlight, idx.Next, true},
		{"scan token, index filter (a scan begun before the index was built)", inFlight, scan.Next, true},
		{"scan token, scan filter", replication.Filter{}, scan.Next, true},
		{"index token, a filter the index does not serve", replication.Filter{}, idx.Next, false},
		{"not base64", inFlight, "%%%", false},
		{"a number", inFlight, raw("42"), false},
		{"three keys", replication.Filter{}, raw(`["a","b","c"]`), false},
		{"empty partition key", replication.Filter{}, raw(`["",""]`), false},
		{"unknown field", inFlight, raw(`{"i":"model:a:b!","x":1}`), false},
		{"group without its end", inFlight, raw(`{"i":"model:a:b"}`), false},
		{"group with a quote", inFlight, raw(`{"i":"model:a':b!"}`), false},
		{"group of two parts", inFlight, raw(`{"i":"model:a!"}`), false},
		{"trailing data", inFlight, raw(`{"i":"model:a:b!"}{}`), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tb.List(ctx, tt.f, tt.next, 2)
			if tt.ok && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tt.ok && !errors.Is(err, replication.ErrInvalidToken) {
				t.Errorf("got %v, want ErrInvalidToken", err)
			}
		})
	}
}

func TestBackfillIndexesRowsWrittenWithoutIt(t *testing.T) {
	name := newTableName()
	tb, rc := openRecorded(t, name)
	ctx := context.Background()
	var inflight []string
	for i := range 40 {
		s := replication.Statuses[i%len(replication.Statuses)]
		r := replica(fmt.Sprintf("old-%02d", i), "eastus", s)
		putOld(t, tb, r)
		if s.InFlight() {
			inflight = append(inflight, r.Key.String())
		}
	}
	slices.Sort(inflight)

	// An interrupted backfill (its intents refused after a few) writes no marker, and the
	// listing it was for scans instead: still complete.
	var upserts atomic.Int32
	rc.failWhen(func(req *http.Request) bool {
		return toIndex(req) && req.Method == http.MethodPut && upserts.Add(1) > 5
	})
	if got := keysOf(listAll(t, tb, inFlight, 1000)); !slices.Equal(got, inflight) {
		t.Fatalf("listing during a failing backfill: %v\nwant %v", got, inflight)
	}
	if tb.built.Load() {
		t.Fatal("the index counts as built after a failed backfill")
	}
	if _, err := tb.client.GetEntity(ctx, IndexPartition, indexBuiltRow, nil); statusOf(err) != http.StatusNotFound {
		t.Fatalf("marker after a failed backfill: %v", err)
	}
	rc.failWhen(nil)

	// The next in-flight listing completes it, then answers from the index.
	if got := keysOf(listAll(t, tb, inFlight, 7)); !slices.Equal(got, inflight) {
		t.Fatalf("listing after the backfill: %v\nwant %v", got, inflight)
	}
	if !tb.built.Load() {
		t.Fatal("the backfill did not complete")
	}
	// Another process sees the marker and reads the index at once, without scanning.
	other, rc2 := openRecorded(t, name)
	if got := keysOf(listAll(t, other, inFlight, 1000)); !slices.Equal(got, inflight) {
		t.Fatalf("a second process lists %v\nwant %v", got, inflight)
	}
	if s := rc2.scans.Load(); s != 0 {
		t.Errorf("a second process scanned %d times", s)
	}
	// Rows the backfill indexed leave the index when they leave flight.
	for _, k := range inflight[:3] {
		var key replication.Key
		for _, r := range listAll(t, other, inFlight, 1000) {
			if r.Key.String() == k {
				key = r.Key
			}
		}
		r, err := other.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		r.Status = replication.StatusSucceeded
		if err := other.Update(ctx, r); err != nil {
			t.Fatal(err)
		}
		if in := intents(t, other, key); len(in) != 0 {
			t.Errorf("%s left flight and kept %d intents", key, len(in))
		}
	}
	if got := keysOf(listAll(t, tb, inFlight, 1000)); !slices.Equal(got, inflight[3:]) {
		t.Errorf("after three finished: %v\nwant %v", got, inflight[3:])
	}
}

// TestCrashAtEachStep interrupts each write between its steps (the second step refused, as if
// the process died before sending it) and checks the index stays right: the row is listed
// exactly when it is in flight, and what the crash left behind is cleaned once it is dead.
func TestCrashAtEachStep(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		// setup leaves the row as the step found it; nil means no row.
		setup replication.Status
		// step runs the write with the fault armed and returns the key.
		step func(t *testing.T, tb *Tables, rc *recorder, k replication.Key)
		// listed: the row is in flight after the crash; cleanedAfter: how long until what the
		// crash left is gone (0: at the first listing).
		listed       bool
		cleanedAfter time.Duration
	}{
		{
			name: "create: intent written, row never sent",
			step: func(t *testing.T, tb *Tables, rc *recorder, k replication.Key) {
				rc.failWhen(rowWrite)
				if err := tb.Create(ctx, replica(k.SourceID, k.Target, replication.StatusPending)); err == nil {
					t.Fatal("the refused create succeeded")
				}
			},
			cleanedAfter: staleIntent + time.Minute,
		},
		{
			name:  "into flight: intent written, row never sent",
			setup: replication.StatusFailed,
			step: func(t *testing.T, tb *Tables, rc *recorder, k replication.Key) {
				r, _ := tb.Get(ctx, k)
				r.Status = replication.StatusPending
				rc.failWhen(rowWrite)
				if err := tb.Update(ctx, r); err == nil {
					t.Fatal("the refused update succeeded")
				}
			},
			cleanedAfter: staleIntent + time.Minute,
		},
		{
			name:  "out of flight: row written, intents never deleted",
			setup: replication.StatusCopying,
			step: func(t *testing.T, tb *Tables, rc *recorder, k replication.Key) {
				r, _ := tb.Get(ctx, k)
				r.Status = replication.StatusSucceeded
				rc.failWhen(toIndex)
				if err := tb.Update(ctx, r); err != nil {
					t.Fatalf("the row write failed: %v", err)
				}
			},
		},
		{
			name:  "delete: row deleted, intents never deleted",
			setup: replication.StatusAuthorized,
			step: func(t *testing.T, tb *Tables, rc *recorder, k replication.Key) {
				rc.failWhen(toIndex)
				if err := tb.Delete(ctx, k); err != nil {
					t.Fatal(err)
				}
			},
			// The row's create left an intent from "no row", which a row gone matches: it
			// could be a create on its way.
			cleanedAfter: staleIntent + time.Minute,
		},
		{
			name:  "within flight: row written, nothing else to do",
			setup: replication.StatusAuthorized,
			step: func(t *testing.T, tb *Tables, rc *recorder, k replication.Key) {
				r, _ := tb.Get(ctx, k)
				r.Status = replication.StatusCopying
				rc.failWhen(toIndex)
				if err := tb.Update(ctx, r); err != nil {
					t.Fatalf("the row write failed: %v", err)
				}
			},
			listed: true,
		},
		{
			name:  "within flight from another process (no intent known): intent written, row never sent",
			setup: replication.StatusCopying,
			step: func(t *testing.T, tb *Tables, rc *recorder, k replication.Key) {
				tb.known = knownSet{}
				r, _ := tb.Get(ctx, k)
				tb.known = knownSet{}
				r.Percent = 50
				rc.failWhen(rowWrite)
				if err := tb.Update(ctx, r); err == nil {
					t.Fatal("the refused update succeeded")
				}
			},
			listed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb, rc := openRecorded(t, "")
			clock := time.Now()
			var mu sync.Mutex
			tb.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
			if _, err := tb.List(ctx, inFlight, "", 10); err != nil || !tb.built.Load() { // builds the (empty) index
				t.Fatalf("building the index: %v", err)
			}
			k := replication.Key{Kind: replication.KindModel, SourceID: "crash", Target: "eastus"}
			if tt.setup != "" {
				if err := tb.Create(ctx, replica(k.SourceID, k.Target, tt.setup)); err != nil {
					t.Fatal(err)
				}
			}
			tt.step(t, tb, rc, k)
			rc.failWhen(nil)
			if len(intents(t, tb, k)) == 0 && tt.listed {
				t.Fatal("a row in flight has no intent")
			}
			got := listAll(t, tb, inFlight, 1000)
			if listed := len(got) == 1 && got[0].Key == k; listed != tt.listed || len(got) > 1 {
				t.Fatalf("listed %v after the crash, want listed=%v", keysOf(got), tt.listed)
			}
			if tt.listed {
				return
			}
			left := len(intents(t, tb, k))
			if tt.cleanedAfter == 0 {
				if left != 0 {
					t.Errorf("%d dead intents left after a listing", left)
				}
				return
			}
			// The intent may still announce a write: it stays until it is older than any write
			// sent for it could land.
			if left == 0 {
				t.Fatal("a live intent was deleted")
			}
			mu.Lock()
			clock = clock.Add(tt.cleanedAfter)
			mu.Unlock()
			listAll(t, tb, inFlight, 1000)
			if left := len(intents(t, tb, k)); left != 0 {
				t.Errorf("%d stale intents left %s later", left, tt.cleanedAfter)
			}
		})
	}
}

// TestCleanerNeverDropsAPendingWrite is the race the intents' From guards against: a writer
// has recorded its intent to move a finished row back in flight, a listing reads the index
// and the row (still finished) before the write lands, then the write lands.
func TestCleanerNeverDropsAPendingWrite(t *testing.T) {
	tb, _ := openRecorded(t, "")
	ctx := context.Background()
	if _, err := tb.List(ctx, inFlight, "", 10); err != nil {
		t.Fatal(err)
	}
	r := replica("race", "eastus", replication.StatusSucceeded)
	if err := tb.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	// A writer that lost an earlier race (starting from a version long gone) and the writer
	// about to win both record intents: the loser's must not hide the winner's.
	if err := tb.writeIntent(ctx, r.Key, `W/"datetime'2001-01-01T00%3A00%3A00Z'"`); err != nil {
		t.Fatal(err)
	}
	if err := tb.writeIntent(ctx, r.Key, r.ETag); err != nil {
		t.Fatal(err)
	}
	if got := listAll(t, tb, inFlight, 1000); len(got) != 0 {
		t.Fatalf("a finished row was listed: %v", keysOf(got))
	}
	in := intents(t, tb, r.Key)
	if len(in) != 1 || in[0].From != r.ETag {
		t.Fatalf("intents after the listing: %+v; want only the pending writer's", in)
	}
	// The write lands (this process knows nothing of the intent: it writes its own too).
	tb.known = knownSet{}
	r.Status = replication.StatusPending
	if err := tb.Update(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got := listAll(t, tb, inFlight, 1000); len(got) != 1 || got[0].Key != r.Key {
		t.Fatalf("the row moved in flight is not listed: %v", keysOf(got))
	}
}

func TestWritesWithinFlightNeedNoIntent(t *testing.T) {
	tb, rc := openRecorded(t, "")
	ctx := context.Background()
	if _, err := tb.List(ctx, inFlight, "", 10); err != nil {
		t.Fatal(err)
	}
	r := replica("steps", "eastus", replication.StatusPending)
	if err := tb.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		status   replication.Status
		requests int64
	}{
		{replication.StatusAuthorized, 1}, // the row write alone
		{replication.StatusCopying, 1},
		{replication.StatusSucceeded, 2}, // the row, then the query of its intents (then deletes)
		{replication.StatusPending, 2},   // back in flight: the intent, then the row
	}
	for _, s := range steps {
		got, err := tb.Get(ctx, r.Key)
		if err != nil {
			t.Fatal(err)
		}
		got.Status = s.status
		rc.reset()
		if err := tb.Update(ctx, got); err != nil {
			t.Fatal(err)
		}
		// Leaving flight also deletes the intents it finds: count the query, not the deletes.
		if n := rc.n.Load(); n < s.requests || (s.status.InFlight() && n != s.requests) {
			t.Errorf("to %s: %d requests, want %d", s.status, n, s.requests)
		}
	}
}

// A row moved into flight without an intent after the index was built — by an older binary
// writing the same table during a rollout — is found again once this process checks the index
// against the rows (hourly), not hidden from the poller for ever.
func TestIndexHealsRowsWrittenWithoutIntents(t *testing.T) {
	tb, _ := openRecorded(t, newTableName())
	var mu sync.Mutex
	clock := time.Now()
	tb.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	if err := tb.Create(context.Background(), replica("new-01", "eastus", replication.StatusPending)); err != nil {
		t.Fatal(err)
	}
	if got := keysOf(listAll(t, tb, inFlight, 1000)); len(got) != 1 || !tb.built.Load() {
		t.Fatalf("index not built: %v", got)
	}
	putOld(t, tb, replica("old-01", "eastus", replication.StatusCopying))
	if got := keysOf(listAll(t, tb, inFlight, 1000)); len(got) != 1 {
		t.Fatalf("before the check the old row is not indexed yet: %v", got)
	}
	mu.Lock()
	clock = clock.Add(rebackfillEvery + time.Minute)
	mu.Unlock()
	if got := keysOf(listAll(t, tb, inFlight, 1000)); len(got) != 2 {
		t.Errorf("after the hourly check: %v, want both rows in flight", got)
	}
}
