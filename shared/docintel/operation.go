package docintel

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"math"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"
)

// Status is an operation's status. v2.1 copy results use the same strings.
type Status string

// Operation statuses across versions: completed is 2024-02-29/07-31-preview's success, skipped is
// 2024-11-30's.
const (
	StatusNotStarted Status = "notStarted"
	StatusRunning    Status = "running"
	StatusSucceeded  Status = "succeeded"
	StatusFailed     Status = "failed"
	StatusCanceled   Status = "canceled"
	StatusSkipped    Status = "skipped"
	StatusCompleted  Status = "completed"
)

// Terminal reports whether the operation will not change any more.
func (s Status) Terminal() bool {
	switch s {
	case StatusSucceeded, StatusFailed, StatusCanceled, StatusSkipped, StatusCompleted:
		return true
	}
	return false
}

// Succeeded reports success (succeeded, or the previews' completed).
func (s Status) Succeeded() bool { return s == StatusSucceeded || s == StatusCompleted }

// Operation is one long-running operation as GetOperation or Operations report it.
type Operation struct {
	ID, Kind         string
	Status           Status
	PercentCompleted int
	Created          time.Time
	LastUpdated      time.Time
	// ResourceLocation is the service's resourceLocation (v3/v4: the TARGET's URL, with
	// ?api-version=). v2.1 results do not name the target resource, so for v2.1 it is the
	// host-relative path /formrecognizer/v2.1/custom/models/{TargetID}: resolve it against the
	// target's endpoint, or use Authorization.TargetLocation.
	ResourceLocation string
	TargetID         string // result.modelId / result.classifierId / v2.1 copyResult.modelId, else from ResourceLocation
	APIVersion       string
	Tags             map[string]string
	Error            *Error          // when failed (v2.1: first copyResult.errors entry, rest in Details)
	Result           json.RawMessage // raw result when present (v3/v4: model/classifier details; v2.1: copyResult)
}

// wireTime reads the service's timestamps: RFC 3339 with 0–9 fractional digits, or without a zone
// (taken as UTC). Anything else reads as the zero time rather than failing a whole answer.
type wireTime time.Time

func (t *wireTime) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) != nil {
		*t = wireTime{}
		return nil
	}
	*t = wireTime(parseTime(s))
	return nil
}

func parseTime(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	if v, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return v.UTC()
	}
	if v, err := time.Parse("2006-01-02T15:04:05.999999999", s); err == nil {
		return v.UTC()
	}
	return time.Time{}
}

// wirePercent reads percentCompleted, an integer that some answers send as a float.
type wirePercent int

func (p *wirePercent) UnmarshalJSON(b []byte) error {
	var f float64
	if json.Unmarshal(b, &f) != nil || math.IsNaN(f) {
		*p = 0
		return nil
	}
	*p = wirePercent(min(max(math.Round(f), 0), 100))
	return nil
}

type wireOperation struct {
	OperationID         string            `json:"operationId"`
	Kind                string            `json:"kind"`
	Status              string            `json:"status"`
	PercentCompleted    wirePercent       `json:"percentCompleted"`
	CreatedDateTime     wireTime          `json:"createdDateTime"`
	LastUpdatedDateTime wireTime          `json:"lastUpdatedDateTime"`
	ResourceLocation    string            `json:"resourceLocation"`
	APIVersion          string            `json:"apiVersion"`
	Tags                map[string]string `json:"tags"`
	Error               json.RawMessage   `json:"error"`
	Result              json.RawMessage   `json:"result"`
}

type wireV21CopyResult struct {
	Status              string          `json:"status"`
	CreatedDateTime     wireTime        `json:"createdDateTime"`
	LastUpdatedDateTime wireTime        `json:"lastUpdatedDateTime"`
	CopyResult          json.RawMessage `json:"copyResult"`
}

type wireV21CopyResultBody struct {
	ModelID string      `json:"modelId"`
	Errors  []wireError `json:"errors"`
}

// v21CopyResultPath matches .../custom/models/{source}/copyResults/{resultId}; the service writes
// "copyresults" in Operation-Location while the spec says copyResults.
var v21CopyResultPath = regexp.MustCompile(`(?i)/custom/models/([^/]+)/copyresults/([^/]+)$`)

