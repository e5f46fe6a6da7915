package resources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dimirror/dimirror/shared/docintel"
	"github.com/dimirror/dimirror/shared/replication"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want replication.ErrorClass
		code string
	}{
		{"throttled", &docintel.Error{StatusCode: 429, Code: "429", RetryAfter: time.Second}, replication.ClassTransient, "429"},
		{"server error", &docintel.Error{StatusCode: 503, Code: "ServiceUnavailable"}, replication.ClassTransient, "ServiceUnavailable"},
		{"exists", &docintel.Error{StatusCode: 409, Code: "Conflict", InnerCode: "ModelExists"}, replication.ClassExists, "ModelExists"},
		{"expired", &docintel.Error{StatusCode: 400, Code: "InvalidRequest", InnerCode: "AuthorizationExpired"}, replication.ClassAuthorization, "AuthorizationExpired"},
		{"not ready", &docintel.Error{StatusCode: 400, Code: "InvalidRequest", InnerCode: "ModelNotReady"}, replication.ClassNotReady, "ModelNotReady"},
		{"quota", &docintel.Error{StatusCode: 400, Code: "InvalidRequest", InnerCode: "DocumentModelLimit"}, replication.ClassQuota, "DocumentModelLimit"},
		{"not found", &docintel.Error{StatusCode: 404, Code: "NotFound", InnerCode: "ModelNotFound"}, replication.ClassNotFound, "ModelNotFound"},
		{"downgrade", &docintel.Error{StatusCode: 400, Code: "InvalidRequest", InnerCode: "DataProtectionTransformServiceError"}, replication.ClassPermanent, "DataProtectionTransformServiceError"},
		{"unauthorized", &docintel.Error{StatusCode: 401, Code: "401"}, replication.ClassPermanent, "401"},
		{"bad input", fmt.Errorf("%w: id", docintel.ErrInvalidArgument), replication.ClassPermanent, "InvalidRequest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var se *replication.ServiceError
			if !errors.As(Classify(tt.err), &se) {
				t.Fatalf("Classify(%v) is not a ServiceError", tt.err)
			}
			if se.Class != tt.want || se.Code != tt.code {
				t.Errorf("class %s code %q, want %s %q", se.Class, se.Code, tt.want, tt.code)
			}
		})
	}
	plain := context.DeadlineExceeded
	if got := Classify(plain); !errors.Is(got, context.DeadlineExceeded) {
		t.Errorf("a non-service error must pass through (the domain treats it as transient), got %v", got)
	}
}

