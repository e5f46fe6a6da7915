package handlers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dimirror/dimirror/shared/reconcile"
)

// Default bounds of one reconciliation pass. A watch normally takes a second; the bound keeps a
// slow one from running into many ticks. A sweep must end, with its report saved, before the
// Functions host's functionTimeout (10 minutes in host.json); what it had no time for is found
// again by the next sweep.
const (
	defaultWatchTimeout = 2 * time.Minute
	defaultSweepTimeout = 9 * time.Minute
)

var errNoReconciler = errors.New("reconciliation is not configured in this app")

func (a *App) reconciler() (*reconcile.Reconciler, error) {
	if a.Reconciler == nil {
		return nil, errNoReconciler
	}
	return a.Reconciler, nil
}

func bounded(ctx context.Context, d, def time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		d = def
	}
	return context.WithTimeout(ctx, d)
}

// planLine is a pass's one-line account: counts by category, then errors.
func planLine(p *reconcile.Plan) string {
	counts := p.Counts()
	var parts []string
	for _, c := range reconcile.Categories {
		parts = append(parts, fmt.Sprintf("%d %s", counts[c], c))
	}
	line := fmt.Sprintf("%s: %s; %d errors", p.Run, strings.Join(parts, ", "), p.Errors)
	if p.Run == "watch" {
		line += fmt.Sprintf("; %d operations read, %d builds running, %d composed models waiting", p.Operations, p.Running, p.Waiting)
	}
	return line
}
