package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// maxSettingsFile bounds ReadSettingsFile; real files are a few KiB.
const maxSettingsFile = 1 << 20

// ReadSettingsFile reads the Values of a Functions local.settings.json file
// ({"IsEncrypted":false,"Values":{...},"ConnectionStrings":{...}}). ConnectionStrings is not
// returned: the Functions host does not expose it as app settings, so bindings (and
// dimirror) do not see it. Errors never include a value.
func ReadSettingsFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: settings file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSettingsFile+1))
	if err != nil {
		return nil, fmt.Errorf("config: reading settings file %s: %w", path, err)
	}
	if len(data) > maxSettingsFile {
		return nil, fmt.Errorf("config: settings file %s is larger than %d bytes", path, maxSettingsFile)
	}
	values, err := parseSettings(data)
	if err != nil {
		return nil, fmt.Errorf("config: settings file %s: %w", path, err)
	}
	return values, nil
}

func parseSettings(data []byte) (map[string]string, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // editors on Windows add a BOM
	var file struct {
		IsEncrypted       json.RawMessage            `json:"IsEncrypted"`
		Values            map[string]json.RawMessage `json:"Values"`
		ConnectionStrings json.RawMessage            `json:"ConnectionStrings"`
	}
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v) // for the position of the syntax error
		return nil, fmt.Errorf("not valid JSON: %v", err)
	}
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return nil, errors.New(`want a JSON object {"IsEncrypted":false,"Values":{...}}`)
	}
	if err := json.Unmarshal(data, &file); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("%s must be a JSON object, not %s", te.Field, te.Value)
		}
		return nil, err
	}
	if enc := strings.TrimSpace(string(file.IsEncrypted)); enc != "" && enc != "null" {
		switch enc {
		case "true":
			return nil, errors.New("IsEncrypted is true: the values are encrypted for this machine only; decrypt them with Azure Functions Core Tools (func settings decrypt) or write them in plain text with IsEncrypted false")
		case "false":
		default:
			return nil, errors.New("IsEncrypted must be true or false")
		}
	}
	if file.Values == nil {
		return nil, errors.New(`has no "Values" object; put the settings in "Values": {"NAME": "value", ...}`)
	}
	if cs := bytes.TrimSpace(file.ConnectionStrings); len(cs) > 0 && cs[0] != '{' && string(cs) != "null" {
		return nil, errors.New("ConnectionStrings must be a JSON object")
	}
	values := make(map[string]string, len(file.Values))
	var bad []string
	for k, raw := range file.Values {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			bad = append(bad, k)
			continue
		}
		values[k] = s
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return nil, fmt.Errorf("Values must all be strings (as app settings are); not strings: %s", strings.Join(bad, ", "))
	}
	return values, nil
}
