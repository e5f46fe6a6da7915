package didev

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/internal/fakeclock"
)

const testKey = "test-key-5f1c"

func newFakeClock() *fakeclock.Clock {
	return fakeclock.New(time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC))
}

// testOptions are two resources (source in eastus, target in westus2), rate limits off and a
// fake clock; adjust before start.
func testOptions(clock *fakeclock.Clock) Options {
	o := Options{
		Resources: []ResourceOptions{
			{Name: "source", Addr: "127.0.0.1:0"},
			{Name: "target", Addr: "127.0.0.1:0", Region: "westus2"},
		},
		Key:           testKey,
		CopyDuration:  4 * time.Second,
		BuildDuration: 8 * time.Second,
		Rate:          RateOptions{Off: true},
	}
	if clock != nil {
		o.Clock = clock.Now
	}
	return o
}

func startServer(t testing.TB, o Options) *Server {
	t.Helper()
	srv, err := Start(context.Background(), o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return srv
}

// answer is a response read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, redact(a.body))
	}
	return m
}

// errCodes returns error.code and error.innererror.code of an error body.
func (a answer) errCodes(t testing.TB) (string, string) {
	t.Helper()
	e, _ := a.json(t)["error"].(map[string]any)
	if e == nil {
		t.Fatalf("no error object in %s", a.body)
	}
	code, _ := e["code"].(string)
	inner := ""
	if ie, ok := e["innererror"].(map[string]any); ok {
		inner, _ = ie["code"].(string)
	}
	return code, inner
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// do sends a request with the test key (unless headers set an auth header) and reads the answer.
func do(t testing.TB, method, url string, body any, headers ...string) answer {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	auth := true
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Ocp-Apim-Subscription-Key") || strings.EqualFold(headers[i], "Authorization") {
			auth = false
		}
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	if auth {
		req.Header.Set("Ocp-Apim-Subscription-Key", testKey)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

func mustStatus(t testing.TB, a answer, want int) {
	t.Helper()
	if a.status != want {
		t.Fatalf("status %d, want %d; body %s", a.status, want, redact(a.body))
	}
}

var tokenField = regexp.MustCompile(`("accessToken"\s*:\s*)"[^"]*"`)

// redact hides access tokens in bodies printed by failing tests.
func redact(b []byte) []byte { return tokenField.ReplaceAll(b, []byte(`$1"***"`)) }

// prefix is the path prefix of an api-version.
func prefix(v string) string {
	switch v {
	case "2024-11-30", "2024-07-31-preview", "2024-02-29-preview":
		return "/documentintelligence"
	default:
		return "/formrecognizer"
	}
}

// url builds an endpoint URL for a v3/v4 api-version.
func vurl(endpoint, v, path string) string {
	return endpoint + prefix(v) + path + "?api-version=" + v
}

// authorizeModel asks target for a model copy authorization and returns its body.
func authorizeModel(t testing.TB, target, v, id string, extra map[string]any) map[string]any {
	t.Helper()
	body := map[string]any{"modelId": id}
	for k, x := range extra {
		body[k] = x
	}
	a := do(t, "POST", vurl(target, v, "/documentModels:authorizeCopy"), body)
	mustStatus(t, a, http.StatusOK)
	return a.json(t)
}

func str2(m map[string]any, path ...string) string {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = mm[p]
	}
	s, _ := cur.(string)
	return s
}
