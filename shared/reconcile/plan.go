package reconcile

import (
	"sort"
	"time"

	"github.com/dimirror/dimirror/shared/replication"
)

// Category is what a plan entry found.
type Category string

// Categories, in the order plans list them.
const (
	// Missing: the target lacks the source's model or classifier.
	Missing Category = "missing"
	// Stale: the target holds dimirror's copy of an older version (the source was retrained
	// under the same id).
	Stale Category = "stale"
	// Orphaned: the target holds dimirror's copy of something the source no longer has.
	Orphaned Category = "orphaned"
	// Failed: the replica's last run failed.
	Failed Category = "failed"
	// InFlight: a replica is on its way (the pipeline is on it).
	InFlight Category = "inflight"
	// Conflict: the target holds something of another origin under the id (trained there, or a
	// copy of another resource's item); never overwritten.
	Conflict Category = "conflict"
	// Expiring: the model expires within the window (report only; not drift).
	Expiring Category = "expiring"
)

// Categories lists every category in plan order.
var Categories = []Category{Missing, Stale, Orphaned, Failed, InFlight, Conflict, Expiring}

// Drift reports whether the category means a target differs from the source.
func (c Category) Drift() bool { return c != Expiring }

// Action is what reconciliation does (or, in a dry run, would do) about an entry.
type Action string

// Actions.
const (
	ActStart   Action = "start"   // request replication
	ActRestore Action = "restore" // the verified copy vanished from the target: replicate again
	ActReplace Action = "replace" // DIMIRROR_REPLACE: the engine deletes the stale copy and copies again
	ActRedrive Action = "redrive" // a failed replica whose cause may have passed: a new run
	ActDelete  Action = "delete"  // DIMIRROR_PRUNE: delete the orphan and forget its row
	ActWait    Action = "wait"    // dependencies or quota first
	ActReport  Action = "report"  // needs an operator (or a setting) to change
	ActNone    Action = "none"    // in flight: nothing to do
)

// requests reports whether carrying out the action requests replication.
func (a Action) requests() bool {
	return a == ActStart || a == ActRestore || a == ActReplace || a == ActRedrive
}

// SourceResource is the Target of entries about the source itself (expiring source models).
const SourceResource = "(source)"

// Entry is one finding of a plan about one model or classifier in one resource.
type Entry struct {
	Category Category         `json:"category"`
	Action   Action           `json:"action"`
	Kind     replication.Kind `json:"kind"`
	// Source is the resource the item is copied from (the rule's from); Origin the item it is a
	// copy of, where it was trained ("<host>/<kind>/<id>").
	Source   string     `json:"source,omitempty"`
	Origin   string     `json:"origin,omitempty"`
	SourceID string     `json:"sourceId,omitempty"`
	Target   string     `json:"target"`
	TargetID string     `json:"targetId,omitempty"`
	Detail   string     `json:"detail,omitempty"`
	Expires  *time.Time `json:"expirationDateTime,omitempty"`
	// Result is what acting on the entry gave: the replica's status after the request, "deleted",
	// "deferred" (the pass ran out of time), or "error: ...". Empty in a dry run.
	Result string `json:"result,omitempty"`
}

// Quota is a target at (or about to reach) its custom model limit.
type Quota struct {
	Target  string `json:"target"`
	Count   int    `json:"count"`
	Limit   int    `json:"limit"`
	Waiting int    `json:"waiting"` // models that wait for room instead of starting
}

// Plan is what one watch or sweep found and did.
type Plan struct {
	Run      string    `json:"run"` // "watch" or "sweep"
	DryRun   bool      `json:"dryRun,omitempty"`
	Started  time.Time `json:"startedDateTime"`
	Finished time.Time `json:"finishedDateTime"`
	Targets  []string  `json:"targets"`
	// SourceModels and SourceClassifiers are the selected (filtered) items of the source.
	SourceModels      int `json:"sourceModels"`
	SourceClassifiers int `json:"sourceClassifiers"`
	// Operations is how many source operations the watch read; Watermark is where it stands.
	Operations int        `json:"operations,omitempty"`
	Watermark  *time.Time `json:"watermark,omitempty"`
	// Running is how many builds the watch follows; Waiting how many composed models wait for
	// their dependencies.
	Running int      `json:"running,omitempty"`
	Waiting int      `json:"waiting,omitempty"`
	Entries []Entry  `json:"entries"`
	Quota   []Quota  `json:"quota,omitempty"`
	Notes   []string `json:"notes,omitempty"`
	// Errors counts actions that failed and resources that could not be read; Incomplete says a
	// resource could not be read, so the plan may miss drift.
	Errors     int  `json:"errors"`
	Incomplete bool `json:"incomplete,omitempty"`
}

