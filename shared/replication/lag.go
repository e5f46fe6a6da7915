package replication

import "time"

// BackfillAfter separates a new model from a backfill: a replica requested more than this after
// its source model was ready is a copy of an old model (a first sweep, a new target), and its
// lag runs from the request, so one first sweep does not read as a year of lag.
const BackfillAfter = 24 * time.Hour

// ReadyAt is when the replica's clock starts: the source model being ready (its createdDateTime),
// or, for a backfill or a row without it, the request. Lag, the RPO objective and every figure
// derived from them (status API, summary, CLI, page) start here; there is no other definition.
func (r *Replica) ReadyAt() time.Time {
	if r.SourceCreated.IsZero() || r.RequestedAt.Sub(r.SourceCreated) > BackfillAfter {
		return r.RequestedAt
	}
	return r.SourceCreated
}

// Lag is how long the replica took from ReadyAt to the verified copy in the target; ok is false
// while it is not made.
func (r *Replica) Lag() (time.Duration, bool) {
	if r.Status != StatusSucceeded || r.CompletedAt.IsZero() || r.ReadyAt().IsZero() {
		return 0, false
	}
	return max(r.CompletedAt.Sub(r.ReadyAt()), 0), true
}
