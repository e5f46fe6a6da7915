package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dimirror/dimirror/internal/app"
	"github.com/dimirror/dimirror/shared/config"
	"github.com/dimirror/dimirror/shared/drill"
)

func init() {
	register(command{name: "drill", summary: "check, read-only, that every target could serve now (a disaster-recovery drill)",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			return runDrill(ctx, args, stdout, stderr, processEnv())
		}})
}

const drillHelp = `Usage: dimirror drill [flags]

A disaster-recovery drill: answers, for every target, whether it could serve now if the
source's region went away. It lists the source and every target and reads the details of
each selected item on both sides; it changes nothing. A target is ready when, for every
model and classifier DIMIRROR_INCLUDE and DIMIRROR_EXCLUDE select on the source:

  missing              the target holds it
  kind-unsupported     the target's api-version can hold its kind (classifiers: 2023-07-31 on)
  other-version        it holds the source's version (dimirror's tags, the preserved expiry)
  schema-mismatch      with the same document types and field schema (a fingerprint of both
                       sides' details)
  expiring             not expiring within DIMIRROR_EXPIRY_WARNING (default 30 days)
  api-version-retired  and the target's api-version is not past its published retirement
                       (2.1: 2027-09-15; 2022-08-31: 2029-03-30)

Each line names a reason that fails the drill; every one is listed.

Flags:
%s
Examples:
  dimirror drill
  dimirror drill --json | jq '.targets[] | select(.ready | not) | .reasons[]'
  dimirror drill --settings local.settings.json && echo "the DR regions could serve"

Exit codes: 0 every target ready, 3 a target not ready (every reason listed), 1 a resource
could not be read (the verdict is unknown), 2 usage error, 4 invalid settings.

` + settingsHelp + "\n"

type drillFlags struct {
	json     bool
	timeout  time.Duration
	settings string
}

func parseDrillFlags(args []string, stdout, stderr io.Writer) (drillFlags, int, bool) {
	var f drillFlags
	fs := flag.NewFlagSet("dimirror drill", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&f.json, "json", false, "print the report as JSON instead of a table")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Minute, "give up after this `duration`")
	settings := addSettingsFlag(fs)
	if code, ok := parseFlags(fs, args, drillHelp, ": drill takes flags only", stdout, stderr); !ok {
		return f, code, false
	}
	if f.timeout <= 0 {
		return f, usageError(stderr, fs.Name(), "--timeout must be positive, e.g. --timeout 5m"), false
	}
	f.settings = *settings
	return f, exitOK, true
}

func runDrill(ctx context.Context, args []string, stdout, stderr io.Writer, env cliEnv) int {
	f, code, ok := parseDrillFlags(args, stdout, stderr)
	if !ok {
		return code
	}
	cfg, err := loadSettings(f.settings, env.lookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "dimirror drill: %v\n", err)
		return exitSettings
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	// The clients log warnings and errors to stderr; the report goes to stdout. The drill needs
	// neither the table nor the queue.
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: max(cfg.LogLevel, slog.LevelWarn)}))
	clients, err := app.NewClients(cfg, app.NewCredentials(nil), log)
	if err != nil {
		fmt.Fprintf(stderr, "dimirror drill: %v\n", err)
		return exitFailure
	}
	rep, err := runDrills(ctx, cfg, clients, env)
	if err != nil {
		fmt.Fprintf(stderr, "dimirror drill: %v\n", err)
		return exitFailure
	}
	if err := printDrill(stdout, rep, f.json); err != nil {
		fmt.Fprintf(stderr, "dimirror drill: %v\n", err)
		return exitFailure
	}
	switch {
	case rep.Errors():
		return exitFailure
	case !rep.Ready:
		return exitDrift
	}
	return exitOK
}

// runDrills runs the drill of the settings' form: the source's targets, or every rule.
func runDrills(ctx context.Context, cfg *config.Config, clients *app.Clients, env cliEnv) (*drill.Report, error) {
	if cfg.Legacy {
		d := app.NewDrill(cfg, clients.Source, clients.Targets)
		if env.now != nil {
			d.Now = env.now
		}
		return d.Run(ctx)
	}
	m := app.NewMeshDrill(cfg, clients.Resources)
	for _, r := range m.Rules {
		if env.now != nil {
			r.Drill.Now = env.now
		}
	}
	return m.Run(ctx)
}

// printDrill writes the report as JSON, or per target a verdict line and its reasons.
func printDrill(w io.Writer, r *drill.Report, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(w, "dimirror drill at %s: the source has %s and %s selected; expiry warning %s\n\n",
		r.At.UTC().Format("2006-01-02 15:04:05 UTC"), plural(r.SourceModels, "model"), plural(r.SourceClassifiers, "classifier"), r.ExpiryWarning)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tAPI-VERSION\tVERDICT\tCHECKED\tREASONS")
	for _, t := range r.Targets {
		verdict := "ready"
		switch {
		case t.Error != "":
			verdict = "unknown"
		case !t.Ready:
			verdict = "NOT READY"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\n", drillTarget(t), t.APIVersion, verdict, t.Checked, len(t.Reasons))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range r.Targets {
		if t.Error != "" {
			fmt.Fprintf(w, "\n%s: could not be read: %s\n", drillTarget(t), oneLine(t.Error))
		}
		if len(t.Reasons) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", drillTarget(t))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, rs := range t.Reasons {
			item := "-"
			if rs.ID != "" {
				item = string(rs.Kind) + " " + rs.ID
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", rs.Code, item, oneLine(rs.Detail))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	verdict := "ready: every target could serve now"
	switch {
	case r.Errors():
		verdict = "unknown: a target could not be read"
	case !r.Ready:
		var names []string
		for _, t := range r.Targets {
			if !t.Ready {
				names = append(names, t.Target)
			}
		}
		verdict = "not ready: " + strings.Join(names, ", ")
	}
	_, err := fmt.Fprintf(w, "\n%s\n", verdict)
	return err
}

// drillTarget names a report entry: the target, or in the rules form its rule.
func drillTarget(t drill.TargetReport) string {
	if t.From != "" {
		return t.From + ">" + t.Target
	}
	return t.Target
}
