package didev

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// An outage takes down one resource: its requests fail with 503 while the others serve, and
// ending it brings it back.
func TestOutageIsPerResource(t *testing.T) {
	ctx := context.Background()
	s, err := Start(ctx, Options{Resources: []ResourceOptions{{Name: "source", Addr: "127.0.0.1:0"}, {Name: "westus2", Addr: "127.0.0.1:0"}},
		Key: testKey, Rate: RateOptions{Off: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	get := func(name string) int {
		return do(t, http.MethodGet, vurl(s.Endpoint(name), "2024-11-30", "/info"), nil).status
	}
	if err := s.SetOutage("source", 1); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if got := get("source"); got != http.StatusServiceUnavailable {
			t.Fatalf("source during its outage: %d, want 503", got)
		}
		if got := get("westus2"); got != http.StatusOK {
			t.Fatalf("westus2 during the source's outage: %d, want 200", got)
		}
	}
	if err := s.SetOutage("source", 0); err != nil {
		t.Fatal(err)
	}
	if got := get("source"); got != http.StatusOK {
		t.Errorf("source after its outage: %d", got)
	}
	for _, bad := range []struct {
		name  string
		share float64
	}{{"nowhere", 0.5}, {"source", 1.5}, {"source", -1}} {
		if err := s.SetOutage(bad.name, bad.share); err == nil {
			t.Errorf("SetOutage(%q, %v) accepted", bad.name, bad.share)
		}
	}
}

// A copy that failed leaves its authorization pending (one successful copy per authorization):
// a copyTo sent again with it is accepted and is no reuse; one sent after a copy consumed it is.
func TestCopyToAfterConsumedCountsOnlyReuse(t *testing.T) {
	clock := newFakeClock()
	o := testOptions(clock)
	o.Seeds = []Seed{{Resource: "source", Kind: KindModel, ID: "src-model"}}
	o.Faults = Faults{CopyFail: 1}
	srv := startServer(t, o)
	const v = "2024-11-30"
	auth := authorizeModel(t, srv.Endpoint("target"), v, "copy-1", nil)
	copyTo := func() map[string]any {
		a := do(t, "POST", vurl(srv.Endpoint("source"), v, "/documentModels/src-model:copyTo"), auth)
		mustStatus(t, a, http.StatusAccepted)
		clock.Advance(5 * time.Second)
		return do(t, "GET", a.header.Get("Operation-Location"), nil).json(t)
	}
	if op := copyTo(); op["status"] != "failed" {
		t.Fatalf("first copy %v, want failed (copy-fail=1)", op["status"])
	}
	if err := srv.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	if op := copyTo(); op["status"] != "succeeded" {
		t.Fatalf("copy sent again after the failed one: %v, want succeeded", op["status"])
	}
	if a := srv.Stats().Authorizations[0]; a.CopyToAccepted != 2 || a.CopyToAfterConsumed != 0 {
		t.Errorf("after a retry of a failed copy: accepted %d, after consumed %d; want 2, 0", a.CopyToAccepted, a.CopyToAfterConsumed)
	}
	if op := copyTo(); op["status"] != "failed" {
		t.Fatalf("a third copy with the consumed authorization: %v, want failed", op["status"])
	}
	if a := srv.Stats().Authorizations[0]; a.CopyToAfterConsumed != 1 {
		t.Errorf("after a reuse: after consumed %d, want 1", a.CopyToAfterConsumed)
	}
}
