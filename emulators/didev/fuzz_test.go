package didev

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dimirror/dimirror/internal/recording"
)

// FuzzServe drives the router and the JSON decoding with arbitrary requests: didev must never
// panic, never answer 500 (no fault is injected here) and always answer JSON.
func FuzzServe(f *testing.F) {
	recs, err := recording.LoadDir(recordingsDir)
	if err != nil {
		f.Fatal(err)
	}
	for _, rec := range recs {
		for _, e := range rec.Entries {
			f.Add(e.Method, e.URL.RequestURI(), []byte(e.RequestBodyBytes()), uint8(0))
		}
	}
	for _, s := range []struct {
		method, path, body string
	}{
		{"POST", "/documentintelligence/documentModels:authorizeCopy?api-version=2024-11-30", `{"modelId":"fz1","tags":{"a":"b"}}`},
		{"POST", "/documentintelligence/documentModels/seeded:copyTo?api-version=2024-11-30", `{"targetResourceId":"/subscriptions/0/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/fuzz","targetResourceRegion":"eastus","targetModelId":"fz1","targetModelLocation":"x","accessToken":"t","expirationDateTime":"2030-01-01T00:00:00Z"}`},
		{"POST", "/documentintelligence/documentClassifiers:build?api-version=2024-11-30", `{"classifierId":"c1","docTypes":{"a":{"azureBlobSource":{"containerUrl":"u"}},"b":{}}}`},
		{"POST", "/documentintelligence/documentModels:compose?api-version=2024-11-30", `{"modelId":"cm","classifierId":"x","docTypes":{"a":null}}`},
		{"POST", "/formrecognizer/documentModels:compose?api-version=2023-07-31", `{"modelId":"cm","componentModels":[{"modelId":"seeded"}]}`},
		{"POST", "/formrecognizer/v2.1/custom/models/seeded/copy", `{"targetResourceId":"/subscriptions/0/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/fuzz","targetResourceRegion":"eastus","copyAuthorization":{"modelId":"m","accessToken":"t","expirationDateTimeTicks":"x"}}`},
		{"GET", "/formrecognizer/v2.1/custom/models?op=full&nextLink=%ff", ""},
		{"GET", "/documentintelligence/documentModels?api-version=2024-11-30&nextLink=cDo5OTk5", ""},
		{"GET", "/documentintelligence/operations?api-version=2024-11-30&nextLink=", ""},
		{"DELETE", "/documentintelligence/documentClassifiers/x?api-version=2024-11-30", ""},
		{"GET", "/_didev/stats", ""},
	} {
		f.Add(s.method, s.path, []byte(s.body), uint8(0))
		f.Add(s.method, s.path, []byte(s.body), uint8(1))
	}
	clock := newFakeClock()
	o := testOptions(clock)
	o.Resources = []ResourceOptions{{Name: "fuzz", Addr: "127.0.0.1:0"}}
	o.AcceptBearer = true
	o.PageSize = 3
	srv := startServer(f, o)
	if err := srv.Resource("fuzz").Seed(Seed{Kind: KindModel, ID: "seeded"}); err != nil {
		f.Fatal(err)
	}
	h := srv.resources[0]
	f.Fuzz(func(t *testing.T, method, target string, body []byte, mode uint8) {
		req, err := http.NewRequest(method, "http://127.0.0.1"+target, bytes.NewReader(body))
		if err != nil {
			return // not an HTTP request a client could send
		}
		if isAdminPath(req.URL.Path) && req.Method != http.MethodGet {
			return // POST /_didev/faults would inject faults, which this target rules out
		}
		switch mode % 4 {
		case 0:
			req.Header.Set("Ocp-Apim-Subscription-Key", testKey)
		case 1:
			req.Header.Set("Authorization", "Bearer fuzz")
			req.Header.Set("x-ms-forms-copy-degrade", "true")
		case 2:
			req.Header.Set("Ocp-Apim-Subscription-Key", "wrong")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		clock.Advance(time.Second)
		if rec.Code >= 500 {
			t.Fatalf("%s %s: status %d without an injected fault: %s", method, target, rec.Code, rec.Body.Bytes())
		}
		if rec.Body.Len() > 0 && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: answer is not JSON: %q", method, target, rec.Body.Bytes())
		}
		if len(rec.Header()["apim-request-id"]) != 1 { // stored as the service spells it
			t.Fatalf("%s %s: no apim-request-id", method, target)
		}
	})
}
