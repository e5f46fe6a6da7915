package handlers_test

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/dimirror/dimirror"
	"github.com/dimirror/dimirror/shared/funcdef"
	"github.com/dimirror/dimirror/shared/replication"
)

// The function table agrees with the function folders the host reads, and every entry has the
// one handler its trigger calls and a timeout.
func TestFunctionTableMatchesTheFolders(t *testing.T) {
	f := newFixture(t)
	defs, err := f.app.Check(dimirror.Functions)
	if err != nil {
		t.Fatal(err)
	}
	folders := map[string]bool{}
	for _, d := range defs {
		folders[d.Name] = true
	}
	table := f.app.Table()
	if len(table) != len(defs) {
		t.Errorf("%d table entries for %d folders", len(table), len(defs))
	}
	for _, fn := range table {
		t.Run(fn.Name, func(t *testing.T) {
			if !folders[fn.Name] {
				t.Errorf("no folder")
			}
			if fn.Timeout <= 0 {
				t.Errorf("timeout %s", fn.Timeout)
			}
			handlers := map[string]bool{funcdef.HTTPTrigger: fn.HTTP != nil, funcdef.ServiceBusTrigger: fn.Queue != nil, funcdef.TimerTrigger: fn.Timer != nil}
			for trigger, set := range handlers {
				if set != (trigger == fn.Trigger) {
					t.Errorf("trigger %s: handler for %s set: %v", fn.Trigger, trigger, set)
				}
			}
		})
	}
}

