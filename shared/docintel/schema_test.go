package docintel

import (
	"encoding/json"
	"testing"
)

func TestSchemaFingerprint(t *testing.T) {
	model := func(id, v, raw string) *Model {
		k := KindModel
		if v == "classifier" {
			k, v = KindClassifier, "2024-11-30"
		}
		return &Model{Kind: k, ID: id, APIVersion: v, Raw: json.RawMessage(raw)}
	}
	const schemaA = `{"fields":{"Total":{"type":"number"},"Vendor":{"type":"string"}}}`
	const schemaB = `{"fields":{"Total":{"type":"string"}}}`
	base := model("inv", "2024-11-30", `{"modelId":"inv","description":"x","createdDateTime":"2026-01-01T00:00:00Z","docTypes":{"inv":{"buildMode":"template","fieldSchema":`+schemaA+`}}}`)
	cases := []struct {
		name string
		m    *Model
		same bool
	}{
		{"the same details", model("inv", "2024-11-30", string(base.Raw)), true},
		{"another description, dates, tags and key order", model("inv", "2024-11-30",
			`{"tags":{"a":"b"},"docTypes":{"inv":{"fieldSchema":{"fields":{"Vendor":{"type":"string"},"Total":{"type":"number"}}},"buildMode":"template"}},"modelId":"inv","description":"y"}`), true},
		{"the self-named document type renamed to the target id", model("inv-copy", "2022-08-31",
			`{"modelId":"inv-copy","docTypes":{"inv-copy":{"fieldSchema":`+schemaA+`}}}`), true},
		{"a field of another type", model("inv", "2024-11-30", `{"modelId":"inv","docTypes":{"inv":{"fieldSchema":`+schemaB+`}}}`), false},
		{"another document type", model("inv", "2024-11-30", `{"modelId":"inv","docTypes":{"receipt":{"fieldSchema":`+schemaA+`}}}`), false},
		{"no document types", model("inv", "2024-11-30", `{"modelId":"inv"}`), false},
	}
	want, err := SchemaFingerprint(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := SchemaFingerprint(c.m)
			if err != nil {
				t.Fatal(err)
			}
			if (got == want) != c.same {
				t.Errorf("fingerprint %s vs %s: same = %v, want %v", got, want, got == want, c.same)
			}
		})
	}
}

func TestSchemaFingerprintKinds(t *testing.T) {
	fp := func(m *Model) string {
		t.Helper()
		s, err := SchemaFingerprint(m)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cls := func(raw string) *Model {
		return &Model{Kind: KindClassifier, ID: "router", APIVersion: "2024-11-30", Raw: json.RawMessage(raw)}
	}
	// A classifier: its document type names, not where their training data was.
	if fp(cls(`{"docTypes":{"a":{"azureBlobSource":{"containerUrl":"https://x"}},"b":{}}}`)) != fp(cls(`{"docTypes":{"b":{},"a":{"azureBlobSource":{"containerUrl":"https://y"}}}}`)) ||
		fp(cls(`{"docTypes":{"a":{},"b":{}}}`)) == fp(cls(`{"docTypes":{"a":{},"c":{}}}`)) {
		t.Error("classifier fingerprints")
	}
	v21 := func(raw string) *Model {
		return &Model{Kind: KindModel, ID: "m", APIVersion: "2.1", Raw: json.RawMessage(raw)}
	}
	if fp(v21(`{"modelInfo":{"modelId":"m"},"trainResult":{"fields":[{"fieldName":"b"},{"fieldName":"a"}]}}`)) != fp(v21(`{"modelInfo":{"modelId":"m","status":"ready"},"trainResult":{"fields":[{"fieldName":"a","accuracy":1},{"fieldName":"b"}]}}`)) ||
		fp(v21(`{"trainResult":{"fields":[{"fieldName":"a"}]}}`)) == fp(v21(`{"trainResult":{"fields":[{"fieldName":"c"}]}}`)) {
		t.Error("v2.1 fingerprints")
	}
	for _, bad := range []*Model{nil, {Kind: KindModel, ID: "m"}, {Kind: KindModel, ID: "m", Raw: json.RawMessage(`[1]`)}} {
		if _, err := SchemaFingerprint(bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
