package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"golang.org/x/sync/errgroup"

	"github.com/dimirror/dimirror/shared/replication"
)

// The in-flight index keeps the replicas with work to do findable without scanning the table.
// A filter on Status is a scan of every row in Azure Tables (only PartitionKey and RowKey are
// indexed, and a query returns at most 1,000 rows per answer and stops at partition
// boundaries), so a poll pass over the replicas in flight would cost in proportion to every
// replica ever made. Instead, every write that may put a row in flight first records an
// *intent* in the partition IndexPartition; listings of in-flight statuses read that one
// partition and then each named row by a point read.
//
// An intent is its own entity, RowKey "<kind>:<sourceId>:<target>!<hash of From>", where From
// is the ETag the write starts from ("" for a create). The intents of one replica sort next to
// each other (the '!' sorts below every character a key part is written with), so a listing
// reads each replica once. One entity per starting version, not one per replica, because two
// writers racing on a row start from different versions: with a single entry the loser's
// upsert would overwrite the winner's, and a cleaner could then judge the winner's intent dead.
//
// The rule that keeps every in-flight row listed: a row is only ever moved into flight after an
// intent for the version the write starts from exists, and an intent is deleted only when it
// is dead — its row is not in flight (or gone) and either the row's ETag is no longer the
// intent's From (the If-Match write it announced can never land now) or it is older than
// staleIntent (its write was sent within intentWindow of it, and the service gives up on a
// write after 30 s). Every delete carries the intent's ETag, so an intent written again after
// it was read is never lost. Hence, at any line a process may die:
//   - after the intent, before the row write: the intent is stale; listings skip it and delete
//     it once it is dead;
//   - after the row write, before the intents of a row that left flight are deleted: the same;
//   - a missing intent cannot happen, because the intent is written (and acknowledged) before
//     the row write is sent.
//
// Rows written before the index existed are covered by a one-time backfill: until the marker
// row indexBuiltRow exists, in-flight listings scan as before; the first one that can, records
// an intent for every in-flight row and then writes the marker. Old and new binaries must not
// write the same table at once (a deployment replaces every instance): an old one moves rows
// into flight without intents.

// IndexPartition is the partition of the in-flight index. Its rows have no Status column, so
// replica listings, which always filter on Status, never see them.
const IndexPartition = "_inflight"

const (
	// indexBuiltRow marks the backfill as done. It sorts after every intent (indexEnd).
	indexBuiltRow = "~built"
	// indexEnd is above every intent's RowKey: they start with a kind's letters.
	indexEnd = "~"
	// groupEnd follows a replica's group prefix (which ends in '!') and sorts above its intents,
	// whose suffix is hex.
	groupEnd = "~"

	// intentWindow bounds how long after its intent a row write may still be sent.
	intentWindow = 2 * time.Minute
	// staleIntent is the age past which an intent whose row still has the intent's From cannot
	// announce a write that may land: intentWindow plus the service's 30 s limit on a write,
	// with the rest as margin for clocks of different instances.
	staleIntent = time.Hour

	// readConcurrency bounds the point reads (and intent writes) one call has in flight.
	readConcurrency = 16
	// knownCap bounds the versions remembered as in flight with an intent.
	knownCap = 4096
	// maxRowKey is the service's limit on a RowKey (1 KiB).
	maxRowKey = 1024
)

// inFlightStatuses are the statuses the index serves.
var inFlightStatuses = []replication.Status{replication.StatusPending, replication.StatusAuthorized, replication.StatusCopying}

