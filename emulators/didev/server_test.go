package didev

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/internal/fakeclock"
)

var (
	uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	opIDRe = regexp.MustCompile(`^(\d{11})_([0-9a-f-]{36})$`)
)

func TestAuthentication(t *testing.T) {
	clock := newFakeClock()
	o := testOptions(clock)
	srv := startServer(t, o)
	o.AcceptBearer = true
	for i := range o.Resources {
		o.Resources[i].Addr = "127.0.0.1:0"
	}
	bearerSrv := startServer(t, o)
	src := srv.Endpoint("source")
	tests := []struct {
		name       string
		endpoint   string
		headers    []string
		wantStatus int
		wantBody   string
	}{
		{"valid key", src, nil, http.StatusOK, ""},
		{"wrong key", src, []string{"Ocp-Apim-Subscription-Key", "nope"}, http.StatusUnauthorized, badKeyBody},
		{"no credentials", src, []string{"Ocp-Apim-Subscription-Key", ""}, http.StatusUnauthorized, missingKeyBody},
		{"bearer refused on a regional endpoint", src, []string{"Authorization", "Bearer abc"}, http.StatusBadRequest, bearerRefusedBody},
		{"bearer accepted", bearerSrv.Endpoint("source"), []string{"Authorization", "Bearer abc"}, http.StatusOK, ""},
		{"basic is no credential", bearerSrv.Endpoint("source"), []string{"Authorization", "Basic abc"}, http.StatusUnauthorized, badKeyBody},
		{"empty bearer", bearerSrv.Endpoint("source"), []string{"Authorization", "Bearer "}, http.StatusUnauthorized, badKeyBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, "GET", vurl(tt.endpoint, "2024-11-30", "/info"), nil, tt.headers...)
			mustStatus(t, a, tt.wantStatus)
			if tt.wantBody != "" && string(a.body) != tt.wantBody {
				t.Errorf("body %s, want %s", a.body, tt.wantBody)
			}
			if a.status == http.StatusUnauthorized {
				// The recorded 401 carries no backend or security headers.
				for _, h := range []string{"x-ms-region", "Strict-Transport-Security", "X-Content-Type-Options"} {
					if a.header.Get(h) != "" {
						t.Errorf("401 carries %s", h)
					}
				}
				if ct := a.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
			}
			if !uuidRe.MatchString(a.header.Get("apim-request-id")) {
				t.Errorf("apim-request-id %q is not a UUID", a.header.Get("apim-request-id"))
			}
		})
	}
}

func TestRouting(t *testing.T) {
	srv := startServer(t, testOptions(newFakeClock()))
	if err := srv.Resource("source").Seed(Seed{Kind: KindModel, ID: "m1"}); err != nil {
		t.Fatal(err)
	}
	src := srv.Endpoint("source")
	tests := []struct {
		name, method, path string
		want               int
		gateway            bool // the APIM 404 body
	}{
		{"model", "GET", "/documentintelligence/documentModels/m1?api-version=2024-11-30", 200, false},
		{"case-insensitive route", "GET", "/DocumentIntelligence/DOCUMENTMODELS/m1?api-version=2024-11-30", 200, false},
		{"ids are case-sensitive", "GET", "/documentintelligence/documentModels/M1?api-version=2024-11-30", 404, false},
		{"formrecognizer family", "GET", "/formrecognizer/documentModels/m1?api-version=2023-07-31", 200, false},
		{"preview version", "GET", "/documentintelligence/documentModels/m1?api-version=2024-07-31-preview", 200, false},
		{"unsupported api-version", "GET", "/documentintelligence/documentModels/m1?api-version=2099-01-01", 404, true},
		{"missing api-version", "GET", "/documentintelligence/documentModels/m1", 404, true},
		{"version on the wrong path", "GET", "/documentintelligence/documentModels/m1?api-version=2023-07-31", 404, true},
		{"unknown route", "GET", "/documentintelligence/nothing?api-version=2024-11-30", 404, true},
		{"empty model id on copyTo", "POST", "/documentintelligence/documentModels/:copyTo?api-version=2024-11-30", 404, true},
		{"wrong method", "PUT", "/documentintelligence/documentModels/m1?api-version=2024-11-30", 404, true},
		{"no classifiers in 2022-08-31", "GET", "/formrecognizer/documentClassifiers?api-version=2022-08-31", 404, true},
		{"no classifier copy in 2023-07-31", "POST", "/formrecognizer/documentClassifiers:authorizeCopy?api-version=2023-07-31", 404, true},
		{"classifier list in 2023-07-31", "GET", "/formrecognizer/documentClassifiers?api-version=2023-07-31", 200, false},
		{"v2.1 summary", "GET", "/formrecognizer/v2.1/custom/models?op=summary", 200, false},
		{"v2.1 preview", "GET", "/formrecognizer/v2.1-preview.1/custom/models?op=summary", 200, false},
		{"unknown v2 version", "GET", "/formrecognizer/v2.7/custom/models?op=summary", 404, true},
		{"root", "GET", "/", 404, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, tt.method, src+tt.path, nil)
			mustStatus(t, a, tt.want)
			if tt.gateway {
				if string(a.body) != gatewayNotFoundBody {
					t.Errorf("body %s, want the gateway 404", a.body)
				}
				if a.header.Get("x-ms-region") != "" {
					t.Error("gateway answer carries x-ms-region")
				}
			}
			if a.header.Get("Strict-Transport-Security") == "" || a.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("security headers missing")
			}
		})
	}
}

