package replication

import (
	"context"
	"errors"
	"fmt"
	"iter"
)

// listPage is how many rows one store call of Replicas reads.
const listPage = 1000

// Replicas yields every replica matching f, reading the store a page at a time, so callers
// (the poll pass, reconciliation's inventory, the CLI) never write a paging loop. A store error
// is yielded once, with a zero replica, and ends the sequence.
func (e *Engine) Replicas(ctx context.Context, f Filter) iter.Seq2[Replica, error] {
	return func(yield func(Replica, error) bool) {
		next := ""
		for {
			page, err := e.store.List(ctx, f, next, listPage)
			if err != nil {
				yield(Replica{}, err)
				return
			}
			for _, r := range page.Replicas {
				if !yield(r, nil) {
					return
				}
			}
			if next = page.Next; next == "" {
				return
			}
		}
	}
}

// Get reads one replica (ErrNotFound when there is none).
func (e *Engine) Get(ctx context.Context, k Key) (*Replica, error) { return e.store.Get(ctx, k) }

// List reads one page of replicas, for an API that hands the continuation token to its caller.
func (e *Engine) List(ctx context.Context, f Filter, next string, limit int) (Page, error) {
	return e.store.List(ctx, f, next, limit)
}

// MarkVanished records that a verified copy is gone from its target (reconciliation found it
// missing), so the request that follows starts a new run. A replica that is not succeeded any
// more (another instance got there first) is left as it is.
func (e *Engine) MarkVanished(ctx context.Context, k Key) error {
	for range 3 {
		r, err := e.store.Get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if r.Status != StatusSucceeded {
			return nil
		}
		if err := r.Vanish(e.clock()); err != nil {
			return err
		}
		r.UpdatedAt = e.clock()
		err = e.store.Update(ctx, r)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err == nil {
			e.log.WarnContext(ctx, "replica lost its target copy; replicating again", replicaAttrs(r)...)
		}
		return err
	}
	return fmt.Errorf("replica %s keeps changing", k)
}

// RowDeleter is a Store that can forget a replica (the table can; pruning needs it).
type RowDeleter interface {
	Delete(ctx context.Context, k Key) error
}

// PruneResult says what Prune did.
type PruneResult string

const (
	PruneDeleted    PruneResult = "deleted"
	PruneSourceBack PruneResult = "kept: the source has it again"
	PruneNotOurs    PruneResult = "kept: the target model is not dimirror's copy of this source item"
	PruneGone       PruneResult = "already gone"
)

// Prune deletes dimirror's copy of a source item the source no longer has (an orphan) from a
// target, and forgets its replica row. Both conditions are checked right before the delete —
// the source once more (it may have come back since the listing) and the target model's
// provenance (someone may have put their own model under the id) — so only what dimirror can
// prove it made is ever deleted.
func (e *Engine) Prune(ctx context.Context, k Key, targetID string) (PruneResult, error) {
	target, ok := e.targets[k.Target]
	if !ok {
		return "", fmt.Errorf("target %s is not configured", k.Target)
	}
	// The row (when there is one) names the source and the origin; without one, the copy is the
	// default source's original's (a copy made by the CLI before rules).
	row := &Replica{Key: k}
	if r, err := e.store.Get(ctx, k); err == nil {
		row = r
	} else if !errors.Is(err, ErrNotFound) {
		return "", err
	}
	copyExpires := row.CopyExpires
	if copyExpires.IsZero() && row.Status == StatusSucceeded {
		copyExpires = row.SourceExpires // rows verified before CopyExpires was kept
	}
	source := e.sourceRes(row)
	if source == nil {
		return "", fmt.Errorf("source %s is not configured", e.sourceOf(row))
	}
	if _, err := source.GetModel(ctx, k.Kind, k.SourceID); err == nil {
		return PruneSourceBack, nil
	} else if classOf(err) != ClassNotFound {
		return "", fmt.Errorf("checking the source: %w", err)
	}
	m, err := target.GetModel(ctx, k.Kind, targetID)
	switch {
	case classOf(err) == ClassNotFound:
		return PruneGone, e.forget(ctx, k)
	case err != nil:
		return "", fmt.Errorf("reading the target model: %w", err)
	case !MadeBy(m, k.Kind, e.originOf(row), copyExpires):
		return PruneNotOurs, nil
	}
	if err := target.DeleteModel(ctx, k.Kind, targetID); err != nil && classOf(err) != ClassNotFound {
		return "", err
	}
	if err := e.forget(ctx, k); err != nil {
		return "", fmt.Errorf("deleted from the target, but forgetting its row failed: %w", err)
	}
	e.log.InfoContext(ctx, "orphan deleted", "kind", string(k.Kind), "sourceId", k.SourceID, "target", k.Target, "targetId", targetID)
	return PruneDeleted, nil
}

func (e *Engine) forget(ctx context.Context, k Key) error {
	if del, ok := e.store.(RowDeleter); ok {
		if err := del.Delete(ctx, k); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	return nil
}