// escapeKeyPart writes a key part with letters, digits and . _ - ~ only, escaping anything else
// as %XX: the result holds no ':' (the parts' separator), no '!' (the group's end) and none of
// the characters a RowKey may not hold.
func escapeKeyPart(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// groupOf is the RowKey prefix every intent of k starts with.
func groupOf(k replication.Key) string {
	return escapeKeyPart(string(k.Kind)) + ":" + escapeKeyPart(k.SourceID) + ":" + escapeKeyPart(k.Target) + "!"
}

func intentRowKey(k replication.Key, from string) (string, error) {
	sum := sha256.Sum256([]byte(from))
	rk := groupOf(k) + hex.EncodeToString(sum[:8])
	if len(rk) > maxRowKey {
		return "", fmt.Errorf("store: the key %s is too long for the in-flight index", k)
	}
	return rk, nil
}

// intent is one index entity as read.
type intent struct {
	RowKey   string    `json:"RowKey"`
	ETag     string    `json:"odata.etag"`
	Kind     string    `json:"Kind"`
	SourceID string    `json:"SourceId"`
	Target   string    `json:"Target"`
	From     string    `json:"From"`
	Since    time.Time `json:"Since"`
}

func (in *intent) key() replication.Key {
	return replication.Key{Kind: replication.Kind(in.Kind), SourceID: in.SourceID, Target: in.Target}
}

// writeIntent records that a write of k starting from the row version from (its ETag, "" for a
// create) may put the row in flight. It must be acknowledged before that write is sent.
func (t *Tables) writeIntent(ctx context.Context, k replication.Key, from string) error {
	rk, err := intentRowKey(k, from)
	if err != nil {
		return err
	}
	e := entity{
		"PartitionKey": IndexPartition,
		"RowKey":       rk,
		"Kind":         string(k.Kind),
		"SourceId":     k.SourceID,
		"Target":       k.Target,
		"From":         from,
	}
	setTime(e, "Since", t.now())
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := t.client.UpsertEntity(ctx, body, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		return fmt.Errorf("store: index %s: %w", k, err)
	}
	return nil
}

// dead reports whether an intent of a row that is not in flight (current is the row's ETag, ""
// when the row is gone) can no longer announce a write that puts the row in flight.
func (t *Tables) dead(in *intent, current string) bool {
	return !sameETag(in.From, current) || t.now().Sub(in.Since) > staleIntent
}

// sameETag compares two ETags of a row, one of which may have come from an entity's
// odata.etag and the other from an ETag header: the service writes both percent-encoded, and
// comparing them decoded keeps a difference in that encoding from judging a live intent dead.
func sameETag(a, b string) bool {
	if a == b {
		return true
	}
	da, errA := url.PathUnescape(a)
	db, errB := url.PathUnescape(b)
	return errA == nil && errB == nil && da == db
}

// deleteIntent removes an intent if it is unchanged since it was read. A lost race or an
// error leaves it for the next reader: a stale intent costs a point read, never a wrong answer.
func (t *Tables) deleteIntent(ctx context.Context, in *intent) {
	match := azcore.ETag(in.ETag)
	_, _ = t.client.DeleteEntity(ctx, IndexPartition, in.RowKey, &aztables.DeleteEntityOptions{IfMatch: &match})
}

// dropIntents deletes the dead intents of k after a write left the row out of flight (current
// is its new ETag) or deleted it (current ""). Best effort, for the same reason as deleteIntent:
// the write itself has happened, and a failure here must not make its caller think otherwise.
func (t *Tables) dropIntents(ctx context.Context, k replication.Key, current string) {
	g := groupOf(k)
	q := "PartitionKey eq " + quote(IndexPartition) + " and RowKey gt " + quote(g) + " and RowKey lt " + quote(g+groupEnd)
	pager := t.client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &q})
	for pager.More() {
		resp, err := pager.NextPage(ctx)
		if err != nil {
			return
		}
		for _, v := range resp.Entities {
			var in intent
			if json.Unmarshal(v, &in) != nil {
				continue
			}
			if t.dead(&in, current) {
				t.deleteIntent(ctx, &in)
			}
		}
	}
}

// afterWrite keeps the index after a successful write of r: an in-flight version is
// remembered (its intent exists), a row out of flight loses its dead intents.
func (t *Tables) afterWrite(ctx context.Context, r *replication.Replica) {
	if r.Status.InFlight() {
		t.known.add(r.Key, r.ETag)
		return
	}
	t.dropIntents(ctx, r.Key, r.ETag)
}

// beforeWrite records the intent a write of r starting from version from needs, unless the
// row is moving in flight to in flight from a version known to have one (its intent exists:
// intents are only deleted when their row is out of flight). It returns the context the row
// write must be sent under: bounded by intentWindow after the intent, so that an intent older
// than staleIntent cannot belong to a write still on its way.
func (t *Tables) beforeWrite(ctx context.Context, r *replication.Replica, from string) (context.Context, context.CancelFunc, error) {
	if !r.Status.InFlight() || (from != "" && t.known.has(r.Key, from)) {
		return ctx, func() {}, nil
	}
	start := time.Now()
	if err := t.writeIntent(ctx, r.Key, from); err != nil {
		return nil, nil, err
	}
	wctx, cancel := context.WithDeadline(ctx, start.Add(intentWindow))
	return wctx, cancel, nil
}

// knownSet remembers row versions (key and ETag: an ETag is a time stamp, so two rows may share
// one) read or written in flight while the index was complete, so a write from one of them
// needs no intent. It only ever saves a request: a version it forgot gets an intent again.
type knownSet struct {
	mu sync.Mutex
	m  map[replication.Key]string
}

