package handlers

import (
	"context"

	"github.com/dimirror/dimirror/shared/reconcile"
)

// Sweep runs one pass of the sweep timer: list the source and every target, plan and act
// (reconcile.Reconciler.Sweep), within SweepTimeout. The sweep logs its plan and the freshness
// event of every target itself.
func (a *Functions) Sweep(ctx context.Context) (*reconcile.Plan, error) {
	rec, err := a.reconciler()
	if err != nil {
		return nil, err
	}
	ctx, cancel := bounded(ctx, a.SweepTimeout, defaultSweepTimeout)
	defer cancel()
	p, err := rec.Sweep(ctx, reconcile.SweepOptions{})
	if err != nil {
		a.log().ErrorContext(ctx, "sweep pass failed", "err", err.Error())
		return nil, err
	}
	return p, nil
}
