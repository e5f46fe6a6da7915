// Package resources adapts shared/docintel clients to the domain's replication.Resource: it maps
// the client's typed errors onto the domain's error classes and finds copies again in a source's
// operation list.
package resources

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/dimirror/dimirror/shared/docintel"
	"github.com/dimirror/dimirror/shared/replication"
)

// Resource is one Document Intelligence resource as the pipeline uses it.
type Resource struct {
	Client *docintel.Client
	// ScanLimit bounds how many operations FindCopyOperations reads (newest first); the service
	// keeps about a day of them. Default 2000.
	ScanLimit int
}

// New wraps a client.
func New(c *docintel.Client) *Resource { return &Resource{Client: c} }

var _ replication.Resource = (*Resource)(nil)

func kindOf(k replication.Kind) docintel.Kind {
	if k == replication.KindClassifier {
		return docintel.KindClassifier
	}
	return docintel.KindModel
}

// AuthorizeCopy asks this (target) resource for a copy authorization.
func (r *Resource) AuthorizeCopy(ctx context.Context, k replication.Kind, targetID string, tags map[string]string) (replication.Authorization, error) {
	req := docintel.AuthorizeRequest{TargetID: targetID}
	if k == replication.KindModel { // classifiers do not keep tags
		req.Tags = tags
	}
	a, err := r.Client.AuthorizeCopy(ctx, kindOf(k), req)
	if err != nil {
		return replication.Authorization{}, Classify(err)
	}
	return replication.Authorization{TargetID: a.TargetID, ExpiresAt: a.ExpiresAt, Body: a.Body}, nil
}

// CopyTo starts a copy on this (source) resource.
func (r *Resource) CopyTo(ctx context.Context, k replication.Kind, sourceID string, body []byte) (string, error) {
	u, err := r.Client.CopyTo(ctx, kindOf(k), sourceID, &docintel.Authorization{Kind: kindOf(k), Body: body})
	if err != nil {
		return "", Classify(err)
	}
	return u, nil
}

// GetOperation polls a copy operation.
func (r *Resource) GetOperation(ctx context.Context, opURL string) (replication.Operation, error) {
	op, err := r.Client.GetOperation(ctx, opURL)
	if err != nil {
		return replication.Operation{}, Classify(err)
	}
	return toOperation(opURL, op), nil
}

// opStatus maps the service's operation status to the domain's: skipped counts as canceled,
// anything unknown as failed.
func opStatus(s docintel.Status) replication.OpStatus {
	switch {
	case s.Succeeded():
		return replication.OpSucceeded
	case s == docintel.StatusNotStarted:
		return replication.OpNotStarted
	case s == docintel.StatusRunning:
		return replication.OpRunning
	case s == docintel.StatusCanceled || s == docintel.StatusSkipped:
		return replication.OpCanceled
	}
	return replication.OpFailed
}

func toOperation(opURL string, op *docintel.Operation) replication.Operation {
	out := replication.Operation{URL: opURL, Status: opStatus(op.Status), Percent: op.PercentCompleted, TargetID: op.TargetID, Created: op.Created}
	if op.Error != nil {
		out.Err = classifyOperation(op.Error)
	}
	return out
}

// FindCopyOperations scans this resource's operations once, newest first, for copies into the
// given target locations that are running or succeeded, and returns the newest for each location
// found, keyed as asked. The scan ends at the first operation created before since (the list is
// newest first, so the rest is older), when every location has its copy, or after ScanLimit
// operations: a poll pass looking for the copies of many replicas pages through the list once,
// and only as far back as their authorizations go, instead of once per replica through a day of
// operations.
func (r *Resource) FindCopyOperations(ctx context.Context, k replication.Kind, since time.Time, targetLocations ...string) (map[string]replication.Operation, error) {
	want := docintel.OperationKindModelCopyTo
	if k == replication.KindClassifier {
		want = docintel.OperationKindClassifierCopyTo
	}
	keys := make(map[string][]string, len(targetLocations)) // item key → the locations as asked
	for _, loc := range targetLocations {
		if key, ok := itemKey(loc); ok {
			keys[key] = append(keys[key], loc)
		}
	}
	found := map[string]replication.Operation{}
	if len(keys) == 0 {
		return found, nil
	}
	limit := r.ScanLimit
	if limit <= 0 {
		limit = 2000
	}
	n := 0
	for op, err := range r.Client.Operations(ctx) {
		if err != nil {
			if errors.Is(err, docintel.ErrUnsupported) { // v2.1 has no operation list
				return found, nil
			}
			return nil, Classify(err)
		}
		if n++; n > limit || (!since.IsZero() && !op.Created.IsZero() && op.Created.Before(since)) {
			break
		}
		if op.Kind != want || op.Status == docintel.StatusFailed || op.Status == docintel.StatusCanceled || op.Status == docintel.StatusSkipped {
			continue
		}
		key, ok := itemKey(op.ResourceLocation)
		locs := keys[key]
		if !ok || len(locs) == 0 {
			continue
		}
		for _, loc := range locs {
			found[loc] = toOperation(r.Client.OperationURL(op.ID), &op)
		}
		if delete(keys, key); len(keys) == 0 {
			break
		}
	}
	return found, nil
}

