package didev

import (
	"context"
	"net/http"
	"testing"
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
