package replication

import "time"

// The recovery point objective (DIMIRROR_RPO): every replica should be made (verified in its
// target) within the objective of its clock starting, ReadyAt (lag.go). The objective's clock is
// the lag's clock, so a replica that missed it is one whose lag, made or still growing, exceeds it.

// DefaultRPO is the objective when none is set: S3 Replication Time Control's 15 minutes.
const DefaultRPO = 15 * time.Minute

// RPOState is where one replica stands against the objective at a moment.
type RPOState string

const (
	// RPOMet: made within the objective.
	RPOMet RPOState = "met"
	// RPOMissed: made, later than ReadyAt + objective.
	RPOMissed RPOState = "missed"
	// RPOAtRisk: not made (in flight or failed) and past ReadyAt + objective; it has missed the
	// objective and is still missing in its target: "at risk now".
	RPOAtRisk RPOState = "at-risk"
	// RPOAtRiskSoon: not made and past half the objective, not yet past all of it: the early
	// warning, while there is still time to act.
	RPOAtRiskSoon RPOState = "at-risk-soon"
	// RPOOnTrack: not made, within the first half of the objective.
	RPOOnTrack RPOState = "on-track"
	// RPOUnknown: the row has no clock (neither the source's creation nor a request time).
	RPOUnknown RPOState = "unknown"
)

// Missed reports whether the state counts against the objective (made late, or not made past it).
func (s RPOState) Missed() bool { return s == RPOMissed || s == RPOAtRisk }

// RPODeadline is when the replica must be made by to meet the objective rpo; zero without a clock.
func (r *Replica) RPODeadline(rpo time.Duration) time.Time {
	ready := r.ReadyAt()
	if ready.IsZero() {
		return time.Time{}
	}
	return ready.Add(rpo)
}

// Made reports whether the replica's copy is verified in its target (with a completion time).
func (r *Replica) Made() bool {
	return r.Status == StatusSucceeded && !r.CompletedAt.IsZero()
}

// RPO is the replica's standing against the objective rpo at now. A made replica is judged by
// its lag, whatever now is; one not made (in flight or failed) by how long it has waited.
func (r *Replica) RPO(now time.Time, rpo time.Duration) RPOState {
	deadline := r.RPODeadline(rpo)
	if deadline.IsZero() {
		return RPOUnknown
	}
	if r.Made() {
		if r.CompletedAt.After(deadline) {
			return RPOMissed
		}
		return RPOMet
	}
	switch waited := now.Sub(r.ReadyAt()); {
	case waited > rpo:
		return RPOAtRisk
	case 2*waited > rpo:
		return RPOAtRiskSoon
	}
	return RPOOnTrack
}

// PendingFor is how long a replica not made has been waiting since ReadyAt at now; 0 when it is
// made or has no clock.
func (r *Replica) PendingFor(now time.Time) time.Duration {
	ready := r.ReadyAt()
	if r.Made() || ready.IsZero() {
		return 0
	}
	return max(now.Sub(ready), 0)
}

// RPOMissedAt is when the replica's miss of the objective became a fact that a report can see:
// the deadline, or the request when the row was only created after it (a model requested late,
// its clock started by its creation). ok is false while the objective is not missed at now.
func (r *Replica) RPOMissedAt(now time.Time, rpo time.Duration) (at time.Time, ok bool) {
	if !r.RPO(now, rpo).Missed() {
		return time.Time{}, false
	}
	at = r.RPODeadline(rpo)
	if r.RequestedAt.After(at) {
		at = r.RequestedAt
	}
	if at.After(now) {
		return time.Time{}, false
	}
	return at, true
}
