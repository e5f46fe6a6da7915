package funcdef

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/dimirror/dimirror"
)

func TestLoadProjectFunctions(t *testing.T) {
	fns, err := Load(dimirror.Functions, "functions")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"authorize": "httpTrigger", "status": "httpTrigger", "startcopy": "serviceBusTrigger", "poll": "timerTrigger"}
	got := map[string]string{}
	for _, f := range fns {
		tr, _ := f.Trigger()
		got[f.Name] = tr.Type
	}
	for name, typ := range want {
		if got[name] != typ {
			t.Errorf("function %s: trigger %q, want %q", name, got[name], typ)
		}
	}
}

func TestLoadRejectsBadDefinitions(t *testing.T) {
	tests := map[string]string{
		"not json":   `{`,
		"no trigger": `{"bindings":[{"type":"http","direction":"out","name":"res"}]}`,
		"two":        `{"bindings":[{"type":"timerTrigger","direction":"in"},{"type":"httpTrigger","direction":"in"}]}`,
	}
	for name, body := range tests {
		fsys := fstest.MapFS{"functions/x/function.json": {Data: []byte(body)}}
		if _, err := Load(fsys, "functions"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{"A": "1", "QUEUE": "copy-requests"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		in, want string
		fail     bool
	}{
		{"%QUEUE%", "copy-requests", false},
		{"*/%A%0 * * * * *", "*/10 * * * * *", false},
		{"plain", "plain", false},
		{"%MISSING%", "", true},
	}
	for _, tt := range tests {
		got, err := Expand(tt.in, lookup)
		if (err != nil) != tt.fail || got != tt.want {
			t.Errorf("Expand(%q) = %q, %v", tt.in, got, err)
		}
	}
	if s := Settings("%A% and %QUEUE%"); len(s) != 2 || s[0] != "A" || s[1] != "QUEUE" {
		t.Errorf("Settings = %v", s)
	}
}

func TestVerify(t *testing.T) {
	httpDef := Function{Name: "authorize", Bindings: []Binding{
		{Type: HTTPTrigger, Direction: "in", Name: "req", Methods: []string{"post"}, Route: "replications"},
		{Type: "http", Direction: "out", Name: "res"}}}
	timerDef := Function{Name: "poll", Bindings: []Binding{{Type: TimerTrigger, Direction: "in", Name: "timer", Schedule: "*/5 * * * * *"}}}
	queueDef := Function{Name: "startcopy", Bindings: []Binding{{Type: ServiceBusTrigger, Direction: "in", Name: "message", QueueName: "%Q%"}}}
	httpSpec := Spec{Name: "authorize", Trigger: HTTPTrigger, Binding: "req", Methods: []string{"POST"}, Route: "replications", Output: "res"}
	timerSpec := Spec{Name: "poll", Trigger: TimerTrigger, Binding: "timer"}
	queueSpec := Spec{Name: "startcopy", Trigger: ServiceBusTrigger, Binding: "message"}
	with := func(s Spec, f func(*Spec)) Spec { f(&s); return s }
	tests := []struct {
		name  string
		table []Spec
		defs  []Function
		want  []string // parts of the error; none: it passes
	}{
		{"agree", []Spec{httpSpec, timerSpec, queueSpec}, []Function{httpDef, timerDef, queueDef}, nil},
		{"entry without folder", []Spec{httpSpec, timerSpec}, []Function{httpDef},
			[]string{"function poll is in the function table but functions/poll/function.json does not exist"}},
		{"folder without entry", []Spec{httpSpec}, []Function{httpDef, timerDef},
			[]string{"functions/poll/function.json has no entry in the function table"}},
		{"twice", []Spec{httpSpec, httpSpec}, []Function{httpDef}, []string{"function authorize is in the function table twice"}},
		{"trigger", []Spec{with(timerSpec, func(s *Spec) { s.Trigger = HTTPTrigger })}, []Function{timerDef},
			[]string{"function poll", `trigger "timerTrigger", the function table "httpTrigger"`}},
		{"binding", []Spec{with(queueSpec, func(s *Spec) { s.Binding = "msg" })}, []Function{queueDef},
			[]string{"function startcopy", "trigger binding name"}},
		{"route", []Spec{with(httpSpec, func(s *Spec) { s.Route = "replicas" })}, []Function{httpDef},
			[]string{"function authorize", `route "replications", the function table "replicas"`}},
		{"methods", []Spec{with(httpSpec, func(s *Spec) { s.Methods = []string{"get"} })}, []Function{httpDef},
			[]string{"function authorize", `methods "POST", the function table "GET"`}},
		{"output", []Spec{with(httpSpec, func(s *Spec) { s.Output = "$return" })}, []Function{httpDef},
			[]string{"http output binding"}},
		{"two at once", []Spec{with(httpSpec, func(s *Spec) { s.Route = "x" }), timerSpec}, []Function{httpDef},
			[]string{"route", "function poll is in the function table"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.table, tt.defs)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("passed")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
		})
	}
}

func TestRoutePrefix(t *testing.T) {
	tests := []struct{ name, hostJSON, want string }{
		{"set", `{"extensions":{"http":{"routePrefix":"v1"}}}`, "v1"},
		{"empty", `{"extensions":{"http":{"routePrefix":""}}}`, ""},
		{"unset", `{"version":"2.0"}`, "api"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RoutePrefix(fstest.MapFS{"host.json": {Data: []byte(tt.hostJSON)}}, "host.json")
			if err != nil || got != tt.want {
				t.Errorf("RoutePrefix = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if got, err := RoutePrefix(dimirror.Functions, "host.json"); err != nil || got != "api" {
		t.Errorf("the project's host.json: %q, %v", got, err)
	}
}
