package resources

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/shared/docintel"
)

func TestPacerCategories(t *testing.T) {
	p := NewPacer(Rates{List: 9, Management: 4.8, Operation: 45})
	tests := []struct {
		method, path string
		paced        *budget
	}{
		{"GET", "/documentintelligence/documentModels", p.list},
		{"GET", "/documentintelligence/documentModels/invoice", p.list},
		{"GET", "/documentintelligence/info", p.list},
		{"GET", "/formrecognizer/v2.1/custom/models", p.list},
		{"GET", "/documentintelligence/operations", p.list},
		{"GET", "/documentintelligence/operations/31442705503_c0cc", p.operation},
		{"GET", "/formrecognizer/v2.1/custom/models/a/copyResults/b", p.operation},
		{"POST", "/documentintelligence/documentModels:authorizeCopy", p.management},
		{"POST", "/documentintelligence/documentModels/a:copyTo", p.management},
		{"POST", "/formrecognizer/v2.1/custom/models/a/copy", p.management},
		{"DELETE", "/documentintelligence/documentModels/a", p.management},
	}
	for _, tt := range tests {
		if got := p.budget(tt.method, tt.path); got != tt.paced {
			t.Errorf("%s %s: budget %p, want %p (list %p, management %p)", tt.method, tt.path, got, tt.paced, p.list, p.management)
		}
	}
	off := NewPacer(Rates{})
	if off.budget("GET", "/documentintelligence/documentModels") != nil || off.budget("POST", "/documentintelligence/documentModels:authorizeCopy") != nil {
		t.Error("a zero rate must leave requests unpaced")
	}
}

