package docintel

// Replay of every recording in testdata/docintel/recordings through the client. An httptest server
// answers each request the client sends with the next recorded entry of the same method and path
// (case-insensitive, in order), with the recorded status, headers and body; Location and
// Operation-Location are moved onto the test server's host. Builds and v2.1 trainings (no client
// call exists for them) are the only entries not requested. Every entry's request is checked: the
// auth header (key or bearer), "dimirror" in User-Agent, the api-version on the wire, and the JSON
// body against the recorded one (timestamps compared as instants). Preview recordings run with
// the nearest supported version and the preview string on the wire. What each recording asserts:
//
//   - js_fr_2023-07-31_copy_model_template (2023-07-31, bearer token, scope checked): build polls
//     running,running,succeeded; authorization fields (resource id, centralus, target id, location,
//     expiry, Body = the service's JSON byte for byte); copyTo body = the authorization; copy
//     polls running,running,succeeded with target id, 100 %, resourceLocation, no apiVersion;
//     target model id, created, expires, apiVersion, status ready, Raw docTypes.
//   - net_di_2024-07-31-preview_CopyModelTo (as 2024-11-30): build polls; authorize with
//     description and tags (request body); authorization fields; copy polls notStarted,succeeded;
//     result description and tags; two DELETEs succeed.
//   - net_di_2024-07-31-preview_DeleteModelCanParseError / _GetModelCanParseError: 404
//     NotFound/ModelNotFound → IsNotFound, IsModelNotFound, not IsOperationNotFound/IsTransient;
//     messages and apim-request-id.
//   - net_di_2024-07-31-preview_GetModels: build polls; Models yields the 3 custom models (15
//     prebuilt skipped) with description, tags, created, expires, apiVersion; DELETEs succeed.
//   - net_fr_2023-02-28-preview_CopyModelToErrorAsync (as 2023-07-31): authorize succeeds; copyTo
//     → 400 InvalidRequest/ModelNotReady → IsModelNotReady, IsBadRequest, not IsNotFound.
//   - net_fr_2023-02-28-preview_GetOperationWrongId: 404 NotFound/OperationNotFound →
//     IsOperationNotFound, IsNotFound, not IsModelNotFound.
//   - net_fr_v2.1_CannotAuthenticateWithFakeApiKey: Info → 401 code "401" → IsUnauthorized, not
//     IsTransient, message and request id.
//   - net_fr_v2.1_CopyModelError: copyTo with the recorded body → 400 code 1002 → IsBadRequest,
//     not IsAuthorizationInvalid (the message is about TargetResourceId).
//   - net_fr_v2.1_StartCopyModelFailsWithWrongRegion: source polls creating×3 then ready;
//     copyAuthorization (empty POST) → target UUID, Unix-seconds expiry, Location; the assembled
//     copy body equals the recorded one and embeds the service's answer verbatim; Operation-
//     Location keeps lowercase copyresults; 21 notStarted polls then failed-with-200 → Status
//     failed, Error code 2024 with the innerError requestId → IsAuthorizationInvalid; 7-digit
//     fractional timestamps; target id and host-relative resourceLocation; DELETE succeeds.
//   - py_di_2024-07-31-preview_copy_model_empty_model_id: CopyTo refuses the empty id before
//     sending (ErrInvalidArgument); the recorded POST /documentModels/:copyTo sent through the
//     client's pipeline → gateway 404 code "404" → IsNotFound, not IsModelNotFound.
//   - py_di_2024-07-31-preview_copy_model_successful: source model; authorize with tags; sanitised
//     targetModelLocation kept as sent; one succeeded poll; target created at copy time with the
//     source's expiry preserved.
//   - py_di_2024-11-30_copy_classifier_successful: classifier build polls notStarted, running×14,
//     succeeded; GetModel(classifier); classifier authorize/copyTo; copy polls notStarted,
//     succeeded with documentClassifierCopyTo and the classifier id as target; target classifier
//     created, modified, expires, description, no tags.
//   - py_fr_2023-02-28-preview_copy_model_successful (as 2023-07-31): copy polls notStarted,
//     succeeded; result keeps the source's docType key and createdDateTime; no apiVersion.
//   - py_fr_v2.1-preview.1_test_copy_model_fail (as 2.1): model creating,creating,ready;
//     copyAuthorization; copy polls notStarted×2 then failed with AuthorizationError (and the
//     x-ms-cs-error-code header) → IsAuthorizationInvalid.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dimirror/dimirror/internal/recording"
)

const recordingsDir = "../../testdata/docintel/recordings"

const (
	replayKey   = "replay-subscription-key-0123456789"
	replayToken = "replay-bearer-token-0123456789"
)

// replayServer answers with recorded entries.
type replayServer struct {
	t       *testing.T
	rec     *recording.Recording
	srv     *httptest.Server
	mu      sync.Mutex
	next    int
	served  []int
	bodies  map[int][]byte
	headers map[int]http.Header
	queries map[int]url.Values
}

