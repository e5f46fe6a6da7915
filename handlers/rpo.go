package handlers

import (
	"context"
	"fmt"
)

// rpoReporter announces the replicas that missed the recovery point objective
// (reconcile.Reconciler.ReportRPO: one rpo-missed event per replica run).
type rpoReporter interface {
	ReportRPO(ctx context.Context) (int, error)
}

// reportRPO runs the RPO report after a watch pass (every 30 s by default, so a miss is
// announced within a pass of the objective running out) and returns its part of the pass's
// one-line account. A failure is logged and does not fail the watch: the next pass reports
// what this one could not.
func (a *Functions) reportRPO(ctx context.Context) string {
	rr, ok := a.Reconciler.(rpoReporter)
	if !ok {
		return ""
	}
	n, err := rr.ReportRPO(ctx)
	if err != nil {
		a.log().WarnContext(ctx, "rpo report failed", "err", err.Error())
		return "; rpo report failed"
	}
	return fmt.Sprintf("; %d rpo-missed", n)
}
