package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/internal/fakeclock"
	"github.com/dimirror/dimirror/shared/replication"
)

// copyFixture is didev (a source and two targets) on a fake clock, and settings pointing at it.
type copyFixture struct {
	srv      *didev.Server
	clock    *fakeclock.Clock
	settings string
}

const diKey = "devkey"

func startCopyFixture(t *testing.T) *copyFixture {
	t.Helper()
	clock := newCLIClock()
	srv, err := didev.Start(context.Background(), didev.Options{
		Resources: []didev.ResourceOptions{
			{Name: "source", Addr: "127.0.0.1:0", Region: "centralus"},
			{Name: "westus2", Addr: "127.0.0.1:0"},
			{Name: "eastus", Addr: "127.0.0.1:0"},
		},
		Key: diKey,
		Seeds: []didev.Seed{
			{Resource: "source", Kind: didev.KindModel, ID: "invoice-v1", Description: "Invoices"},
			{Resource: "source", Kind: didev.KindClassifier, ID: "router-v1", Description: "Routes documents"},
		},
		CopyDuration:  2 * time.Second,
		BuildDuration: 4 * time.Second,
		Rate:          didev.RateOptions{Off: true},
		Clock:         clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	values := sampleValues(t)
	values["DIMIRROR_SOURCE_ENDPOINT"] = srv.Endpoint("source")
	values["DIMIRROR_TARGETS"] = "westus2=" + srv.Endpoint("westus2") + ",eastus=" + srv.Endpoint("eastus")
	values["DIMIRROR_CALL_TIMEOUT"] = "10s"
	return &copyFixture{srv: srv, clock: clock, settings: writeSettings(t, values)}
}

// copy runs `dimirror copy args... --settings <fixture>`; on a terminal when tty is set.
func (f *copyFixture) copy(t *testing.T, ctx context.Context, env cliEnv, tty bool, args ...string) (int, string, string) {
	t.Helper()
	var out interface {
		Write([]byte) (int, error)
		String() string
	} = &bytes.Buffer{}
	if tty {
		out = &ttyBuffer{}
	}
	var stderr bytes.Buffer
	code := runCopy(ctx, append(args, "--settings", f.settings), out, &stderr, env)
	for _, s := range []string{out.String(), stderr.String()} {
		if strings.Contains(s, diKey) || strings.Contains(strings.ToLower(s), "accesstoken") {
			t.Errorf("the output shows a key or an access token:\n%s", s)
		}
	}
	return code, out.String(), stderr.String()
}

var operationIDRE = regexp.MustCompile(`"operationId": "[^"]+"`)

func TestGoldenCopy(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, f *copyFixture)
		tty    bool
		args   []string
		code   int
		golden string
	}{
		{name: "plain", args: []string{"--id", "invoice-v1"}, golden: "copy-plain.txt"},
		{name: "terminal", tty: true, args: []string{"--kind", "model", "--id", "invoice-v1", "--to", "westus2,eastus"}, golden: "copy-terminal.txt"},
		{name: "json", args: []string{"--id", "invoice-v1", "--to", "eastus,westus2", "--json"}, golden: "copy-json.json"},
		{name: "classifier under another id", args: []string{"--kind", "classifier", "--id", "router-v1", "--to", "eastus", "--target-id", "router-dr"},
			golden: "copy-classifier.txt"},
		{name: "up to date", setup: func(t *testing.T, f *copyFixture) {
			if code, out, _ := f.copy(t, context.Background(), testEnv(f.clock, nil), false, "--id", "invoice-v1"); code != exitOK {
				t.Fatalf("first copy: %d\n%s", code, out)
			}
		}, args: []string{"--id", "invoice-v1"}, golden: "copy-up-to-date.txt"},
		{name: "target holds another model", setup: seedOtherInvoice, args: []string{"--id", "invoice-v1"}, code: exitFailure, golden: "copy-exists.txt"},
		// --replace never deletes a model dimirror did not make (TestCopyReplaceKeepsOthersModels
		// checks the model is still there).
		{name: "target holds another model, replace", setup: seedOtherInvoice, tty: true, args: []string{"--id", "invoice-v1", "--replace"},
			code: exitFailure, golden: "copy-replace-other-terminal.txt"},
		{name: "target holds an older copy", setup: retrainAfterCopy, args: []string{"--id", "invoice-v1", "--to", "westus2"},
			code: exitFailure, golden: "copy-stale.txt"},
		{name: "target holds an older copy, replace", setup: retrainAfterCopy, tty: true, args: []string{"--id", "invoice-v1", "--replace"},
			golden: "copy-replace-terminal.txt"},
		{name: "copies keep failing", setup: func(t *testing.T, f *copyFixture) {
			if err := f.srv.SetFaults(didev.Faults{CopyFail: 1, Seed: 1}); err != nil {
				t.Fatal(err)
			}
		}, args: []string{"--id", "invoice-v1", "--to", "westus2", "--attempts", "2"}, code: exitFailure, golden: "copy-fails.txt"},
		{name: "copies keep failing, json", setup: func(t *testing.T, f *copyFixture) {
			if err := f.srv.SetFaults(didev.Faults{CopyFail: 1, Seed: 1}); err != nil {
				t.Fatal(err)
			}
		}, args: []string{"--id", "invoice-v1", "--to", "westus2", "--attempts", "2", "--json"}, code: exitFailure, golden: "copy-fails.json"},
		{name: "no such source", args: []string{"--id", "nope-v1"}, code: exitFailure, golden: "copy-no-source.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startCopyFixture(t)
			if tt.setup != nil {
				tt.setup(t, f)
			}
			code, out, stderr := f.copy(t, context.Background(), testEnv(f.clock, nil), tt.tty, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr %q", code, tt.code, stderr)
			}
			checkGolden(t, tt.golden, []byte(operationIDRE.ReplaceAllString(out, `"operationId": "<id>"`)))
		})
	}
}

