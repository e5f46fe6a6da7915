package resources

import (
	"math"
	"testing"
	"time"

	"github.com/dimirror/dimirror/internal/fakeclock"
	"golang.org/x/time/rate"
)

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func TestAdaptiveStartsAtTheCeiling(t *testing.T) {
	clk := fakeclock.New(epoch)
	a := NewAdaptive(3.84, clk.Now)
	clk.Advance(time.Hour)
	if got := a.Rate(); got != 3.84 {
		t.Fatalf("rate before any 429 = %v, want the ceiling 3.84", got)
	}
	if !a.HoldUntil().IsZero() {
		t.Fatalf("hold before any 429 = %v", a.HoldUntil())
	}
}

// One 429 drops the rate to β times what it was; the rate then climbs back along the CUBIC
// curve, reaches the rate that drew the 429 after K seconds, and never passes the ceiling.
func TestAdaptiveDropAndRecovery(t *testing.T) {
	const ceiling = 4.0
	clk := fakeclock.New(epoch)
	a := NewAdaptive(ceiling, clk.Now)
	a.Throttled(clk.Now(), 0)
	if got := a.Rate(); !near(got, adaptiveBeta*ceiling) {
		t.Fatalf("rate right after a 429 = %v, want %v", got, adaptiveBeta*ceiling)
	}
	prev := a.Rate()
	tests := []struct {
		after time.Duration
		check func(r float64) bool
		want  string
	}{
		{time.Second, func(r float64) bool { return r > prev && r < ceiling }, "climbing, under the ceiling"},
		{adaptiveRecovery / 2, func(r float64) bool { return r > adaptiveBeta*ceiling && r < ceiling }, "still under the ceiling half way"},
		{adaptiveRecovery, func(r float64) bool { return near(r, ceiling) }, "back at the rate that drew the 429 after the recovery time"},
		{10 * adaptiveRecovery, func(r float64) bool { return r == ceiling }, "held at the ceiling long after"},
	}
	var last time.Duration
	for _, tt := range tests {
		clk.Advance(tt.after - last)
		last = tt.after
		r := a.Rate()
		if !tt.check(r) {
			t.Errorf("%v after the 429: rate %v, want %s", tt.after, r, tt.want)
		}
		if r < prev-1e-9 {
			t.Errorf("%v after the 429: rate fell from %v to %v without a 429", tt.after, prev, r)
		}
		prev = r
	}
}

// A 429 met below the ceiling makes that rate the new plateau: the curve flattens there and
// only passes it slowly, probing for capacity that has come free.
func TestAdaptivePlateauAtTheRateThatDrewThe429(t *testing.T) {
	clk := fakeclock.New(epoch)
	a := NewAdaptive(3.84, clk.Now)
	a.Throttled(clk.Now(), 0) // 3.84 → 2.69
	clk.Advance(2 * time.Second)
	at := a.Rate()
	a.Throttled(clk.Now(), 0)
	clk.Advance(adaptiveRecovery)
	if got := a.Rate(); !near(got, at) {
		t.Fatalf("rate %v after the second 429 = %v, want the rate that drew it, %v", adaptiveRecovery, got, at)
	}
	clk.Advance(2 * time.Second)
	if got := a.Rate(); got-at > 0.01*at {
		t.Errorf("2 s past the plateau the rate is %v, more than 1%% over %v: the plateau is not flat", got, at)
	}
}

func TestAdaptiveNeverBelowTheFloor(t *testing.T) {
	clk := fakeclock.New(epoch)
	a := NewAdaptive(5, clk.Now)
	for range 100 {
		a.Throttled(clk.Now(), 0)
		clk.Advance(time.Millisecond)
	}
	if got, floor := a.Rate(), 5*adaptiveFloorShare; got < floor-1e-12 || got > floor*1.01 {
		t.Fatalf("rate after 100 429s = %v, want the floor %v", got, floor)
	}
	if s := a.Stats(); s.Throttled != 100 || s.Drops != 100 {
		t.Errorf("stats %+v, want 100 throttled and 100 drops", s)
	}
}

