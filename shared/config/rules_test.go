package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// rulesBase is a valid rules-form configuration: the legacy pair unset.
func rulesOverrides(extra map[string]string) map[string]string {
	o := map[string]string{
		"DIMIRROR_SOURCE_ENDPOINT": unset,
		"DIMIRROR_TARGETS":         unset,
		"DIMIRROR_RESOURCES":       "east=https://east.cognitiveservices.azure.com/,west=https://west.cognitiveservices.azure.com/;degrade=true,north=https://north.cognitiveservices.azure.com/",
		"DIMIRROR_RULES":           "east>west,west>east,east>north",
	}
	for k, v := range extra {
		o[k] = v
	}
	return o
}

func TestRulesForm(t *testing.T) {
	c := load(t, rulesOverrides(map[string]string{
		"DIMIRROR_RESOURCE_KEYS": "east=k1,north=k3",
		"DIMIRROR_RULES":         "east>west;include=inv-*|rcpt-*;exclude=tmp-*;kinds=model, west>east,east>north",
	}))
	if c.Legacy {
		t.Error("Legacy = true for the rules form")
	}
	if got := names(c.Resources); !slices.Equal(got, []string{"east", "west", "north"}) {
		t.Errorf("resources = %v", got)
	}
	if r, _ := c.Resource("east"); r.Key != "k1" {
		t.Error("east's key not read")
	}
	if r, _ := c.Resource("west"); r.Key != "" || !r.Degrade {
		t.Errorf("west = %+v, want Entra ID and degrade", r)
	}
	var rules []string
	for _, r := range c.Rules {
		rules = append(rules, r.String())
	}
	if !slices.Equal(rules, []string{"east>west", "west>east", "east>north"}) {
		t.Errorf("rules = %v", rules)
	}
	r := c.Rules[0]
	if !slices.Equal(r.Include, []string{"inv-*", "rcpt-*"}) || !slices.Equal(r.Exclude, []string{"tmp-*"}) || !slices.Equal(r.Kinds, []string{"model"}) {
		t.Errorf("rule filters = %+v", r)
	}
	for _, tc := range []struct {
		kind, id string
		want     bool
	}{{"model", "inv-1", true}, {"model", "rcpt-1", true}, {"model", "other", false}, {"classifier", "inv-1", false}, {"model", "tmp-1", false}} {
		if got := r.Matches(tc.kind, tc.id); got != tc.want {
			t.Errorf("Matches(%s, %s) = %v", tc.kind, tc.id, got)
		}
	}
	if !c.Rules[1].Matches("classifier", "anything") {
		t.Error("a rule without filters must match everything")
	}
	if got := c.SourceNames(); !slices.Equal(got, []string{"east", "west"}) {
		t.Errorf("SourceNames = %v", got)
	}
	if got := names(c.Targets); !slices.Equal(got, []string{"west", "east", "north"}) {
		t.Errorf("Targets = %v, want every rule destination", got)
	}
	if c.Source.Endpoint != "" {
		t.Error("the rules form has no legacy source")
	}
}

func TestLegacyFormAsRules(t *testing.T) {
	c := load(t, map[string]string{"DIMIRROR_TARGETS": "west=https://west.cognitiveservices.azure.com/,east=https://east.cognitiveservices.azure.com/", "DIMIRROR_SOURCE_KEY": "sk"})
	if !c.Legacy {
		t.Error("Legacy = false")
	}
	if got := names(c.Resources); !slices.Equal(got, []string{LegacySourceName, "west", "east"}) {
		t.Errorf("resources = %v", got)
	}
	if src, _ := c.Resource(LegacySourceName); src.Endpoint != c.Source.Endpoint || src.Key != "sk" || src.APIVersion != c.Source.APIVersion {
		t.Errorf("source resource = %+v", src)
	}
	var rules []string
	for _, r := range c.Rules {
		rules = append(rules, r.String())
	}
	if !slices.Equal(rules, []string{"source>west", "source>east"}) {
		t.Errorf("rules = %v", rules)
	}
}

