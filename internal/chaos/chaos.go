// Package chaos is dimirror's fault-injection suite: many replications through two `dimirror run`
// instances while didev injects throttling, server errors, connection resets, failed copies and
// expired authorizations, devbus expires locks and drops connections, and the instances are
// killed (SIGKILL) and restarted at random points. At the end it checks the invariants a DR tool
// is trusted for: every replica succeeded (or failed with the cause injected on purpose), every
// target model is there exactly once, no authorization was spent twice, no message was lost or
// dead-lettered without a reason, and no secret reached a log line. The same code runs the
// short variant (go test) and the full one (make chaos).
package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dimirror/dimirror/emulators/devbus"
	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/internal/devstack"
	"github.com/dimirror/dimirror/internal/harness"
	"github.com/dimirror/dimirror/internal/testenv"
	"github.com/dimirror/dimirror/shared/replication"
)

// Targets are the stack's target resources.
var Targets = []string{"westus2", "eastus"}

// ConflictTarget holds, under each conflict id, a different model that dimirror must not
// replace: replicas of conflict ids there are expected to fail with TargetExists.
const ConflictTarget = "eastus"

// Config shapes a run.
type Config struct {
	Seed uint64
	// Models are requested through the webhook, each into every target; Conflicts more are
	// requested whose id ConflictTarget already uses for a different model (the permanent
	// failure injected on purpose).
	Models, Conflicts int
	Instances         int
	// Kills is how many times a random instance is killed with SIGKILL and restarted, at
	// random points between KillFrom and KillUntil (from the start of the run); devbus faults
	// are injected in the same window.
	Kills               int
	KillFrom, KillUntil time.Duration
	// RequestWindow spreads the webhook requests.
	RequestWindow time.Duration
	// BusFaults is how many devbus faults (lock expiry, dropped connections, detached receivers)
	// are injected at random points of the kill window.
	BusFaults int
	Faults    didev.Faults
	// RateLimits keeps didev's S0 request limits on (429s and Retry-After beyond the injected ones).
	RateLimits bool
	// MaxAttempts is DIMIRROR_MAX_ATTEMPTS: with the copy-fail and expire-auth rates it decides
	// how unlikely a replica is to run out of attempts.
	MaxAttempts int
	// Settle bounds the wait for every replica to reach succeeded or failed.
	Settle time.Duration
	// Outage is the partial-outage phase: from OutageAt, for Outage, OutageShare of the calls to
	// OutageResource fail with 503 (didev's SetOutage). Recovery is the invariant's bound: every
	// replica must have succeeded (or failed on purpose) within it after the last fault of any
	// kind (the outage's end, a kill, a bus fault). Transient failures are retried within seconds
	// of an outage's end (the copy starter reschedules its message with a back-off of at most
	// 30 s), but a copy message a kill or a lost lock took away waits, by design, for its
	// authorization's expiry (AuthTTL), when the poller renews it: the bound is that plus a
	// minute, and the report gives the time measured.
	Outage, OutageAt, Recovery time.Duration
	// AuthTTL is how long didev's copy authorizations live (an hour in the service): a replica
	// whose copy message was dead-lettered waits that long for the poller to renew it.
	AuthTTL        time.Duration
	OutageResource string
	OutageShare    float64

	Binary   string // dimirror; "" builds it into WorkDir
	WorkDir  string // logs, didev's data, the binary
	Progress io.Writer
}

// DefaultFaults are the service faults of both variants. With MaxAttempts 8, a replica runs out
// of attempts only if 8 authorizations in a row expire or fail their copy: (0.08+0.05)^8 ≈ 8e-8.
// Lost answers (reset-after) are among them: the request is handled, the answer never comes.
// A copyTo whose answer was lost must not be sent again with the same authorization; the
// copy starter finds the copy in the source's operations instead.
var DefaultFaults = didev.Faults{HTTP429: 0.03, HTTP500: 0.03, Reset: 0.02, ResetAfter: 0.02, CopyFail: 0.08, ExpireAuth: 0.05}

