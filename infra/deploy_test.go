package infra_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dimirror/dimirror/shared/config"
)

const deployDoc = "../docs/DEPLOY.md"

// TestBicepSymbolsUsed mirrors the linter's no-unused-params and no-unused-vars: a parameter
// nobody reads is a setting that silently does nothing.
func TestBicepSymbolsUsed(t *testing.T) {
	for path, f := range bicepFiles(t) {
		uses := map[string]int{}
		for _, tk := range f.toks {
			if tk.kind == tIdent {
				uses[tk.text]++
			}
		}
		// Identifiers inside interpolations are not kept as tokens; count them from the source.
		for _, m := range regexp.MustCompile(`\$\{([^}]*)\}`).FindAllStringSubmatch(f.src, -1) {
			for _, id := range regexp.MustCompile(`[A-Za-z_]\w*`).FindAllString(m[1], -1) {
				uses[id]++
			}
		}
		for _, p := range sortedKeys(f.params) {
			if uses[p] < 2 {
				t.Errorf("%s: param %s is never used", path, p)
			}
		}
		for _, v := range sortedKeys(f.vars) {
			if uses[v] < 2 {
				t.Errorf("%s: var %s is never used", path, v)
			}
		}
	}
}

type paramFile struct {
	Parameters map[string]struct {
		Value json.RawMessage `json:"value"`
	} `json:"parameters"`
}

func readParamFile(t *testing.T, path string) paramFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pf paramFile
	if err := json.Unmarshal(data, &pf); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pf
}

var (
	armAccountIDRE = regexp.MustCompile(`(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.CognitiveServices/accounts/[^/]+$`)
	targetNameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
)

func TestParameterFiles(t *testing.T) {
	main := loadBicep(t, "main.bicep")
	files := []string{"main.parameters.json", filepath.Join("examples", "parameters.example.json")}
	for _, path := range files {
		pf := readParamFile(t, path)
		for _, name := range sortedKeys(pf.Parameters) {
			if _, ok := main.params[name]; !ok {
				t.Errorf("%s sets %s, which main.bicep does not declare", path, name)
			}
		}
		for _, name := range sortedKeys(main.params) {
			if _, ok := pf.Parameters[name]; main.params[name] && !ok {
				t.Errorf("%s lacks %s, which main.bicep requires", path, name)
			}
		}
	}

	// azd fills main.parameters.json from its environment.
	azd := readParamFile(t, "main.parameters.json")
	for name, want := range map[string]string{
		"environmentName":  `"${AZURE_ENV_NAME}"`,
		"location":         `"${AZURE_LOCATION}"`,
		"sourceResourceId": `"${DIMIRROR_SOURCE_RESOURCE_ID}"`,
		"targets":          `"${DIMIRROR_TARGETS_JSON}"`,
	} {
		if got := string(azd.Parameters[name].Value); got != want {
			t.Errorf("main.parameters.json %s = %s, want %s", name, got, want)
		}
	}

	// The example's resources have the shape the template splits into subscription and group.
	ex := readParamFile(t, files[1])
	var source string
	if err := json.Unmarshal(ex.Parameters["sourceResourceId"].Value, &source); err != nil || !armAccountIDRE.MatchString(source) {
		t.Errorf("example sourceResourceId %q is not a Cognitive Services account ID (%v)", source, err)
	}
	var targets []struct {
		Name       string `json:"name"`
		ResourceID string `json:"resourceId"`
	}
	if err := json.Unmarshal(ex.Parameters["targets"].Value, &targets); err != nil || len(targets) == 0 {
		t.Fatalf("example targets: %v (%d)", err, len(targets))
	}
	seen := map[string]bool{}
	for _, tg := range targets {
		if !targetNameRE.MatchString(tg.Name) || seen[tg.Name] {
			t.Errorf("example target name %q is invalid or repeated", tg.Name)
		}
		seen[tg.Name] = true
		if !armAccountIDRE.MatchString(tg.ResourceID) {
			t.Errorf("example target %s: %q is not a Cognitive Services account ID", tg.Name, tg.ResourceID)
		}
	}
}

