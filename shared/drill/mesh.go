package drill

import (
	"context"
	"fmt"
)

// RuleDrill is the drill of one replication rule: its target judged against its source, with the
// rule's own filters in Drill.Select.
type RuleDrill struct {
	From, To string
	Drill    *Drill // Source is From's resource, Targets holds To's alone
}

// Mesh is the drill of the rules form: every rule's target judged against that rule's source,
// since with several sources a target must hold what each of the resources feeding it holds. The
// verdicts come in one report, one entry per rule (TargetReport.From names the source).
type Mesh struct {
	Rules []RuleDrill
}

// Run runs each rule's drill in turn (each resource's client paces its own calls, and one
// resource often feeds several rules) and merges the reports.
func (m *Mesh) Run(ctx context.Context) (*Report, error) {
	if len(m.Rules) == 0 {
		return nil, fmt.Errorf("drill: no rules to judge")
	}
	out := &Report{Targets: []TargetReport{}, Ready: true}
	for _, r := range m.Rules {
		if len(r.Drill.Targets) != 1 || r.Drill.Targets[r.To] == nil {
			return nil, fmt.Errorf("drill: rule %s>%s must judge its one target", r.From, r.To)
		}
		rep, err := r.Drill.Run(ctx)
		if err != nil {
			return nil, fmt.Errorf("rule %s>%s: %w", r.From, r.To, err)
		}
		if out.At.IsZero() {
			out.At, out.ExpiryWarning = rep.At, rep.ExpiryWarning
		}
		out.SourceModels += rep.SourceModels
		out.SourceClassifiers += rep.SourceClassifiers
		for _, t := range rep.Targets {
			t.From = r.From
			out.Targets = append(out.Targets, t)
		}
		out.Ready = out.Ready && rep.Ready
	}
	return out, nil
}