// Short is the variant `go test ./...` runs: about 50 replications and one kill, which falls
// after the requests are in, among copies, polls and retries. A kill in the middle of a claimed
// step delays its replica until the claim lapses (DIMIRROR_CLAIM_LEASE, 20 s in the local stack).
// Kills in the middle of webhooks are the full variant's.
func Short(seed uint64) Config {
	return Config{
		Seed: seed, Models: 24, Conflicts: 2, Instances: 2, Kills: 1, BusFaults: 3,
		RequestWindow: 6 * time.Second, KillFrom: 7 * time.Second, KillUntil: 16 * time.Second,
		Faults: DefaultFaults, MaxAttempts: 8, Settle: 4 * time.Minute,
		// 90 s: a run that lost a copy message ends within about 2 minutes, not 4, in make test.
		AuthTTL: 90 * time.Second, Recovery: 90*time.Second + time.Minute,
		Outage: 12 * time.Second, OutageAt: 7 * time.Second, OutageResource: "source", OutageShare: 0.9,
	}
}

// Full is `make chaos`: more than 500 replications under didev's S0 rate limits, kills at any
// point of the run, webhooks included.
func Full(seed uint64) Config {
	return Config{
		Seed: seed, Models: 255, Conflicts: 5, Instances: 2, Kills: 12, BusFaults: 18,
		RequestWindow: 60 * time.Second, KillFrom: 0, KillUntil: 100 * time.Second,
		Faults: DefaultFaults, RateLimits: true, MaxAttempts: 8, Settle: 12 * time.Minute,
		// After the requests are in (a webhook needs the source), among copies and polls.
		AuthTTL: 3 * time.Minute, Recovery: 3*time.Minute + time.Minute,
		Outage: 30 * time.Second, OutageAt: 62 * time.Second, OutageResource: "source", OutageShare: 0.9,
	}
}

// Replications is how many replicas the run requests.
func (c Config) Replications() int { return (c.Models + c.Conflicts) * len(Targets) }

// Report is what a run did and found.
type Report struct {
	Seed         uint64
	Replications int
	Succeeded    int
	Failed       map[string]int // by error code
	Unsettled    map[string]int // replicas still in flight at the end, by status
	Faults       map[string]int64
	Kills        int
	Crashes      int // instance lives that ended on their own
	Elapsed      time.Duration
	// Recovered is how long after the last fault the last replica settled (0 when it settled
	// before the last fault ended).
	Recovered  time.Duration
	Violations []string
}

// Summary is the one-line account of a run.
func (r Report) Summary() string {
	outcome := "PASS"
	if len(r.Violations) > 0 {
		outcome = fmt.Sprintf("FAIL (%d violations)", len(r.Violations))
	}
	unsettled := ""
	if len(r.Unsettled) > 0 {
		unsettled = ", unsettled " + kv(r.Unsettled)
	}
	return fmt.Sprintf("chaos seed=%d: %d replications, %d succeeded, failed %s%s; faults %s; kills %d; last replica settled %s after the last fault; outcome %s in %s",
		r.Seed, r.Replications, r.Succeeded, kv(r.Failed), unsettled, kv(r.Faults), r.Kills, r.Recovered.Round(100*time.Millisecond), outcome, r.Elapsed.Round(time.Second))
}

func kv[V int | int64](m map[string]V) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

const queueName = "copy-requests"

// authMargin is the margin before an authorization's expiry within which dimirror renews it
// rather than copies, well inside the runs' short authorization lifetimes.
const authMargin = 15 * time.Second

func modelID(i int) string    { return fmt.Sprintf("chaos-%04d", i) }
func conflictID(i int) string { return fmt.Sprintf("clash-%03d", i) }

// run is one chaos run in progress.
type run struct {
	cfg       Config
	rng       *rand.Rand
	rngMu     sync.Mutex
	st        *harness.Stack
	instances []*harness.Instance
	started   time.Time

	mu         sync.Mutex
	kills      int
	busInjects map[string]int64
	lastFault  time.Time // the end of the last injected fault (outage, kill, bus fault)
	errs       []error   // setup and harness failures (not invariant violations)
}

func (r *run) logf(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "chaos %6s  "+format+"\n", append([]any{time.Since(r.started).Round(100 * time.Millisecond)}, args...)...)
	}
}

// within draws a uniform duration in [0, d).
func (r *run) within(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	r.rngMu.Lock()
	defer r.rngMu.Unlock()
	return time.Duration(r.rng.Int64N(int64(d)))
}

func (r *run) intN(n int) int {
	r.rngMu.Lock()
	defer r.rngMu.Unlock()
	return r.rng.IntN(n)
}

