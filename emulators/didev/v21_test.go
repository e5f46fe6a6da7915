package didev

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/internal/fakeclock"
)

// v21 trains a labeled model on src and waits until it is ready.
func v21Train(t *testing.T, clock *fakeclock.Clock, base string, build time.Duration) string {
	t.Helper()
	a := do(t, "POST", base+"/custom/models", `{"source":"https://acct.blob.core.windows.net/train?sas","useLabelFile":true}`)
	mustStatus(t, a, http.StatusCreated)
	loc := a.header.Get("Location")
	if !strings.HasPrefix(loc, base+"/custom/models/") {
		t.Fatalf("Location %q", loc)
	}
	id := strings.TrimPrefix(loc, base+"/custom/models/")
	if m := do(t, "GET", loc+"?includeKeys=true", nil).json(t); str2(m, "modelInfo", "status") != "creating" {
		t.Errorf("new model %v", m)
	}
	clock.Advance(build)
	m := do(t, "GET", loc, nil).json(t)
	if str2(m, "modelInfo", "status") != "ready" || m["trainResult"] == nil {
		t.Fatalf("trained model %v", m)
	}
	return id
}

func TestV21Copy(t *testing.T) {
	clock := newFakeClock()
	o := testOptions(clock)
	srv := startServer(t, o)
	src := srv.Endpoint("source") + "/formrecognizer/v2.1"
	tgt := srv.Endpoint("target") + "/formrecognizer/v2.1"
	srcModel := v21Train(t, clock, src, o.BuildDuration)
	clock.Advance(time.Hour)

	authorize := func() map[string]any {
		a := do(t, "POST", tgt+"/custom/models/copyAuthorization", nil)
		mustStatus(t, a, http.StatusCreated)
		body := a.json(t)
		if a.header.Get("Location") != tgt+"/custom/models/"+str2(body, "modelId") {
			t.Errorf("Location %q for %v", a.header.Get("Location"), body)
		}
		if a.header.Get("azure-deprecating") == "" {
			t.Error("no azure-deprecating header on v2.1")
		}
		if ticks := body["expirationDateTimeTicks"].(float64); int64(ticks) != clock.Now().Add(24*time.Hour).Unix() {
			t.Errorf("ticks %v, want now+24h in Unix seconds", ticks)
		}
		return body
	}
	copyBody := func(ca map[string]any, region string) map[string]any {
		return map[string]any{"targetResourceId": srv.Resource("target").ResourceID(), "targetResourceRegion": region, "copyAuthorization": ca}
	}
	ca := authorize()
	targetID := str2(ca, "modelId")
	if m := do(t, "GET", tgt+"/custom/models/"+targetID, nil).json(t); str2(m, "modelInfo", "status") != "creating" {
		t.Errorf("reserved target %v", m)
	}
	cp := do(t, "POST", src+"/custom/models/"+srcModel+"/copy", copyBody(ca, "westus2"))
	mustStatus(t, cp, http.StatusAccepted)
	loc := cp.header.Get("Operation-Location")
	if !strings.HasPrefix(loc, src+"/custom/models/"+srcModel+"/copyresults/") {
		t.Fatalf("Operation-Location %q", loc)
	}
	res := do(t, "GET", strings.Replace(loc, "copyresults", "copyResults", 1), nil).json(t)
	if res["status"] != "notStarted" || str2(res, "copyResult", "modelId") != targetID {
		t.Errorf("copy result %v", res)
	}
	clock.Advance(o.CopyDuration)
	res = do(t, "GET", loc, nil).json(t)
	if res["status"] != "succeeded" {
		t.Fatalf("copy result %v", res)
	}
	target := do(t, "GET", tgt+"/custom/models/"+targetID, nil).json(t)
	source := do(t, "GET", src+"/custom/models/"+srcModel, nil).json(t)
	if str2(target, "modelInfo", "status") != "ready" || str2(target, "modelInfo", "createdDateTime") != str2(source, "modelInfo", "createdDateTime") {
		t.Errorf("copied model %v, source %v: createdDateTime is the source's [rec]", target, source)
	}

	// Reuse: HTTP 200 + failed + 2024 + header [rec].
	clock.Advance(250 * time.Millisecond)
	reuse := do(t, "POST", src+"/custom/models/"+srcModel+"/copy", copyBody(ca, "westus2"))
	mustStatus(t, reuse, http.StatusAccepted)
	clock.Advance(o.CopyDuration)
	fa := do(t, "GET", reuse.header.Get("Operation-Location"), nil)
	mustStatus(t, fa, http.StatusOK)
	var failed struct {
		Status          string `json:"status"`
		CreatedDateTime string `json:"createdDateTime"`
		CopyResult      struct {
			ModelID string    `json:"modelId"`
			Errors  []v2Error `json:"errors"`
		} `json:"copyResult"`
	}
	if err := json.Unmarshal(fa.body, &failed); err != nil {
		t.Fatal(err)
	}
	if failed.Status != "failed" || len(failed.CopyResult.Errors) != 1 || failed.CopyResult.Errors[0].Code != "2024" ||
		failed.CopyResult.Errors[0].InnerError == nil || failed.CopyResult.Errors[0].InnerError.RequestID != fa.header.Get("apim-request-id") {
		t.Errorf("reuse result %s", fa.body)
	}
	if fa.header.Get("ms-azure-ai-errorcode") != "2024" {
		t.Errorf("ms-azure-ai-errorcode %q", fa.header.Get("ms-azure-ai-errorcode"))
	}
	if !strings.HasSuffix(failed.CreatedDateTime, ".25Z") {
		t.Errorf("failed createdDateTime %q should keep its fractional seconds [rec]", failed.CreatedDateTime)
	}

	// Wrong region: notStarted throughout, then 2024 [rec].
	ca2 := authorize()
	wr := do(t, "POST", src+"/custom/models/"+srcModel+"/copy", copyBody(ca2, "westcentralus"))
	mustStatus(t, wr, http.StatusAccepted)
	clock.Advance(o.CopyDuration - time.Millisecond)
	if r := do(t, "GET", wr.header.Get("Operation-Location"), nil).json(t); r["status"] != "notStarted" {
		t.Errorf("wrong region before the end: %v", r)
	}
	clock.Advance(time.Millisecond)
	if r := do(t, "GET", wr.header.Get("Operation-Location"), nil).json(t); r["status"] != "failed" {
		t.Errorf("wrong region at the end: %v", r)
	}

	// Synchronous 1002s [rec].
	tests := []struct {
		name string
		body any
		want string
	}{
		{"malformed resource id", map[string]any{"targetResourceId": "resourceId", "targetResourceRegion": "westus2", "copyAuthorization": ca2}, v2MsgBadResource},
		{"bad region", map[string]any{"targetResourceId": srv.Resource("target").ResourceID(), "targetResourceRegion": "West US", "copyAuthorization": ca2}, v2MsgBadRegion},
		{"no authorization", map[string]any{"targetResourceId": srv.Resource("target").ResourceID(), "targetResourceRegion": "westus2"}, v2MsgNoAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, "POST", src+"/custom/models/"+srcModel+"/copy", tt.body)
			mustStatus(t, a, http.StatusBadRequest)
			if ct := a.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			var e struct{ Error v2Error }
			if err := json.Unmarshal(a.body, &e); err != nil || e.Error.Code != "1002" || e.Error.Message != tt.want {
				t.Errorf("body %s", a.body)
			}
		})
	}
	ca3 := authorize()
	clock.Advance(25 * time.Hour)
	exp := do(t, "POST", src+"/custom/models/"+srcModel+"/copy", copyBody(ca3, "westus2"))
	mustStatus(t, exp, http.StatusBadRequest)
	if !strings.Contains(string(exp.body), `"1002"`) || !strings.Contains(string(exp.body), "authorization has expired") {
		t.Errorf("expired body %s", exp.body)
	}
	nf := do(t, "POST", src+"/custom/models/00000000-0000-0000-0000-000000000000/copy", copyBody(ca3, "westus2"))
	mustStatus(t, nf, http.StatusNotFound)
	if !strings.Contains(string(nf.body), `"1022"`) {
		t.Errorf("missing source %s", nf.body)
	}

	// Listing and summary.
	sum := do(t, "GET", tgt+"/custom/models?op=summary", nil).json(t)
	if s := sum["summary"].(map[string]any); s["count"] != float64(1) || s["limit"] != float64(DefaultMaxModels) {
		t.Errorf("summary %v", sum)
	}
	full := do(t, "GET", tgt+"/custom/models?op=full", nil).json(t)
	if l := full["modelList"].([]any); len(l) != 3 || full["nextLink"] != "" {
		t.Errorf("full list (1 copied, 2 reserved) %v", full)
	}
	mustStatus(t, do(t, "DELETE", tgt+"/custom/models/"+targetID, nil), http.StatusNoContent)
	mustStatus(t, do(t, "DELETE", tgt+"/custom/models/"+str2(ca3, "modelId"), nil), http.StatusNoContent)
	gone := do(t, "GET", tgt+"/custom/models/"+targetID, nil)
	mustStatus(t, gone, http.StatusNotFound)
	if !strings.Contains(string(gone.body), "Model with 'id="+targetID+"' not found.") {
		t.Errorf("404 body %s", gone.body)
	}
	mustStatus(t, do(t, "GET", src+"/custom/models/"+srcModel+"/copyResults/nope", nil), http.StatusNotFound)
}

