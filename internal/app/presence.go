package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/dimirror/dimirror/shared/store"
)

// Instances of dimirror share each resource's budget. Every instance announces itself in the
// table (a presence row) with the resources it made management calls to lately, and counts the
// others; each resource's pacer then gives this instance 1/n of that resource's management
// budget, n the instances making such calls to it. Counting only the instances that use a
// resource matters on Flex Consumption, where the HTTP functions (authorizations, on the targets)
// and the copy starter (copyTo, on the source) scale on instances of their own: an idle instance
// takes no part. Without it, n instances each start at the whole budget and learn of each other
// only through 429s — budget taken from the customer's own calls. The adaptive budgets still
// handle what the count cannot see (a customer's calls, a lower limit, an instance that just
// started).
const (
	presenceEvery = 5 * time.Second  // how often an instance announces itself and counts
	presenceAlive = 15 * time.Second // an instance not seen for this long is gone (three beats missed)
)

// presenceTable is what presence needs of the table.
type presenceTable interface {
	Heartbeat(ctx context.Context, id string, now time.Time, active []string) error
	LiveInstances(ctx context.Context, since, now time.Time) (store.Instances, error)
	Leave(ctx context.Context, id string) error
}

var _ presenceTable = (*store.Tables)(nil)

// presence announces the instance every presenceEvery until ctx ends and keeps the pacers told
// how many instances are alive. A failure is logged; the pacers keep the last count (the
// adaptive budgets cover the gap).
func (a *App) presence(ctx context.Context, table presenceTable, every time.Duration) {
	if a.pacers == nil || table == nil {
		return
	}
	id := instanceID()
	last := 0
	beat := func() {
		bctx, cancel := context.WithTimeout(ctx, every)
		defer cancel()
		now := time.Now()
		active := a.pacers.activeSince(now.Add(-presenceAlive))
		if err := table.Heartbeat(bctx, id, now, active); err != nil {
			if ctx.Err() == nil {
				a.Log.WarnContext(ctx, "announcing this instance failed; the pacers keep the last count", "err", err.Error())
			}
			return
		}
		in, err := table.LiveInstances(bctx, now.Add(-presenceAlive), now)
		if err != nil {
			if ctx.Err() == nil {
				a.Log.WarnContext(ctx, "counting the instances failed; the pacers keep the last count", "err", err.Error())
			}
			return
		}
		if n := max(in.Live, 1); n != last {
			a.Log.InfoContext(ctx, "instances alive", "instances", n, "instance", id)
			last = n
		}
		a.pacers.share(in.ActiveOn, active)
	}
	beat()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// A stop: the others stop counting this instance at once.
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), every)
			if err := table.Leave(lctx, id); err != nil {
				a.Log.WarnContext(lctx, "removing this instance's presence failed; it ages out", "err", err.Error())
			}
			cancel()
			return
		case <-t.C:
			beat()
		}
	}
}

// instanceID names this process among the instances.
func instanceID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand never fails on Linux; a zero id would still be one id
	return hex.EncodeToString(b)
}
