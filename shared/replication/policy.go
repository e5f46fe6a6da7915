package replication

import (
	"fmt"
	"time"
)

// Policy is the retry and safety policy of the pipeline.
type Policy struct {
	// MaxAttempts is how many authorizations one run may use before the replica is failed.
	MaxAttempts int
	// RetryBase and RetryMax bound the exponential backoff between attempts.
	RetryBase, RetryMax time.Duration
	// TransientDelay is how long a step waits after a throttled or unavailable service when the
	// service named no Retry-After (when it did, that is the wait); transient errors do not use
	// up attempts.
	TransientDelay time.Duration
	// QuotaWait is how long a replica for a target at its model limit waits before trying again.
	QuotaWait time.Duration
	// AuthMargin: an authorization closer than this to its expiry is renewed before copyTo.
	AuthMargin time.Duration
	// Lease is how long a step's claim on a row keeps other instances off it.
	Lease time.Duration
	// Replace lets dimirror delete a different model that holds the target id (a stale copy of a
	// retrained source) and copy again. Off by default: dimirror never deletes what it cannot prove
	// is its own older copy unless told to.
	Replace bool
	// Workers bounds how many replicas one poll pass advances at once.
	Workers int
	// GiveUpAfter bounds how long a replica keeps retrying transient failures (a throttled,
	// unreachable or deleted resource never spends an attempt) and how long a copy operation may
	// run: past it the replica fails with Unreachable or CopyTimeout, naming what did not answer.
	// The sweep re-drives such failures hourly, so a resource that comes back is caught up.
	GiveUpAfter time.Duration
	// MessageRetryMax caps the backoff of a copy message rescheduled after a transient failure
	// of the copy starter, so a replica moves on within about that long after an outage ends.
	MessageRetryMax time.Duration
	// Follow is how long after copyTo the copy starter keeps checking a copy it started, with
	// check messages scheduled at a fraction of the time the copy has run so far (see
	// CheckDelay); after that only poll passes look at it. Negative: no checks.
	Follow time.Duration
}

// DefaultPolicy is the policy the settings default to.
func DefaultPolicy() Policy {
	return Policy{
		MaxAttempts:     6,
		RetryBase:       30 * time.Second,
		RetryMax:        30 * time.Minute,
		TransientDelay:  5 * time.Second,
		QuotaWait:       30 * time.Minute,
		AuthMargin:      5 * time.Minute,
		Lease:           time.Minute,
		Workers:         8,
		Follow:          time.Minute,
		GiveUpAfter:     4 * time.Hour,
		MessageRetryMax: 30 * time.Second,
	}
}

func (p Policy) withDefaults() Policy {
	d := DefaultPolicy()
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = d.MaxAttempts
	}
	if p.RetryBase <= 0 {
		p.RetryBase = d.RetryBase
	}
	if p.RetryMax <= 0 {
		p.RetryMax = d.RetryMax
	}
	if p.TransientDelay <= 0 {
		p.TransientDelay = d.TransientDelay
	}
	if p.QuotaWait <= 0 {
		p.QuotaWait = d.QuotaWait
	}
	if p.AuthMargin < 0 {
		p.AuthMargin = 0
	}
	if p.Lease <= 0 {
		p.Lease = d.Lease
	}
	if p.Workers <= 0 {
		p.Workers = d.Workers
	}
	if p.Follow == 0 {
		p.Follow = d.Follow
	}
	if p.GiveUpAfter <= 0 {
		p.GiveUpAfter = d.GiveUpAfter
	}
	if p.MessageRetryMax <= 0 {
		p.MessageRetryMax = d.MessageRetryMax
	}
	return p
}

// validate reports a policy no engine can run with (after defaults are filled in).
func (p Policy) validate() error {
	switch {
	case p.RetryBase > p.RetryMax:
		return fmt.Errorf("policy: the retry base %s is longer than the retry maximum %s", p.RetryBase, p.RetryMax)
	case p.GiveUpAfter < p.TransientDelay:
		return fmt.Errorf("policy: giving up after %s is shorter than one transient wait (%s)", p.GiveUpAfter, p.TransientDelay)
	}
	return nil
}

// messageRetryDelay is the wait before the n-th reschedule (n ≥ 1) of a copy message after a
// transient failure: 1 s doubling, at most MessageRetryMax, or the service's Retry-After.
func (p Policy) messageRetryDelay(n int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, p.MessageRetryMax)
	}
	d := time.Second
	for i := 1; i < n && d < p.MessageRetryMax; i++ {
		d *= 2
	}
	return min(d, p.MessageRetryMax)
}

// Backoff is the wait before the n-th retry of a run (n ≥ 1): RetryBase·2^(n-1), at most RetryMax.
func (p Policy) Backoff(n int) time.Duration {
	d := p.RetryBase
	for i := 1; i < n && d < p.RetryMax; i++ {
		d *= 2
	}
	return min(d, p.RetryMax)
}

// CheckDelay is how long after a look at a copy that has run for elapsed the next check comes:
// half of elapsed, from 500 ms to 5 s. A copy of d seconds is then seen done at most d/2 after
// it ends, and at most 5 s (a fixed 5 s poll, the SDKs' default, waits 2.5 s on average), with
// a handful of operation reads for a copy of seconds and one every 5 s for a long one.
func CheckDelay(elapsed time.Duration) time.Duration {
	return min(max(elapsed/2, 500*time.Millisecond), 5*time.Second)
}
