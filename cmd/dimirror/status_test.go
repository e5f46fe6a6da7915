package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/handlers"
	"github.com/dimirror/dimirror/internal/fakeclock"
	"github.com/dimirror/dimirror/internal/memstore"
	"github.com/dimirror/dimirror/internal/testenv"
	rt "github.com/dimirror/dimirror/shared/reconcile/reconciletest"
	"github.com/dimirror/dimirror/shared/replication"
	"github.com/dimirror/dimirror/shared/store"
)

// statusFixture is a replica table in Azurite with known rows, and settings naming it.
type statusFixture struct {
	table    *store.Tables
	settings string
	clock    *fakeclock.Clock
}

func newStatusFixture(t *testing.T, az *testenv.Azurite, name string, rows []replication.Replica) *statusFixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	table, err := store.Open(ctx, store.Options{ConnectionString: az.ConnectionString(), Table: name})
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		if err := table.Create(ctx, &rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	values := sampleValues(t)
	values["TableConnection"] = az.ConnectionString()
	values["DIMIRROR_TABLE"] = name
	values["DIMIRROR_CALL_TIMEOUT"] = "10s"
	return &statusFixture{table: table, settings: writeSettings(t, values), clock: newCLIClock()}
}

// knownRows are five replicas in every state, dated relative to the fixture clock's now.
func knownRows(now time.Time) []replication.Replica {
	at := func(d time.Duration) time.Time { return now.Add(d) }
	key := func(kind replication.Kind, id, target string) replication.Key {
		return replication.Key{Kind: kind, SourceID: id, Target: target}
	}
	return []replication.Replica{
		{Key: key(replication.KindModel, "invoice-v1", "westus2"), TargetID: "invoice-v1", Status: replication.StatusSucceeded,
			Attempt: 1, FirstAttempt: 1, Percent: 100, OperationURL: "http://127.0.0.1:5101/documentintelligence/operations/31234_abc?api-version=2024-11-30",
			RequestedAt: at(-5 * time.Minute), AuthorizedAt: at(-5 * time.Minute), StartedAt: at(-299 * time.Second), CompletedAt: at(-296 * time.Second), UpdatedAt: at(-296 * time.Second)},
		{Key: key(replication.KindModel, "invoice-v1", "eastus"), TargetID: "invoice-v1", Status: replication.StatusCopying,
			Attempt: 1, FirstAttempt: 1, Percent: 40, RequestedAt: at(-10 * time.Second), StartedAt: at(-8 * time.Second), UpdatedAt: at(-2 * time.Second)},
		{Key: key(replication.KindClassifier, "router-v1", "eastus"), TargetID: "router-v1", Status: replication.StatusFailed,
			Attempt: 6, FirstAttempt: 1, ErrorCode: "DocumentModelLimit",
			ErrorMessage: "The maximum number of models has been reached for this resource. Delete models you no longer need, or raise the limit.",
			RequestedAt:  at(-3 * time.Hour), CompletedAt: at(-2 * time.Hour), UpdatedAt: at(-2 * time.Hour)},
		{Key: key(replication.KindModel, "receipt-v2", "westus2"), TargetID: "receipt-v2", Status: replication.StatusPending,
			Attempt: 2, FirstAttempt: 1, ErrorCode: "Throttled", ErrorMessage: "Too many requests", NextAttemptAt: at(25 * time.Second),
			RequestedAt: at(-90 * time.Second), UpdatedAt: at(-5 * time.Second)},
		{Key: key(replication.KindModel, "receipt-v2", "eastus"), TargetID: "receipt-dr", Status: replication.StatusAuthorized,
			Attempt: 1, FirstAttempt: 1, RequestedAt: at(-90 * time.Second), AuthorizedAt: at(-89 * time.Second), UpdatedAt: at(-89 * time.Second)},
	}
}

func startStatusAzurite(t *testing.T) *testenv.Azurite {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	az, err := testenv.StartAzurite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(az.Stop)
	return az
}

