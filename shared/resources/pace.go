package resources

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"golang.org/x/time/rate"

	"github.com/dimirror/dimirror/shared/docintel"
)

// Pacer spaces the calls to one resource so they stay under its rate limits, which the
// service counts per resource and per kind of call (S0: management 5 per second, lists 10,
// operation GETs 50): a sweep over thousands of models, or a queue of copies waiting to start,
// waits client-side instead of drawing 429s and Retry-After storms.
//   - management: authorizeCopy, copyTo, delete, build (every call that is not a GET);
//   - list: lists, /info and reads of one model or classifier;
//   - operation: reads of one operation (GET .../operations/{id}, v2.1 copy results).
//
// Each kind's budget adapts to what the resource answers (Adaptive): a 429 lowers its rate and
// holds it for the answer's Retry-After, and the rate climbs back along a CUBIC curve, never
// above the configured rate times the budget share. So several instances of dimirror, a
// resource with a lower limit than configured, or the customer's own calls on the same resource
// cost a few 429s, not a storm of them. Share one Pacer between every client of the same
// resource: the webhook's authorizations and the copy starter's copyTo calls draw on one
// management budget.
//
// Taken from the AWS SDKs' adaptive retry mode: a token bucket whose fill rate drops by β = 0.7
// on a throttling answer and recovers along CUBIC's curve from the rate that drew it. Changed:
// the bucket starts at a known ceiling (the service publishes its limits) instead of unlimited
// until the first 429, and never exceeds it; Retry-After holds the bucket; CUBIC's constant is
// relative to the rate (Adaptive's notes say why); a 429 to a call sent before the last drop
// does not drop again; the floor is a tenth of the fair share rather than 0.5 per second; and
// the rate at a 429 is the fill rate, not a measured send rate (dimirror's callers queue on the
// budget when it matters, so the two agree).
type Pacer struct {
	list, management, operation *budget
}

// Rates are requests per second by kind of call; zero or less paces nothing of that kind.
// Share is the part of each rate dimirror may use (0 < Share ≤ 1; zero means all of it), leaving
// the rest of the resource's budget to the customer's own calls.
type Rates struct {
	List, Management, Operation float64
	Share                       float64
}

// NewPacer paces calls at the given rates times the share. A burst of one: calls leave evenly
// spaced, never in a clump that a gateway counting per second would refuse.
func NewPacer(r Rates) *Pacer {
	share := r.Share
	if share <= 0 || share > 1 {
		share = 1
	}
	return &Pacer{list: newBudget(r.List * share), management: newBudget(r.Management * share), operation: newBudget(r.Operation * share)}
}

// budget is one kind of call's token bucket and its controller.
type budget struct {
	lim *rate.Limiter
	ctl *Adaptive
	// gate lets one caller at a time take a token: the queue of callers waits here, not in
	// reservations the limiter has already timed, so a rate lowered by a 429 applies to the very
	// next call instead of after every call already queued at the old rate.
	gate chan struct{}
	// lastUse is when a call last asked for a token (unix nanoseconds), so the instance can tell
	// the others which budgets it is using.
	lastUse atomic.Int64
}

func newBudget(perSecond float64) *budget {
	if perSecond <= 0 {
		return nil
	}
	return &budget{lim: rate.NewLimiter(rate.Limit(perSecond), 1), ctl: NewAdaptive(perSecond, nil), gate: make(chan struct{}, 1)}
}

// wait takes one token: after any Retry-After hold, at the budget's current rate. It ends with
// ctx.
func (b *budget) wait(ctx context.Context) error {
	b.lastUse.Store(time.Now().UnixNano())
	select {
	case b.gate <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-b.gate }()
	if err := sleepUntil(ctx, b.ctl.HoldUntil()); err != nil {
		return err
	}
	now := time.Now()
	b.lim.SetLimitAt(now, rate.Limit(b.ctl.Rate()))
	r := b.lim.ReserveN(now, 1)
	if err := sleepUntil(ctx, now.Add(r.DelayFrom(now))); err != nil {
		r.Cancel()
		return err
	}
	// A 429 to another caller may have started a hold while this one waited for its token.
	return sleepUntil(ctx, b.ctl.HoldUntil())
}