// lastString returns the last non-empty string literal on the line declaring `kind name` in f
// (the non-empty branch of `cond ? ” : '...'` or `cond ? '...' : ”`).
func lastString(t *testing.T, f *bicepFile, kind, name string) string {
	t.Helper()
	for i := 0; i+1 < len(f.toks); i++ {
		if f.toks[i].text != kind || f.toks[i+1].text != name || f.toks[i].depth != 0 {
			continue
		}
		s, found := "", false
		for j := i; j < len(f.toks) && f.toks[j].kind != tNewline; j++ {
			if f.toks[j].kind == tString && f.toks[j].text != "" {
				s, found = f.toks[j].text, true
			}
		}
		if found {
			return s
		}
	}
	t.Fatalf("%s: no string in %s %s", f.path, kind, name)
	return ""
}

// TestTargetEntriesLoad renders DIMIRROR_TARGETS the way the Bicep builds it from the existing
// resources and checks that dimirror's settings validation accepts it as meant.
func TestTargetEntriesLoad(t *testing.T) {
	f := loadBicep(t, "modules/docintel-access.bicep")
	entry := lastString(t, f, "output", "targetEntry")
	versionOpt := lastString(t, f, "var", "versionOption")
	degradeOpt := lastString(t, f, "var", "degradeOption")

	type target struct {
		name, endpoint, id, region, apiVersion string
		degrade                                bool
	}
	render := func(tg target) string {
		vars := map[string]string{
			"targetName": tg.name, "endpoint": tg.endpoint, "account.id": tg.id, "region": tg.region,
			"versionOption": "", "degradeOption": "",
		}
		if tg.apiVersion != "" {
			vars["versionOption"] = strings.ReplaceAll(versionOpt, "${apiVersion}", tg.apiVersion)
		}
		if tg.degrade {
			vars["degradeOption"] = degradeOpt
		}
		out := regexp.MustCompile(`\$\{([^}]*)\}`).ReplaceAllStringFunc(entry, func(m string) string {
			v, ok := vars[m[2:len(m)-1]]
			if !ok {
				t.Fatalf("targetEntry uses %s, which this test does not render", m)
			}
			return v
		})
		return out
	}
	targets := []target{
		{"westus2", "https://di-westus2.cognitiveservices.azure.com/",
			"/subscriptions/s1/resourceGroups/rg-a/providers/Microsoft.CognitiveServices/accounts/di-westus2", "westus2", "", false},
		{"eu-1", "https://di-eu.cognitiveservices.azure.com/",
			"/subscriptions/s2/resourceGroups/rg-b/providers/Microsoft.CognitiveServices/accounts/di-eu", "westeurope", "2023-07-31", true},
	}
	var entries []string
	for _, tg := range targets {
		entries = append(entries, render(tg))
	}
	settings := map[string]string{
		"DIMIRROR_SOURCE_ENDPOINT":                      "https://di-source.cognitiveservices.azure.com/",
		"DIMIRROR_TARGETS":                              strings.Join(entries, ","),
		"ServiceBusConnection__fullyQualifiedNamespace": "sb-dimirror-x.servicebus.windows.net",
		"TableConnection__tableServiceUri":              "https://stdimx.table.core.windows.net/",
	}
	cfg, err := config.LoadFrom(func(k string) (string, bool) { v, ok := settings[k]; return v, ok })
	if err != nil {
		t.Fatalf("DIMIRROR_TARGETS %q: %v", settings["DIMIRROR_TARGETS"], err)
	}
	if len(cfg.Targets) != len(targets) {
		t.Fatalf("%d targets loaded, want %d", len(cfg.Targets), len(targets))
	}
	for i, tg := range targets {
		got := cfg.Targets[i]
		if got.Name != tg.name || got.Endpoint != strings.TrimSuffix(tg.endpoint, "/") || got.ResourceID != tg.id ||
			got.Region != tg.region || got.Degrade != tg.degrade {
			t.Errorf("target %d = %+v, want %+v", i, got, tg)
		}
		if tg.apiVersion != "" && string(got.APIVersion) != tg.apiVersion {
			t.Errorf("target %s api-version %s, want %s", tg.name, got.APIVersion, tg.apiVersion)
		}
	}
	if cfg.Table.ServiceURI != "https://stdimx.table.core.windows.net" {
		t.Errorf("table service URI %q: the storage output's trailing slash must be accepted", cfg.Table.ServiceURI)
	}

	// The rules form: main.bicep passes the same entries, one per resource, as DIMIRROR_RESOURCES
	// with the rules parameter as DIMIRROR_RULES (and leaves the source + targets settings empty).
	rulesSettings := map[string]string{
		"DIMIRROR_RESOURCES":                            strings.Join(entries, ","),
		"DIMIRROR_RULES":                                "westus2>eu-1,eu-1>westus2",
		"DIMIRROR_SOURCE_ENDPOINT":                      "",
		"DIMIRROR_TARGETS":                              "",
		"ServiceBusConnection__fullyQualifiedNamespace": "sb-dimirror-x.servicebus.windows.net",
		"TableConnection__tableServiceUri":              "https://stdimx.table.core.windows.net/",
	}
	rcfg, err := config.LoadFrom(func(k string) (string, bool) { v, ok := rulesSettings[k]; return v, ok })
	if err != nil {
		t.Fatalf("rules form %q: %v", rulesSettings["DIMIRROR_RESOURCES"], err)
	}
	if len(rcfg.Resources) != len(targets) || len(rcfg.Rules) != 2 || rcfg.Legacy {
		t.Errorf("rules form: %d resources, %d rules, legacy %v", len(rcfg.Resources), len(rcfg.Rules), rcfg.Legacy)
	}
	for i, tg := range targets {
		if got := rcfg.Resources[i]; got.Name != tg.name || got.ResourceID != tg.id || got.Degrade != tg.degrade {
			t.Errorf("resource %d = %+v, want %+v", i, got, tg)
		}
	}
}

