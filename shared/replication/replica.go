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

// Status is a replica's place in the state machine:
//
//	pending ─authorize─▶ authorized ─copyTo 202─▶ copying ─succeeded+verified─▶ succeeded
//	   ▲                                              │
//	   └──── retry (new authorization, Attempt+1) ◀───┤
//	                                                  └─ permanent failure ─▶ failed
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
type Replica struct {
	Key
	TargetID      string
	Status        Status
	Attempt       int // authorizations issued over the row's life; part of the copy message id
	FirstAttempt  int // the Attempt the current run started at: a run gives up after Policy.MaxAttempts
	OperationURL  string
	Percent       int
	SourceCreated time.Time // the source's createdDateTime when this replica was requested
	SourceExpires time.Time // the source's expirationDateTime; copies preserve it, so it identifies the source version
	ErrorCode     string
	ErrorMessage  string
	RequestedAt   time.Time
	AuthorizedAt  time.Time
	AuthExpiresAt time.Time
	StartedAt     time.Time
	CompletedAt   time.Time
	NextAttemptAt time.Time // zero: due now
	UpdatedAt     time.Time

	// ETag is the store's concurrency token; Update fails with ErrConflict when it is stale.
	ETag string
}

// Due reports whether a scheduled retry or re-drive may run at now.
func (r *Replica) Due(now time.Time) bool {
	return r.NextAttemptAt.IsZero() || !now.Before(r.NextAttemptAt)
}

func (r *Replica) setError(code, msg string) {
	r.ErrorCode, r.ErrorMessage = code, truncate(msg, 1024)
}

func (r *Replica) clearError() { r.ErrorCode, r.ErrorMessage = "", "" }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