// GetOperation polls one operation by the URL CopyTo returned. The URL must be below the endpoint
// (its host and path). A failed copy is a successful call: see Operation.Status and
// Operation.Error (v2.1 serves failed copy results with HTTP 200; they are mapped the same way).
func (c *Client) GetOperation(ctx context.Context, operationURL string) (*Operation, error) {
	u, err := url.Parse(strings.TrimSpace(operationURL))
	if err != nil {
		return nil, fmt.Errorf("%w: operation URL is not a URL", ErrInvalidArgument)
	}
	if err := c.checkOrigin(u, "operation URL"); err != nil {
		return nil, err
	}
	if c.version == V2_1 {
		return c.getOperationV21(ctx, u)
	}
	if !strings.Contains(strings.ToLower(u.Path), "/operations/") {
		return nil, fmt.Errorf("%w: %q is not an operation URL", ErrInvalidArgument, safeURL(u.String()))
	}
	if u.Query().Get("api-version") == "" {
		q := u.Query()
		q.Set("api-version", c.raw)
		u.RawQuery = q.Encode()
	}
	resp, err := c.do(ctx, call{op: "getOperation", method: http.MethodGet, url: u.String()})
	if err != nil {
		if e, ok := asError(err); ok && e.StatusCode == http.StatusNotFound && e.InnerCode == "" && e.Code != "404" {
			e.InnerCode = CodeOperationNotFound
		}
		return nil, err
	}
	var w wireOperation
	if err := json.Unmarshal(resp.body, &w); err != nil {
		return nil, fmt.Errorf("docintel: getOperation: answer is not an operation: %w", err)
	}
	op := c.operationFromWire(w, true)
	if op.ID == "" {
		op.ID = path.Base(u.Path)
	}
	return &op, nil
}

// operationFromWire maps an operation; full=false (list items) drops result and error.
func (c *Client) operationFromWire(w wireOperation, full bool) Operation {
	op := Operation{
		ID:               w.OperationID,
		Kind:             w.Kind,
		Status:           Status(w.Status),
		PercentCompleted: int(w.PercentCompleted),
		Created:          time.Time(w.CreatedDateTime),
		LastUpdated:      time.Time(w.LastUpdatedDateTime),
		ResourceLocation: w.ResourceLocation,
		APIVersion:       w.APIVersion,
		Tags:             w.Tags,
	}
	if full {
		if r := bytes.TrimSpace(w.Result); len(r) > 0 && !bytes.Equal(r, []byte("null")) {
			op.Result = json.RawMessage(bytes.Clone(r))
			op.TargetID = resultID(w.Kind, r)
		}
		if e := bytes.TrimSpace(w.Error); len(e) > 0 && e[0] == '{' {
			var we wireError
			if json.Unmarshal(e, &we) == nil {
				pe := fromWire(we, 0, 0)
				pe.finish(c.secrets())
				op.Error = &pe
			}
		}
	}
	if op.TargetID == "" {
		op.TargetID = idFromLocation(w.ResourceLocation)
	}
	return op
}

// resultID is the id of the model or classifier an operation's result describes.
func resultID(kind string, result []byte) string {
	var r struct {
		ModelID      string `json:"modelId"`
		ClassifierID string `json:"classifierId"`
	}
	if json.Unmarshal(result, &r) != nil {
		return ""
	}
	// A composed model's result also has classifierId: the kind decides which id is the target.
	if strings.Contains(strings.ToLower(kind), "classifier") {
		return r.ClassifierID
	}
	if r.ModelID != "" {
		return r.ModelID
	}
	return r.ClassifierID
}

// idFromLocation is the last path segment of a resourceLocation such as
// https://host/documentintelligence/documentModels/{id}?api-version=...
func idFromLocation(loc string) string {
	if loc == "" {
		return ""
	}
	u, err := url.Parse(loc)
	if err != nil || u.Path == "" {
		return ""
	}
	dir, id := path.Split(strings.TrimRight(u.Path, "/"))
	d := strings.ToLower(path.Base(strings.TrimRight(dir, "/")))
	if d != "documentmodels" && d != "documentclassifiers" && d != "models" {
		return ""
	}
	return id
}