func TestHeadersAndContentTypes(t *testing.T) {
	srv := startServer(t, testOptions(newFakeClock()))
	src := srv.Endpoint("source")
	ok := do(t, "GET", vurl(src, "2023-07-31", "/info"), nil)
	mustStatus(t, ok, 200)
	if ct := ok.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("success Content-Type %q", ct)
	}
	if got := ok.header.Get("x-ms-region"); got != "East US" {
		t.Errorf("x-ms-region %q, want the display name East US", got)
	}
	notFound := do(t, "GET", vurl(src, "2023-07-31", "/documentModels/nope"), nil)
	mustStatus(t, notFound, 404)
	if ct := notFound.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q", ct)
	}
	if code, inner := notFound.errCodes(t); code != "NotFound" || inner != "ModelNotFound" {
		t.Errorf("codes %s/%s", code, inner)
	}
	if tgt := do(t, "GET", vurl(srv.Endpoint("target"), "2023-07-31", "/info"), nil); tgt.header.Get("x-ms-region") != "West US 2" {
		t.Errorf("target x-ms-region %q", tgt.header.Get("x-ms-region"))
	}
	if ok.header.Get("x-ms-client-request-id") != "" {
		t.Error("x-ms-client-request-id is echoed; the service does not [rec]")
	}
}

// copyVersionCase is what one api-version does to a copied model [rec].
type copyVersionCase struct {
	version          string
	renamesDocType   bool
	keepsCreated     bool
	hasExpiration    bool
	opHasAPIVersion  bool
	runningPercent0  bool
	opContentLengthd bool
}

var copyVersionCases = []copyVersionCase{
	{"2024-11-30", true, false, true, true, true, true},
	{"2024-07-31-preview", true, false, true, true, false, false},
	{"2024-02-29-preview", true, false, true, true, false, false},
	{"2023-07-31", true, true, true, false, false, false},
	{"2023-02-28-preview", false, true, true, false, false, false},
	{"2022-08-31", true, true, false, false, false, false},
}

