package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/internal/devstack"
	"github.com/dimirror/dimirror/shared/drill"
)

// GET /api/drill on `dimirror run`: every seeded item replicated is ready; a model deleted from
// a target makes that target not ready, naming the model.
func TestRunDrill(t *testing.T) {
	e := startStack(t, devstack.Options{})
	e.run()
	for _, body := range []string{`{"sourceId":"invoice-v1"}`, `{"sourceId":"receipt-v2"}`, `{"kind":"classifier","sourceId":"router-v1"}`} {
		if st, _, b := e.call("POST", "/api/replications", body, ""); st != http.StatusAccepted {
			t.Fatalf("POST %s: %d %s", body, st, b)
		}
	}
	for _, it := range [][2]string{{"model", "invoice-v1"}, {"model", "receipt-v2"}, {"classifier", "router-v1"}} {
		for _, r := range e.waitReplicas(it[0], it[1], 30*time.Second).Replicas {
			if r.Status != "succeeded" {
				t.Fatalf("%s %s → %s: %s", it[0], it[1], r.Target, r.Status)
			}
		}
	}
	drillNow := func() drill.Report {
		t.Helper()
		st, _, b := e.call("GET", "/api/drill", "", "")
		if st != http.StatusOK {
			t.Fatalf("drill: %d %s", st, b)
		}
		return decode[drill.Report](t, b)
	}
	if rep := drillNow(); !rep.Ready || rep.SourceModels != 2 || rep.SourceClassifiers != 1 || len(rep.Targets) != 2 {
		t.Fatalf("after replication: %+v", rep)
	}
	if err := e.stack.DI.Resource("westus2").Delete(didev.KindModel, "receipt-v2"); err != nil {
		t.Fatal(err)
	}
	rep := drillNow()
	east, west := rep.Targets[0], rep.Targets[1]
	if rep.Ready || !east.Ready || west.Ready || len(west.Reasons) != 1 || west.Reasons[0].Code != drill.Missing || west.Reasons[0].ID != "receipt-v2" {
		t.Errorf("after a delete: %+v", rep)
	}
	if st, _, b := e.call("GET", "/api/drill?target=westus2", "", ""); st != http.StatusBadRequest {
		t.Errorf("a parameter: %d %s", st, b)
	}
	e.assertNoSecrets()
}
