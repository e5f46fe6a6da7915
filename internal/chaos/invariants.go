package chaos

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dimirror/dimirror/emulators/devbus"
	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/internal/harness"
	"github.com/dimirror/dimirror/shared/replication"
)

// observation is everything the invariants are checked against, gathered once the run settled.
type observation struct {
	cfg         Config
	rows        []replication.Replica
	settle      error // from waiting for the rows to settle
	queue       devbus.QueueStats
	didev       didev.Stats
	models      map[string][]didev.Model       // by target
	reserved    map[string][]didev.Reservation // by target
	sources     map[string]didev.Model         // the source's models by id
	copyFails   int                            // copy operations failed by injection
	findings    []harness.Finding              // secrets in logs
	tokenHashes int                            // access tokens didev issued
	crashes     int
}

// CodeTargetExists is the error of a replica whose target id holds a model of another origin
// (one dimirror did not copy from this item).
const CodeTargetExists = replication.CodeTargetExists

// check returns one message per broken invariant (empty when all hold).
func (o *observation) check() []string {
	var v []string
	add := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }

	if o.settle != nil {
		add("replicas did not settle: %v", o.settle)
	}
	// Every replica requested exists, and succeeded, or failed with the cause injected on purpose.
	expected := map[replication.Key]bool{}
	conflict := map[string]bool{}
	for i := range o.cfg.Models {
		for _, t := range Targets {
			expected[replication.Key{Kind: replication.KindModel, SourceID: modelID(i), Target: t}] = true
		}
	}
	for i := range o.cfg.Conflicts {
		conflict[conflictID(i)] = true
		for _, t := range Targets {
			expected[replication.Key{Kind: replication.KindModel, SourceID: conflictID(i), Target: t}] = true
		}
	}
	seen := map[replication.Key]bool{}
	succeeded := map[string]map[string]replication.Replica{} // target → target id → row
	for _, r := range o.rows {
		seen[r.Key] = true
		if !expected[r.Key] {
			add("replica %s was never requested", r.Key)
			continue
		}
		onPurpose := conflict[r.SourceID] && r.Target == ConflictTarget
		switch {
		case onPurpose && (r.Status != replication.StatusFailed || r.ErrorCode != CodeTargetExists):
			add("replica %s should have failed with %s (the target holds another model under that id), it is %s %s",
				r.Key, CodeTargetExists, r.Status, r.ErrorCode)
		case onPurpose:
		case r.Status == replication.StatusSucceeded:
			if succeeded[r.Target] == nil {
				succeeded[r.Target] = map[string]replication.Replica{}
			}
			succeeded[r.Target][r.TargetID] = r
		default:
			add("replica %s is %s (attempt %d): %s %s", r.Key, r.Status, r.Attempt, r.ErrorCode, r.ErrorMessage)
		}
	}
	for k := range expected {
		if !seen[k] {
			add("replica %s has no row", k)
		}
	}

	// Every target holds exactly the models dimirror copied, each once and of its source, plus
	// the conflicting models it must have left alone; no id is left reserved.
	for _, t := range Targets {
		byID := map[string]int{}
		for _, m := range o.models[t] {
			byID[m.ID]++
			r, copied := succeeded[t][m.ID]
			switch {
			case byID[m.ID] > 1:
				add("%s holds %s %d times", t, m.ID, byID[m.ID])
			case t == ConflictTarget && conflict[m.ID]:
				if m.Description != "not a copy" {
					add("%s: the conflicting model %s was replaced", t, m.ID)
				}
			case !copied:
				add("%s holds %s, which no succeeded replica accounts for", t, m.ID)
			default:
				src, ok := o.sources[r.SourceID]
				if !ok || m.Tags[replication.TagSourceCreated] != src.Created.UTC().Format(time.RFC3339) {
					add("%s: %s is not a copy of the source's %s (tags %v)", t, m.ID, r.SourceID, m.Tags)
				}
			}
		}
		for id := range succeeded[t] {
			if byID[id] == 0 {
				add("replica %s→%s succeeded but %s does not hold %s", id, t, t, id)
			}
		}
		for _, res := range o.reserved[t] {
			add("%s: id %s is still reserved by an unused authorization", t, res.ID)
		}
	}

	// No authorization was spent twice: no copyTo with one a copy had already consumed. (A
	// copyTo sent again with an authorization whose first copy failed is not that: the service
	// allows one successful copy per authorization, and the copy starter retries so after a lost
	// answer when the first copy it finds has failed.)
	for _, a := range o.didev.Authorizations {
		if a.CopyToAfterConsumed > 0 {
			add("authorization %s (%s on %s) was sent to copyTo %d times after a copy had consumed it (accepted %d times in all)",
				a.ID, a.TargetID, a.Resource, a.CopyToAfterConsumed, a.CopyToAccepted)
		}
	}

	// No message left undelivered, none dead-lettered without a reason.
	q := o.queue
	if n := q.Active + q.Locked + q.Scheduled + q.Deferred; n > 0 {
		add("the queue still holds %d messages (active %d, locked %d, scheduled %d, deferred %d)", n, q.Active, q.Locked, q.Scheduled, q.Deferred)
	}
	if n := q.DeadLetterReasons[""]; n > 0 {
		add("%d messages were dead-lettered without a reason", n)
	}

	// No secret in any log line; the token check must have had tokens to look for.
	if o.tokenHashes == 0 {
		add("no access token hashes were read from didev's data: the secret check would be blind")
	}
	for _, f := range o.findings {
		add("secret in a log: %s", f)
	}
	if o.crashes > 0 {
		add("%d dimirror lives ended on their own (a crash the harness did not cause)", o.crashes)
	}
	sort.Strings(v)
	return v
}

// faultCounts tallies what was injected and what the pipeline absorbed.
func (o *observation) faultCounts() map[string]int64 {
	out := map[string]int64{}
	for _, rs := range o.didev.Resources {
		for _, c := range rs.Categories {
			out["429"] += c.Injected429
			out["rate-limited"] += c.RateLimited
			out["500"] += c.Injected5xx
			out["reset"] += c.Resets - c.LostAnswers
			out["lost-answer"] += c.LostAnswers
		}
	}
	out["copy-fail"] = int64(o.copyFails)
	for _, a := range o.didev.Authorizations {
		if !a.Expires.After(a.Issued) {
			out["expired-auth"]++
		}
	}
	out["abandoned"] = int64(o.queue.Abandoned)
	out["lock-expired"] = int64(o.queue.LocksExpired)
	for reason, n := range o.queue.DeadLetterReasons {
		out["dead-lettered:"+strings.ReplaceAll(reason, " ", "_")] += int64(n)
	}
	for k, n := range out {
		if n == 0 {
			delete(out, k)
		}
	}
	return out
}
