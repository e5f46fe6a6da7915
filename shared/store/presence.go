package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// Presence rows say which instances of dimirror are alive, so each can take its part of a
// resource's budget instead of all of it: RowKey instance-<id> in MetaPartition with the time it
// was last seen. They have no Status column, so replica listings never see them.
const (
	presencePrefix = "instance-"
	presenceEnd    = "instance." // the next key after every instance- key ('.' follows '-')
)

// Heartbeat records that instance id is alive at now.
func (t *Tables) Heartbeat(ctx context.Context, id string, now time.Time) error {
	if id == "" {
		return fmt.Errorf("store: heartbeat: the instance id is empty")
	}
	body, err := json.Marshal(map[string]any{
		"PartitionKey": MetaPartition, "RowKey": presencePrefix + id,
		"SeenAt": now.UTC().Format(time.RFC3339Nano), "SeenAt@odata.type": timeType,
	})
	if err != nil {
		return err
	}
	ctx, cancel := t.deadline(ctx)
	defer cancel()
	if _, err := t.client.UpsertEntity(ctx, body, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		return fmt.Errorf("store: heartbeat: %w", err)
	}
	return nil
}

// LiveInstances counts the instances seen since since, and deletes (best effort) the rows of
// instances not seen for ten times as long, so the partition does not grow with every restart.
func (t *Tables) LiveInstances(ctx context.Context, since time.Time, now time.Time) (int, error) {
	filter := fmt.Sprintf("PartitionKey eq '%s' and RowKey ge '%s' and RowKey lt '%s'", MetaPartition, presencePrefix, presenceEnd)
	sel := "RowKey,SeenAt"
	ctx, cancel := t.deadline(ctx)
	defer cancel()
	pager := t.client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Select: &sel})
	stale := now.Add(-10 * now.Sub(since))
	live := 0
	for pager.More() {
		resp, err := pager.NextPage(ctx)
		if err != nil {
			return 0, fmt.Errorf("store: list instances: %w", err)
		}
		for _, raw := range resp.Entities {
			var row struct {
				RowKey string    `json:"RowKey"`
				SeenAt time.Time `json:"SeenAt"`
			}
			if err := json.Unmarshal(raw, &row); err != nil {
				return 0, fmt.Errorf("store: decode an instance row: %w", err)
			}
			switch {
			case !row.SeenAt.Before(since):
				live++
			case row.SeenAt.Before(stale):
				if _, err := t.client.DeleteEntity(ctx, MetaPartition, row.RowKey, nil); err != nil && statusOf(err) != http.StatusNotFound {
					t.log.WarnContext(ctx, "deleting the row of a long-gone instance failed", "row", row.RowKey, "err", err.Error())
				}
			}
		}
	}
	return live, nil
}
