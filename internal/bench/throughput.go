package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"time"

	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/internal/devstack"
	"github.com/dimirror/dimirror/internal/harness"
	"github.com/dimirror/dimirror/shared/replication"
)

// S0 are the service's S0 request limits per second and resource (CONTRACT.md §6), which didev
// enforces by default with a burst of one second's budget.
var S0 = map[string]float64{
	didev.CategoryManagement:   5,
	didev.CategoryGetOperation: 50,
	didev.CategoryList:         10,
}

// Need is the calls of one category on one resource that a run cannot do without.
type Need struct {
	Resource string
	Category string
	Calls    int
	Rate     float64       // per second
	Time     time.Duration // the least time those calls take under the limit
}

// Bound is the least wall time a run can take under the rate limits: the busiest resource and
// category decide, plus one copy's duration after the last copyTo.
type Bound struct {
	Needs   []Need // every resource and category, busiest first
	Binding Need
	Wall    time.Duration
}

// ComputeBound works out the bound for models sources copied into targets resources. Per copy
// the pipeline needs at least: authorizeCopy on the target (management), copyTo on the source
// (management), one GET of the operation on the source (get-operation) and one GET of the
// target model to verify it (list); per model one GET of the source model (list). A token
// bucket with burst b lets n calls through in no less than (n−b)/rate.
func ComputeBound(models int, targets []string, copyDuration time.Duration, rates map[string]float64) Bound {
	copies := models * len(targets)
	needs := []Need{
		{Resource: "source", Category: didev.CategoryManagement, Calls: copies},
		{Resource: "source", Category: didev.CategoryGetOperation, Calls: copies},
		{Resource: "source", Category: didev.CategoryList, Calls: models},
	}
	for _, t := range targets {
		needs = append(needs,
			Need{Resource: t, Category: didev.CategoryManagement, Calls: models},
			Need{Resource: t, Category: didev.CategoryList, Calls: models})
	}
	for i := range needs {
		n := &needs[i]
		n.Rate = rates[n.Category]
		burst := math.Max(1, math.Ceil(n.Rate))
		n.Time = time.Duration(math.Max(0, float64(n.Calls)-burst) / n.Rate * float64(time.Second))
	}
	sort.SliceStable(needs, func(i, j int) bool { return needs[i].Time > needs[j].Time })
	return Bound{Needs: needs, Binding: needs[0], Wall: needs[0].Time + copyDuration}
}

// ThroughputOptions shape the throughput run: Models sources requested through the webhook at
// once (Parallel requests in flight), each copied into both targets.
type ThroughputOptions struct {
	Models       int
	CopyDuration time.Duration
	PollSchedule string
	Parallel     int
}

// CallsPerCopy are the service calls per copy by purpose, all answers counted (429s too), with
// the calls answered 429 apart.
type CallsPerCopy struct {
	Authorize, CopyTo, Polls, Verify, SourceReads float64
}

// ThroughputResult is what the throughput run measured.
type ThroughputResult struct {
	Options      ThroughputOptions
	Copies       int
	Failed       int
	Wall         time.Duration // first webhook sent → last replica succeeded
	Bound        Bound
	Ratio        float64 // Bound.Wall / Wall: 1 is the best the rate limits allow
	Requests     int64   // every call to didev
	Throttled    int64   // of which answered 429
	Share429     float64
	Calls        CallsPerCopy // every call, per copy
	Accepted     CallsPerCopy // calls not answered 429, per copy
	PerResource  map[string]map[string]didev.CategoryStats
	Usage        harness.Usage // dimirror's CPU and peak memory over the run
	PollPasses   harness.Summary
	PollActive   int // the most replicas in flight one pass listed
	WebhookTimes harness.Summary
}

