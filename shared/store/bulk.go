package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"golang.org/x/sync/errgroup"

	"github.com/dimirror/dimirror/shared/replication"
)

// maxBatch is the most operations one batch transaction holds (the service's limit; they must
// also share a PartitionKey and stay under 4 MiB, which 100 replica rows do by far).
const maxBatch = 100

// batchConcurrency bounds the transactions CreateMany has in flight at once.
const batchConcurrency = 4

// CreateMany inserts new replica rows (seeding a table, an import, a test of scale) in batch
// transactions: the rows of one partition, up to 100 at a time, so the service takes each
// group whole or not at all. Rows in flight get their intents in the index first, as Create
// does. replication.ErrConflict when a row of a group exists already (that group is not
// written; groups before it may be). The rows' ETags are not set: a batch's answer does not
// carry them in this client, so read a row before updating it.
func (t *Tables) CreateMany(ctx context.Context, rs []*replication.Replica) error {
	var order []string
	byPartition := map[string][]*replication.Replica{}
	for _, r := range rs {
		pk := PartitionKey(r.Kind, r.SourceID)
		if _, ok := byPartition[pk]; !ok {
			order = append(order, pk)
		}
		byPartition[pk] = append(byPartition[pk], r)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(batchConcurrency)
	for _, pk := range order {
		rows := byPartition[pk]
		for len(rows) > 0 {
			chunk := rows[:min(maxBatch, len(rows))]
			rows = rows[len(chunk):]
			g.Go(func() error { return t.submitAdds(gctx, pk, chunk) })
		}
	}
	return g.Wait()
}

// submitAdds writes the intents of the rows in flight, then one batch transaction of inserts,
// each under its own deadline; the transaction, like any write after an intent, is sent within
// intentWindow of it.
func (t *Tables) submitAdds(ctx context.Context, pk string, rows []*replication.Replica) error {
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readConcurrency)
	for _, r := range rows {
		if r.Status.InFlight() {
			g.Go(func() error {
				cctx, cancel := t.deadline(gctx)
				defer cancel()
				return t.writeIntent(cctx, r.Key, "")
			})
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	ctx, wcancel := context.WithDeadline(ctx, start.Add(intentWindow))
	defer wcancel()
	actions := make([]aztables.TransactionAction, 0, len(rows))
	for _, r := range rows {
		body, err := json.Marshal(toEntity(r))
		if err != nil {
			return err
		}
		actions = append(actions, aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: body})
	}
	ctx, cancel := t.deadline(ctx)
	defer cancel()
	if _, err := t.client.SubmitTransaction(ctx, actions, nil); err != nil {
		if statusOf(err) == http.StatusConflict {
			return fmt.Errorf("%w: a row of partition %s exists", replication.ErrConflict, pk)
		}
		return fmt.Errorf("store: batch of %d rows in %s: %w", len(rows), pk, err)
	}
	return nil
}