// seedOtherInvoice puts a different invoice-v1 (built an hour after the source's) in westus2.
func seedOtherInvoice(t *testing.T, f *copyFixture) {
	f.clock.Advance(time.Hour)
	if err := f.srv.Resource("westus2").Seed(didev.Seed{Resource: "westus2", Kind: didev.KindModel, ID: "invoice-v1"}); err != nil {
		t.Fatal(err)
	}
}

// retrainAfterCopy copies invoice-v1 into westus2, then builds the source's invoice-v1 anew an
// hour later: westus2 then holds dimirror's copy of an older version.
func retrainAfterCopy(t *testing.T, f *copyFixture) {
	if code, out, _ := f.copy(t, context.Background(), testEnv(f.clock, nil), false, "--id", "invoice-v1", "--to", "westus2"); code != exitOK {
		t.Fatalf("first copy: %d\n%s", code, out)
	}
	f.clock.Advance(time.Hour)
	src := f.srv.Resource("source")
	if err := src.Delete(didev.KindModel, "invoice-v1"); err != nil {
		t.Fatal(err)
	}
	if err := src.Seed(didev.Seed{Kind: didev.KindModel, ID: "invoice-v1", Description: "Invoices"}); err != nil {
		t.Fatal(err)
	}
}

// --replace deletes only dimirror's own copies: someone else's model under the id stays, and
// an older copy of dimirror's is replaced by one of the source's current version.
func TestCopyReplaceKeepsOthersModels(t *testing.T) {
	t.Run("someone else's model", func(t *testing.T) {
		f := startCopyFixture(t)
		seedOtherInvoice(t, f)
		before, _ := f.srv.Resource("westus2").Model(didev.KindModel, "invoice-v1")
		if code, out, _ := f.copy(t, context.Background(), testEnv(f.clock, nil), false, "--id", "invoice-v1", "--to", "westus2", "--replace"); code != exitFailure {
			t.Fatalf("exit %d\n%s", code, out)
		}
		after, ok := f.srv.Resource("westus2").Model(didev.KindModel, "invoice-v1")
		if !ok || !after.Created.Equal(before.Created) || after.Tags[replication.TagSource] != "" {
			t.Errorf("westus2's own invoice-v1 was touched: before %+v, after %+v (present %v)", before, after, ok)
		}
	})
	t.Run("an older copy", func(t *testing.T) {
		f := startCopyFixture(t)
		retrainAfterCopy(t, f)
		if code, out, _ := f.copy(t, context.Background(), testEnv(f.clock, nil), false, "--id", "invoice-v1", "--to", "westus2", "--replace"); code != exitOK {
			t.Fatalf("exit %d\n%s", code, out)
		}
		src, _ := f.srv.Resource("source").Model(didev.KindModel, "invoice-v1")
		m, ok := f.srv.Resource("westus2").Model(didev.KindModel, "invoice-v1")
		if got, want := m.Tags[replication.TagSourceCreated], src.Created.UTC().Format(time.RFC3339); !ok || got != want {
			t.Errorf("westus2 holds the copy of %q, want the source's current version %q", got, want)
		}
	})
}

