package handlers

import (
	"context"

	"github.com/dimirror/dimirror/shared/reconcile"
)

// Watch runs one pass of the watch timer: it requests replication of what new builds on the
// source made since the last pass (reconcile.Reconciler.Watch), within WatchTimeout.
func (a *Functions) Watch(ctx context.Context) (*reconcile.Plan, error) {
	rec, err := a.reconciler()
	if err != nil {
		return nil, err
	}
	ctx, cancel := bounded(ctx, a.WatchTimeout, defaultWatchTimeout)
	defer cancel()
	p, err := rec.Watch(ctx)
	if err != nil {
		a.log().ErrorContext(ctx, "watch pass failed", "err", err.Error())
		return p, err
	}
	return p, nil
}