func (r *run) fail(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

// Run performs a chaos run. The error is for a run that could not be carried out (the stack did
// not start, the binary did not build); broken invariants are the report's Violations.
func Run(ctx context.Context, cfg Config) (Report, error) {
	rep := Report{Seed: cfg.Seed, Replications: cfg.Replications(), Failed: map[string]int{}, Unsettled: map[string]int{}}
	if cfg.Models < 1 || cfg.Instances < 1 || cfg.Settle <= 0 || cfg.WorkDir == "" {
		return rep, fmt.Errorf("chaos: config needs Models, Instances, Settle and WorkDir: %+v", cfg)
	}
	r := &run{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed)), started: time.Now(), busInjects: map[string]int64{}}
	bin, err := harness.Binary(ctx, cfg.Binary, filepath.Join(cfg.WorkDir, "bin"))
	if err != nil {
		return rep, err
	}
	if err := r.startStack(ctx); err != nil {
		return rep, err
	}
	defer r.st.Close()
	logDir := filepath.Join(cfg.WorkDir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return rep, err
	}
	for i := range cfg.Instances {
		in := &harness.Instance{Name: fmt.Sprintf("dimirror%d", i+1), Binary: bin, Settings: r.st.Settings, LogDir: logDir}
		r.instances = append(r.instances, in)
		if _, err := in.Start(ctx); err != nil {
			r.stopAll()
			return rep, err
		}
	}
	defer r.stopAll()
	r.logf("seed %d: %d replications through %d instances; faults %s; %d kills, %d bus faults",
		cfg.Seed, cfg.Replications(), cfg.Instances, cfg.Faults, cfg.Kills, cfg.BusFaults)

	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); r.requestAll(ctx) }()
	go func() { defer wg.Done(); r.killer(ctx) }()
	go func() { defer wg.Done(); r.busFaults(ctx) }()
	go func() { defer wg.Done(); r.outage(ctx) }()
	wg.Wait()
	// A replica requested after the last fault owes nothing to it: the recovery clock starts at
	// whichever came last, the last fault or the last webhook answered.
	r.mu.Lock()
	if now := time.Now(); now.After(r.lastFault) {
		r.lastFault = now
	}
	r.mu.Unlock()
	if len(r.errs) > 0 {
		return rep, fmt.Errorf("chaos: %v", r.errs[0])
	}
	r.logf("requests sent, kills done; waiting up to %s for every replica to settle", cfg.Settle)
	sctx, cancel := context.WithTimeout(ctx, cfg.Settle)
	defer cancel()
	lastLog := time.Now()
	rows, settleErr := r.st.WaitSettled(sctx, cfg.Replications(), 500*time.Millisecond, func(c map[replication.Status]int) {
		if time.Since(lastLog) > 15*time.Second {
			lastLog = time.Now()
			r.logf("rows %v", c)
		}
	})
	qs := r.drainQueue(ctx)
	r.stopAll()
	rep.Elapsed = time.Since(r.started)

	obs, err := r.observe(rows, settleErr, qs)
	if err != nil {
		return rep, err
	}
	rep.Violations = obs.check()
	rep.Crashes = obs.crashes
	var lastSettled time.Time
	for _, row := range rows {
		if row.CompletedAt.After(lastSettled) {
			lastSettled = row.CompletedAt
		}
	}
	r.mu.Lock()
	lastFault := r.lastFault
	r.mu.Unlock()
	if !lastFault.IsZero() && lastSettled.After(lastFault) {
		rep.Recovered = lastSettled.Sub(lastFault)
	}
	if cfg.Recovery > 0 && rep.Recovered > cfg.Recovery {
		rep.Violations = append(rep.Violations, fmt.Sprintf("the last replica settled %s after the last fault, more than the %s bound",
			rep.Recovered.Round(100*time.Millisecond), cfg.Recovery))
	}
	for _, row := range rows {
		switch row.Status {
		case replication.StatusSucceeded:
			rep.Succeeded++
		case replication.StatusFailed:
			rep.Failed[row.ErrorCode]++
		default:
			rep.Unsettled[string(row.Status)]++
		}
	}
	rep.Faults = obs.faultCounts()
	r.mu.Lock()
	rep.Kills = r.kills
	for k, v := range r.busInjects {
		rep.Faults[k] = v
	}
	r.mu.Unlock()
	return rep, nil
}

