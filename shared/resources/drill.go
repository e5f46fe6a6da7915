package resources

import (
	"context"

	"github.com/dimirror/dimirror/shared/docintel"
	"github.com/dimirror/dimirror/shared/drill"
	"github.com/dimirror/dimirror/shared/replication"
)

// Inspection adapts a docintel client to drill.Resource: the listing reconciliation reads, plus
// each item's details digested to a fingerprint of its document types and field schema.
type Inspection struct {
	*Listing
}

// NewInspection wraps a client.
func NewInspection(c *docintel.Client) *Inspection { return &Inspection{Listing: NewListing(c)} }

var _ drill.Resource = (*Inspection)(nil)

// Fingerprint reads the item's details (one list-rate call) and digests them.
func (i *Inspection) Fingerprint(ctx context.Context, kind replication.Kind, id string) (string, error) {
	m, err := i.Client.GetModel(ctx, kindOf(kind), id)
	if err != nil {
		return "", listingError(err)
	}
	return docintel.SchemaFingerprint(m)
}

// APIVersion is the api-version the client speaks.
func (i *Inspection) APIVersion() string { return string(i.Client.APIVersion()) }
