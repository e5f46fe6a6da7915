package replication

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Event is a transition of the replica state machine. The engine decides which event happens;
// the replica's methods below carry it out, each refusing a replica in a state the event cannot
// start from (a *TransitionError), so no code path can move a replica along an edge that is not
// in Transitions.
type Event string

const (
	// EvStart begins a run: a new row, a failed replica, or a succeeded one whose copy is
	// stale (REPLACE) or vanished. Attempt+1, everything of the previous run cleared.
	EvStart Event = "start"
	// EvAuthorized: the target issued a copy authorization and the copy message is queued.
	EvAuthorized Event = "authorized"
	// EvCopying: copyTo was accepted, or a copy already running into the target was found and
	// adopted (after a crash, a lost answer or a lost message), or a poll found the copy that
	// a spent authorization had started.
	EvCopying Event = "copying"
	// EvProgress: the copy operation reported a new percentage.
	EvProgress Event = "progress"
	// EvSucceeded: the target holds a copy of this source version (verified after a copy, or
	// found there by the 409 of authorizeCopy).
	EvSucceeded Event = "succeeded"
	// EvRetry: the attempt failed in a way a new authorization may fix; Attempt+1 after a
	// backoff, or at once (an expired or spent authorization).
	EvRetry Event = "retry"
	// EvWait: a step could not run (throttled, unreachable, target full); the replica keeps its
	// state and is due again later. No attempt is used up.
	EvWait Event = "wait"
	// EvFailed: a permanent failure, attempts used up, or retries that did not end in time.
	EvFailed Event = "failed"
	// EvVanished: reconciliation found a verified copy gone from the target.
	EvVanished Event = "vanished"
)

// StatusNew is the state of a replica before its row exists.
const StatusNew Status = ""

// Transitions is the whole state machine: for each state, the events it accepts and where they
// lead. A (state, event) pair missing here is refused. docs/ARCHITECTURE.md's state table is
// checked against it by a test.
var Transitions = map[Status]map[Event]Status{
	StatusNew: {
		EvStart: StatusPending,
	},
	StatusPending: {
		EvAuthorized: StatusAuthorized,
		EvCopying:    StatusCopying,
		EvSucceeded:  StatusSucceeded,
		EvRetry:      StatusPending,
		EvWait:       StatusPending,
		EvFailed:     StatusFailed,
	},
	StatusAuthorized: {
		EvCopying: StatusCopying,
		EvRetry:   StatusPending,
		EvWait:    StatusAuthorized,
		EvFailed:  StatusFailed,
	},
	StatusCopying: {
		EvCopying:   StatusCopying,
		EvProgress:  StatusCopying,
		EvSucceeded: StatusSucceeded,
		EvRetry:     StatusPending,
		EvWait:      StatusCopying,
		EvFailed:    StatusFailed,
	},
	StatusSucceeded: {
		EvStart:    StatusPending,
		EvVanished: StatusFailed,
	},
	StatusFailed: {
		EvStart: StatusPending,
	},
}

// Events lists every event, in the order the state table shows them.
var Events = []Event{EvStart, EvAuthorized, EvCopying, EvProgress, EvSucceeded, EvRetry, EvWait, EvFailed, EvVanished}

// TransitionError is an event the replica's state does not accept: a bug in the caller, or a
// row another instance moved meanwhile.
type TransitionError struct {
	Key   Key
	From  Status
	Event Event
}

func (e *TransitionError) Error() string {
	from := string(e.From)
	if from == "" {
		from = "new"
	}
	return fmt.Sprintf("replica %s: event %q is not allowed in state %s", e.Key, e.Event, from)
}

// move checks that the replica's state accepts ev and moves it.
func (r *Replica) move(ev Event) error {
	to, ok := Transitions[r.Status][ev]
	if !ok {
		return &TransitionError{Key: r.Key, From: r.Status, Event: ev}
	}
	r.Status = to
	return nil
}

