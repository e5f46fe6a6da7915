package replication

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is returned by a Store for a replica it does not hold.
var ErrNotFound = errors.New("replica not found")

// ErrConflict is returned by a Store when a create finds the row already there, or an update's
// ETag is stale: another instance moved the replica first.
var ErrConflict = errors.New("replica changed concurrently")

// ErrInvalidToken is a continuation token the store did not issue.
var ErrInvalidToken = errors.New("the continuation token is not valid")

// Filter selects replicas in a listing. Zero fields match everything.
type Filter struct {
	Kind     Kind
	SourceID string
	Status   []Status
	Target   string
}

// Page is one page of a listing; Next is empty on the last page.
type Page struct {
	Replicas []Replica
	Next     string
}

// Store keeps one row per replica, with optimistic concurrency.
type Store interface {
	Get(ctx context.Context, k Key) (*Replica, error)
	// Create inserts r and sets r.ETag; ErrConflict when the row exists.
	Create(ctx context.Context, r *Replica) error
	// Update replaces the row if r.ETag is current and sets the new r.ETag; ErrConflict otherwise.
	Update(ctx context.Context, r *Replica) error
	// List returns up to limit replicas matching f, after the continuation token next.
	List(ctx context.Context, f Filter, next string, limit int) (Page, error)
}

// Queue carries copy messages to the copy starter.
type Queue interface {
	SendCopy(ctx context.Context, m *CopyMessage) error
	// Schedule sends a message that becomes visible after the delay: a check of a started copy,
	// or a copy message retried after a transient failure.
	Schedule(ctx context.Context, m *CopyMessage, after time.Duration) error
}

// Authorization is what a target's authorizeCopy returned. Body holds the access token: it goes
// into the copy message and nowhere else.
type Authorization struct {
	TargetID  string
	ExpiresAt time.Time
	Body      []byte
}

func (a Authorization) String() string {
	return fmt.Sprintf("authorization for %s until %s (redacted)", a.TargetID, a.ExpiresAt.Format(time.RFC3339))
}

// OpStatus is a copy operation's status.
type OpStatus string

const (
	OpNotStarted OpStatus = "notStarted"
	OpRunning    OpStatus = "running"
	OpSucceeded  OpStatus = "succeeded"
	OpFailed     OpStatus = "failed"
	OpCanceled   OpStatus = "canceled"
)

// Operation is a copy operation on the source.
type Operation struct {
	URL      string
	Status   OpStatus
	Percent  int
	TargetID string
	Created  time.Time
	Err      *ServiceError // when failed
}

// Model is what a resource holds under an id (a model or a classifier).
type Model struct {
	ID      string
	Created time.Time
	Expires time.Time
	Tags    map[string]string
}

// Resource is one Document Intelligence resource, as the domain needs it.
type Resource interface {
	AuthorizeCopy(ctx context.Context, kind Kind, targetID string, tags map[string]string) (Authorization, error)
	CopyTo(ctx context.Context, kind Kind, sourceID string, auth []byte) (operationURL string, err error)
	GetOperation(ctx context.Context, operationURL string) (Operation, error)
	// FindCopyOperations looks through the resource's operations created at or after since
	// (zero: as far back as it keeps them) for copies into the given target locations (as
	// Location gives them) that are running or succeeded, in one pass over the list however many
	// locations are asked for. The answer holds the newest such copy of each location that has
	// one, keyed by the location as asked; an api-version that cannot list operations finds none.
	FindCopyOperations(ctx context.Context, kind Kind, since time.Time, targetLocations ...string) (map[string]Operation, error)
	GetModel(ctx context.Context, kind Kind, id string) (Model, error)
	DeleteModel(ctx context.Context, kind Kind, id string) error
	// Location is the resource's model URL prefix as copy operations report it (resourceLocation),
	// used to match an operation to its target.
	Location(kind Kind, id string) string
}

// ErrorClass is how the domain treats a service error.
type ErrorClass int

const (
	// ClassPermanent: retrying cannot help (bad request, forbidden, downgrade refused).
	ClassPermanent ErrorClass = iota
	// ClassTransient: throttling, 5xx, network; back off and try the same step again.
	ClassTransient
	// ClassNotFound: the model, classifier or operation does not exist.
	ClassNotFound
	// ClassExists: the target id is taken (a model, or a reservation by an unconsumed authorization).
	ClassExists
	// ClassAuthorization: the authorization expired, was used, or was refused; a new one may work.
	ClassAuthorization
	// ClassNotReady: the source model is missing or not ready for copy.
	ClassNotReady
	// ClassQuota: the target is at its model limit.
	ClassQuota
	// ClassRetryable: the copy failed in a way a new attempt may fix (internal error, timeout).
	ClassRetryable
)

func (c ErrorClass) String() string {
	return [...]string{"permanent", "transient", "not-found", "exists", "authorization", "not-ready", "quota", "retryable"}[c]
}

// ServiceError is a Document Intelligence error as the domain sees it.
type ServiceError struct {
	Class      ErrorClass
	Code       string // the most specific code (innererror code when there is one)
	Message    string
	StatusCode int
	RetryAfter time.Duration
	cause      error // a failure outside the service that was classified (the table, the queue)
}

// Unwrap is the classified failure, if any.
func (e *ServiceError) Unwrap() error { return e.cause }

func (e *ServiceError) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.StatusCode, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// classOf returns err's class; errors that are not ServiceErrors (network, context) are transient.
func classOf(err error) ErrorClass {
	var se *ServiceError
	if errors.As(err, &se) {
		return se.Class
	}
	return ClassTransient
}

func codeAndMessage(err error) (string, string) {
	var se *ServiceError
	if errors.As(err, &se) {
		return se.Code, se.Message
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "Timeout", "the call did not finish before its deadline"
	}
	return "Unavailable", err.Error()
}
