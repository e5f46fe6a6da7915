package app

import (
	"github.com/dimirror/dimirror/shared/config"
	"github.com/dimirror/dimirror/shared/docintel"
	"github.com/dimirror/dimirror/shared/drill"
	"github.com/dimirror/dimirror/shared/reconcile"
	"github.com/dimirror/dimirror/shared/replication"
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

// NewMeshDrill builds the drill of the rules form over the resources' clients: one drill per
// rule, its target judged against its source, selecting what reconciliation selects and what
// the rule's own kinds and globs select.
func NewMeshDrill(cfg *config.Config, clients map[string]*docintel.Client) *drill.Mesh {
	m := &drill.Mesh{}
	for _, r := range cfg.Rules {
		from, to := clients[r.From], clients[r.To]
		if from == nil || to == nil {
			continue // validated settings name only configured resources
		}
		d := NewDrill(cfg, from, map[string]*docintel.Client{r.To: to})
		rule := r
		d.Select = func(kind replication.Kind, id string) bool { return rule.Matches(string(kind), id) }
		m.Rules = append(m.Rules, drill.RuleDrill{From: r.From, To: r.To, Drill: d})
	}
	return m
}
