package funcdef

import (
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
