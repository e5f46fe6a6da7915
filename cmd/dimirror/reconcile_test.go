package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/internal/devstack"
	"github.com/dimirror/dimirror/internal/testenv"
	"github.com/dimirror/dimirror/shared/reconcile"
	"github.com/dimirror/dimirror/shared/replication"
)

// reconcileStack is the local stack (its own Azurite) and a settings file naming it.
func reconcileStack(t *testing.T, az *testenv.Azurite) (*devstack.Stack, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := devstack.Start(ctx, devstack.Options{Azurite: az, Settings: map[string]string{"DIMIRROR_LOG_LEVEL": "warn"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, settingsFile(t, st.Settings, nil)
}

// settingsFile writes a Functions settings file with values and extra.
func settingsFile(t *testing.T, values, extra map[string]string) string {
	t.Helper()
	all := map[string]string{}
	for k, v := range values {
		all[k] = v
	}
	for k, v := range extra {
		all[k] = v
	}
	b, err := json.Marshal(map[string]any{"IsEncrypted": false, "Values": all})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "local.settings.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func reconcileEnv() cliEnv {
	return cliEnv{
		lookupEnv: func(string) (string, bool) { return "", false }, // the settings file alone
		now:       func() time.Time { return time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC) },
		sleep:     sleepCtx,
		terminal:  func(io.Writer) bool { return false },
	}
}

func reconcileCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runReconcile(context.Background(), args, &stdout, &stderr, reconcileEnv())
	for _, s := range []string{stdout.String(), stderr.String()} {
		for _, secret := range []string{devstack.Key, devstack.APIKey, testenv.AzuriteAccountKey, "SharedAccessKey=", `"accessToken"`} {
			if strings.Contains(s, secret) {
				t.Errorf("the output shows a secret (%.4s...)", secret)
			}
		}
	}
	return code, stdout.String(), stderr.String()
}

func authorizations(st *devstack.Stack) int { return len(st.DI.Stats().Authorizations) }

func TestReconcileCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	az, err := testenv.StartAzurite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(az.Stop)

	t.Run("rules: one entry per rule, naming its source", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		st, err := devstack.Start(ctx, devstack.Options{Azurite: az, Rules: "a>b,b>a,a>c", Settings: map[string]string{"DIMIRROR_LOG_LEVEL": "warn"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		code, out, stderr := reconcileCmd(t, "--dry-run", "--settings", settingsFile(t, st.Settings, nil))
		if code != exitDrift {
			t.Fatalf("exit %d, want %d (drift)\n%s%s", code, exitDrift, out, stderr)
		}
		for _, want := range []string{
			`rules a>b, b>a, a>c; the sources have`,
			`(?m)^CATEGORY +ACTION +KIND +FROM +ID +TARGET +TARGET ID +DETAIL$`,
			`(?m)^missing +start +model +a +invoice-v1 +b +=`,
			`(?m)^missing +start +model +a +invoice-v1 +c +=`,
			`(?m)^missing +start +classifier +a +router-v1 +c +=`,
		} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		// Never into the origin: no entry targets a, where every item was trained.
		if regexp.MustCompile(`(?m)^\S+ +\S+ +\S+ +\S+ +\S+ +a +`).MatchString(out) {
			t.Errorf("an entry targets the origin a:\n%s", out)
		}
		if authorizations(st) != 0 {
			t.Error("the dry run authorized copies")
		}
	})

	t.Run("dry run reports drift and changes nothing", func(t *testing.T) {
		st, settings := reconcileStack(t, az)
		code, out, stderr := reconcileCmd(t, "--dry-run", "--settings", settings)
		if code != exitDrift {
			t.Fatalf("exit %d, want %d (drift)\n%s%s", code, exitDrift, out, stderr)
		}
		for _, want := range []string{
			`dimirror reconcile \(dry run\) at 12:00:00 UTC: the source has 2 models and 1 classifier selected; targets eastus, westus2`,
			`(?m)^CATEGORY +ACTION +KIND +ID +TARGET +TARGET ID +DETAIL$`,
			`(?m)^missing +start +classifier +router-v1 +eastus +=`,
			`(?m)^missing +start +model +invoice-v1 +westus2 +=`,
			`(?m)^drift: 6 missing \(0 errors\)$`,
		} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("output lacks %s:\n%s", want, out)
			}
		}
		if strings.Contains(out, "RESULT") {
			t.Error("a dry run shows results")
		}
		code, out, _ = reconcileCmd(t, "--dry-run", "--json", "--settings", settings)
		var plan reconcile.Plan
		if err := json.Unmarshal([]byte(out), &plan); err != nil || code != exitDrift {
			t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
		}
		if !plan.DryRun || len(plan.Entries) != 6 || plan.Entries[0].Category != reconcile.Missing {
			t.Errorf("plan %+v", plan)
		}
		if n := authorizations(st); n != 0 {
			t.Errorf("a dry run authorized %d copies", n)
		}
	})

	t.Run("in sync", func(t *testing.T) {
		st, settings := reconcileStack(t, az)
		host := strings.TrimPrefix(st.DI.Endpoint("source"), "http://")
		src := st.DI.Resource("source")
		for _, target := range []string{"westus2", "eastus"} {
			for _, id := range []string{"invoice-v1", "receipt-v2"} {
				m, _ := src.Model(didev.KindModel, id)
				if err := st.DI.Resource(target).Seed(didev.Seed{Kind: didev.KindModel, ID: id, Tags: map[string]string{
					replication.TagSource: host + "/model/" + id, replication.TagSourceCreated: m.Created.UTC().Format(time.RFC3339)}}); err != nil {
					t.Fatal(err)
				}
			}
		}
		code, out, _ := reconcileCmd(t, "--dry-run", "--settings", settings)
		if code != exitDrift || !strings.Contains(out, "drift: 2 missing") {
			t.Fatalf("the classifier missing: exit %d\n%s", code, out)
		}
		// Leave the classifier out: the rest is in sync.
		code, out, _ = reconcileCmd(t, "--dry-run", "--settings", settingsFile(t, st.Settings, map[string]string{"DIMIRROR_EXCLUDE": "router-*"}))
		if code != exitOK || !strings.HasSuffix(out, "in sync: nothing to do (0 errors)\n") || strings.Contains(out, "CATEGORY") {
			t.Errorf("in sync: exit %d\n%s", code, out)
		}
		if !strings.Contains(out, "the source has 2 models and 0 classifiers selected") {
			t.Errorf("heading:\n%s", out)
		}
	})

	t.Run("sweep for real", func(t *testing.T) {
		st, settings := reconcileStack(t, az)
		code, out, stderr := reconcileCmd(t, "--settings", settings)
		if code != exitOK {
			t.Fatalf("exit %d\n%s%s", code, out, stderr)
		}
		if !regexp.MustCompile(`(?m)^missing +start +model +receipt-v2 +eastus +=\s+authorized$`).MatchString(out) ||
			!strings.Contains(out, "(sweep)") || !strings.Contains(out, "RESULT") {
			t.Errorf("output:\n%s", out)
		}
		if n := authorizations(st); n != 6 {
			t.Errorf("%d authorizations, want 6 (3 items, 2 targets)", n)
		}
		// The copies are on their way: a dry run now sees them in flight, which is still drift.
		code, out, _ = reconcileCmd(t, "--dry-run", "--settings", settings)
		if code != exitDrift || !strings.Contains(out, "drift: 6 inflight") {
			t.Errorf("after the sweep: exit %d\n%s", code, out)
		}
	})
}

func TestReconcileUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"help", []string{"--help"}, exitOK, "Usage: dimirror reconcile [flags]"},
		{"unknown flag", []string{"--prune"}, exitUsage, "flag provided but not defined: -prune"},
		{"argument", []string{"now"}, exitUsage, `unexpected argument "now"`},
		{"timeout", []string{"--timeout", "0s"}, exitUsage, "--timeout must be positive"},
		{"no settings", []string{"--dry-run"}, exitSettings, "DIMIRROR_SOURCE_ENDPOINT: required"},
		{"missing settings file", []string{"--settings", filepath.Join(t.TempDir(), "absent.json")}, exitSettings, "absent.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := reconcileCmd(t, tt.args...)
			if code != tt.code || !strings.Contains(out+stderr, tt.want) {
				t.Errorf("exit %d (want %d)\nstdout %s\nstderr %s\nwant %q", code, tt.code, out, stderr, tt.want)
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &stdout, &stderr); code != exitOK || !strings.Contains(stdout.String(), "  reconcile  compare the targets") {
		t.Errorf("the command list lacks reconcile:\n%s", stdout.String())
	}
}
