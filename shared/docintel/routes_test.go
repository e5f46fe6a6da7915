package docintel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

const (
	v21ModelID = "0b8f3c1e-1148-43bb-bea8-49d0603ab3a8"
	armID      = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/target"
)

// fakeResource answers every route of every version with a minimal valid body and records the
// requests.
type fakeResource struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []captured
}

func newFakeResource(t *testing.T) *fakeResource {
	f := &fakeResource{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeResource) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.reqs = append(f.reqs, captured{method: r.Method, path: r.URL.Path, query: r.URL.Query(), header: r.Header.Clone()})
	f.mu.Unlock()
	p := r.URL.Path
	json := func(status int, body string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
	switch {
	case strings.HasSuffix(p, ":authorizeCopy"):
		json(200, `{"targetResourceId":"`+armID+`","targetResourceRegion":"westus2","targetModelId":"t1","targetModelLocation":"https://x/documentModels/t1","targetClassifierId":"t1","targetClassifierLocation":"https://x/documentClassifiers/t1","accessToken":"tok-123456","expirationDateTime":"2030-01-01T00:00:00Z"}`)
	case strings.HasSuffix(p, "/copyAuthorization"):
		w.Header().Set("Location", f.srv.URL+"/formrecognizer/v2.1/custom/models/"+v21ModelID)
		json(201, `{"modelId":"`+v21ModelID+`","accessToken":"tok-123456","expirationDateTimeTicks":1900000000}`)
	case strings.HasSuffix(p, ":copyTo") || strings.HasSuffix(p, "/copy"):
		w.Header().Set("Operation-Location", f.srv.URL+"/ops/1")
		w.WriteHeader(202)
	case strings.Contains(p, "/operations/"):
		json(200, `{"operationId":"1","kind":"documentModelCopyTo","status":"running","createdDateTime":"2030-01-01T00:00:00Z","lastUpdatedDateTime":"2030-01-01T00:00:00Z","resourceLocation":"https://x/documentModels/t1"}`)
	case strings.Contains(strings.ToLower(p), "/copyresults/"):
		json(200, `{"status":"running","createdDateTime":"2030-01-01T00:00:00Z","lastUpdatedDateTime":"2030-01-01T00:00:00Z","copyResult":{"modelId":"`+v21ModelID+`"}}`)
	case r.Method == http.MethodDelete:
		w.WriteHeader(204)
	case strings.HasSuffix(p, "/info"):
		json(200, `{"customDocumentModels":{"count":3,"limit":500}}`)
	case strings.HasSuffix(p, "/custom/models") && r.URL.Query().Get("op") == "summary":
		json(200, `{"summary":{"count":3,"limit":500}}`)
	case strings.HasSuffix(p, "/custom/models"):
		json(200, `{"modelList":[{"modelId":"`+v21ModelID+`","status":"ready"}],"nextLink":""}`)
	case strings.Contains(p, "/custom/models/"):
		json(200, `{"modelInfo":{"modelId":"`+v21ModelID+`","status":"ready"}}`)
	case strings.HasSuffix(p, "/documentModels") || strings.HasSuffix(p, "/documentClassifiers") || strings.HasSuffix(p, "/operations"):
		json(200, `{"value":[]}`)
	default:
		json(200, `{"modelId":"m1","classifierId":"m1","createdDateTime":"2030-01-01T00:00:00Z"}`)
	}
}

func (f *fakeResource) requests() []captured {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]captured(nil), f.reqs...)
}

func drain[T any](seq func(func(T, error) bool)) error {
	var err error
	seq(func(_ T, e error) bool {
		err = e
		return e == nil
	})
	return err
}

