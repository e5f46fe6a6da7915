package docintel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseAPIVersion(t *testing.T) {
	tests := []struct {
		in      string
		want    APIVersion
		wantErr bool
	}{
		{"", V2024_11_30, false},
		{"2024-11-30", V2024_11_30, false},
		{" 2023-07-31 ", V2023_07_31, false},
		{"2022-08-31", V2022_08_31, false},
		{"2.1", V2_1, false},
		{"v2.1", V2_1, false},
		{"V2.1", V2_1, false},
		{"2024-07-31-preview", "", true},
		{"v2.0", "", true},
		{"latest", "", true},
	}
	for _, tt := range tests {
		got, err := ParseAPIVersion(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseAPIVersion(%q) = %q, %v", tt.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseAPIVersion(%q): error %v does not wrap ErrInvalidArgument", tt.in, err)
		}
	}
}

func TestNewValidation(t *testing.T) {
	cred := &fakeCredential{token: "t"}
	tests := []struct {
		name     string
		endpoint string
		opts     Options
		wantErr  string // substring; "" = valid
	}{
		{"https", "https://r.cognitiveservices.azure.com/", Options{Key: "k1234"}, ""},
		{"https with bearer", "https://r.cognitiveservices.azure.com", Options{Credential: cred}, ""},
		{"http loopback", "http://127.0.0.1:8080", Options{Key: "k1234"}, ""},
		{"http localhost with bearer", "http://localhost:8080", Options{Credential: cred}, ""},
		{"http ipv6 loopback", "http://[::1]:8080", Options{Key: "k1234"}, ""},
		{"path prefix kept", "https://proxy.example.com/di/", Options{Key: "k1234"}, ""},
		{"http remote", "http://r.cognitiveservices.azure.com", Options{Key: "k1234"}, "plain http"},
		{"empty endpoint", "", Options{Key: "k1234"}, "endpoint is empty"},
		{"relative endpoint", "r.cognitiveservices.azure.com", Options{Key: "k1234"}, "absolute http(s) URL"},
		{"ftp", "ftp://r.example.com", Options{Key: "k1234"}, "absolute http(s) URL"},
		{"query", "https://r.example.com/?x=1", Options{Key: "k1234"}, "query or fragment"},
		{"user info", "https://u:p@r.example.com", Options{Key: "k1234"}, "user info"},
		{"no credential", "https://r.example.com", Options{}, "Key or Credential is required"},
		{"both credentials", "https://r.example.com", Options{Key: "k1234", Credential: cred}, "not both"},
		{"unknown version", "https://r.example.com", Options{Key: "k1234", APIVersion: "2024-07-31-preview"}, "not supported"},
		{"negative timeout", "https://r.example.com", Options{Key: "k1234", CallTimeout: -time.Second}, "CallTimeout"},
	}
	for _, tt := range tests {
		c, err := New(tt.endpoint, tt.opts)
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: New = %v, %v; want an ErrInvalidArgument mentioning %q", tt.name, c, err, tt.wantErr)
		}
	}
	c, err := New("https://R.cognitiveservices.azure.com/", Options{Key: "k1234"})
	if err != nil {
		t.Fatal(err)
	}
	check(t, "Endpoint", c.Endpoint(), "https://r.cognitiveservices.azure.com")
	check(t, "APIVersion", c.APIVersion(), V2024_11_30)
	check(t, "ResourceLocation", c.ResourceLocation(KindModel, "m1"), "https://r.cognitiveservices.azure.com/documentintelligence/documentModels/m1?api-version=2024-11-30")
	check(t, "String", fmt.Sprintf("%v", c), "docintel.Client{Endpoint:https://r.cognitiveservices.azure.com APIVersion:2024-11-30}")
}

func TestStatus(t *testing.T) {
	for s, terminal := range map[Status]bool{
		StatusNotStarted: false, StatusRunning: false, StatusSucceeded: true, StatusFailed: true,
		StatusCanceled: true, StatusSkipped: true, StatusCompleted: true, "unknown": false,
	} {
		check(t, string(s)+" terminal", s.Terminal(), terminal)
	}
	check(t, "completed succeeded", StatusCompleted.Succeeded(), true)
	check(t, "failed succeeded", StatusFailed.Succeeded(), false)
}

func TestTicksTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		{"1682793416", time.Unix(1682793416, 0).UTC()},
		{"637251001221004515", time.Date(2020, 5, 15, 0, 42, 2, 100451500, time.UTC)}, // v2.0-preview .NET ticks
		{"0", time.Time{}},
		{"-3", time.Time{}},
		{"", time.Time{}},
		{"1e3", time.Time{}},
		{"5000000000000000", time.Time{}}, // ticks before 1970
	}
	for _, tt := range tests {
		if got := ticksTime(json.Number(tt.in)); !got.Equal(tt.want) {
			t.Errorf("ticksTime(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestParseTimeTolerance(t *testing.T) {
	for in, want := range map[string]string{
		"2023-04-28T18:37:19.8620147Z": "2023-04-28T18:37:19.8620147Z",
		"2021-09-23T09:12:54.552Z":     "2021-09-23T09:12:54.552Z",
		"2024-08-07T19:42:46+02:00":    "2024-08-07T17:42:46Z",
		"2020-01-01T00:00:00":          "2020-01-01T00:00:00Z",
	} {
		checkTime(t, in, parseTime(in), want)
	}
	if !parseTime("yesterday").IsZero() {
		t.Error("garbage time not zero")
	}
}

func TestInputValidation(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	t.Cleanup(srv.Close)
	v3, err := New(srv.URL, Options{Key: "k1234"})
	if err != nil {
		t.Fatal(err)
	}
	v21, err := New(srv.URL, Options{Key: "k1234", APIVersion: V2_1})
	if err != nil {
		t.Fatal(err)
	}
	v21Bad, err := New(srv.URL, Options{Key: "k1234", APIVersion: V2_1, ResourceID: "resourceId", Region: "westus2"})
	if err != nil {
		t.Fatal(err)
	}
	v21BadRegion, err := New(srv.URL, Options{Key: "k1234", APIVersion: V2_1, ResourceID: armID, Region: "West US 2"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	good := &Authorization{Kind: KindModel, Body: []byte(`{"targetModelId":"t"}`)}
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"authorize: empty target id", func() error { _, err := v3.AuthorizeCopy(ctx, KindModel, AuthorizeRequest{}); return err }, ErrInvalidArgument},
		{"authorize: bad target id", func() error {
			_, err := v3.AuthorizeCopy(ctx, KindModel, AuthorizeRequest{TargetID: "has space"})
			return err
		}, ErrInvalidArgument},
		{"authorize: id too long", func() error {
			_, err := v3.AuthorizeCopy(ctx, KindModel, AuthorizeRequest{TargetID: strings.Repeat("a", 65)})
			return err
		}, ErrInvalidArgument},
		{"authorize: description too long", func() error {
			_, err := v3.AuthorizeCopy(ctx, KindModel, AuthorizeRequest{TargetID: "ok", Description: strings.Repeat("d", 4097)})
			return err
		}, ErrInvalidArgument},
		{"authorize: unknown kind", func() error { _, err := v3.AuthorizeCopy(ctx, "table", AuthorizeRequest{TargetID: "ok"}); return err }, ErrInvalidArgument},
		{"v2.1 authorize without ResourceID/Region", func() error { _, err := v21.AuthorizeCopy(ctx, KindModel, AuthorizeRequest{}); return err }, ErrInvalidArgument},
		{"v2.1 authorize with a bad ResourceID", func() error { _, err := v21Bad.AuthorizeCopy(ctx, KindModel, AuthorizeRequest{}); return err }, ErrInvalidArgument},
		{"v2.1 authorize with a display-name region", func() error {
			_, err := v21BadRegion.AuthorizeCopy(ctx, KindModel, AuthorizeRequest{})
			return err
		}, ErrInvalidArgument},
		{"v2.1 classifier", func() error { _, err := v21.GetModel(ctx, KindClassifier, v21ModelID); return err }, ErrUnsupported},
		{"v2.1 non-UUID id", func() error { _, err := v21.GetModel(ctx, KindModel, "m1"); return err }, ErrInvalidArgument},
		{"copyTo: nil authorization", func() error { _, err := v3.CopyTo(ctx, KindModel, "m1", nil); return err }, ErrInvalidArgument},
		{"copyTo: empty body", func() error { _, err := v3.CopyTo(ctx, KindModel, "m1", &Authorization{}); return err }, ErrInvalidArgument},
		{"copyTo: path-breaking id", func() error { _, err := v3.CopyTo(ctx, KindModel, "../info", good); return err }, ErrInvalidArgument},
		{"copyTo: classifier body for a model", func() error {
			_, err := v3.CopyTo(ctx, KindModel, "m1", &Authorization{Body: []byte(`{"targetClassifierId":"t"}`)})
			return err
		}, ErrInvalidArgument},
		{"copyTo: v2.1 authorization on a v3 source", func() error {
			_, err := v3.CopyTo(ctx, KindModel, "m1", &Authorization{APIVersion: V2_1, Body: good.Body})
			return err
		}, ErrInvalidArgument},
		{"copyTo: v3 body on a v2.1 source", func() error { _, err := v21.CopyTo(ctx, KindModel, v21ModelID, good); return err }, ErrInvalidArgument},
		{"copyTo: JSON array body", func() error {
			_, err := v3.CopyTo(ctx, KindModel, "m1", &Authorization{Body: []byte(`[1]`)})
			return err
		}, ErrInvalidArgument},
		{"getOperation: not a URL", func() error { _, err := v3.GetOperation(ctx, "::"); return err }, ErrInvalidArgument},
		{"getOperation: relative", func() error { _, err := v3.GetOperation(ctx, "/operations/1"); return err }, ErrInvalidArgument},
		{"getOperation: other host", func() error {
			_, err := v3.GetOperation(ctx, "http://127.0.0.2:1/documentintelligence/operations/1")
			return err
		}, ErrInvalidArgument},
		{"getOperation: other scheme", func() error {
			_, err := v3.GetOperation(ctx, strings.Replace(srv.URL, "http:", "https:", 1)+"/documentintelligence/operations/1")
			return err
		}, ErrInvalidArgument},
		{"getOperation: not an operation", func() error { _, err := v3.GetOperation(ctx, srv.URL+"/documentintelligence/info"); return err }, ErrInvalidArgument},
		{"getOperation: v2.1 URL that is not a copy result", func() error {
			_, err := v21.GetOperation(ctx, srv.URL+"/formrecognizer/v2.1/custom/models/"+v21ModelID)
			return err
		}, ErrInvalidArgument},
		{"operations on v2.1", func() error { return drain(v21.Operations(ctx)) }, ErrUnsupported},
		{"delete: empty id", func() error { return v3.DeleteModel(ctx, KindModel, "") }, ErrInvalidArgument},
	}
	for _, tt := range tests {
		if err := tt.call(); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
	check(t, "requests sent for bad input", requests.Load(), int32(0))
}

func TestPaging(t *testing.T) {
	var srvURL string
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Query().Get("page") {
		case "":
			// absolute nextLink without api-version
			fmt.Fprintf(w, `{"value":[{"modelId":"prebuilt-read"},{"modelId":"a"}],"nextLink":"%s/documentintelligence/documentModels?page=2"}`, srvURL)
		case "2":
			if r.URL.Query().Get("api-version") != "2024-11-30" {
				http.Error(w, "no api-version", 400)
				return
			}
			// relative nextLink
			fmt.Fprint(w, `{"value":[{"modelId":"b"},{"modelId":"prebuilt-layout"}],"nextLink":"documentModels?page=3&api-version=2024-11-30"}`)
		case "3":
			fmt.Fprint(w, `{"value":[{"modelId":"c"}]}`)
		case "loop":
			fmt.Fprintf(w, `{"value":[{"modelId":"x"}],"nextLink":"%s/documentintelligence/documentModels?page=loop&api-version=2024-11-30"}`, srvURL)
		}
	}))
	t.Cleanup(srv.Close)
	srvURL = srv.URL
	c, err := New(srv.URL, Options{Key: "k1234", Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for m, err := range c.Models(context.Background(), KindModel) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	check(t, "ids", strings.Join(ids, ","), "a,b,c")
	check(t, "pages", hits.Load(), int32(3))

	// Breaking out of the loop stops paging.
	hits.Store(0)
	for range c.Models(context.Background(), KindModel) {
		break
	}
	check(t, "pages after break", hits.Load(), int32(1))

	// A nextLink that repeats a page ends with an error instead of looping.
	n := 0
	var last error
	for _, err := range pages(c, context.Background(), "listModels", srv.URL+"/documentintelligence/documentModels?page=loop&api-version=2024-11-30", func(b []byte) ([]string, string, error) {
		var p struct{ NextLink string }
		_ = json.Unmarshal(b, &p)
		return []string{"x"}, p.NextLink, nil
	}) {
		n++
		last = err
	}
	if last == nil || !strings.Contains(last.Error(), "repeats") || n != 2 {
		t.Errorf("loop: %d items, last err %v", n, last)
	}
}

func TestOperationLocation(t *testing.T) {
	tests := []struct {
		name, header, want string
		wantErr            bool
	}{
		{"absolute", "/absolute", "", false},
		{"relative", "relative", "", false},
		{"missing", "", "", true},
	}
	for _, tt := range tests {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch tt.header {
			case "/absolute":
				w.Header().Set("operation-location", "http://"+r.Host+"/documentintelligence/operations/1?api-version=2024-11-30")
			case "relative":
				w.Header().Set("Operation-Location", "/documentintelligence/operations/2?api-version=2024-11-30")
			}
			w.WriteHeader(202)
		}))
		c, err := New(srv.URL, Options{Key: "k1234"})
		if err != nil {
			t.Fatal(err)
		}
		loc, err := c.CopyTo(context.Background(), KindModel, "m1", &Authorization{Body: []byte(`{"targetModelId":"t"}`)})
		switch {
		case tt.wantErr && err == nil:
			t.Errorf("%s: no error", tt.name)
		case !tt.wantErr && (err != nil || !strings.HasPrefix(loc, srv.URL+"/documentintelligence/operations/")):
			t.Errorf("%s: %q, %v", tt.name, loc, err)
		}
		srv.Close()
	}
}

