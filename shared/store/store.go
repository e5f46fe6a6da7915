// Package store keeps replica rows in Azure Table Storage (aztables): PartitionKey
// "<kind>:<sourceId>", RowKey the target name. Writes carry the row's ETag so two instances never
// both advance the same replica. Replicas in flight are also named in an index partition
// (index.go), so listing them costs in proportion to them, not to the table. It implements
// replication.Store.
package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/dimirror/dimirror/shared/replication"
)

// Tables is the replica table.
type Tables struct {
	client  *aztables.Client
	timeout time.Duration
	log     *slog.Logger
	now     func() time.Time // wall clock of the index's intents; tests move it

	built    atomic.Bool // the index's marker was seen: every in-flight row has an intent
	building sync.Mutex  // one backfill at a time per process
	// backfilled is when this process last completed a backfill (unix nanoseconds): the index
	// is re-checked against the rows every rebackfillEvery, so entries missing for any reason
	// (an older binary writing the same table during a rollout, a rollback and upgrade) are
	// restored within that time instead of hiding an in-flight row from the poller for ever.
	backfilled atomic.Int64
	known      knownSet
}

// Options configure the connection. Exactly one of ConnectionString and ServiceURL (with
// Credential) is used.
type Options struct {
	ConnectionString string
	ServiceURL       string
	Credential       azcore.TokenCredential
	Table            string
	CallTimeout      time.Duration // per call when the context has none; default 30s
	Transport        policy.Transporter
	Logger           *slog.Logger // the index's warnings (a failed backfill); nil discards them
}

// Open connects to the table, creating it if needed.
func Open(ctx context.Context, o Options) (*Tables, error) {
	if o.Table == "" {
		return nil, errors.New("store: table name is empty")
	}
	copts := &aztables.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: o.Transport,
		Telemetry: policy.TelemetryOptions{ApplicationID: "dimirror"},
	}}
	var svc *aztables.ServiceClient
	var err error
	switch {
	case o.ConnectionString != "":
		svc, err = aztables.NewServiceClientFromConnectionString(ExpandDevelopmentStorage(o.ConnectionString), copts)
		if err != nil {
			// The SDK's message can echo the string; name the problem without it.
			return nil, errors.New("store: the table connection string is not valid")
		}
	case o.ServiceURL != "" && o.Credential != nil:
		svc, err = aztables.NewServiceClient(o.ServiceURL, o.Credential, copts)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	default:
		return nil, errors.New("store: need a connection string, or a service URL and a credential")
	}
	t := &Tables{client: svc.NewClient(o.Table), timeout: o.CallTimeout, log: o.Logger, now: time.Now}
	if t.timeout <= 0 {
		t.timeout = 30 * time.Second
	}
	if t.log == nil {
		t.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cctx, cancel := t.deadline(ctx)
	defer cancel()
	if _, err := t.client.CreateTable(cctx, nil); err != nil && !hasCode(err, aztables.TableAlreadyExists) {
		return nil, fmt.Errorf("store: create table %s: %w", o.Table, err)
	}
	return t, nil
}

// azuriteDevelopmentStorage is what "UseDevelopmentStorage=true" stands for: Azurite's
// development account (its key is public, documented by Microsoft) on its default table port.
const azuriteDevelopmentStorage = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;" +
	"AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;" +
	"TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"

// ExpandDevelopmentStorage spells out the Functions shorthand UseDevelopmentStorage=true (which
// local.settings.json files use and the Go table client does not understand); any other
// connection string is returned as it is.
func ExpandDevelopmentStorage(conn string) string {
	for _, part := range strings.Split(conn, ";") {
		k, v, _ := strings.Cut(part, "=")
		if strings.EqualFold(strings.TrimSpace(k), "UseDevelopmentStorage") && strings.EqualFold(strings.TrimSpace(v), "true") {
			return azuriteDevelopmentStorage
		}
	}
	return conn
}

func (t *Tables) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, t.timeout)
}

func hasCode(err error, code aztables.TableErrorCode) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.ErrorCode == string(code)
}

