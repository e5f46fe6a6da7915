package config

import "testing"

// The project's sample settings are the local stack's: they must load as they are, for both
// hostings' checks that do not depend on the host.
func TestProjectSampleSettingsLoad(t *testing.T) {
	values, err := ReadSettingsFile("../../local.settings.sample.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadFrom(func(k string) (string, bool) { v, ok := values[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ValidateStandalone(); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Targets) != 2 || cfg.Queue != "copy-requests" || cfg.Table.Name != "replicas" {
		t.Errorf("unexpected: %d targets, queue %q, table %q", len(cfg.Targets), cfg.Queue, cfg.Table.Name)
	}
	for _, name := range Names() {
		if name == "FUNCTIONS_CUSTOMHANDLER_PORT" || name == "FUNCTIONS_HTTPWORKER_PORT" {
			continue // set by the Functions host, never by the app's settings
		}
		if _, ok := values[name]; !ok {
			t.Errorf("local.settings.sample.json lacks %s", name)
		}
	}
}
