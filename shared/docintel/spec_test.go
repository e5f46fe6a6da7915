package docintel

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const specDir = "../../testdata/docintel/spec-examples"

// captured is one request a test server saw.
type captured struct {
	method string
	path   string
	query  url.Values
	header http.Header
	body   []byte
}

type cannedResponse struct {
	status int
	header map[string]string
	body   []byte
}

// captureServer records requests and answers them from a queue (the last answer repeats).
type captureServer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []captured
	answers []cannedResponse
}

func newCaptureServer(t *testing.T, answers ...cannedResponse) *captureServer {
	s := &captureServer{answers: answers}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		n := len(s.reqs)
		s.reqs = append(s.reqs, captured{method: r.Method, path: r.URL.Path, query: r.URL.Query(), header: r.Header.Clone(), body: body})
		a := s.answers[min(n, len(s.answers)-1)]
		s.mu.Unlock()
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		if a.body != nil && w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
		}
		w.WriteHeader(a.status)
		_, _ = w.Write(a.body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *captureServer) setAnswers(a ...cannedResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers = a
}

func (s *captureServer) requests() []captured {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// example is one x-ms-examples file with its placeholders filled in.
type example struct {
	Parameters map[string]json.RawMessage `json:"parameters"`
	Responses  map[string]struct {
		Headers map[string]string `json:"headers"`
		Body    json.RawMessage   `json:"body"`
	} `json:"responses"`
}

var placeholder = regexp.MustCompile(`\{([A-Za-z]+)\}`)

// loadExample reads version/name.json. Endpoints ({endpoint} and the examples' concrete
// myendpoint host) become the test server, {apiVersion} the version, and any other {name} the bare
// name, which satisfies the id rules.
func loadExample(t *testing.T, version, name, serverURL string) example {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(specDir, version, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(data), "https://myendpoint.cognitiveservices.azure.com", serverURL)
	text = placeholder.ReplaceAllStringFunc(text, func(m string) string {
		switch n := m[1 : len(m)-1]; n {
		case "endpoint":
			return serverURL
		case "targetEndpoint":
			return "https://target.example.com"
		case "apiVersion":
			return version
		default:
			return n
		}
	})
	var ex example
	if err := json.Unmarshal([]byte(text), &ex); err != nil {
		t.Fatalf("%s/%s: %v", version, name, err)
	}
	return ex
}

func (ex example) param(t *testing.T, name string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(ex.Parameters[name], &s); err != nil {
		t.Fatalf("parameter %s: %v", name, err)
	}
	return s
}

func (ex example) answer(t *testing.T, status string) cannedResponse {
	t.Helper()
	r, ok := ex.Responses[status]
	if !ok {
		t.Fatalf("example has no %s response", status)
	}
	code := map[string]int{"200": 200, "201": 201, "202": 202, "204": 204}[status]
	var body []byte
	if len(r.Body) > 0 {
		body = bytes.TrimSpace(r.Body)
	}
	return cannedResponse{status: code, header: r.Headers, body: body}
}

// checkRoute asserts method, path and exact query of a captured request.
func checkRoute(t *testing.T, got captured, method, path string, query url.Values) {
	t.Helper()
	if got.method != method || got.path != path {
		t.Errorf("request %s %s, want %s %s", got.method, got.path, method, path)
	}
	if got.query.Encode() != query.Encode() {
		t.Errorf("query %q, want %q", got.query.Encode(), query.Encode())
	}
}

func checkBody(t *testing.T, got []byte, want json.RawMessage) {
	t.Helper()
	if !jsonEquivalent(t, got, want) {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
}

type specCase struct {
	version, file string
	run           func(t *testing.T, ex example, s *captureServer, v APIVersion) // s answers with the example
}

func specCases() []specCase {
	authorize := func(kind Kind, idParam string) func(*testing.T, example, *captureServer, APIVersion) {
		return func(t *testing.T, ex example, s *captureServer, v APIVersion) {
			c := specClient(t, s, v, Options{})
			var req struct {
				ModelID, ClassifierID, Description string
				Tags                               map[string]string
			}
			if err := json.Unmarshal(ex.Parameters["authorizeCopyRequest"], &req); err != nil {
				t.Fatal(err)
			}
			a, err := c.AuthorizeCopy(context.Background(), kind, AuthorizeRequest{TargetID: req.ModelID + req.ClassifierID, Description: req.Description, Tags: req.Tags})
			if err != nil {
				t.Fatal(err)
			}
			got := s.requests()[0]
			checkRoute(t, got, http.MethodPost, v.pathPrefix(string(v))+"/"+kind.collection()+":authorizeCopy", url.Values{"api-version": {string(v)}})
			checkBody(t, got.body, ex.Parameters["authorizeCopyRequest"])
			check(t, "Content-Type", got.header.Get("Content-Type"), "application/json")
			var resp map[string]string
			if err := json.Unmarshal(ex.answer(t, "200").body, &resp); err != nil {
				t.Fatal(err)
			}
			check(t, "target id", a.TargetID, resp["target"+strings.ToUpper(idParam[:1])+idParam[1:]])
			check(t, "target location", a.TargetLocation, resp[strings.TrimSuffix("target"+strings.ToUpper(idParam[:1])+idParam[1:], "Id")+"Location"])
			check(t, "resource id", a.TargetResourceID, resp["targetResourceId"])
			check(t, "region", a.TargetRegion, resp["targetResourceRegion"])
			checkTime(t, "expiry", a.ExpiresAt, resp["expirationDateTime"])
			if !bytes.Equal(a.Body, ex.answer(t, "200").body) {
				t.Errorf("Body is not the answer verbatim: %s", a.Body)
			}
		}
	}
	copyTo := func(kind Kind, idParam string) func(*testing.T, example, *captureServer, APIVersion) {
		return func(t *testing.T, ex example, s *captureServer, v APIVersion) {
			c := specClient(t, s, v, Options{})
			auth := &Authorization{Kind: kind, APIVersion: v, Body: ex.Parameters["copyToRequest"]}
			loc, err := c.CopyTo(context.Background(), kind, ex.param(t, idParam), auth)
			if err != nil {
				t.Fatal(err)
			}
			got := s.requests()[0]
			checkRoute(t, got, http.MethodPost, v.pathPrefix(string(v))+"/"+kind.collection()+"/"+ex.param(t, idParam)+":copyTo", url.Values{"api-version": {string(v)}})
			checkBody(t, got.body, ex.Parameters["copyToRequest"])
			check(t, "Operation-Location", loc, ex.answer(t, "202").header["Operation-Location"])
			check(t, "degrade header (not asked for)", got.header.Get(degradeHeader), "")
		}
	}
	getOperation := func(t *testing.T, ex example, s *captureServer, v APIVersion) {
		c := specClient(t, s, v, Options{})
		id := ex.param(t, "operationId")
		op, err := c.GetOperation(context.Background(), s.srv.URL+v.pathPrefix(string(v))+"/operations/"+id+"?api-version="+string(v))
		if err != nil {
			t.Fatal(err)
		}
		checkRoute(t, s.requests()[0], http.MethodGet, v.pathPrefix(string(v))+"/operations/"+id, url.Values{"api-version": {string(v)}})
		var w struct {
			OperationID, Kind, Status, ResourceLocation, CreatedDateTime string
			PercentCompleted                                             int
			Result                                                       json.RawMessage
		}
		if err := json.Unmarshal(ex.answer(t, "200").body, &w); err != nil {
			t.Fatal(err)
		}
		check(t, "id", op.ID, w.OperationID)
		check(t, "kind", op.Kind, w.Kind)
		check(t, "status", op.Status, Status(w.Status))
		check(t, "percent", op.PercentCompleted, w.PercentCompleted)
		check(t, "resourceLocation", op.ResourceLocation, w.ResourceLocation)
		checkTime(t, "created", op.Created, w.CreatedDateTime)
		check(t, "target id", op.TargetID, resultID(w.Kind, w.Result))
		if op.TargetID == "" {
			t.Error("no target id")
		}
		checkBody(t, op.Result, w.Result)
	}
	// list answers the example's page, then an empty one for the nextLink it names.
	list := func(call func(*Client) ([]string, error), wantIDs ...string) func(*testing.T, example, *captureServer, APIVersion) {
		return func(t *testing.T, ex example, s *captureServer, v APIVersion) {
			s.setAnswers(ex.answer(t, "200"), cannedResponse{status: 200, body: []byte(`{"value":[]}`)})
			ids, err := call(specClient(t, s, v, Options{}))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids, wantIDs) {
				t.Errorf("ids = %v, want %v", ids, wantIDs)
			}
			var page struct{ NextLink string }
			if err := json.Unmarshal(ex.answer(t, "200").body, &page); err != nil {
				t.Fatal(err)
			}
			next, err := url.Parse(page.NextLink)
			if err != nil {
				t.Fatal(err)
			}
			reqs := s.requests()
			if len(reqs) != 2 {
				t.Fatalf("%d requests, want the page and its nextLink", len(reqs))
			}
			checkRoute(t, reqs[0], http.MethodGet, next.Path, url.Values{"api-version": {string(v)}})
			q := next.Query()
			q.Set("api-version", string(v)) // the example's nextLink lacks it; the client adds it
			checkRoute(t, reqs[1], http.MethodGet, next.Path, q)
		}
	}
	operationIDs := func(c *Client) ([]string, error) {
		var ids []string
		for op, err := range c.Operations(context.Background()) {
			if err != nil {
				return nil, err
			}
			if op.Result != nil || op.Error != nil {
				return nil, fmt.Errorf("list item %s carries result or error", op.ID)
			}
			ids = append(ids, op.ID+"/"+string(op.Status))
		}
		return ids, nil
	}
	modelIDs := func(kind Kind) func(c *Client) ([]string, error) {
		return func(c *Client) ([]string, error) {
			var ids []string
			for m, err := range c.Models(context.Background(), kind) {
				if err != nil {
					return nil, err
				}
				ids = append(ids, m.ID)
			}
			return ids, nil
		}
	}

	v21Target := func(t *testing.T, s *captureServer) (*Client, example) {
		copyEx := loadExample(t, "v2.1", "CopyModel", s.srv.URL)
		var body struct{ TargetResourceID, TargetResourceRegion string }
		if err := json.Unmarshal(copyEx.Parameters["copyRequest"], &body); err != nil {
			t.Fatal(err)
		}
		return specClient(t, s, V2_1, Options{ResourceID: body.TargetResourceID, Region: body.TargetResourceRegion}), copyEx
	}
	const v21Prefix = "/formrecognizer/v2.1"

	return []specCase{
		{"2022-08-31", "AuthorizeCopyDocumentModel", authorize(KindModel, "modelId")},
		{"2022-08-31", "CopyDocumentModelTo", copyTo(KindModel, "modelId")},
		{"2022-08-31", "GetOperation", getOperation},
		{"2023-07-31", "CopyDocumentModelTo", copyTo(KindModel, "modelId")},
		{"2023-07-31", "GetOperations", list(operationIDs, "b704bb00-d130-4f3f-a1d8-ca96de3eabb4/running")},
		{"2023-07-31", "GetDocumentModels", list(modelIDs(KindModel), "myCustomModel")},
		{"2024-11-30", "AuthorizeCopyDocumentModel", authorize(KindModel, "modelId")},
		{"2024-11-30", "AuthorizeCopyDocumentClassifier", authorize(KindClassifier, "classifierId")},
		{"2024-11-30", "CopyDocumentModelTo", copyTo(KindModel, "modelId")},
		{"2024-11-30", "CopyDocumentClassifierTo", copyTo(KindClassifier, "classifierId")},
		{"2024-11-30", "GetOperation_DocumentModelCopyTo", getOperation},
		{"2024-11-30", "GetOperation_DocumentClassifierCopyTo", getOperation},
		{"2024-11-30", "GetOperations", list(operationIDs, "b704bb00-d130-4f3f-a1d8-ca96de3eabb4/running")},
		{"2024-11-30", "GetDocumentModels", list(modelIDs(KindModel), "myCustomModel")},
		{"2024-11-30", "GetDocumentClassifiers", list(modelIDs(KindClassifier), "classifier1", "classifier2")},
		{"2024-11-30", "GetDocumentModel_Custom", func(t *testing.T, ex example, s *captureServer, v APIVersion) {
			m, err := specClient(t, s, v, Options{}).GetModel(context.Background(), KindModel, ex.param(t, "modelId"))
			if err != nil {
				t.Fatal(err)
			}
			checkRoute(t, s.requests()[0], http.MethodGet, "/documentintelligence/documentModels/myCustomModel", url.Values{"api-version": {"2024-11-30"}})
			check(t, "id", m.ID, "myCustomModel")
			check(t, "description", m.Description, "Custom model description")
			checkTags(t, "tags", m.Tags, map[string]string{"createdBy": "myUserId"})
			checkTime(t, "created", m.Created, "2021-09-24T12:54:35Z")
			checkTime(t, "expires", m.Expires, "2023-01-01T00:00:00Z")
			checkBody(t, m.Raw, ex.answer(t, "200").body)
		}},
		{"v2.1", "CopyModelAuthorization", func(t *testing.T, ex example, s *captureServer, _ APIVersion) {
			c, copyEx := v21Target(t, s)
			a, err := c.AuthorizeCopy(context.Background(), KindModel, AuthorizeRequest{TargetID: "ignored-in-v2.1"})
			if err != nil {
				t.Fatal(err)
			}
			got := s.requests()[0]
			checkRoute(t, got, http.MethodPost, v21Prefix+"/custom/models/copyAuthorization", url.Values{})
			check(t, "request body length", len(got.body), 0)
			check(t, "target id", a.TargetID, "f973e3c1-1148-43bb-bea8-49d0603ab3a8")
			check(t, "location", a.TargetLocation, ex.answer(t, "201").header["Location"])
			check(t, "expiry (Unix seconds)", a.ExpiresAt, time.Unix(86400, 0).UTC())
			// The assembled body is exactly what the CopyModel example posts.
			checkBody(t, a.Body, copyEx.Parameters["copyRequest"])
		}},
		{"v2.1", "CopyModel", func(t *testing.T, ex example, s *captureServer, _ APIVersion) {
			c := specClient(t, s, V2_1, Options{})
			loc, err := c.CopyTo(context.Background(), KindModel, ex.param(t, "modelId"), &Authorization{Kind: KindModel, APIVersion: V2_1, Body: ex.Parameters["copyRequest"]})
			if err != nil {
				t.Fatal(err)
			}
			got := s.requests()[0]
			checkRoute(t, got, http.MethodPost, v21Prefix+"/custom/models/f973e3c1-1148-43bb-bea8-49d0603ab3a8/copy", url.Values{})
			checkBody(t, got.body, ex.Parameters["copyRequest"])
			check(t, "Operation-Location", loc, ex.answer(t, "202").header["Operation-Location"])
		}},
		{"v2.1", "CopyOperationResult", func(t *testing.T, ex example, s *captureServer, _ APIVersion) {
			op := v21Result(t, ex, s)
			check(t, "status", op.Status, StatusSucceeded)
			check(t, "target", op.TargetID, "f973e3c1-1148-43bb-bea8-49d0603ab3a8")
			check(t, "percent", op.PercentCompleted, 100)
			check(t, "error", op.Error, (*Error)(nil))
			checkTime(t, "updated", op.LastUpdated, "2020-01-01T00:01:00Z")
		}},
		{"v2.1", "CopyOperationResultWithErrors", func(t *testing.T, ex example, s *captureServer, _ APIVersion) {
			op := v21Result(t, ex, s)
			check(t, "status", op.Status, StatusFailed)
			if op.Error == nil {
				t.Fatal("no error")
			}
			check(t, "code", op.Error.Code, "ResourceResolverError")
			check(t, "message", op.Error.Message, "ErrorMessage")
			if IsAuthorizationInvalid(op.Error) {
				t.Error("ResourceResolverError counted as an invalid authorization")
			}
		}},
		{"v2.1", "GetModel", func(t *testing.T, ex example, s *captureServer, _ APIVersion) {
			m, err := specClient(t, s, V2_1, Options{}).GetModel(context.Background(), KindModel, "f973e3c1-1148-43bb-bea8-49d0603ab3a8")
			if err != nil {
				t.Fatal(err)
			}
			checkRoute(t, s.requests()[0], http.MethodGet, v21Prefix+"/custom/models/f973e3c1-1148-43bb-bea8-49d0603ab3a8", url.Values{})
			check(t, "id", m.ID, "f973e3c1-1148-43bb-bea8-49d0603ab3a8")
			check(t, "name as description", m.Description, "my composed model")
			check(t, "status", m.Status, "ready")
			if want := []string{"4afb20d6-3ed0-4cde-ba40-dbd6207268dd", "6f841356-aa32-42c9-a739-2182c47b79c9"}; !slices.Equal(m.ComponentModelIDs, want) {
				t.Errorf("components = %v, want %v", m.ComponentModelIDs, want)
			}
		}},
		{"v2.1", "GetModels", func(t *testing.T, ex example, s *captureServer, _ APIVersion) {
			ids, err := modelIDs(KindModel)(specClient(t, s, V2_1, Options{}))
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"f973e3c1-1148-43bb-bea8-49d0603ab3a8", "f973e3c1-0001-43bb-bea8-49d0603ab3a8"}; !slices.Equal(ids, want) {
				t.Errorf("ids = %v, want %v", ids, want)
			}
			reqs := s.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests: an empty nextLink must end the list", len(reqs))
			}
			checkRoute(t, reqs[0], http.MethodGet, v21Prefix+"/custom/models", url.Values{"op": {"full"}})
		}},
		{"v2.1", "GetModelsSummary", func(t *testing.T, ex example, s *captureServer, _ APIVersion) {
			info, err := specClient(t, s, V2_1, Options{}).Info(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			checkRoute(t, s.requests()[0], http.MethodGet, v21Prefix+"/custom/models", url.Values{"op": {"summary"}})
			check(t, "info", *info, ResourceInfo{CustomModelCount: 5, CustomModelLimit: 5000})
		}},
	}
}

