// Package funcdef reads the function definitions (functions/<name>/function.json) so the
// standalone host runs the same triggers, on the same schedules, as the Functions host.
package funcdef

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
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

// Trigger types dimirror's functions use.
const (
	HTTPTrigger       = "httpTrigger"
	ServiceBusTrigger = "serviceBusTrigger"
	TimerTrigger      = "timerTrigger"
)

// Spec is what a function.json must say for a function of the app's function table: its trigger
// and the names both sides rely on. The table is the code's half, the folder the host's half;
// Verify holds them together.
type Spec struct {
	Name    string
	Trigger string // HTTPTrigger, ServiceBusTrigger or TimerTrigger
	Binding string // the trigger binding's name (the key of the payload's Data)
	// HTTP triggers only.
	Methods []string // as function.json lists them (compared without regard to case)
	Route   string   // the route template, without the host's route prefix
	Output  string   // the http output binding the answer goes to
}

// Verify compares the function table with the function folders. Every difference is reported,
// each naming the function and the fix: a table entry without a folder, a folder without an
// entry, and a trigger, binding, method, route or output that disagrees.
func Verify(table []Spec, defs []Function) error {
	byName := make(map[string]Function, len(defs))
	for _, d := range defs {
		byName[d.Name] = d
	}
	inTable := make(map[string]bool, len(table))
	var errs []error
	for _, s := range table {
		if inTable[s.Name] {
			errs = append(errs, fmt.Errorf("function %s is in the function table twice: remove one entry", s.Name))
			continue
		}
		inTable[s.Name] = true
		d, ok := byName[s.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("function %s is in the function table but functions/%s/function.json does not exist: add the folder or remove the entry", s.Name, s.Name))
			continue
		}
		errs = append(errs, verifyOne(s, d)...)
	}
	for _, d := range defs {
		if !inTable[d.Name] {
			errs = append(errs, fmt.Errorf("functions/%s/function.json has no entry in the function table: add one (handlers) or remove the folder", d.Name))
		}
	}
	return errors.Join(errs...)
}

func verifyOne(s Spec, d Function) []error {
	var errs []error
	mismatch := func(what, file, table string) {
		errs = append(errs, fmt.Errorf("function %s: functions/%s/function.json has %s %q, the function table %q: make them agree", s.Name, s.Name, what, file, table))
	}
	tr, _ := d.Trigger()
	if tr.Type != s.Trigger {
		mismatch("trigger", tr.Type, s.Trigger)
		return errs // the rest compares fields of another kind of trigger
	}
	if tr.Name != s.Binding {
		mismatch("trigger binding name", tr.Name, s.Binding)
	}
	switch s.Trigger {
	case HTTPTrigger:
		if tr.Route != s.Route {
			mismatch("route", tr.Route, s.Route)
		}
		if got, want := normMethods(tr.Methods), normMethods(s.Methods); !slices.Equal(got, want) {
			mismatch("methods", strings.Join(got, ","), strings.Join(want, ","))
		}
		out := ""
		for _, b := range d.Bindings {
			if b.Type == "http" && b.Direction == "out" {
				out = b.Name
			}
		}
		if out != s.Output {
			mismatch("http output binding", out, s.Output)
		}
	case ServiceBusTrigger:
		if tr.QueueName == "" {
			errs = append(errs, fmt.Errorf("function %s: functions/%s/function.json names no queueName: add it", s.Name, s.Name))
		}
	case TimerTrigger:
		if tr.Schedule == "" {
			errs = append(errs, fmt.Errorf("function %s: functions/%s/function.json has no schedule: add it", s.Name, s.Name))
		}
	}
	return errs
}

func normMethods(ms []string) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, strings.ToUpper(m))
	}
	sort.Strings(out)
	return out
}

// RoutePrefix is the HTTP route prefix host.json sets (extensions.http.routePrefix), "api"
// when it sets none, as the host does.
func RoutePrefix(fsys fs.FS, hostFile string) (string, error) {
	data, err := fs.ReadFile(fsys, hostFile)
	if err != nil {
		return "", err
	}
	var h struct {
		Extensions struct {
			HTTP struct {
				RoutePrefix *string `json:"routePrefix"`
			} `json:"http"`
		} `json:"extensions"`
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return "", fmt.Errorf("%s: %w", hostFile, err)
	}
	if h.Extensions.HTTP.RoutePrefix == nil {
		return "api", nil
	}
	return *h.Extensions.HTTP.RoutePrefix, nil
}