// Retry-After holds the budget: every 429 extends the hold to its own end, never shortens it,
// and a header asking for hours is capped.
func TestAdaptiveRetryAfterHold(t *testing.T) {
	clk := fakeclock.New(epoch)
	a := NewAdaptive(5, clk.Now)
	tests := []struct {
		retryAfter time.Duration
		wantHold   time.Time
	}{
		{2 * time.Second, epoch.Add(2 * time.Second)},
		{time.Second, epoch.Add(2 * time.Second)}, // shorter: the longer hold stands
		{0, epoch.Add(2 * time.Second)},           // none named: no change
		{5 * time.Second, epoch.Add(5 * time.Second)},
		{10 * time.Hour, epoch.Add(maxHold)},
	}
	for _, tt := range tests {
		a.Throttled(clk.Now(), tt.retryAfter)
		if got := a.HoldUntil(); !got.Equal(tt.wantHold) {
			t.Errorf("Retry-After %v: hold until %v, want %v", tt.retryAfter, got, tt.wantHold)
		}
	}
}

// 429s to calls that left before the last drop were paced at the old rate: they extend the hold
// but do not drop the rate again.
func TestAdaptiveOneDropPerWindow(t *testing.T) {
	clk := fakeclock.New(epoch)
	a := NewAdaptive(4, clk.Now)
	before := clk.Now()
	clk.Advance(100 * time.Millisecond)
	a.Throttled(before, time.Second)
	r := a.Rate()
	a.Throttled(before, 2*time.Second) // in flight when the rate dropped
	if got := a.Rate(); got != r {
		t.Errorf("a second 429 to an earlier call moved the rate from %v to %v", r, got)
	}
	if got := a.HoldUntil(); !got.Equal(clk.Now().Add(2 * time.Second)) {
		t.Errorf("hold %v, want the later Retry-After", got)
	}
	clk.Advance(time.Millisecond)
	a.Throttled(clk.Now(), 0) // sent after the drop: a new signal
	if got := a.Rate(); got >= r {
		t.Errorf("a 429 to a call sent after the drop left the rate at %v (was %v)", got, r)
	}
	if s := a.Stats(); s.Throttled != 3 || s.Drops != 2 {
		t.Errorf("stats %+v, want 3 throttled, 2 drops", s)
	}
}

// simulate runs budgets, each with a backlog of calls, against one resource whose limit is a
// token bucket of limit per second with a second's burst (as the service and didev count), plus
// a competing client calling at a fixed rate that does not adapt. Each 429 names Retry-After 1 s,
// as the service does. It returns dimirror's calls and 429s and the competitor's.
func simulate(instances int, ceiling, limit, competitor float64, d time.Duration) (calls, throttled, cCalls, cThrottled int) {
	clk := fakeclock.New(epoch)
	server := rate.NewLimiter(rate.Limit(limit), int(math.Max(1, math.Ceil(limit))))
	budgets := make([]*Adaptive, instances)
	next := make([]time.Time, instances)
	for i := range budgets {
		budgets[i] = NewAdaptive(ceiling, clk.Now)
		next[i] = epoch.Add(time.Duration(i) * 37 * time.Millisecond) // instances do not start in step
	}
	cNext := epoch
	const step = time.Millisecond
	for now := epoch; now.Before(epoch.Add(d)); now = now.Add(step) {
		clk.Advance(step)
		if competitor > 0 && !now.Before(cNext) {
			cCalls++
			if !server.AllowN(now, 1) {
				cThrottled++
			}
			cNext = cNext.Add(time.Duration(float64(time.Second) / competitor))
		}
		for i, b := range budgets {
			if now.Before(next[i]) || now.Before(b.HoldUntil()) {
				continue
			}
			calls++
			if !server.AllowN(now, 1) {
				throttled++
				b.Throttled(now, time.Second)
			}
			next[i] = now.Add(time.Duration(float64(time.Second) / b.Rate()))
		}
	}
	return calls, throttled, cCalls, cThrottled
}