func TestRulesInvalid(t *testing.T) {
	v21 := ";api-version=2.1;resource-id=/subscriptions/s/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/a;region=westus"
	tests := []struct {
		name      string
		overrides map[string]string
		setting   string
		want      string
	}{
		{"both forms", map[string]string{"DIMIRROR_SOURCE_ENDPOINT": "https://src.cognitiveservices.azure.com/"}, "DIMIRROR_RESOURCES", "set either DIMIRROR_RESOURCES + DIMIRROR_RULES"},
		{"rules missing", map[string]string{"DIMIRROR_RULES": unset}, "DIMIRROR_RULES", "required with DIMIRROR_RESOURCES"},
		{"resources missing", map[string]string{"DIMIRROR_RESOURCES": unset}, "DIMIRROR_RESOURCES", "required: list the resources as name=endpoint"},
		{"not from>to", map[string]string{"DIMIRROR_RULES": "east-west"}, "DIMIRROR_RULES", `rule 1 "east-west" is not from>to`},
		{"unknown resource", map[string]string{"DIMIRROR_RULES": "east>south"}, "DIMIRROR_RULES", `rule "east>south": no resource "south" in DIMIRROR_RESOURCES (resources: east, west, north); add it there or fix the name`},
		{"to itself", map[string]string{"DIMIRROR_RULES": "east>east"}, "DIMIRROR_RULES", `rule "east>east": copies a resource into itself; remove the rule`},
		{"duplicate", map[string]string{"DIMIRROR_RULES": "east>west, east>west;kinds=model"}, "DIMIRROR_RULES", `rule "east>west": is given twice; keep one entry`},
		{"family", map[string]string{"DIMIRROR_RESOURCES": "east=https://e.example/,west=https://w.example/" + v21, "DIMIRROR_RULES": "east>west"}, "DIMIRROR_RULES", `rule "east>west": east uses api-version 2024-11-30 and west uses 2.1: v2.1 and later versions cannot copy to each other`},
		{"unknown option", map[string]string{"DIMIRROR_RULES": "east>west;prefix=a"}, "DIMIRROR_RULES", `rule "east>west": unknown option "prefix"; options are include, exclude and kinds`},
		{"bad kind", map[string]string{"DIMIRROR_RULES": "east>west;kinds=models"}, "DIMIRROR_RULES", `kind "models" is unknown`},
		{"bad glob", map[string]string{"DIMIRROR_RULES": "east>west;include=[a"}, "DIMIRROR_RULES", `include pattern "[a" is malformed`},
		{"option twice", map[string]string{"DIMIRROR_RULES": "east>west;include=a;include=b"}, "DIMIRROR_RULES", "option include given twice; separate several values with |"},
		{"empty option", map[string]string{"DIMIRROR_RULES": "east>west;exclude="}, "DIMIRROR_RULES", "option exclude has no value"},
		{"only commas", map[string]string{"DIMIRROR_RULES": " , "}, "DIMIRROR_RULES", "lists no rule"},
		{"key of unknown resource", map[string]string{"DIMIRROR_RESOURCE_KEYS": "south=k"}, "DIMIRROR_RESOURCE_KEYS", `"south" is not a resource in DIMIRROR_RESOURCES (resources: east, west, north)`},
		{"resource named twice", map[string]string{"DIMIRROR_RESOURCES": "east=https://e.example/,east=https://f.example/", "DIMIRROR_RULES": "east>east2"}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadFrom(lookupWith(rulesOverrides(tc.overrides)))
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if tc.setting == "" {
				return // several problems; only that it fails matters
			}
			if len(se.Problems) != 1 {
				t.Fatalf("want exactly one problem, got:\n%v", err)
			}
			if p := se.Problems[0]; p.Setting != tc.setting || !strings.Contains(p.Message, tc.want) {
				t.Errorf("problem = %s: %s\nwant      %s: ...%s...", p.Setting, p.Message, tc.setting, tc.want)
			}
		})
	}
}

func TestLegacyTargetNamedSource(t *testing.T) {
	_, err := LoadFrom(lookupWith(map[string]string{"DIMIRROR_TARGETS": "source=https://x.example/"}))
	if err == nil || !strings.Contains(err.Error(), `the target name "source" is reserved`) {
		t.Errorf("err = %v", err)
	}
}

func TestResourceKeysNeverEchoed(t *testing.T) {
	_, err := LoadFrom(lookupWith(rulesOverrides(map[string]string{"DIMIRROR_RESOURCE_KEYS": "supersecretkeyvalue,east="})))
	if err == nil || strings.Contains(err.Error(), "supersecretkeyvalue") {
		t.Errorf("err = %v", err)
	}
}

func names(rs []Resource) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Name
	}
	return out
}