func statusOf(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// PartitionKey is the partition of a replica's row.
func PartitionKey(kind replication.Kind, sourceID string) string {
	return string(kind) + ":" + sourceID
}

const timeType = "Edm.DateTime"

// entity is the row as stored. Times are Edm.DateTime; zero times are left out.
type entity map[string]any

func toEntity(r *replication.Replica) entity {
	e := entity{
		"PartitionKey": PartitionKey(r.Kind, r.SourceID),
		"RowKey":       r.Target,
		"Kind":         string(r.Kind),
		"SourceId":     r.SourceID,
		"Target":       r.Target,
		"TargetId":     r.TargetID,
		"Status":       string(r.Status),
		"Attempt":      r.Attempt,
		"FirstAttempt": r.FirstAttempt,
		"Percent":      r.Percent,
	}
	// Source and Origin came with replication rules; rows without them are the legacy source's.
	setString(e, "Source", r.Source)
	setString(e, "Origin", r.Origin)
	setString(e, "OperationUrl", r.OperationURL)
	setString(e, "ErrorCode", r.ErrorCode)
	setString(e, "ErrorMessage", r.ErrorMessage)
	setTime(e, "SourceCreated", r.SourceCreated)
	setTime(e, "SourceExpires", r.SourceExpires)
	setTime(e, "RequestedAt", r.RequestedAt)
	setTime(e, "AuthorizedAt", r.AuthorizedAt)
	setTime(e, "AuthExpiresAt", r.AuthExpiresAt)
	setTime(e, "StartedAt", r.StartedAt)
	setTime(e, "CompletedAt", r.CompletedAt)
	setTime(e, "NextAttemptAt", r.NextAttemptAt)
	setTime(e, "UpdatedAt", r.UpdatedAt)
	setTime(e, "TransientSince", r.TransientSince)
	setTime(e, "CopyExpires", r.CopyExpires)
	setTime(e, "ReservedAt", r.ReservedAt)
	return e
}

func setString(e entity, k, v string) {
	if v != "" {
		e[k] = v
	}
}

func setTime(e entity, k string, t time.Time) {
	if !t.IsZero() {
		e[k] = t.UTC().Format(time.RFC3339Nano)
		e[k+"@odata.type"] = timeType
	}
}

// row is the stored entity as read back.
type row struct {
	ETag          string    `json:"odata.etag"`
	Kind          string    `json:"Kind"`
	SourceID      string    `json:"SourceId"`
	Target        string    `json:"Target"`
	TargetID      string    `json:"TargetId"`
	Status        string    `json:"Status"`
	Attempt       int       `json:"Attempt"`
	FirstAttempt  int       `json:"FirstAttempt"`
	Percent       int       `json:"Percent"`
	OperationURL  string    `json:"OperationUrl"`
	ErrorCode     string    `json:"ErrorCode"`
	ErrorMessage  string    `json:"ErrorMessage"`
	SourceCreated time.Time `json:"SourceCreated"`
	SourceExpires time.Time `json:"SourceExpires"`
	RequestedAt   time.Time `json:"RequestedAt"`
	AuthorizedAt  time.Time `json:"AuthorizedAt"`
	AuthExpiresAt time.Time `json:"AuthExpiresAt"`
	StartedAt     time.Time `json:"StartedAt"`
	CompletedAt   time.Time `json:"CompletedAt"`
	NextAttemptAt time.Time `json:"NextAttemptAt"`
	UpdatedAt     time.Time `json:"UpdatedAt"`
	// Added after the first release; rows written before read them as zero.
	TransientSince time.Time `json:"TransientSince"`
	CopyExpires    time.Time `json:"CopyExpires"`
	ReservedAt     time.Time `json:"ReservedAt"`
	// Added with replication rules; rows written before read them as "" (the legacy source,
	// which was the origin).
	Source string `json:"Source"`
	Origin string `json:"Origin"`
}

func fromJSON(data []byte, etag string) (*replication.Replica, error) {
	var w row
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("store: decode row: %w", err)
	}
	if etag == "" {
		etag = w.ETag
	}
	return &replication.Replica{
		Key:            replication.Key{Kind: replication.Kind(w.Kind), SourceID: w.SourceID, Target: w.Target},
		Source:         w.Source,
		Origin:         w.Origin,
		TargetID:       w.TargetID,
		Status:         replication.Status(w.Status),
		Attempt:        w.Attempt,
		FirstAttempt:   w.FirstAttempt,
		Percent:        w.Percent,
		OperationURL:   w.OperationURL,
		ErrorCode:      w.ErrorCode,
		ErrorMessage:   w.ErrorMessage,
		SourceCreated:  w.SourceCreated.UTC(),
		SourceExpires:  w.SourceExpires.UTC(),
		RequestedAt:    w.RequestedAt.UTC(),
		AuthorizedAt:   w.AuthorizedAt.UTC(),
		AuthExpiresAt:  w.AuthExpiresAt.UTC(),
		StartedAt:      w.StartedAt.UTC(),
		CompletedAt:    w.CompletedAt.UTC(),
		NextAttemptAt:  w.NextAttemptAt.UTC(),
		UpdatedAt:      w.UpdatedAt.UTC(),
		TransientSince: w.TransientSince.UTC(),
		CopyExpires:    w.CopyExpires.UTC(),
		ReservedAt:     w.ReservedAt.UTC(),
		ETag:           etag,
	}, nil
}

