package handlers

import (
	"context"

	"github.com/dimirror/dimirror/shared/replication"
)

// StartCopy handles one message of the copy queue (the Service Bus trigger): a copy message
// (copyTo on the source with the message's authorization) or a check of a copy started earlier.
// A *replication.PoisonError means the body can never be processed; any other error is transient and
// the message must be redelivered.
func (a *App) StartCopy(ctx context.Context, body []byte, deliveryCount int) error {
	m, err := replication.DecodeMessage(body)
	if err != nil {
		return err
	}
	return a.Engine.Handle(ctx, m, deliveryCount)
}
