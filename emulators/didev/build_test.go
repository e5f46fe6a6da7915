package didev

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

const blob = `{"containerUrl":"https://acct.blob.core.windows.net/train"}`

func TestBuildModelAndOperations(t *testing.T) {
	for _, v := range []string{"2024-11-30", "2023-07-31", "2022-08-31"} {
		t.Run(v, func(t *testing.T) {
			clock := newFakeClock()
			o := testOptions(clock)
			o.PageSize = 2
			srv := startServer(t, o)
			src := srv.Endpoint("source")
			var locs []string
			for i := range 3 {
				body := fmt.Sprintf(`{"modelId":"b%d","buildMode":"template","azureBlobSource":%s,"tags":{"team":"x"}}`, i, blob)
				a := do(t, "POST", vurl(src, v, "/documentModels:build"), body)
				mustStatus(t, a, http.StatusAccepted)
				if _, ok := a.header["Operation-Location"]; !ok {
					t.Fatalf("no Operation-Location: %v", a.header)
				}
				locs = append(locs, a.header.Get("Operation-Location"))
				clock.Advance(time.Second)
			}
			dup := do(t, "POST", vurl(src, v, "/documentModels:build"), fmt.Sprintf(`{"modelId":"b0","buildMode":"template","azureBlobSource":%s}`, blob))
			mustStatus(t, dup, http.StatusConflict)
			op := do(t, "GET", locs[0], nil).json(t)
			if op["kind"] != opModelBuild || op["status"] != "running" || str2(op, "tags", "team") != "x" {
				t.Errorf("build op %v", op)
			}
			mustStatus(t, do(t, "GET", vurl(src, v, "/documentModels/b0"), nil), http.StatusNotFound)
			clock.Advance(o.BuildDuration)
			op = do(t, "GET", locs[0], nil).json(t)
			if op["status"] != "succeeded" {
				t.Fatalf("build op %v", op)
			}
			res, _ := op["result"].(map[string]any)
			created, _ := time.Parse(time.RFC3339, str2(res, "createdDateTime"))
			if exp := str2(res, "expirationDateTime"); exp != "" && exp != ts(created.Add(730*24*time.Hour)) {
				t.Errorf("expirationDateTime %s, want created+730d", exp)
			}
			m := do(t, "GET", vurl(src, v, "/documentModels/b0"), nil)
			mustStatus(t, m, 200)
			if _, ok := m.json(t)["docTypes"].(map[string]any)["b0"]; !ok {
				t.Errorf("docTypes of b0: %s", m.body)
			}

			// Operations list newest first, paged.
			var ids []string
			next := vurl(src, v, "/operations")
			for pages := 0; next != ""; pages++ {
				if pages > 5 {
					t.Fatal("operations paging does not end")
				}
				page := do(t, "GET", next, nil).json(t)
				for _, it := range page["value"].([]any) {
					item := it.(map[string]any)
					if _, ok := item["result"]; ok {
						t.Error("list items carry a result")
					}
					ids = append(ids, item["operationId"].(string))
				}
				next, _ = page["nextLink"].(string)
			}
			if len(ids) != 3 {
				t.Fatalf("listed %d operations", len(ids))
			}
			for i, loc := range locs {
				want := ids[len(ids)-1-i]
				if !strings.Contains(loc, want) {
					t.Errorf("operation %d is %s, want newest first", i, want)
				}
			}
			// Operations expire after OpTTL.
			clock.Advance(DefaultOpTTL)
			a := do(t, "GET", locs[0], nil)
			mustStatus(t, a, http.StatusNotFound)
			if code, inner := a.errCodes(t); code != "NotFound" || inner != CodeOperationNotFound {
				t.Errorf("codes %s/%s", code, inner)
			}
			if list := do(t, "GET", vurl(src, v, "/operations"), nil).json(t); len(list["value"].([]any)) != 0 {
				t.Errorf("expired operations listed: %v", list)
			}
		})
	}
}

func TestBuildValidation(t *testing.T) {
	srv := startServer(t, testOptions(newFakeClock()))
	u := vurl(srv.Endpoint("source"), "2024-11-30", "/documentModels:build")
	tests := []struct {
		name, body, wantInner string
	}{
		{"no modelId", `{"buildMode":"template","azureBlobSource":` + blob + `}`, CodeParameterMissing},
		{"no buildMode", `{"modelId":"x1","azureBlobSource":` + blob + `}`, CodeParameterMissing},
		{"bad buildMode", `{"modelId":"x1","buildMode":"magic","azureBlobSource":` + blob + `}`, CodeInvalidParameter},
		{"no source", `{"modelId":"x1","buildMode":"neural"}`, CodeParameterMissing},
		{"no containerUrl", `{"modelId":"x1","buildMode":"neural","azureBlobSource":{}}`, CodeParameterMissing},
		{"negative training hours", `{"modelId":"x1","buildMode":"neural","azureBlobSource":` + blob + `,"maxTrainingHours":-1}`, CodeInvalidParameter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := do(t, "POST", u, tt.body)
			mustStatus(t, a, http.StatusBadRequest)
			if _, inner := a.errCodes(t); inner != tt.wantInner {
				t.Errorf("inner %s, want %s", inner, tt.wantInner)
			}
		})
	}
}

