package resources

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/dimirror/dimirror/shared/docintel"
	"github.com/dimirror/dimirror/shared/reconcile"
	"github.com/dimirror/dimirror/shared/replication"
)

// Listing adapts a docintel client to reconcile.Lister: the inventory reconciliation reads
// (models, classifiers, operations, /info, a composed model's parts). Paging is the client's;
// pacing is the client's transport's (Pacer).
type Listing struct {
	Client *docintel.Client
}

// NewListing wraps a client.
func NewListing(c *docintel.Client) *Listing { return &Listing{Client: c} }

var _ reconcile.Lister = (*Listing)(nil)

// Items lists the custom models or classifiers. v2.1 models that are not ready (creating: a copy
// or training under way, or a reservation; invalid) are left out: they are not usable copies.
func (l *Listing) Items(ctx context.Context, kind replication.Kind) iter.Seq2[reconcile.Item, error] {
	return func(yield func(reconcile.Item, error) bool) {
		for m, err := range l.Client.Models(ctx, kindOf(kind)) {
			if err != nil {
				yield(reconcile.Item{}, listingError(err))
				return
			}
			if m.Status != "" && m.Status != docintel.StatusReady {
				continue
			}
			it := reconcile.Item{Kind: kind, ID: m.ID, Created: m.Created, Expires: m.Expires, Tags: m.Tags}
			if !yield(it, nil) {
				return
			}
		}
	}
}

// Operations lists the resource's operations, newest first.
func (l *Listing) Operations(ctx context.Context) iter.Seq2[reconcile.Operation, error] {
	return func(yield func(reconcile.Operation, error) bool) {
		for op, err := range l.Client.Operations(ctx) {
			if err != nil {
				yield(reconcile.Operation{}, listingError(err))
				return
			}
			if !yield(toListedOperation(op), nil) {
				return
			}
		}
	}
}

// Operation reads one operation by id.
func (l *Listing) Operation(ctx context.Context, id string) (reconcile.Operation, error) {
	if l.Client.APIVersion() == docintel.V2_1 {
		return reconcile.Operation{}, fmt.Errorf("%w: api-version 2.1 has no operation list", reconcile.ErrUnsupported)
	}
	op, err := l.Client.GetOperation(ctx, l.Client.OperationURL(id))
	if err != nil {
		return reconcile.Operation{}, listingError(err)
	}
	return toListedOperation(*op), nil
}

func toListedOperation(op docintel.Operation) reconcile.Operation {
	return reconcile.Operation{ID: op.ID, Kind: op.Kind, Status: opStatus(op.Status), Created: op.Created,
		LastUpdated: op.LastUpdated, ItemID: op.TargetID}
}

// Info reads the custom model count and limit.
func (l *Listing) Info(ctx context.Context) (reconcile.Info, error) {
	info, err := l.Client.Info(ctx)
	if err != nil {
		return reconcile.Info{}, listingError(err)
	}
	return reconcile.Info{Count: info.CustomModelCount, Limit: info.CustomModelLimit}, nil
}

// Dependencies reads a model's details for what a composed model is made of: its component
// models (docTypes[*].modelId; v2.1 composedTrainResults) and its classifier (2024-11-30).
func (l *Listing) Dependencies(ctx context.Context, modelID string) ([]reconcile.Dependency, error) {
	m, err := l.Client.GetModel(ctx, docintel.KindModel, modelID)
	if err != nil {
		return nil, listingError(err)
	}
	var deps []reconcile.Dependency
	for _, id := range m.ComponentModelIDs {
		if id != modelID { // a built model's own docType may name itself
			deps = append(deps, reconcile.Dependency{Kind: replication.KindModel, ID: id})
		}
	}
	if m.ClassifierID != "" {
		deps = append(deps, reconcile.Dependency{Kind: replication.KindClassifier, ID: m.ClassifierID})
	}
	return deps, nil
}

// listingError maps a client error: unsupported api-version and not found onto the reconcile
// package's errors (keeping the message), everything else as the domain classifies it.
func listingError(err error) error {
	switch {
	case errors.Is(err, docintel.ErrUnsupported):
		return fmt.Errorf("%w: %v", reconcile.ErrUnsupported, err)
	case docintel.IsNotFound(err):
		return fmt.Errorf("%w: %v", reconcile.ErrNotFound, err)
	}
	return Classify(err)
}