// Throughput runs Models × 2 copies through one dimirror instance under the S0 limits.
func (e *Env) Throughput(ctx context.Context, o ThroughputOptions) (ThroughputResult, error) {
	res := ThroughputResult{Options: o}
	prefix := "tput"
	st, in, err := e.startStack(ctx, stackOptions(prefix, o.Models, o.CopyDuration,
		map[string]string{"DIMIRROR_POLL_SCHEDULE": o.PollSchedule}), "throughput")
	if err != nil {
		return res, err
	}
	defer st.Close()
	defer in.Stop(10 * time.Second)
	targets := []string{"westus2", "eastus"}
	res.Bound = ComputeBound(o.Models, targets, o.CopyDuration, S0)
	e.logf("throughput: %d models × %d targets, %d webhooks in flight; bound %s (%s %s: %d calls at %g/s)",
		o.Models, len(targets), o.Parallel, harness.Round(res.Bound.Wall), res.Bound.Binding.Resource,
		res.Bound.Binding.Category, res.Bound.Binding.Calls, res.Bound.Binding.Rate)

	ids := make([]string, o.Models)
	for i := range ids {
		ids[i] = ModelID(prefix, i)
	}
	client := harness.NewClient(devstack.APIKey, func() []string { return []string{in.Base()} })
	start := time.Now()
	stopSampling := sampleRSS(in, time.Second)
	answers, err := requestAll(ctx, client, ids, 0, o.Parallel)
	if err != nil {
		stopSampling()
		return res, err
	}
	var webhook []time.Duration
	for _, a := range answers {
		webhook = append(webhook, a.At.Sub(a.Sent))
	}
	res.WebhookTimes = harness.Summarize(webhook)
	e.logf("throughput: %d webhooks answered in %s (%s)", len(answers), harness.Round(time.Since(start)), res.WebhookTimes)
	wctx, cancel := context.WithTimeout(ctx, 4*res.Bound.Wall+5*time.Minute)
	defer cancel()
	last := time.Now()
	rows, err := st.WaitSettled(wctx, len(ids)*len(targets), time.Second, func(c map[replication.Status]int) {
		if time.Since(last) >= 30*time.Second {
			last = time.Now()
			e.logf("throughput: %s: %v", harness.Round(time.Since(start)), c)
		}
	})
	stopSampling()
	if err != nil {
		return res, err
	}
	var end time.Time
	for _, r := range rows {
		res.Copies++
		if r.Status != replication.StatusSucceeded {
			res.Failed++
		}
		if r.CompletedAt.After(end) {
			end = r.CompletedAt
		}
	}
	res.Wall = end.Sub(start)
	res.Ratio = float64(res.Bound.Wall) / float64(res.Wall)
	stats := st.DI.Stats()
	res.PerResource = map[string]map[string]didev.CategoryStats{}
	var all, ok CallsPerCopy
	for name, rs := range stats.Resources {
		res.PerResource[name] = rs.Categories
		for cat, c := range rs.Categories {
			res.Requests += c.Requests
			res.Throttled += c.Throttled
			n, a := float64(c.Requests), float64(c.Requests-c.Throttled)
			switch {
			case name == "source" && cat == didev.CategoryManagement:
				all.CopyTo, ok.CopyTo = all.CopyTo+n, ok.CopyTo+a
			case name == "source" && cat == didev.CategoryGetOperation:
				all.Polls, ok.Polls = all.Polls+n, ok.Polls+a
			case name == "source" && cat == didev.CategoryList:
				all.SourceReads, ok.SourceReads = all.SourceReads+n, ok.SourceReads+a
			case cat == didev.CategoryManagement:
				all.Authorize, ok.Authorize = all.Authorize+n, ok.Authorize+a
			case cat == didev.CategoryList:
				all.Verify, ok.Verify = all.Verify+n, ok.Verify+a
			}
		}
	}
	if res.Requests > 0 {
		res.Share429 = float64(res.Throttled) / float64(res.Requests)
	}
	res.Calls, res.Accepted = all.per(res.Copies), ok.per(res.Copies)
	in.Stop(30 * time.Second)
	res.Usage = in.Usage()
	res.PollPasses, res.PollActive = pollPasses(in.LogFiles())
	e.logf("throughput: wall %s, bound %s, ratio %.2f, 429 share %.1f%%, cpu %s, peak rss %d MiB",
		harness.Round(res.Wall), harness.Round(res.Bound.Wall), res.Ratio, 100*res.Share429, harness.Round(res.Usage.CPU), res.Usage.PeakRSS>>20)
	return res, nil
}

func (c CallsPerCopy) per(copies int) CallsPerCopy {
	if copies == 0 {
		return CallsPerCopy{}
	}
	n := float64(copies)
	return CallsPerCopy{Authorize: c.Authorize / n, CopyTo: c.CopyTo / n, Polls: c.Polls / n, Verify: c.Verify / n, SourceReads: c.SourceReads / n}
}

// sampleRSS reads the instance's peak resident set every interval until stopped (rusage gives
// it too, once the process ends; sampling keeps it if the process is killed).
func sampleRSS(in *harness.Instance, every time.Duration) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			in.SamplePeakRSS()
			select {
			case <-done:
				return
			case <-time.After(every):
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// pollPasses reads the "poll pass" lines dimirror logs (at info, for passes with due replicas):
// their durations, and the most replicas in flight one pass listed.
func pollPasses(files []string) (harness.Summary, int) {
	var ds []time.Duration
	most := 0
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for sc.Scan() {
			var line struct {
				Msg      string `json:"msg"`
				Duration string `json:"duration"`
				Active   int    `json:"active"`
			}
			if json.Unmarshal(sc.Bytes(), &line) != nil || line.Msg != "poll pass" {
				continue
			}
			if d, err := time.ParseDuration(line.Duration); err == nil {
				ds = append(ds, d)
			}
			most = max(most, line.Active)
		}
		f.Close()
	}
	return harness.Summarize(ds), most
}

// String is a one-line summary for progress output.
func (c CallsPerCopy) String() string {
	return fmt.Sprintf("authorize %.2f, copyTo %.2f, polls %.2f, verify %.2f, source reads %.2f",
		c.Authorize, c.CopyTo, c.Polls, c.Verify, c.SourceReads)
}