// httpPayload is the host's HTTP trigger invocation of a request.
func httpPayload(t *testing.T, function, method, path string, params map[string]string, body string) []byte {
	t.Helper()
	req := map[string]any{"Url": "http://localhost:7071" + path, "Method": method, "Query": map[string]any{},
		"Headers": map[string][]string{"Content-Type": {"application/json"}}, "Params": params, "Identities": []any{}, "Body": body}
	p, err := json.Marshal(map[string]any{"Data": map[string]any{"req": req},
		"Metadata": map[string]any{"sys": map[string]any{"MethodName": function, "UtcNow": "2026-05-01T12:00:00Z", "RandGuid": "5f1c6a2e-1111-4a1d-9a5b-0c6a6f6b7e8d"}}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// queuePayload is the host's Service Bus trigger invocation of a message body.
func queuePayload(t *testing.T, body string) []byte {
	t.Helper()
	quoted, _ := json.Marshal(body)
	p, err := json.Marshal(map[string]any{"Data": map[string]any{"message": string(quoted)},
		"Metadata": map[string]any{"DeliveryCount": "1", "SequenceNumber": "7", "MessageId": `"m1"`,
			"sys": map[string]any{"MethodName": "startcopy", "UtcNow": "2026-05-01T12:00:00Z", "RandGuid": "5f1c6a2e-1111-4a1d-9a5b-0c6a6f6b7e8d"}}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Every function of the table, invoked as the Functions host does (serve) and, for the HTTP
// functions, called on the standalone server (run): both reach the same handler.
func TestEveryFunctionInBothHostings(t *testing.T) {
	checkBody := `{"kind":"model","sourceId":"invoice-v1","target":"westus2","targetId":"invoice-v1","attempt":1,"check":1}`
	tests := []struct {
		function string
		payload  func(t *testing.T) []byte
		status   int    // the invocation's status
		logs     string // a part of its Logs
		res      int    // the caller's status in the res output (HTTP functions)
		// the same call on the standalone server
		method, path, body string
	}{
		{function: "authorize", payload: func(t *testing.T) []byte {
			return httpPayload(t, "authorize", "POST", "/api/replications", nil, `{"sourceId":"invoice-v1"}`)
		}, status: 200, res: 202, method: "POST", path: "/api/replications", body: `{"sourceId":"receipt-v2"}`},
		{function: "status", payload: func(t *testing.T) []byte {
			return httpPayload(t, "status", "GET", "/api/replications", map[string]string{}, "")
		}, status: 200, res: 200, method: "GET", path: "/api/replications"},
		{function: "status", payload: func(t *testing.T) []byte {
			return httpPayload(t, "status", "GET", "/api/replications/model/nope-v1", map[string]string{"kind": "model", "id": "nope-v1"}, "")
		}, status: 200, res: 404, method: "GET", path: "/api/replications/model/nope-v1"},
		{function: "status", payload: func(t *testing.T) []byte {
			return httpPayload(t, "status", "GET", "/api/replications/model", map[string]string{"kind": "model"}, "")
		}, status: 200, res: 404, method: "GET", path: "/api/replications/model"},
		{function: "dashboard", payload: func(t *testing.T) []byte {
			return httpPayload(t, "dashboard", "GET", "/api/dashboard", map[string]string{}, "")
		}, status: 200, res: 200, method: "GET", path: "/api/dashboard"},
		// This fixture has no drill configured.
		{function: "drill", payload: func(t *testing.T) []byte {
			return httpPayload(t, "drill", "GET", "/api/drill", map[string]string{}, "")
		}, status: 200, res: 501, method: "GET", path: "/api/drill"},
		{function: "startcopy", payload: func(t *testing.T) []byte { return queuePayload(t, checkBody) }, status: 200, logs: "handled"},
		{function: "startcopy", payload: func(t *testing.T) []byte { return queuePayload(t, `{"kind":"model"}`) }, status: 422, logs: "poison"},
		{function: "poll", payload: timerPayload, status: 200, logs: "poll: "},
		{function: "watch", payload: timerPayload, status: 200, logs: "watch: "},
		{function: "sweep", payload: timerPayload, status: 200, logs: "sweep: "},
	}
	f := newFixture(t)
	custom := f.app.CustomHandler()
	api, err := f.app.API(apiKey)
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.function] = true
		t.Run(tt.function+" "+tt.path, func(t *testing.T) {
			code, out := invoke(t, custom, tt.function, tt.payload(t))
			if code != tt.status || !strings.Contains(logs(out), tt.logs) {
				t.Fatalf("serve: POST /%s = %d %v", tt.function, code, out)
			}
			if tt.method == "" {
				return
			}
			res, _ := out["Outputs"].(map[string]any)["res"].(map[string]any)
			if res == nil || res["statusCode"] != float64(tt.res) {
				t.Errorf("serve: res %v, want status %d", res, tt.res)
			}
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			req.Header.Set("x-functions-key", apiKey)
			api.ServeHTTP(rec, req)
			if rec.Code != tt.res {
				t.Errorf("run: %s %s = %d %s, want %d", tt.method, tt.path, rec.Code, rec.Body, tt.res)
			}
		})
	}
	for _, fn := range f.app.Table() {
		if !covered[fn.Name] {
			t.Errorf("function %s has no case here", fn.Name)
		}
	}
}

// The queue function's outcome is the same whichever hosting carries it out.
func TestQueueFunctionOutcomes(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, body string
		settle     replication.Settle
	}{
		{"check of an unknown replica", `{"kind":"model","sourceId":"invoice-v1","target":"westus2","targetId":"invoice-v1","attempt":1,"check":1}`, replication.SettleComplete},
		{"not JSON", `hello`, replication.SettleDeadLetter},
		{"missing fields", `{"kind":"model","sourceId":"invoice-v1"}`, replication.SettleDeadLetter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := f.app.StartCopy(t.Context(), []byte(tt.body), 1)
			if out.Settle != tt.settle {
				t.Errorf("outcome %v (%s), want %v", out.Settle, out.Description(), tt.settle)
			}
			if tt.settle == replication.SettleDeadLetter && out.Reason != replication.DeadLetterPoison {
				t.Errorf("reason %q", out.Reason)
			}
		})
	}
}

// drifted is the project's function folders and host.json with one change.
func drifted(t *testing.T, change func(fstest.MapFS)) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(dimirror.Functions, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(dimirror.Functions, p)
		m[p] = &fstest.MapFile{Data: data}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	change(m)
	return m
}

func edit(path, old, new string) func(fstest.MapFS) {
	return func(m fstest.MapFS) {
		m[path].Data = []byte(strings.Replace(string(m[path].Data), old, new, 1))
	}
}

// Each kind of drift between the table and the folders stops the start-up, naming the function
// and the fix.
func TestStartupCheckRefusesDrift(t *testing.T) {
	tests := []struct {
		name   string
		change func(fstest.MapFS)
		want   []string
	}{
		{"entry without a folder", func(m fstest.MapFS) { delete(m, "functions/poll/function.json") },
			[]string{"function poll", "add the folder or remove the entry"}},
		{"folder without an entry", func(m fstest.MapFS) {
			m["functions/export/function.json"] = &fstest.MapFile{Data: []byte(`{"bindings":[{"type":"timerTrigger","direction":"in","name":"timer","schedule":"0 0 * * * *"}]}`)}
		}, []string{"functions/export/function.json", "add one", "or remove the folder"}},
		{"trigger", edit("functions/watch/function.json", `"timerTrigger"`, `"queueTrigger"`),
			[]string{"function watch", "trigger", "make them agree"}},
		{"trigger binding name", edit("functions/startcopy/function.json", `"name": "message"`, `"name": "msg"`),
			[]string{"function startcopy", "trigger binding name", `"msg"`, `"message"`}},
		{"route", edit("functions/status/function.json", `"replications/{kind?}/{id?}"`, `"replicas/{kind?}/{id?}"`),
			[]string{"function status", "route", "make them agree"}},
		{"methods", edit("functions/authorize/function.json", `["post"]`, `["post","put"]`),
			[]string{"function authorize", "methods", "POST,PUT"}},
		{"output binding", edit("functions/authorize/function.json", `"name": "res"`, `"name": "$return"`),
			[]string{"function authorize", "http output binding"}},
		{"route prefix", edit("host.json", `"routePrefix": "api"`, `"routePrefix": ""`),
			[]string{"routePrefix", "make them agree"}},
	}
	f := newFixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.app.Check(drifted(t, tt.change))
			if err == nil {
				t.Fatal("the check passed")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// A key given as ?code= (and anything else the list does not know) never comes back in
// nextLink; the list's own parameters do.
func TestNextLinkDoesNotEchoTheKey(t *testing.T) {
	f := newFixture(t)
	if _, err := f.app.Sweep(t.Context()); err != nil { // four replicas
		t.Fatal(err)
	}
	api, err := f.app.API(apiKey)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest("GET", "/api/replications?top=1&kind=model&code="+apiKey+"&debug=1", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	var page struct{ NextLink string }
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{apiKey, "code=", "debug="} {
		if strings.Contains(page.NextLink, bad) {
			t.Errorf("nextLink %q holds %q", page.NextLink, bad)
		}
	}
	for _, good := range []string{"top=1", "kind=model", "next="} {
		if !strings.Contains(page.NextLink, good) {
			t.Errorf("nextLink %q lacks %q", page.NextLink, good)
		}
	}
	// The link works (with the key sent as a header).
	rec = httptest.NewRecorder()
	req := httptest.NewRequest("GET", page.NextLink, nil)
	req.Header.Set("x-functions-key", apiKey)
	api.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), apiKey) {
		t.Errorf("following nextLink: %d %s", rec.Code, rec.Body)
	}
}
