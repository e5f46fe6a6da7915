package chaos

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/emulators/devbus"
	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/internal/harness"
	"github.com/dimirror/dimirror/shared/replication"
)

var created = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// goodObservation is a run where every invariant holds: two models in both targets, one
// conflict that failed in ConflictTarget and succeeded in the other.
func goodObservation() *observation {
	o := &observation{
		cfg:         Config{Models: 2, Conflicts: 1},
		queue:       devbus.QueueStats{DeadLetterReasons: map[string]int{}},
		models:      map[string][]didev.Model{},
		reserved:    map[string][]didev.Reservation{},
		sources:     map[string]didev.Model{},
		tokenHashes: 7,
	}
	tags := map[string]string{replication.TagSourceCreated: created.Format(time.RFC3339)}
	for _, id := range []string{modelID(0), modelID(1), conflictID(0)} {
		o.sources[id] = didev.Model{ID: id, Created: created}
		for _, t := range Targets {
			r := replication.Replica{Key: replication.Key{Kind: replication.KindModel, SourceID: id, Target: t}, TargetID: id,
				Status: replication.StatusSucceeded, Attempt: 1}
			m := didev.Model{Kind: didev.KindModel, ID: id, Tags: tags}
			if id == conflictID(0) && t == ConflictTarget {
				r.Status, r.ErrorCode = replication.StatusFailed, CodeTargetExists
				m = didev.Model{Kind: didev.KindModel, ID: id, Description: "not a copy"}
			}
			o.rows = append(o.rows, r)
			o.models[t] = append(o.models[t], m)
			o.didev.Authorizations = append(o.didev.Authorizations, didev.AuthorizationStats{ID: id + t, Resource: t, TargetID: id,
				Issued: created, Expires: created.Add(time.Hour), CopyToAccepted: 1})
		}
	}
	return o
}

func rowOf(o *observation, id, target string) *replication.Replica {
	for i := range o.rows {
		if o.rows[i].SourceID == id && o.rows[i].Target == target {
			return &o.rows[i]
		}
	}
	panic("no row " + id + " " + target)
}

func TestCheckFindsEveryBrokenInvariant(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(o *observation)
		want    string
	}{
		{"replica in flight", func(o *observation) { rowOf(o, modelID(0), "westus2").Status = replication.StatusPending }, "is pending"},
		{"replica failed", func(o *observation) {
			r := rowOf(o, modelID(1), "eastus")
			r.Status, r.ErrorCode = replication.StatusFailed, "InternalServerError"
		}, "is failed"},
		{"row missing", func(o *observation) { o.rows = o.rows[1:] }, "has no row"},
		{"row never requested", func(o *observation) {
			o.rows = append(o.rows, replication.Replica{Key: replication.Key{Kind: replication.KindModel, SourceID: "stray", Target: "eastus"}})
		}, "never requested"},
		{"conflict replaced", func(o *observation) {
			r := rowOf(o, conflictID(0), ConflictTarget)
			r.Status, r.ErrorCode = replication.StatusSucceeded, ""
		}, "should have failed"},
		{"conflicting model overwritten", func(o *observation) {
			for i := range o.models[ConflictTarget] {
				if o.models[ConflictTarget][i].ID == conflictID(0) {
					o.models[ConflictTarget][i].Description = ""
				}
			}
		}, "was replaced"},
		{"target model missing", func(o *observation) { o.models["westus2"] = o.models["westus2"][1:] }, "does not hold"},
		{"target model twice", func(o *observation) { o.models["westus2"] = append(o.models["westus2"], o.models["westus2"][0]) }, "2 times"},
		{"stray target model", func(o *observation) {
			o.models["eastus"] = append(o.models["eastus"], didev.Model{ID: "leftover"})
		}, "no succeeded replica accounts for"},
		{"copy of another version", func(o *observation) {
			o.models["westus2"][0].Tags = map[string]string{replication.TagSourceCreated: "2020-01-01T00:00:00Z"}
		}, "is not a copy"},
		{"reservation left", func(o *observation) {
			o.reserved["westus2"] = []didev.Reservation{{ID: "chaos-0009"}}
		}, "still reserved"},
		{"authorization spent twice", func(o *observation) {
			o.didev.Authorizations[0].CopyToAccepted, o.didev.Authorizations[0].CopyToAfterConsumed = 2, 1
		}, "sent to copyTo 1 times after a copy had consumed it"},
		{"message left", func(o *observation) { o.queue.Active = 1 }, "still holds 1 messages"},
		{"message locked", func(o *observation) { o.queue.Locked = 2 }, "still holds 2 messages"},
		{"dead letter without reason", func(o *observation) { o.queue.DeadLetterReasons[""] = 1 }, "without a reason"},
		{"secret in a log", func(o *observation) {
			o.findings = []harness.Finding{{File: "/x/dimirror1-1.log", Line: 3, What: "secret \"devk\"…"}}
		}, "secret in a log: dimirror1-1.log:3"},
		{"blind token check", func(o *observation) { o.tokenHashes = 0 }, "blind"},
		{"crash", func(o *observation) { o.crashes = 1 }, "ended on their own"},
		{"not settled", func(o *observation) { o.settle = errors.New("deadline") }, "did not settle"},
	}
	if v := goodObservation().check(); len(v) != 0 {
		t.Fatalf("a good run has violations: %v", v)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := goodObservation()
			tt.breakIt(o)
			v := o.check()
			if len(v) == 0 || !strings.Contains(strings.Join(v, "\n"), tt.want) {
				t.Fatalf("violations %q, want one containing %q", v, tt.want)
			}
		})
	}
}

