// Package queue carries copy messages over Azure Service Bus (azservicebus): the message schema
// and its MessageId rule, a sender for the authorizer and reconciler, and the receive loop that
// `dimirror run` uses in place of the Functions host's Service Bus trigger (PeekLock, lock
// renewal, complete / abandon / dead-letter the way the host does with autoCompleteMessages).
package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/dimirror/dimirror/shared/replication"
)

// ContentType of a copy message body.
const ContentType = "application/json"

// Subject marks dimirror's copy messages (check messages included).
const Subject = "dimirror.copy"

// PoisonError is a message that can never be processed (not a copy message, missing fields); it
// is dead-lettered with this reason.
type PoisonError struct{ Reason string }

func (e *PoisonError) Error() string { return "poison message: " + e.Reason }

// Encode renders m as a message body.
func Encode(m *replication.CopyMessage) ([]byte, error) { return json.Marshal(m) }

// Decode parses and validates a copy message body. Anything that is not a complete copy message
// is a *PoisonError.
func Decode(body []byte) (*replication.CopyMessage, error) {
	var m replication.CopyMessage
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
	if _, err := replication.ParseKind(string(m.Kind)); err != nil || m.Kind == "" {
		missing = append(missing, "kind")
	}
	if !replication.ValidID(m.SourceID) {
		missing = append(missing, "sourceId")
	}
	if m.Target == "" {
		missing = append(missing, "target")
	}
	if !replication.ValidID(m.TargetID) {
		missing = append(missing, "targetId")
	}
	if m.Attempt < 1 {
		missing = append(missing, "attempt")
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

// redactJSONError keeps the JSON decoder's position but never a value from the body (the body
// may hold an access token).
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

// Sender sends copy messages to one queue.
type Sender struct {
	sender  *azservicebus.Sender
	timeout time.Duration
}

// NewClient connects by connection string, or by namespace and credential (managed identity).
func NewClient(connectionString, namespace string, cred azcore.TokenCredential) (*azservicebus.Client, error) {
	opts := &azservicebus.ClientOptions{ApplicationID: "dimirror"}
	if connectionString != "" {
		c, err := azservicebus.NewClientFromConnectionString(connectionString, opts)
		if err != nil {
			return nil, errors.New("queue: the Service Bus connection string is not valid")
		}
		return c, nil
	}
	if namespace == "" || cred == nil {
		return nil, errors.New("queue: need a connection string, or a namespace and a credential")
	}
	return azservicebus.NewClient(namespace, cred, opts)
}

// NewSender sends to queueName. callTimeout bounds each send (default 30s).
func NewSender(c *azservicebus.Client, queueName string, callTimeout time.Duration) (*Sender, error) {
	s, err := c.NewSender(queueName, nil)
	if err != nil {
		return nil, fmt.Errorf("queue: sender for %s: %w", queueName, err)
	}
	if callTimeout <= 0 {
		callTimeout = 30 * time.Second
	}
	return &Sender{sender: s, timeout: callTimeout}, nil
}

// Message builds the Service Bus message for m.
func Message(m *replication.CopyMessage) (*azservicebus.Message, error) {
	body, err := Encode(m)
	if err != nil {
		return nil, err
	}
	id := m.MessageID()
	ct, subj := ContentType, Subject
	return &azservicebus.Message{
		Body:        body,
		MessageID:   &id,
		ContentType: &ct,
		Subject:     &subj,
		ApplicationProperties: map[string]any{
			"kind": string(m.Kind), "sourceId": m.SourceID, "target": m.Target, "attempt": int64(m.Attempt), "check": int64(m.Check),
		},
	}, nil
}

// SendCopy implements replication.Queue.
func (s *Sender) SendCopy(ctx context.Context, m *replication.CopyMessage) error {
	return s.send(ctx, m, nil)
}

// ScheduleCheck implements replication.Queue: the message becomes visible after the delay
// (its ScheduledEnqueueTime is now plus the delay).
func (s *Sender) ScheduleCheck(ctx context.Context, m *replication.CopyMessage, after time.Duration) error {
	at := time.Now().Add(after).UTC()
	return s.send(ctx, m, &at)
}

// send sends m, visible at once or, with at, from then on.
func (s *Sender) send(ctx context.Context, m *replication.CopyMessage, at *time.Time) error {
	msg, err := Message(m)
	if err != nil {
		return err
	}
	msg.ScheduledEnqueueTime = at
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.sender.SendMessage(ctx, msg, nil); err != nil {
		return fmt.Errorf("queue: send %s: %w", m.MessageID(), err)
	}
	return nil
}

// Close closes the sender.
func (s *Sender) Close(ctx context.Context) error { return s.sender.Close(ctx) }
