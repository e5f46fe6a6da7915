package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dimirror/dimirror/shared/replication"
)

// fuzzAccessToken is what the fake targets put in every authorization: it must never reach an
// answer.
const fuzzAccessToken = "fuzz-access-token-3f9a1c"

// FuzzAuthorizeBody sends arbitrary bodies to POST /api/replications (the webhook) through the
// real handler and a fake-backed engine. Whatever the body, the handler must not panic, must
// answer JSON with a status the API documents, must agree with the decoder about what is
// valid, must never echo an access token, and a 2xx must have recorded exactly the replicas it
// reports.
func FuzzAuthorizeBody(f *testing.F) {
	// testdata/fuzz/FuzzAuthorizeBody holds the corpus; these add a few shapes in code.
	for _, s := range []string{
		`{"sourceId":"invoice-v1"}`,
		`{"kind":"classifier","sourceId":"router-v1","targets":["westus2"],"targetId":"router-copy"}`,
		`{"sourceId":"missing-model"}`,
		`{"sourceId":"invoice-v1","targets":["westus2","westus2"]}`,
		`{"sourceId":"invoice-v1","targets":[]}`,
		`{"sourceId":"invoice-v1","kind":null,"targets":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, decodeField, decodeErr := decodeReplicationRequest(bytes.NewReader(body))
		checkDecoded(t, body, req, decodeField, decodeErr)

		fx := newFuzzFixture()
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/api/replications", bytes.NewReader(body))
		fx.app.Authorize(rec, r)

		res := rec.Result()
		out := rec.Body.Bytes()
		if bytes.Contains(out, []byte(fuzzAccessToken)) || bytes.Contains(out, []byte("accessToken")) {
			t.Fatalf("the answer holds the authorization's access token: %s", out)
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("Content-Type %q, want JSON", ct)
		}
		if !json.Valid(out) {
			t.Fatalf("the answer is not JSON: %q", out)
		}
		switch res.StatusCode {
		case http.StatusBadRequest, http.StatusNotFound:
			var eb errorBody
			if err := json.Unmarshal(out, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
				t.Fatalf("%d without an error code and message: %s", res.StatusCode, out)
			}
			if res.StatusCode == http.StatusNotFound && eb.Error.Code != "SourceNotFound" {
				t.Fatalf("404 with code %q: %s", eb.Error.Code, out)
			}
			if decodeErr != nil && (eb.Error.Code != "InvalidRequest" || eb.Error.Target != decodeField) {
				t.Fatalf("decoder said %v (field %q); the handler answered %s", decodeErr, decodeField, out)
			}
			if n := fx.store.count(); n != 0 {
				t.Fatalf("a %d answer left %d rows behind", res.StatusCode, n)
			}
			if n := fx.queue.count(); n != 0 {
				t.Fatalf("a %d answer queued %d copies", res.StatusCode, n)
			}
		case http.StatusOK, http.StatusAccepted:
			if decodeErr != nil {
				t.Fatalf("the decoder refused the body (%v) but the handler answered %d", decodeErr, res.StatusCode)
			}
			checkAccepted(t, fx, req, res, out)
		default:
			t.Fatalf("status %d is not one the webhook answers: %s", res.StatusCode, out)
		}
	})
}

// checkDecoded holds the decoder to its contract: an error names a field only when it is about
// one, and a body it accepts is one JSON object that re-encodes to the same request.
func checkDecoded(t *testing.T, body []byte, req replicationRequest, field string, err error) {
	t.Helper()
	if err != nil {
		if err.Error() == "" {
			t.Fatal("empty error message")
		}
		return
	}
	if field != "" {
		t.Fatalf("no error but field %q", field)
	}
	if !json.Valid(body) {
		// The decoder reads one value; anything after it must be refused.
		t.Fatalf("accepted a body that is not one JSON value: %q", body)
	}
	again, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	back, f2, err := decodeReplicationRequest(bytes.NewReader(again))
	if err != nil || f2 != "" {
		t.Fatalf("re-encoded request %s does not decode: %v", again, err)
	}
	if !reflect.DeepEqual(normalized(back), normalized(req)) {
		t.Fatalf("round trip: got %#v, want %#v", back, req)
	}
}

// normalized treats a null and an empty target list alike (both mean "every target").
func normalized(r replicationRequest) replicationRequest {
	if len(r.Targets) == 0 {
		r.Targets = nil
	}
	return r
}

// checkAccepted verifies a 2xx answer against the request and the fakes' state.
func checkAccepted(t *testing.T, fx *fuzzFixture, req replicationRequest, res *http.Response, out []byte) {
	t.Helper()
	var ans ReplicationAnswer
	if err := json.Unmarshal(out, &ans); err != nil {
		t.Fatalf("2xx answer does not decode: %v: %s", err, out)
	}
	kind, err := replication.ParseKind(req.Kind)
	if err != nil {
		t.Fatalf("2xx for an invalid kind %q", req.Kind)
	}
	if ans.Kind != string(kind) || ans.SourceID != req.SourceID {
		t.Fatalf("answer is about %s %q, request was %s %q", ans.Kind, ans.SourceID, kind, req.SourceID)
	}
	if !fx.source.has(kind, req.SourceID) {
		t.Fatalf("2xx for %s %q, which the source does not hold", kind, req.SourceID)
	}
	want := slices.Clone(req.Targets)
	if len(want) == 0 {
		want = fx.app.Engine.TargetNames()
	}
	sort.Strings(want)
	var got []string
	inFlight := false
	for _, v := range ans.Replicas {
		got = append(got, v.Target)
		if v.SourceID != req.SourceID || v.Kind != string(kind) {
			t.Fatalf("replica %+v does not belong to the request", v)
		}
		targetID := req.TargetID
		if targetID == "" {
			targetID = req.SourceID
		}
		if v.TargetID != targetID {
			t.Fatalf("replica target id %q, want %q", v.TargetID, targetID)
		}
		st, err := replication.ParseStatus(v.Status)
		if err != nil {
			t.Fatalf("replica status: %v", err)
		}
		inFlight = inFlight || st.InFlight()
		row, ok := fx.store.get(replication.Key{Kind: kind, SourceID: req.SourceID, Target: v.Target})
		if !ok || string(row.Status) != v.Status {
			t.Fatalf("replica %s→%s answered %s but the row is %+v (present %t)", req.SourceID, v.Target, v.Status, row.Status, ok)
		}
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Fatalf("replicas for targets %v, want %v", got, want)
	}
	if fx.store.count() != len(want) || fx.queue.count() != len(want) {
		t.Fatalf("%d rows and %d copy messages for %d targets", fx.store.count(), fx.queue.count(), len(want))
	}
	if wantStatus := map[bool]int{true: http.StatusAccepted, false: http.StatusOK}[inFlight]; res.StatusCode != wantStatus {
		t.Fatalf("status %d with replicas in flight %t", res.StatusCode, inFlight)
	}
	if loc := res.Header.Get("Location"); loc != StatusPath(kind, req.SourceID) {
		t.Fatalf("Location %q, want %q", loc, StatusPath(kind, req.SourceID))
	}
}

// fuzzFixture is an App on plain in-memory fakes: one source holding a model and a classifier,
// two targets.
type fuzzFixture struct {
	app    *App
	store  *fakeStore
	queue  *fakeQueue
	source *fakeResource
}

var fuzzEpoch = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func newFuzzFixture() *fuzzFixture {
	now := func() time.Time { return fuzzEpoch }
	src := newFakeResource("source", now)
	src.models[fakeKey(replication.KindModel, "invoice-v1")] = replication.Model{ID: "invoice-v1", Created: fuzzEpoch.Add(-time.Hour), Expires: fuzzEpoch.Add(730 * 24 * time.Hour)}
	src.models[fakeKey(replication.KindClassifier, "router-v1")] = replication.Model{ID: "router-v1", Created: fuzzEpoch.Add(-time.Hour), Expires: fuzzEpoch.Add(730 * 24 * time.Hour)}
	fx := &fuzzFixture{store: newFakeStore(), queue: &fakeQueue{}, source: src}
	fx.app = &App{Engine: &replication.Engine{
		Source:     src,
		SourceName: "source.example",
		Targets: map[string]replication.Resource{
			"westus2": newFakeResource("westus2", now),
			"eastus":  newFakeResource("eastus", now),
		},
		Store: fx.store,
		Queue: fx.queue,
		Now:   now,
	}}
	return fx
}

// fakeStore keeps rows in memory with ETags, like the table.
type fakeStore struct {
	mu      sync.Mutex
	rows    map[replication.Key]replication.Replica
	version int
}

func newFakeStore() *fakeStore { return &fakeStore{rows: map[replication.Key]replication.Replica{}} }

func (s *fakeStore) Get(_ context.Context, k replication.Key) (*replication.Replica, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rows[k]
	if !ok {
		return nil, replication.ErrNotFound
	}
	return &r, nil
}

func (s *fakeStore) Create(_ context.Context, r *replication.Replica) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rows[r.Key]; ok {
		return replication.ErrConflict
	}
	s.version++
	r.ETag = strconv.Itoa(s.version)
	s.rows[r.Key] = *r
	return nil
}

func (s *fakeStore) Update(_ context.Context, r *replication.Replica) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.rows[r.Key]
	if !ok || cur.ETag != r.ETag {
		return replication.ErrConflict
	}
	s.version++
	r.ETag = strconv.Itoa(s.version)
	s.rows[r.Key] = *r
	return nil
}

func (s *fakeStore) List(_ context.Context, f replication.Filter, next string, limit int) (replication.Page, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []replication.Replica
	for _, r := range s.rows {
		if (f.Kind != "" && r.Kind != f.Kind) || (f.SourceID != "" && r.SourceID != f.SourceID) ||
			(f.Target != "" && r.Target != f.Target) || (len(f.Status) > 0 && !slices.Contains(f.Status, r.Status)) {
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
	end := min(start+max(limit, 1), len(all))
	p := replication.Page{Replicas: all[start:end]}
	if end < len(all) {
		p.Next = strconv.Itoa(end)
	}
	return p, nil
}

func (s *fakeStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rows)
}

func (s *fakeStore) get(k replication.Key) (replication.Replica, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rows[k]
	return r, ok
}

// fakeQueue records copy messages, dropping a repeated MessageID as Service Bus does.
type fakeQueue struct {
	mu   sync.Mutex
	msgs map[string]*replication.CopyMessage
}

func (q *fakeQueue) ScheduleCheck(context.Context, *replication.CopyMessage, time.Duration) error {
	return nil
}

func (q *fakeQueue) SendCopy(_ context.Context, m *replication.CopyMessage) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.msgs == nil {
		q.msgs = map[string]*replication.CopyMessage{}
	}
	if _, dup := q.msgs[m.MessageID()]; !dup {
		c := *m
		q.msgs[m.MessageID()] = &c
	}
	return nil
}

func (q *fakeQueue) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs)
}

// fakeResource is a Document Intelligence resource with just enough of the Copy API for the
// authorize step: models by kind and id, single-use authorizations that reserve the target id.
type fakeResource struct {
	mu       sync.Mutex
	name     string
	now      func() time.Time
	models   map[string]replication.Model
	reserved map[string]bool
	ops      map[string]replication.Operation
	seq      int
}

func newFakeResource(name string, now func() time.Time) *fakeResource {
	return &fakeResource{name: name, now: now, models: map[string]replication.Model{}, reserved: map[string]bool{},
		ops: map[string]replication.Operation{}}
}

func fakeKey(kind replication.Kind, id string) string { return string(kind) + "/" + id }

func notFound(what string) error {
	return &replication.ServiceError{Class: replication.ClassNotFound, Code: "NotFound", Message: what + " not found", StatusCode: http.StatusNotFound}
}

func (r *fakeResource) has(kind replication.Kind, id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.models[fakeKey(kind, id)]
	return ok
}

func (r *fakeResource) AuthorizeCopy(_ context.Context, kind replication.Kind, targetID string, tags map[string]string) (replication.Authorization, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := fakeKey(kind, targetID)
	if _, ok := r.models[k]; ok || r.reserved[k] {
		return replication.Authorization{}, &replication.ServiceError{Class: replication.ClassExists, Code: "ModelExists",
			Message: "the id is taken", StatusCode: http.StatusConflict}
	}
	r.reserved[k] = true
	r.seq++
	exp := r.now().Add(time.Hour)
	body, err := json.Marshal(map[string]any{"targetResourceId": "/accounts/" + r.name, "targetModelId": targetID,
		"accessToken": fuzzAccessToken, "expirationDateTime": exp.Format(time.RFC3339), "tags": tags})
	if err != nil {
		return replication.Authorization{}, err
	}
	return replication.Authorization{ExpiresAt: exp, Body: body}, nil
}

func (r *fakeResource) CopyTo(_ context.Context, kind replication.Kind, sourceID string, _ []byte) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.models[fakeKey(kind, sourceID)]; !ok {
		return "", notFound(string(kind) + " " + sourceID)
	}
	r.seq++
	u := fmt.Sprintf("http://%s.invalid/operations/%d", r.name, r.seq)
	r.ops[u] = replication.Operation{URL: u, Status: replication.OpRunning, Created: r.now()}
	return u, nil
}

func (r *fakeResource) GetOperation(_ context.Context, operationURL string) (replication.Operation, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	op, ok := r.ops[operationURL]
	if !ok {
		return replication.Operation{}, notFound("operation")
	}
	return op, nil
}

func (r *fakeResource) FindCopyOperation(context.Context, replication.Kind, string) (replication.Operation, bool, error) {
	return replication.Operation{}, false, nil
}

func (r *fakeResource) GetModel(_ context.Context, kind replication.Kind, id string) (replication.Model, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.models[fakeKey(kind, id)]
	if !ok {
		return replication.Model{}, notFound(string(kind) + " " + id)
	}
	return m, nil
}

func (r *fakeResource) DeleteModel(_ context.Context, kind replication.Kind, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := fakeKey(kind, id)
	_, ok := r.models[k]
	if !ok && !r.reserved[k] {
		return notFound(string(kind) + " " + id)
	}
	delete(r.models, k)
	delete(r.reserved, k)
	return nil
}

func (r *fakeResource) Location(kind replication.Kind, id string) string {
	return "http://" + r.name + ".invalid/" + string(kind) + "s/" + id
}

// The fakes must satisfy the domain's ports; a compile-time check keeps them honest.
var (
	_ replication.Store    = (*fakeStore)(nil)
	_ replication.Queue    = (*fakeQueue)(nil)
	_ replication.Resource = (*fakeResource)(nil)
)