func (f *statusFixture) status(t *testing.T, env cliEnv, tty bool, args ...string) (int, string, string) {
	t.Helper()
	var out interface {
		Write([]byte) (int, error)
		String() string
	} = &bytes.Buffer{}
	if tty {
		out = &ttyBuffer{}
	}
	var stderr bytes.Buffer
	code := runStatus(context.Background(), append(args, "--settings", f.settings), out, &stderr, env)
	for _, s := range []string{out.String(), stderr.String()} {
		if strings.Contains(s, testenv.AzuriteAccountKey) || strings.Contains(s, "AccountKey=") {
			t.Errorf("the output shows the storage key:\n%s", s)
		}
	}
	return code, out.String(), stderr.String()
}

// One Azurite serves every status case; each case has a table of its own.
func TestStatus(t *testing.T) {
	az := startStatusAzurite(t)
	clock := newCLIClock()
	full := newStatusFixture(t, az, "statusfull", knownRows(clock.Now()))
	empty := newStatusFixture(t, az, "statusempty", nil)

	t.Run("golden", func(t *testing.T) {
		tests := []struct {
			name   string
			args   []string
			golden string
		}{
			{"table", nil, "status-table.txt"},
			{"json", []string{"--json"}, "status-json.json"},
			{"one source", []string{"--kind", "model", "--id", "invoice-v1"}, "status-id.txt"},
			{"filters", []string{"--state", "copying,failed", "--target", "eastus"}, "status-filter.txt"},
			{"classifiers", []string{"--kind", "classifier"}, "status-classifiers.txt"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				code, out, stderr := full.status(t, testEnv(clock, nil), false, tt.args...)
				if code != exitOK || stderr != "" {
					t.Fatalf("exit %d, stderr %q", code, stderr)
				}
				checkGolden(t, tt.golden, []byte(out))
			})
		}
	})

	t.Run("json is the API's shape", func(t *testing.T) {
		_, out, _ := full.status(t, testEnv(clock, nil), false, "--json")
		var ans handlers.ListAnswer
		if err := json.Unmarshal([]byte(out), &ans); err != nil {
			t.Fatal(err)
		}
		if len(ans.Value) != 5 || ans.Value[0].Kind != "classifier" || ans.Value[4].Target != "westus2" {
			t.Errorf("%+v", ans.Value)
		}
	})

	t.Run("by source", func(t *testing.T) {
		// The rows were written before replication rules (no Source): they are the legacy
		// source's, and only its.
		code, out, stderr := full.status(t, testEnv(clock, nil), false, "--source", "source")
		if code != exitOK || stderr != "" || !strings.HasSuffix(out, "5 replicas: 1 pending, 1 authorized, 1 copying, 1 succeeded, 1 failed\n") {
			t.Errorf("exit %d, stderr %q, out\n%s", code, stderr, out)
		}
	})

	t.Run("empty table", func(t *testing.T) {
		code, out, _ := empty.status(t, testEnv(clock, nil), false)
		if code != exitOK || out != "no replicas\n" {
			t.Errorf("exit %d, out %q", code, out)
		}
	})

	t.Run("unknown id", func(t *testing.T) {
		code, out, stderr := full.status(t, testEnv(clock, nil), false, "--id", "nope-v1")
		if code != exitFailure || out != "" || !strings.Contains(stderr, `no replication of model "nope-v1" is known`) {
			t.Errorf("exit %d, out %q, stderr %q", code, out, stderr)
		}
	})

	for _, tty := range []bool{false, true} {
		t.Run(fmt.Sprintf("watch tty=%t", tty), func(t *testing.T) {
			f := newStatusFixture(t, az, fmt.Sprintf("statuswatch%t", tty), knownRows(clock.Now())[:2])
			env := testEnv(newCLIClock(), nil)
			refreshes := 0
			env.sleep = func(ctx context.Context, d time.Duration) error {
				if refreshes++; refreshes == 2 {
					return context.Canceled // Ctrl-C during the second wait
				}
				// Between the refreshes, eastus's copy finishes.
				r, err := f.table.Get(ctx, replication.Key{Kind: replication.KindModel, SourceID: "invoice-v1", Target: "eastus"})
				if err != nil {
					return err
				}
				r.Status, r.Percent, r.CompletedAt = replication.StatusSucceeded, 100, env.now().Add(d)
				if err := f.table.Update(ctx, r); err != nil {
					return err
				}
				f.clock.Advance(d)
				return nil
			}
			env.now = f.clock.Now
			code, out, stderr := f.status(t, env, tty, "--watch", "--interval", "2s")
			if code != exitOK || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			checkGolden(t, fmt.Sprintf("status-watch-tty-%t.txt", tty), []byte(out))
		})
	}

	t.Run("usage", func(t *testing.T) {
		tests := []struct {
			args []string
			want string
		}{
			{[]string{"--state", "done"}, `unknown status "done"`},
			{[]string{"--kind", "pipeline"}, `unknown kind "pipeline"`},
			{[]string{"--id", "in voice"}, "not a valid model or classifier id"},
			{[]string{"--target", "mars"}, `"mars" is not a configured target (westus2, eastus)`},
			{[]string{"--source", "westus2"}, `--source "westus2" is not the source of any rule (sources: source)`},
			{[]string{"--watch", "--interval", "1ms"}, "--interval 1ms is too short"},
			{[]string{"invoice-v1"}, `unexpected argument "invoice-v1"`},
		}
		for _, tt := range tests {
			code, out, stderr := full.status(t, testEnv(clock, nil), false, tt.args...)
			if code != exitUsage || out != "" || !strings.Contains(stderr, tt.want) {
				t.Errorf("%v: exit %d, out %q, stderr %q; want exit 2 and %q", tt.args, code, out, stderr, tt.want)
			}
		}
	})

	t.Run("table unreachable", func(t *testing.T) {
		port, err := testenv.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		values := sampleValues(t)
		values["TableConnection"] = fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=%s;TableEndpoint=http://127.0.0.1:%d/devstoreaccount1;",
			testenv.AzuriteAccountKey, port)
		values["DIMIRROR_CALL_TIMEOUT"] = "1s"
		f := &statusFixture{settings: writeSettings(t, values)}
		code, out, stderr := f.status(t, testEnv(clock, nil), false)
		if code != exitFailure || out != "" || !strings.Contains(stderr, "create table replicas") {
			t.Errorf("exit %d, out %q, stderr %q", code, out, stderr)
		}
	})
}

