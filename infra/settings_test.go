package infra_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dimirror/dimirror/shared/config"
	"github.com/dimirror/dimirror/shared/funcdef"
)

const (
	appModule      = "modules/functionapp.bicep"
	sampleSettings = "../local.settings.sample.json"
	functionsDir   = "../functions"
)

// hostPorts are set by the Functions host when it starts the custom handler, never by app
// settings.
var hostPorts = []string{"FUNCTIONS_CUSTOMHANDLER_PORT", "FUNCTIONS_HTTPWORKER_PORT"}

// identityForms: config reads each connection either as a connection string or in its
// identity-based form, and refuses both at once. In Azure the Bicep sets the identity form only.
var identityForms = map[string]string{
	"ServiceBusConnection": "ServiceBusConnection__fullyQualifiedNamespace",
	"TableConnection":      "TableConnection__tableServiceUri",
}

// bicepExtras are the app settings the Bicep sets that dimirror's code does not read, with who
// reads them. Each must be set (a stale entry fails the test too).
var bicepExtras = map[string]string{
	// The Functions host's own storage (AzureWebJobsStorage), identity-based with the
	// user-assigned identity.
	"AzureWebJobsStorage__accountName": "Functions host",
	"AzureWebJobsStorage__credential":  "Functions host",
	"AzureWebJobsStorage__clientId":    "Functions host",
	// The host's Service Bus trigger reads the connection "ServiceBusConnection" with these
	// beside __fullyQualifiedNamespace (which dimirror reads too).
	"ServiceBusConnection__credential": "Functions host (Service Bus extension)",
	"ServiceBusConnection__clientId":   "Functions host (Service Bus extension)",
	// The host's telemetry; the resource refuses local auth, so the host authenticates with the
	// identity named in the authentication string.
	"APPLICATIONINSIGHTS_CONNECTION_STRING":     "Functions host",
	"APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Functions host",
	// DefaultAzureCredential's managed identity credential picks the user-assigned identity by
	// this client ID (Document Intelligence, Tables and dimirror's Service Bus sender).
	"AZURE_CLIENT_ID": "azidentity",
}

// sampleExtras are the local settings file's entries for the local Functions host.
var sampleExtras = map[string]string{
	"FUNCTIONS_WORKER_RUNTIME": "Functions host (custom handler)",
	"AzureWebJobsStorage":      "Functions host (local storage emulator)",
}

// appSettingNames reads the keys of the app settings object of the Function App module, which
// sits between the app-settings:begin and app-settings:end marker comments.
func appSettingNames(t *testing.T) []string {
	t.Helper()
	f := loadBicep(t, appModule)
	begin := strings.Index(f.src, "// app-settings:begin")
	end := strings.Index(f.src, "// app-settings:end")
	if begin < 0 || end < begin {
		t.Fatalf("%s: the app-settings:begin/end markers are missing or out of order", appModule)
	}
	block := f.src[begin:end]
	if !strings.Contains(block, "var appSettings = {") {
		t.Fatalf("%s: no `var appSettings = {` between the markers", appModule)
	}
	start, ok := f.vars["appSettings"]
	if !ok {
		t.Fatalf("%s: var appSettings not found", appModule)
	}
	names := f.objectKeys(start)
	if len(names) == 0 {
		t.Fatalf("%s: appSettings has no keys", appModule)
	}
	// Every setting line of the block must have been read as a key: a multi-line value would
	// hide the keys after it.
	lines := 0
	for _, l := range strings.Split(block, "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "//") && l != "}" && !strings.HasPrefix(l, "var appSettings") {
			lines++
		}
	}
	if lines != len(names) {
		t.Fatalf("%s: %d setting lines but %d keys read: keep one `NAME: value` per line", appModule, lines, len(names))
	}
	if !strings.Contains(f.src, "properties: appSettings") {
		t.Fatalf("%s: appSettings is not what the appsettings resource deploys", appModule)
	}
	return names
}

func codeSettings() []string {
	var out []string
	for _, n := range config.Names() {
		if !slices.Contains(hostPorts, n) {
			out = append(out, n)
		}
	}
	return out
}

func readSample(t *testing.T) map[string]string {
	t.Helper()
	values, err := config.ReadSettingsFile(sampleSettings)
	if err != nil {
		t.Fatal(err)
	}
	return values
}