func TestClassifyOperation(t *testing.T) {
	tests := []struct {
		name string
		err  *docintel.Error
		want replication.ErrorClass
	}{
		{"reused authorization", &docintel.Error{Code: "InvalidRequest", InnerCode: "AuthorizationMetadataNotFound"}, replication.ClassAuthorization},
		{"altered authorization", &docintel.Error{Code: "Forbidden", InnerCode: "AuthorizationFailed"}, replication.ClassAuthorization},
		{"v2.1 2024", &docintel.Error{Code: "2024", Message: "Could not retrieve authorization metadata."}, replication.ClassAuthorization},
		{"internal", &docintel.Error{Code: "InternalServerError"}, replication.ClassRetryable},
		{"v2.1 timeout", &docintel.Error{Code: "3013"}, replication.ClassRetryable},
		{"downgrade", &docintel.Error{Code: "InvalidRequest", InnerCode: "DataProtectionTransformServiceError"}, replication.ClassPermanent},
	}
	for _, tt := range tests {
		if got := classifyOperation(tt.err).Class; got != tt.want {
			t.Errorf("%s: class %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestSameLocation(t *testing.T) {
	const a = "https://T.example/documentintelligence/documentModels/m1?api-version=2024-11-30"
	tests := []struct {
		name string
		a, b string
		want bool
	}{
		{"another api-version, host case", a, "https://t.example/documentintelligence/documentModels/m1?api-version=2024-07-31-preview", true},
		{"2022-08-31 target path", a, "https://t.example/formrecognizer/documentModels/m1?api-version=2022-08-31", true},
		{"trailing slash", a, "https://t.example/formrecognizer/documentModels/m1/", true},
		{"endpoint path kept", "https://t.example/di/documentintelligence/documentModels/m1", "https://t.example/di/formrecognizer/documentModels/m1", true},
		{"classifier", "https://t.example/documentintelligence/documentClassifiers/c1", "https://t.example/documentintelligence/documentClassifiers/c1?api-version=2024-11-30", true},
		{"another model", a, "https://t.example/documentintelligence/documentModels/m2", false},
		{"another host", a, "https://u.example/documentintelligence/documentModels/m1", false},
		{"another endpoint path", "https://t.example/di/documentintelligence/documentModels/m1", "https://t.example/other/documentintelligence/documentModels/m1", false},
		{"endpoint path against none", "https://t.example/di/documentintelligence/documentModels/m1", a, false},
		{"model against classifier", a, "https://t.example/documentintelligence/documentClassifiers/m1", false},
		{"empty", a, "", false},
		{"relative", "/documentintelligence/documentModels/m1", "/documentintelligence/documentModels/m1", false},
		{"no collection", "https://t.example/m1", "https://t.example/m1", false},
		{"not a URL", "https://t.example/%zz/documentModels/m1", "https://t.example/%zz/documentModels/m1", false},
	}
	for _, tt := range tests {
		if got := sameLocation(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: sameLocation(%q, %q) = %t, want %t", tt.name, tt.a, tt.b, got, tt.want)
		}
		if got := sameLocation(tt.b, tt.a); got != tt.want {
			t.Errorf("%s: sameLocation is not symmetric", tt.name)
		}
	}
}

// The domain schedules renewals and the poller's safety net by the authorization's expiry: an
// answer without a usable one must reach it as the documented lifetime, not as the zero time
// (which reads as long expired).
func TestAuthorizeCopyWithoutUsableExpiry(t *testing.T) {
	const v3 = `{"targetResourceId":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/t","targetResourceRegion":"westus2","targetModelId":"m1","targetModelLocation":"https://t.example/formrecognizer/documentModels/m1","accessToken":"tok-0123456789"`
	tests := []struct {
		name     string
		version  docintel.APIVersion
		status   int
		body     string
		lifetime time.Duration
	}{
		{"2024-11-30 missing", docintel.V2024_11_30, 200, v3 + `}`, time.Hour},
		{"2022-08-31 unparsable", docintel.V2022_08_31, 200, v3 + `,"expirationDateTime":"later"}`, time.Hour},
		{"v2.1 unparsable ticks", docintel.V2_1, 201, `{"modelId":"0b3c4d5e-6f70-4182-93a4-b5c6d7e8f901","accessToken":"tok-0123456789","expirationDateTimeTicks":"later"}`, 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			c, err := docintel.New(srv.URL, docintel.Options{APIVersion: tt.version, Key: devKey,
				ResourceID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/t", Region: "westus2",
				Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			before := time.Now()
			a, err := New(c).AuthorizeCopy(context.Background(), replication.KindModel, "m1", nil)
			if err != nil {
				t.Fatal(err)
			}
			if a.ExpiresAt.Before(before.Add(tt.lifetime).Truncate(time.Second)) || a.ExpiresAt.After(time.Now().Add(tt.lifetime)) {
				t.Errorf("ExpiresAt = %v, want about now + %s", a.ExpiresAt, tt.lifetime)
			}
		})
	}
}

// sameLocation reports whether two model or classifier URLs name the same item: the same itemKey,
// which is how FindCopyOperations matches an operation to a target.
func sameLocation(a, b string) bool {
	ka, ok1 := itemKey(a)
	kb, ok2 := itemKey(b)
	return ok1 && ok2 && ka == kb
}