// The copies are real: each target holds the model with the pipeline's tags, every
// authorization was used by exactly one copyTo, and the JSON result says so.
func TestCopyResultAndService(t *testing.T) {
	f := startCopyFixture(t)
	code, out, _ := f.copy(t, context.Background(), testEnv(f.clock, nil), false, "--id", "invoice-v1", "--json")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, out)
	}
	var res copyResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if !res.Succeeded || len(res.Targets) != 2 {
		t.Fatalf("result %+v", res)
	}
	src, _ := f.srv.Resource("source").Model(didev.KindModel, "invoice-v1")
	for _, tr := range res.Targets {
		if tr.Status != jobSucceeded || tr.Attempts != 1 || tr.OperationID == "" || tr.Error != nil {
			t.Errorf("%+v", tr)
		}
		m, ok := f.srv.Resource(tr.Target).Model(didev.KindModel, "invoice-v1")
		if !ok {
			t.Errorf("%s does not hold invoice-v1", tr.Target)
			continue
		}
		if got, want := m.Tags[replication.TagSourceCreated], src.Created.UTC().Format(time.RFC3339); got != want {
			t.Errorf("%s: tag %s = %q, want %q", tr.Target, replication.TagSourceCreated, got, want)
		}
		if !strings.HasSuffix(m.Tags[replication.TagSource], "/model/invoice-v1") {
			t.Errorf("%s: tag %s = %q", tr.Target, replication.TagSource, m.Tags[replication.TagSource])
		}
	}
	for _, a := range f.srv.Stats().Authorizations {
		if a.State != "consumed" || a.CopyToAccepted != 1 {
			t.Errorf("authorization %s on %s: %s, copyTo accepted %d", a.TargetID, a.Resource, a.State, a.CopyToAccepted)
		}
	}
}

// Ctrl-C while copies run ends the command at once with exit 1, every unfinished target
// reported as canceled.
func TestCopyInterrupted(t *testing.T) {
	f := startCopyFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := testEnv(f.clock, nil)
	env.sleep = func(ctx context.Context, d time.Duration) error {
		cancel() // the first wait for the copies is interrupted
		<-ctx.Done()
		return ctx.Err()
	}
	code, out, _ := f.copy(t, ctx, env, false, "--id", "invoice-v1")
	if code != exitFailure || strings.Count(out, "failed: Canceled: interrupted") != 2 {
		t.Errorf("exit %d\n%s", code, out)
	}
}

// rulesSettings points the fixture's settings at its resources in the rules form.
func (f *copyFixture) rulesSettings(t *testing.T, rules string) string {
	t.Helper()
	values := sampleValues(t)
	for _, k := range []string{"DIMIRROR_SOURCE_ENDPOINT", "DIMIRROR_SOURCE_KEY", "DIMIRROR_SOURCE_API_VERSION", "DIMIRROR_TARGETS", "DIMIRROR_TARGET_KEYS"} {
		delete(values, k)
	}
	values["DIMIRROR_RESOURCES"] = "source=" + f.srv.Endpoint("source") + ",westus2=" + f.srv.Endpoint("westus2") + ",eastus=" + f.srv.Endpoint("eastus")
	values["DIMIRROR_RESOURCE_KEYS"] = "source=" + diKey + ",westus2=" + diKey + ",eastus=" + diKey
	values["DIMIRROR_RULES"] = rules
	values["DIMIRROR_CALL_TIMEOUT"] = "10s"
	return writeSettings(t, values)
}

