package replication_test

import (
	"testing"
	"time"

	"github.com/dimirror/dimirror/internal/fakeclock"
	"github.com/dimirror/dimirror/shared/replication"
)

func TestRPOStates(t *testing.T) {
	const rpo = 15 * time.Minute
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	made := func(created, requested, completed time.Duration) replication.Replica {
		return replication.Replica{Status: replication.StatusSucceeded, SourceCreated: t0.Add(created),
			RequestedAt: t0.Add(requested), CompletedAt: t0.Add(completed)}
	}
	waiting := func(st replication.Status, created, requested time.Duration) replication.Replica {
		return replication.Replica{Status: st, SourceCreated: t0.Add(created), RequestedAt: t0.Add(requested)}
	}
	cases := []struct {
		name       string
		r          replication.Replica
		advance    time.Duration // the fake clock's move from t0
		want       replication.RPOState
		missedAt   time.Duration // from t0, when wantMissed
		wantMissed bool
		pending    time.Duration
	}{
		{name: "made within", r: made(0, time.Second, 14*time.Minute), advance: time.Hour, want: replication.RPOMet},
		{name: "made exactly at the objective", r: made(0, time.Second, 15*time.Minute), advance: time.Hour, want: replication.RPOMet},
		{name: "made late", r: made(0, time.Second, 16*time.Minute), advance: time.Hour, want: replication.RPOMissed,
			wantMissed: true, missedAt: 15 * time.Minute},
		{name: "backfill counts from the request", r: made(-72*time.Hour, 0, 10*time.Minute), advance: time.Hour, want: replication.RPOMet},
		{name: "backfill made late", r: made(-72*time.Hour, 0, 20*time.Minute), advance: time.Hour, want: replication.RPOMissed,
			wantMissed: true, missedAt: 15 * time.Minute},
		{name: "in flight, early", r: waiting(replication.StatusCopying, 0, 0), advance: 5 * time.Minute, want: replication.RPOOnTrack, pending: 5 * time.Minute},
		{name: "in flight past half: at risk soon", r: waiting(replication.StatusPending, 0, 0), advance: 8 * time.Minute, want: replication.RPOAtRiskSoon, pending: 8 * time.Minute},
		{name: "in flight past the objective: at risk", r: waiting(replication.StatusAuthorized, 0, 0), advance: 20 * time.Minute, want: replication.RPOAtRisk,
			wantMissed: true, missedAt: 15 * time.Minute, pending: 20 * time.Minute},
		{name: "failed past the objective: at risk", r: waiting(replication.StatusFailed, 0, time.Minute), advance: 2 * time.Hour, want: replication.RPOAtRisk,
			wantMissed: true, missedAt: 15 * time.Minute, pending: 2 * time.Hour},
		{name: "requested after its deadline: missed from the request", r: waiting(replication.StatusPending, 0, 30*time.Minute), advance: 31 * time.Minute,
			want: replication.RPOAtRisk, wantMissed: true, missedAt: 30 * time.Minute, pending: 31 * time.Minute},
		{name: "no clock", r: replication.Replica{Status: replication.StatusPending}, advance: time.Hour, want: replication.RPOUnknown},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := fakeclock.New(t0)
			clock.Advance(c.advance)
			now := clock.Now()
			if got := c.r.RPO(now, rpo); got != c.want {
				t.Fatalf("RPO = %s, want %s", got, c.want)
			}
			if got := c.r.RPO(now, rpo).Missed(); got != c.wantMissed {
				t.Errorf("Missed = %v, want %v", got, c.wantMissed)
			}
			at, ok := c.r.RPOMissedAt(now, rpo)
			if ok != c.wantMissed || (ok && !at.Equal(t0.Add(c.missedAt))) {
				t.Errorf("RPOMissedAt = %v %v, want %v at %v", at, ok, c.wantMissed, t0.Add(c.missedAt))
			}
			if got := c.r.PendingFor(now); got != c.pending {
				t.Errorf("PendingFor = %s, want %s", got, c.pending)
			}
		})
	}
}

// A replica's state moves with the clock: on track, at risk soon, at risk; once made late it
// stays missed, whatever time it is.
func TestRPOAlongTheClock(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := fakeclock.New(t0)
	r := replication.Replica{Status: replication.StatusCopying, SourceCreated: t0, RequestedAt: t0}
	const rpo = 10 * time.Minute
	steps := []struct {
		by   time.Duration
		want replication.RPOState
	}{{time.Minute, replication.RPOOnTrack}, {5 * time.Minute, replication.RPOAtRiskSoon}, {5 * time.Minute, replication.RPOAtRisk}}
	for _, s := range steps {
		clock.Advance(s.by)
		if got := r.RPO(clock.Now(), rpo); got != s.want {
			t.Fatalf("at +%s: %s, want %s", clock.Now().Sub(t0), got, s.want)
		}
	}
	r.Status, r.CompletedAt = replication.StatusSucceeded, clock.Now()
	clock.Advance(48 * time.Hour)
	if got := r.RPO(clock.Now(), rpo); got != replication.RPOMissed {
		t.Fatalf("made late: %s", got)
	}
	if lag, _ := r.Lag(); lag != 11*time.Minute {
		t.Fatalf("lag %s", lag)
	}
}
