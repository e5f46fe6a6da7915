package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/handlers"
	"github.com/dimirror/dimirror/internal/devstack"
	"github.com/dimirror/dimirror/shared/reconcile"
	"github.com/dimirror/dimirror/shared/replication"
)

// trainIn builds a model in the named resource through didev's build API, as a training
// pipeline in that region would.
func (e *env) trainIn(resource, id string) {
	e.t.Helper()
	u := e.stack.DI.Endpoint(resource) + "/documentintelligence/documentModels:build?api-version=2024-11-30"
	body := fmt.Sprintf(`{"modelId":%q,"buildMode":"template","azureBlobSource":%s}`, id, trainingBlob)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Ocp-Apim-Subscription-Key", devstack.Key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("build %s in %s: %d %s", id, resource, resp.StatusCode, b)
	}
}

// replica is the status API's view of kind/id in target ("" status when there is none).
func (e *env) replica(kind, id, target string) handlers.ReplicaView {
	e.t.Helper()
	st, _, b := e.call("GET", "/api/replications/"+kind+"/"+id, "", "")
	if st != http.StatusOK {
		return handlers.ReplicaView{}
	}
	for _, r := range decode[handlers.ReplicationAnswer](e.t, b).Replicas {
		if r.Target == target {
			return r
		}
	}
	return handlers.ReplicaView{}
}

// TestFailoverAndFailback plays docs/FAILOVER.md against didev (one process serving A, B and C)
// with the rules a>b, b>a, a>c (resources a, b and c): A's items reach B and C; A goes unreachable; a model trained in
// B meanwhile stays pending for A and is reported so; A returns; B's model reaches A and, through
// A (the onward copy of a verified replica, no sweep runs), C; nothing is ever copied into its
// origin; after settling, a sweep plans nothing.
func TestFailoverAndFailback(t *testing.T) {
	e := startStack(t, devstack.Options{Rules: "a>b,b>a,a>c", Settings: map[string]string{
		// The watch finds what is trained in B; the sweep is left to the end of the test, so
		// every delivery here is the watch's, the webhook's or an onward copy's.
		"DIMIRROR_WATCH_SCHEDULE": "*/1 * * * * *",
		"DIMIRROR_SWEEP_SCHEDULE": never,
	}})
	e.run()
	hostOf := func(name string) string {
		u, err := url.Parse(e.stack.DI.Endpoint(name))
		if err != nil {
			t.Fatal(err)
		}
		return u.Host
	}
	start := time.Now()

	// A's items reach B and C.
	for _, it := range []struct{ kind, id string }{{"model", "invoice-v1"}, {"model", "receipt-v2"}, {"classifier", "router-v1"}} {
		if st, _, b := e.call("POST", "/api/replications", fmt.Sprintf(`{"source":"a","kind":%q,"sourceId":%q}`, it.kind, it.id), ""); st != http.StatusAccepted && st != http.StatusOK {
			t.Fatalf("request %s %s: %d %s", it.kind, it.id, st, b)
		}
		for _, r := range e.waitReplicas(it.kind, it.id, 30*time.Second).Replicas {
			if r.Status != "succeeded" || r.Source != "a" || r.Target == "a" {
				t.Errorf("%s %s into %s: %s from %q", it.kind, it.id, r.Target, r.Status, r.Source)
			}
		}
	}
	for _, n := range []string{"b", "c"} {
		if _, ok := e.holds(n, didev.KindModel, "invoice-v1"); !ok {
			t.Errorf("%s lacks invoice-v1", n)
		}
	}

	// A goes down; B trains a model, which waits for A and is reported so.
	if err := e.stack.DI.SetOutage("a", 1); err != nil {
		t.Fatal(err)
	}
	e.trainIn("b", "failover-v1")
	e.eventually(20*time.Second, "failover-v1 pending for A", func() (bool, string) {
		r := e.replica("model", "failover-v1", "a")
		return r.Source == "b" && (r.Status == "pending" || r.Status == "authorized"), fmt.Sprintf("%+v", r)
	})
	e.eventually(10*time.Second, "the summary reports A's pending replica", func() (bool, string) {
		for _, tf := range e.summary().Targets {
			if tf.Target == "a" {
				return tf.OldestPendingSeconds > 0 && tf.Replicas["succeeded"]+tf.Replicas["failed"] < tf.Replicas["pending"]+tf.Replicas["authorized"]+tf.Replicas["succeeded"]+tf.Replicas["failed"],
					fmt.Sprintf("%+v", tf.Replicas)
			}
		}
		return false, "no figures for A"
	})
	outageEnded := time.Now()

	// A returns: B's model reaches A (B>A) and, through A, C (A>C).
	if err := e.stack.DI.SetOutage("a", 0); err != nil {
		t.Fatal(err)
	}
	e.eventually(30*time.Second, "failover-v1 in A and C", func() (bool, string) {
		a, c := e.replica("model", "failover-v1", "a"), e.replica("model", "failover-v1", "c")
		return a.Status == "succeeded" && c.Status == "succeeded", fmt.Sprintf("A %s, C %s", a.Status, c.Status)
	})
	if c := e.replica("model", "failover-v1", "c"); c.Source != "a" || c.Origin != hostOf("b")+"/model/failover-v1" {
		t.Errorf("C's copy: source %q origin %q, want a copy from A of B's model", c.Source, c.Origin)
	}
	t.Logf("failback: the model trained in B reached A and C %s after the outage ended", time.Since(outageEnded).Round(100*time.Millisecond))

	// Nothing is ever copied into its origin: every copy's origin is another resource, and no
	// replica row targets an item's origin.
	for _, n := range []string{"a", "b", "c"} {
		for _, kind := range []didev.Kind{didev.KindModel, didev.KindClassifier} {
			for _, m := range e.stack.DI.Resource(n).Models(kind) {
				if tag := m.Tags[replication.TagSource]; tag != "" && replication.OriginHost(tag) == hostOf(n) {
					t.Errorf("%s holds %s %s as a copy of its own %s", n, kind, m.ID, tag)
				}
			}
		}
	}
	for _, origin := range []struct{ res, kind, id string }{{"a", "model", "invoice-v1"}, {"a", "classifier", "router-v1"}, {"b", "model", "failover-v1"}} {
		if r := e.replica(origin.kind, origin.id, origin.res); r.Status != "" {
			t.Errorf("a replica of %s %s into its origin %s: %+v", origin.kind, origin.id, origin.res, r)
		}
		m, ok := e.holds(origin.res, didev.Kind(origin.kind), origin.id)
		if !ok || m.Tags[replication.TagSource] != "" {
			t.Errorf("%s's original %s %s: held %v, tags %v", origin.res, origin.kind, origin.id, ok, m.Tags)
		}
	}

	// After settling, a sweep plans nothing.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := e.app.Handlers.Reconciler.Sweep(ctx, reconcile.SweepOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !p.InSync() || p.Incomplete {
		t.Errorf("the sweep after settling plans: %+v", p.Entries)
	}
	e.assertNoSecrets()
	t.Logf("scenario in %s", time.Since(start).Round(100*time.Millisecond))
}
