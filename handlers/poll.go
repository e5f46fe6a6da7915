package handlers

import (
	"context"
	"time"

	"github.com/dimirror/dimirror/shared/replication"
)

// Poll runs one pass of the poller (the timer trigger): advances copying replicas, re-drives
// lost steps, starts due retries. It is bounded by PollTimeout so a pass ends before the next.
func (a *Functions) Poll(ctx context.Context) (replication.PollReport, error) {
	ctx, cancel := bounded(ctx, a.PollTimeout, defaultPollTimeout)
	defer cancel()
	start := time.Now()
	rep, err := a.Poller.Poll(ctx)
	attrs := []any{"active", rep.Active, "due", rep.Due, "succeeded", rep.Succeeded, "retried", rep.Retried,
		"failed", rep.Failed, "errors", rep.Errors, "duration", time.Since(start).String()}
	if err != nil {
		a.log().ErrorContext(ctx, "poll pass failed", append(attrs, "err", err.Error())...)
		return rep, err
	}
	if rep.Due > 0 {
		a.log().InfoContext(ctx, "poll pass", attrs...)
	}
	return rep, nil
}
