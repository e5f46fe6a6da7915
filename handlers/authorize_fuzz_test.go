package handlers

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	rt "github.com/dimirror/dimirror/shared/reconcile/reconciletest"
	"github.com/dimirror/dimirror/shared/replication"
)

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
		if bytes.Contains(out, []byte(rt.TokenPrefix)) || bytes.Contains(out, []byte("accessToken")) {
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
			if n := fx.store.Len(); n != 0 {
				t.Fatalf("a %d answer left %d rows behind", res.StatusCode, n)
			}
			if n := fx.queue.Len(); n != 0 {
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
	if _, ok := fx.source.Item(kind, req.SourceID); !ok {
		t.Fatalf("2xx for %s %q, which the source does not hold", kind, req.SourceID)
	}
	want := slices.Clone(req.Targets)
	if len(want) == 0 {
		want = fx.app.Requests.TargetNames()
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
		row, ok := fx.store.Row(replication.Key{Kind: kind, SourceID: req.SourceID, Target: v.Target})
		if !ok || string(row.Status) != v.Status {
			t.Fatalf("replica %s→%s answered %s but the row is %+v (present %t)", req.SourceID, v.Target, v.Status, row.Status, ok)
		}
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Fatalf("replicas for targets %v, want %v", got, want)
	}
	if fx.store.Len() != len(want) || fx.queue.Len() != len(want) {
		t.Fatalf("%d rows and %d copy messages for %d targets", fx.store.Len(), fx.queue.Len(), len(want))
	}
	if wantStatus := map[bool]int{true: http.StatusAccepted, false: http.StatusOK}[inFlight]; res.StatusCode != wantStatus {
		t.Fatalf("status %d with replicas in flight %t", res.StatusCode, inFlight)
	}
	if loc := res.Header.Get("Location"); loc != StatusPath(kind, req.SourceID) {
		t.Fatalf("Location %q, want %q", loc, StatusPath(kind, req.SourceID))
	}
}

// fuzzFixture is the functions on the domain's in-memory fakes: one source holding a model and a
// classifier, two targets.
type fuzzFixture struct {
	app    *Functions
	store  *rt.Store
	queue  *rt.Queue
	source *rt.Resource
}

func newFuzzFixture() *fuzzFixture {
	c := rt.NewClock()
	w := rt.NewWorld(c, "source", "westus2", "eastus")
	fx := &fuzzFixture{store: rt.NewStore(), queue: &rt.Queue{}, source: w.Resource("source")}
	fx.source.Seed(replication.KindModel, "invoice-v1")
	fx.source.Seed(replication.KindClassifier, "router-v1")
	eng, err := replication.NewEngine(replication.Config{
		Source:     fx.source,
		SourceName: "source.example",
		Targets:    map[string]replication.Resource{"westus2": w.Resource("westus2"), "eastus": w.Resource("eastus")},
		Store:      fx.store,
		Queue:      fx.queue,
		Now:        c.Now,
	})
	if err != nil {
		panic(err) // the fixture's wiring is fixed: an error is a bug in this file
	}
	fx.app = &Functions{Replicas: eng, Requests: eng, Copies: eng, Poller: eng}
	return fx
}
