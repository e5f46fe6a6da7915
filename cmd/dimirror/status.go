package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/dimirror/dimirror/handlers"
	"github.com/dimirror/dimirror/internal/app"
	"github.com/dimirror/dimirror/internal/statustable"
	"github.com/dimirror/dimirror/shared/replication"
)

func init() {
	register(command{name: "status", summary: "show the replicas from Table Storage (--watch to follow them)",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			return runStatus(ctx, args, stdout, stderr, processEnv())
		}})
}

const statusHelp = `Usage: dimirror status [flags]

Shows what dimirror knows about each replica (one row per source model or classifier and
target) from the replica table, the same rows GET /api/replications answers from.

Flags:
%s
Examples:
  dimirror status
  dimirror status --kind model --id invoice-v1
  dimirror status --state copying,failed --target westus2
  dimirror status --source westus2
  dimirror status --watch --settings local.settings.json
  dimirror status --json | jq '.value[] | select(.status == "failed")'

--json prints {"value": [replica, ...]}, each replica as the HTTP API shows it; with --watch,
one such document per line and refresh. Exit codes: 0 ok (also when nothing matches a
listing), 1 the table could not be read or --id names no known replication, 2 usage error,
4 invalid settings.

` + settingsHelp + "\n"

// statusQuery is a parsed status invocation.
type statusQuery struct {
	filter replication.Filter
	// source keeps only the replicas copied from this resource; defaultSource is the one rows
	// written before replication rules (which name none) were copied from.
	source        string
	defaultSource string
	byID          bool
	watch         bool
	interval      time.Duration
	json          bool
	settings      string
}

func parseStatusFlags(args []string, stdout, stderr io.Writer) (statusQuery, int, bool) {
	var q statusQuery
	fs := flag.NewFlagSet("dimirror status", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	kind := fs.String("kind", "", "only this `kind`: model or classifier (with --id: default model)")
	id := fs.String("id", "", "only the replicas of this source model or classifier `id`")
	target := fs.String("target", "", "only this target `name`")
	fs.StringVar(&q.source, "source", "", "only the replicas copied from this resource `name` (a rule's source)")
	states := fs.String("state", "", "only these `statuses`, comma-separated: pending, authorized, copying, succeeded, failed")
	fs.BoolVar(&q.watch, "watch", false, "refresh until interrupted (Ctrl-C)")
	fs.DurationVar(&q.interval, "interval", 2*time.Second, "time between refreshes with --watch")
	fs.BoolVar(&q.json, "json", false, "print JSON instead of a table")
	settings := addSettingsFlag(fs)
	usageErr := func(format string, a ...any) (statusQuery, int, bool) {
		return q, usageError(stderr, fs.Name(), format, a...), false
	}
	if code, ok := parseFlags(fs, args, statusHelp, " (use --id to name a model)", stdout, stderr); !ok {
		return q, code, false
	}
	q.settings = *settings
	if *kind != "" || *id != "" {
		k, err := replication.ParseKind(*kind)
		if err != nil {
			return usageErr("--kind: %v", err)
		}
		q.filter.Kind = k
	}
	if *id != "" {
		if !replication.ValidID(*id) {
			return usageErr("--id %q is not a valid model or classifier id (letters, digits, '.', '_', '~', '-'; 2-64 characters)", *id)
		}
		q.filter.SourceID, q.byID = *id, true
	}
	q.filter.Target = *target
	for _, s := range strings.Split(*states, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		st, err := replication.ParseStatus(s)
		if err != nil {
			return usageErr("--state: %v", err)
		}
		q.filter.Status = append(q.filter.Status, st)
	}
	if q.interval < 500*time.Millisecond {
		return usageErr("--interval %s is too short; use at least 500ms", q.interval)
	}
	return q, exitOK, true
}

// flagDefaults renders a flag set's defaults as flag.PrintDefaults does, with the two-dash
// spelling the examples use (the flag package accepts both).
func flagDefaults(fs *flag.FlagSet) string {
	var b strings.Builder
	out := fs.Output()
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(out)
	return strings.ReplaceAll("\n"+b.String(), "\n  -", "\n  --")[1:]
}

// replicaReader is what status needs: the engine's read side, which pages through the table.
type replicaReader interface {
	Replicas(ctx context.Context, f replication.Filter) iter.Seq2[replication.Replica, error]
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer, env cliEnv) int {
	q, code, ok := parseStatusFlags(args, stdout, stderr)
	if !ok {
		return code
	}
	cfg, err := loadSettings(q.settings, env.lookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "dimirror status: %v\n", err)
		return exitSettings
	}
	if q.filter.Target != "" {
		if _, ok := cfg.Target(q.filter.Target); !ok {
			fmt.Fprintf(stderr, "dimirror status: --target %q is not a configured target (%s)\n", q.filter.Target, strings.Join(targetNames(cfg.Targets), ", "))
			return exitUsage
		}
	}
	if q.source != "" && !slices.Contains(cfg.SourceNames(), q.source) {
		fmt.Fprintf(stderr, "dimirror status: --source %q is not the source of any rule (sources: %s)\n", q.source, strings.Join(cfg.SourceNames(), ", "))
		return exitUsage
	}
	// The functions' own wiring, without the queue: status reads through the engine's read side,
	// as the API does. Opening the table is bounded; each page read is bounded by the store.
	openCtx, cancel := context.WithTimeout(ctx, cfg.CallTimeout)
	a, err := app.New(openCtx, cfg, nil, app.Options{NoQueue: true})
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "dimirror status: %v\n", err)
		return exitFailure
	}
	defer a.Close(context.WithoutCancel(ctx))
	q.defaultSource = a.Engine.DefaultSource()
	return showStatus(ctx, a.Engine, q, stdout, stderr, env)
}

