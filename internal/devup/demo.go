package devup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dimirror/dimirror"
	"github.com/dimirror/dimirror/handlers"
	"github.com/dimirror/dimirror/internal/statustable"
	"github.com/dimirror/dimirror/shared/funcdef"
)

// DemoOptions tune the demo.
type DemoOptions struct {
	Out io.Writer
	// Timeout bounds the wait for every replica (the automatic path waits for the watch
	// timer); default 3m.
	Timeout time.Duration
	// NewModel is the model the demo trains on the source; default invoice-v2. It must not
	// exist yet: the demo runs on fresh data.
	NewModel string
	// FailbackModel is the model a two-way stack's demo trains in westus2; default
	// receipt-westus2.
	FailbackModel string
}

// ErrAutomaticCopyMissing is the demo's failure when the model trained during the demo never
// got a replication: nothing in this build picked it up on its own.
var ErrAutomaticCopyMissing = errors.New("the automatic copy did not arrive")

// demoItem is one source item the demo waits for.
type demoItem struct {
	kind, id  string
	automatic bool // trained during the demo, never requested
}

// Demo shows both paths on a running stack: it requests the replication of a model and a
// classifier (the webhook path), trains a new model on the source (the automatic path: the
// watch timer must find it), waits until every replica has succeeded, and prints the replica
// table and the figures. It returns an error when anything did not converge.
func (s *Stack) Demo(ctx context.Context, o DemoOptions) error {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Minute
	}
	if o.NewModel == "" {
		o.NewModel = "invoice-v2"
	}
	if o.FailbackModel == "" {
		o.FailbackModel = "receipt-westus2"
	}
	d := &demo{s: s, out: o.Out, start: time.Now(), client: &http.Client{Timeout: 30 * time.Second}}
	items := []demoItem{{kind: "model", id: "invoice-v1"}, {kind: "classifier", id: "router-v1"}, {kind: "model", id: o.NewModel, automatic: true}}
	steps := 4
	if s.TwoWay {
		steps = 5
	}
	step := func(n int, what string) { d.step(fmt.Sprintf("%d/%d", n, steps), what) }

	step(1, "request the replication of a model and a classifier (what a training pipeline's webhook does)")
	for _, it := range items[:2] {
		if err := d.request(ctx, it); err != nil {
			return err
		}
	}
	step(2, fmt.Sprintf("train %s on the source; nobody asks dimirror to copy it", o.NewModel))
	if err := d.train(ctx, "source", o.NewModel); err != nil {
		return err
	}
	step(3, fmt.Sprintf("wait until every replica has succeeded (at most %s)", o.Timeout))
	waitErr := d.wait(ctx, items, o.Timeout)
	if waitErr != nil && ctx.Err() != nil {
		return waitErr
	}
	if s.TwoWay && waitErr == nil {
		// The failback half of docs/FAILOVER.md: training moved to westus2; with the rule
		// westus2>source its model flows back, and on to eastus through the source's rule.
		step(4, fmt.Sprintf("the two-way path (rules %s): train %s in westus2, as after a failover; it flows back to the source and, through it, to eastus", TwoWayRules, o.FailbackModel))
		if err := d.train(ctx, "westus2", o.FailbackModel); err != nil {
			return err
		}
		waitErr = d.wait(ctx, []demoItem{{kind: "model", id: o.FailbackModel}}, o.Timeout)
		if waitErr != nil && ctx.Err() != nil {
			return waitErr
		}
	}
	step(steps, "the replicas, as `dimirror status` shows them")
	if err := d.report(ctx); err != nil {
		return errors.Join(waitErr, err)
	}
	return waitErr
}

type demo struct {
	s      *Stack
	out    io.Writer
	start  time.Time
	client *http.Client
	// trained is when the new model was ready on the source, arrived when both targets held
	// it: the automatic path's own figure.
	trained, arrived time.Time
}

func (d *demo) step(n, what string) { fmt.Fprintf(d.out, "\n[%s] %s\n", n, what) }

func (d *demo) since() string { return statustable.Duration(time.Since(d.start)) }

