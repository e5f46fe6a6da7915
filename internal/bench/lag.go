package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/dimirror/dimirror"
	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/internal/devstack"
	"github.com/dimirror/dimirror/internal/harness"
	"github.com/dimirror/dimirror/shared/funcdef"
	"github.com/dimirror/dimirror/shared/replication"
)

// ErrNoWatch: the build has no function that copies new models automatically.
var ErrNoWatch = errors.New("this build has no timer function on DIMIRROR_WATCH_SCHEDULE: nothing copies new models automatically")

// WatchFunction is the timer function that copies new models automatically: the one scheduled
// by DIMIRROR_WATCH_SCHEDULE. ok is false when this build has none.
func WatchFunction() (name string, ok bool, err error) {
	fns, err := funcdef.Load(dimirror.Functions, "functions")
	if err != nil {
		return "", false, err
	}
	for _, f := range fns {
		if tr, _ := f.Trigger(); tr.Type == "timerTrigger" && tr.Schedule == "%DIMIRROR_WATCH_SCHEDULE%" {
			return f.Name, true, nil
		}
	}
	return "", false, nil
}

// LagOptions shape the automatic-copy run: Models builds on the source, one every Interval, so
// they fall at every phase of the watch timer.
type LagOptions struct {
	Models        int
	Interval      time.Duration
	BuildDuration time.Duration
	CopyDuration  time.Duration
	WatchSchedule string // DIMIRROR_WATCH_SCHEDULE; "" = the default
}

// LagResult is the time from a build finishing on the source to its copy verified in every
// target, with no request from anyone: the watch finds the build.
type LagResult struct {
	Options  LagOptions
	Watch    string // the timer function measured
	Models   int
	Missing  int // builds not copied everywhere in time
	Lag      harness.Summary
	Settings map[string]string // the schedules in effect
}

// Lag trains models through the source's HTTP API (as a training pipeline does) and waits for
// dimirror to copy them on its own.
func (e *Env) Lag(ctx context.Context, o LagOptions) (LagResult, error) {
	res := LagResult{Options: o}
	name, ok, err := WatchFunction()
	if err != nil {
		return res, err
	}
	if !ok {
		return res, ErrNoWatch
	}
	res.Watch = name
	settings := map[string]string{}
	if o.WatchSchedule != "" {
		settings["DIMIRROR_WATCH_SCHEDULE"] = o.WatchSchedule
	}
	opts := stackOptions("seeded", 0, o.CopyDuration, settings)
	di := opts.DI
	opts.DI = func(d *didev.Options) { di(d); d.BuildDuration = o.BuildDuration }
	st, in, err := e.startStack(ctx, opts, "lag")
	if err != nil {
		return res, err
	}
	defer st.Close()
	defer in.Stop(10 * time.Second)
	res.Settings = map[string]string{
		"DIMIRROR_WATCH_SCHEDULE": st.Settings["DIMIRROR_WATCH_SCHEDULE"],
		"DIMIRROR_POLL_SCHEDULE":  st.Settings["DIMIRROR_POLL_SCHEDULE"],
	}
	e.logf("lag: %d builds every %s (build %s, copy %s), watch %q", o.Models, o.Interval, o.BuildDuration, o.CopyDuration, res.Settings["DIMIRROR_WATCH_SCHEDULE"])
	ids := make([]string, o.Models)
	tick := time.Now()
	for i := range ids {
		ids[i] = ModelID("trained", i)
		if err := build(ctx, st.DI.Endpoint("source"), ids[i]); err != nil {
			return res, err
		}
		tick = tick.Add(o.Interval)
		select {
		case <-time.After(time.Until(tick)):
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	res.Models = len(ids)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	rows, err := st.WaitSettled(wctx, 2*len(ids), time.Second, nil)
	if err != nil {
		return res, err
	}
	done := map[string]time.Time{}
	count := map[string]int{}
	for _, r := range rows {
		if r.Status != replication.StatusSucceeded {
			continue
		}
		count[r.SourceID]++
		if r.CompletedAt.After(done[r.SourceID]) {
			done[r.SourceID] = r.CompletedAt
		}
	}
	var lags []time.Duration
	for _, id := range ids {
		m, ok := st.DI.Resource("source").Model(didev.KindModel, id)
		if !ok || count[id] != 2 {
			res.Missing++
			continue
		}
		lags = append(lags, done[id].Sub(m.Ready))
	}
	res.Lag = harness.Summarize(lags)
	e.logf("lag: %s (%d not copied everywhere)", res.Lag, res.Missing)
	return res, nil
}

// build starts a template model build on the source, as a training pipeline does.
func build(ctx context.Context, endpoint, id string) error {
	body := fmt.Sprintf(`{"modelId":%q,"buildMode":"template","azureBlobSource":{"containerUrl":"https://training.blob.core.windows.net/forms"}}`, id)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/documentintelligence/documentModels:build?api-version=2024-11-30", bytes.NewReader([]byte(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Ocp-Apim-Subscription-Key", devstack.Key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("build %s: HTTP %d: %s", id, resp.StatusCode, b)
	}
	return nil
}

// ColdStart starts a fresh dimirror n times on one stack and measures exec → /healthz 200.
func (e *Env) ColdStart(ctx context.Context, n int) (harness.Summary, error) {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	st, err := harness.StartStack(sctx, stackOptions("cold", 0, 0, nil))
	if err != nil {
		return harness.Summary{}, err
	}
	defer st.Close()
	in := &harness.Instance{Name: e.instanceName("coldstart"), Binary: e.Binary, Settings: st.Settings, LogDir: e.LogDir}
	var ds []time.Duration
	for range n {
		d, err := in.Start(sctx)
		if err != nil {
			return harness.Summary{}, err
		}
		ds = append(ds, d)
		in.Stop(10 * time.Second)
	}
	s := harness.Summarize(ds)
	e.logf("cold start: %s", s)
	return s, nil
}
