package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/dimirror/dimirror/shared/replication"
)

// MetaPartition holds dimirror's own rows (the reconciler's watermark, waiting list and last
// reports) in the replica table. They have no Status column, so replica listings, which always
// filter on Status, never see them.
const MetaPartition = "_dimirror"

// MaxMetaBytes bounds a meta row's value: it is one Edm.Binary property, which holds 64 KiB.
const MaxMetaBytes = 64 << 10

// ErrMetaTooLarge is a value over MaxMetaBytes.
var ErrMetaTooLarge = errors.New("store: the value is larger than a table property holds (64 KiB)")

// GetMeta reads the value and ETag of the meta row name; replication.ErrNotFound when absent.
func (t *Tables) GetMeta(ctx context.Context, name string) ([]byte, string, error) {
	if err := checkMetaName(name); err != nil {
		return nil, "", err
	}
	ctx, cancel := t.deadline(ctx)
	defer cancel()
	resp, err := t.client.GetEntity(ctx, MetaPartition, name, nil)
	if err != nil {
		if statusOf(err) == http.StatusNotFound {
			return nil, "", replication.ErrNotFound
		}
		return nil, "", fmt.Errorf("store: get %s row: %w", name, err)
	}
	var row struct {
		Value string `json:"Value"`
	}
	if err := json.Unmarshal(resp.Value, &row); err != nil {
		return nil, "", fmt.Errorf("store: decode %s row: %w", name, err)
	}
	value, err := base64.StdEncoding.DecodeString(row.Value)
	if err != nil {
		return nil, "", fmt.Errorf("store: %s row: the value is not base64: %w", name, err)
	}
	return value, string(resp.ETag), nil
}

// PutMeta writes the meta row name: it creates it when etag is "" and replaces it when etag is
// the row's current ETag; replication.ErrConflict when the row exists (create) or changed since
// (replace). It returns the new ETag.
func (t *Tables) PutMeta(ctx context.Context, name string, value []byte, etag string) (string, error) {
	if err := checkMetaName(name); err != nil {
		return "", err
	}
	if len(value) > MaxMetaBytes {
		return "", fmt.Errorf("%w: %s row, %d bytes", ErrMetaTooLarge, name, len(value))
	}
	body, err := json.Marshal(map[string]any{
		"PartitionKey":         MetaPartition,
		"RowKey":               name,
		"Value":                base64.StdEncoding.EncodeToString(value),
		"Value@odata.type":     "Edm.Binary",
		"UpdatedAt":            time.Now().UTC().Format(time.RFC3339Nano),
		"UpdatedAt@odata.type": timeType,
	})
	if err != nil {
		return "", err
	}
	ctx, cancel := t.deadline(ctx)
	defer cancel()
	if etag == "" {
		resp, err := t.client.AddEntity(ctx, body, nil)
		if err != nil {
			if statusOf(err) == http.StatusConflict {
				return "", replication.ErrConflict
			}
			return "", fmt.Errorf("store: create %s row: %w", name, err)
		}
		return string(resp.ETag), nil
	}
	match := azcore.ETag(etag)
	resp, err := t.client.UpdateEntity(ctx, body, &aztables.UpdateEntityOptions{IfMatch: &match, UpdateMode: aztables.UpdateModeReplace})
	if err != nil {
		if s := statusOf(err); s == http.StatusPreconditionFailed || s == http.StatusNotFound {
			return "", replication.ErrConflict
		}
		return "", fmt.Errorf("store: update %s row: %w", name, err)
	}
	return string(resp.ETag), nil
}

// checkMetaName refuses RowKeys the table service does not accept.
func checkMetaName(name string) error {
	if name == "" || len(name) > 255 || strings.ContainsAny(name, `/\#?`) {
		return fmt.Errorf("store: %q is not a usable row name (1-255 characters, no / \\ # ?)", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("store: row name %q holds a control character", name)
		}
	}
	return nil
}
