package handlers

import (
	"strings"
	"testing"
)

func TestDecodeReplicationRequest(t *testing.T) {
	tests := []struct {
		name, body string
		field      string // the field the error names; "" for none
		wantErr    string
	}{
		{"minimal", `{"sourceId":"invoice-v1"}`, "", ""},
		{"full", `{"kind":"classifier","sourceId":"r1","targets":["eastus"],"targetId":"r2"}`, "", ""},
		{"unknown field", `{"sourceId":"a1","colour":"red"}`, "colour", "unknown field"},
		{"string for list", `{"sourceId":"a1","targets":"eastus"}`, "targets", "must be an array of strings"},
		{"number for string", `{"sourceId":7}`, "sourceId", "must be a string"},
		{"array body", `["invoice-v1"]`, "", "expected a JSON object"},
		{"syntax", `{"sourceId":}`, "", "invalid JSON at byte"},
		{"truncated", `{"sourceId":"a1"`, "", "ends early"},
		{"trailing", `{"sourceId":"a1"} {}`, "", "data after the JSON object"},
		{"empty", `   `, "", "no body"},
		{"too large", `{"sourceId":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, "", "larger than 64 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, field, err := decodeReplicationRequest(strings.NewReader(tt.body))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
			}
			if field != tt.field {
				t.Errorf("field %q, want %q", field, tt.field)
			}
		})
	}
}
