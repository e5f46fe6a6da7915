// Command dimirror keeps Document Intelligence custom models and classifiers mirrored across
// regions. One binary: `serve` is the Azure Functions custom handler, `run` hosts the same
// functions standalone; the other subcommands are for operators.
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

	"github.com/dimirror/dimirror/internal/app"
	"github.com/dimirror/dimirror/shared/config"
)

// version is stamped by the build (-X main.version=...).
var version = "dev"

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitSettings = 4
)

const usage = `dimirror keeps Document Intelligence custom models and classifiers mirrored
from a source resource into target resources in other regions.

Usage:
  dimirror <command> [flags]

Commands:
  serve      run as the Azure Functions custom handler (the host starts this)
  run        run the functions standalone: HTTP API, queue receiver and timers
  version    print the version

Settings come from the environment (see local.settings.sample.json).

Exit codes: 0 ok, 1 failure, 2 usage error, 4 invalid settings.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "serve":
		return host(ctx, args[1:], stderr, "serve")
	case "run":
		return host(ctx, args[1:], stderr, "run")
	case "version", "--version":
		fmt.Fprintln(stdout, "dimirror", version)
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "dimirror: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

// host runs one of the two hostings.
func host(ctx context.Context, args []string, stderr io.Writer, mode string) int {
	fs := flag.NewFlagSet("dimirror "+mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	cfg, err := config.Load()
	if err == nil && mode == "run" {
		err = cfg.ValidateStandalone()
	}
	if err == nil && mode == "serve" {
		err = cfg.ValidateServe()
	}
	if err != nil {
		fmt.Fprintf(stderr, "dimirror %s: %v\n", mode, err)
		return exitSettings
	}
	log := newLogger(stderr, cfg.LogLevel).With("app", "dimirror", "mode", mode, "version", version)
	log.Info("starting", "settings", cfg)
	a, err := app.New(ctx, cfg, log, app.Options{})
	if err != nil {
		log.Error("start-up failed", "err", err.Error())
		return exitFailure
	}
	defer a.Close(context.Background())
	if mode == "serve" {
		err = a.Serve(ctx, cfg.HandlerPort)
	} else {
		err = a.Run(ctx)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("stopped", "err", err.Error())
		return exitFailure
	}
	log.Info("stopped")
	return exitOK
}