// Error codes the engine records for causes of its own (the service's codes are kept as given).
// Each names one cause (TargetExists one kind of cause: an id dimirror may not take).
const (
	// CodeTargetExists: the target id holds a model dimirror cannot replace: one of another origin
	// (trained there, or a copy of another resource's model; never overwritten, whatever
	// DIMIRROR_REPLACE says), or dimirror's own copy of an older version while replacing is off.
	// Reconciliation reports the first case in its conflict category.
	CodeTargetExists         = "TargetExists"
	CodeTargetReserved       = "TargetReserved"       // the target id stays taken right after it was freed
	CodeTargetVanished       = "TargetVanished"       // a verified copy later disappeared from the target
	CodeCopyNotInTarget      = "CopyNotInTarget"      // the copy operation succeeded but the target does not hold the copy
	CodeOperationNotFound    = "OperationNotFound"    // the operation record is gone and the target holds no copy
	CodeAuthorizationExpired = "AuthorizationExpired" // the authorization expired before copyTo
	CodeCopyNotStarted       = "CopyNotStarted"       // no copy started before the authorization expired
	CodeAttemptsExhausted    = "AttemptsExhausted"    // the run used all its attempts
	CodeUnreachable          = "Unreachable"          // transient failures did not end within Policy.GiveUpAfter
	CodeCopyTimeout          = "CopyTimeout"          // the copy operation ran longer than Policy.GiveUpAfter
	CodeUnknownTarget        = "UnknownTarget"        // the replica's target is no longer configured
	CodeUnknownSource        = "UnknownSource"        // the replica's source resource is no longer configured
	CodeQueueUnavailable     = "QueueUnavailable"     // the copy message could not be sent
	CodeSourceGone           = "SourceGone"           // the source item was deleted while the copy was being set up
)

// Start begins a new run from a new row, a failed replica, or a succeeded one (stale or
// vanished): pending, Attempt+1, what the previous run recorded cleared. The request time starts
// the run's lag clock and names the run in its copy messages.
func (r *Replica) Start(src Model, targetID string, now time.Time) error {
	if err := r.move(EvStart); err != nil {
		return err
	}
	r.Attempt++
	r.FirstAttempt = r.Attempt
	r.TargetID = targetID
	r.SourceCreated, r.SourceExpires = src.Created, src.Expires
	r.OperationURL, r.Percent = "", 0
	r.RequestedAt = now
	r.AuthorizedAt, r.AuthExpiresAt, r.StartedAt, r.CompletedAt, r.NextAttemptAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}, time.Time{}
	r.TransientSince, r.ReservedAt = time.Time{}, time.Time{}
	r.clearError()
	r.UpdatedAt = now
	return nil
}

// Authorize records the authorization the copy message now carries. The replica is due again at
// the authorization's expiry: if no copy started by then, the message was lost.
func (r *Replica) Authorize(targetID string, expires, now time.Time) error {
	if err := r.move(EvAuthorized); err != nil {
		return err
	}
	if targetID != "" { // v2.1 targets pick the id themselves
		r.TargetID = targetID
	}
	r.AuthorizedAt, r.AuthExpiresAt = now, expires
	r.NextAttemptAt = expires
	r.TransientSince = time.Time{}
	r.clearError()
	return nil
}

// Copying records the copy operation that now copies into the target; started is when it
// began (now for a copyTo just accepted, the operation's createdDateTime for one adopted).
func (r *Replica) Copying(opURL string, started time.Time) error {
	if err := r.move(EvCopying); err != nil {
		return err
	}
	r.OperationURL = opURL
	if r.StartedAt.IsZero() || !started.IsZero() && started.After(r.StartedAt) {
		r.StartedAt = started
	}
	r.NextAttemptAt = time.Time{}
	r.TransientSince = time.Time{}
	r.clearError()
	return nil
}

// Progress records the copy's percentage; false when nothing changed (no write needed).
func (r *Replica) Progress(percent int) (bool, error) {
	if err := r.move(EvProgress); err != nil {
		return false, err
	}
	changed := percent != r.Percent || !r.TransientSince.IsZero() || r.ErrorCode != ""
	r.Percent = percent
	r.TransientSince = time.Time{}
	r.clearError()
	return changed, nil
}

// Succeed records a verified copy.
func (r *Replica) Succeed(now time.Time) error {
	if err := r.move(EvSucceeded); err != nil {
		return err
	}
	r.Percent = 100
	r.CompletedAt = now
	r.CopyExpires = r.SourceExpires
	r.NextAttemptAt = time.Time{}
	r.TransientSince = time.Time{}
	r.clearError()
	return nil
}