func TestDeadLetterWithReasonIsNotAViolation(t *testing.T) {
	o := goodObservation()
	o.queue.DeadLetterReasons["MaxDeliveryCountExceeded"] = 1
	if v := o.check(); len(v) != 0 {
		t.Fatalf("violations %v", v)
	}
	if got := o.faultCounts()["dead-lettered:MaxDeliveryCountExceeded"]; got != 1 {
		t.Errorf("fault count %d, want 1", got)
	}
}

func TestFaultCounts(t *testing.T) {
	o := goodObservation()
	o.didev.Resources = map[string]didev.ResourceStats{
		"source":  {Categories: map[string]didev.CategoryStats{"management": {Injected429: 2, RateLimited: 5, Injected5xx: 1, Resets: 5, LostAnswers: 2}}},
		"westus2": {Categories: map[string]didev.CategoryStats{"list": {Injected429: 1}}},
	}
	o.copyFails = 4
	o.didev.Authorizations[0].Expires = created.Add(-time.Second) // issued already expired
	o.queue.Abandoned, o.queue.LocksExpired = 6, 2
	got := o.faultCounts()
	want := map[string]int64{"429": 3, "rate-limited": 5, "500": 1, "reset": 3, "lost-answer": 2, "copy-fail": 4, "expired-auth": 1, "abandoned": 6, "lock-expired": 2}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s = %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
	if _, ok := got["dead-lettered:"]; ok {
		t.Errorf("zero counts must be left out: %v", got)
	}
}

func TestSummaryIsOneLine(t *testing.T) {
	r := Report{Seed: 42, Replications: 510, Succeeded: 505, Failed: map[string]int{CodeTargetExists: 5},
		Faults: map[string]int64{"429": 12, "copy-fail": 3}, Kills: 12, Elapsed: 3 * time.Minute}
	s := r.Summary()
	for _, want := range []string{"seed=42", "510 replications", "505 succeeded", "TargetExists=5", "429=12 copy-fail=3", "kills 12", "outcome PASS", "3m0s"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary %q lacks %q", s, want)
		}
	}
	r.Unsettled = map[string]int{"authorized": 2}
	r.Violations = []string{"x"}
	if s := r.Summary(); strings.Contains(s, "\n") || !strings.Contains(s, "FAIL (1 violations)") || !strings.Contains(s, "unsettled authorized=2") {
		t.Errorf("summary %q", s)
	}
}

func TestConfigs(t *testing.T) {
	if n := Full(1).Replications(); n < 500 {
		t.Errorf("the full variant runs %d replications, want at least 500", n)
	}
	s := Short(1)
	if n := s.Replications(); n < 40 || n > 60 {
		t.Errorf("the short variant runs %d replications, want about 50", n)
	}
	for _, c := range []Config{Short(1), Full(1)} {
		if c.Instances != 2 || c.Kills < 1 || c.KillUntil <= c.KillFrom || c.MaxAttempts < 6 {
			t.Errorf("config %+v: want two instances, kills in a window, enough attempts", c)
		}
	}
}