func newReplayServer(t *testing.T, rec *recording.Recording) *replayServer {
	s := &replayServer{t: t, rec: rec, bodies: map[int][]byte{}, headers: map[int]http.Header{}, queries: map[int]url.Values{}}
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *replayServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := -1
	for i := s.next; i < len(s.rec.Entries); i++ {
		e := s.rec.Entries[i]
		if strings.EqualFold(e.Method, r.Method) && strings.EqualFold(e.URL.Path, r.URL.Path) {
			idx = i
			break
		}
	}
	if idx < 0 {
		s.t.Errorf("%s: no recorded entry after #%d for %s %s", s.rec.Name, s.next, r.Method, r.URL.RequestURI())
		http.Error(w, "no recorded entry", http.StatusNotImplemented)
		return
	}
	s.next = idx + 1
	s.served = append(s.served, idx)
	s.bodies[idx] = body
	s.headers[idx] = r.Header.Clone()
	s.queries[idx] = r.URL.Query()

	e := s.rec.Entries[idx]
	for k, vs := range e.ResponseHeader {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length", "Transfer-Encoding":
			continue // bodies were re-serialised by the recorder
		case "Location", "Operation-Location":
			for _, v := range vs {
				w.Header().Add(k, s.onServer(v))
			}
			continue
		}
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(e.StatusCode)
	if !e.ResponseIsEmpty {
		_, _ = w.Write(e.ResponseBody)
	}
}

// onServer moves an absolute recorded URL onto the test server.
func (s *replayServer) onServer(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return raw
	}
	return s.srv.URL + u.RequestURI()
}

func (s *replayServer) servedSoFar() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.served)
}

// step is what one recorded entry made the client return.
type step struct {
	idx    int
	call   string
	auth   *Authorization
	opURL  string
	op     *Operation
	model  *Model
	models []Model
	info   *ResourceInfo
	err    error
}

type replayRun struct {
	rec    *recording.Recording
	srv    *replayServer
	client *Client
	cred   *fakeCredential
	steps  []step
}

func (r *replayRun) calls(name string) []step {
	var out []step
	for _, s := range r.steps {
		if s.call == name {
			out = append(out, s)
		}
	}
	return out
}

func (r *replayRun) one(t *testing.T, name string) step {
	t.Helper()
	s := r.calls(name)
	if len(s) != 1 {
		t.Fatalf("%d %s calls, want 1", len(s), name)
	}
	return s[0]
}

// ok is the one call of name, which must have succeeded.
func (r *replayRun) ok(t *testing.T, name string) step {
	t.Helper()
	s := r.one(t, name)
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s
}

// failed is the *Error of the one call of name; class tells the error's Is* answers apart
// (want names what it accepts).
func (r *replayRun) failed(t *testing.T, name, want string, class func(error) bool) *Error {
	t.Helper()
	err := r.one(t, name).err
	if !class(err) {
		t.Errorf("%s err %v: want %s", name, err, want)
	}
	return errorOf(t, err)
}

// ops are the polls of operations of one kind.
func (r *replayRun) ops(t *testing.T, kind string) []*Operation {
	t.Helper()
	var out []*Operation
	for _, s := range r.calls("getOperation") {
		if s.err != nil {
			t.Fatalf("entry %d: GetOperation: %v", s.idx, s.err)
		}
		if s.op.Kind == kind {
			out = append(out, s.op)
		}
	}
	return out
}

func statuses(ops []*Operation) []Status {
	out := make([]Status, len(ops))
	for i, o := range ops {
		out[i] = o.Status
	}
	return out
}

// polls are the polls of operations of one kind, whose statuses must be want.
func (r *replayRun) polls(t *testing.T, kind string, want ...Status) []*Operation {
	t.Helper()
	ops := r.ops(t, kind)
	if got := statuses(ops); !slices.Equal(got, want) {
		t.Errorf("%s statuses = %v, want %v", kind, got, want)
	}
	return ops
}

// getModels are the models the getModel calls returned, whose statuses must be want.
func (r *replayRun) getModels(t *testing.T, want ...string) []*Model {
	t.Helper()
	var models []*Model
	var got []string
	for _, s := range r.calls("getModel") {
		if s.err != nil {
			t.Fatal(s.err)
		}
		models = append(models, s.model)
		got = append(got, s.model.Status)
	}
	if !slices.Equal(got, want) {
		t.Errorf("model statuses = %v, want %v", got, want)
	}
	return models
}

// sourceAndTarget are the two models read: a copy's source, then its target.
func (r *replayRun) sourceAndTarget(t *testing.T) (src, dst *Model) {
	t.Helper()
	models := r.calls("getModel")
	if len(models) != 2 || models[0].err != nil || models[1].err != nil {
		t.Fatalf("getModel steps = %+v", models)
	}
	return models[0].model, models[1].model
}

// authWant is what a copy authorization must hold; empty fields are not checked.
type authWant struct {
	target, resource, region, location string
	expires                            string // RFC 3339
}