// sleepUntil waits until t (at once when it has passed) or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ManagementActiveSince reports whether a management call asked this pacer for a token since t.
func (p *Pacer) ManagementActiveSince(t time.Time) bool {
	return p.management != nil && p.management.lastUse.Load() >= t.UnixNano()
}

// SetInstances tells the pacer how many instances of dimirror are making management calls to
// the resource: when that grows, the management budget starts again from 1/n of its ceiling
// (Adaptive.SetPart) instead of learning of the others through 429s. Lists and operation reads
// are left alone: they come mostly from the timers, which run on one instance, and have room.
func (p *Pacer) SetInstances(n int) {
	if p.management == nil || n < 1 {
		return
	}
	p.management.ctl.SetPart(1 / float64(n))
}

// Stats are the budgets' counters by kind (list, management, operation); a kind not paced is
// absent.
func (p *Pacer) Stats() map[string]AdaptiveStats {
	out := map[string]AdaptiveStats{}
	for name, b := range map[string]*budget{"list": p.list, "management": p.management, "operation": p.operation} {
		if b != nil {
			out[name] = b.ctl.Stats()
		}
	}
	return out
}

// Transport wraps next, the transport of a docintel client (docintel.Options.Transport), with the
// pacing; nil next means a client like docintel's default (TLS 1.2 or later, redirects not
// followed, since following one would hand the key to another host).
func (p *Pacer) Transport(next policy.Transporter) policy.Transporter {
	if next == nil {
		next = baseClient()
	}
	return &pacedTransport{p: p, next: next}
}

type pacedTransport struct {
	p    *Pacer
	next policy.Transporter
}

// Do waits for the request's budget (azcore's retries go through here too, so each try
// is paced), then sends it, and tells the budget about a 429. The wait ends with the request's
// context.
func (t *pacedTransport) Do(req *http.Request) (*http.Response, error) {
	b := t.p.budget(req.Method, req.URL.Path)
	if b == nil {
		return t.next.Do(req)
	}
	if err := b.wait(req.Context()); err != nil {
		return nil, err
	}
	sent := time.Now()
	resp, err := t.next.Do(req)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		b.ctl.Throttled(sent, retryAfter(resp.Header, time.Now()))
	}
	return resp, err
}

// retryAfter reads how long a 429 asks to wait: the millisecond headers Azure services send
// (retry-after-ms, x-ms-retry-after-ms), else Retry-After in seconds or as an HTTP date. Zero
// when none is there or it does not parse.
func retryAfter(h http.Header, now time.Time) time.Duration {
	for _, name := range []string{"Retry-After-Ms", "X-Ms-Retry-After-Ms"} {
		if v := h.Get(name); v != "" {
			if ms, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return seconds(ms / 1000)
			}
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		return seconds(s)
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return min(maxHold, at.Sub(now))
	}
	return 0
}

// seconds is s seconds, at most maxHold; zero for anything not positive (NaN included).
func seconds(s float64) time.Duration {
	switch {
	case !(s > 0):
		return 0
	case s >= maxHold.Seconds():
		return maxHold
	}
	return time.Duration(s * float64(time.Second))
}

// budget picks the budget a request counts against: nil for what is not paced.
func (p *Pacer) budget(method, path string) *budget {
	if method != http.MethodGet && method != http.MethodHead {
		return p.management
	}
	lower := strings.ToLower(path)
	if strings.Contains(lower, "/operations/") || strings.Contains(lower, "/copyresults/") {
		return p.operation
	}
	return p.list
}

// baseClient is the HTTP client docintel uses when given no transport.
func baseClient() *http.Client { return docintel.NewHTTPClient() }
