package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
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
// once (Parallel requests in flight, spread over the instances), each copied into both targets.
type ThroughputOptions struct {
	Models       int
	CopyDuration time.Duration
	PollSchedule string
	Parallel     int
	// Instances of `dimirror run` share the queue and the table (0: one).
	Instances int
	// ManagementLimit is the management calls per second didev allows each resource (0: S0's
	// 5); dimirror is not told (it keeps its default settings).
	ManagementLimit float64
	// Competitor is a client of the source's management budget calling at this fixed rate for
	// the whole run (DELETE of a model that does not exist), as the customer's own tooling
	// would (0: none).
	Competitor float64
	// Label names the run in the report.
	Label string
}

// CallsPerCopy are the service calls per copy by purpose, all answers counted (429s too), with
// the calls answered 429 apart.
type CallsPerCopy struct {
	Authorize, CopyTo, Polls, Verify, SourceReads float64
}

// ThroughputResult is what the throughput run measured.
type ThroughputResult struct {
	Options     ThroughputOptions
	Copies      int
	Failed      int
	Wall        time.Duration // first webhook sent → last replica succeeded
	Bound       Bound
	Ratio       float64 // Bound.Wall / Wall: 1 is the best the rate limits allow
	Requests    int64   // every call to didev
	Throttled   int64   // of which answered 429
	Share429    float64
	Calls       CallsPerCopy // every call, per copy
	Accepted    CallsPerCopy // calls not answered 429, per copy
	PerResource map[string]map[string]didev.CategoryStats
	Usage       harness.Usage // dimirror's CPU and peak memory over the run, every instance summed
	// Share is DIMIRROR_BUDGET_SHARE of the run; OwnBound the bound on the part of each
	// resource's limits dimirror may use (Share × limit, and on the source's management budget
	// no more than what the competitor leaves), OwnRatio OwnBound.Wall / Wall.
	Share    float64
	OwnBound Bound
	OwnRatio float64
	// CallsPerReplica are dimirror's calls to didev per copy, 429s included (the competitor's
	// calls are not counted in Requests, Throttled or here).
	CallsPerReplica float64
	// The competitor's calls and the 429s they drew.
	CompetitorCalls, CompetitorThrottled int64
	CompetitorShare429                   float64
	PollPasses                           harness.Summary
	PollActive                           int // the most replicas in flight one pass listed
	WebhookTimes                         harness.Summary
}

// DefaultBudgetShare is DIMIRROR_BUDGET_SHARE when it is not set.
const DefaultBudgetShare = 0.8

// Throughput runs Models × 2 copies through Instances dimirror instances (one by default) under
// the S0 limits, or another management limit, with or without a competing client.
func (e *Env) Throughput(ctx context.Context, o ThroughputOptions) (ThroughputResult, error) {
	res := ThroughputResult{Options: o, Share: DefaultBudgetShare}
	if o.Instances < 1 {
		o.Instances = 1
		res.Options.Instances = 1
	}
	prefix := "tput"
	so := stackOptions(prefix, o.Models, o.CopyDuration, map[string]string{"DIMIRROR_POLL_SCHEDULE": o.PollSchedule})
	limits := map[string]float64{}
	for k, v := range S0 {
		limits[k] = v
	}
	if o.ManagementLimit > 0 {
		limits[didev.CategoryManagement] = o.ManagementLimit
		seed := so.DI
		so.DI = func(d *didev.Options) {
			seed(d)
			d.Rate.Management = o.ManagementLimit
		}
	}
	name := "throughput"
	if o.Label != "" {
		name = "pacing"
	}
	st, first, err := e.startStack(ctx, so, name)
	if err != nil {
		return res, err
	}
	defer st.Close()
	instances := []*harness.Instance{first}
	defer func() {
		for _, in := range instances {
			in.Stop(10 * time.Second)
		}
	}()
	for len(instances) < o.Instances {
		in := &harness.Instance{Name: e.instanceName(name), Binary: e.Binary, Settings: st.Settings, LogDir: e.LogDir}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		_, err := in.Start(sctx)
		cancel()
		if err != nil {
			return res, err
		}
		instances = append(instances, in)
	}
	targets := []string{"westus2", "eastus"}
	res.Bound = boundWith(o.Models, targets, o.CopyDuration, limits, 1, o.Competitor)
	res.OwnBound = boundWith(o.Models, targets, o.CopyDuration, limits, res.Share, o.Competitor)
	e.logf("%s: %d models × %d targets, %d instance(s), %d webhooks in flight; bound %s (%s %s: %d calls at %g/s), on dimirror's share %s",
		name, o.Models, len(targets), o.Instances, o.Parallel, harness.Round(res.Bound.Wall), res.Bound.Binding.Resource,
		res.Bound.Binding.Category, res.Bound.Binding.Calls, res.Bound.Binding.Rate, harness.Round(res.OwnBound.Wall))

	ids := make([]string, o.Models)
	for i := range ids {
		ids[i] = ModelID(prefix, i)
	}
	client := harness.NewClient(devstack.APIKey, func() []string {
		bases := make([]string, len(instances))
		for i, in := range instances {
			bases[i] = in.Base()
		}
		return bases
	})
	start := time.Now()
	stopSampling := sampleRSS(instances, time.Second)
	stopCompetitor := competitor(ctx, st, o.Competitor)
	answers, err := requestAll(ctx, client, ids, 0, o.Parallel)
	if err != nil {
		stopSampling()
		stopCompetitor()
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
			e.logf("%s: %s: %v", name, harness.Round(time.Since(start)), c)
		}
	})
	stopSampling()
	res.CompetitorCalls, res.CompetitorThrottled = stopCompetitor()
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
	res.OwnRatio = float64(res.OwnBound.Wall) / float64(res.Wall)
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
	// The competitor's DELETEs count on the source's management budget in didev's counters:
	// take them out, so the figures are dimirror's own.
	res.Requests -= res.CompetitorCalls
	res.Throttled -= res.CompetitorThrottled
	all.CopyTo -= float64(res.CompetitorCalls)
	ok.CopyTo -= float64(res.CompetitorCalls - res.CompetitorThrottled)
	if res.Requests > 0 {
		res.Share429 = float64(res.Throttled) / float64(res.Requests)
	}
	if res.CompetitorCalls > 0 {
		res.CompetitorShare429 = float64(res.CompetitorThrottled) / float64(res.CompetitorCalls)
	}
	if res.Copies > 0 {
		res.CallsPerReplica = float64(res.Requests) / float64(res.Copies)
	}
	res.Calls, res.Accepted = all.per(res.Copies), ok.per(res.Copies)
	var logs []string
	for _, in := range instances {
		in.Stop(30 * time.Second)
		u := in.Usage()
		res.Usage.CPU += u.CPU
		res.Usage.PeakRSS = max(res.Usage.PeakRSS, u.PeakRSS)
		res.Usage.Lives += u.Lives
		res.Usage.Crashes += u.Crashes
		logs = append(logs, in.LogFiles()...)
	}
	res.PollPasses, res.PollActive = pollPasses(logs)
	e.logf("%s: wall %s, bound %s, ratio %.2f (on dimirror's share %.2f), 429 share %.2f%%, %.2f calls per replica, competitor 429 share %.2f%% of %d, cpu %s, peak rss %d MiB",
		name, harness.Round(res.Wall), harness.Round(res.Bound.Wall), res.Ratio, res.OwnRatio, 100*res.Share429, res.CallsPerReplica,
		100*res.CompetitorShare429, res.CompetitorCalls, harness.Round(res.Usage.CPU), res.Usage.PeakRSS>>20)
	return res, nil
}