// The budgets of several instances, a lower limit than configured and a competing client: the
// share of calls answered 429 stays small and the resource's budget is used. Management calls
// only, so the 429 share here is per management call — the strictest count (the benchmarks
// count over every call).
func TestAdaptiveSimulation(t *testing.T) {
	const ceiling = 4.8 * 0.8
	tests := []struct {
		name              string
		instances         int
		limit, competitor float64
		max429, minUse    float64 // dimirror's 429 share, its accepted calls / what was free of the limit
		maxCompetitor429  float64
		duration          time.Duration
		useOfCeiling      bool // the limit is above the ceiling: compare with the ceiling
	}{
		{name: "1 instance S0", instances: 1, limit: 5, max429: 0, minUse: 0.99, useOfCeiling: true},
		{name: "2 instances S0", instances: 2, limit: 5, max429: 0.015, minUse: 0.95},
		{name: "4 instances S0", instances: 4, limit: 5, max429: 0.03, minUse: 0.95},
		{name: "8 instances S0", instances: 8, limit: 5, max429: 0.07, minUse: 0.95},
		{name: "limit 2", instances: 1, limit: 2, max429: 0.02, minUse: 0.9},
		{name: "limit 15", instances: 1, limit: 15, max429: 0, minUse: 0.99, useOfCeiling: true},
		{name: "competitor 1/s", instances: 1, limit: 5, competitor: 1, max429: 0, minUse: 0.99, maxCompetitor429: 0, useOfCeiling: true},
		// A customer taking 3 of 5 calls per second and not backing off: dimirror's ceiling
		// (3.84) oversubscribes the resource, so both meet 429s; dimirror's drop and hold keep
		// the customer's share of them low.
		{name: "competitor 3/s", instances: 1, limit: 5, competitor: 3, max429: 0.015, minUse: 0.9, maxCompetitor429: 0.1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := 300 * time.Second
			calls, throttled, cCalls, cThrottled := simulate(tt.instances, ceiling, tt.limit, tt.competitor, d)
			share := float64(throttled) / float64(calls)
			free := tt.limit - tt.competitor
			if tt.useOfCeiling {
				free = math.Min(free, ceiling)
			}
			use := float64(calls-throttled) / (free * d.Seconds())
			cShare := 0.0
			if cCalls > 0 {
				cShare = float64(cThrottled) / float64(cCalls)
			}
			t.Logf("%d calls, 429 share %.2f%%, use of the free budget %.3f; competitor %d calls, 429 share %.2f%%",
				calls, 100*share, use, cCalls, 100*cShare)
			if share > tt.max429 {
				t.Errorf("429 share %.2f%%, want at most %.2f%%", 100*share, 100*tt.max429)
			}
			if use < tt.minUse {
				t.Errorf("use of the free budget %.3f, want at least %.2f", use, tt.minUse)
			}
			if cShare > tt.maxCompetitor429 {
				t.Errorf("competitor's 429 share %.2f%%, want at most %.2f%%", 100*cShare, 100*tt.maxCompetitor429)
			}
		})
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6*math.Max(1, math.Abs(b)) }

func TestAdaptivePartStartsFromAFairShare(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	a := NewAdaptive(4, func() time.Time { return now })
	a.SetPart(0.25)
	if r := a.Rate(); math.Abs(r-1) > 1e-9 {
		t.Errorf("rate %v right after a quarter part of a ceiling of 4, want 1", r)
	}
	a.SetPart(0.25) // the same count again: no new start
	now = now.Add(adaptiveRecovery)
	if r := a.Rate(); math.Abs(r-1/adaptiveBeta) > 1e-9 {
		t.Errorf("rate %v after the recovery time, want %v (the curve's plateau)", r, 1/adaptiveBeta)
	}
	now = now.Add(10 * adaptiveRecovery)
	if r := a.Rate(); r != 4 {
		t.Errorf("rate %v long after, want the whole ceiling 4 (peers idle: it takes what they leave)", r)
	}
	a.SetPart(1) // alone again, already at the ceiling: nothing to restart
	if r := a.Rate(); r != 4 {
		t.Errorf("rate %v alone, want 4", r)
	}
	a.SetPart(0.125) // eight count, some of them dead instances not yet expired
	if r := a.Rate(); math.Abs(r-0.5) > 1e-9 {
		t.Errorf("rate %v with an eighth, want 0.5", r)
	}
	a.SetPart(0.5) // the dead ones expired: back to the fair share at once, not after a climb
	if r := a.Rate(); math.Abs(r-2) > 1e-9 {
		t.Errorf("rate %v when the count fell to two, want the fair share 2", r)
	}
	a.SetPart(0) // not a part: taken as alone
	if r := a.Rate(); r != 4 {
		t.Errorf("rate %v after SetPart(0), want 4", r)
	}
}
