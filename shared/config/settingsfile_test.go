package config

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "local.settings.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadSettingsFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    map[string]string
		wantErr string
	}{
		{"valid", `{"IsEncrypted":false,"Values":{"FUNCTIONS_WORKER_RUNTIME":"custom","DIMIRROR_TARGETS":"west=https://w/"},"ConnectionStrings":{"Db":"Server=x"}}`,
			map[string]string{"FUNCTIONS_WORKER_RUNTIME": "custom", "DIMIRROR_TARGETS": "west=https://w/"}, ""},
		{"IsEncrypted absent, BOM, empty Values", "\xef\xbb\xbf{\"Values\":{}}", map[string]string{}, ""},
		{"IsEncrypted null, ConnectionStrings objects", `{"IsEncrypted":null,"Values":{"A":""},"ConnectionStrings":{"Db":{"ConnectionString":"x","ProviderName":"p"}}}`,
			map[string]string{"A": ""}, ""},
		{"encrypted", `{"IsEncrypted":true,"Values":{"A":"b"}}`, nil, "IsEncrypted is true: the values are encrypted for this machine only; decrypt them"},
		{"IsEncrypted string", `{"IsEncrypted":"false","Values":{}}`, nil, "IsEncrypted must be true or false"},
		{"bad JSON", `{"Values":{"A":"b",}}`, nil, "not valid JSON: invalid character '}'"},
		{"empty file", ``, nil, "not valid JSON"},
		{"array", `[]`, nil, `want a JSON object {"IsEncrypted":false,"Values":{...}}`},
		{"missing Values", `{"IsEncrypted":false}`, nil, `has no "Values" object`},
		{"Values null", `{"Values":null}`, nil, `has no "Values" object`},
		{"Values array", `{"Values":["A"]}`, nil, "Values must be a JSON object, not array"},
		{"non-string values", `{"Values":{"B":1,"A":true,"C":null,"D":"ok"}}`, nil, "Values must all be strings (as app settings are); not strings: A, B, C"},
		{"ConnectionStrings array", `{"Values":{},"ConnectionStrings":[]}`, nil, "ConnectionStrings must be a JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.content)
			got, err := ReadSettingsFile(path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("err = %v, want it to name the file", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tc.want) {
				t.Errorf("values = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReadSettingsFileErrors(t *testing.T) {
	t.Run("missing file", func(t *testing.T) {
		_, err := ReadSettingsFile(filepath.Join(t.TempDir(), "absent.json"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err = %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		path := writeFile(t, `{"Values":{"A":"`+strings.Repeat("x", maxSettingsFile)+`"}}`)
		if _, err := ReadSettingsFile(path); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Errorf("err = %v, want a size error", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		if _, err := ReadSettingsFile(t.TempDir()); err == nil {
			t.Error("no error for a directory")
		}
	})
	t.Run("secrets never echoed", func(t *testing.T) {
		for _, content := range []string{
			`{"IsEncrypted":true,"Values":{"DIMIRROR_SOURCE_KEY":"` + secrets[0] + `"}}`,
			`{"Values":{"DIMIRROR_SOURCE_KEY":["` + secrets[0] + `"]}}`,
			`{"Values":{"DIMIRROR_SOURCE_KEY":"` + secrets[0] + `",}}`,
			`{"Values":"` + secrets[0] + `"}`,
		} {
			_, err := ReadSettingsFile(writeFile(t, content))
			if err == nil {
				t.Errorf("no error for %s", content)
				continue
			}
			assertNoSecret(t, "settings file error", err.Error())
		}
	})
}

// TestSettingsFileFeedsLoadFrom reads the project's sample local.settings.json and loads a
// complete file through LoadFrom, as the CLI does.
func TestSettingsFileFeedsLoadFrom(t *testing.T) {
	sample, err := ReadSettingsFile("../../testdata/functions/config/local.settings.json.example")
	if err != nil {
		t.Fatal(err)
	}
	if sample["FUNCTIONS_WORKER_RUNTIME"] != "custom" || sample["ServiceBusConnection__fullyQualifiedNamespace"] != "mynamespace.servicebus.windows.net" {
		t.Errorf("sample values = %v", sample)
	}

	values, err := ReadSettingsFile(writeFile(t, `{
  "IsEncrypted": false,
  "Values": {
    "FUNCTIONS_WORKER_RUNTIME": "custom",
    "DIMIRROR_SOURCE_ENDPOINT": "https://src.cognitiveservices.azure.com/",
    "DIMIRROR_TARGETS": "west=https://west.cognitiveservices.azure.com/",
    "DIMIRROR_TARGET_KEYS": "west=`+secrets[1]+`",
    "ServiceBusConnection__fullyQualifiedNamespace": "mynamespace.servicebus.windows.net",
    "TableConnection": "UseDevelopmentStorage=true",
    "DIMIRROR_LOG_LEVEL": "debug"
  }
}`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := LoadFrom(func(name string) (string, bool) { v, ok := values[name]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if c.Targets[0].Key != secrets[1] || c.Table.ConnectionString != "UseDevelopmentStorage=true" || c.LogLevel.String() != "DEBUG" {
		t.Errorf("config = %v", c)
	}
}