// goSources concatenates the non-test Go files under dir.
func goSources(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != dir {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b.Write(data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// plannedEvents are log events the alerts rely on that the app may not emit yet; the deploy
// guide documents their shape for whoever adds them.
var plannedEvents = []string{"replication freshness", "rpo-missed"}

// TestAlertQueries: every log alert query is printed in the deploy guide, and matches a log
// event dimirror emits (or a documented planned one).
func TestAlertQueries(t *testing.T) {
	f := loadBicep(t, "modules/alerts.bicep")
	doc, err := os.ReadFile(deployDoc)
	if err != nil {
		t.Fatal(err)
	}
	normalize := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	code := goSources(t, "..")
	msgRE := regexp.MustCompile(`"msg":"([^"']+)`)
	queries := 0
	for _, tk := range f.toks {
		if tk.kind != tString || !strings.Contains(tk.text, "AppTraces") {
			continue
		}
		queries++
		if !strings.Contains(normalize(string(doc)), normalize(tk.text)) {
			t.Errorf("the query below is not in %s:\n%s", deployDoc, tk.text)
		}
		m := msgRE.FindStringSubmatch(tk.text)
		if m == nil {
			t.Errorf("query does not match a log event's msg:\n%s", tk.text)
			continue
		}
		event := m[1]
		switch {
		case strings.Contains(code, `"`+event):
		case slices.Contains(plannedEvents, event):
			if !strings.Contains(string(doc), `"msg":"`+event+`"`) {
				t.Errorf("planned event %q is not documented in %s", event, deployDoc)
			}
		default:
			t.Errorf("no Go source logs a message starting %q, which the alert queries", event)
		}
	}
	if queries != 3 {
		t.Errorf("found %d log alert queries, want 3 (failed replicas, oldest pending, RPO missed)", queries)
	}
	r, ok := f.resource("deadLettered")
	if !ok {
		t.Fatal("alerts.bicep: dead-letter metric alert missing")
	}
	props := f.literalProps(r.start, r.end)
	for k, v := range map[string]string{"metricName": "DeadletteredMessages", "metricNamespace": "Microsoft.ServiceBus/namespaces", "name": "EntityName"} {
		if !slices.Contains(props[k], v) {
			t.Errorf("dead-letter alert %s = %v, want %s", k, props[k], v)
		}
	}
}

// TestLogAlertRules pins how each log alert evaluates its query: per-event rules count the
// events of the last 15 minutes per target, the freshness rule takes the largest figure of the
// last two hours (a sweep logs it hourly); all resolve themselves.
func TestLogAlertRules(t *testing.T) {
	f := loadBicep(t, "modules/alerts.bicep")
	tests := []struct {
		resource string
		want     map[string]string
		body     []string
	}{
		{"replicaFailed", map[string]string{
			"evaluationFrequency": "PT5M", "windowSize": "PT15M", "timeAggregation": "Count", "threshold": "0", "severity": "2", "autoMitigate": "true",
		}, []string{"query : replicaFailedQuery", "name : 'target' operator : 'Include'"}},
		{"rpoMissed", map[string]string{
			"evaluationFrequency": "PT5M", "windowSize": "PT15M", "timeAggregation": "Count", "threshold": "0", "severity": "2", "autoMitigate": "true",
		}, []string{"query : rpoMissedQuery", "name : 'target' operator : 'Include'"}},
		{"oldestPending", map[string]string{
			"evaluationFrequency": "PT15M", "windowSize": "PT2H", "timeAggregation": "Maximum", "metricMeasureColumn": "oldestPendingMinutes", "severity": "2", "autoMitigate": "true",
		}, []string{"query : oldestPendingQuery", "threshold : oldestPendingAlertMinutes"}},
	}
	for _, tc := range tests {
		t.Run(tc.resource, func(t *testing.T) {
			r, ok := f.resource(tc.resource)
			if !ok || !strings.HasPrefix(r.typ, "Microsoft.Insights/scheduledQueryRules@") {
				t.Fatalf("alerts.bicep: scheduled query rule %s missing (%+v)", tc.resource, r)
			}
			props := f.literalProps(r.start, r.end)
			for k, v := range tc.want {
				if !slices.Equal(props[k], []string{v}) {
					t.Errorf("%s = %v, want %s", k, props[k], v)
				}
			}
			body := tokenText(f.toks[r.start:r.end])
			for _, want := range append(tc.body, "actionGroups : actionGroupIds", "scopes : [ workspaceId ]") {
				if !strings.Contains(body, want) {
					t.Errorf("lacks %q", want)
				}
			}
			if !strings.Contains(tokenText(f.toks), tc.resource+" . id") {
				t.Errorf("%s is not among the ruleIds output", tc.resource)
			}
		})
	}
}

// TestAzdAndMakefileAgree: azure.yaml provisions infra/main.bicep and deploys with `make deploy`,
// whose variables default to main.bicep's outputs.
func TestAzdAndMakefileAgree(t *testing.T) {
	yaml, err := os.ReadFile("../azure.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(yaml), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{"provider: bicep", "path: infra", "module: main", "postdeploy:", "run: make deploy"} {
		if !lines[want] {
			t.Errorf("azure.yaml lacks the line %q", want)
		}
	}
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	makefile := string(mk)
	for _, want := range []string{"\npackage:", "\ndeploy:", "FUNCTION_APP   ?= $(FUNCTION_APP_NAME)", "RESOURCE_GROUP ?= $(AZURE_RESOURCE_GROUP)", "./infra/cmd/pack"} {
		if !strings.Contains(makefile, want) {
			t.Errorf("Makefile lacks %q", want)
		}
	}
	if !regexp.MustCompile(`(?m)^\.PHONY:.*\bpackage\b.*\bdeploy\b`).MatchString(makefile) {
		t.Error("package and deploy are not .PHONY")
	}
	main := loadBicep(t, "main.bicep")
	for _, out := range []string{"FUNCTION_APP_NAME", "AZURE_RESOURCE_GROUP", "WEBHOOK_URL"} {
		if !main.outputs[out] {
			t.Errorf("main.bicep has no output %s", out)
		}
	}
}