// In the rules form --source names the resource the item is copied from and --to defaults to
// its rules; a copy of a copy keeps its origin, and the origin is never a target.
func TestCopyFromASource(t *testing.T) {
	f := startCopyFixture(t)
	f.settings = f.rulesSettings(t, "source>westus2,westus2>eastus,westus2>source")
	run := func(args ...string) (int, copyResult, string) {
		t.Helper()
		code, out, stderr := f.copy(t, context.Background(), testEnv(f.clock, nil), false, append(args, "--json")...)
		var res copyResult
		if out != "" {
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("%v: %v\n%s", args, err, out)
			}
		}
		return code, res, stderr
	}
	if code, res, stderr := run("--source", "source", "--id", "invoice-v1"); code != exitOK || len(res.Targets) != 1 || res.Targets[0].Target != "westus2" {
		t.Fatalf("source>westus2: exit %d %+v %s", code, res, stderr)
	}
	// westus2's copy goes on to eastus by default; its origin stays the source's model.
	if code, res, stderr := run("--source", "westus2", "--id", "invoice-v1", "--to", "eastus"); code != exitOK || len(res.Targets) != 1 {
		t.Fatalf("westus2>eastus: exit %d %+v %s", code, res, stderr)
	}
	m, _ := f.srv.Resource("eastus").Model(didev.KindModel, "invoice-v1")
	if tag := m.Tags[replication.TagSource]; tag != replication.SourceTag(strings.TrimPrefix(f.srv.Endpoint("source"), "http://"), replication.KindModel, "invoice-v1") {
		t.Errorf("eastus's copy names %q as its origin", tag)
	}
	// Into its origin: refused, nothing authorized there.
	before := len(f.srv.Resource("source").Reservations())
	code, res, _ := run("--source", "westus2", "--id", "invoice-v1", "--to", "source")
	if code != exitFailure || res.Error == nil || res.Error.Code != "InvalidRequest" || !strings.Contains(res.Error.Message, "never copied into its origin") {
		t.Errorf("into the origin: exit %d %+v", code, res)
	}
	if len(f.srv.Resource("source").Reservations()) != before {
		t.Error("an authorization was issued in the origin")
	}
	usage := []struct {
		args []string
		want string
	}{
		{[]string{"--id", "invoice-v1"}, "--source is required: several resources are sources (source, westus2)"},
		{[]string{"--source", "eastus", "--id", "invoice-v1"}, `--source "eastus" is not the source of any rule (sources: source, westus2)`},
		{[]string{"--source", "source", "--id", "invoice-v1", "--to", "eastus"}, `--to: no rule copies source into "eastus"`},
	}
	for _, tt := range usage {
		if code, _, stderr := run(tt.args...); code != exitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tt.args, code, stderr, tt.want)
		}
	}
}

func TestCopyUsage(t *testing.T) {
	f := startCopyFixture(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no id", []string{}, "--id is required"},
		{"bad kind", []string{"--id", "invoice-v1", "--kind", "pipeline"}, `--kind "pipeline"`},
		{"bad id", []string{"--id", "in voice"}, "not a valid id"},
		{"bad target id", []string{"--id", "invoice-v1", "--target-id", "x"}, "--target-id"},
		{"unknown target", []string{"--id", "invoice-v1", "--to", "westus2,mars"}, `"mars" is not a configured target (targets: westus2, eastus)`},
		{"positional", []string{"invoice-v1"}, `unexpected argument "invoice-v1"`},
		{"unknown flag", []string{"--id", "invoice-v1", "--force"}, "flag provided but not defined: -force"},
		{"attempts", []string{"--id", "invoice-v1", "--attempts", "0"}, "--attempts 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := f.copy(t, context.Background(), testEnv(f.clock, nil), false, tt.args...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and %q", code, out, stderr, tt.want)
			}
		})
	}
	if n := len(f.srv.Stats().Authorizations); n != 0 {
		t.Errorf("usage errors issued %d authorizations", n)
	}
}

