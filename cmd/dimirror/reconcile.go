package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dimirror/dimirror/internal/app"
	"github.com/dimirror/dimirror/shared/reconcile"
)

func init() {
	register(command{name: "reconcile", summary: "compare the targets with the source and fix the drift (--dry-run: only report it)",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			return runReconcile(ctx, args, stdout, stderr, processEnv())
		}})
}

const reconcileHelp = `Usage: dimirror reconcile [flags]

Runs one sweep, as the sweep timer does: lists the models and classifiers of the source and of
every target, plans, and acts on the plan:

  missing   the target lacks it: replication starts (restore: the verified copy vanished)
  stale     the source was rebuilt under the same id: reported; replaced with DIMIRROR_REPLACE=true
  orphaned  dimirror's copy of something the source no longer has: reported; deleted with
            DIMIRROR_PRUNE=true (never a model dimirror did not create)
  failed    the last run failed: re-driven when the cause may have passed, else reported
  inflight  a copy is on its way
  conflict  the target holds something else under the id: reported
  expiring  the model expires within DIMIRROR_EXPIRY_WARNING (30 days): reported (not drift)

A composed model waits until its component models and classifier are in the target; a target
at its model limit takes only what it has room for. DIMIRROR_INCLUDE and DIMIRROR_EXCLUDE
select the ids. With --dry-run nothing is requested, deleted or written: use it as a pipeline
gate.

Flags:
%s
Examples:
  dimirror reconcile --dry-run
  dimirror reconcile --dry-run --json | jq '.entries[] | select(.category == "missing")'
  dimirror reconcile --settings local.settings.json

Exit codes: with --dry-run, 0 in sync, 3 drift; without, 0 the sweep ran (what it started is
followed by the functions). 1 a resource or the table could not be read (or, without
--dry-run, an action failed), 2 usage error, 4 invalid settings.

` + settingsHelp + "\n"

type reconcileFlags struct {
	dryRun, json bool
	timeout      time.Duration
	settings     string
}

func parseReconcileFlags(args []string, stdout, stderr io.Writer) (reconcileFlags, int, bool) {
	var f reconcileFlags
	fs := flag.NewFlagSet("dimirror reconcile", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&f.dryRun, "dry-run", false, "plan only: change nothing; exit 3 when the targets differ from the source")
	fs.BoolVar(&f.json, "json", false, "print the plan as JSON instead of a table")
	fs.DurationVar(&f.timeout, "timeout", 9*time.Minute, "give up after this `duration`")
	settings := addSettingsFlag(fs)
	usageErr := func(format string, a ...any) (reconcileFlags, int, bool) {
		return f, usageError(stderr, fs.Name(), format, a...), false
	}
	if code, ok := parseFlags(fs, args, reconcileHelp, ": reconcile takes flags only", stdout, stderr); !ok {
		return f, code, false
	}
	if f.timeout <= 0 {
		return usageErr("--timeout must be positive")
	}
	f.settings = *settings
	return f, exitOK, true
}

func runReconcile(ctx context.Context, args []string, stdout, stderr io.Writer, env cliEnv) int {
	f, code, ok := parseReconcileFlags(args, stdout, stderr)
	if !ok {
		return code
	}
	cfg, err := loadSettings(f.settings, env.lookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "dimirror reconcile: %v\n", err)
		return exitSettings
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	// The app logs warnings and errors to stderr; the plan goes to stdout.
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: max(cfg.LogLevel, slog.LevelWarn)}))
	a, err := app.New(ctx, cfg, log, app.Options{NoQueue: f.dryRun})
	if err != nil {
		fmt.Fprintf(stderr, "dimirror reconcile: %v\n", err)
		return exitFailure
	}
	defer a.Close(context.Background())
	plan, err := a.Handlers.Reconciler.Sweep(ctx, reconcile.SweepOptions{DryRun: f.dryRun})
	if err != nil {
		fmt.Fprintf(stderr, "dimirror reconcile: %v\n", err)
		return exitFailure
	}
	var rules []string
	if !cfg.Legacy {
		for _, r := range cfg.Rules {
			rules = append(rules, r.String())
		}
	}
	if err := printPlan(stdout, plan, f.json, env.now(), rules); err != nil {
		fmt.Fprintf(stderr, "dimirror reconcile: %v\n", err)
		return exitFailure
	}
	switch {
	case plan.Incomplete || (!f.dryRun && plan.Errors > 0):
		return exitFailure
	case f.dryRun && !plan.InSync():
		return exitDrift
	}
	return exitOK
}

// printPlan writes the plan as JSON, or as a table with a heading and a closing count. rules
// are the settings' rules in the rules form (nil in the legacy form): the heading names them and
// a FROM column names each entry's source, the rule's from.
func printPlan(w io.Writer, p *reconcile.Plan, asJSON bool, now time.Time, rules []string) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(p)
	}
	mode := "sweep"
	if p.DryRun {
		mode = "dry run"
	}
	if rules != nil {
		fmt.Fprintf(w, "dimirror reconcile (%s) at %s: rules %s; the sources have %s and %s selected; targets %s\n\n",
			mode, now.UTC().Format("15:04:05 UTC"), strings.Join(rules, ", "), plural(p.SourceModels, "model"), plural(p.SourceClassifiers, "classifier"), strings.Join(p.Targets, ", "))
	} else {
		fmt.Fprintf(w, "dimirror reconcile (%s) at %s: the source has %s and %s selected; targets %s\n\n",
			mode, now.UTC().Format("15:04:05 UTC"), plural(p.SourceModels, "model"), plural(p.SourceClassifiers, "classifier"), strings.Join(p.Targets, ", "))
	}
	if len(p.Entries) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		head := "CATEGORY\tACTION\tKIND\tID\tTARGET\tTARGET ID\tDETAIL"
		if rules != nil {
			head = "CATEGORY\tACTION\tKIND\tFROM\tID\tTARGET\tTARGET ID\tDETAIL"
		}
		if !p.DryRun {
			head += "\tRESULT"
		}
		fmt.Fprintln(tw, head)
		for _, e := range p.Entries {
			tid := e.TargetID
			if tid == e.SourceID {
				tid = "="
			}
			cells := []string{string(e.Category), string(e.Action), string(e.Kind), e.SourceID, e.Target, tid, oneLine(e.Detail)}
			if rules != nil {
				from := e.Source
				if from == "" {
					from = "-"
				}
				cells = slices.Insert(cells, 3, from)
			}
			line := strings.Join(cells, "\t")
			if !p.DryRun {
				line += "\t" + oneLine(e.Result)
			}
			fmt.Fprintln(tw, line)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	for _, q := range p.Quota {
		fmt.Fprintf(w, "quota: target %s holds %d of %d custom models; %d wait for room\n", q.Target, q.Count, q.Limit, q.Waiting)
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	counts := p.Counts()
	var parts []string
	for _, c := range reconcile.Categories {
		if counts[c] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[c], c))
		}
	}
	verdict := "in sync"
	switch {
	case p.Incomplete:
		verdict = "incomplete: a resource could not be read"
	case !p.InSync():
		verdict = "drift"
	}
	if len(parts) == 0 {
		parts = []string{"nothing to do"}
	}
	_, err := fmt.Fprintf(w, "%s: %s (%d errors)\n", verdict, strings.Join(parts, ", "), p.Errors)
	return err
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// oneLine keeps a table cell on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
