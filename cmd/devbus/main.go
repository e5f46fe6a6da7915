// Command devbus runs a local Service Bus-compatible AMQP 1.0 broker for development and
// tests (see docs/devbus.md):
//
//	devbus -listen 127.0.0.1:5672 -queue copy-requests,max-delivery=10,lock=60s,dup-window=10m [-data DIR]
//
// It prints the address and the emulator-style connection string, then "devbus: ready",
// and stops cleanly on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/dimirror/dimirror/emulators/devbus"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "devbus:", err)
		os.Exit(2)
	}
}

// queueFlags collects repeated -queue flags.
type queueFlags []devbus.QueueOptions

func (q *queueFlags) String() string {
	names := make([]string, len(*q))
	for i, o := range *q {
		names[i] = o.Name
	}
	return strings.Join(names, " ")
}

func (q *queueFlags) Set(spec string) error {
	o, err := devbus.ParseQueueSpec(spec)
	if err != nil {
		return err
	}
	*q = append(*q, o)
	return nil
}

// run parses args, starts the broker and serves until ctx is cancelled.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devbus", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:5672", "TCP `address` to listen on")
	var queues queueFlags
	fs.Var(&queues, "queue", "declare a queue: `name[,max-delivery=N][,lock=DUR][,dup-window=DUR|off]` (repeatable; other queues are created on first use)")
	dataDir := fs.String("data", "", "`directory` for the queue journals; messages survive restarts (default: in memory)")
	noAuto := fs.Bool("no-auto-create", false, "refuse queues that were not declared with -queue")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: devbus [-listen HOST:PORT] [-queue SPEC]... [-data DIR] [-no-auto-create] [-log-level LEVEL]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags start with -)", fs.Arg(0))
	}
	if _, port, err := net.SplitHostPort(*listen); err != nil || port == "" {
		return fmt.Errorf("invalid value %q for flag -listen: want HOST:PORT, such as 127.0.0.1:5672", *listen)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("invalid value %q for flag -log-level: want debug, info, warn or error", *logLevel)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	b, err := devbus.Start(startCtx, devbus.Options{
		Listen:       *listen,
		Queues:       queues,
		NoAutoCreate: *noAuto,
		DataDir:      *dataDir,
		Logger:       logger,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "devbus: listening on %s\n", b.Addr())
	fmt.Fprintf(stdout, "devbus: connection string: %s\n", b.ConnectionString())
	fmt.Fprintln(stdout, "devbus: ready")

	<-ctx.Done()
	fmt.Fprintln(stdout, "devbus: stopping")
	return b.Close()
}
