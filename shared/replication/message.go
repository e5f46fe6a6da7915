package replication

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CopyMessage is the work item on the queue: start one copy with one authorization. It is the only
// place the authorization (and its access token) is kept. A message with Check set carries no
// authorization: it is a scheduled look at the copy that attempt started (see Engine.Check).
//
// The schema, its decoding and what becomes of a message live here, apart from any transport, so
// both hostings (the Functions host's Service Bus trigger and the standalone receive loop) decode
// and settle a message the same way.
type CopyMessage struct {
	Kind          Kind            `json:"kind"`
	SourceID      string          `json:"sourceId"`
	Target        string          `json:"target"`
	TargetID      string          `json:"targetId"`
	Attempt       int             `json:"attempt"`
	Run           string          `json:"run,omitempty"` // the replica's run (Replica.RunID); empty in messages sent before runs were named
	ExpiresAt     time.Time       `json:"expiresAt"`
	Authorization json.RawMessage `json:"authorization,omitempty"` // the exact body authorizeCopy produced, echoed to copyTo
	Check         int             `json:"check,omitempty"`         // n-th check of the started copy; 0: a copy message
	Retry         int             `json:"retry,omitempty"`         // n-th reschedule of this copy message after a transient failure
}

// Key is the replica the message belongs to.
func (m *CopyMessage) Key() Key { return Key{Kind: m.Kind, SourceID: m.SourceID, Target: m.Target} }

// MessageID is deterministic per replica run and attempt (and check or reschedule), so the
// queue's duplicate detection drops a second send of the same message (a retried send, two
// instances racing, or a check delivered twice scheduling its successor twice), while a new run
// of a replica whose row was deleted and requested again (attempt 1 again) is not mistaken for
// the first run's message.
func (m *CopyMessage) MessageID() string {
	id := fmt.Sprintf("%s:%s:%s", m.Kind, m.SourceID, m.Target)
	if m.Run != "" {
		id += ":" + m.Run
	}
	id += fmt.Sprintf(":%d", m.Attempt)
	if m.Check > 0 {
		id += fmt.Sprintf(":check%d", m.Check)
	}
	if m.Retry > 0 {
		id += fmt.Sprintf(":retry%d", m.Retry)
	}
	return id
}

// String never prints the authorization.
func (m CopyMessage) String() string {
	if m.Check > 0 {
		return fmt.Sprintf("check %d of copy %s attempt %d", m.Check, m.Key(), m.Attempt)
	}
	return fmt.Sprintf("copy %s attempt %d (authorization redacted)", m.Key(), m.Attempt)
}

// PoisonError is a message that can never be processed (not a copy message, missing fields):
// redelivering it cannot help, so it is dead-lettered with this reason.
type PoisonError struct{ Reason string }

func (e *PoisonError) Error() string { return "poison message: " + e.Reason }

// DecodeMessage parses and validates a copy message body. Anything that is not a complete copy
// message is a *PoisonError, whose reason never quotes the body (it may hold an access token).
func DecodeMessage(body []byte) (*CopyMessage, error) {
	var m CopyMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, &PoisonError{Reason: "the body is not a copy message: " + redactJSONError(err)}
	}
	// dec.More would miss a stray closing '}' or ']': only whitespace may follow.
	if len(bytes.TrimSpace(body[dec.InputOffset():])) != 0 {
		return nil, &PoisonError{Reason: "the body has data after the copy message"}
	}
	var missing []string
	if _, err := ParseKind(string(m.Kind)); err != nil || m.Kind == "" {
		missing = append(missing, "kind")
	}
	if !ValidID(m.SourceID) {
		missing = append(missing, "sourceId")
	}
	if m.Target == "" {
		missing = append(missing, "target")
	}
	if !ValidID(m.TargetID) {
		missing = append(missing, "targetId")
	}
	if m.Attempt < 1 {
		missing = append(missing, "attempt")
	}
	if m.Retry < 0 {
		missing = append(missing, "retry")
	}
	switch {
	case m.Check < 0:
		missing = append(missing, "check")
	case m.Check > 0 && len(m.Authorization) != 0:
		missing = append(missing, "authorization (a check message carries none)")
	case m.Check == 0 && (len(m.Authorization) == 0 || !json.Valid(m.Authorization)):
		missing = append(missing, "authorization")
	}
	if len(missing) > 0 {
		return nil, &PoisonError{Reason: "missing or invalid fields: " + strings.Join(missing, ", ")}
	}
	return &m, nil
}

// redactJSONError keeps the JSON decoder's position but never a value from the body.
func redactJSONError(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q has the wrong type", te.Field)
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return "unknown field " + strings.TrimPrefix(msg, "json: unknown field ")
	}
	return "invalid JSON"
}

// Settle is what a hosting does with a message once it has been handled.
type Settle int

const (
	// SettleComplete removes the message: it was handled (or is stale and can be dropped).
	SettleComplete Settle = iota
	// SettleRetry hands the message back for redelivery (abandon; a non-2xx to the Functions
	// host). The queue dead-letters it after its max delivery count.
	SettleRetry
	// SettleDeadLetter moves the message to the dead-letter queue at once. A Functions custom
	// handler cannot do that: it fails the delivery instead, every time, until the max delivery
	// count dead-letters it.
	SettleDeadLetter
)

func (s Settle) String() string {
	switch s {
	case SettleComplete:
		return "complete"
	case SettleRetry:
		return "retry"
	case SettleDeadLetter:
		return "dead-letter"
	}
	return fmt.Sprintf("Settle(%d)", int(s))
}

// DeadLetterPoison is the dead-letter reason of a poison message.
const DeadLetterPoison = "PoisonMessage"

// Outcome is the result of handling one message: how to settle it and why.
type Outcome struct {
	Settle Settle
	// Reason is the dead-letter reason (DeadLetterPoison); empty unless SettleDeadLetter.
	Reason string
	// Err is what went wrong: the poison error, or the failure that makes a retry worthwhile.
	Err error
}

// OutcomeOf maps a handler's error to its outcome: none completes, a *PoisonError dead-letters,
// anything else is transient and retries.
func OutcomeOf(err error) Outcome {
	var pe *PoisonError
	switch {
	case err == nil:
		return Outcome{Settle: SettleComplete}
	case errors.As(err, &pe):
		return Outcome{Settle: SettleDeadLetter, Reason: DeadLetterPoison, Err: err}
	}
	return Outcome{Settle: SettleRetry, Err: err}
}

// Description says why, for a log line or a dead-letter description ("" when completed).
func (o Outcome) Description() string {
	var pe *PoisonError
	switch {
	case o.Err == nil:
		return ""
	case errors.As(o.Err, &pe):
		return pe.Reason
	}
	return o.Err.Error()
}