// Retry ends the attempt with the cause and schedules a new one at at (zero: at once) with a
// new authorization. Whether attempts are left is the engine's decision (AttemptsUsed); an
// attempt that does not count against them (spend false: the target was full) moves the run's
// first attempt along with it.
func (r *Replica) Retry(code, msg string, at time.Time, spend bool) error {
	if err := r.move(EvRetry); err != nil {
		return err
	}
	r.Attempt++
	if !spend {
		r.FirstAttempt++
	}
	r.OperationURL, r.Percent = "", 0
	r.AuthorizedAt, r.AuthExpiresAt, r.StartedAt = time.Time{}, time.Time{}, time.Time{}
	r.NextAttemptAt = at
	r.TransientSince = time.Time{}
	r.setError(code, msg)
	return nil
}

// Wait keeps the replica where it is until until, recording why. A transient wait (throttled,
// unreachable) starts or continues the streak TransientSince measures; a quota wait does not.
func (r *Replica) Wait(code, msg string, until, now time.Time, transient bool) error {
	if err := r.move(EvWait); err != nil {
		return err
	}
	r.NextAttemptAt = until
	if transient && r.TransientSince.IsZero() {
		r.TransientSince = now
	}
	r.setError(code, msg)
	return nil
}

// Fail ends the run with the cause.
func (r *Replica) Fail(code, msg string, now time.Time) error {
	if err := r.move(EvFailed); err != nil {
		return err
	}
	r.CompletedAt = now
	r.NextAttemptAt = time.Time{}
	r.setError(code, msg)
	return nil
}

// Vanish marks a verified copy that is gone from the target, so the next request starts a new
// run (a request leaves verified replicas alone).
func (r *Replica) Vanish(now time.Time) error {
	if err := r.move(EvVanished); err != nil {
		return err
	}
	r.CompletedAt = now
	r.NextAttemptAt = time.Time{}
	r.setError(CodeTargetVanished, "reconciliation found no copy in the target; replicating again")
	return nil
}

// AttemptsUsed is how many authorizations the current run has used.
func (r *Replica) AttemptsUsed() int { return r.Attempt - r.FirstAttempt + 1 }

// TransientFor is how long the replica's steps have failed transiently without a break.
func (r *Replica) TransientFor(now time.Time) time.Duration {
	if r.TransientSince.IsZero() {
		return 0
	}
	return now.Sub(r.TransientSince)
}

// UpToDate reports a succeeded replica whose target already held this source version: no copy
// was started for it.
func (r *Replica) UpToDate() bool { return r.Status == StatusSucceeded && r.StartedAt.IsZero() }

// RunID names the replica's current run: its request time. A row deleted by an operator and
// requested again restarts at attempt 1, so the attempt alone cannot tell two runs' messages
// apart (and the queue's duplicate detection would drop the new run's first message).
func (r *Replica) RunID() string {
	if r.RequestedAt.IsZero() {
		return ""
	}
	return fmt.Sprintf("%x", r.RequestedAt.UnixMilli())
}

// maxErrorLen bounds a stored error message (a table property is at most 64 KiB).
const maxErrorLen = 1024

func (r *Replica) setError(code, msg string) {
	r.ErrorCode, r.ErrorMessage = code, truncate(msg, maxErrorLen)
}

func (r *Replica) clearError() { r.ErrorCode, r.ErrorMessage = "", "" }

// truncate cuts s to at most n bytes at a character boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// StateTable renders Transitions as the Markdown table docs/ARCHITECTURE.md shows (a test keeps
// the two equal): one row per state, one column per event, the state the event leads to or "—"
// where the state refuses it.
func StateTable() string {
	var b strings.Builder
	b.WriteString("| state \\ event |")
	for _, ev := range Events {
		b.WriteString(" " + string(ev) + " |")
	}
	b.WriteString("\n|---|")
	for range Events {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, st := range append([]Status{StatusNew}, Statuses...) {
		name := string(st)
		if st == StatusNew {
			name = "(new)"
		}
		b.WriteString("| **" + name + "** |")
		for _, ev := range Events {
			cell := "—"
			if to, ok := Transitions[st][ev]; ok {
				cell = string(to)
			}
			b.WriteString(" " + cell + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}
