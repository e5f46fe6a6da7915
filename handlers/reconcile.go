package handlers

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dimirror/dimirror/shared/reconcile"
)

func (a *Functions) reconciler() (reconciler, error) {
	if a.Reconciler == nil {
		return nil, errNoReconciler
	}
	return a.Reconciler, nil
}

func bounded(ctx context.Context, d, def time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, orDefault(d, def))
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
