package handlers

import (
	"context"

	"github.com/dimirror/dimirror/shared/replication"
)

// StartCopy is the queue function (the copy queue's trigger): it decodes one message — a copy
// message (copyTo on the source with the message's authorization) or a check of a copy started
// earlier — hands it to the copy starter, and says how to settle it: a body that can never be
// processed is dead-lettered, a failure is retried, anything else completes. Both hostings
// carry that outcome out.
func (a *Functions) StartCopy(ctx context.Context, body []byte, deliveryCount int) replication.Outcome {
	m, err := replication.DecodeMessage(body)
	if err != nil {
		return replication.OutcomeOf(err)
	}
	return replication.OutcomeOf(a.Copies.Handle(ctx, m, deliveryCount))
}
