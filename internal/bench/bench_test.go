package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/handlers"
	"github.com/dimirror/dimirror/internal/devstack"
	"github.com/dimirror/dimirror/internal/harness"
	"github.com/dimirror/dimirror/internal/testenv"
	"github.com/dimirror/dimirror/shared/docintel"
	"github.com/dimirror/dimirror/shared/replication"
	"github.com/dimirror/dimirror/shared/resources"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopShared()
	os.Exit(code)
}

// Each step of dimirror measured in process, against Azurite and didev with its rate limits off
// and copies that take no time: what dimirror itself spends per step (its round trips to the
// table and the queue included), not what the service makes it wait. make bench runs them with
// -benchtime=200x: each op uses a model of its own, and there are benchModels.

const benchModels = 1000

// queueRecorder keeps the copy messages instead of sending them.
type queueRecorder struct {
	mu   sync.Mutex
	msgs []*replication.CopyMessage
}

func (q *queueRecorder) Schedule(context.Context, *replication.CopyMessage, time.Duration) error {
	return nil
}

func (q *queueRecorder) SendCopy(_ context.Context, m *replication.CopyMessage) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	c := *m
	q.msgs = append(q.msgs, &c)
	return nil
}

type benchEnv struct {
	st    *harness.Stack
	eng   *replication.Engine
	queue *queueRecorder
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := harness.StartStack(ctx, devstack.Options{DI: func(o *didev.Options) {
		o.Rate = didev.RateOptions{Off: true}
		o.CopyDuration = time.Millisecond
		o.Seeds = append(o.Seeds, modelSeeds("bench", benchModels)...)
	}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	client := func(name string) replication.Resource {
		c, err := docintel.New(st.DI.Endpoint(name), docintel.Options{Key: devstack.Key})
		if err != nil {
			b.Fatal(err)
		}
		return resources.New(c)
	}
	q := &queueRecorder{}
	eng, err := replication.NewEngine(replication.Config{
		Source: client("source"), SourceName: "source.bench",
		Targets: map[string]replication.Resource{"westus2": client("westus2"), "eastus": client("eastus")},
		Store:   st.Store, Queue: q,
	})
	if err != nil {
		b.Fatal(err)
	}
	return &benchEnv{st: st, eng: eng, queue: q}
}

func (e *benchEnv) model(b *testing.B, i int) string {
	if i >= benchModels {
		b.Fatalf("op %d needs a model of its own; run with -benchtime=%dx or less", i, benchModels)
	}
	return ModelID("bench", i)
}

// BenchmarkWebhook is one POST /api/replications through the handler: read the source model,
// then per target create the row, authorizeCopy, queue the copy and record it (2 targets).
func BenchmarkWebhook(b *testing.B) {
	e := newBenchEnv(b)
	app := &handlers.Functions{Replicas: e.eng, Requests: e.eng, Copies: e.eng, Poller: e.eng}
	i := 0
	for b.Loop() {
		body := fmt.Sprintf(`{"sourceId":%q}`, e.model(b, i))
		i++
		rec := httptest.NewRecorder()
		app.Authorize(rec, httptest.NewRequest(http.MethodPost, "/api/replications", strings.NewReader(body)))
		if rec.Code != http.StatusAccepted {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkCopyMessage is the copy starter on one message: claim the row, copyTo, record it.
func BenchmarkCopyMessage(b *testing.B) {
	e := newBenchEnv(b)
	ctx := context.Background()
	msgs := func(n int) []*replication.CopyMessage {
		for i := range n {
			if _, err := e.eng.Request(ctx, replication.Request{SourceID: e.model(b, i), Targets: []string{"westus2"}}); err != nil {
				b.Fatal(err)
			}
		}
		return e.queue.msgs
	}(min(benchModels, 200))
	i := 0
	for b.Loop() {
		if i >= len(msgs) {
			b.Fatalf("op %d: only %d messages prepared; run with -benchtime=%dx or less", i, len(msgs), len(msgs))
		}
		if err := e.eng.StartCopy(ctx, msgs[i], 1); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkPollPass is one poll pass over n replicas in flight of which none is due: the table
// scan every tick of the poll timer pays, whatever there is to do. The figure grows with the
// replicas in flight, and a pass must end before the next tick.
func BenchmarkPollPass(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("inflight=%d", n), func(b *testing.B) {
			e := newBenchEnv(b)
			ctx := context.Background()
			far := time.Now().Add(time.Hour)
			for i := range n {
				r := &replication.Replica{Key: replication.Key{Kind: replication.KindModel, SourceID: ModelID("bench", i), Target: "westus2"},
					TargetID: ModelID("bench", i), Status: replication.StatusAuthorized, Attempt: 1, FirstAttempt: 1,
					RequestedAt: time.Now(), AuthExpiresAt: far, NextAttemptAt: far}
				if err := e.st.Store.Create(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				rep, err := e.eng.Poll(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if rep.Active != n || rep.Due != 0 {
					b.Fatalf("pass saw %d active, %d due; want %d, 0", rep.Active, rep.Due, n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(n), "µs/replica")
		})
	}
}
