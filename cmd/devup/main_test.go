package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dimirror/dimirror/internal/devup"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		ok     bool
		stdout string
		stderr string
		check  func(t *testing.T, o options)
	}{
		{name: "no command", code: 2, stderr: "Usage: devup run|demo"},
		{name: "help", args: []string{"--help"}, code: 0, stdout: "-api-port value"},
		{name: "run help", args: []string{"run", "-h"}, code: 0, stdout: "port of dimirror's HTTP API (env DEV_API_PORT; default 7071)"},
		{name: "unknown command", args: []string{"start"}, code: 2, stderr: `unknown command "start": use run or demo`},
		{name: "bad port", args: []string{"run", "-api-port", "99999"}, code: 2, stderr: "invalid value \"99999\" for flag -api-port"},
		{name: "extra argument", args: []string{"run", "now"}, code: 2, stderr: `unexpected argument "now"`},
		{name: "run defaults", args: []string{"run"}, ok: true, check: func(t *testing.T, o options) {
			if o.data != ".local" || o.ports != devup.DefaultPorts || o.root != "." {
				t.Errorf("%+v", o)
			}
		}},
		{name: "demo defaults", args: []string{"demo", "-root", "/srv/dimirror", "-tables-port", "0"}, ok: true, check: func(t *testing.T, o options) {
			if o.data != filepath.Join("/srv/dimirror", ".local", "demo") || o.ports.Tables != 0 || o.ports.API != 7071 {
				t.Errorf("%+v", o)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			o, code, ok := parse(tt.args, &stdout, &stderr)
			if ok != tt.ok || (!ok && code != tt.code) {
				t.Fatalf("ok %t code %d, want %t %d; stderr %q", ok, code, tt.ok, tt.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.stdout) || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stdout %q\nstderr %q", stdout.String(), stderr.String())
			}
			if tt.check != nil {
				tt.check(t, o)
			}
		})
	}
}

func TestParsePortsFromEnvironment(t *testing.T) {
	t.Setenv("DEV_API_PORT", "8088")
	o, _, ok := parse([]string{"run", "-bus-port", "5673"}, &bytes.Buffer{}, &bytes.Buffer{})
	if !ok || o.ports.API != 8088 || o.ports.Bus != 5673 {
		t.Errorf("%+v", o.ports)
	}
	t.Setenv("DEV_API_PORT", "port")
	var stderr bytes.Buffer
	if _, code, ok := parse([]string{"run"}, &bytes.Buffer{}, &stderr); ok || code != 2 || !strings.Contains(stderr.String(), `DEV_API_PORT="port"`) {
		t.Errorf("ok %t code %d stderr %q", ok, code, stderr.String())
	}
}

func TestFreshDemoDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	if err := freshDemoDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "state.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := freshDemoDir(dir); err != nil { // an earlier demo's: emptied
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json")); !os.IsNotExist(err) {
		t.Errorf("the earlier demo's state is still there: %v", err)
	}
	mine := t.TempDir()
	keep := filepath.Join(mine, "precious.txt")
	if err := os.WriteFile(keep, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := freshDemoDir(mine); err == nil || !strings.Contains(err.Error(), "refusing to empty") {
		t.Errorf("err %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("a directory that is not a demo's was touched: %v", err)
	}
}

// A port in use stops `devup run` before anything starts, naming the port and how to move it.
func TestRunPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	// The project's Azurite; a dimirror binary that is never started (the port check comes first).
	fake := filepath.Join(t.TempDir(), "dimirror")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	args := []string{"run", "-root", "../..", "-data", t.TempDir(), "-dimirror", fake, "-tables-port", "0", "-bus-port", "0",
		"-source-port", "0", "-westus2-port", "0", "-eastus-port", "0", "-api-port", port}
	code := run(args, &stdout, &stderr, make(chan os.Signal))
	want := "port " + port + " (dimirror's HTTP API) is already in use on 127.0.0.1: stop what listens there, or move it with DEV_API_PORT"
	if code != 1 || !strings.Contains(stderr.String(), want) {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}
