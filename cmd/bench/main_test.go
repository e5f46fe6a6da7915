package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFlagsAreChecked(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-only", "overhead,speed"}, 2, `unknown figure "speed"`},
		{[]string{"-throughput-models", "0"}, 2, "-throughput-models must be at least 1"},
		{[]string{"-pacing-models", "-1"}, 2, "-pacing-models must be at least 1"},
		{[]string{"-nope"}, 2, "flag provided but not defined"},
		{[]string{"-h"}, 0, "Usage: go run ./cmd/bench"},
		{[]string{"-dimirror", filepath.Join(t.TempDir(), "missing")}, 1, "not a file"},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		if code := run(context.Background(), tt.args, &stderr); code != tt.code || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("run(%q) = %d, %q; want %d and %q", tt.args, code, stderr.String(), tt.code, tt.want)
		}
	}
}

func TestBenchLines(t *testing.T) {
	out := "goos: linux\ngoarch: amd64\npkg: x\ncpu: y\nBenchmarkA-2  10  5 ns/op\nPASS\nok  x 1.0s\n"
	if got := benchLines([]byte(out)); got != "goos: linux\ngoarch: amd64\npkg: x\ncpu: y\nBenchmarkA-2  10  5 ns/op" {
		t.Errorf("got %q", got)
	}
}

func TestChaosLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chaos.txt")
	out := "=== RUN TestChaos\nchaos 1s  killed\nchaos seed=1: 520 replications; outcome PASS in 4m\n--- PASS: TestChaos\n"
	if err := os.WriteFile(path, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := chaosLine(path); got != "chaos seed=1: 520 replications; outcome PASS in 4m" {
		t.Errorf("got %q", got)
	}
	if got := chaosLine(filepath.Join(t.TempDir(), "none")); got != "" {
		t.Errorf("no file: %q", got)
	}
}
