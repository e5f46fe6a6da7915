package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
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
		{name: "target holds another model, replace", setup: seedOtherInvoice, tty: true, args: []string{"--id", "invoice-v1", "--replace"}, golden: "copy-replace-terminal.txt"},
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
