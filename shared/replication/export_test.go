package replication

import "time"

// SetClaimPoll sets how often a delivery waiting on another one's claim reads the row again,
// for the external tests of concurrent deliveries; the returned func restores the old value.
func SetClaimPoll(d time.Duration) (restore func()) {
	old := claimPoll
	claimPoll = d
	return func() { claimPoll = old }
}