func TestCopyModelPerVersion(t *testing.T) {
	for _, tc := range copyVersionCases {
		t.Run(tc.version, func(t *testing.T) {
			clock := newFakeClock()
			srv := startServer(t, testOptions(clock))
			if err := srv.Resource("source").Seed(Seed{Kind: KindModel, ID: "src-model", Description: "source description"}); err != nil {
				t.Fatal(err)
			}
			seeded, _ := srv.Resource("source").Model(KindModel, "src-model")
			clock.Advance(time.Hour)
			src, tgt := srv.Endpoint("source"), srv.Endpoint("target")
			v := tc.version

			auth := authorizeModel(t, tgt, v, "copied", map[string]any{"description": "from auth", "tags": map[string]string{"k": "v"}})
			if exp, _ := time.Parse(time.RFC3339, str2(auth, "expirationDateTime")); !exp.Equal(clock.Now().Add(time.Hour)) {
				t.Errorf("expirationDateTime %s, want now+1h", exp)
			}
			if got := str2(auth, "targetResourceId"); got != srv.Resource("target").ResourceID() {
				t.Errorf("targetResourceId %q", got)
			}
			if got := str2(auth, "targetResourceRegion"); got != "westus2" {
				t.Errorf("targetResourceRegion %q", got)
			}
			if got, want := str2(auth, "targetModelLocation"), vurl(tgt, v, "/documentModels/copied"); got != want {
				t.Errorf("targetModelLocation %q, want %q", got, want)
			}
			// A second authorization of the reserved id is a conflict [rec].
			again := do(t, "POST", vurl(tgt, v, "/documentModels:authorizeCopy"), map[string]any{"modelId": "copied"})
			mustStatus(t, again, http.StatusConflict)
			if code, inner := again.errCodes(t); code != "Conflict" || inner != "ModelExists" {
				t.Errorf("codes %s/%s", code, inner)
			}

			cp := do(t, "POST", vurl(src, v, "/documentModels/src-model:copyTo"), auth)
			mustStatus(t, cp, http.StatusAccepted)
			if cp.header.Get("Content-Length") != "0" {
				t.Errorf("202 Content-Length %q", cp.header.Get("Content-Length"))
			}
			loc := cp.header.Get("Operation-Location")
			if !strings.HasPrefix(loc, src+prefix(v)+"/operations/") || !strings.HasSuffix(loc, "?api-version="+v) {
				t.Fatalf("Operation-Location %q", loc)
			}
			opID := strings.TrimSuffix(strings.TrimPrefix(loc, src+prefix(v)+"/operations/"), "?api-version="+v)
			mm := opIDRe.FindStringSubmatch(opID)
			if mm == nil || mm[2] != cp.header.Get("apim-request-id") {
				t.Fatalf("operation id %q does not end with the POST's apim-request-id %q", opID, cp.header.Get("apim-request-id"))
			}
			if n, _ := strconv.ParseInt(mm[1], 10, 64); n != 33166367999-clock.Now().Unix() {
				t.Errorf("operation id prefix %d, want 33166367999-unix(created)", n)
			}

			poll := func() (answer, map[string]any) {
				a := do(t, "GET", loc, nil)
				mustStatus(t, a, 200)
				return a, a.json(t)
			}
			a, op := poll()
			if op["status"] != "notStarted" {
				t.Errorf("first status %v", op["status"])
			}
			if _, ok := op["percentCompleted"]; ok {
				t.Error("percentCompleted before the final state")
			}
			if _, ok := op["apiVersion"]; ok != tc.opHasAPIVersion {
				t.Errorf("apiVersion present %v, want %v", ok, tc.opHasAPIVersion)
			}
			ct := a.header.Get("Content-Type")
			if tc.opContentLengthd && (ct != "application/json" || a.header.Get("Content-Length") == "") {
				t.Errorf("2024-11-30 operation GET: Content-Type %q Content-Length %q", ct, a.header.Get("Content-Length"))
			}
			if !tc.opContentLengthd && ct != "application/json; charset=utf-8" {
				t.Errorf("operation Content-Type %q", ct)
			}
			if got := str2(op, "resourceLocation"); got != vurl(tgt, v, "/documentModels/copied") {
				t.Errorf("resourceLocation %q should point at the target", got)
			}
			if got := do(t, "GET", vurl(tgt, v, "/documentModels/copied"), nil); got.status != 404 {
				t.Errorf("target model visible before the copy ends: %d", got.status)
			}
			clock.Advance(2 * time.Second)
			_, op = poll()
			if op["status"] != "running" {
				t.Errorf("mid status %v", op["status"])
			}
			if _, ok := op["percentCompleted"]; ok != tc.runningPercent0 {
				t.Errorf("running percentCompleted present %v, want %v", ok, tc.runningPercent0)
			}
			clock.Advance(2 * time.Second)
			_, op = poll()
			if op["status"] != "succeeded" || op["percentCompleted"] != float64(100) {
				t.Fatalf("final %v %v", op["status"], op["percentCompleted"])
			}
			result, _ := op["result"].(map[string]any)
			got := do(t, "GET", vurl(tgt, v, "/documentModels/copied"), nil)
			mustStatus(t, got, 200)
			for _, m := range []map[string]any{result, got.json(t)} {
				if m["modelId"] != "copied" || m["description"] != "from auth" || str2(m, "tags", "k") != "v" {
					t.Errorf("copied model %v", m)
				}
				docTypes, _ := m["docTypes"].(map[string]any)
				_, renamed := docTypes["copied"]
				_, kept := docTypes["src-model"]
				if renamed != tc.renamesDocType || kept == tc.renamesDocType {
					t.Errorf("docTypes %v: renamed %v, want %v", docTypes, renamed, tc.renamesDocType)
				}
				created, _ := time.Parse(time.RFC3339, str2(m, "createdDateTime"))
				wantCreated := clock.Now().Truncate(time.Second)
				if tc.keepsCreated {
					wantCreated = seeded.Created.Truncate(time.Second)
				}
				if !created.Equal(wantCreated) {
					t.Errorf("createdDateTime %s, want %s", created, wantCreated)
				}
				exp, hasExp := m["expirationDateTime"].(string)
				if hasExp != tc.hasExpiration {
					t.Errorf("expirationDateTime present %v, want %v", hasExp, tc.hasExpiration)
				}
				if hasExp && exp != ts(seeded.Expires) {
					t.Errorf("expirationDateTime %s, want the source's %s", exp, ts(seeded.Expires))
				}
			}
			// The authorization is spent: a reuse is accepted and then fails [decided].
			reuse := do(t, "POST", vurl(src, v, "/documentModels/src-model:copyTo"), auth)
			mustStatus(t, reuse, http.StatusAccepted)
			clock.Advance(5 * time.Second)
			fail := do(t, "GET", reuse.header.Get("Operation-Location"), nil).json(t)
			if fail["status"] != "failed" || str2(fail, "error", "innererror", "code") != CodeAuthMetadataNotFound {
				t.Errorf("reuse: %v", fail)
			}
			st := srv.Stats()
			if len(st.Authorizations) != 1 || st.Authorizations[0].CopyToAccepted != 2 || st.Authorizations[0].CopyToAfterConsumed != 1 || st.Authorizations[0].State != AuthConsumed {
				t.Errorf("authorization stats %+v", st.Authorizations)
			}
		})
	}
}