// api calls dimirror's HTTP API with the stack's key.
func (d *demo) api(ctx context.Context, method, path string, body any, into any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.s.API+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("x-functions-key", d.s.Settings["DIMIRROR_API_KEY"])
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		if resp.StatusCode == http.StatusNotFound {
			return resp.StatusCode, nil
		}
		return resp.StatusCode, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(data))
	}
	if into != nil {
		if err := json.Unmarshal(data, into); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

func (d *demo) request(ctx context.Context, it demoItem) error {
	var ans handlers.ReplicationAnswer
	body := map[string]string{"source": "source", "kind": it.kind, "sourceId": it.id}
	status, err := d.api(ctx, http.MethodPost, "/api/replications", body, &ans)
	if err != nil {
		return err
	}
	if status == http.StatusNotFound {
		return fmt.Errorf("POST /api/replications: the source has no %s %s", it.kind, it.id)
	}
	var states []string
	for _, r := range ans.Replicas {
		states = append(states, r.Target+" "+r.Status)
	}
	fmt.Fprintf(d.out, "  POST /api/replications {\"source\":\"source\",\"kind\":%q,\"sourceId\":%q} → %d %s: %s\n",
		it.kind, it.id, status, http.StatusText(status), strings.Join(states, ", "))
	return nil
}

// train builds a model in the named resource with the Document Intelligence build API, as a
// training pipeline would, and waits for the build to finish.
func (d *demo) train(ctx context.Context, resource, id string) error {
	source := d.s.DI.Endpoint(resource)
	body := fmt.Sprintf(`{"modelId":%q,"description":"Invoices, retrained","buildMode":"template","azureBlobSource":{"containerUrl":"https://example.blob.core.windows.net/invoices"}}`, id)
	call := func(method, url string, body io.Reader) (*http.Response, []byte, error) {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(cctx, method, url, body)
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("Ocp-Apim-Subscription-Key", Key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := d.client.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		return resp, data, err
	}
	buildURL := source + "/documentintelligence/documentModels:build?api-version=2024-11-30"
	resp, data, err := call(http.MethodPost, buildURL, strings.NewReader(body))
	if err != nil {
		return fmt.Errorf("build %s: %w", id, err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("build %s: HTTP %d: %s", id, resp.StatusCode, bytes.TrimSpace(data))
	}
	opURL := resp.Header.Get("Operation-Location")
	fmt.Fprintf(d.out, "  POST %s/documentintelligence/documentModels:build {\"modelId\":%q,...} → 202 Accepted\n", source, id)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, data, err := call(http.MethodGet, opURL, nil)
		if err != nil {
			return fmt.Errorf("build %s: reading the operation: %w", id, err)
		}
		var op struct {
			Status string `json:"status"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(data, &op) != nil {
			return fmt.Errorf("build %s: operation: HTTP %d: %s", id, resp.StatusCode, bytes.TrimSpace(data))
		}
		switch op.Status {
		case "succeeded":
			if resource == "source" {
				d.trained = time.Now()
				fmt.Fprintf(d.out, "  %s is ready on the source (%s)\n", id, d.since())
			} else {
				fmt.Fprintf(d.out, "  %s is ready in %s (%s)\n", id, resource, d.since())
			}
			return nil
		case "failed", "canceled":
			return fmt.Errorf("build %s ended %s: %s", id, op.Status, bytes.TrimSpace(data))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("build %s did not finish within 2m", id)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// wait polls the status API until every item has a succeeded replica in every target.
func (d *demo) wait(ctx context.Context, items []demoItem, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		var parts []string
		done := true
		var failed []string
		for _, it := range items {
			var ans handlers.ReplicationAnswer
			status, err := d.api(ctx, http.MethodGet, "/api/replications/"+it.kind+"/"+it.id, nil, &ans)
			if err != nil {
				return err
			}
			if status == http.StatusNotFound {
				done = false
				parts = append(parts, it.id+": not requested yet")
				continue
			}
			n := 0
			for _, r := range ans.Replicas {
				switch r.Status {
				case "succeeded":
					n++
				case "failed":
					msg := r.Target
					if r.Error != nil {
						msg += " (" + r.Error.Code + ": " + r.Error.Message + ")"
					}
					failed = append(failed, it.id+" → "+msg)
				}
			}
			if n < len(Targets) {
				done = false
			} else if it.automatic && d.arrived.IsZero() {
				d.arrived = time.Now()
			}
			parts = append(parts, fmt.Sprintf("%s: %d/%d succeeded", it.id, n, len(Targets)))
		}
		if line := strings.Join(parts, " · "); line != last {
			fmt.Fprintf(d.out, "  %7s  %s\n", d.since(), line)
			last = line
		}
		switch {
		case len(failed) > 0:
			return fmt.Errorf("replicas failed: %s", strings.Join(failed, "; "))
		case done:
			return nil
		case time.Now().After(deadline):
			return d.timeoutError(ctx, items, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// timeoutError says what did not converge; for the automatic path, which timers could have
// found the new model.
func (d *demo) timeoutError(ctx context.Context, items []demoItem, timeout time.Duration) error {
	for _, it := range items {
		if !it.automatic {
			continue
		}
		status, err := d.api(ctx, http.MethodGet, "/api/replications/"+it.kind+"/"+it.id, nil, nil)
		if err == nil && status == http.StatusNotFound {
			return fmt.Errorf("%w: %s %s was trained on the source but no replication of it started within %s. "+
				"dimirror finds new source models with its watch timer (DIMIRROR_WATCH_SCHEDULE, every 30s by default); "+
				"the timer functions of this build are: %s", ErrAutomaticCopyMissing, it.kind, it.id, timeout, timerFunctions())
		}
	}
	return fmt.Errorf("not every replica succeeded within %s (see %s)", timeout, d.s.LogDir)
}

// timerFunctions lists the timer-triggered functions embedded in this build.
func timerFunctions() string {
	fns, err := funcdef.Load(dimirror.Functions, "functions")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	var names []string
	for _, f := range fns {
		if tr, ok := f.Trigger(); ok && tr.Type == "timerTrigger" {
			names = append(names, f.Name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// HasWatchTimer reports whether this build has a timer function that can discover new
// source models on its own (named watch or reconcile).
func HasWatchTimer() bool {
	names := strings.Split(timerFunctions(), ", ")
	return slices.Contains(names, "watch") || slices.Contains(names, "reconcile")
}

// report prints the table and the figures.
func (d *demo) report(ctx context.Context) error {
	var rows []handlers.ReplicaView
	path := "/api/replications?top=1000"
	for path != "" {
		var page handlers.ListAnswer
		if _, err := d.api(ctx, http.MethodGet, path, nil, &page); err != nil {
			return err
		}
		rows = append(rows, page.Value...)
		path = page.NextLink
	}
	statustable.Sort(rows)
	fmt.Fprintln(d.out)
	if err := statustable.Write(d.out, rows, time.Now()); err != nil {
		return err
	}
	var lags []float64
	for _, r := range rows {
		if r.LagSeconds != nil {
			lags = append(lags, *r.LagSeconds)
		}
	}
	slices.Sort(lags)
	fmt.Fprintf(d.out, "\nFigures\n  %s, in %s from the first request\n", statustable.Summary(rows), d.since())
	if len(lags) > 0 {
		sec := func(f float64) string { return statustable.Duration(time.Duration(f * float64(time.Second))) }
		fmt.Fprintf(d.out, "  lag from the source model ready to the verified copy: min %s, median %s, max %s\n",
			sec(lags[0]), sec(lags[len(lags)/2]), sec(lags[len(lags)-1]))
	}
	if !d.trained.IsZero() && !d.arrived.IsZero() {
		fmt.Fprintf(d.out, "  the trained model was in both targets %s after it was ready on the source, with no request (watch timer: %s)\n",
			statustable.Duration(d.arrived.Sub(d.trained)), d.s.Settings["DIMIRROR_WATCH_SCHEDULE"])
	}
	st := d.s.DI.Stats()
	issued, accepted := 0, 0
	for _, a := range st.Authorizations {
		issued++
		accepted += a.CopyToAccepted
	}
	fmt.Fprintf(d.out, "  Document Intelligence: %d copy authorizations issued, %d copyTo accepted\n", issued, accepted)
	for _, name := range append([]string{"source"}, Targets...) {
		var req, throttled int64
		for _, c := range st.Resources[name].Categories {
			req += c.Requests
			throttled += c.Throttled
		}
		fmt.Fprintf(d.out, "    %-8s %4d requests, %d throttled; holds %s and %s\n", name, req, throttled,
			count(st.Resources[name].Models, "model"), count(st.Resources[name].Classifiers, "classifier"))
	}
	if q, err := d.s.Bus.QueueStats(Queue); err == nil {
		fmt.Fprintf(d.out, "  Service Bus queue %s: %d messages sent, %d delivered, %d completed, %d dead-lettered\n",
			Queue, q.Enqueued, q.Delivered, q.Completed, q.DeadLettered)
	}
	return nil
}

func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