func TestListModelsPaging(t *testing.T) {
	clock := newFakeClock()
	o := testOptions(clock)
	o.PageSize = 7
	srv := startServer(t, o)
	res := srv.Resource("source")
	for i := range 12 {
		if err := res.Seed(Seed{Kind: KindModel, ID: fmt.Sprintf("model-%02d", i), Tags: map[string]string{"i": fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := res.Train(KindModel, "not-ready"); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"2024-11-30", "2023-07-31"} {
		t.Run(v, func(t *testing.T) {
			seen := map[string]int{}
			var order []string
			next := vurl(srv.Endpoint("source"), v, "/documentModels")
			for pages := 0; next != ""; pages++ {
				if pages > 10 {
					t.Fatal("paging does not end")
				}
				page := do(t, "GET", next, nil).json(t)
				vals := page["value"].([]any)
				if len(vals) > o.PageSize {
					t.Errorf("page of %d items", len(vals))
				}
				for _, it := range vals {
					item := it.(map[string]any)
					if _, ok := item["docTypes"]; ok {
						t.Error("list items carry docTypes")
					}
					id := item["modelId"].(string)
					seen[id]++
					order = append(order, id)
				}
				next, _ = page["nextLink"].(string)
			}
			pre := prebuiltModels(lookupVersion(v))
			if len(order) != len(pre)+12 {
				t.Fatalf("listed %d models, want %d", len(order), len(pre)+12)
			}
			for i, id := range order {
				if seen[id] != 1 {
					t.Errorf("%s listed %d times", id, seen[id])
				}
				if (i < len(pre)) != strings.HasPrefix(id, "prebuilt-") {
					t.Errorf("position %d is %s: prebuilt models come first", i, id)
				}
			}
			if seen["not-ready"] != 0 {
				t.Error("a model still building is listed")
			}
		})
	}
	bad := do(t, "GET", vurl(srv.Endpoint("source"), "2024-11-30", "/documentModels")+"&nextLink=bm9wZQ", nil)
	mustStatus(t, bad, http.StatusBadRequest)
}

// TestTenThousandModels lists a resource of 10,000 models through every page.
func TestTenThousandModels(t *testing.T) {
	srv := startServer(t, testOptions(newFakeClock()))
	res := srv.Resource("source")
	for i := range 10000 {
		if err := res.Seed(Seed{Kind: KindModel, ID: fmt.Sprintf("m%05d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	n, pages := 0, 0
	next := vurl(srv.Endpoint("source"), "2024-11-30", "/documentModels")
	last := ""
	for next != "" {
		page := do(t, "GET", next, nil).json(t)
		for _, it := range page["value"].([]any) {
			id := it.(map[string]any)["modelId"].(string)
			if strings.HasPrefix(id, "prebuilt-") {
				continue
			}
			if id <= last {
				t.Fatalf("%s after %s: not in order", id, last)
			}
			last = id
			n++
		}
		next, _ = page["nextLink"].(string)
		pages++
	}
	if n != 10000 {
		t.Errorf("listed %d custom models, want 10000", n)
	}
	if want := (10000 + len(prebuiltDI) + DefaultPageSize - 1) / DefaultPageSize; pages != want {
		t.Errorf("%d pages, want %d", pages, want)
	}
	info := do(t, "GET", vurl(srv.Endpoint("source"), "2024-11-30", "/info"), nil).json(t)
	if info["customDocumentModels"].(map[string]any)["count"] != float64(10000) {
		t.Errorf("/info %v", info)
	}
}

func TestClassifiers(t *testing.T) {
	const v = "2024-11-30"
	clock := newFakeClock()
	srv := startServer(t, testOptions(clock))
	src, tgt := srv.Endpoint("source"), srv.Endpoint("target")
	build := `{"classifierId":"cls1","description":"IRS","docTypes":{"a":{"azureBlobSource":{"containerUrl":"https://x.blob.core.windows.net/c","prefix":"a/"}},"b":{"azureBlobFileListSource":{"containerUrl":"https://x.blob.core.windows.net/c","fileList":"b.jsonl"}}}}`
	a := do(t, "POST", vurl(src, v, "/documentClassifiers:build"), build)
	mustStatus(t, a, http.StatusAccepted)
	clock.Advance(5 * time.Second)
	op := do(t, "GET", a.header.Get("Operation-Location"), nil).json(t)
	if op["kind"] != opClassifierBuild || op["status"] != "running" || op["percentCompleted"] != float64(0) {
		t.Errorf("running classifier build %v", op)
	}
	clock.Advance(5 * time.Second)
	cls := do(t, "GET", vurl(src, v, "/documentClassifiers/cls1"), nil)
	mustStatus(t, cls, 200)
	body := cls.json(t)
	if str2(body, "docTypes", "a", "kind") != "azureBlob" || str2(body, "docTypes", "b", "kind") != "azureBlobFileList" {
		t.Errorf("docTypes kinds: %s", cls.body)
	}
	if body["modifiedDateTime"] == nil || body["description"] != "IRS" {
		t.Errorf("classifier %s", cls.body)
	}
	old := do(t, "GET", vurl(src, "2023-07-31", "/documentClassifiers/cls1"), nil).json(t)
	if _, ok := old["modifiedDateTime"]; ok || str2(old, "docTypes", "a", "kind") != "" {
		t.Errorf("2023-07-31 shape %v", old)
	}
	clock.Advance(time.Hour)
	auth := do(t, "POST", vurl(tgt, v, "/documentClassifiers:authorizeCopy"), `{"classifierId":"cls-copy","tags":{"k":"v"}}`)
	mustStatus(t, auth, 200)
	ab := auth.json(t)
	if ab["targetClassifierId"] != "cls-copy" || !strings.HasPrefix(str2(ab, "targetClassifierLocation"), tgt+"/documentintelligence/documentClassifiers/cls-copy") {
		t.Errorf("classifier authorization %v", ab)
	}
	cp := do(t, "POST", vurl(src, v, "/documentClassifiers/cls1:copyTo"), auth.body)
	mustStatus(t, cp, http.StatusAccepted)
	clock.Advance(srv.opts.CopyDuration)
	op = do(t, "GET", cp.header.Get("Operation-Location"), nil).json(t)
	if op["kind"] != opClassifierCopy || op["status"] != "succeeded" {
		t.Fatalf("classifier copy %v", op)
	}
	copied := do(t, "GET", vurl(tgt, v, "/documentClassifiers/cls-copy"), nil).json(t)
	// createdDateTime is the copy time; modifiedDateTime, expirationDateTime and description
	// are the source's; no tags [rec].
	if copied["createdDateTime"] != ts(clock.Now()) || copied["modifiedDateTime"] != body["modifiedDateTime"] ||
		copied["expirationDateTime"] != body["expirationDateTime"] || copied["description"] != "IRS" {
		t.Errorf("copied classifier %v (source %v)", copied, body)
	}
	if _, ok := copied["tags"]; ok {
		t.Error("a classifier shows tags")
	}
	list := do(t, "GET", vurl(tgt, v, "/documentClassifiers"), nil).json(t)
	if vals := list["value"].([]any); len(vals) != 1 {
		t.Errorf("classifier list %v", list)
	}
	mustStatus(t, do(t, "DELETE", vurl(tgt, v, "/documentClassifiers/cls-copy"), nil), http.StatusNoContent)
	mustStatus(t, do(t, "GET", vurl(tgt, v, "/documentClassifiers/cls-copy"), nil), http.StatusNotFound)
	// Classifier copy does not exist before 2024-07-31-preview.
	mustStatus(t, do(t, "POST", vurl(src, "2024-02-29-preview", "/documentClassifiers/cls1:copyTo"), auth.body), http.StatusNotFound)
}

func TestCompose(t *testing.T) {
	clock := newFakeClock()
	srv := startServer(t, testOptions(clock))
	res := srv.Resource("source")
	for _, id := range []string{"c1", "c2"} {
		if err := res.Seed(Seed{Kind: KindModel, ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if err := res.Seed(Seed{Kind: KindClassifier, ID: "router"}); err != nil {
		t.Fatal(err)
	}
	src := srv.Endpoint("source")
	tests := []struct {
		version, body string
		wantDocTypes  []string
		wantModelID   bool
	}{
		{"2023-07-31", `{"modelId":"old","componentModels":[{"modelId":"c1"},{"modelId":"c2"}]}`, []string{"c1", "c2"}, false},
		{"2024-11-30", `{"modelId":"new","classifierId":"router","docTypes":{"x":{"modelId":"c1"},"y":{"modelId":"c2"}}}`, []string{"x", "y"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			a := do(t, "POST", vurl(src, tt.version, "/documentModels:compose"), tt.body)
			mustStatus(t, a, http.StatusAccepted)
			clock.Advance(srv.opts.BuildDuration)
			op := do(t, "GET", a.header.Get("Operation-Location"), nil).json(t)
			if op["kind"] != opModelCompose || op["status"] != "succeeded" {
				t.Fatalf("compose %v", op)
			}
			dts := op["result"].(map[string]any)["docTypes"].(map[string]any)
			for _, name := range tt.wantDocTypes {
				dt, ok := dts[name].(map[string]any)
				if !ok {
					t.Fatalf("docType %s missing in %v", name, dts)
				}
				if _, has := dt["modelId"]; has != tt.wantModelID {
					t.Errorf("docType %s modelId present %v", name, has)
				}
			}
		})
	}
	missing := do(t, "POST", vurl(src, "2024-11-30", "/documentModels:compose"), `{"modelId":"bad","classifierId":"router","docTypes":{"x":{"modelId":"nope"}}}`)
	mustStatus(t, missing, http.StatusBadRequest)
}
