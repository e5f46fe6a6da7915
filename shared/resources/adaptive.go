package resources

import (
	"math"
	"sync"
	"time"
)

// Adaptive is the fill rate of one budget (one resource, one kind of call), adjusted to what the
// resource answers. It starts at its ceiling (the configured rate times the budget share). A 429
// means the resource is busier than this budget assumed — more instances of dimirror, the
// customer's own calls, a lower tier — so the rate drops multiplicatively, and the budget holds
// every call until the answer's Retry-After has passed. It then climbs back along a CUBIC curve:
// quickly at first, flat near the rate that drew the 429 (so it lingers where the resource
// stopped saying yes), then faster again to find capacity that has come free, never above the
// ceiling nor below the floor.
//
// The scheme is the AWS SDKs' "adaptive" retry mode (client-side rate limiting with CUBIC
// recovery); see pace.go's package notes for what differs. Its methods are safe for concurrent
// use; the clock is a parameter so tests can drive it.
type Adaptive struct {
	now              func() time.Time
	ceiling, floor   float64
	mu               sync.Mutex
	part             float64   // the part of the budget this instance takes (SetPart); 1 alone
	wMax             float64   // the rate when the last 429 came
	scale            float64   // CUBIC's C for that wMax, in calls per second per s³
	k                float64   // seconds after lastDrop at which the curve is back at wMax
	lastDrop         time.Time // zero: never throttled, the rate is the ceiling
	hold             time.Time // no call leaves before this (Retry-After)
	drops, throttled int64
}

const (
	// adaptiveBeta is the multiplicative decrease, CUBIC's and the AWS SDKs' β.
	adaptiveBeta = 0.7
	// adaptiveRecovery is how long the curve takes to climb back to the rate that drew a 429
	// (CUBIC's K). It sets CUBIC's C relative to that rate (C = wMax·(1−β)/K³), so the curve has
	// the same shape at 1 call per second as at 36: back to 96 % of wMax in half the time, flat
	// around K, then probing above it. The AWS SDKs fix C = 0.4 for rates in the hundreds; at a
	// few calls per second that is back at the rate that drew the 429 within a second or two and
	// draws the next one soon after, and with several instances every one of them must meet a 429
	// once per cycle, so the cycle's length sets the share of calls answered 429. The simulation
	// in adaptive_test.go (several instances, a lower limit, a competing client) chose 60 s.
	adaptiveRecovery = 60 * time.Second
	// adaptiveFloorShare keeps a budget moving under a sustained storm of 429s: at least a tenth
	// of its fair share (alone at S0: 0.38 management calls/s, 0.72 list calls/s). A lower floor
	// let a steady trickle of 429s that says nothing about capacity (a gateway's noise, the
	// fault-injection suite's random 3 %) hold a budget at a call every few seconds, so a scan of
	// the operation list for a lost copy took minutes; eight instances that do not know of each
	// other still stay under the S0 limits at this floor.
	adaptiveFloorShare = 1.0 / 10
	// maxHold bounds how long one Retry-After may stop a budget, against a header that asks for
	// hours: the azcore retry policy gives up on the call long before that anyway.
	maxHold = time.Minute
)

// NewAdaptive is a budget whose rate never exceeds ceiling (calls per second, above zero); nil
// now means time.Now.
func NewAdaptive(ceiling float64, now func() time.Time) *Adaptive {
	if now == nil {
		now = time.Now
	}
	return &Adaptive{now: now, ceiling: ceiling, floor: ceiling * adaptiveFloorShare, part: 1}
}

// SetPart tells the budget it shares the resource with others: part (0 < part ≤ 1) is its fair
// share, e.g. 1/n with n instances of dimirror calling the resource. When the part changes and
// the rate is on the wrong side of part × ceiling — above it when more instances came, below it
// when some left — the curve starts again from there, as after a 429 that left it there: n
// instances do not each begin at the whole budget and meet 429s to learn of each other, and a
// budget cut while an instance that died still counted gets its fair share back as soon as the
// count drops. The ceiling stays whole: the curve climbs from there as usual, so an instance whose
// peers are idle (work is seldom spread evenly) takes the budget they leave, and two that climb
// into each other meet a 429 and back off as before.
func (a *Adaptive) SetPart(part float64) {
	if part <= 0 || part > 1 {
		part = 1
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if part != a.part {
		t := a.now()
		fair, rate := a.ceiling*part, a.rateAt(t)
		if (part < a.part && fair < rate) || (part > a.part && fair > rate) {
			a.restartAt(t, fair)
		}
	}
	a.part = part
}

// restartAt starts the recovery curve from rate at t, as a 429 at rate/β would have.
func (a *Adaptive) restartAt(t time.Time, rate float64) {
	a.wMax = rate / adaptiveBeta // the curve's value right after a drop is β·wMax
	a.k = adaptiveRecovery.Seconds()
	a.scale = a.wMax * (1 - adaptiveBeta) / (a.k * a.k * a.k)
	a.lastDrop = t
}

// Ceiling is the most the budget ever allows.
func (a *Adaptive) Ceiling() float64 { return a.ceiling }

// Rate is the fill rate now.
func (a *Adaptive) Rate() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.rateAt(a.now())
}

func (a *Adaptive) rateAt(t time.Time) float64 {
	if a.lastDrop.IsZero() {
		return a.ceiling
	}
	dt := t.Sub(a.lastDrop).Seconds() - a.k
	r := a.scale*dt*dt*dt + a.wMax
	return math.Min(a.ceiling, math.Max(a.floor*a.part, r))
}

// HoldUntil is when calls may leave again after a Retry-After; a time in the past means now.
func (a *Adaptive) HoldUntil() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.hold
}

// Throttled records a 429 to a call that left at sent, whose answer asked to wait retryAfter
// (zero: it named no time). Every 429 extends the hold; only a call that left after the last
// drop lowers the rate again: calls already on their way when the rate dropped were paced at the
// old rate and say nothing new about the new one (TCP's one reduction per window of data).
func (a *Adaptive) Throttled(sent time.Time, retryAfter time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.now()
	a.throttled++
	if retryAfter > 0 {
		if until := t.Add(min(retryAfter, maxHold)); until.After(a.hold) {
			a.hold = until
		}
	}
	if !a.lastDrop.IsZero() && sent.Before(a.lastDrop) {
		return
	}
	a.drops++
	a.wMax = a.rateAt(t)
	a.k = adaptiveRecovery.Seconds()
	a.scale = a.wMax * (1 - adaptiveBeta) / (a.k * a.k * a.k)
	a.lastDrop = t
}

// AdaptiveStats are a budget's counters, for logs and tests.
type AdaptiveStats struct {
	Rate      float64 // the fill rate now
	Throttled int64   // 429s seen
	Drops     int64   // of which lowered the rate
}

// Stats reads the counters.
func (a *Adaptive) Stats() AdaptiveStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return AdaptiveStats{Rate: a.rateAt(a.now()), Throttled: a.throttled, Drops: a.drops}
}
