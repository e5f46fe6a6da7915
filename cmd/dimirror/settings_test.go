package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/internal/fakeclock"
	"github.com/dimirror/dimirror/shared/config"
)

// update rewrites the golden files under testdata/ instead of comparing with them:
//
//	go test ./cmd/dimirror -run Golden -update
var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// checkGolden compares got with testdata/<name>, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it with: go test ./cmd/dimirror -run %s -update)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (if the change is intended: go test ./cmd/dimirror -run %s -update)\n--- got ---\n%s\n--- want ---\n%s",
			path, t.Name(), got, want)
	}
}

func newCLIClock() *fakeclock.Clock {
	return fakeclock.New(time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC))
}

// testEnv is a cliEnv on a fake clock whose sleeps advance it, with an empty environment
// unless vars are given.
func testEnv(clock *fakeclock.Clock, vars map[string]string) cliEnv {
	return cliEnv{
		lookupEnv: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
		now:       clock.Now,
		sleep: func(ctx context.Context, d time.Duration) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			clock.Advance(d)
			return nil
		},
		terminal: isTerminal,
	}
}

// ttyBuffer is a buffer that says it is a terminal.
type ttyBuffer struct{ bytes.Buffer }

func (*ttyBuffer) IsTerminal() bool { return true }

// sampleValues reads the project's local.settings.sample.json.
func sampleValues(t *testing.T) map[string]string {
	t.Helper()
	v, err := config.ReadSettingsFile("../../local.settings.sample.json")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// writeSettings writes a Functions settings file with values and returns its path.
func writeSettings(t *testing.T, values map[string]string) string {
	t.Helper()
	b, err := json.MarshalIndent(map[string]any{"IsEncrypted": false, "Values": values}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "local.settings.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadSettingsSample(t *testing.T) {
	cfg, err := loadSettings("../../local.settings.sample.json", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source.Endpoint != "http://127.0.0.1:5101" || cfg.Source.Key != "devkey" {
		t.Errorf("source %v", cfg.Source)
	}
	if got := strings.Join(targetNames(cfg.Targets), ","); got != "westus2,eastus" {
		t.Errorf("targets %s", got)
	}
	if cfg.Table.Name != "replicas" || cfg.Table.ConnectionString != "UseDevelopmentStorage=true" || cfg.Queue != "copy-requests" {
		t.Errorf("table %v queue %s", cfg.Table, cfg.Queue)
	}
	if cfg.APIKey != "local-dev-api-key-0001" || cfg.CallTimeout != 30*time.Second {
		t.Errorf("api key set %t, call timeout %s", cfg.APIKey != "", cfg.CallTimeout)
	}
}

func TestLoadSettingsEnvironmentOverridesFile(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		endpoint string
		level    string
	}{
		{"file only", nil, "http://127.0.0.1:5101", "INFO"},
		{"set and not empty wins", map[string]string{"DIMIRROR_SOURCE_ENDPOINT": "https://src.cognitiveservices.azure.com", "DIMIRROR_LOG_LEVEL": "debug"},
			"https://src.cognitiveservices.azure.com", "DEBUG"},
		{"empty keeps the file's", map[string]string{"DIMIRROR_SOURCE_ENDPOINT": " ", "DIMIRROR_LOG_LEVEL": ""}, "http://127.0.0.1:5101", "INFO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadSettings("../../local.settings.sample.json", func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Source.Endpoint != tt.endpoint || cfg.LogLevel.String() != tt.level {
				t.Errorf("endpoint %s level %s, want %s %s", cfg.Source.Endpoint, cfg.LogLevel, tt.endpoint, tt.level)
			}
		})
	}
}

func TestLoadSettingsWithoutFileReadsOnlyTheEnvironment(t *testing.T) {
	env := sampleValues(t)
	env["DIMIRROR_TARGETS"] = "dr=https://dr.cognitiveservices.azure.com"
	env["DIMIRROR_TARGET_KEYS"] = "dr=k-123456"
	cfg, err := loadSettings("", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Targets) != 1 || cfg.Targets[0].Name != "dr" {
		t.Errorf("targets %v", cfg.Targets)
	}
}

func TestLoadSettingsErrorsNameTheProblemNotTheSecret(t *testing.T) {
	const secret = "s3cr3t-account-key-value"
	values := sampleValues(t)
	values["DIMIRROR_TARGETS"] = "westus2=http://127.0.0.1:5102;key=" + secret
	values["TableConnection"] = "AccountName=x;Garbage" + secret
	tests := []struct {
		name, file string
		want       []string
	}{
		{"missing file", filepath.Join(t.TempDir(), "nope.json"), []string{"settings file", "no such file"}},
		{"not json", writeRaw(t, `{"Values": {"DIMIRROR_SOURCE_KEY": "`+secret+`",}`), []string{"not valid JSON"}},
		{"invalid values", writeSettings(t, values), []string{"DIMIRROR_TARGETS", "TableConnection", "value not shown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadSettings(tt.file, func(string) (string, bool) { return "", false })
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the secret: %v", err)
			}
		})
	}
}

func writeRaw(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "local.settings.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Invalid settings are exit code 4 for every command that reads them, with the problem named.
func TestInvalidSettingsExitCode(t *testing.T) {
	path := writeSettings(t, map[string]string{"DIMIRROR_SOURCE_ENDPOINT": "ftp://x"})
	for _, args := range [][]string{{"copy", "--id", "invoice-v1"}, {"status"}} {
		t.Run(args[0], func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			env := testEnv(newCLIClock(), nil)
			var code int
			args := append(args, "--settings", path)
			if args[0] == "copy" {
				code = runCopy(context.Background(), args[1:], &stdout, &stderr, env)
			} else {
				code = runStatus(context.Background(), args[1:], &stdout, &stderr, env)
			}
			if code != exitSettings || !strings.Contains(stderr.String(), "DIMIRROR_SOURCE_ENDPOINT") || !strings.Contains(stderr.String(), "DIMIRROR_TARGETS") {
				t.Errorf("exit %d, stderr %q", code, stderr.String())
			}
		})
	}
}

func TestGoldenHelp(t *testing.T) {
	for _, tt := range []struct{ name, golden string }{{"", "help.txt"}, {"copy", "copy-help.txt"}, {"status", "status-help.txt"}} {
		t.Run(tt.golden, func(t *testing.T) {
			args := []string{"--help"}
			if tt.name != "" {
				args = []string{tt.name, "--help"}
			}
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), args, &stdout, &stderr); code != exitOK || stderr.Len() > 0 {
				t.Fatalf("exit %d, stderr %q", code, stderr.String())
			}
			checkGolden(t, tt.golden, stdout.Bytes())
		})
	}
}