func v21Result(t *testing.T, ex example, s *captureServer) *Operation {
	t.Helper()
	p := "/formrecognizer/v2.1/custom/models/" + ex.param(t, "modelId") + "/copyResults/" + ex.param(t, "resultId")
	op, err := specClient(t, s, V2_1, Options{}).GetOperation(context.Background(), s.srv.URL+p)
	if err != nil {
		t.Fatal(err)
	}
	checkRoute(t, s.requests()[0], http.MethodGet, p, url.Values{})
	check(t, "id", op.ID, ex.param(t, "resultId"))
	check(t, "kind", op.Kind, OperationKindModelCopyTo)
	return op
}

func specClient(t *testing.T, s *captureServer, v APIVersion, o Options) *Client {
	t.Helper()
	o.APIVersion, o.Key, o.Retry = v, "spec-key-0123456789", fastRetry
	c, err := New(s.srv.URL, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSpecExamples checks the request the client sends for every x-ms-examples file against the
// example's path, query and body, and what it makes of the example's answer.
func TestSpecExamples(t *testing.T) {
	cases := specCases()
	have := map[string]bool{}
	for _, tc := range cases {
		have[tc.version+"/"+tc.file] = true
	}
	files, err := filepath.Glob(filepath.Join(specDir, "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		key := filepath.Base(filepath.Dir(f)) + "/" + strings.TrimSuffix(filepath.Base(f), ".json")
		if !have[key] {
			t.Errorf("spec example %s has no case", key)
		}
	}
	for _, tc := range cases {
		t.Run(tc.version+"/"+tc.file, func(t *testing.T) {
			v, err := ParseAPIVersion(tc.version)
			if err != nil {
				t.Fatal(err)
			}
			// The server starts empty: loadExample needs its URL, the answers need the example.
			s := newCaptureServer(t, cannedResponse{status: 500})
			ex := loadExample(t, tc.version, tc.file, s.srv.URL)
			for _, code := range []string{"200", "201", "202"} {
				if _, ok := ex.Responses[code]; ok {
					s.setAnswers(ex.answer(t, code))
				}
			}
			tc.run(t, ex, s, v)
		})
	}
}