// auth is the one copy authorization, which must have succeeded and hold want.
func (r *replayRun) auth(t *testing.T, want authWant) step {
	t.Helper()
	a := r.ok(t, "authorizeCopy")
	for _, f := range []struct{ what, got, want string }{
		{"auth target", a.auth.TargetID, want.target},
		{"auth resource", a.auth.TargetResourceID, want.resource},
		{"auth region", a.auth.TargetRegion, want.region},
		{"auth location", a.auth.TargetLocation, want.location},
	} {
		if f.want != "" {
			check(t, f.what, f.got, f.want)
		}
	}
	if want.expires != "" {
		checkTime(t, "auth expiry", a.auth.ExpiresAt, want.expires)
	}
	return a
}

// v21Auth is the one v2.1 copy authorization, checked: its target id, the target's URL on the
// test server under the version path, and the Unix-seconds expiry.
func (r *replayRun) v21Auth(t *testing.T, version, target string, expires int64) step {
	t.Helper()
	a := r.auth(t, authWant{target: target, location: r.srv.srv.URL + "/formrecognizer/" + version + "/custom/models/" + target})
	check(t, "auth expiry", a.auth.ExpiresAt, time.Unix(expires, 0).UTC())
	return a
}

func repeat(s Status, n int) []Status {
	out := make([]Status, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func kindOfPath(p string) Kind {
	if strings.Contains(strings.ToLower(p), "documentclassifiers") {
		return KindClassifier
	}
	return KindModel
}

// drive sends, for each recorded entry, the client call that produces that request.
func (r *replayRun) drive(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := r.client
	var lastAuth *Authorization
	var lastOpURL string
	for i, e := range r.rec.Entries {
		p := strings.ToLower(e.URL.Path)
		before := len(r.srv.servedSoFar())
		st := step{idx: i}
		switch {
		case e.Method == http.MethodPost && (strings.HasSuffix(p, ":build") || strings.HasSuffix(p, "/custom/models")):
			continue // builds and v2.1 trainings: not part of the client
		case e.Method == http.MethodGet && (strings.Contains(p, "/operations/") || strings.Contains(p, "/copyresults/")):
			st.call = "getOperation"
			target := r.srv.srv.URL + e.URL.RequestURI()
			if u, err := url.Parse(lastOpURL); err == nil && strings.EqualFold(u.Path, e.URL.Path) {
				target = lastOpURL // poll what CopyTo returned, as a caller would
			}
			st.op, st.err = c.GetOperation(ctx, target)
		case e.Method == http.MethodPost && strings.HasSuffix(p, ":authorizecopy"):
			var req struct {
				ModelID, ClassifierID, Description string
				Tags                               map[string]string
			}
			if err := json.Unmarshal(e.RequestBody, &req); err != nil {
				t.Fatalf("entry %d: recorded authorize body: %v", i, err)
			}
			st.call = "authorizeCopy"
			st.auth, st.err = c.AuthorizeCopy(ctx, kindOfPath(p), AuthorizeRequest{
				TargetID: req.ModelID + req.ClassifierID, Description: req.Description, Tags: req.Tags,
			})
			if st.err == nil {
				lastAuth = st.auth
			}
		case e.Method == http.MethodPost && strings.HasSuffix(p, "/custom/models/copyauthorization"):
			st.call = "authorizeCopy"
			st.auth, st.err = c.AuthorizeCopy(ctx, KindModel, AuthorizeRequest{})
			if st.err == nil {
				lastAuth = st.auth
			}
		case e.Method == http.MethodPost && (strings.HasSuffix(p, ":copyto") || strings.HasSuffix(p, "/copy")):
			kind := kindOfPath(p)
			src := strings.TrimSuffix(path.Base(e.URL.Path), ":copyTo")
			if strings.HasSuffix(p, "/copy") {
				src = path.Base(path.Dir(e.URL.Path))
			}
			auth := lastAuth
			if auth == nil {
				auth = &Authorization{Kind: kind, Body: e.RequestBodyBytes()}
			}
			st.call = "copyTo"
			if strings.HasSuffix(p, "/:copyto") {
				// The client refuses the empty id before sending anything...
				if _, err := c.CopyTo(ctx, kind, "", auth); !errors.Is(err, ErrInvalidArgument) {
					t.Errorf("entry %d: CopyTo with empty id: err = %v, want ErrInvalidArgument", i, err)
				}
				if n := len(r.srv.servedSoFar()); n != before {
					t.Errorf("entry %d: CopyTo with empty id sent a request", i)
				}
				// ...so the gateway's answer is replayed through the client's pipeline directly.
				st.call = "rawCopyTo"
				_, st.err = c.do(ctx, call{op: "copyTo", method: http.MethodPost, url: c.url("/documentModels/:copyTo", nil), body: e.RequestBodyBytes()})
			} else {
				st.opURL, st.err = c.CopyTo(ctx, kind, src, auth)
				lastOpURL = st.opURL
			}
		case e.Method == http.MethodGet && (strings.HasSuffix(p, "/documentmodels") || strings.HasSuffix(p, "/documentclassifiers") ||
			(strings.HasSuffix(p, "/custom/models") && e.URL.Query().Get("op") == "full")):
			st.call = "models"
			for m, err := range c.Models(ctx, kindOfPath(p)) {
				if err != nil {
					st.err = err
					break
				}
				st.models = append(st.models, m)
			}
		case e.Method == http.MethodGet && strings.HasSuffix(p, "/custom/models") && e.URL.Query().Get("op") == "summary":
			st.call = "info"
			st.info, st.err = c.Info(ctx)
		case e.Method == http.MethodGet && (strings.Contains(p, "/documentmodels/") || strings.Contains(p, "/documentclassifiers/") || strings.Contains(p, "/custom/models/")):
			st.call = "getModel"
			st.model, st.err = c.GetModel(ctx, kindOfPath(p), path.Base(e.URL.Path))
		case e.Method == http.MethodDelete:
			st.call = "deleteModel"
			st.err = c.DeleteModel(ctx, kindOfPath(p), path.Base(e.URL.Path))
		default:
			t.Fatalf("entry %d: no client call for %s %s", i, e.Method, e.URL.Path)
		}
		served := r.srv.servedSoFar()
		if len(served) != before+1 || served[len(served)-1] != i {
			t.Fatalf("entry %d (%s): client requests hit entries %v, want exactly [%d]", i, st.call, served[before:], i)
		}
		r.checkRequest(t, i)
		r.steps = append(r.steps, st)
	}
}

// checkRequest compares what the client sent for entry i with the recording.
func (r *replayRun) checkRequest(t *testing.T, i int) {
	t.Helper()
	e := r.rec.Entries[i]
	r.srv.mu.Lock()
	got, h, q := r.srv.bodies[i], r.srv.headers[i], r.srv.queries[i]
	r.srv.mu.Unlock()

	if want := e.APIVersion(); strings.HasPrefix(want, "v2.") {
		if q.Has("api-version") {
			t.Errorf("entry %d: v2.x request carries api-version=%s", i, q.Get("api-version"))
		}
	} else if q.Get("api-version") != want {
		t.Errorf("entry %d: api-version = %q, want %q", i, q.Get("api-version"), want)
	}
	if r.cred != nil {
		check(t, "Authorization header", h.Get("Authorization"), "Bearer "+replayToken)
		check(t, "key header with bearer auth", h.Get(keyHeader), "")
	} else {
		check(t, "key header", h.Get(keyHeader), replayKey)
		check(t, "Authorization header with key auth", h.Get("Authorization"), "")
	}
	if ua := h.Get("User-Agent"); !strings.HasPrefix(ua, "dimirror ") {
		t.Errorf("entry %d: User-Agent %q does not start with dimirror", i, ua)
	}
	rb := bytes.TrimSpace(e.RequestBody)
	switch {
	case len(rb) == 0:
		if len(got) != 0 {
			t.Errorf("entry %d: sent a body (%d bytes), recorded none", i, len(got))
		}
	case rb[0] == '{':
		if !jsonEquivalent(t, got, rb) {
			t.Errorf("entry %d: body\n got %s\nwant %s", i, got, rb)
		}
	}
}

type replayCase struct {
	file    string
	version APIVersion
	bearer  bool
	// v2.1 target resource settings (copyAuthorization entries)
	resourceID, region string
	check              func(t *testing.T, r *replayRun)
}

func errorOf(t *testing.T, err error) *Error {
	t.Helper()
	e, ok := asError(err)
	if !ok {
		t.Fatalf("err = %v (%T), want *Error", err, err)
	}
	return e
}

func replayCases() []replayCase {
	return []replayCase{
		{file: "js_fr_2023-07-31_copy_model_template", version: V2023_07_31, bearer: true, check: func(t *testing.T, r *replayRun) {
			build := r.polls(t, OperationKindModelBuild, StatusRunning, StatusRunning, StatusSucceeded)
			check(t, "build target", build[2].TargetID, "copySource10172")
			check(t, "build percent", build[2].PercentCompleted, 100)

			a := r.auth(t, authWant{
				target:   "copyTarget10330",
				resource: "/subscriptions/faa080af-c1d8-40ad-9cce-e1a450ca5b57/resourceGroups/witemple-rg/providers/Microsoft.CognitiveServices/accounts/witemple-fr-centralus",
				region:   "centralus",
				location: "https://endpoint/formrecognizer/documentModels/copyTarget10330?api-version=2023-07-31",
				expires:  "2023-08-02T18:24:43Z",
			})
			check(t, "auth kind", a.auth.Kind, KindModel)
			check(t, "auth version", a.auth.APIVersion, V2023_07_31)
			if !bytes.Equal(a.auth.Body, r.rec.Entries[a.idx].ResponseBody) {
				t.Errorf("auth body is not the service's JSON verbatim:\n%s", a.auth.Body)
			}

			cp := r.ok(t, "copyTo")
			check(t, "operation URL", cp.opURL, r.srv.srv.URL+"/formrecognizer/operations/31475370917_01b85629-1f31-4245-8023-20976a86da38?api-version=2023-07-31")
			copies := r.polls(t, OperationKindModelCopyTo, StatusRunning, StatusRunning, StatusSucceeded)
			last := copies[2]
			check(t, "op id", last.ID, "31475370917_01b85629-1f31-4245-8023-20976a86da38")
			check(t, "op target", last.TargetID, "copyTarget10330")
			check(t, "op percent", last.PercentCompleted, 100)
			check(t, "op resourceLocation", last.ResourceLocation, "https://endpoint/formrecognizer/documentModels/copyTarget10330?api-version=2023-07-31")
			check(t, "op apiVersion (absent in 2023-07-31)", last.APIVersion, "")
			checkTime(t, "op created", last.Created, "2023-08-02T17:24:43Z")
			check(t, "op error", last.Error, (*Error)(nil))
			check(t, "running op target (from resourceLocation)", copies[0].TargetID, "copyTarget10330")
			if copies[0].Result != nil || len(last.Result) == 0 {
				t.Errorf("result: running %q, succeeded %d bytes", copies[0].Result, len(last.Result))
			}

			m := r.ok(t, "getModel").model
			check(t, "model id", m.ID, "copyTarget10330")
			checkTime(t, "model created (source's)", m.Created, "2023-08-02T17:24:39Z")
			checkTime(t, "model expires", m.Expires, "2025-08-01T17:24:39Z")
			check(t, "model apiVersion", m.APIVersion, "2023-07-31")
			check(t, "model status", m.Status, StatusReady)
			raw := wireOf(t, m.Raw)
			if _, ok := raw.DocTypes["copyTarget10330"]; !ok || len(raw.DocTypes) != 1 {
				t.Errorf("model Raw docTypes %v: want the one renamed to the target id", raw.DocTypes)
			}
			for _, s := range r.cred.scopes() {
				if !slices.Equal(s, []string{Scope}) {
					t.Errorf("token scopes = %v, want [%s]", s, Scope)
				}
			}
			if len(r.cred.scopes()) == 0 {
				t.Error("the credential was never asked for a token")
			}
		}},
		{file: "net_di_2024-07-31-preview_CopyModelTo", version: V2024_11_30, check: func(t *testing.T, r *replayRun) {
			r.polls(t, OperationKindModelBuild, StatusRunning, StatusSucceeded)
			r.auth(t, authWant{
				target:   "1560330644",
				resource: "/subscriptions/faa080af-c1d8-40ad-9cce-e1a450ca5b57/resourceGroups/camaiaor/providers/Microsoft.CognitiveServices/accounts/camaiaor-localtests",
				region:   "eastus",
				location: "https://camaiaor-localtests.cognitiveservices.azure.com/documentintelligence/documentModels/1560330644?api-version=2024-07-31-preview",
				expires:  "2024-08-07T19:42:46Z",
			})
			r.ok(t, "copyTo")
			last := r.polls(t, OperationKindModelCopyTo, StatusNotStarted, StatusSucceeded)[1]
			check(t, "op target", last.TargetID, "1560330644")
			check(t, "op apiVersion", last.APIVersion, "2024-07-31-preview")
			res := wireOf(t, last.Result)
			check(t, "result description", res.Description, "This model was generated by a .NET test.")
			checkTags(t, "result tags", res.Tags, map[string]string{"tag1": "value1", "tag2": "value2"})
			del := r.calls("deleteModel")
			if len(del) != 2 || del[0].err != nil || del[1].err != nil {
				t.Errorf("deletes = %+v, want 2 without error", del)
			}
		}},
		{file: "net_di_2024-07-31-preview_DeleteModelCanParseError", version: V2024_11_30, check: func(t *testing.T, r *replayRun) {
			checkModelNotFound(t, r, "deleteModel", "37dad3b9-51bb-415b-b3b0-d5e644b4ce4a")
		}},
		{file: "net_di_2024-07-31-preview_GetModelCanParseError", version: V2024_11_30, check: func(t *testing.T, r *replayRun) {
			check(t, "model", r.one(t, "getModel").model, (*Model)(nil))
			checkModelNotFound(t, r, "getModel", "3908a6c4-3052-4ec4-8a7e-009680b8ca5f")
		}},
		{file: "net_di_2024-07-31-preview_GetModels", version: V2024_11_30, check: func(t *testing.T, r *replayRun) {
			r.polls(t, OperationKindModelBuild, StatusRunning, StatusSucceeded, StatusRunning, StatusSucceeded)
			models := r.ok(t, "models").models
			var ids []string
			for _, m := range models {
				ids = append(ids, m.ID)
				check(t, m.ID+" kind", m.Kind, KindModel)
				check(t, m.ID+" apiVersion", m.APIVersion, "2024-07-31-preview")
				checkTags(t, m.ID+" tags", m.Tags, map[string]string{"tag1": "value1", "tag2": "value2"})
				if m.Raw != nil {
					t.Errorf("%s: list item has Raw", m.ID)
				}
			}
			if want := []string{"193560687", "109641655", "1972185455"}; !slices.Equal(ids, want) {
				t.Fatalf("models = %v, want %v (15 prebuilt skipped)", ids, want)
			}
			check(t, "description", models[0].Description, "This model was generated by a .NET test.")
			checkTime(t, "created", models[0].Created, "2024-08-07T19:53:09Z")
			checkTime(t, "expires", models[0].Expires, "2026-08-07T19:53:09Z")
			for _, d := range r.calls("deleteModel") {
				if d.err != nil {
					t.Errorf("delete: %v", d.err)
				}
			}
		}},
		{file: "net_fr_2023-02-28-preview_CopyModelToErrorAsync", version: V2023_07_31, check: func(t *testing.T, r *replayRun) {
			r.auth(t, authWant{target: "855589591"})
			e := r.failed(t, "copyTo", "ModelNotReady only", func(err error) bool {
				return IsModelNotReady(err) && IsBadRequest(err) && !IsNotFound(err) && !IsAuthorizationInvalid(err) && !IsTransient(err)
			})
			check(t, "code", e.Code, CodeInvalidRequest)
			check(t, "inner code", e.InnerCode, CodeModelNotReady)
			check(t, "request id", e.RequestID, "693c2706-6d7f-4cc2-8efd-96dea9008912")
		}},
		{file: "net_fr_2023-02-28-preview_GetOperationWrongId", version: V2023_07_31, check: func(t *testing.T, r *replayRun) {
			e := r.failed(t, "getOperation", "OperationNotFound", func(err error) bool {
				return IsOperationNotFound(err) && IsNotFound(err) && !IsModelNotFound(err) && !IsTransient(err)
			})
			check(t, "code", e.Code, CodeNotFound)
			check(t, "inner message", e.InnerMessage, "The requested operation was not found. The identifier may be invalid or the operation may have expired.")
			check(t, "request id", e.RequestID, "16b11b56-bca3-403d-a7fc-69ef25860475")
		}},
		{file: "net_fr_v2.1_CannotAuthenticateWithFakeApiKey", version: V2_1, check: func(t *testing.T, r *replayRun) {
			e := r.failed(t, "info", "401 only", func(err error) bool {
				return IsUnauthorized(err) && !IsTransient(err) && !IsNotFound(err) && !IsAuthorizationInvalid(err)
			})
			check(t, "code", e.Code, "401")
			if !strings.HasPrefix(e.Message, "Access denied due to invalid subscription key or wrong API endpoint.") {
				t.Errorf("message = %q", e.Message)
			}
			check(t, "request id", e.RequestID, "f5c643ad-9fdf-474a-847e-d3df2f51911d")
		}},
		{file: "net_fr_v2.1_CopyModelError", version: V2_1, check: func(t *testing.T, r *replayRun) {
			e := r.failed(t, "copyTo", "a plain 400", func(err error) bool {
				return IsBadRequest(err) && !IsAuthorizationInvalid(err) && !IsTransient(err) && !IsModelNotReady(err)
			})
			check(t, "code", e.Code, CodeV21InvalidRequest)
			check(t, "message", e.Message, "Copy request is invalid. Field 'TargetResourceId' must be a valid Azure Resource ID.")
			check(t, "request id", e.RequestID, "6bfa49e5-40bd-41fa-8619-91aaf9b2c0aa")
		}},
		{file: "net_fr_v2.1_StartCopyModelFailsWithWrongRegion", version: V2_1,
			resourceID: "/subscriptions/faa080af-c1d8-40ad-9cce-e1a450ca5b57/resourceGroups/camaiaor-rg/providers/Microsoft.CognitiveServices/accounts/camaiaor-formrec-eastus",
			region:     "westcentralus",
			check: func(t *testing.T, r *replayRun) {
				src := r.getModels(t, "creating", "creating", "creating", "ready")[3]
				check(t, "source id", src.ID, "49f30af7-aa0a-40e1-b668-d275558203dd")
				checkTime(t, "source created", src.Created, "2023-04-28T18:36:52Z")
				checkTime(t, "source modified", src.Modified, "2023-04-28T18:36:56Z")
				check(t, "source apiVersion", src.APIVersion, "2.1")

				a := r.v21Auth(t, "v2.1", "ebab90c5-7adf-4ba9-b88a-4c8ab84d7a4b", 1682793416)
				check(t, "auth region", a.auth.TargetRegion, "westcentralus")
				if !bytes.Contains(a.auth.Body, []byte(`"copyAuthorization":`+string(r.rec.Entries[a.idx].ResponseBody)+"}")) {
					t.Errorf("auth body does not wrap the service's answer verbatim: %s", a.auth.Body)
				}
				if cp := r.ok(t, "copyTo"); !strings.HasSuffix(cp.opURL, "/formrecognizer/v2.1/custom/models/49f30af7-aa0a-40e1-b668-d275558203dd/copyresults/c5615aa3-e358-4482-aee5-3be300687693") {
					t.Errorf("operation URL = %s", cp.opURL)
				}
				copies := r.polls(t, OperationKindModelCopyTo, append(repeat(StatusNotStarted, 21), StatusFailed)...)
				last := copies[len(copies)-1]
				check(t, "op id", last.ID, "c5615aa3-e358-4482-aee5-3be300687693")
				check(t, "op target", last.TargetID, "ebab90c5-7adf-4ba9-b88a-4c8ab84d7a4b")
				check(t, "op resourceLocation", last.ResourceLocation, "/formrecognizer/v2.1/custom/models/ebab90c5-7adf-4ba9-b88a-4c8ab84d7a4b")
				check(t, "op apiVersion", last.APIVersion, "2.1")
				checkTime(t, "op created (7 digits)", last.Created, "2023-04-28T18:37:19.8620147Z")
				if last.Error == nil {
					t.Fatal("failed copy without Error")
				}
				check(t, "op error code", last.Error.Code, CodeV21AuthorizationMetadata)
				check(t, "op error request id", last.Error.RequestID, "743a02e8-eaf7-4090-9cb5-0b7e59dbc43a")
				check(t, "op error message", last.Error.Message, "Could not retrieve authorization metadata. If this issue persists use a different target model to copy into.")
				if !IsAuthorizationInvalid(last.Error) || IsTransient(last.Error) || IsNotFound(last.Error) {
					t.Errorf("op error %v: want IsAuthorizationInvalid only", last.Error)
				}
				if copies[0].Error != nil || copies[0].TargetID != last.TargetID {
					t.Errorf("notStarted poll: error %v, target %q", copies[0].Error, copies[0].TargetID)
				}
				if d := r.one(t, "deleteModel"); d.err != nil {
					t.Error(d.err)
				}
			}},
		{file: "py_di_2024-07-31-preview_copy_model_empty_model_id", version: V2024_11_30, check: func(t *testing.T, r *replayRun) {
			e := r.failed(t, "rawCopyTo", "a route-level 404", func(err error) bool {
				return IsNotFound(err) && !IsModelNotFound(err) && !IsOperationNotFound(err) && !IsTransient(err)
			})
			check(t, "code", e.Code, "404")
			check(t, "inner code", e.InnerCode, "")
			check(t, "message", e.Message, "Resource not found")
			check(t, "request id", e.RequestID, "ec47b370-57d9-4e07-ace1-bb906ee7d9d4")
		}},
		{file: "py_di_2024-07-31-preview_copy_model_successful", version: V2024_11_30, check: func(t *testing.T, r *replayRun) {
			r.polls(t, OperationKindModelBuild, StatusRunning, StatusSucceeded)
			src, dst := r.sourceAndTarget(t)
			check(t, "source id", src.ID, "d432c0c5-e3e8-4659-b75b-c0fdda5b9446")
			checkTime(t, "source created", src.Created, "2024-08-14T19:08:12Z")
			r.auth(t, authWant{
				target:   "423924aa-90a8-43d0-9fef-665b5d0c9dd8",
				resource: "/path/to/resource/id",
				location: "Sanitized", // sanitised in the recording, kept as sent
				expires:  "2024-08-14T20:08:17Z",
			})
			copies := r.polls(t, OperationKindModelCopyTo, StatusSucceeded)
			check(t, "op target", copies[0].TargetID, "423924aa-90a8-43d0-9fef-665b5d0c9dd8")
			check(t, "target id", dst.ID, "423924aa-90a8-43d0-9fef-665b5d0c9dd8")
			checkTags(t, "target tags", dst.Tags, map[string]string{"testkey": "testvalue"})
			checkTime(t, "target created (copy time)", dst.Created, "2024-08-14T19:08:17Z")
			check(t, "target expires = source expires", dst.Expires, src.Expires)
		}},
		{file: "py_di_2024-11-30_copy_classifier_successful", version: V2024_11_30, check: func(t *testing.T, r *replayRun) {
			r.polls(t, OperationKindClassifierBuild, append(append([]Status{StatusNotStarted}, repeat(StatusRunning, 14)...), StatusSucceeded)...)
			src, dst := r.sourceAndTarget(t)
			check(t, "source kind", src.Kind, KindClassifier)
			check(t, "source id", src.ID, "fa7dbcee-8664-4d4e-88dc-6e23ce471280")
			check(t, "source description", src.Description, "IRS document classifier")
			a := r.auth(t, authWant{
				target:   "a5b310a2-4a60-4309-b0a2-3f72a3c71c74",
				location: "https://fakeendpoint.cognitiveservices.azure.com/documentintelligence/documentClassifiers/a5b310a2-4a60-4309-b0a2-3f72a3c71c74?api-version=2024-11-30",
				expires:  "2024-12-14T02:48:52Z",
			})
			check(t, "auth kind", a.auth.Kind, KindClassifier)
			r.ok(t, "copyTo")
			last := r.polls(t, OperationKindClassifierCopyTo, StatusNotStarted, StatusSucceeded)[1]
			check(t, "op target", last.TargetID, "a5b310a2-4a60-4309-b0a2-3f72a3c71c74")
			check(t, "op percent", last.PercentCompleted, 100)
			check(t, "target id", dst.ID, "a5b310a2-4a60-4309-b0a2-3f72a3c71c74")
			check(t, "target kind", dst.Kind, KindClassifier)
			checkTime(t, "target created", dst.Created, "2024-12-14T01:48:53Z")
			checkTime(t, "target modified (source's)", dst.Modified, "2024-12-14T01:47:47Z")
			checkTime(t, "target expires", dst.Expires, "2026-12-14T01:47:47Z")
			check(t, "target description", dst.Description, "IRS document classifier")
			if dst.Tags != nil {
				t.Errorf("classifier tags = %v, want none", dst.Tags)
			}
		}},
		{file: "py_fr_2023-02-28-preview_copy_model_successful", version: V2023_07_31, check: func(t *testing.T, r *replayRun) {
			r.polls(t, OperationKindModelBuild, StatusNotStarted, StatusSucceeded)
			r.auth(t, authWant{target: "042cbbf4-c35b-48a1-a00f-22c51537b7bd"})
			last := r.polls(t, OperationKindModelCopyTo, StatusNotStarted, StatusSucceeded)[1]
			check(t, "op target", last.TargetID, "042cbbf4-c35b-48a1-a00f-22c51537b7bd")
			check(t, "op apiVersion", last.APIVersion, "")
			res := wireOf(t, last.Result)
			if _, ok := res.DocTypes["bc3e8212-5628-4ca3-8459-0e27c1ca0614"]; !ok {
				t.Errorf("result docTypes %v: want the source's key kept", res.DocTypes)
			}
			checkTime(t, "result created (source's)", time.Time(res.CreatedDateTime), "2023-03-21T23:17:42Z")
		}},
		{file: "py_fr_v2.1-preview.1_test_copy_model_fail", version: V2_1,
			resourceID: "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/target",
			region:     "eastus",
			check: func(t *testing.T, r *replayRun) {
				r.getModels(t, "creating", "creating", "ready")
				r.v21Auth(t, "v2.1-preview.1", "ff677acc-7b94-43ab-b77b-8d8e01a16f3b", 1600198528)
				if cp := r.ok(t, "copyTo"); !strings.Contains(cp.opURL, "/copyresults/e35af486-5a91-48f5-998f-abc0e90c0201") {
					t.Errorf("operation URL = %s", cp.opURL)
				}
				last := r.polls(t, OperationKindModelCopyTo, StatusNotStarted, StatusNotStarted, StatusFailed)[2]
				check(t, "op apiVersion", last.APIVersion, "2.1-preview.1")
				checkTime(t, "op created", last.Created, "2020-09-14T19:35:39.9404576Z")
				if last.Error == nil {
					t.Fatal("failed copy without Error")
				}
				check(t, "op error code", last.Error.Code, CodeV21AuthorizationError)
				if !IsAuthorizationInvalid(last.Error) {
					t.Errorf("op error %v: want IsAuthorizationInvalid", last.Error)
				}
			}},
	}
}

// checkModelNotFound checks that the one call of name failed with the service's ModelNotFound.
func checkModelNotFound(t *testing.T, r *replayRun, name, requestID string) {
	t.Helper()
	e := r.failed(t, name, "ModelNotFound", func(err error) bool {
		return IsNotFound(err) && IsModelNotFound(err) && !IsOperationNotFound(err) && !IsTransient(err) && !IsModelNotReady(err)
	})
	check(t, "status", e.StatusCode, http.StatusNotFound)
	check(t, "code", e.Code, CodeNotFound)
	check(t, "inner code", e.InnerCode, CodeModelNotFound)
	check(t, "message", e.Message, "Resource not found.")
	check(t, "inner message", e.InnerMessage, "The requested model was not found.")
	check(t, "request id", e.RequestID, requestID)
}

func TestReplayRecordings(t *testing.T) {
	recs, err := recording.LoadDir(recordingsDir)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*recording.Recording{}
	for _, r := range recs {
		byName[r.Name] = r
	}
	cases := replayCases()
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.file] = true
	}
	for name := range byName {
		if !covered[name] {
			t.Errorf("recording %s has no replay case", name)
		}
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			rec := byName[tc.file]
			if rec == nil {
				t.Fatalf("recording %s not found", tc.file)
			}
			srv := newReplayServer(t, rec)
			raw := strings.TrimPrefix(rec.Entries[0].APIVersion(), "v")
			opts := Options{APIVersion: tc.version, Retry: fastRetry, ResourceID: tc.resourceID, Region: tc.region}
			run := &replayRun{rec: rec, srv: srv}
			if tc.bearer {
				run.cred = &fakeCredential{token: replayToken}
				opts.Credential = run.cred
			} else {
				opts.Key = replayKey
			}
			c, err := newClient(srv.srv.URL, opts, raw)
			if err != nil {
				t.Fatal(err)
			}
			run.client = c
			run.drive(t)
			tc.check(t, run)
		})
	}
}