// status reads every page of a listing through the engine's read side, whatever its filter.
func TestStatusReadsEveryPage(t *testing.T) {
	clock := rt.NewClock()
	w := rt.NewWorld(clock, "source", "westus2", "eastus")
	st := memstore.New()
	eng, err := replication.NewEngine(replication.Config{Source: w.Resource("source"), SourceName: "source.example",
		Targets: map[string]replication.Resource{"westus2": w.Resource("westus2"), "eastus": w.Resource("eastus")},
		Store:   st, Queue: &rt.Queue{}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2*memstore.MaxPage + 17 // three pages per target
	for i := range n {
		for _, target := range []string{"westus2", "eastus"} {
			st.Put(replication.Replica{Key: replication.Key{Kind: replication.KindModel, SourceID: fmt.Sprintf("m-%04d", i), Target: target},
				Status: replication.StatusSucceeded})
		}
	}
	tests := []struct {
		name   string
		filter replication.Filter
		want   int
	}{
		{"all", replication.Filter{}, 2 * n},
		{"one target", replication.Filter{Target: "eastus"}, n},
		{"one source", replication.Filter{Kind: replication.KindModel, SourceID: "m-1500"}, 2},
		{"no match", replication.Filter{Status: []replication.Status{replication.StatusFailed}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := listAll(context.Background(), eng, tt.filter)
			if err != nil || len(rows) != tt.want {
				t.Fatalf("%d rows, %v; want %d", len(rows), err, tt.want)
			}
			seen := map[string]bool{}
			for _, r := range rows {
				k := r.SourceID + "/" + r.Target
				if seen[k] {
					t.Fatalf("%s listed twice", k)
				}
				seen[k] = true
			}
		})
	}
}