func TestOperationParsing(t *testing.T) {
	body := `{"operationId":"31432227067_x","kind":"documentModelCompose","status":"completed","percentCompleted":99.6,
		"createdDateTime":"2024-12-14T01:48:53Z","lastUpdatedDateTime":"bogus","resourceLocation":"https://t/documentintelligence/documentModels/composed1?api-version=2024-07-31-preview",
		"tags":{"a":"b"},"result":{"modelId":"composed1","classifierId":"cls1","docTypes":{"x":{"modelId":"m2"},"y":{"modelId":"m1"}}}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body) }))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, Options{Key: "k1234"})
	if err != nil {
		t.Fatal(err)
	}
	op, err := c.GetOperation(context.Background(), srv.URL+"/documentintelligence/operations/31432227067_x")
	if err != nil {
		t.Fatal(err)
	}
	check(t, "status", op.Status, StatusCompleted)
	check(t, "terminal", op.Status.Terminal(), true)
	check(t, "percent rounded", op.PercentCompleted, 100)
	check(t, "target is the model, not its classifier", op.TargetID, "composed1")
	check(t, "bogus time is zero", op.LastUpdated.IsZero(), true)
	checkTags(t, "tags", op.Tags, map[string]string{"a": "b"})

	var w wireModel
	if err := json.Unmarshal(op.Result, &w); err != nil {
		t.Fatal(err)
	}
	m := modelFromWire(KindModel, w)
	check(t, "components", strings.Join(m.ComponentModelIDs, ","), "m1,m2")
	check(t, "classifier", m.ClassifierID, "cls1")
}

func TestIDFromLocation(t *testing.T) {
	for loc, want := range map[string]string{
		"https://h/documentintelligence/documentModels/m1?api-version=2024-11-30":      "m1",
		"https://h/documentintelligence/documentClassifiers/c1?api-version=2024-11-30": "c1",
		"https://h/formrecognizer/v2.1/custom/models/" + v21ModelID:                    v21ModelID,
		"https://h/documentintelligence/operations/1":                                  "",
		"":             "",
		"%zz":          "",
		"https://h/":   "",
		"Sanitized":    "",
		"/models/only": "only",
	} {
		check(t, loc, idFromLocation(loc), want)
	}
}

func TestRequestLogging(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("apim-request-id", "log-req-1")
		fmt.Fprint(w, `{"customDocumentModels":{"count":1,"limit":2}}`)
	}))
	t.Cleanup(srv.Close)
	var buf bytes.Buffer
	c, err := New(srv.URL, Options{Key: "log-key-0123456789", Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	var line struct {
		Msg, Method, URL, ApimRequestID string
		Status                          int
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", buf.String(), err)
	}
	check(t, "msg", line.Msg, "docintel request")
	check(t, "method", line.Method, "GET")
	check(t, "url", line.URL, srv.URL+"/documentintelligence/info?api-version=2024-11-30")
	check(t, "status", line.Status, 200)
	check(t, "apim id", line.ApimRequestID, "log-req-1")
	if strings.Contains(buf.String(), "log-key-0123456789") {
		t.Error("key in log")
	}
}
