package docintel

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// An authorization whose answer carries no usable expiry must not read as already expired (a
// zero ExpiresAt makes the copy starter renew at once and the poller treat the row as due): the
// client assumes the service's documented lifetime, counted from before the request was sent,
// and says so once per client.
func TestAuthorizationWithoutUsableExpiry(t *testing.T) {
	const v3Fields = `"targetResourceId":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/t","targetResourceRegion":"westus2","accessToken":"` + secretToken + `"`
	model := func(exp string) string {
		return `{` + v3Fields + `,"targetModelId":"target1","targetModelLocation":"https://t.example/documentintelligence/documentModels/target1"` + exp + `}`
	}
	classifier := func(exp string) string {
		return `{` + v3Fields + `,"targetClassifierId":"target1","targetClassifierLocation":"https://t.example/documentintelligence/documentClassifiers/target1"` + exp + `}`
	}
	v21 := func(ticks string) string {
		return `{"modelId":"0b3c4d5e-6f70-4182-93a4-b5c6d7e8f901","accessToken":"` + secretToken + `"` + ticks + `}`
	}
	const fixed = "2030-01-01T00:00:00Z"
	tests := []struct {
		name    string
		version APIVersion
		kind    Kind
		body    string
		status  int
		want    string        // a usable expiry the answer carried; "" = assumed
		assumed time.Duration // the lifetime assumed when want is ""
	}{
		{"usable expiry kept", V2024_11_30, KindModel, model(`,"expirationDateTime":"` + fixed + `"`), 200, fixed, 0},
		{"missing", V2024_11_30, KindModel, model(``), 200, "", time.Hour},
		{"null", V2024_11_30, KindModel, model(`,"expirationDateTime":null`), 200, "", time.Hour},
		{"empty string", V2024_11_30, KindModel, model(`,"expirationDateTime":""`), 200, "", time.Hour},
		{"unparsable", V2024_11_30, KindModel, model(`,"expirationDateTime":"in an hour"`), 200, "", time.Hour},
		{"number", V2024_11_30, KindModel, model(`,"expirationDateTime":1767225600`), 200, "", time.Hour},
		{"zero time", V2024_11_30, KindModel, model(`,"expirationDateTime":"0001-01-01T00:00:00Z"`), 200, "", time.Hour},
		{"2023-07-31 missing", V2023_07_31, KindModel, model(``), 200, "", time.Hour},
		{"2022-08-31 unparsable", V2022_08_31, KindModel, model(`,"expirationDateTime":"tomorrow"`), 200, "", time.Hour},
		{"classifier missing", V2024_11_30, KindClassifier, classifier(``), 200, "", time.Hour},
		{"v2.1 usable ticks kept", V2_1, KindModel, v21(`,"expirationDateTimeTicks":1893456000`), 201, fixed, 0},
		{"v2.1 missing ticks", V2_1, KindModel, v21(``), 201, "", 24 * time.Hour},
		{"v2.1 zero ticks", V2_1, KindModel, v21(`,"expirationDateTimeTicks":0`), 201, "", 24 * time.Hour},
		{"v2.1 negative ticks", V2_1, KindModel, v21(`,"expirationDateTimeTicks":-5`), 201, "", 24 * time.Hour},
		{"v2.1 ticks as text", V2_1, KindModel, v21(`,"expirationDateTimeTicks":"soon"`), 201, "", 24 * time.Hour},
		{"v2.1 ticks as numeric text", V2_1, KindModel, v21(`,"expirationDateTimeTicks":"1893456000"`), 201, fixed, 0},
		{"v2.1 ticks as a fraction", V2_1, KindModel, v21(`,"expirationDateTimeTicks":1.5`), 201, "", 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScriptedServer(t, answer(tt.status, tt.body))
			var logs bytes.Buffer
			c, err := New(s.srv.URL, Options{
				APIVersion: tt.version, Key: secretKey, Retry: fastRetry,
				ResourceID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/t", Region: "westus2",
				Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			if err != nil {
				t.Fatal(err)
			}
			// Twice: the warning is written for the first authorization only.
			for i := range 2 {
				before := time.Now()
				a, err := c.AuthorizeCopy(context.Background(), tt.kind, AuthorizeRequest{TargetID: "target1"})
				if err != nil {
					t.Fatalf("authorization %d: %v", i, err)
				}
				after := time.Now()
				if tt.want != "" {
					checkTime(t, "ExpiresAt", a.ExpiresAt, tt.want)
					check(t, "ExpiryAssumed", a.ExpiryAssumed, false)
					continue
				}
				check(t, "ExpiryAssumed", a.ExpiryAssumed, true)
				// Counted from before the request left: never later than the service's own expiry.
				if a.ExpiresAt.Before(before.Add(tt.assumed).Truncate(time.Second)) || a.ExpiresAt.After(after.Add(tt.assumed)) {
					t.Errorf("ExpiresAt = %s, want the request time + %s (between %s and %s)", a.ExpiresAt, tt.assumed, before.Add(tt.assumed), after.Add(tt.assumed))
				}
				if a.ExpiresAt.Location() != time.UTC {
					t.Errorf("ExpiresAt is in %s, want UTC", a.ExpiresAt.Location())
				}
			}

			out := logs.String()
			if strings.Contains(out, secretToken) || strings.Contains(out, secretKey) {
				t.Fatalf("a secret reached the log:\n%s", out)
			}
			var warnings []map[string]any
			for line := range strings.Lines(out) {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("log line is not JSON: %v: %s", err, line)
				}
				if rec["level"] == "WARN" {
					warnings = append(warnings, rec)
				}
			}
			if tt.want != "" {
				if len(warnings) != 0 {
					t.Errorf("usable expiry logged a warning: %v", warnings)
				}
				return
			}
			if len(warnings) != 1 {
				t.Fatalf("%d warnings, want exactly one for two authorizations:\n%s", len(warnings), out)
			}
			w := warnings[0]
			check(t, "warning endpoint", w["endpoint"], any(s.srv.URL))
			check(t, "warning apiVersion", w["apiVersion"], any(string(tt.version)))
			check(t, "warning assumedLifetime", w["assumedLifetime"], any(tt.assumed.String()))
		})
	}
}

func TestAuthorizationLifetime(t *testing.T) {
	tests := []struct {
		v    APIVersion
		want time.Duration
	}{
		{V2024_11_30, time.Hour},
		{V2023_07_31, time.Hour},
		{V2022_08_31, time.Hour},
		{V2_1, 24 * time.Hour},
		{"", time.Hour},
	}
	for _, tt := range tests {
		check(t, "AuthorizationLifetime("+string(tt.v)+")", AuthorizationLifetime(tt.v), tt.want)
	}
}