func (s *knownSet) add(k replication.Key, etag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil || len(s.m) >= knownCap {
		s.m = make(map[replication.Key]string)
	}
	s.m[k] = etag
}

func (s *knownSet) has(k replication.Key, etag string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k] == etag && etag != ""
}

// noteRead remembers an in-flight row read once the index is complete: every in-flight row has
// an intent then.
func (t *Tables) noteRead(r *replication.Replica) {
	if r.Status.InFlight() && t.built.Load() {
		t.known.add(r.Key, r.ETag)
	}
}

// indexServes reports whether the index can answer f: statuses in flight only, and no source
// (one source's rows are one partition; the query of that partition is as cheap).
func indexServes(f replication.Filter) bool {
	if len(f.Status) == 0 || f.SourceID != "" {
		return false
	}
	for _, s := range f.Status {
		if !s.InFlight() {
			return false
		}
	}
	return true
}

// ensureIndex reports whether the index is complete, building it first when it is not and no
// other call of this process is building it. A failed build leaves no marker: the caller scans,
// and the next in-flight listing tries again (recording an intent twice is harmless).
func (t *Tables) ensureIndex(ctx context.Context) bool {
	if t.built.Load() {
		t.rebackfill(ctx)
		return true
	}
	_, err := t.client.GetEntity(ctx, IndexPartition, indexBuiltRow, nil)
	if err == nil {
		// Built by another process: trusted now, checked against the rows within the hour
		// (a scan at every cold start would cost a consumption plan more than it saves).
		t.backfilled.Store(t.now().UnixNano())
		t.built.Store(true)
		return true
	}
	if statusOf(err) != http.StatusNotFound {
		t.log.WarnContext(ctx, "in-flight index: reading its marker failed; listing by a scan", "err", err.Error())
		return false
	}
	if !t.building.TryLock() {
		return false
	}
	defer t.building.Unlock()
	if err := t.backfill(ctx); err != nil {
		t.log.WarnContext(ctx, "in-flight index: the backfill failed; listing by a scan until it completes", "err", err.Error())
		return false
	}
	body, _ := json.Marshal(entity{"PartitionKey": IndexPartition, "RowKey": indexBuiltRow, "BuiltAt": t.now().UTC().Format(time.RFC3339Nano), "BuiltAt@odata.type": timeType})
	if _, err := t.client.AddEntity(ctx, body, nil); err != nil && statusOf(err) != http.StatusConflict {
		t.log.WarnContext(ctx, "in-flight index: writing its marker failed; listing by a scan", "err", err.Error())
		return false
	}
	t.built.Store(true)
	t.backfilled.Store(t.now().UnixNano())
	t.log.InfoContext(ctx, "in-flight index built")
	return true
}

// rebackfillEvery is how often a process checks the index against the rows once it is built:
// one scan an hour instead of one every poll pass.
const rebackfillEvery = time.Hour

// rebackfill records intents for the rows in flight again when this process has not done so for
// rebackfillEvery (and no other call of it is doing so). A failure is logged; the next listing
// after the interval tries again.
func (t *Tables) rebackfill(ctx context.Context) {
	last := time.Unix(0, t.backfilled.Load())
	if t.now().Sub(last) < rebackfillEvery || !t.building.TryLock() {
		return
	}
	defer t.building.Unlock()
	if err := t.backfill(ctx); err != nil {
		t.log.WarnContext(ctx, "in-flight index: the periodic check against the rows failed; trying again at the next listing after the interval", "err", err.Error())
		return
	}
	t.backfilled.Store(t.now().UnixNano())
}

// backfill records an intent for every row in flight, from the version read. A row that moves
// on meanwhile is covered either way: into or within flight by its writer's own intent, out of
// flight by its intent being dead (From is no longer its ETag).
func (t *Tables) backfill(ctx context.Context) error {
	q := filterOf(replication.Filter{Status: inFlightStatuses})
	sel := "Kind,SourceId,Target,Status"
	pager := t.client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &q, Select: &sel, Top: to32(maxPage)})
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readConcurrency)
	for pager.More() {
		resp, err := pager.NextPage(gctx)
		if err != nil {
			_ = g.Wait()
			return fmt.Errorf("store: list rows in flight: %w", err)
		}
		for _, v := range resp.Entities {
			r, err := fromJSON(v, "")
			if err != nil {
				_ = g.Wait()
				return err
			}
			g.Go(func() error { return t.writeIntent(gctx, r.Key, r.ETag) })
		}
	}
	return g.Wait()
}

