package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/shared/drill"
)

func (f *copyFixture) drill(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runDrill(context.Background(), append(args, "--settings", f.settings), &stdout, &stderr, testEnv(f.clock, nil))
	for _, s := range []string{stdout.String(), stderr.String()} {
		if strings.Contains(s, diKey) {
			t.Errorf("the output shows a key:\n%s", s)
		}
	}
	return code, stdout.String(), stderr.String()
}

// End to end against didev: both items copied into both targets is ready (exit 0); a model
// deleted from a target fails the drill (exit 3) naming it and the target.
func TestDrillAgainstDidev(t *testing.T) {
	f := startCopyFixture(t)
	for _, args := range [][]string{{"--id", "invoice-v1"}, {"--kind", "classifier", "--id", "router-v1"}} {
		if code, out, stderr := f.copy(t, context.Background(), testEnv(f.clock, nil), false, args...); code != exitOK {
			t.Fatalf("copy %v: %d\n%s\n%s", args, code, out, stderr)
		}
	}
	code, out, stderr := f.drill(t)
	if code != exitOK || !strings.Contains(out, "ready: every target could serve now") || !strings.Contains(out, "1 model and 1 classifier selected") {
		t.Fatalf("after the copies: exit %d\n%s\n%s", code, out, stderr)
	}

	if err := f.srv.Resource("eastus").Delete(didev.KindModel, "invoice-v1"); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = f.drill(t)
	if code != exitDrift {
		t.Fatalf("a model deleted: exit %d, want %d\n%s\n%s", code, exitDrift, out, stderr)
	}
	for _, want := range []string{"eastus:\n  missing  model invoice-v1", "not ready: eastus", "westus2  2024-11-30   ready"} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = f.drill(t, "--json")
	var rep drill.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitDrift {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
	}
	if rep.Ready || len(rep.Targets) != 2 || rep.Targets[0].Target != "eastus" || len(rep.Targets[0].Reasons) != 1 ||
		rep.Targets[0].Reasons[0].Code != drill.Missing || rep.Targets[0].Reasons[0].ID != "invoice-v1" || !rep.Targets[1].Ready {
		t.Errorf("report %+v", rep)
	}

	// A target that cannot be read: the verdict is unknown (exit 1), the other target still judged.
	if err := f.srv.SetOutage("eastus", 1); err != nil {
		t.Fatal(err)
	}
	code, out, _ = f.drill(t, "--timeout", "20s")
	if code != exitFailure || !strings.Contains(out, "eastus: could not be read") || !strings.Contains(out, "unknown: a target could not be read") {
		t.Errorf("an outage: exit %d\n%s", code, out)
	}
}

func TestDrillUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--help"}, exitOK, "dimirror drill --json | jq"},
		{[]string{"eastus"}, exitUsage, `unexpected argument "eastus": drill takes flags only`},
		{[]string{"--timeout", "0s"}, exitUsage, "--timeout must be positive"},
		{[]string{"--bogus"}, exitUsage, "flag provided but not defined: -bogus"},
		{[]string{"--settings", "/nonexistent/local.settings.json"}, exitSettings, "dimirror drill:"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runDrill(context.Background(), tc.args, &stdout, &stderr, testEnv(newCLIClock(), nil))
			if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.want) {
				t.Errorf("exit %d, want %d with %q\n%s%s", code, tc.code, tc.want, stdout.String(), stderr.String())
			}
		})
	}
}

// In the rules form every rule's target is judged against that rule's source, against didev:
// source>westus2 and westus2>source, both copied, are ready; a model deleted from westus2 fails
// the drill for the rule source>westus2, named as such.
func TestDrillJudgesEveryRule(t *testing.T) {
	f := startCopyFixture(t)
	for _, args := range [][]string{{"--id", "invoice-v1"}, {"--kind", "classifier", "--id", "router-v1"}} {
		if code, out, stderr := f.copy(t, context.Background(), testEnv(f.clock, nil), false, append(args, "--to", "westus2")...); code != exitOK {
			t.Fatalf("copy %v: %d\n%s\n%s", args, code, out, stderr)
		}
	}
	f.settings = f.rulesSettings(t, "source>westus2,westus2>source")
	code, out, stderr := f.drill(t, "--json")
	if code != exitOK {
		t.Fatalf("both rules served: exit %d\n%s\n%s", code, out, stderr)
	}
	var rep drill.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Targets) != 2 || rep.Targets[0].From != "source" || rep.Targets[0].Target != "westus2" ||
		rep.Targets[1].From != "westus2" || rep.Targets[1].Target != "source" || !rep.Ready {
		t.Fatalf("entries %+v, want one per rule, both ready", rep.Targets)
	}
	if err := f.srv.Resource("westus2").Delete(didev.KindModel, "invoice-v1"); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = f.drill(t)
	if code != exitDrift || !strings.Contains(out, "source>westus2:") || !strings.Contains(out, "missing") || !strings.Contains(out, "invoice-v1") {
		t.Errorf("after deleting invoice-v1 from westus2: exit %d\n%s\n%s", code, out, stderr)
	}
}