// showStatus prints the replicas once, or every interval with --watch until ctx ends.
func showStatus(ctx context.Context, table replicaReader, q statusQuery, stdout, stderr io.Writer, env cliEnv) int {
	live := q.watch && !q.json && env.terminal(stdout)
	for first := true; ; first = false {
		rows, err := listAll(ctx, table, q.filter)
		if err == nil && q.source != "" {
			rows = slices.DeleteFunc(rows, func(r handlers.ReplicaView) bool {
				return cmp.Or(r.Source, q.defaultSource) != q.source
			})
		}
		switch {
		case err != nil && ctx.Err() != nil && q.watch:
			return exitOK // interrupted while reading: the end of a watch
		case err != nil && !q.watch:
			fmt.Fprintf(stderr, "dimirror status: reading the replica table: %v\n", err)
			return exitFailure
		case err != nil:
			// A watch outlives a table hiccup: say so and try again at the next refresh.
			fmt.Fprintf(stderr, "dimirror status: reading the replica table: %v (retrying)\n", err)
		default:
			if !q.watch && q.byID && len(rows) == 0 {
				fmt.Fprintf(stderr, "dimirror status: no replication of %s %q is known\n", q.filter.Kind, q.filter.SourceID)
				return exitFailure
			}
			if err := printStatus(stdout, rows, q, live, first, env.now()); err != nil {
				fmt.Fprintf(stderr, "dimirror status: %v\n", err)
				return exitFailure
			}
		}
		if !q.watch {
			return exitOK
		}
		if env.sleep(ctx, q.interval) != nil {
			return exitOK
		}
	}
}

func printStatus(w io.Writer, rows []handlers.ReplicaView, q statusQuery, live, first bool, now time.Time) error {
	if q.json {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		if !q.watch {
			enc.SetIndent("", "  ")
		}
		return enc.Encode(handlers.ListAnswer{Value: rows})
	}
	if live {
		fmt.Fprint(w, "\x1b[H\x1b[2J") // home and clear: redraw in place, like watch(1)
	}
	if q.watch {
		if !first && !live {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "dimirror status at %s (every %s; Ctrl-C to stop)\n\n", now.UTC().Format("15:04:05 UTC"), q.interval)
	}
	if len(rows) > 0 {
		if err := statustable.Write(w, rows, now); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	_, err := fmt.Fprintln(w, statustable.Summary(rows))
	return err
}

// listAll reads every replica matching f, sorted for the display.
func listAll(ctx context.Context, table replicaReader, f replication.Filter) ([]handlers.ReplicaView, error) {
	rows := []handlers.ReplicaView{}
	for r, err := range table.Replicas(ctx, f) {
		if err != nil {
			return nil, err
		}
		rows = append(rows, handlers.View(r))
	}
	statustable.Sort(rows)
	return rows, nil
}
