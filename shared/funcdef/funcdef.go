// Package funcdef reads the function definitions (functions/<name>/function.json) so the
// standalone host runs the same triggers, on the same schedules, as the Functions host.
package funcdef

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
)

// Binding is one entry of a function.json "bindings" array (the fields dimirror uses).
type Binding struct {
	Type       string   `json:"type"`
	Direction  string   `json:"direction"`
	Name       string   `json:"name"`
	AuthLevel  string   `json:"authLevel,omitempty"`
	Methods    []string `json:"methods,omitempty"`
	Route      string   `json:"route,omitempty"`
	QueueName  string   `json:"queueName,omitempty"`
	Connection string   `json:"connection,omitempty"`
	Schedule   string   `json:"schedule,omitempty"`
	RunOnStart bool     `json:"runOnStartup,omitempty"`
	UseMonitor *bool    `json:"useMonitor,omitempty"`
}

// Function is one function folder.
type Function struct {
	Name     string
	Bindings []Binding `json:"bindings"`
}

// Trigger is the function's trigger binding.
func (f Function) Trigger() (Binding, bool) {
	for _, b := range f.Bindings {
		if strings.HasSuffix(b.Type, "Trigger") && b.Direction == "in" {
			return b, true
		}
	}
	return Binding{}, false
}

// Load reads every <dir>/<name>/function.json of fsys, sorted by name. A function must have
// exactly one trigger.
func Load(fsys fs.FS, dir string) ([]Function, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []Function
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p := path.Join(dir, e.Name(), "function.json")
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		f := Function{Name: e.Name()}
		if err := json.Unmarshal(data, &f); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		n := 0
		for _, b := range f.Bindings {
			if strings.HasSuffix(b.Type, "Trigger") {
				n++
			}
		}
		if n != 1 {
			return nil, fmt.Errorf("%s: %d triggers, want exactly 1", p, n)
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

var settingRef = regexp.MustCompile(`%([A-Za-z0-9_]+)%`)

// Settings lists the app settings a value refers to as %NAME%.
func Settings(v string) []string {
	var out []string
	for _, m := range settingRef.FindAllStringSubmatch(v, -1) {
		out = append(out, m[1])
	}
	return out
}

// Expand resolves %NAME% references with lookup, as the host does with app settings. A
// reference to a missing setting is an error.
func Expand(v string, lookup func(string) (string, bool)) (string, error) {
	var missing []string
	out := settingRef.ReplaceAllStringFunc(v, func(m string) string {
		name := strings.Trim(m, "%")
		val, ok := lookup(name)
		if !ok {
			missing = append(missing, name)
		}
		return val
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%q refers to unset setting(s) %s", v, strings.Join(missing, ", "))
	}
	return out, nil
}