// Get reads one replica.
func (t *Tables) Get(ctx context.Context, k replication.Key) (*replication.Replica, error) {
	ctx, cancel := t.deadline(ctx)
	defer cancel()
	resp, err := t.client.GetEntity(ctx, PartitionKey(k.Kind, k.SourceID), k.Target, nil)
	if err != nil {
		if statusOf(err) == http.StatusNotFound {
			return nil, replication.ErrNotFound
		}
		return nil, fmt.Errorf("store: get %s: %w", k, err)
	}
	r, err := fromJSON(resp.Value, string(resp.ETag))
	if err != nil {
		return nil, err
	}
	t.noteRead(r)
	return r, nil
}

// Create inserts a new replica row; a row in flight gets its intent in the index first.
func (t *Tables) Create(ctx context.Context, r *replication.Replica) error {
	ctx, cancel := t.deadline(ctx)
	defer cancel()
	body, err := json.Marshal(toEntity(r))
	if err != nil {
		return err
	}
	wctx, wcancel, err := t.beforeWrite(ctx, r, "")
	if err != nil {
		return err
	}
	defer wcancel()
	resp, err := t.client.AddEntity(wctx, body, nil)
	if err != nil {
		if statusOf(err) == http.StatusConflict {
			return replication.ErrConflict
		}
		return fmt.Errorf("store: create %s: %w", r.Key, err)
	}
	r.ETag = string(resp.ETag)
	if r.Status.InFlight() {
		// A new row out of flight has no intents to drop but what a crashed create left,
		// which listings find dead (its From is no longer the row's ETag).
		t.afterWrite(ctx, r)
	}
	return nil
}

// Update replaces the row if it still has r.ETag. A row moving into flight gets its intent in
// the index first; a row leaving flight loses its intents after the write.
func (t *Tables) Update(ctx context.Context, r *replication.Replica) error {
	ctx, cancel := t.deadline(ctx)
	defer cancel()
	body, err := json.Marshal(toEntity(r))
	if err != nil {
		return err
	}
	wctx, wcancel, err := t.beforeWrite(ctx, r, r.ETag)
	if err != nil {
		return err
	}
	defer wcancel()
	etag := azcore.ETag(r.ETag)
	resp, err := t.client.UpdateEntity(wctx, body, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeReplace})
	if err != nil {
		if s := statusOf(err); s == http.StatusPreconditionFailed || s == http.StatusNotFound {
			return replication.ErrConflict
		}
		return fmt.Errorf("store: update %s: %w", r.Key, err)
	}
	r.ETag = string(resp.ETag)
	t.afterWrite(ctx, r)
	return nil
}

// Delete removes a replica row (operator clean-up); a missing row is not an error.
func (t *Tables) Delete(ctx context.Context, k replication.Key) error {
	ctx, cancel := t.deadline(ctx)
	defer cancel()
	_, err := t.client.DeleteEntity(ctx, PartitionKey(k.Kind, k.SourceID), k.Target, nil)
	if err != nil && statusOf(err) != http.StatusNotFound {
		return fmt.Errorf("store: delete %s: %w", k, err)
	}
	t.dropIntents(ctx, k, "")
	return nil
}

// maxPage is the most rows one listing call returns, and the most one service answer holds.
const maxPage = 1000

// List returns up to limit replicas matching f. The continuation token is opaque: it names the
// last row (or index group) returned, and a token this package did not issue, or one of an
// index listing given with a filter the index does not serve, is replication.ErrInvalidToken.
// Listings of in-flight statuses read the index once it is complete; others query the table.
func (t *Tables) List(ctx context.Context, f replication.Filter, next string, limit int) (replication.Page, error) {
	ctx, cancel := t.deadline(ctx)
	defer cancel()
	if limit <= 0 || limit > maxPage {
		limit = maxPage
	}
	if next == "" {
		if indexServes(f) && t.ensureIndex(ctx) {
			return t.listIndex(ctx, f, "", limit)
		}
		return t.listScan(ctx, f, nil, limit)
	}
	tok, err := decodeToken(next)
	if err != nil {
		return replication.Page{}, err
	}
	if tok.index != nil {
		// The token was issued once the index was complete, so it still is.
		if !indexServes(f) {
			return replication.Page{}, replication.ErrInvalidToken
		}
		return t.listIndex(ctx, f, tok.index.After, limit)
	}
	// A scan started before the index was complete goes on as a scan: it is complete itself.
	return t.listScan(ctx, f, tok.scan, limit)
}

