package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/dimirror/dimirror/internal/app"
)

func init() {
	register(command{name: "serve", summary: "run as the Azure Functions custom handler (the host starts this)",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			return host(ctx, args, stderr, "serve")
		}})
	register(command{name: "run", summary: "run the functions standalone: HTTP API, queue receiver and timers",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
			return host(ctx, args, stderr, "run")
		}})
}

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

const hostHelp = `Usage: dimirror %[1]s [--settings FILE]

%[2]s

` + settingsHelp + `
%[3]s`

// host runs one of the two hostings until a signal.
func host(ctx context.Context, args []string, stderr io.Writer, mode string) int {
	fs := flag.NewFlagSet("dimirror "+mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	settingsFile := addSettingsFlag(fs)
	fs.Usage = func() {
		if mode == "serve" {
			fmt.Fprintf(stderr, hostHelp, mode, "Runs the Functions custom handler on 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT.\nThe Functions host starts it (host.json); you do not run it by hand.", "")
			return
		}
		fmt.Fprintf(stderr, hostHelp, mode, "Hosts the functions without the Functions host: serves the HTTP API on\n$DIMIRROR_LISTEN (key: $DIMIRROR_API_KEY), receives copy messages from the queue and\nruns the timers on their function.json schedules. Several instances may run at once.",
			"\nExample:\n  curl -H \"x-functions-key: $DIMIRROR_API_KEY\" -d '{\"sourceId\":\"invoice-v1\"}' http://127.0.0.1:7071/api/replications\n")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	cfg, err := loadSettings(*settingsFile, nil)
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
	for _, w := range cfg.Warnings() {
		log.Warn("settings", "warning", w)
	}
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