// versionSegments are the path segments the v3/v4 api-versions hang their routes off.
var versionSegments = []string{"/documentintelligence", "/formrecognizer"}

// itemKey reduces a model or classifier URL to what names the item, so that two URLs of the
// same item give the same key: host, the endpoint's own path, collection and id, in lower case
// (the service routes without regard to case), without the query (api-version) and without the
// api-version's own path segment. That segment is left out because a source and a target may
// speak different api-versions: a copy started with 2024-11-30 names its target
// .../documentintelligence/documentModels/{id}, while a 2022-08-31 target client addresses the
// same model as .../formrecognizer/documentModels/{id}.
func itemKey(s string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Host == "" {
		return "", false
	}
	p := strings.TrimSuffix(u.Path, "/")
	i := strings.LastIndex(p, "/")
	if i <= 0 || i == len(p)-1 {
		return "", false
	}
	id, rest := p[i+1:], p[:i]
	j := strings.LastIndex(rest, "/")
	collection, prefix := rest[j+1:], rest[:max(j, 0)]
	for _, seg := range versionSegments {
		if strings.HasSuffix(strings.ToLower(prefix), seg) {
			prefix = prefix[:len(prefix)-len(seg)]
			break
		}
	}
	return strings.ToLower(u.Host + "\x00" + prefix + "\x00" + collection + "\x00" + id), true
}

// GetModel reads a model or classifier. A v2.1 model still being created (or invalid) is not
// there yet.
func (r *Resource) GetModel(ctx context.Context, k replication.Kind, id string) (replication.Model, error) {
	m, err := r.Client.GetModel(ctx, kindOf(k), id)
	if err != nil {
		return replication.Model{}, Classify(err)
	}
	if m.Status != "" && m.Status != docintel.StatusReady {
		return replication.Model{}, &replication.ServiceError{Class: replication.ClassNotFound, Code: "ModelNotReady",
			Message: "the model is " + m.Status}
	}
	return replication.Model{ID: m.ID, Created: m.Created, Expires: m.Expires, Tags: m.Tags}, nil
}

// DeleteModel deletes a model or classifier (or frees a reserved id).
func (r *Resource) DeleteModel(ctx context.Context, k replication.Kind, id string) error {
	if err := r.Client.DeleteModel(ctx, kindOf(k), id); err != nil {
		return Classify(err)
	}
	return nil
}

// Location is the model URL copy operations report for id on this resource.
func (r *Resource) Location(k replication.Kind, id string) string {
	return r.Client.ResourceLocation(kindOf(k), id)
}

// Classify maps a client error onto the domain's classes. Errors that are not the service's
// (network, deadline) are transient.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, docintel.ErrInvalidArgument) || errors.Is(err, docintel.ErrUnsupported) {
		return &replication.ServiceError{Class: replication.ClassPermanent, Code: "InvalidRequest", Message: err.Error()}
	}
	var de *docintel.Error
	if !errors.As(err, &de) {
		return err // the domain treats it as transient
	}
	se := &replication.ServiceError{Code: code(de), Message: message(de), StatusCode: de.StatusCode, RetryAfter: de.RetryAfter}
	switch {
	case docintel.IsTransient(err):
		se.Class = replication.ClassTransient
	case docintel.IsModelExists(err):
		se.Class = replication.ClassExists
	case docintel.IsAuthorizationInvalid(err):
		se.Class = replication.ClassAuthorization
	case docintel.IsModelNotReady(err):
		se.Class = replication.ClassNotReady
	case docintel.IsQuotaExhausted(err):
		se.Class = replication.ClassQuota
	case docintel.IsNotFound(err):
		se.Class = replication.ClassNotFound
	default:
		se.Class = replication.ClassPermanent
	}
	return se
}

// classifyOperation maps a failed operation's error. Unlike an HTTP answer, an operation that
// failed for a reason the client does not know is worth another attempt (internal errors and
// timeouts are the common ones); only known-permanent causes end the run.
func classifyOperation(de *docintel.Error) *replication.ServiceError {
	se := &replication.ServiceError{Code: code(de), Message: message(de), Class: replication.ClassRetryable}
	switch {
	case docintel.IsAuthorizationInvalid(de):
		se.Class = replication.ClassAuthorization
	case docintel.IsDowngradeRefused(de), docintel.IsForbidden(de):
		se.Class = replication.ClassPermanent
	case docintel.IsQuotaExhausted(de):
		se.Class = replication.ClassQuota
	}
	return se
}

func code(e *docintel.Error) string {
	if e.InnerCode != "" {
		return e.InnerCode
	}
	return e.Code
}

func message(e *docintel.Error) string {
	if e.InnerCode != "" && e.InnerMessage != "" {
		return e.InnerMessage
	}
	return e.Message
}
