package reconcile

import (
	"context"
	"errors"
	"iter"
	"time"

	"github.com/dimirror/dimirror/shared/replication"
)

// ErrUnsupported: the resource's api-version cannot do this (v2.1 lists no operations and has no
// classifiers; 2022-08-31 has no classifiers). Reconciliation notes it and carries on.
var ErrUnsupported = errors.New("not supported by the resource's api-version")

// ErrNotFound: the model, classifier or operation does not exist (any more).
var ErrNotFound = errors.New("not found")

// Item is one custom model or classifier as a resource's list shows it (a summary: no docTypes).
type Item struct {
	Kind    replication.Kind
	ID      string
	Created time.Time
	Expires time.Time
	Tags    map[string]string
}

// Operation kinds that make a new model or classifier on the source.
const (
	OpModelBuild      = "documentModelBuild"
	OpModelCompose    = "documentModelCompose"
	OpClassifierBuild = "documentClassifierBuild"
)

// Operation is one entry of a resource's operation list.
type Operation struct {
	ID          string
	Kind        string // documentModelBuild, documentModelCopyTo, ...
	Status      replication.OpStatus
	Created     time.Time
	LastUpdated time.Time
	ItemID      string // the model or classifier the operation makes (from resourceLocation)
}

// Info is a resource's custom model count and limit (GET /info).
type Info struct{ Count, Limit int }

// Dependency is something a composed model needs in a target before it can be copied there.
type Dependency struct {
	Kind replication.Kind `json:"kind"`
	ID   string           `json:"id"`
}

// Lister reads one resource's inventory. Listings are paged by the implementation and paced under
// the service's list rate limit; iteration stops at the first error.
type Lister interface {
	// Items lists the custom models or classifiers (never prebuilt models); ErrUnsupported when the
	// api-version has none of that kind.
	Items(ctx context.Context, kind replication.Kind) iter.Seq2[Item, error]
	// Operations lists the resource's operations, newest first; ErrUnsupported for v2.1.
	Operations(ctx context.Context) iter.Seq2[Operation, error]
	// Operation reads one operation by id; ErrNotFound once the service forgot it (~24 h).
	Operation(ctx context.Context, id string) (Operation, error)
	// Info reads the custom model count and limit.
	Info(ctx context.Context) (Info, error)
	// Dependencies lists what a model needs in a target first: a composed model's component
	// models and classifier; nothing for a built model. ErrNotFound when the model is gone.
	Dependencies(ctx context.Context, modelID string) ([]Dependency, error)
}

// MetaStore keeps the reconciler's own rows (watermark, waiting list, last reports) beside the
// replica rows, with the same optimistic concurrency: two instances may run the timers at once.
type MetaStore interface {
	// GetMeta returns the value and ETag of a row; replication.ErrNotFound when there is none.
	GetMeta(ctx context.Context, name string) (value []byte, etag string, err error)
	// PutMeta creates the row when etag is "" or replaces it when etag is current, and returns
	// the new ETag; replication.ErrConflict when another instance wrote first.
	PutMeta(ctx context.Context, name string, value []byte, etag string) (string, error)
}