// boundWith is ComputeBound on share × the limits, with competitor calls per second taken off
// the source's management limit first (dimirror may use the share of the resource's budget,
// but no more than what the competitor leaves).
func boundWith(models int, targets []string, copyDuration time.Duration, limits map[string]float64, share, competitor float64) Bound {
	rates := map[string]float64{}
	for k, v := range limits {
		rates[k] = share * v
	}
	b := ComputeBound(models, targets, copyDuration, rates)
	if competitor <= 0 && share == 1 {
		return b
	}
	for i := range b.Needs {
		n := &b.Needs[i]
		if n.Resource != "source" || n.Category != didev.CategoryManagement {
			continue
		}
		n.Rate = math.Min(share*limits[n.Category], limits[n.Category]-competitor)
		burst := math.Max(1, math.Ceil(n.Rate))
		n.Time = time.Duration(math.Max(0, float64(n.Calls)-burst) / n.Rate * float64(time.Second))
	}
	sort.SliceStable(b.Needs, func(i, j int) bool { return b.Needs[i].Time > b.Needs[j].Time })
	b.Binding, b.Wall = b.Needs[0], b.Needs[0].Time+copyDuration
	return b
}

// competitor calls DELETE on a model the source does not have, perSecond times a second
// (nothing when perSecond is 0), until the returned function is called; that returns its calls
// and how many were answered 429. Every call has a deadline; the key stays in the header.
func competitor(ctx context.Context, st *harness.Stack, perSecond float64) func() (calls, throttled int64) {
	if perSecond <= 0 {
		return func() (int64, int64) { return 0, 0 }
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var calls, throttled int64
	go func() {
		defer close(done)
		client := &http.Client{Timeout: 10 * time.Second}
		url := st.DI.Endpoint("source") + "/documentintelligence/documentModels/not-a-model?api-version=2024-11-30"
		tick := time.NewTicker(time.Duration(float64(time.Second) / perSecond))
		defer tick.Stop()
		for {
			select {
			case <-cctx.Done():
				return
			case <-tick.C:
			}
			req, err := http.NewRequestWithContext(cctx, http.MethodDelete, url, nil)
			if err != nil {
				return
			}
			req.Header.Set("Ocp-Apim-Subscription-Key", devstack.Key)
			resp, err := client.Do(req)
			if err != nil {
				continue // cancelled at the end, or didev busy: not an answer to count
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			calls++
			if resp.StatusCode == http.StatusTooManyRequests {
				throttled++
			}
		}
	}()
	return func() (int64, int64) {
		cancel()
		<-done
		return calls, throttled
	}
}

func (c CallsPerCopy) per(copies int) CallsPerCopy {
	if copies == 0 {
		return CallsPerCopy{}
	}
	n := float64(copies)
	return CallsPerCopy{Authorize: c.Authorize / n, CopyTo: c.CopyTo / n, Polls: c.Polls / n, Verify: c.Verify / n, SourceReads: c.SourceReads / n}
}

// sampleRSS reads the instances' peak resident sets every interval until stopped (rusage gives
// it too, once the process ends; sampling keeps it if the process is killed).
func sampleRSS(ins []*harness.Instance, every time.Duration) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			for _, in := range ins {
				in.SamplePeakRSS()
			}
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
