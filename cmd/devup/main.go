// Command devup runs dimirror's whole local stack on loopback, with no Azure subscription:
// Azurite (Table Storage), devbus (Service Bus), didev (a source and two target Document
// Intelligence resources) and `dimirror run`. `make run` runs `devup run`, `make demo` runs
// `devup demo`; see the README.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dimirror/dimirror/internal/devup"
)

const usage = `Usage: devup run|demo [flags]

  run    start the local stack, print what runs where and a curl to try, then follow
         dimirror's log until Ctrl-C, which stops every process devup started
  demo   start the stack on fresh data, request a replication, train a new model on the
         source, wait until every replica has succeeded, print the table and the figures,
         stop; exit 0 when everything converged, 1 otherwise

Every port can be moved with its flag or environment variable (make run DEV_API_PORT=8080);
0 picks a free port.

Flags:
%s`

const demoMarker = ".devup-demo"

func main() {
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, signals))
}

type options struct {
	mode     string
	root     string
	data     string
	dimirror string
	ports    devup.Ports
	timeout  time.Duration
}

func parse(args []string, stdout, stderr io.Writer) (options, int, bool) {
	var o options
	fs := flag.NewFlagSet("devup", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.root, "root", ".", "the project `directory` (holding node_modules and bin)")
	fs.StringVar(&o.data, "data", "", "state `directory` (default .local for run, .local/demo for demo, which starts empty)")
	fs.StringVar(&o.dimirror, "dimirror", "", "the dimirror `binary` (default <root>/bin/dimirror, built by make build)")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Minute, "demo: how long to wait for every replica")
	ports, err := devup.PortsFromEnv(os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "devup: %v\n", err)
		return o, 2, false
	}
	o.ports = ports
	for _, s := range devup.PortSpecs {
		p := s.Port(&o.ports)
		fs.Func(s.Flag, fmt.Sprintf("port of %s (env %s; default %d)", s.What, s.Env, *p), func(v string) error {
			n, err := devup.ParsePort(v)
			*p = n
			return err
		})
	}
	help := func(w io.Writer) {
		var b strings.Builder
		fs.SetOutput(&b)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		fmt.Fprintf(w, usage, b.String())
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) == 0 {
			help(stderr)
			return o, 2, false
		}
		help(stdout)
		return o, 0, false
	}
	o.mode = args[0]
	if o.mode != "run" && o.mode != "demo" {
		fmt.Fprintf(stderr, "devup: unknown command %q: use run or demo\n", o.mode)
		return o, 2, false
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			help(stdout)
			return o, 0, false
		}
		fmt.Fprintf(stderr, "devup: %v\n", err)
		return o, 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "devup: unexpected argument %q\n", fs.Arg(0))
		return o, 2, false
	}
	if o.dimirror == "" {
		o.dimirror = filepath.Join(o.root, "bin", "dimirror")
	}
	if o.data == "" {
		o.data = filepath.Join(o.root, ".local")
		if o.mode == "demo" {
			o.data = filepath.Join(o.root, ".local", "demo")
		}
	}
	return o, 0, true
}

func run(args []string, stdout, stderr io.Writer, signals <-chan os.Signal) int {
	o, code, ok := parse(args, stdout, stderr)
	if !ok {
		return code
	}
	if o.mode == "demo" {
		if err := freshDemoDir(o.data); err != nil {
			fmt.Fprintf(stderr, "devup: %v\n", err)
			return 1
		}
	}
	// The first signal cancels whatever is under way; a second one kills what is still
	// stopping.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stackReady := make(chan *devup.Stack, 1)
	go func() {
		<-signals
		cancel()
		fmt.Fprintln(stderr, "\ndevup: stopping (Ctrl-C again to kill at once)")
		s := <-stackReady
		<-signals
		if s != nil {
			s.Force()
		}
	}()

	fmt.Fprintf(stdout, "devup: starting dimirror's local stack (state in %s)\n", o.data)
	// The demo runs the rules form, to show the two-way path too; run keeps the sample's form.
	stack, err := devup.Start(ctx, devup.Options{Root: o.root, DataDir: o.data, Ports: o.ports, Dimirror: o.dimirror, Progress: prefixed{stdout},
		TwoWay: o.mode == "demo"})
	stackReady <- stack
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "devup: interrupted while starting; everything it had started is stopped")
			return 1
		}
		fmt.Fprintf(stderr, "devup: %v\n", err)
		return 1
	}
	if o.mode == "demo" {
		return demo(ctx, stack, o, stdout, stderr)
	}
	stack.WriteBanner(stdout, o.dimirror)
	stack.Follow(stdout)
	code = 0
	select {
	case <-ctx.Done():
	case err := <-stack.Exited():
		fmt.Fprintf(stderr, "devup: %v; stopping the rest\n", err)
		code = 1
	}
	if err := stack.Stop(); err != nil {
		fmt.Fprintf(stderr, "devup: %v\n", err)
		code = 1
	}
	fmt.Fprintln(stdout, "devup: stopped dimirror, Azurite, didev and devbus")
	return code
}

func demo(ctx context.Context, stack *devup.Stack, o options, stdout, stderr io.Writer) int {
	fmt.Fprintf(stdout, "devup: the stack is up: dimirror's API at %s, logs in %s\n", stack.API, stack.LogDir)
	errc := make(chan error, 1)
	go func() { errc <- stack.Demo(ctx, devup.DemoOptions{Out: stdout, Timeout: o.timeout}) }()
	var err error
	select {
	case err = <-errc:
	case err = <-stack.Exited():
	}
	code := 0
	if err != nil && ctx.Err() != nil {
		fmt.Fprintln(stderr, "\ndevup demo: interrupted")
		code = 1
	} else if err != nil {
		fmt.Fprintf(stderr, "\ndevup demo: FAILED: %v\n", err)
		if tail := stack.LogTail(20); len(tail) > 0 {
			fmt.Fprintf(stderr, "the end of dimirror's log (%s):\n", filepath.Join(stack.LogDir, "dimirror.log"))
			for _, l := range tail {
				fmt.Fprintln(stderr, "  "+l)
			}
		}
		code = 1
	}
	if err := stack.Stop(); err != nil {
		fmt.Fprintf(stderr, "devup: %v\n", err)
		code = 1
	}
	if code == 0 {
		fmt.Fprintln(stdout, "\ndevup demo: every replica succeeded; the stack is stopped")
	}
	return code
}

// freshDemoDir empties the demo's directory, refusing any directory devup did not make for a
// demo (it must be missing, empty, or hold devup's marker).
func freshDemoDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	case len(entries) > 0:
		if _, err := os.Stat(filepath.Join(dir, demoMarker)); err != nil {
			return fmt.Errorf("refusing to empty %s for the demo: it is not a directory an earlier demo made (no %s in it); pass another -data", dir, demoMarker)
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, demoMarker), []byte("made by devup demo; emptied at every demo\n"), 0o644)
}

// prefixed writes each progress line with devup's prefix.
type prefixed struct{ w io.Writer }

func (p prefixed) Write(b []byte) (int, error) {
	if _, err := fmt.Fprintf(p.w, "devup: %s", b); err != nil {
		return 0, err
	}
	return len(b), nil
}