// A resource that does not answer within DIMIRROR_CALL_TIMEOUT fails the call, not the command's
// whole --timeout later.
func TestCopyCallTimeout(t *testing.T) {
	f := startCopyFixture(t)
	values := sampleValues(t)
	values["DIMIRROR_SOURCE_ENDPOINT"] = f.srv.Endpoint("source")
	values["DIMIRROR_TARGETS"] = "westus2=" + f.srv.Endpoint("westus2")
	values["DIMIRROR_TARGET_KEYS"] = "westus2=" + diKey
	values["DIMIRROR_CALL_TIMEOUT"] = "300ms"
	f.settings = writeSettings(t, values)
	if err := f.srv.SetFaults(didev.Faults{Latency: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, out, stderr := f.copy(t, context.Background(), testEnv(f.clock, nil), false, "--id", "invoice-v1")
	if code != exitFailure || !strings.Contains(out, "failed: Timeout: no answer within DIMIRROR_CALL_TIMEOUT") {
		t.Errorf("exit %d\n%s%s", code, out, stderr)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("took %s with a 300ms call timeout", d)
	}
}

// The views' words for the replica's states.
func TestJobShowsTheReplica(t *testing.T) {
	start := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		r       replication.Replica
		state   string
		ended   time.Duration
		errCode string
	}{
		{"pending", replication.Replica{Status: replication.StatusPending, Attempt: 1}, jobAuthorize, 0, ""},
		{"authorized", replication.Replica{Status: replication.StatusAuthorized, Attempt: 1}, jobAuthorize, 0, ""},
		{"copying", replication.Replica{Status: replication.StatusCopying, Attempt: 1, Percent: 40}, jobCopying, 0, ""},
		{"copying, a poll throttled", replication.Replica{Status: replication.StatusCopying, Attempt: 1, ErrorCode: "429"}, jobCopying, 0, "429"},
		{"retrying", replication.Replica{Status: replication.StatusPending, Attempt: 2, ErrorCode: "InternalServerError"}, jobRetrying, 0, "InternalServerError"},
		{"first attempt waits", replication.Replica{Status: replication.StatusPending, Attempt: 1, ErrorCode: "DocumentModelLimit"}, jobWaiting, 0, "DocumentModelLimit"},
		{"authorized, queue waits", replication.Replica{Status: replication.StatusAuthorized, Attempt: 2, ErrorCode: "429"}, jobWaiting, 0, "429"},
		{"succeeded", replication.Replica{Status: replication.StatusSucceeded, Attempt: 1, StartedAt: start, CompletedAt: start.Add(2 * time.Second)},
			jobSucceeded, 2 * time.Second, ""},
		{"up to date", replication.Replica{Status: replication.StatusSucceeded, Attempt: 1, CompletedAt: start}, jobUpToDate, 0, ""},
		{"failed", replication.Replica{Status: replication.StatusFailed, Attempt: 3, ErrorCode: "Forbidden", CompletedAt: start.Add(6 * time.Second)},
			jobFailed, 6 * time.Second, "Forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := &copyJob{target: "westus2", state: jobWaiting}
			tt.r.TargetID = "invoice-v1"
			j.show(&tt.r, start)
			if j.state != tt.state || j.ended != tt.ended || j.errCode != tt.errCode || j.attempt != tt.r.Attempt || j.percent != tt.r.Percent {
				t.Errorf("job %+v, want state %s, ended %s, error %q", j, tt.state, tt.ended, tt.errCode)
			}
		})
	}
}

