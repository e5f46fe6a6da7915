package resources

import (
	"context"
	"errors"
	"fmt"
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
	a := "https://T.example/documentintelligence/documentModels/m1?api-version=2024-11-30"
	if !sameLocation(a, "https://t.example/documentintelligence/documentModels/m1?api-version=2024-07-31-preview") {
		t.Error("same model under another api-version and host case must match")
	}
	if sameLocation(a, "https://t.example/documentintelligence/documentModels/m2") || sameLocation(a, "") {
		t.Error("different model matched")
	}
}
