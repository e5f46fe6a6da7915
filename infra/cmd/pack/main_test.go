package main

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeApp(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"host.json":                    `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"bin/h"}}}`,
		"functions/tick/function.json": `{"bindings":[{"type":"timerTrigger","direction":"in","name":"timer","schedule":"0 * * * * *"}]}`,
		"bin/h":                        "#!/bin/sh\n",
	}
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestRun(t *testing.T) {
	root := writeApp(t)
	out := filepath.Join(t.TempDir(), "out.zip")
	bin := filepath.Join(root, "bin", "h")
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string
		stderr     string
		wantOutput bool
	}{
		{"unknown flag", []string{"-nope"}, exitUsage, "", "flag provided but not defined", false},
		{"stray argument", []string{"-root", root, "extra"}, exitUsage, "", "unexpected arguments", false},
		{"shell script is not a linux/amd64 binary", []string{"-root", root, "-binary", bin, "-out", out}, exitFailure, "", "not an ELF", false},
		{"missing binary", []string{"-root", root, "-binary", filepath.Join(root, "nope"), "-out", out}, exitFailure, "", "make package", false},
		{"any arch", []string{"-root", root, "-binary", bin, "-out", out, "-any-arch"}, exitOK, "3 files, binary at bin/h", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stdout %q, stderr %q; want %q and %q", stdout.String(), stderr.String(), tc.stdout, tc.stderr)
			}
			if !tc.wantOutput {
				return
			}
			zr, err := zip.OpenReader(out)
			if err != nil {
				t.Fatal(err)
			}
			defer zr.Close()
			var names []string
			for _, f := range zr.File {
				names = append(names, f.Name)
			}
			if strings.Join(names, ",") != "host.json,tick/function.json,bin/h" {
				t.Errorf("zip entries %v", names)
			}
		})
	}
}