// A burst through a paced client stays under the resource's limit for that kind of call: no 429
// at all. The same burst unpaced (and without retries) meets the limit.
func TestPacedClientStaysUnderTheLimit(t *testing.T) {
	tests := []struct {
		category string
		pacer    *Pacer
		call     func(ctx context.Context, c *docintel.Client, i int) error
	}{
		{"list", NewPacer(Rates{List: 9}), func(ctx context.Context, c *docintel.Client, _ int) error {
			_, err := c.Info(ctx)
			return err
		}},
		{"management", NewPacer(Rates{Management: 4.8}), func(ctx context.Context, c *docintel.Client, i int) error {
			_, err := c.AuthorizeCopy(ctx, docintel.KindModel, docintel.AuthorizeRequest{TargetID: fmt.Sprintf("copy-%d", i)})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.category, func(t *testing.T) {
			srv, _ := startDI(t, didev.Options{}, true) // the S0 limits on the real clock
			ctx := context.Background()
			client := func(o docintel.Options) *docintel.Client {
				o.APIVersion, o.Key, o.Retry = docintel.V2024_11_30, devKey, policy.RetryOptions{MaxRetries: -1}
				c, err := docintel.New(srv.Endpoint("source"), o)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			unpaced, paced := client(docintel.Options{}), client(docintel.Options{Transport: tt.pacer.Transport(nil)})
			throttled := 0
			for i := range 15 {
				if err := tt.call(ctx, unpaced, i); err != nil {
					if !docintel.IsThrottled(err) {
						t.Fatalf("unexpected error: %v", err)
					}
					throttled++
				}
			}
			if throttled == 0 {
				t.Fatal("the unpaced burst was never throttled: the test cannot tell pacing from luck")
			}
			time.Sleep(1100 * time.Millisecond) // let the budget refill
			before := srv.Stats().Resources["source"].Categories[tt.category].Throttled
			for i := range 15 {
				if err := tt.call(ctx, paced, 100+i); err != nil {
					t.Fatalf("paced call %d: %v", i, err)
				}
			}
			if n := srv.Stats().Resources["source"].Categories[tt.category].Throttled - before; n != 0 {
				t.Errorf("the paced client drew %d 429s", n)
			}
			// A paced call waits within its context.
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if err := tt.call(cctx, paced, 200); err == nil {
				t.Error("a call with a cancelled context went through")
			}
		})
	}
}

// The share scales every ceiling; out of range it means the whole rate.
func TestPacerShare(t *testing.T) {
	tests := []struct {
		share float64
		want  float64 // management ceiling for a rate of 5
	}{
		{0, 5}, {1, 5}, {0.8, 4}, {0.5, 2.5}, {-1, 5}, {2, 5},
	}
	for _, tt := range tests {
		p := NewPacer(Rates{Management: 5, List: 10, Operation: 50, Share: tt.share})
		if got := p.management.ctl.Ceiling(); !near(got, tt.want) {
			t.Errorf("share %v: management ceiling %v, want %v", tt.share, got, tt.want)
		}
		if got := p.list.ctl.Ceiling(); !near(got, 2*tt.want) {
			t.Errorf("share %v: list ceiling %v, want %v", tt.share, got, 2*tt.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"none", nil, 0},
		{"seconds", map[string]string{"Retry-After": "1"}, time.Second},
		{"fractional seconds", map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond},
		{"milliseconds first", map[string]string{"Retry-After": "2", "Retry-After-Ms": "1500"}, 1500 * time.Millisecond},
		{"x-ms milliseconds", map[string]string{"X-Ms-Retry-After-Ms": "250"}, 250 * time.Millisecond},
		{"http date", map[string]string{"Retry-After": now.Add(3 * time.Second).Format(http.TimeFormat)}, 3 * time.Second},
		{"date in the past", map[string]string{"Retry-After": now.Add(-time.Hour).Format(http.TimeFormat)}, 0},
		{"capped", map[string]string{"Retry-After": "86400"}, maxHold},
		{"negative", map[string]string{"Retry-After": "-3"}, 0},
		{"not a number", map[string]string{"Retry-After": "NaN"}, 0},
		{"garbage", map[string]string{"Retry-After": "soon"}, 0},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.header {
			h.Set(k, v)
		}
		if got := retryAfter(h, now); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// recorder is a transport that notes when each request left and how it was answered.
type recorder struct {
	next policy.Transporter
	mu   sync.Mutex
	sent []time.Time
	code []int
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	at := time.Now()
	resp, err := r.next.Do(req)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, at)
	if err != nil {
		r.code = append(r.code, 0)
	} else {
		r.code = append(r.code, resp.StatusCode)
	}
	return resp, err
}

// Told a rate four times what the resource allows, the budget meets a 429, holds every call for
// the answer's Retry-After (didev: 1 s), and drops its rate; the calls after that are far fewer
// 429s than the unpaced burst drew. didev over real HTTP with the S0 limit on the real clock.
func TestPacerAdaptsToA429(t *testing.T) {
	srv, _ := startDI(t, didev.Options{}, true)
	rec := &recorder{next: baseClient()}
	p := NewPacer(Rates{Management: 20})
	c, err := docintel.New(srv.Endpoint("source"), docintel.Options{APIVersion: docintel.V2024_11_30, Key: devKey,
		Retry: policy.RetryOptions{MaxRetries: -1}, Transport: p.Transport(rec)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	// Four callers at once, as the copy starter's messages would: they queue on one budget.
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 8 {
				_, _ = c.AuthorizeCopy(ctx, docintel.KindModel, docintel.AuthorizeRequest{TargetID: fmt.Sprintf("copy-%d-%d", w, i)})
			}
		}()
	}
	wg.Wait()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	first := -1
	throttled := 0
	for i, code := range rec.code {
		if code == http.StatusTooManyRequests {
			throttled++
			if first < 0 {
				first = i
			}
		}
	}
	if first < 0 {
		t.Fatal("no call was answered 429: the test cannot see the budget adapt")
	}
	// Calls still in flight when the 429 came may leave up to a pacing step after it; every
	// later one waits out the hold.
	for i := first + 1; i < len(rec.sent); i++ {
		if gap := rec.sent[i].Sub(rec.sent[first]); gap > 100*time.Millisecond && gap < 950*time.Millisecond {
			t.Errorf("call %d left %v after the first 429, inside its 1 s Retry-After", i, gap)
		}
	}
	st := p.Stats()["management"]
	if st.Drops == 0 || st.Rate >= 20 {
		t.Errorf("after %d 429s the budget is %+v: want a lower rate", throttled, st)
	}
	if throttled > len(rec.code)/4 {
		t.Errorf("%d of %d calls answered 429: the budget did not settle under the limit", throttled, len(rec.code))
	}
	t.Logf("%d calls, %d answered 429, budget %+v", len(rec.code), throttled, st)
}
