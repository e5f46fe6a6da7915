package resources

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dimirror/dimirror/shared/docintel"
	"github.com/dimirror/dimirror/shared/replication"
)

// listedOp is one operation of a hand-made operation list.
type listedOp struct {
	id, kind, status, target string
	age                      time.Duration // before the list's "now"
}

// opListServer serves ops as the v4 operation list, newest first (ops are given that way), two
// per page, and counts the pages asked for.
func opListServer(t *testing.T, now time.Time, ops []listedOp) (*Resource, *atomic.Int32) {
	t.Helper()
	var pages atomic.Int32
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/documentintelligence/operations" {
			http.NotFound(w, r)
			return
		}
		pages.Add(1)
		start, _ := strconv.Atoi(r.URL.Query().Get("skip"))
		end := min(start+2, len(ops))
		type item struct {
			ID               string `json:"operationId"`
			Kind             string `json:"kind"`
			Status           string `json:"status"`
			Created          string `json:"createdDateTime"`
			Updated          string `json:"lastUpdatedDateTime"`
			ResourceLocation string `json:"resourceLocation"`
		}
		page := struct {
			Value    []item `json:"value"`
			NextLink string `json:"nextLink,omitempty"`
		}{Value: []item{}}
		for _, op := range ops[start:end] {
			at := now.Add(-op.age).Format(time.RFC3339)
			page.Value = append(page.Value, item{op.id, op.kind, op.status, at, at,
				srv.URL + "/documentintelligence/documentModels/" + op.target + "?api-version=2024-11-30"})
		}
		if end < len(ops) {
			page.NextLink = fmt.Sprintf("%s/documentintelligence/operations?api-version=2024-11-30&skip=%d", srv.URL, end)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(page)
	}))
	t.Cleanup(srv.Close)
	c, err := docintel.New(srv.URL, docintel.Options{APIVersion: docintel.V2024_11_30, Key: devKey, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return New(c), &pages
}

// FindCopyOperations serves a whole poll pass with one scan: it pages only as far as the copies
// asked for (or since) require, never once per copy.
func TestFindCopyOperations(t *testing.T) {
	const cp, build = docintel.OperationKindModelCopyTo, docintel.OperationKindModelBuild
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	ops := []listedOp{ // newest first, two per page
		{"op1", cp, "failed", "a", 1 * time.Minute},
		{"op2", cp, "running", "b", 2 * time.Minute},
		{"op3", build, "succeeded", "a", 3 * time.Minute},
		{"op4", cp, "succeeded", "a", 4 * time.Minute},
		{"op5", cp, "succeeded", "C", 5 * time.Minute},
		{"op6", cp, "canceled", "d", 6 * time.Minute},
		{"op7", cp, "succeeded", "e", 7 * time.Minute},
		{"op8", cp, "succeeded", "b", 8 * time.Minute},
	}
	tests := []struct {
		name  string
		since time.Duration // before now; 0: no bound
		ids   []string
		found map[string]string // id → operation found
		pages int32
	}{
		{"none asked", 0, nil, map[string]string{}, 0},
		{"newest copy, first page", 0, []string{"b"}, map[string]string{"b": "op2"}, 1},
		{"a failed copy and a build are passed over", 0, []string{"a"}, map[string]string{"a": "op4"}, 2},
		{"several in one scan, which ends when all are found", 0, []string{"e", "b", "a"}, map[string]string{"a": "op4", "b": "op2", "e": "op7"}, 4},
		{"ids match in any case", 0, []string{"c"}, map[string]string{"c": "op5"}, 3},
		{"a canceled copy is no copy", 0, []string{"d"}, map[string]string{}, 4},
		{"since ends the scan at the first older operation", 90 * time.Second, []string{"a", "e"}, map[string]string{}, 1},
		{"since keeps what is newer", 4*time.Minute + 30*time.Second, []string{"a", "e"}, map[string]string{"a": "op4"}, 3},
		{"not there: the whole list", 0, []string{"zz"}, map[string]string{}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, pages := opListServer(t, now, ops)
			var since time.Time
			if tt.since > 0 {
				since = now.Add(-tt.since)
			}
			locs := map[string]string{} // location → id
			var asked []string
			for _, id := range tt.ids {
				loc := res.Location(replication.KindModel, id)
				locs[loc] = id
				asked = append(asked, loc)
			}
			found, err := res.FindCopyOperations(context.Background(), replication.KindModel, since, asked...)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for loc, op := range found {
				if !slices.Contains(asked, loc) {
					t.Errorf("answer keyed by %q, which was not asked for", loc)
				}
				u, err := url.Parse(op.URL)
				if err != nil {
					t.Fatal(err)
				}
				got[locs[loc]] = path.Base(u.Path)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.found) {
				t.Errorf("found %v, want %v", got, tt.found)
			}
			if p := pages.Load(); p != tt.pages {
				t.Errorf("%d pages read, want %d", p, tt.pages)
			}
		})
	}
}