func TestV21PreviewCopyFailure(t *testing.T) {
	clock := newFakeClock()
	o := testOptions(clock)
	srv := startServer(t, o)
	src := srv.Endpoint("source") + "/formrecognizer/v2.1-preview.1"
	tgt := srv.Endpoint("target") + "/formrecognizer/v2.1-preview.1"
	a := do(t, "POST", src+"/custom/models", `{"source":"containersasurl","useLabelFile":false}`)
	mustStatus(t, a, http.StatusCreated)
	clock.Advance(o.BuildDuration)
	model := do(t, "GET", a.header.Get("Location")+"?includeKeys=true", nil).json(t)
	if model["keys"] == nil || str2(model, "modelInfo", "status") != "ready" {
		t.Errorf("unlabeled model with keys %v", model)
	}
	if _, ok := model["modelInfo"].(map[string]any)["attributes"]; ok {
		t.Error("v2.1-preview.1 shows attributes")
	}
	if a.header.Get("azure-deprecating") != "" {
		t.Error("the preview carries the GA retirement notice")
	}
	id := strings.TrimPrefix(a.header.Get("Location"), src+"/custom/models/")
	ca := do(t, "POST", tgt+"/custom/models/copyAuthorization", nil).json(t)
	cp := do(t, "POST", src+"/custom/models/"+id+"/copy", map[string]any{"targetResourceId": "resource_id", "targetResourceRegion": "eastus", "copyAuthorization": ca})
	mustStatus(t, cp, http.StatusAccepted) // the preview accepted any target id [rec]
	clock.Advance(o.CopyDuration)
	r := do(t, "GET", cp.header.Get("Operation-Location"), nil)
	if r.header.Get("x-ms-cs-error-code") != "AuthorizationError" || !strings.Contains(string(r.body), `"code":"AuthorizationError"`) {
		t.Errorf("preview failure %v %s", r.header, r.body)
	}
}
