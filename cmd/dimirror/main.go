// Command dimirror keeps Document Intelligence custom models and classifiers mirrored across
// regions. One binary: `serve` is the Azure Functions custom handler, `run` hosts the same
// functions standalone; the other subcommands are for operators.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// version is stamped by the build (-X main.version=...).
var version = "dev"

// Exit codes, documented in the usage text.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitDrift    = 3 // reconcile --dry-run: targets differ from the source; drill: a target is not ready
	exitSettings = 4
)

// command is one subcommand; each lives in its own file and registers itself in init.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

func usage() string {
	var b strings.Builder
	b.WriteString(`dimirror keeps Document Intelligence custom models and classifiers mirrored
from a source resource into target resources in other regions.

Usage:
  dimirror <command> [flags]

Commands:
`)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "  %-10s %s\n", n, commands[n].summary)
	}
	b.WriteString(`
Run 'dimirror <command> --help' for a command's flags and examples.
Settings come from the environment (see local.settings.sample.json).

Exit codes: 0 ok, 1 failure, 2 usage error, 3 drift (reconcile --dry-run) or not ready (drill),
4 invalid settings.
`)
	return b.String()
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage())
		return exitOK
	case "--version":
		args = []string{"version"}
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "dimirror: unknown command %q\n\n%s", args[0], usage())
		return exitUsage
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

func init() {
	register(command{name: "version", summary: "print the version", run: func(_ context.Context, _ []string, stdout, _ io.Writer) int {
		fmt.Fprintln(stdout, "dimirror", version)
		return exitOK
	}})
}