// indexToken is the continuation of an index listing: the group of the last replica returned.
type indexToken struct {
	After string `json:"i"`
}

// listIndex answers an in-flight listing from the index: the intents after the token, one
// point read per replica, rows not in flight (or of another status) left out, and dead intents
// deleted on the way.
func (t *Tables) listIndex(ctx context.Context, f replication.Filter, after string, limit int) (replication.Page, error) {
	q := "PartitionKey eq " + quote(IndexPartition) + " and RowKey lt " + quote(indexEnd)
	if after != "" {
		q += " and RowKey gt " + quote(after+groupEnd)
	}
	if f.Kind != "" {
		q += " and Kind eq " + quote(string(f.Kind))
	}
	if f.Target != "" {
		q += " and Target eq " + quote(f.Target)
	}
	pager := t.client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &q, Top: to32(maxPage)})
	var page replication.Page
	last := after
	for pager.More() {
		resp, err := pager.NextPage(ctx)
		if err != nil {
			return replication.Page{}, fmt.Errorf("store: list the in-flight index: %w", err)
		}
		groups, err := groupIntents(resp.Entities, last)
		if err != nil {
			return replication.Page{}, err
		}
		// Each group yields at most one replica: a chunk of as many groups as the page still
		// has room for never overfills it, and no row is read that the page cannot take.
		for len(groups) > 0 {
			n := min(len(groups), limit-len(page.Replicas))
			chunk := groups[:n]
			groups = groups[n:]
			rows, err := t.readGroups(ctx, chunk)
			if err != nil {
				return replication.Page{}, err
			}
			for i, r := range rows {
				last = chunk[i].prefix
				if r != nil && matches(f, r) {
					page.Replicas = append(page.Replicas, *r)
				}
			}
			if len(page.Replicas) == limit {
				if len(groups) > 0 || pager.More() {
					page.Next = encodeIndexToken(last)
				}
				return page, nil
			}
		}
	}
	return page, nil
}

// group is the intents of one replica, in RowKey order.
type group struct {
	prefix  string
	intents []intent
}

// groupIntents splits one answer of the index into replicas. A replica whose intents straddle
// two answers was handled with the first (skip names it), so its rest is passed over.
func groupIntents(entities [][]byte, skip string) ([]group, error) {
	var gs []group
	for _, v := range entities {
		var in intent
		if err := json.Unmarshal(v, &in); err != nil {
			return nil, fmt.Errorf("store: decode an index entry: %w", err)
		}
		i := strings.LastIndexByte(in.RowKey, '!')
		if i < 0 || in.Kind == "" {
			continue // not an intent
		}
		prefix := in.RowKey[:i+1]
		if prefix == skip {
			continue
		}
		if n := len(gs); n > 0 && gs[n-1].prefix == prefix {
			gs[n-1].intents = append(gs[n-1].intents, in)
			continue
		}
		gs = append(gs, group{prefix: prefix, intents: []intent{in}})
	}
	return gs, nil
}

// readGroups reads the row of each group (nil when it is not in flight or gone), at most
// readConcurrency at a time, and deletes the dead intents of rows out of flight.
func (t *Tables) readGroups(ctx context.Context, gs []group) ([]*replication.Replica, error) {
	rows := make([]*replication.Replica, len(gs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readConcurrency)
	for i := range gs {
		g.Go(func() error {
			k := gs[i].intents[0].key()
			r, err := t.Get(gctx, k)
			current := ""
			switch {
			case errors.Is(err, replication.ErrNotFound):
			case err != nil:
				return err
			case r.Status.InFlight():
				rows[i] = r
				return nil
			default:
				current = r.ETag
			}
			for j := range gs[i].intents {
				if in := &gs[i].intents[j]; t.dead(in, current) {
					t.deleteIntent(gctx, in)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return rows, nil
}

// matches applies f to a row the index named (the index query already applied kind and target;
// they are checked again so an entry written by hand cannot widen an answer).
func matches(f replication.Filter, r *replication.Replica) bool {
	return slices.Contains(f.Status, r.Status) &&
		(f.Kind == "" || r.Kind == f.Kind) &&
		(f.Target == "" || r.Target == f.Target) &&
		(f.SourceID == "" || r.SourceID == f.SourceID)
}

func encodeIndexToken(after string) string {
	b, _ := json.Marshal(indexToken{After: after})
	return encodeRaw(b)
}
