package app

import (
	"github.com/dimirror/dimirror/shared/config"
	"github.com/dimirror/dimirror/shared/docintel"
	"github.com/dimirror/dimirror/shared/drill"
	"github.com/dimirror/dimirror/shared/reconcile"
	"github.com/dimirror/dimirror/shared/resources"
)

// NewDrill builds the drill over the source and target clients (their pacing and call
// deadlines), selecting what reconciliation selects and warning of expiry as the sweep does.
func NewDrill(cfg *config.Config, source *docintel.Client, targets map[string]*docintel.Client) *drill.Drill {
	d := &drill.Drill{
		Source:        resources.NewInspection(source),
		Targets:       make(map[string]drill.Resource, len(targets)),
		Filter:        reconcile.Filter{Include: cfg.Include, Exclude: cfg.Exclude},
		ExpiryWarning: cfg.ExpiryWarning,
	}
	for name, c := range targets {
		d.Targets[name] = resources.NewInspection(c)
	}
	return d
}
