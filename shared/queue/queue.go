// Package queue carries copy messages over Azure Service Bus (azservicebus): a sender for the
// authorizer and reconciler, and the receive loop that `dimirror run` uses in place of the
// Functions host's Service Bus trigger (PeekLock, lock renewal, complete / abandon / dead-letter
// as the handler's outcome says). The message schema, its decoding and the poison rule are the
// domain's (replication.CopyMessage, replication.DecodeMessage), free of any SDK.
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/dimirror/dimirror/shared/replication"
)

// ContentType of a copy message body.
const ContentType = "application/json"

// Subject marks dimirror's copy messages (check messages included).
const Subject = "dimirror.copy"

// Encode renders m as a message body.
func Encode(m *replication.CopyMessage) ([]byte, error) { return json.Marshal(m) }

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

// Schedule implements replication.Queue: the message becomes visible after the delay
// (its ScheduledEnqueueTime is now plus the delay).
func (s *Sender) Schedule(ctx context.Context, m *replication.CopyMessage, after time.Duration) error {
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
