package bench

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/dimirror/dimirror/shared/replication"
	"github.com/dimirror/dimirror/shared/store"
)

// A poll pass lists every replica in flight (replication.Engine.Poll). PollTable measures that
// listing alone — table requests and time — on a table of a given size with a given number of
// replicas in flight, read through the store's in-flight index, and beside it the query the
// listing was before the index (a filter on Status, which Azure Tables answers by scanning
// every row).

// countingTransport counts the table client's HTTP requests.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) Do(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultClient.Do(req)
}

// PollTable is a replica table seeded for the measurement.
type PollTable struct {
	Rows, InFlight int
	Seed           time.Duration // writing the rows (batch transactions of 100)
	Build          time.Duration // the first in-flight listing, which builds the index

	store   *store.Tables
	counter *countingTransport
	raw     *aztables.Client // the same table, for the query of the code before the index
}

// PollPass is what one listing cost.
type PollPass struct {
	Requests int64
	Time     time.Duration
	Listed   int
}

// pollTargets is how many targets each source has in the seeded table: a batch transaction
// holds the rows of one partition (one source), 100 at most.
const pollTargets = 100

// scanPageTimeout bounds one answer of the scan: the service's own limit on a request is 30 s.
const scanPageTimeout = 30 * time.Second

// NewPollTable creates the table name in the Azurite (or storage account) of conn and writes
// rows replicas, inFlight of them copying (spread evenly) and the rest succeeded, then lists
// them once in flight so the index is built.
func NewPollTable(ctx context.Context, conn, name string, rows, inFlight int) (*PollTable, error) {
	if inFlight > rows || rows%pollTargets != 0 && rows > pollTargets {
		return nil, fmt.Errorf("bench: %d rows with %d in flight: want inFlight ≤ rows, rows a multiple of %d", rows, inFlight, pollTargets)
	}
	counter := &countingTransport{}
	st, err := store.Open(ctx, store.Options{ConnectionString: conn, Table: name, Transport: counter})
	if err != nil {
		return nil, err
	}
	svc, err := aztables.NewServiceClientFromConnectionString(conn, nil)
	if err != nil {
		return nil, fmt.Errorf("bench: the table connection string is not valid")
	}
	p := &PollTable{Rows: rows, InFlight: inFlight, store: st, counter: counter, raw: svc.NewClient(name)}
	now := time.Now().UTC()
	every := max(rows/max(inFlight, 1), 1)
	rs := make([]*replication.Replica, 0, rows)
	flying := 0
	for i := range rows {
		r := &replication.Replica{
			Key:    replication.Key{Kind: replication.KindModel, SourceID: fmt.Sprintf("model-%06d", i/pollTargets), Target: fmt.Sprintf("t%03d", i%pollTargets)},
			Status: replication.StatusSucceeded, Attempt: 1, FirstAttempt: 1,
			SourceCreated: now.Add(-time.Hour), RequestedAt: now, CompletedAt: now, UpdatedAt: now,
		}
		r.TargetID = r.SourceID
		if i%every == 0 && flying < inFlight {
			r.Status, r.CompletedAt, r.StartedAt = replication.StatusCopying, time.Time{}, now
			flying++
		}
		rs = append(rs, r)
	}
	start := time.Now()
	if err := st.CreateMany(ctx, rs); err != nil {
		return nil, err
	}
	p.Seed = time.Since(start)
	start = time.Now()
	pass, err := p.Pass(ctx)
	if err != nil {
		return nil, err
	}
	p.Build = time.Since(start)
	if pass.Listed != inFlight {
		return nil, fmt.Errorf("bench: the first listing found %d replicas in flight, want %d", pass.Listed, inFlight)
	}
	return p, nil
}

// Pass lists the replicas in flight as a poll pass does (pages of 1000 to the end).
func (p *PollTable) Pass(ctx context.Context) (PollPass, error) {
	f := replication.Filter{Status: []replication.Status{replication.StatusPending, replication.StatusAuthorized, replication.StatusCopying}}
	before := p.counter.n.Load()
	start := time.Now()
	var out PollPass
	next := ""
	for {
		page, err := p.store.List(ctx, f, next, 1000)
		if err != nil {
			return PollPass{}, err
		}
		out.Listed += len(page.Replicas)
		if next = page.Next; next == "" {
			break
		}
	}
	out.Time = time.Since(start)
	out.Requests = p.counter.n.Load() - before
	return out, nil
}

// ScanPass is the listing as it was before the index: the table queried with the same filter
// on Status, following the service's continuations to the end.
func (p *PollTable) ScanPass(ctx context.Context) (PollPass, error) {
	q := "(Status eq 'pending' or Status eq 'authorized' or Status eq 'copying')"
	top := int32(1000)
	pager := p.raw.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &q, Top: &top})
	start := time.Now()
	var out PollPass
	for pager.More() {
		cctx, cancel := context.WithTimeout(ctx, scanPageTimeout)
		resp, err := pager.NextPage(cctx)
		cancel()
		if err != nil {
			return PollPass{}, fmt.Errorf("bench: scan: %w", err)
		}
		out.Requests++
		out.Listed += len(resp.Entities)
	}
	out.Time = time.Since(start)
	return out, nil
}