// observe gathers what the invariants are checked against: the rows, the queue, didev's state
// and counters, and the secrets found in every instance's logs.
func (r *run) observe(rows []replication.Replica, settleErr error, qs devbus.QueueStats) (*observation, error) {
	obs := &observation{
		cfg:      r.cfg,
		rows:     rows,
		settle:   settleErr,
		queue:    qs,
		didev:    r.st.DI.Stats(),
		models:   map[string][]didev.Model{},
		reserved: map[string][]didev.Reservation{},
		sources:  map[string]didev.Model{},
	}
	for _, t := range Targets {
		obs.models[t] = r.st.DI.Resource(t).Models(didev.KindModel)
		obs.reserved[t] = r.st.DI.Resource(t).Reservations()
	}
	for _, m := range r.st.DI.Resource("source").Models(didev.KindModel) {
		obs.sources[m.ID] = m
	}
	for _, op := range r.st.DI.Resource("source").Operations() {
		if op.ErrorCode == "InternalServerError" { // what copy-fail ends a copy with
			obs.copyFails++
		}
	}
	var logs []string
	for _, in := range r.instances {
		logs = append(logs, in.LogFiles()...)
		obs.crashes += in.Usage().Crashes
	}
	hashes, err := harness.TokenHashes(filepath.Join(r.cfg.WorkDir, "didev"))
	if err != nil {
		return nil, err
	}
	obs.tokenHashes = len(hashes)
	secrets := harness.Secrets{
		Literals:    []string{devstack.Key, devstack.APIKey, "SharedAccessKey=", "AccountKey=", testenv.AzuriteAccountKey},
		TokenHashes: hashes,
	}
	if obs.findings, err = secrets.Scan(logs); err != nil {
		return nil, err
	}
	return obs, nil
}

// startStack starts devbus, didev (persisting to WorkDir/didev so the access tokens' hashes can
// be checked against the logs) and the settings of the instances.
func (r *run) startStack(ctx context.Context) error {
	cfg := r.cfg
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	faults := cfg.Faults
	faults.Seed = cfg.Seed + 1
	st, err := harness.StartStack(sctx, devstack.Options{
		Queue: devbus.QueueOptions{Name: queueName, LockDuration: 5 * time.Second, MaxDeliveryCount: 10},
		DI: func(o *didev.Options) {
			o.DataDir = filepath.Join(cfg.WorkDir, "didev")
			o.CopyDuration = 500 * time.Millisecond
			// Authorizations live minutes instead of an hour: a replica whose copy message was
			// dead-lettered (kills and lock expiries use up its deliveries) is re-driven by the
			// poller when its authorization expires, within the run.
			o.AuthTTL = cfg.AuthTTL
			o.Rate = didev.RateOptions{Off: !cfg.RateLimits} // on: the S0 limits
			o.Faults = faults
			for i := range cfg.Models {
				o.Seeds = append(o.Seeds, didev.Seed{Resource: "source", Kind: didev.KindModel, ID: modelID(i)})
			}
			for i := range cfg.Conflicts {
				o.Seeds = append(o.Seeds,
					didev.Seed{Resource: "source", Kind: didev.KindModel, ID: conflictID(i)},
					// A model of another origin under the same id: never dimirror's to replace.
					didev.Seed{Resource: ConflictTarget, Kind: didev.KindModel, ID: conflictID(i), Description: "not a copy",
						Tags: map[string]string{replication.TagSourceCreated: "2001-01-01T00:00:00Z"}})
			}
		},
		Settings: map[string]string{
			"DIMIRROR_MAX_ATTEMPTS":  fmt.Sprint(cfg.MaxAttempts),
			"DIMIRROR_AUTH_MARGIN":   authMargin.String(),
			"DIMIRROR_POLL_SCHEDULE": "*/1 * * * * *",
			"DIMIRROR_LOG_LEVEL":     "debug", // the most lines to check for secrets
		},
	})
	if err != nil {
		return err
	}
	r.st = st
	return nil
}

// running lists the base URLs of the instances that are up, in random order.
func (r *run) running() []string {
	var out []string
	for _, in := range r.instances {
		if in.Running() {
			out = append(out, in.Base())
		}
	}
	r.rngMu.Lock()
	r.rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	r.rngMu.Unlock()
	return out
}

// requestAll sends every webhook at a random point of the request window, four at a time at
// most, each to a random running instance (another one after a failure, as a caller would).
func (r *run) requestAll(ctx context.Context) {
	var ids []string
	for i := range r.cfg.Models {
		ids = append(ids, modelID(i))
	}
	for i := range r.cfg.Conflicts {
		ids = append(ids, conflictID(i))
	}
	at := make([]time.Duration, len(ids))
	for i := range at {
		at[i] = r.within(r.cfg.RequestWindow)
	}
	sort.Slice(at, func(i, j int) bool { return at[i] < at[j] })
	client := harness.NewClient(devstack.APIKey, r.running)
	slots := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, id := range ids {
		select {
		case <-time.After(time.Until(r.started.Add(at[i]))):
		case <-ctx.Done():
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			r.fail(ctx.Err())
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			if _, err := client.Replicate(rctx, "model", id); err != nil {
				r.fail(err)
			}
		}()
	}
	wg.Wait()
}