// TestCopyFailures covers the copy failures: synchronous ones and those the operation reports.
func TestCopyFailures(t *testing.T) {
	const v = "2024-11-30"
	type setup struct {
		srv   *Server
		clock *fakeclock.Clock
		auth  map[string]any
	}
	tests := []struct {
		name        string
		encrypted   bool // the source
		mutate      func(s setup) (string, map[string]any, []string)
		wantStatus  int
		wantCode    string // error.code (sync) or operation error.code
		wantInner   string
		wantSucceed bool
	}{
		{name: "expired", mutate: func(s setup) (string, map[string]any, []string) {
			s.clock.Advance(time.Hour)
			return "sm", s.auth, nil
		}, wantStatus: 400, wantCode: "InvalidRequest", wantInner: CodeAuthorizationExpired},
		{name: "altered token", mutate: func(s setup) (string, map[string]any, []string) {
			s.auth["accessToken"] = "forged"
			return "sm", s.auth, nil
		}, wantStatus: 202, wantCode: "Forbidden", wantInner: CodeAuthorizationFailed},
		{name: "altered target id", mutate: func(s setup) (string, map[string]any, []string) {
			s.auth["targetModelId"] = "other"
			return "sm", s.auth, nil
		}, wantStatus: 202, wantCode: "Forbidden", wantInner: CodeAuthorizationFailed},
		{name: "unknown target resource", mutate: func(s setup) (string, map[string]any, []string) {
			s.auth["targetResourceId"] = "/subscriptions/x/resourceGroups/y/providers/Microsoft.CognitiveServices/accounts/z"
			return "sm", s.auth, nil
		}, wantStatus: 202, wantCode: "InvalidRequest", wantInner: CodeResourceResolverError},
		{name: "wrong region", mutate: func(s setup) (string, map[string]any, []string) {
			s.auth["targetResourceRegion"] = "eastus"
			return "sm", s.auth, nil
		}, wantStatus: 202, wantCode: "InvalidRequest", wantInner: CodeAuthMetadataNotFound},
		{name: "missing source", mutate: func(s setup) (string, map[string]any, []string) {
			return "nope", s.auth, nil
		}, wantStatus: 400, wantCode: "InvalidRequest", wantInner: CodeModelNotReady},
		{name: "source still building", mutate: func(s setup) (string, map[string]any, []string) {
			if err := s.srv.Resource("source").Train(KindModel, "building"); err != nil {
				panic(err)
			}
			return "building", s.auth, nil
		}, wantStatus: 400, wantCode: "InvalidRequest", wantInner: CodeModelNotReady},
		{name: "missing accessToken", mutate: func(s setup) (string, map[string]any, []string) {
			delete(s.auth, "accessToken")
			return "sm", s.auth, nil
		}, wantStatus: 400, wantCode: "InvalidArgument", wantInner: CodeParameterMissing},
		{name: "bad expirationDateTime", mutate: func(s setup) (string, map[string]any, []string) {
			s.auth["expirationDateTime"] = "tomorrow"
			return "sm", s.auth, nil
		}, wantStatus: 400, wantCode: "InvalidArgument", wantInner: CodeInvalidParameter},
		{name: "reformatted expirationDateTime", mutate: func(s setup) (string, map[string]any, []string) {
			exp, _ := time.Parse(time.RFC3339, s.auth["expirationDateTime"].(string))
			s.auth["expirationDateTime"] = exp.Format("2006-01-02T15:04:05.0000000Z")
			return "sm", s.auth, nil
		}, wantStatus: 202, wantSucceed: true},
		{name: "encrypted to unencrypted without degrade", encrypted: true, mutate: func(s setup) (string, map[string]any, []string) {
			return "sm", s.auth, nil
		}, wantStatus: 202, wantCode: "InvalidRequest", wantInner: CodeDataProtection},
		{name: "encrypted to unencrypted with degrade", encrypted: true, mutate: func(s setup) (string, map[string]any, []string) {
			return "sm", s.auth, []string{"x-ms-forms-copy-degrade", "true"}
		}, wantStatus: 202, wantSucceed: true},
		{name: "body is not JSON", mutate: func(s setup) (string, map[string]any, []string) {
			return "sm", nil, nil
		}, wantStatus: 400, wantCode: "InvalidArgument", wantInner: CodeInvalidParameter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			o := testOptions(clock)
			o.Resources[0].Encrypted = tt.encrypted
			srv := startServer(t, o)
			if err := srv.Resource("source").Seed(Seed{Kind: KindModel, ID: "sm"}); err != nil {
				t.Fatal(err)
			}
			auth := authorizeModel(t, srv.Endpoint("target"), v, "t1", nil)
			srcID, body, headers := tt.mutate(setup{srv, clock, auth})
			var payload any = body
			if body == nil {
				payload = "{not json"
			}
			a := do(t, "POST", vurl(srv.Endpoint("source"), v, "/documentModels/"+srcID+":copyTo"), payload, headers...)
			mustStatus(t, a, tt.wantStatus)
			if tt.wantStatus != http.StatusAccepted {
				if code, inner := a.errCodes(t); code != tt.wantCode || inner != tt.wantInner {
					t.Errorf("codes %s/%s, want %s/%s", code, inner, tt.wantCode, tt.wantInner)
				}
				return
			}
			clock.Advance(o.CopyDuration)
			op := do(t, "GET", a.header.Get("Operation-Location"), nil).json(t)
			if tt.wantSucceed {
				if op["status"] != "succeeded" {
					t.Fatalf("operation %v", op)
				}
				if _, ok := srv.Resource("target").Model(KindModel, "t1"); !ok {
					t.Error("target model missing")
				}
				return
			}
			if op["status"] != "failed" || str2(op, "error", "code") != tt.wantCode || str2(op, "error", "innererror", "code") != tt.wantInner {
				t.Errorf("operation %v, want failed %s/%s", op, tt.wantCode, tt.wantInner)
			}
			if _, ok := srv.Resource("target").Model(KindModel, "t1"); ok {
				t.Error("a failed copy created the target model")
			}
			if r := srv.Resource("target").Reservations(); len(r) != 1 || r[0].ID != "t1" {
				t.Errorf("the reservation should survive a failed copy: %+v", r)
			}
		})
	}
}

