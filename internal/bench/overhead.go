package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dimirror/dimirror/internal/devstack"
	"github.com/dimirror/dimirror/internal/harness"
	"github.com/dimirror/dimirror/shared/docintel"
	"github.com/dimirror/dimirror/shared/replication"
)

// OverheadOptions shape the overhead run: Models webhook requests (each copies into both
// targets), one every Interval, each copy taking CopyDuration in didev.
type OverheadOptions struct {
	Models       int
	Interval     time.Duration
	CopyDuration time.Duration
	PollSchedule string // DIMIRROR_POLL_SCHEDULE
	FollowFor    string // DIMIRROR_FOLLOW_FOR; "" leaves dimirror's default (checks on)
}

// Label names the run's settings for the report.
func (o OverheadOptions) Label() string {
	checks := "check messages on (default)"
	if o.FollowFor != "" {
		checks = "`DIMIRROR_FOLLOW_FOR=" + o.FollowFor + "`"
		if d, err := time.ParseDuration(o.FollowFor); err == nil && d == 0 {
			checks += " (no check messages)"
		}
	}
	poll := "poll `" + o.PollSchedule + "`"
	if o.PollSchedule == DefaultPollSchedule {
		poll += " (default)"
	}
	return checks + ", " + poll
}

func (o OverheadOptions) settings() map[string]string {
	s := map[string]string{"DIMIRROR_POLL_SCHEDULE": o.PollSchedule}
	if o.FollowFor != "" {
		s["DIMIRROR_FOLLOW_FOR"] = o.FollowFor
	}
	return s
}

// OverheadResult is dimirror's overhead per copy: from the webhook's 202 to the row's
// succeeded, minus the copy's own duration in didev; split into Start (202 → copy accepted by
// the source) and Detect (copy finished → row succeeded, i.e. poll wait plus verification).
type OverheadResult struct {
	Options  OverheadOptions
	Copies   int
	Failed   int
	Answer   harness.Summary // the webhook's own latency (authorize on every target inside it)
	Overhead harness.Summary
	Start    harness.Summary
	Detect   harness.Summary
}

