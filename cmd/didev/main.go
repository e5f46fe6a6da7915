// Command didev runs a local emulator of the Azure AI Document Intelligence model-management and
// Copy API with several resources, for example:
//
//	didev -resource source=127.0.0.1:5101 -resource westus2=127.0.0.1:5102 -resource eastus=127.0.0.1:5103 \
//	      -key devkey -seed source:model:invoice-v1 -seed source:classifier:router-v1
//
// It prints one "didev: resource NAME endpoint URL region REGION" line per resource, then
// "didev: ready", and serves until SIGINT or SIGTERM. See docs/didev.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dimirror/dimirror/emulators/didev"
)

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "didev:", err)
		}
		os.Exit(2)
	}
}

// run parses args, serves until ctx is done, and shuts down cleanly (flushing -data).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, logLevel, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel}))
	srv, err := didev.Start(ctx, opts)
	if err != nil {
		return err
	}
	for _, r := range srv.Resources() {
		fmt.Fprintf(stdout, "didev: resource %s endpoint %s region %s\n", r.Name(), r.Endpoint(), r.Region())
	}
	fmt.Fprintln(stdout, "didev: ready")
	opts.Logger.Info("didev: serving", "version", version, "resources", len(srv.Resources()), "faults", srv.Faults().String())
	<-ctx.Done()
	opts.Logger.Info("didev: shutting down")
	return srv.Close()
}

func parseFlags(args []string, stderr io.Writer) (didev.Options, slog.Level, error) {
	var (
		opts     didev.Options
		level    slog.Level
		rateSpec string
	)
	fs := flag.NewFlagSet("didev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: didev -resource NAME=HOST:PORT[,region=REGION][,encrypted][,max-models=N] ... -key KEY [flags]")
		fs.PrintDefaults()
	}
	fs.Func("resource", "a resource `NAME=HOST:PORT[,region=REGION][,encrypted][,max-models=N]` (repeatable; port 0 picks one)", func(s string) error {
		r, err := didev.ParseResource(s)
		if err != nil {
			return err
		}
		opts.Resources = append(opts.Resources, r)
		return nil
	})
	fs.StringVar(&opts.Key, "key", "", "the accepted Ocp-Apim-Subscription-Key")
	fs.BoolVar(&opts.AcceptBearer, "accept-bearer", false, "also accept any Authorization: Bearer token")
	fs.Func("seed", "a ready item `RESOURCE:KIND:ID`, KIND model, classifier or model-v2.1 (repeatable)", func(s string) error {
		sd, err := didev.ParseSeed(s)
		if err != nil {
			return err
		}
		opts.Seeds = append(opts.Seeds, sd)
		return nil
	})
	fs.DurationVar(&opts.CopyDuration, "copy-duration", didev.DefaultCopyDuration, "how long a copy operation takes")
	fs.DurationVar(&opts.BuildDuration, "build-duration", didev.DefaultBuildDuration, "how long a build, compose or v2.1 training takes")
	fs.DurationVar(&opts.AuthTTL, "auth-ttl", 0, "authorization lifetime (default 1h for v3/v4, 24h for v2.1)")
	fs.DurationVar(&opts.OpTTL, "op-ttl", didev.DefaultOpTTL, "how long operations are kept")
	fs.IntVar(&opts.PageSize, "page-size", didev.DefaultPageSize, "items per list page")
	fs.StringVar(&rateSpec, "rate", "", "per-resource limits `off|management=N,get-operation=N,list=N` per second (default S0: 5, 50, 10)")
	fs.Func("fault", "injected faults `copy-fail=P,http-500=P,http-429=P,reset=P,reset-after=P,latency=D@P,expire-auth=P,seed=N`", func(s string) error {
		f, err := didev.ParseFaults(s)
		if err != nil {
			return err
		}
		opts.Faults = f
		return nil
	})
	fs.StringVar(&opts.DataDir, "data", "", "keep state in `DIR` across restarts (default in memory)")
	fs.TextVar(&level, "log-level", slog.LevelInfo, "log level (DEBUG logs every request)")
	if err := fs.Parse(args); err != nil {
		return opts, level, err
	}
	if fs.NArg() > 0 {
		return opts, level, fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	}
	if len(opts.Resources) == 0 {
		return opts, level, errors.New("at least one -resource NAME=HOST:PORT is required")
	}
	if opts.Key == "" && !opts.AcceptBearer {
		return opts, level, errors.New("-key KEY (or -accept-bearer) is required")
	}
	r, err := didev.ParseRate(rateSpec)
	if err != nil {
		return opts, level, fmt.Errorf("invalid value for flag -rate: %w", err)
	}
	opts.Rate = r
	for name, d := range map[string]time.Duration{"copy-duration": opts.CopyDuration, "build-duration": opts.BuildDuration, "op-ttl": opts.OpTTL, "auth-ttl": opts.AuthTTL} {
		if d < 0 {
			return opts, level, fmt.Errorf("invalid value for flag -%s: %s is negative", name, d)
		}
	}
	return opts, level, nil
}