func (c *Client) getOperationV21(ctx context.Context, u *url.URL) (*Operation, error) {
	m := v21CopyResultPath.FindStringSubmatch(u.Path)
	if m == nil {
		return nil, fmt.Errorf("%w: %q is not a v2.1 copy result URL (.../custom/models/{id}/copyResults/{resultId})", ErrInvalidArgument, safeURL(u.String()))
	}
	resp, err := c.do(ctx, call{op: "getCopyResult", method: http.MethodGet, url: u.String()})
	if err != nil {
		if e, ok := asError(err); ok && e.StatusCode == http.StatusNotFound && e.InnerCode == "" && e.Code != "404" {
			e.InnerCode = CodeOperationNotFound
		}
		return nil, err
	}
	var w wireV21CopyResult
	if err := json.Unmarshal(resp.body, &w); err != nil {
		return nil, fmt.Errorf("docintel: getCopyResult: answer is not a copy result: %w", err)
	}
	resultID, _ := url.PathUnescape(m[2])
	op := &Operation{
		ID:          resultID,
		Kind:        OperationKindModelCopyTo,
		Status:      Status(w.Status),
		Created:     time.Time(w.CreatedDateTime),
		LastUpdated: time.Time(w.LastUpdatedDateTime),
		APIVersion:  c.raw,
	}
	var cr wireV21CopyResultBody
	if r := bytes.TrimSpace(w.CopyResult); len(r) > 0 && r[0] == '{' {
		op.Result = json.RawMessage(bytes.Clone(r))
		_ = json.Unmarshal(r, &cr) // a malformed errors list must not hide the status
	}
	if cr.ModelID != "" {
		op.TargetID = cr.ModelID
		op.ResourceLocation = c.origin.Path + V2_1.pathPrefix(c.raw) + "/custom/models/" + url.PathEscape(cr.ModelID)
	}
	if op.Status == StatusSucceeded {
		op.PercentCompleted = 100
	}
	if op.Status == StatusFailed {
		op.Error = v21OperationError(cr.Errors, resp.header)
		op.Error.finish(c.secrets())
	}
	return op, nil
}

// v21OperationError folds copyResult.errors into one Error: the first entry, the rest in Details.
// With no entries the ms-azure-ai-errorcode / x-ms-cs-error-code header still names the failure.
func v21OperationError(errs []wireError, h http.Header) *Error {
	var e Error
	if len(errs) > 0 {
		e = fromWire(errs[0], 0, 0)
		for _, d := range errs[1:] {
			e.Details = append(e.Details, fromWire(d, 1, 0))
		}
	}
	if e.Code == "" {
		e.Code = headerErrorCode(h)
	}
	if e.Code == "" && e.Message == "" {
		e.Message = "copy failed without error details"
	}
	return &e
}

// Operations lists the resource's operations, newest first, following nextLink. Items carry no
// Result or Error. v3/v4 only; v2.1 yields one ErrUnsupported error.
func (c *Client) Operations(ctx context.Context) iter.Seq2[Operation, error] {
	if c.version == V2_1 {
		return failSeq[Operation](fmt.Errorf("%w: api-version 2.1 cannot list operations", ErrUnsupported))
	}
	return pages(c, ctx, "listOperations", c.url("/operations", nil), func(body []byte) ([]Operation, string, error) {
		var page struct {
			Value    []wireOperation `json:"value"`
			NextLink string          `json:"nextLink"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, "", fmt.Errorf("docintel: listOperations: answer is not an operation list: %w", err)
		}
		out := make([]Operation, 0, len(page.Value))
		for _, w := range page.Value {
			out = append(out, c.operationFromWire(w, false))
		}
		return out, page.NextLink, nil
	})
}

// OperationURL is the URL GetOperation polls for an operation id that Operations listed (v3/v4;
// v2.1 copy results are addressed through their source model and have no list).
func (c *Client) OperationURL(id string) string {
	return c.url("/operations/"+url.PathEscape(id), nil)
}

func failSeq[T any](err error) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		yield(zero, err)
	}
}

// pages walks a paged list: GET first, then each nextLink (resolved against the page it came
// from, below the endpoint only, with api-version added when missing) until it is empty.
func pages[T any](c *Client, ctx context.Context, op, first string, decode func([]byte) ([]T, string, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		seen := map[string]bool{}
		next := first
		for next != "" {
			if seen[next] {
				yield(zero, fmt.Errorf("docintel: %s: nextLink %q repeats a page already read", op, safeURL(next)))
				return
			}
			seen[next] = true
			resp, err := c.do(ctx, call{op: op, method: http.MethodGet, url: next})
			if err != nil {
				yield(zero, err)
				return
			}
			items, link, err := decode(resp.body)
			if err != nil {
				yield(zero, err)
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if next, err = c.resolveNext(next, link); err != nil {
				yield(zero, fmt.Errorf("docintel: %s: %w", op, err))
				return
			}
		}
	}
}

func (c *Client) resolveNext(current, link string) (string, error) {
	link = strings.TrimSpace(link)
	if link == "" {
		return "", nil
	}
	cur, err := url.Parse(current)
	if err != nil {
		return "", err
	}
	ref, err := url.Parse(link)
	if err != nil {
		return "", fmt.Errorf("%w: nextLink is not a URL", ErrInvalidArgument)
	}
	u := cur.ResolveReference(ref)
	if err := c.checkOrigin(u, "nextLink"); err != nil {
		return "", err
	}
	if c.version != V2_1 && u.Query().Get("api-version") == "" {
		q := u.Query()
		q.Set("api-version", c.raw)
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}