func TestReservationLifecycle(t *testing.T) {
	const v = "2023-07-31"
	clock := newFakeClock()
	srv := startServer(t, testOptions(clock))
	tgt := srv.Endpoint("target")
	if err := srv.Resource("target").Seed(Seed{Kind: KindModel, ID: "existing"}); err != nil {
		t.Fatal(err)
	}
	conflict := func(id string) {
		t.Helper()
		a := do(t, "POST", vurl(tgt, v, "/documentModels:authorizeCopy"), map[string]any{"modelId": id})
		mustStatus(t, a, http.StatusConflict)
	}
	conflict("existing") // an existing model [rec]
	authorizeModel(t, tgt, v, "reserved", nil)
	conflict("reserved") // a reserved id [rec]
	clock.Advance(2 * time.Hour)
	conflict("reserved") // expired but unconsumed: still reserved (assumption)
	mustStatus(t, do(t, "GET", vurl(tgt, v, "/documentModels/reserved"), nil), http.StatusNotFound)
	mustStatus(t, do(t, "DELETE", vurl(tgt, v, "/documentModels/reserved"), nil), http.StatusNoContent)
	if r := srv.Resource("target").Reservations(); len(r) != 0 {
		t.Errorf("reservations after DELETE: %+v", r)
	}
	authorizeModel(t, tgt, v, "reserved", nil) // freed
	mustStatus(t, do(t, "DELETE", vurl(tgt, v, "/documentModels/never"), nil), http.StatusNotFound)
	mustStatus(t, do(t, "DELETE", vurl(tgt, v, "/documentModels/existing"), nil), http.StatusNoContent)
	authorizeModel(t, tgt, v, "existing", nil)
}