// Overhead measures dimirror's replication overhead.
func (e *Env) Overhead(ctx context.Context, o OverheadOptions) (OverheadResult, error) {
	res := OverheadResult{Options: o}
	prefix := "ovh"
	st, in, err := e.startStack(ctx, stackOptions(prefix, o.Models, o.CopyDuration, o.settings()), "overhead")
	if err != nil {
		return res, err
	}
	defer st.Close()
	defer in.Stop(10 * time.Second)
	e.logf("overhead: %d requests every %s, copy %s, %s", o.Models, o.Interval, o.CopyDuration, o.Label())

	ids := make([]string, o.Models)
	for i := range ids {
		ids[i] = ModelID(prefix, i)
	}
	client := harness.NewClient(devstack.APIKey, func() []string { return []string{in.Base()} })
	answers, err := requestAll(ctx, client, ids, o.Interval, o.Models)
	if err != nil {
		return res, err
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	rows, err := st.WaitSettled(wctx, 2*o.Models, 500*time.Millisecond, nil)
	if err != nil {
		return res, err
	}
	ops := copyOps(st)
	var answer, total, start, detect []time.Duration
	for _, acc := range answers {
		answer = append(answer, acc.At.Sub(acc.Sent))
	}
	for _, r := range rows {
		res.Copies++
		if r.Status != replication.StatusSucceeded {
			res.Failed++
			continue
		}
		acc := answers[r.SourceID]
		op, ok := ops[targetLocation(st, r)]
		if !ok {
			return res, fmt.Errorf("no copy operation for %s", r.Key)
		}
		total = append(total, r.CompletedAt.Sub(acc.At)-op.End.Sub(op.Created))
		start = append(start, op.Created.Sub(acc.At))
		detect = append(detect, r.CompletedAt.Sub(op.End))
	}
	res.Answer, res.Overhead = harness.Summarize(answer), harness.Summarize(total)
	res.Start, res.Detect = harness.Summarize(start), harness.Summarize(detect)
	e.logf("overhead: %s (start %s, detect %s)", res.Overhead, res.Start, res.Detect)
	return res, nil
}

// BaselineOptions shape the user's script: authorize on the target, copyTo on the source, then
// poll the operation every PollInterval (the SDKs' default, 5 s) until it ends.
type BaselineOptions struct {
	Models       int
	Interval     time.Duration
	CopyDuration time.Duration
	PollInterval time.Duration
}

// BaselineResult is the script's overhead per copy, measured like dimirror's: from the moment
// the target's authorization exists (when dimirror's webhook would answer) to the script seeing
// the operation succeed, minus the copy's duration.
type BaselineResult struct {
	Options  BaselineOptions
	Copies   int
	Failed   int
	Overhead harness.Summary
	Polls    float64 // GET operation calls per copy
}

// Baseline runs the user's script for Models models into both targets of a fresh stack.
func (e *Env) Baseline(ctx context.Context, o BaselineOptions) (BaselineResult, error) {
	res := BaselineResult{Options: o}
	prefix := "script"
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	st, err := harness.StartStack(sctx, stackOptions(prefix, o.Models, o.CopyDuration, nil))
	if err != nil {
		return res, err
	}
	defer st.Close()
	e.logf("baseline script: %d models × 2 targets every %s, poll every %s", o.Models, o.Interval, o.PollInterval)
	client := func(name string) (*docintel.Client, error) {
		return docintel.New(st.DI.Endpoint(name), docintel.Options{Key: devstack.Key})
	}
	source, err := client("source")
	if err != nil {
		return res, err
	}
	var mu sync.Mutex
	var overheads []time.Duration
	var polls int
	var errs []error
	var wg sync.WaitGroup
	tick := time.Now()
	for i := range o.Models {
		tick = tick.Add(o.Interval)
		time.Sleep(time.Until(tick))
		for _, name := range []string{"westus2", "eastus"} {
			target, err := client(name)
			if err != nil {
				return res, err
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, n, err := userScript(ctx, source, target, ModelID(prefix, i), o.PollInterval)
				mu.Lock()
				defer mu.Unlock()
				res.Copies++
				polls += n
				if err != nil {
					res.Failed++
					errs = append(errs, err)
					return
				}
				overheads = append(overheads, d-o.CopyDuration)
			}()
		}
	}
	wg.Wait()
	res.Overhead = harness.Summarize(overheads)
	if res.Copies > 0 {
		res.Polls = float64(polls) / float64(res.Copies)
	}
	e.logf("baseline script: %s", res.Overhead)
	return res, errors.Join(errs...)
}

// userScript is the copy as users script it today with an SDK: authorizeCopy on the target,
// copyTo on the source, then poll the operation at a fixed interval. It returns the time from
// the authorization to the poll that saw the copy succeed, and how many polls that took.
func userScript(ctx context.Context, source, target *docintel.Client, id string, every time.Duration) (time.Duration, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	auth, err := target.AuthorizeCopy(ctx, docintel.KindModel, docintel.AuthorizeRequest{TargetID: id})
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	opURL, err := source.CopyTo(ctx, docintel.KindModel, id, auth)
	if err != nil {
		return 0, 0, err
	}
	polls := 0
	for {
		select {
		case <-ctx.Done():
			return 0, polls, ctx.Err()
		case <-time.After(every):
		}
		op, err := source.GetOperation(ctx, opURL)
		polls++
		if err != nil {
			return 0, polls, err
		}
		if op.Status.Terminal() {
			if !op.Status.Succeeded() {
				return 0, polls, fmt.Errorf("copy of %s ended %s", id, op.Status)
			}
			return time.Since(start), polls, nil
		}
	}
}