// killer kills a random instance with SIGKILL at random points of the kill window and starts
// it again after a random pause; while one is down the other carries on.
func (r *run) killer(ctx context.Context) {
	r.atRandomPoints(ctx, r.cfg.Kills, func(int) {
		in := r.instances[r.intN(len(r.instances))]
		in.Kill()
		r.mu.Lock()
		r.kills++
		r.lastFault = time.Now()
		r.mu.Unlock()
		pause := r.within(1500 * time.Millisecond)
		r.logf("killed %s with SIGKILL, restarting it in %s", in.Name, pause.Round(time.Millisecond))
		time.Sleep(pause)
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		if _, err := in.Start(sctx); err != nil {
			r.fail(fmt.Errorf("restarting %s: %w", in.Name, err))
		}
		cancel()
	})
}

// busFaults injects devbus faults at random points: lock expiries (messages come back with
// their delivery count raised, as after a stalled consumer), dropped connections (a broker
// failover) and detached receivers.
func (r *run) busFaults(ctx context.Context) {
	r.atRandomPoints(ctx, r.cfg.BusFaults, func(i int) {
		var kind string
		var n int
		switch i % 3 {
		case 0:
			kind = "lock-expiry"
			n, _ = r.st.Bus.ExpireLocks(queueName)
		case 1:
			kind = "dropped-connection"
			n = r.st.Bus.DropConnections()
		default:
			kind = "detached-receiver"
			n = r.st.Bus.DetachReceivers(queueName)
		}
		r.mu.Lock()
		r.busInjects[kind] += int64(n)
		r.lastFault = time.Now()
		r.mu.Unlock()
		r.logf("devbus: %s (%d)", kind, n)
	})
}

// outage takes OutageResource mostly down for Outage from OutageAt: most of its calls answer 503,
// as in a regional incident. Transient failures must not park replicas: they are retried with
// back-off and every replica moves on soon after the outage ends (the Recovery invariant).
func (r *run) outage(ctx context.Context) {
	if r.cfg.Outage <= 0 {
		return
	}
	select {
	case <-time.After(time.Until(r.started.Add(r.cfg.OutageAt))):
	case <-ctx.Done():
		return
	}
	if err := r.st.DI.SetOutage(r.cfg.OutageResource, r.cfg.OutageShare); err != nil {
		r.fail(err)
		return
	}
	r.logf("outage: %.0f%% of the calls to %s fail for %s", r.cfg.OutageShare*100, r.cfg.OutageResource, r.cfg.Outage)
	select {
	case <-time.After(r.cfg.Outage):
	case <-ctx.Done():
	}
	if err := r.st.DI.SetOutage(r.cfg.OutageResource, 0); err != nil {
		r.fail(err)
	}
	r.mu.Lock()
	r.lastFault = time.Now()
	r.mu.Unlock()
	r.logf("outage of %s over", r.cfg.OutageResource)
}

// atRandomPoints runs do(0) … do(n-1) in turn at n random points of the kill window, drawn
// before the first; it stops when ctx ends.
func (r *run) atRandomPoints(ctx context.Context, n int, do func(i int)) {
	at := make([]time.Duration, n)
	for i := range at {
		at[i] = r.cfg.KillFrom + r.within(r.cfg.KillUntil-r.cfg.KillFrom)
	}
	sort.Slice(at, func(i, j int) bool { return at[i] < at[j] })
	for i, t := range at {
		select {
		case <-time.After(time.Until(r.started.Add(t))):
		case <-ctx.Done():
			return
		}
		do(i)
	}
}

// drainQueue waits (a lock's duration and a little more at most) for the queue to hold nothing
// active or locked: a replica can settle before a stale message for it is delivered.
func (r *run) drainQueue(ctx context.Context) devbus.QueueStats {
	deadline := time.Now().Add(20 * time.Second)
	for {
		qs, err := r.st.Bus.QueueStats(queueName)
		if err != nil {
			r.fail(err)
			return qs
		}
		if qs.Active+qs.Locked+qs.Scheduled+qs.Deferred == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return qs
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (r *run) stopAll() {
	var wg sync.WaitGroup
	for _, in := range r.instances {
		wg.Add(1)
		go func() { defer wg.Done(); in.Stop(15 * time.Second) }()
	}
	wg.Wait()
}
