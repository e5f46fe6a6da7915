package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/dimirror/dimirror/shared/config"
)

// settingsHelp is the paragraph every settings-reading command's --help ends with.
const settingsHelp = `Settings come from the environment, as for the functions (every setting is listed in
local.settings.sample.json), or from --settings FILE, a Functions local.settings.json file.
With a file, an environment variable that is set and not empty overrides the file's value,
so a key can stay out of the file: DIMIRROR_SOURCE_KEY=... dimirror <command> --settings FILE.`

// cliEnv is what the operator commands take from the process; tests replace it.
type cliEnv struct {
	lookupEnv func(string) (string, bool)
	now       func() time.Time
	sleep     func(ctx context.Context, d time.Duration) error
	// terminal reports whether w is an interactive terminal (live displays) or not (plain lines).
	terminal func(w io.Writer) bool
}

func processEnv() cliEnv {
	return cliEnv{lookupEnv: os.LookupEnv, now: time.Now, sleep: sleepCtx, terminal: isTerminal}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// isTerminal is true for a character device (not a pipe or file) when TERM allows cursor
// movement. A writer can decide for itself by implementing IsTerminal() bool.
func isTerminal(w io.Writer) bool {
	if t, ok := w.(interface{ IsTerminal() bool }); ok {
		return t.IsTerminal()
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	if term, _ := os.LookupEnv("TERM"); term == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// parseFlags parses an operator command's flags. --help prints help (a format whose one %s is
// the flag defaults) and ends the command with exitOK; a flag error or a positional argument
// ends it with a usage error (argHint follows the argument in the message).
func parseFlags(fs *flag.FlagSet, args []string, help, argHint string, stdout, stderr io.Writer) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, help, flagDefaults(fs))
			return exitOK, false
		}
		return usageError(stderr, fs.Name(), "%v", err), false
	}
	if fs.NArg() > 0 {
		return usageError(stderr, fs.Name(), "unexpected argument %q"+argHint, fs.Arg(0)), false
	}
	return exitOK, true
}

// usageError prints a usage error for command (e.g. "dimirror copy") and returns exitUsage.
func usageError(stderr io.Writer, command, format string, a ...any) int {
	fmt.Fprintf(stderr, command+": "+format+"\nRun '"+command+" --help' for usage.\n", a...)
	return exitUsage
}

// addSettingsFlag registers --settings on fs.
func addSettingsFlag(fs *flag.FlagSet) *string {
	return fs.String("settings", "", "read the settings from this Functions local.settings.json `file` (the environment overrides it)")
}

// loadSettings reads and validates the settings: the file's Values when file is set, each
// overridden by an environment variable that is set and not empty; the environment alone
// otherwise. Errors name settings, never their values.
func loadSettings(file string, lookupEnv func(string) (string, bool)) (*config.Config, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	if file == "" {
		return config.LoadFrom(lookupEnv)
	}
	values, err := config.ReadSettingsFile(file)
	if err != nil {
		return nil, err
	}
	return config.LoadFrom(func(name string) (string, bool) {
		if v, ok := lookupEnv(name); ok && strings.TrimSpace(v) != "" {
			return v, true
		}
		v, ok := values[name]
		return v, ok
	})
}

func targetNames(ts []config.Target) []string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
	}
	return names
}