// TestRoutesPerVersion checks method, path and query of every call in every version, and that the
// calls a version lacks fail with ErrUnsupported before any request.
func TestRoutesPerVersion(t *testing.T) {
	auth := func(v APIVersion, k Kind) *Authorization {
		if v == V2_1 {
			return &Authorization{Kind: k, APIVersion: v, Body: []byte(`{"targetResourceId":"` + armID + `","targetResourceRegion":"westus2","copyAuthorization":{"modelId":"` + v21ModelID + `","accessToken":"tok-123456","expirationDateTimeTicks":1}}`)}
		}
		return &Authorization{Kind: k, APIVersion: v, Body: []byte(`{"targetModelId":"t1","targetClassifierId":"t1","accessToken":"tok-123456"}`)}
	}
	type call func(ctx context.Context, c *Client, v APIVersion) error
	calls := map[string]call{
		"authorizeModel": func(ctx context.Context, c *Client, v APIVersion) error {
			_, err := c.AuthorizeCopy(ctx, KindModel, AuthorizeRequest{TargetID: "t1"})
			return err
		},
		"authorizeClassifier": func(ctx context.Context, c *Client, v APIVersion) error {
			_, err := c.AuthorizeCopy(ctx, KindClassifier, AuthorizeRequest{TargetID: "t1"})
			return err
		},
		"copyModel": func(ctx context.Context, c *Client, v APIVersion) error {
			src := "m1"
			if v == V2_1 {
				src = v21ModelID
			}
			_, err := c.CopyTo(ctx, KindModel, src, auth(v, KindModel))
			return err
		},
		"copyClassifier": func(ctx context.Context, c *Client, v APIVersion) error {
			_, err := c.CopyTo(ctx, KindClassifier, "m1", auth(v, KindClassifier))
			return err
		},
		"getOperation": func(ctx context.Context, c *Client, v APIVersion) error {
			u := c.Endpoint() + v.pathPrefix(string(v)) + "/operations/op1?api-version=" + string(v)
			if v == V2_1 {
				u = c.Endpoint() + "/formrecognizer/v2.1/custom/models/" + v21ModelID + "/copyresults/r1"
			}
			_, err := c.GetOperation(ctx, u)
			return err
		},
		"listOperations": func(ctx context.Context, c *Client, v APIVersion) error { return drain(c.Operations(ctx)) },
		"getModel": func(ctx context.Context, c *Client, v APIVersion) error {
			id := "m1"
			if v == V2_1 {
				id = v21ModelID
			}
			_, err := c.GetModel(ctx, KindModel, id)
			return err
		},
		"getClassifier": func(ctx context.Context, c *Client, v APIVersion) error {
			_, err := c.GetModel(ctx, KindClassifier, "m1")
			return err
		},
		"listModels":      func(ctx context.Context, c *Client, v APIVersion) error { return drain(c.Models(ctx, KindModel)) },
		"listClassifiers": func(ctx context.Context, c *Client, v APIVersion) error { return drain(c.Models(ctx, KindClassifier)) },
		"deleteModel": func(ctx context.Context, c *Client, v APIVersion) error {
			id := "m1"
			if v == V2_1 {
				id = v21ModelID
			}
			return c.DeleteModel(ctx, KindModel, id)
		},
		"deleteClassifier": func(ctx context.Context, c *Client, v APIVersion) error {
			return c.DeleteModel(ctx, KindClassifier, "m1")
		},
		"info": func(ctx context.Context, c *Client, v APIVersion) error {
			_, err := c.Info(ctx)
			return err
		},
	}
	type route struct{ method, path, query string } // empty method: ErrUnsupported expected
	unsupported := route{}
	v3 := func(prefix, v string, classifiers, classifierCopy bool) map[string]route {
		q := "api-version=" + v
		m := map[string]route{
			"authorizeModel":      {"POST", prefix + "/documentModels:authorizeCopy", q},
			"copyModel":           {"POST", prefix + "/documentModels/m1:copyTo", q},
			"getOperation":        {"GET", prefix + "/operations/op1", q},
			"listOperations":      {"GET", prefix + "/operations", q},
			"getModel":            {"GET", prefix + "/documentModels/m1", q},
			"listModels":          {"GET", prefix + "/documentModels", q},
			"deleteModel":         {"DELETE", prefix + "/documentModels/m1", q},
			"info":                {"GET", prefix + "/info", q},
			"authorizeClassifier": unsupported, "copyClassifier": unsupported,
			"getClassifier": unsupported, "listClassifiers": unsupported, "deleteClassifier": unsupported,
		}
		if classifiers {
			m["getClassifier"] = route{"GET", prefix + "/documentClassifiers/m1", q}
			m["listClassifiers"] = route{"GET", prefix + "/documentClassifiers", q}
			m["deleteClassifier"] = route{"DELETE", prefix + "/documentClassifiers/m1", q}
		}
		if classifierCopy {
			m["authorizeClassifier"] = route{"POST", prefix + "/documentClassifiers:authorizeCopy", q}
			m["copyClassifier"] = route{"POST", prefix + "/documentClassifiers/m1:copyTo", q}
		}
		return m
	}
	const p21 = "/formrecognizer/v2.1"
	want := map[APIVersion]map[string]route{
		V2024_11_30: v3("/documentintelligence", "2024-11-30", true, true),
		V2023_07_31: v3("/formrecognizer", "2023-07-31", true, false),
		V2022_08_31: v3("/formrecognizer", "2022-08-31", false, false),
		V2_1: {
			"authorizeModel":      {"POST", p21 + "/custom/models/copyAuthorization", ""},
			"copyModel":           {"POST", p21 + "/custom/models/" + v21ModelID + "/copy", ""},
			"getOperation":        {"GET", p21 + "/custom/models/" + v21ModelID + "/copyresults/r1", ""},
			"listOperations":      unsupported,
			"getModel":            {"GET", p21 + "/custom/models/" + v21ModelID, ""},
			"listModels":          {"GET", p21 + "/custom/models", "op=full"},
			"deleteModel":         {"DELETE", p21 + "/custom/models/" + v21ModelID, ""},
			"info":                {"GET", p21 + "/custom/models", "op=summary"},
			"authorizeClassifier": unsupported, "copyClassifier": unsupported,
			"getClassifier": unsupported, "listClassifiers": unsupported, "deleteClassifier": unsupported,
		},
	}
	for v, routes := range want {
		for name, r := range routes {
			t.Run(string(v)+"/"+name, func(t *testing.T) {
				f := newFakeResource(t)
				c, err := New(f.srv.URL, Options{APIVersion: v, Key: "route-key-0123456789", ResourceID: armID, Region: "westus2", Retry: fastRetry})
				if err != nil {
					t.Fatal(err)
				}
				err = calls[name](context.Background(), c, v)
				reqs := f.requests()
				if r.method == "" {
					if !errors.Is(err, ErrUnsupported) || len(reqs) != 0 {
						t.Fatalf("err = %v after %d requests, want ErrUnsupported before any", err, len(reqs))
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(reqs) != 1 {
					t.Fatalf("%d requests, want 1", len(reqs))
				}
				checkRoute(t, reqs[0], r.method, r.path, mustQuery(t, r.query))
			})
		}
	}
	if len(calls) != len(want[V2_1]) {
		t.Errorf("%d calls but %d routes per version", len(calls), len(want[V2_1]))
	}
}

func mustQuery(t *testing.T, s string) url.Values {
	t.Helper()
	q, err := url.ParseQuery(s)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestDegradeHeader(t *testing.T) {
	for _, degrade := range []bool{false, true} {
		f := newFakeResource(t)
		c, err := New(f.srv.URL, Options{Key: "route-key-0123456789", Degrade: degrade})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CopyTo(context.Background(), KindModel, "m1", &Authorization{Body: []byte(`{"targetModelId":"t1"}`)}); err != nil {
			t.Fatal(err)
		}
		want := ""
		if degrade {
			want = "true"
		}
		check(t, fmt.Sprintf("degrade=%t header", degrade), f.requests()[0].header.Get(degradeHeader), want)
	}
}

func TestOperationURL(t *testing.T) {
	tests := []struct {
		v    APIVersion
		want string
	}{
		{V2024_11_30, "https://res.example/documentintelligence/operations/31443311838_ccfe0fd8?api-version=2024-11-30"},
		{V2023_07_31, "https://res.example/formrecognizer/operations/31443311838_ccfe0fd8?api-version=2023-07-31"},
		{V2022_08_31, "https://res.example/formrecognizer/operations/31443311838_ccfe0fd8?api-version=2022-08-31"},
	}
	for _, tt := range tests {
		c, err := New("https://res.example", Options{APIVersion: tt.v, Key: "k"})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.OperationURL("31443311838_ccfe0fd8"); got != tt.want {
			t.Errorf("%s: OperationURL = %q, want %q", tt.v, got, tt.want)
		}
	}
}