// listScan queries the table, from the continuation from (nil: the start).
func (t *Tables) listScan(ctx context.Context, f replication.Filter, from *[2]string, limit int) (replication.Page, error) {
	opts := &aztables.ListEntitiesOptions{Top: to32(limit)}
	q := filterOf(f)
	opts.Filter = &q
	if from != nil {
		pk, rk := from[0], from[1]
		opts.NextPartitionKey, opts.NextRowKey = &pk, &rk
	}
	pager := t.client.NewListEntitiesPager(opts)
	var page replication.Page
	// A service page may hold fewer than Top rows (or none) with a continuation: keep reading
	// until the page is full or the listing ends.
	for pager.More() && len(page.Replicas) < limit {
		resp, err := pager.NextPage(ctx)
		if err != nil {
			return replication.Page{}, fmt.Errorf("store: list: %w", err)
		}
		for _, v := range resp.Entities {
			r, err := fromJSON(v, "")
			if err != nil {
				return replication.Page{}, err
			}
			t.noteRead(r)
			page.Replicas = append(page.Replicas, *r)
		}
		page.Next = ""
		if resp.NextPartitionKey != nil && *resp.NextPartitionKey != "" {
			page.Next = encodeToken(*resp.NextPartitionKey, deref(resp.NextRowKey))
		}
		if page.Next == "" {
			break
		}
		if len(page.Replicas) >= limit {
			break
		}
		// Ask for only what is still missing, from the continuation.
		pk, rk := *resp.NextPartitionKey, deref(resp.NextRowKey)
		opts.NextPartitionKey, opts.NextRowKey = &pk, &rk
		opts.Top = to32(limit - len(page.Replicas))
		pager = t.client.NewListEntitiesPager(opts)
	}
	return page, nil
}

func to32(n int) *int32 { v := int32(n); return &v }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// filterOf builds the OData filter. Replica rows are told from other rows by their Status.
func filterOf(f replication.Filter) string {
	var parts []string
	switch {
	case f.Kind != "" && f.SourceID != "":
		parts = append(parts, "PartitionKey eq "+quote(PartitionKey(f.Kind, f.SourceID)))
	case f.Kind != "":
		parts = append(parts, "Kind eq "+quote(string(f.Kind)))
	case f.SourceID != "":
		parts = append(parts, "SourceId eq "+quote(f.SourceID))
	}
	if f.Target != "" {
		parts = append(parts, "RowKey eq "+quote(f.Target))
	}
	statuses := f.Status
	if len(statuses) == 0 {
		statuses = replication.Statuses
	}
	var or []string
	for _, s := range statuses {
		or = append(or, "Status eq "+quote(string(s)))
	}
	parts = append(parts, "("+strings.Join(or, " or ")+")")
	return strings.Join(parts, " and ")
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// A table listing's token is the service's continuation, [PartitionKey, RowKey] in JSON; an
// index listing's is {"i": group}. Both are base64url so callers treat them as opaque.
func encodeToken(pk, rk string) string {
	b, _ := json.Marshal([2]string{pk, rk})
	return encodeRaw(b)
}

func encodeRaw(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// token is a decoded continuation: exactly one of scan and index is set.
type token struct {
	scan  *[2]string
	index *indexToken
}

func decodeToken(tok string) (token, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) == 0 {
		return token{}, replication.ErrInvalidToken
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	switch b[0] {
	case '[':
		var v []string
		if dec.Decode(&v) != nil || dec.More() || len(v) != 2 || v[0] == "" {
			return token{}, replication.ErrInvalidToken
		}
		return token{scan: &[2]string{v[0], v[1]}}, nil
	case '{':
		var v indexToken
		// A group ends in '!' and holds no character the index's key parts are not written with.
		if dec.Decode(&v) != nil || dec.More() || !validGroup(v.After) {
			return token{}, replication.ErrInvalidToken
		}
		return token{index: &v}, nil
	}
	return token{}, replication.ErrInvalidToken
}

// validGroup reports whether g could be a group prefix groupOf wrote.
func validGroup(g string) bool {
	body, ok := strings.CutSuffix(g, "!")
	if !ok || len(g) > maxRowKey || strings.Count(body, ":") != 2 {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(".-_~%:", c) >= 0) {
			return false
		}
	}
	return true
}
