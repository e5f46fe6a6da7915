// Command pack writes the zip-deploy package of the Functions app: host.json and every function
// folder at the app root, and the custom handler binary (linux/amd64, executable) where host.json
// expects it. `make package` builds the binary and runs this.
//
//	go run ./infra/cmd/pack -root . -binary bin/dimirror -out dist/dimirror.zip
package main

import (
	"debug/elf"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/dimirror/dimirror/infra/pack"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", ".", "app root holding host.json and functions/<name>/function.json")
	binary := fs.String("binary", "bin/dimirror", "the custom handler binary, built for linux/amd64")
	out := fs.String("out", "dist/dimirror.zip", "the zip to write")
	anyArch := fs.Bool("any-arch", false, "accept a binary that is not a linux/amd64 ELF executable (local experiments only)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pack: unexpected arguments %q\n", fs.Args())
		fs.Usage()
		return exitUsage
	}
	o := pack.Options{Root: *root, Binary: *binary, Machine: elf.EM_X86_64}
	if *anyArch {
		o.Machine = 0
	}
	entries, err := pack.Plan(o)
	if err == nil {
		err = pack.WriteFile(*out, o)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "wrote %s: %d files, binary at %s\n", *out, len(entries), entries[len(entries)-1].Name)
	return exitOK
}
