package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/handlers"
	"github.com/dimirror/dimirror/internal/devstack"
)

// A model and a classifier reach both targets through `dimirror run`: webhook → queue → copy →
// poll → verified, with the rows to show for it.
func TestRunReplicatesModelAndClassifier(t *testing.T) {
	t.Parallel() // waits on timers: overlap with the other waiting tests
	e := startStack(t, devstack.Options{})
	e.run()
	for _, tc := range []struct{ kind, id string }{{"model", "invoice-v1"}, {"classifier", "router-v1"}} {
		st, hdr, b := e.call("POST", "/api/replications", `{"kind":"`+tc.kind+`","sourceId":"`+tc.id+`"}`, "")
		if st != http.StatusAccepted {
			t.Fatalf("POST %s: %d %s", tc.id, st, b)
		}
		if want := "/api/replications/" + tc.kind + "/" + tc.id; hdr.Get("Location") != want {
			t.Errorf("Location %q, want %q", hdr.Get("Location"), want)
		}
		ans := decode[handlers.ReplicationAnswer](t, b)
		if len(ans.Replicas) != 2 || ans.Replicas[0].Status != "authorized" {
			t.Fatalf("answer %s", b)
		}
	}
	for _, tc := range []struct{ kind, id string }{{"model", "invoice-v1"}, {"classifier", "router-v1"}} {
		ans := e.waitReplicas(tc.kind, tc.id, 30*time.Second)
		for _, r := range ans.Replicas {
			if r.Status != "succeeded" || r.Attempt != 1 || r.CompletedAt == nil || r.LagSeconds == nil {
				t.Errorf("%s %s → %s: %+v", tc.kind, tc.id, r.Target, r)
			}
		}
		for _, target := range []string{"westus2", "eastus"} {
			if _, ok := e.stack.DI.Resource(target).Model(didev.Kind(tc.kind), tc.id); !ok {
				t.Errorf("%s does not hold %s %s", target, tc.kind, tc.id)
			}
		}
	}
	// Repeating the request starts nothing new.
	st, _, b := e.call("POST", "/api/replications", `{"sourceId":"invoice-v1"}`, "")
	if st != http.StatusOK || strings.Count(string(b), `"status":"succeeded"`) != 2 {
		t.Errorf("repeat: %d %s", st, b)
	}
	issued := map[string]int{}
	for _, a := range e.stack.DI.Stats().Authorizations {
		issued[a.Resource]++
		if a.CopyToAccepted != 1 || a.State != "consumed" {
			t.Errorf("authorization %s: state %s, copyTo accepted %d", a.TargetID, a.State, a.CopyToAccepted)
		}
	}
	for _, target := range []string{"westus2", "eastus"} {
		if issued[target] != 2 { // one model, one classifier
			t.Errorf("%s issued %d authorizations, want 2", target, issued[target])
		}
	}
	// The list shows all four replicas, and filters.
	st, _, b = e.call("GET", "/api/replications?status=succeeded&target=eastus", "", "")
	list := decode[handlers.ListAnswer](t, b)
	if st != http.StatusOK || len(list.Value) != 2 {
		t.Errorf("list: %d %s", st, b)
	}
	e.assertNoSecrets()
}

func TestRunAPIErrors(t *testing.T) {
	e := startStack(t, devstack.Options{})
	e.run()
	big := `{"sourceId":"invoice-v1","targetId":"` + strings.Repeat("a", 70<<10) + `"}`
	tests := []struct {
		name, method, path, body, key string
		status                        int
		code, field                   string
	}{
		{"no key", "POST", "/api/replications", `{"sourceId":"invoice-v1"}`, "-", 401, "Unauthorized", ""},
		{"wrong key", "GET", "/api/replications", "", "wrong-key-wrong-key", 401, "Unauthorized", ""},
		{"unknown target", "POST", "/api/replications", `{"sourceId":"invoice-v1","targets":["mars"]}`, "", 400, "InvalidRequest", "targets"},
		{"bad id", "POST", "/api/replications", `{"sourceId":"in voice"}`, "", 400, "InvalidRequest", "sourceId"},
		{"bad kind", "POST", "/api/replications", `{"kind":"pipeline","sourceId":"invoice-v1"}`, "", 400, "InvalidRequest", "kind"},
		{"unknown field", "POST", "/api/replications", `{"sourceId":"invoice-v1","region":"x"}`, "", 400, "InvalidRequest", "region"},
		{"wrong type", "POST", "/api/replications", `{"sourceId":["invoice-v1"]}`, "", 400, "InvalidRequest", "sourceId"},
		{"not json", "POST", "/api/replications", `sourceId=invoice-v1`, "", 400, "InvalidRequest", ""},
		{"too big", "POST", "/api/replications", big, "", 400, "InvalidRequest", ""},
		{"empty", "POST", "/api/replications", ``, "", 400, "InvalidRequest", ""},
		{"no source", "POST", "/api/replications", `{"sourceId":"nope-v1"}`, "", 404, "SourceNotFound", "sourceId"},
		{"unknown replication", "GET", "/api/replications/model/nope-v1", "", "", 404, "ReplicationNotFound", ""},
		{"bad status filter", "GET", "/api/replications?status=done", "", "", 400, "InvalidRequest", "status"},
		{"bad next", "GET", "/api/replications?next=forged", "", "", 400, "InvalidRequest", "next"},
		{"method", "DELETE", "/api/replications", "", "", 405, "MethodNotAllowed", ""},
		{"route", "GET", "/api/nothing", "", "", 404, "NotFound", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, hdr, b := e.call(tt.method, tt.path, tt.body, tt.key)
			if st != tt.status {
				t.Fatalf("status %d, want %d: %s", st, tt.status, b)
			}
			if !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
				t.Errorf("content type %q", hdr.Get("Content-Type"))
			}
			var body struct {
				Error struct{ Code, Message, Target string }
			}
			body = decode[struct {
				Error struct{ Code, Message, Target string }
			}](t, b)
			if body.Error.Code != tt.code || body.Error.Target != tt.field || body.Error.Message == "" {
				t.Errorf("error %+v, want code %s field %q", body.Error, tt.code, tt.field)
			}
		})
	}
}

// With the poll timer out of the way, the check messages alone see copies finish: through the
// real queue (scheduled messages in devbus) and the real copy starter of `dimirror run`.
func TestRunChecksSeeCopiesFinish(t *testing.T) {
	t.Parallel()
	e := startStack(t, devstack.Options{
		DI:       func(o *didev.Options) { o.CopyDuration = 2 * time.Second },
		Settings: map[string]string{"DIMIRROR_POLL_SCHEDULE": devstack.Never},
	})
	e.run()
	if st, _, b := e.call("POST", "/api/replications", `{"sourceId":"invoice-v1"}`, ""); st != http.StatusAccepted {
		t.Fatalf("POST: %d %s", st, b)
	}
	ans := e.waitReplicas("model", "invoice-v1", 30*time.Second)
	for _, r := range ans.Replicas {
		if r.Status != "succeeded" || r.StartedAt == nil || r.CompletedAt == nil {
			t.Fatalf("%s: %+v", r.Target, r)
		}
		// The copy takes 2 s; the checks look 500 ms to 1 s apart while it runs.
		if seen := r.CompletedAt.Sub(*r.StartedAt); seen < 2*time.Second || seen > 5*time.Second {
			t.Errorf("%s: copy of 2 s seen done %s after it started", r.Target, seen)
		}
	}
	e.assertNoSecrets()
}
