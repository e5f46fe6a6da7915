package drill_test

import (
	"context"
	"strings"
	"testing"

	"github.com/dimirror/dimirror/internal/fakeclock"
	"github.com/dimirror/dimirror/shared/drill"
	"github.com/dimirror/dimirror/shared/reconcile"
	"github.com/dimirror/dimirror/shared/replication"
)

// The rules form: each rule's target is judged against that rule's source, with the rule's own
// filters; the verdicts come in one report, one entry per rule.
func TestMeshJudgesEveryRule(t *testing.T) {
	a, b := world() // b holds a's items
	c := &fakeResource{version: "2024-11-30", items: map[replication.Kind][]reconcile.Item{}, fps: map[string]string{}}
	clock := fakeclock.New(t0)
	mk := func(src, tgt *fakeResource, to string, sel func(replication.Kind, string) bool) *drill.Drill {
		return &drill.Drill{Source: src, Targets: map[string]drill.Resource{to: tgt}, Select: sel, Now: clock.Now,
			Filter: reconcile.Filter{Exclude: []string{"scratch-*"}}}
	}
	onlyModels := func(k replication.Kind, _ string) bool { return k == replication.KindModel }
	m := &drill.Mesh{Rules: []drill.RuleDrill{
		{From: "a", To: "b", Drill: mk(a, b, "b", nil)},
		{From: "a", To: "c", Drill: mk(a, c, "c", onlyModels)}, // c should hold a's models only
	}}
	rep, err := m.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Ready || len(rep.Targets) != 2 {
		t.Fatalf("ready %v with %d entries, want not ready with 2", rep.Ready, len(rep.Targets))
	}
	ab, ac := rep.Targets[0], rep.Targets[1]
	if ab.From != "a" || ab.Target != "b" || !ab.Ready {
		t.Errorf("a>b: %+v, want ready", ab)
	}
	if ac.From != "a" || ac.Target != "c" || ac.Ready || len(ac.Reasons) != 1 || ac.Reasons[0].ID != "invoice" || ac.Reasons[0].Kind != replication.KindModel {
		t.Errorf("a>c: %+v, want only the model invoice missing (the rule copies no classifiers)", ac)
	}
	if _, err := (&drill.Mesh{}).Run(context.Background()); err == nil || !strings.Contains(err.Error(), "no rules") {
		t.Errorf("a mesh without rules: %v", err)
	}
	bad := &drill.Mesh{Rules: []drill.RuleDrill{{From: "a", To: "b", Drill: mk(a, b, "x", nil)}}}
	if _, err := bad.Run(context.Background()); err == nil {
		t.Error("a rule drill whose target is not its rule's was run")
	}
}