func TestBicepAppSettingsMatchCode(t *testing.T) {
	names := appSettingNames(t)
	set := map[string]bool{}
	for _, n := range names {
		if set[n] {
			t.Errorf("%s sets %s twice", appModule, n)
		}
		set[n] = true
	}
	for _, n := range codeSettings() {
		if id, ok := identityForms[n]; ok {
			if set[n] {
				t.Errorf("%s sets the connection string %s: use %s (managed identity) only", appModule, n, id)
			}
			if !set[id] {
				t.Errorf("%s does not set %s, the identity-based form of %s", appModule, id, n)
			}
			continue
		}
		if !set[n] {
			t.Errorf("dimirror reads %s but %s does not set it", n, appModule)
		}
	}
	code := codeSettings()
	for _, n := range names {
		if !slices.Contains(code, n) {
			if _, ok := bicepExtras[n]; !ok {
				t.Errorf("%s sets %s, which neither dimirror nor a listed host/SDK reader uses", appModule, n)
			}
		}
	}
	for _, n := range sortedKeys(bicepExtras) {
		if !set[n] {
			t.Errorf("%s is listed as a host/SDK setting but %s does not set it: remove it from the list", n, appModule)
		}
	}
	for _, n := range hostPorts {
		if set[n] {
			t.Errorf("%s sets %s, which the Functions host assigns", appModule, n)
		}
	}
}

func TestSampleSettingsMatchCode(t *testing.T) {
	values := readSample(t)
	for _, n := range codeSettings() {
		if _, ok := values[n]; !ok {
			t.Errorf("dimirror reads %s but %s lacks it", n, sampleSettings)
		}
	}
	code := codeSettings()
	for _, n := range sortedKeys(values) {
		if !slices.Contains(code, n) {
			if _, ok := sampleExtras[n]; !ok {
				t.Errorf("%s sets %s, which neither dimirror nor the local host reads", sampleSettings, n)
			}
		}
	}
}

// settingRefs lists every %NAME% reference and every "connection" name in a function.json.
func settingRefs(t *testing.T, data []byte) (refs, connections []string) {
	t.Helper()
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				walk(k, x)
			}
		case []any:
			for _, x := range v {
				walk(key, x)
			}
		case string:
			refs = append(refs, funcdef.Settings(v)...)
			if key == "connection" {
				connections = append(connections, v)
			}
		}
	}
	walk("", doc)
	return refs, connections
}

// connectionResolves says whether the Functions host finds connection name among settings: as a
// connection string, or identity-based as <name>__<property> settings.
func connectionResolves(name string, settings map[string]bool) bool {
	if settings[name] {
		return true
	}
	for s := range settings {
		if strings.HasPrefix(s, name+"__") {
			return true
		}
	}
	return false
}

// checkBindingsResolve fails when a function.json of dir refers to a setting missing from the
// sample settings or the Bicep app settings.
func checkBindingsResolve(t *testing.T, dir string) {
	t.Helper()
	sample := map[string]bool{}
	for k := range readSample(t) {
		sample[k] = true
	}
	bicep := map[string]bool{}
	for _, k := range appSettingNames(t) {
		bicep[k] = true
	}
	fns, err := funcdef.Load(os.DirFS(dir), ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(fns) == 0 {
		t.Fatalf("no function folders in %s", dir)
	}
	sawRef, sawConn := false, false
	for _, fn := range fns {
		data, err := os.ReadFile(filepath.Join(dir, fn.Name, "function.json"))
		if err != nil {
			t.Fatal(err)
		}
		refs, conns := settingRefs(t, data)
		for _, r := range refs {
			sawRef = true
			if !sample[r] {
				t.Errorf("%s refers to %%%s%%, missing from %s", fn.Name, r, sampleSettings)
			}
			if !bicep[r] {
				t.Errorf("%s refers to %%%s%%, missing from the Bicep app settings", fn.Name, r)
			}
		}
		for _, c := range conns {
			sawConn = true
			if !connectionResolves(c, sample) {
				t.Errorf("%s uses connection %s, missing from %s", fn.Name, c, sampleSettings)
			}
			if !connectionResolves(c, bicep) {
				t.Errorf("%s uses connection %s, missing from the Bicep app settings", fn.Name, c)
			}
		}
	}
	// The app has a %SETTING% schedule or queue and a Service Bus connection; finding none would
	// mean the walk is broken, not that everything resolves.
	if !sawRef || !sawConn {
		t.Errorf("found %%SETTING%% references: %v, connections: %v; want both", sawRef, sawConn)
	}
}

func TestFunctionBindingsResolve(t *testing.T) {
	checkBindingsResolve(t, functionsDir)
}

func TestConnectionResolves(t *testing.T) {
	tests := []struct {
		name     string
		settings []string
		want     bool
	}{
		{"connection string", []string{"ServiceBusConnection"}, true},
		{"identity based", []string{"ServiceBusConnection__fullyQualifiedNamespace"}, true},
		{"other connection only", []string{"ServiceBusConnection2__fullyQualifiedNamespace"}, false},
		{"none", nil, false},
	}
	for _, tc := range tests {
		set := map[string]bool{}
		for _, s := range tc.settings {
			set[s] = true
		}
		if got := connectionResolves("ServiceBusConnection", set); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