func TestCopyPolicyPutsTheFlagsOnTheSettings(t *testing.T) {
	tests := []struct {
		name        string
		settings    map[string]string
		req         copyRequest
		wantReplace bool
		wantMax     time.Duration
	}{
		{"defaults", nil, copyRequest{attempts: 3}, false, time.Minute},
		{"--replace", nil, copyRequest{attempts: 1, replace: true}, true, time.Minute},
		{"settings replace", map[string]string{"DIMIRROR_REPLACE": "true"}, copyRequest{attempts: 5}, true, time.Minute},
		{"short retry maximum", map[string]string{"DIMIRROR_RETRY_BASE": "1s", "DIMIRROR_RETRY_MAX": "10s"}, copyRequest{attempts: 2}, false, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values := sampleValues(t)
			for k, v := range tt.settings {
				values[k] = v
			}
			cfg, err := loadSettings(writeSettings(t, values), func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			p := copyPolicy(cfg, tt.req)
			if p.MaxAttempts != tt.req.attempts || p.Replace != tt.wantReplace || p.RetryBase != cliRetryBase || p.RetryMax != tt.wantMax {
				t.Errorf("policy %+v", p)
			}
			if p.Backoff(1) != 2*time.Second || p.Backoff(2) != 4*time.Second {
				t.Errorf("backoff %s, %s; want 2s, 4s", p.Backoff(1), p.Backoff(2))
			}
		})
	}
}

// The inline queue delivers sent messages at once and scheduled ones on the command's clock,
// drops duplicates by MessageId, and delivers a failed message again a second later.
func TestInlineQueue(t *testing.T) {
	msg := func(attempt, check int) *replication.CopyMessage {
		return &replication.CopyMessage{Kind: replication.KindModel, SourceID: "invoice-v1", Target: "westus2", TargetID: "invoice-v1", Attempt: attempt, Check: check}
	}
	type delivery struct {
		id    string
		count int
	}
	tests := []struct {
		name  string
		send  func(ctx context.Context, q *inlineQueue)
		fails int // the first deliveries that fail
		// advance is how far the clock moves before each delivery round.
		advance []time.Duration
		want    [][]delivery
	}{
		{"sent at once", func(ctx context.Context, q *inlineQueue) {
			_ = q.SendCopy(ctx, msg(1, 0))
			_ = q.SendCopy(ctx, msg(1, 0)) // a duplicate
		}, 0, []time.Duration{0, time.Second}, [][]delivery{{{"model:invoice-v1:westus2:1", 1}}, nil}},
		{"scheduled on the clock", func(ctx context.Context, q *inlineQueue) {
			_ = q.Schedule(ctx, msg(1, 2), 1500*time.Millisecond)
			_ = q.Schedule(ctx, msg(1, 1), 500*time.Millisecond)
		}, 0, []time.Duration{0, time.Second, time.Second}, [][]delivery{nil, {{"model:invoice-v1:westus2:1:check1", 1}}, {{"model:invoice-v1:westus2:1:check2", 1}}}},
		{"failed, delivered again", func(ctx context.Context, q *inlineQueue) {
			_ = q.SendCopy(ctx, msg(2, 0))
		}, 2, []time.Duration{0, 500 * time.Millisecond, 500 * time.Millisecond, time.Second},
			[][]delivery{{{"model:invoice-v1:westus2:2", 1}}, nil, {{"model:invoice-v1:westus2:2", 2}}, {{"model:invoice-v1:westus2:2", 3}}}},
		{"dropped after the last delivery", func(ctx context.Context, q *inlineQueue) {
			_ = q.SendCopy(ctx, msg(1, 0))
		}, maxDeliveries, append(slices.Repeat([]time.Duration{time.Second}, maxDeliveries), time.Second),
			append(func() (d [][]delivery) {
				for i := range maxDeliveries {
					d = append(d, []delivery{{"model:invoice-v1:westus2:1", i + 1}})
				}
				return d
			}(), nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			clock := newCLIClock()
			q := &inlineQueue{now: clock.Now}
			tt.send(ctx, q)
			failed := 0
			for i, d := range tt.advance {
				clock.Advance(d)
				var got []delivery
				q.deliver(ctx, func(_ context.Context, m *replication.CopyMessage, n int) error {
					got = append(got, delivery{m.MessageID(), n})
					if failed < tt.fails {
						failed++
						return errors.New("store unavailable")
					}
					return nil
				})
				if !slices.Equal(got, tt.want[i]) {
					t.Errorf("round %d: delivered %v, want %v", i, got, tt.want[i])
				}
			}
		})
	}
}
