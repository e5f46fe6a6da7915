package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
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

// Heartbeat records that instance id is alive at now, making management calls to the resources
// named in active (their hosts).
func (t *Tables) Heartbeat(ctx context.Context, id string, now time.Time, active []string) error {
	if id == "" {
		return fmt.Errorf("store: heartbeat: the instance id is empty")
	}
	body, err := json.Marshal(map[string]any{
		"PartitionKey": MetaPartition, "RowKey": presencePrefix + id,
		"SeenAt": now.UTC().Format(time.RFC3339Nano), "SeenAt@odata.type": timeType,
		"Active": strings.Join(active, ","),
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

// Leave deletes instance id's presence row, so the others stop counting it at once (a stop, a
// scale-in); an instance that dies without it is forgotten when its row ages out.
func (t *Tables) Leave(ctx context.Context, id string) error {
	ctx, cancel := t.deadline(ctx)
	defer cancel()
	if _, err := t.client.DeleteEntity(ctx, MetaPartition, presencePrefix+id, nil); err != nil && statusOf(err) != http.StatusNotFound {
		return fmt.Errorf("store: leave: %w", err)
	}
	return nil
}

// Instances are the live instances and, by resource host, how many of them make management calls
// to it.
type Instances struct {
	Live     int
	ActiveOn map[string]int
}

// LiveInstances counts the instances seen since since (and what each is active on), and deletes
// (best effort) the rows of instances not seen for ten times as long, so the partition does not
// grow with every restart.
func (t *Tables) LiveInstances(ctx context.Context, since time.Time, now time.Time) (Instances, error) {
	out := Instances{ActiveOn: map[string]int{}}
	filter := fmt.Sprintf("PartitionKey eq '%s' and RowKey ge '%s' and RowKey lt '%s'", MetaPartition, presencePrefix, presenceEnd)
	sel := "RowKey,SeenAt,Active"
	ctx, cancel := t.deadline(ctx)
	defer cancel()
	pager := t.client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Select: &sel})
	stale := now.Add(-10 * now.Sub(since))
	for pager.More() {
		resp, err := pager.NextPage(ctx)
		if err != nil {
			return Instances{}, fmt.Errorf("store: list instances: %w", err)
		}
		for _, raw := range resp.Entities {
			var row struct {
				RowKey string    `json:"RowKey"`
				SeenAt time.Time `json:"SeenAt"`
				Active string    `json:"Active"`
			}
			if err := json.Unmarshal(raw, &row); err != nil {
				return Instances{}, fmt.Errorf("store: decode an instance row: %w", err)
			}
			switch {
			case !row.SeenAt.Before(since):
				out.Live++
				for _, host := range strings.Split(row.Active, ",") {
					if host != "" {
						out.ActiveOn[host]++
					}
				}
			case row.SeenAt.Before(stale):
				if _, err := t.client.DeleteEntity(ctx, MetaPartition, row.RowKey, nil); err != nil && statusOf(err) != http.StatusNotFound {
					t.log.WarnContext(ctx, "deleting the row of a long-gone instance failed", "row", row.RowKey, "err", err.Error())
				}
			}
		}
	}
	return out, nil
}
