package replication_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/shared/replication"
)

func sampleMessage() *replication.CopyMessage {
	return &replication.CopyMessage{Kind: replication.KindModel, SourceID: "invoice-v1", Target: "westus2", TargetID: "invoice-v1",
		Attempt: 1, ExpiresAt: time.Date(2026, 5, 1, 13, 0, 0, 0, time.UTC),
		Authorization: json.RawMessage(`{"targetModelId":"invoice-v1","accessToken":"SECRET-ACCESS-TOKEN"}`)}
}

func TestDecodeMessageRejectsPoison(t *testing.T) {
	good, err := json.Marshal(sampleMessage())
	if err != nil {
		t.Fatal(err)
	}
	if m, err := replication.DecodeMessage(good); err != nil || m.Attempt != 1 || string(m.Authorization) != string(sampleMessage().Authorization) {
		t.Fatalf("DecodeMessage(good) = %+v, %v", m, err)
	}
	tests := []struct{ name, body string }{
		{"not json", `hello`},
		{"unknown field", `{"kind":"model","bogus":1}`},
		{"missing", `{"kind":"model","sourceId":"invoice-v1"}`},
		{"bad kind", strings.Replace(string(good), `"model"`, `"pipeline"`, 1)},
		{"trailing", string(good) + `{}`},
		{"stray brace", string(good) + `}`},
		{"bad auth", strings.Replace(string(good), `{"targetModelId"`, `"x"`, 1)},
		{"secret in bad", `{"kind":"model","sourceId":"SECRET-ACCESS-TOKEN"`},
		{"check with auth", strings.Replace(string(good), `"attempt":1`, `"attempt":1,"check":2`, 1)},
		{"negative check", `{"kind":"model","sourceId":"a","target":"w","targetId":"a","attempt":1,"check":-1}`},
		{"copy without auth", `{"kind":"model","sourceId":"a","target":"w","targetId":"a","attempt":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := replication.DecodeMessage([]byte(tt.body))
			var pe *replication.PoisonError
			if !errors.As(err, &pe) {
				t.Fatalf("%v, want a PoisonError", err)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("the error echoes the body: %v", err)
			}
		})
	}
}

func TestCheckMessage(t *testing.T) {
	check := &replication.CopyMessage{Kind: replication.KindModel, SourceID: "invoice-v1", Target: "westus2", TargetID: "invoice-v1", Attempt: 1, Check: 3}
	body, err := json.Marshal(check)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(body), "authorization") {
		t.Errorf("a check message body names an authorization: %s", body)
	}
	m, err := replication.DecodeMessage(body)
	if err != nil || m.Check != 3 || m.Attempt != 1 {
		t.Fatalf("DecodeMessage = %+v, %v", m, err)
	}
	if id := m.MessageID(); id != "model:invoice-v1:westus2:1:check3" {
		t.Errorf("MessageID %q", id)
	}
	if id := sampleMessage().MessageID(); id != "model:invoice-v1:westus2:1" {
		t.Errorf("copy MessageID %q", id)
	}
	if s := sampleMessage().String(); strings.Contains(s, "SECRET") {
		t.Errorf("String prints the authorization: %s", s)
	}
}

func TestOutcomeOf(t *testing.T) {
	poison := &replication.PoisonError{Reason: "missing or invalid fields: kind"}
	tests := []struct {
		name   string
		err    error
		settle replication.Settle
		reason string
		desc   string
	}{
		{"handled", nil, replication.SettleComplete, "", ""},
		{"poison", poison, replication.SettleDeadLetter, replication.DeadLetterPoison, poison.Reason},
		{"wrapped poison", errors.Join(errors.New("decoding"), poison), replication.SettleDeadLetter, replication.DeadLetterPoison, poison.Reason},
		{"transient", errors.New("table unreachable"), replication.SettleRetry, "", "table unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := replication.OutcomeOf(tt.err)
			if o.Settle != tt.settle || o.Reason != tt.reason || o.Description() != tt.desc {
				t.Errorf("OutcomeOf(%v) = %v %q %q", tt.err, o.Settle, o.Reason, o.Description())
			}
		})
	}
}