// InSync reports whether the plan found no drift (expiring models are not drift) and read every
// resource.
func (p *Plan) InSync() bool {
	if p.Incomplete {
		return false
	}
	for _, e := range p.Entries {
		if e.Category.Drift() {
			return false
		}
	}
	return true
}

// Counts is the number of entries per category.
func (p *Plan) Counts() map[Category]int {
	out := map[Category]int{}
	for _, e := range p.Entries {
		out[e.Category]++
	}
	return out
}

// ActionCounts is the number of entries per action.
func (p *Plan) ActionCounts() map[Action]int {
	out := map[Action]int{}
	for _, e := range p.Entries {
		out[e.Action]++
	}
	return out
}

// TargetCounts is the number of entries per target and category.
func (p *Plan) TargetCounts() map[string]map[Category]int {
	out := map[string]map[Category]int{}
	for _, t := range p.Targets {
		out[t] = map[Category]int{}
	}
	for _, e := range p.Entries {
		if out[e.Target] == nil {
			out[e.Target] = map[Category]int{}
		}
		out[e.Target][e.Category]++
	}
	return out
}

// has reports whether the plan has an entry about kind/id in target.
func (p *Plan) has(kind replication.Kind, id, target string) bool {
	for _, e := range p.Entries {
		if e.Kind == kind && e.SourceID == id && e.Target == target {
			return true
		}
	}
	return false
}

func (p *Plan) note(format string) { p.Notes = append(p.Notes, format) }

// sortEntries orders entries by category, then kind, id and target, so plans read and compare
// the same every time.
func (p *Plan) sortEntries() {
	rank := map[Category]int{}
	for i, c := range Categories {
		rank[c] = i
	}
	sort.SliceStable(p.Entries, func(i, j int) bool {
		a, b := p.Entries[i], p.Entries[j]
		if rank[a.Category] != rank[b.Category] {
			return rank[a.Category] < rank[b.Category]
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.SourceID != b.SourceID {
			return a.SourceID < b.SourceID
		}
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		return a.TargetID < b.TargetID
	})
}

// Report is a plan as the meta rows keep it and the summary shows it: the counts, and a sample of
// the entries (the table row holds at most 64 KiB).
type Report struct {
	Run        string                      `json:"run"`
	Started    time.Time                   `json:"startedDateTime"`
	Finished   time.Time                   `json:"finishedDateTime"`
	Planned    map[Category]int            `json:"planned"`
	Actions    map[Action]int              `json:"actions"`
	PerTarget  map[string]map[Category]int `json:"perTarget,omitempty"`
	Quota      []Quota                     `json:"quota,omitempty"`
	Operations int                         `json:"operations,omitempty"`
	Watermark  *time.Time                  `json:"watermark,omitempty"`
	Running    int                         `json:"running,omitempty"`
	Waiting    int                         `json:"waiting,omitempty"`
	Errors     int                         `json:"errors"`
	Incomplete bool                        `json:"incomplete,omitempty"`
	Notes      []string                    `json:"notes,omitempty"`
	Sample     []Entry                     `json:"sample,omitempty"`
}

// reportSample bounds the entries a report keeps.
const reportSample = 25

// Report condenses the plan.
func (p *Plan) Report() Report {
	rep := Report{
		Run: p.Run, Started: p.Started, Finished: p.Finished,
		Planned: p.Counts(), Actions: p.ActionCounts(), Quota: p.Quota,
		Operations: p.Operations, Watermark: p.Watermark, Running: p.Running, Waiting: p.Waiting,
		Errors: p.Errors, Incomplete: p.Incomplete, Notes: p.Notes,
	}
	if p.Run == runSweep {
		rep.PerTarget = p.TargetCounts()
	}
	if len(rep.Notes) > 10 {
		rep.Notes = append(rep.Notes[:10:10], "…")
	}
	// Drift first: that is what an operator reading the sample needs.
	for _, e := range p.Entries {
		if len(rep.Sample) == reportSample {
			break
		}
		if e.Category.Drift() {
			rep.Sample = append(rep.Sample, e)
		}
	}
	for _, e := range p.Entries {
		if len(rep.Sample) == reportSample {
			break
		}
		if !e.Category.Drift() {
			rep.Sample = append(rep.Sample, e)
		}
	}
	return rep
}

const (
	runWatch = "watch"
	runSweep = "sweep"
)
