// Package replication is dimirror's domain: the replica state machine, the retry and freshness
// policy, and the three idempotent steps (request, start copy, poll) that move a replica from
// pending to succeeded. It imports no Azure SDK: storage, the queue and the Document Intelligence
// resources are reached through the small interfaces in ports.go, implemented by shared/store,
// shared/queue and shared/docintel (through docintelport), and by plain fakes in tests.
package replication

import (
	"fmt"
	"regexp"
	"time"
)

// Kind is what is replicated: a custom model or a classifier.
type Kind string

const (
	KindModel      Kind = "model"
	KindClassifier Kind = "classifier"
)

// ParseKind accepts "model" and "classifier"; "" means model.
func ParseKind(s string) (Kind, error) {
	switch s {
	case "", string(KindModel):
		return KindModel, nil
	case string(KindClassifier):
		return KindClassifier, nil
	}
	return "", fmt.Errorf("unknown kind %q: use \"model\" or \"classifier\"", s)
}

// Status is a replica's place in the state machine; Transitions (machine.go) lists every move.
type Status string

const (
	StatusPending    Status = "pending"
	StatusAuthorized Status = "authorized"
	StatusCopying    Status = "copying"
	StatusSucceeded  Status = "succeeded"
	StatusFailed     Status = "failed"
)

// Statuses lists every status, in pipeline order.
var Statuses = []Status{StatusPending, StatusAuthorized, StatusCopying, StatusSucceeded, StatusFailed}

// ParseStatus validates a status name.
func ParseStatus(s string) (Status, error) {
	for _, st := range Statuses {
		if string(st) == s {
			return st, nil
		}
	}
	return "", fmt.Errorf("unknown status %q: use one of pending, authorized, copying, succeeded, failed", s)
}

// InFlight reports whether the replica still has work to do.
func (s Status) InFlight() bool {
	return s == StatusPending || s == StatusAuthorized || s == StatusCopying
}

var idPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._~-]{1,63}$`)

// ValidID reports whether id is a valid model or classifier id (the service's own pattern).
func ValidID(id string) bool { return idPattern.MatchString(id) }

// Key names one replica: one source model or classifier in one target resource.
type Key struct {
	Kind     Kind
	SourceID string
	Target   string
}

func (k Key) String() string { return string(k.Kind) + ":" + k.SourceID + "→" + k.Target }

// Replica is what is true about one replica. It never holds a secret: the copy authorization
// travels only inside the copy message.
//
// A replica is "this id in this target": the key names no source, so two rules that deliver the
// same item into one target (A>C and B>C, both holding A's model) share one row and one copy.
type Replica struct {
	Key
	// Source is the resource the copy is made from (a resource name). Empty in rows written
	// before rules existed: they mean the engine's default source (the legacy source).
	Source string
	// Origin names the item the copy is a copy of, where it was trained: its TagSource value
	// "<host>/<kind>/<id>". Empty in rows written before rules existed: there the source was
	// the origin, so it is SourceTag(the default source's host, Kind, SourceID).
	Origin        string
	TargetID      string
	Status        Status
	Attempt       int // authorizations issued over the row's life; part of the copy message id
	FirstAttempt  int // where the current run's count of attempts starts: a run gives up after Policy.MaxAttempts (quota waits move it along)
	OperationURL  string
	Percent       int
	SourceCreated time.Time // the origin's createdDateTime (TagSourceCreated) when this replica was requested
	SourceExpires time.Time // the source's expirationDateTime; copies preserve it, so it identifies the origin version too
	ErrorCode     string
	ErrorMessage  string
	RequestedAt   time.Time
	AuthorizedAt  time.Time
	AuthExpiresAt time.Time
	StartedAt     time.Time
	CompletedAt   time.Time
	NextAttemptAt time.Time // zero: due now
	UpdatedAt     time.Time
	// TransientSince is when the current streak of transient failures (throttled, unreachable)
	// began; zero when the last step got through. Policy.GiveUpAfter bounds the streak.
	TransientSince time.Time
	// CopyExpires is the expirationDateTime of the copy dimirror last verified in the target
	// (copies keep the source's). It outlives a new run, so a classifier (which carries no tags)
	// in the target can still be proven dimirror's own copy before REPLACE deletes it.
	CopyExpires time.Time
	// ReservedAt is when this run first asked the target for an authorization that reserved the
	// target id, or may have (an answer lost on the way); zero before. From then on a reservation
	// of the id is the run's own, and every copy the run's authorizations started is known to the
	// row (the copy starter and the poller look for a copy whose answer was lost before moving
	// on), so freeing it needs no search of the source's operations.
	ReservedAt time.Time

	// ETag is the store's concurrency token; Update fails with ErrConflict when it is stale.
	ETag string
}

// Due reports whether a scheduled retry or re-drive may run at now.
func (r *Replica) Due(now time.Time) bool {
	return r.NextAttemptAt.IsZero() || !now.Before(r.NextAttemptAt)
}