func TestAuthorizeValidation(t *testing.T) {
	srv := startServer(t, testOptions(newFakeClock()))
	tgt := srv.Endpoint("target")
	tests := []struct {
		name      string
		body      any
		wantInner string
	}{
		{"missing modelId", map[string]any{}, CodeParameterMissing},
		{"bad modelId", map[string]any{"modelId": "bad id!"}, CodeInvalidParameter},
		{"one-character modelId", map[string]any{"modelId": "a"}, CodeInvalidParameter},
		{"prebuilt prefix", map[string]any{"modelId": "prebuilt-x"}, CodeInvalidParameter},
		{"long description", map[string]any{"modelId": "ok1", "description": strings.Repeat("d", 4097)}, CodeInvalidParameterLen},
		{"modelId of the wrong type", map[string]any{"modelId": 7}, CodeInvalidParameter},
		{"array body", "[]", CodeInvalidParameter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, "POST", vurl(tgt, "2024-11-30", "/documentModels:authorizeCopy"), tt.body)
			mustStatus(t, a, http.StatusBadRequest)
			if code, inner := a.errCodes(t); code != "InvalidArgument" || inner != tt.wantInner {
				t.Errorf("codes %s/%s, want InvalidArgument/%s", code, inner, tt.wantInner)
			}
		})
	}
}

func TestQuota(t *testing.T) {
	const v = "2024-11-30"
	o := testOptions(newFakeClock())
	o.Resources[1].MaxModels = 2
	srv := startServer(t, o)
	tgt := srv.Endpoint("target")
	if err := srv.Resource("target").Seed(Seed{Kind: KindModel, ID: "one"}); err != nil {
		t.Fatal(err)
	}
	info := do(t, "GET", vurl(tgt, v, "/info"), nil).json(t)
	if m := info["customDocumentModels"].(map[string]any); m["count"] != float64(1) || m["limit"] != float64(2) {
		t.Errorf("/info %v", info)
	}
	authorizeModel(t, tgt, v, "two", nil) // the reservation takes the last slot
	for _, req := range []struct{ path, body string }{
		{"/documentModels:authorizeCopy", `{"modelId":"three"}`},
		{"/documentModels:build", `{"modelId":"three","buildMode":"template","azureBlobSource":{"containerUrl":"https://x.blob.core.windows.net/c"}}`},
	} {
		a := do(t, "POST", vurl(tgt, v, req.path), req.body)
		mustStatus(t, a, http.StatusBadRequest)
		if code, inner := a.errCodes(t); code != "InvalidRequest" || inner != CodeDocumentModelLimit {
			t.Errorf("%s: codes %s/%s", req.path, code, inner)
		}
		if !strings.Contains(string(a.body), "Account can't create more than 2 models.") {
			t.Errorf("%s: message %s", req.path, a.body)
		}
	}
	v2 := do(t, "POST", tgt+"/formrecognizer/v2.1/custom/models/copyAuthorization", nil)
	mustStatus(t, v2, http.StatusBadRequest)
	if !strings.Contains(string(v2.body), CodeDocumentModelLimit) {
		t.Errorf("v2.1 quota body %s", v2.body)
	}
	// Classifiers do not count against the model limit (assumption).
	mustStatus(t, do(t, "POST", vurl(tgt, v, "/documentClassifiers:authorizeCopy"), `{"classifierId":"c1"}`), http.StatusOK)
}
