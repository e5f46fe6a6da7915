package didev_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/shared/docintel"
)

// These tests drive didev with the project's own client (shared/docintel), as the pipeline will.

const clientKey = "client-test-key"

// fakeCredential is an azcore.TokenCredential for the bearer code paths.
type fakeCredential struct{ calls atomic.Int32 }

func (f *fakeCredential) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	f.calls.Add(1)
	if len(o.Scopes) != 1 || o.Scopes[0] != docintel.Scope {
		return azcore.AccessToken{}, fmt.Errorf("unexpected scopes %v", o.Scopes)
	}
	return azcore.AccessToken{Token: "fake-entra-token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

type env struct {
	srv  *didev.Server
	cred *fakeCredential
}

func newEnv(t *testing.T, mutate func(*didev.Options)) *env {
	t.Helper()
	o := didev.Options{
		Resources: []didev.ResourceOptions{
			{Name: "source", Addr: "127.0.0.1:0"},
			{Name: "target", Addr: "127.0.0.1:0", Region: "westus2"},
		},
		Key:           clientKey,
		AcceptBearer:  true,
		CopyDuration:  40 * time.Millisecond,
		BuildDuration: 40 * time.Millisecond,
		Rate:          didev.RateOptions{Off: true},
	}
	if mutate != nil {
		mutate(&o)
	}
	srv, err := didev.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &env{srv: srv, cred: &fakeCredential{}}
}

// client of a resource; v2.1 targets get the ResourceID and Region the copy body needs.
func (e *env) client(t *testing.T, resource string, v docintel.APIVersion, bearer bool, tweak func(*docintel.Options)) *docintel.Client {
	t.Helper()
	r := e.srv.Resource(resource)
	o := docintel.Options{APIVersion: v, ResourceID: r.ResourceID(), Region: r.Region(), CallTimeout: 10 * time.Second}
	if bearer {
		o.Credential = e.cred
	} else {
		o.Key = clientKey
	}
	if tweak != nil {
		tweak(&o)
	}
	c, err := docintel.New(r.Endpoint(), o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wait polls an operation until it is terminal.
func wait(t *testing.T, c *docintel.Client, loc string) *docintel.Operation {
	t.Helper()
	ctx := t.Context()
	deadline := time.Now().Add(10 * time.Second)
	for {
		op, err := c.GetOperation(ctx, loc)
		if err != nil {
			t.Fatalf("GetOperation: %v", err)
		}
		if op.Status.Terminal() {
			return op
		}
		if time.Now().After(deadline) {
			t.Fatalf("operation still %s", op.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestClientCopyEveryVersion(t *testing.T) {
	const v21Source = "5b1c8f4e-2a7d-4c3e-9f10-6d2e8a4b7c01"
	cases := []struct {
		version docintel.APIVersion
		kind    docintel.Kind
	}{
		{docintel.V2024_11_30, docintel.KindModel},
		{docintel.V2024_11_30, docintel.KindClassifier},
		{docintel.V2023_07_31, docintel.KindModel},
		{docintel.V2022_08_31, docintel.KindModel},
		{docintel.V2_1, docintel.KindModel},
	}
	for _, tc := range cases {
		for _, bearer := range []bool{false, true} {
			name := fmt.Sprintf("%s/%s/key", tc.version, tc.kind)
			if bearer {
				name = fmt.Sprintf("%s/%s/bearer", tc.version, tc.kind)
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, nil)
				ctx := t.Context()
				src := e.client(t, "source", tc.version, bearer, nil)
				tgt := e.client(t, "target", tc.version, bearer, nil)
				sourceID := "invoice-v1"
				seed := didev.Seed{Kind: didev.KindModel, ID: sourceID, Description: "source"}
				switch {
				case tc.version == docintel.V2_1:
					sourceID = v21Source
					seed = didev.Seed{Kind: didev.KindModelV21, ID: sourceID}
				case tc.kind == docintel.KindClassifier:
					sourceID = "router-v1"
					seed = didev.Seed{Kind: didev.KindClassifier, ID: sourceID}
				}
				if err := e.srv.Resource("source").Seed(seed); err != nil {
					t.Fatal(err)
				}
				auth, err := tgt.AuthorizeCopy(ctx, tc.kind, docintel.AuthorizeRequest{
					TargetID: "copy-" + sourceID[:6], Description: "mirrored", Tags: map[string]string{"origin": "source"},
				})
				if err != nil {
					t.Fatalf("AuthorizeCopy: %v", err)
				}
				if auth.TargetResourceID != e.srv.Resource("target").ResourceID() || auth.TargetRegion != "westus2" {
					t.Errorf("authorization names %s in %s", auth.TargetResourceID, auth.TargetRegion)
				}
				wantTTL := time.Hour
				if tc.version == docintel.V2_1 {
					wantTTL = 24 * time.Hour
				}
				if d := time.Until(auth.ExpiresAt) - wantTTL; d > 5*time.Second || d < -5*time.Second {
					t.Errorf("authorization expires in %s, want %s", time.Until(auth.ExpiresAt), wantTTL)
				}
				loc, err := src.CopyTo(ctx, tc.kind, sourceID, auth)
				if err != nil {
					t.Fatalf("CopyTo: %v", err)
				}
				op := wait(t, src, loc)
				if !op.Status.Succeeded() || op.Error != nil {
					t.Fatalf("copy %s: %v", op.Status, op.Error)
				}
				if op.TargetID != auth.TargetID {
					t.Errorf("operation target %q, want %q", op.TargetID, auth.TargetID)
				}
				m, err := tgt.GetModel(ctx, tc.kind, auth.TargetID)
				if err != nil {
					t.Fatalf("GetModel on the target: %v", err)
				}
				if m.ID != auth.TargetID || m.Status != "ready" {
					t.Errorf("target model %+v", m)
				}
				if tc.version != docintel.V2_1 && tc.kind == docintel.KindModel && (m.Description != "mirrored" || m.Tags["origin"] != "source") {
					t.Errorf("copied model keeps the authorization's description and tags: %+v", m)
				}
				n := 0
				for item, err := range tgt.Models(ctx, tc.kind) {
					if err != nil {
						t.Fatalf("Models: %v", err)
					}
					if item.ID == auth.TargetID {
						n++
					}
				}
				if n != 1 {
					t.Errorf("the copy is listed %d times", n)
				}
				if tc.kind == docintel.KindModel {
					info, err := tgt.Info(ctx)
					if err != nil || info.CustomModelCount != 1 || info.CustomModelLimit != didev.DefaultMaxModels {
						t.Errorf("Info %+v, %v", info, err)
					}
				}
				if err := tgt.DeleteModel(ctx, tc.kind, auth.TargetID); err != nil {
					t.Fatalf("DeleteModel: %v", err)
				}
				if _, err := tgt.GetModel(ctx, tc.kind, auth.TargetID); !docintel.IsModelNotFound(err) {
					t.Errorf("after delete: %v", err)
				}
				if bearer && e.cred.calls.Load() == 0 {
					t.Error("the token credential was never asked")
				}
				st := e.srv.Stats()
				if len(st.Authorizations) != 1 || st.Authorizations[0].CopyToAccepted != 1 {
					t.Errorf("authorizations %+v", st.Authorizations)
				}
			})
		}
	}
}

func TestClientFailureCases(t *testing.T) {
	ctx := t.Context()
	type check func(t *testing.T, e *env)
	tests := []struct {
		name   string
		mutate func(*didev.Options)
		run    check
	}{
		{"expired authorization", func(o *didev.Options) { o.AuthTTL = 30 * time.Millisecond }, func(t *testing.T, e *env) {
			auth := mustAuthorize(t, e, docintel.V2024_11_30, "t1")
			time.Sleep(60 * time.Millisecond)
			_, err := e.client(t, "source", docintel.V2024_11_30, false, nil).CopyTo(ctx, docintel.KindModel, "src1", auth)
			if !docintel.IsAuthorizationInvalid(err) || !docintel.IsBadRequest(err) {
				t.Errorf("CopyTo with an expired authorization: %v", err)
			}
		}},
		{"expired v2.1 authorization", func(o *didev.Options) { o.AuthTTL = 1 * time.Second }, func(t *testing.T, e *env) {
			tgt := e.client(t, "target", docintel.V2_1, false, nil)
			auth, err := tgt.AuthorizeCopy(ctx, docintel.KindModel, docintel.AuthorizeRequest{})
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Until(auth.ExpiresAt) + 50*time.Millisecond)
			_, err = e.client(t, "source", docintel.V2_1, false, nil).CopyTo(ctx, docintel.KindModel, v21Src, auth)
			var de *docintel.Error
			if !docintel.IsAuthorizationInvalid(err) || !errors.As(err, &de) || de.Code != "1002" {
				t.Errorf("v2.1 CopyTo with expired ticks: %v", err)
			}
		}},
		{"reused authorization", nil, func(t *testing.T, e *env) {
			src := e.client(t, "source", docintel.V2024_11_30, false, nil)
			auth := mustAuthorize(t, e, docintel.V2024_11_30, "t1")
			for i, wantOK := range []bool{true, false} {
				loc, err := src.CopyTo(ctx, docintel.KindModel, "src1", auth)
				if err != nil {
					t.Fatal(err)
				}
				op := wait(t, src, loc)
				if op.Status.Succeeded() != wantOK {
					t.Fatalf("copy %d: %s %v", i, op.Status, op.Error)
				}
				if !wantOK && !docintel.IsAuthorizationInvalid(op.Error) {
					t.Errorf("reuse error %v", op.Error)
				}
			}
		}},
		{"reused v2.1 authorization", nil, func(t *testing.T, e *env) {
			src := e.client(t, "source", docintel.V2_1, false, nil)
			auth, err := e.client(t, "target", docintel.V2_1, false, nil).AuthorizeCopy(ctx, docintel.KindModel, docintel.AuthorizeRequest{})
			if err != nil {
				t.Fatal(err)
			}
			var last *docintel.Operation
			for range 2 {
				loc, err := src.CopyTo(ctx, docintel.KindModel, v21Src, auth)
				if err != nil {
					t.Fatal(err)
				}
				last = wait(t, src, loc)
			}
			if last.Status != docintel.StatusFailed || !docintel.IsAuthorizationInvalid(last.Error) || last.Error.Code != "2024" {
				t.Errorf("v2.1 reuse: %s %v", last.Status, last.Error)
			}
		}},
		{"altered authorization", nil, func(t *testing.T, e *env) {
			auth := mustAuthorize(t, e, docintel.V2024_11_30, "t1")
			var body map[string]any
			if err := json.Unmarshal(auth.Body, &body); err != nil {
				t.Fatal(err)
			}
			body["accessToken"] = "tampered"
			auth.Body, _ = json.Marshal(body)
			src := e.client(t, "source", docintel.V2024_11_30, false, nil)
			loc, err := src.CopyTo(ctx, docintel.KindModel, "src1", auth)
			if err != nil {
				t.Fatal(err)
			}
			op := wait(t, src, loc)
			if op.Status != docintel.StatusFailed || !docintel.IsAuthorizationInvalid(op.Error) {
				t.Errorf("altered: %s %v", op.Status, op.Error)
			}
		}},
		{"downgrade refused, then allowed with Degrade", func(o *didev.Options) { o.Resources[0].Encrypted = true }, func(t *testing.T, e *env) {
			auth := mustAuthorize(t, e, docintel.V2024_11_30, "t1")
			src := e.client(t, "source", docintel.V2024_11_30, false, nil)
			loc, err := src.CopyTo(ctx, docintel.KindModel, "src1", auth)
			if err != nil {
				t.Fatal(err)
			}
			if op := wait(t, src, loc); !docintel.IsDowngradeRefused(op.Error) {
				t.Fatalf("without Degrade: %s %v", op.Status, op.Error)
			}
			degrade := e.client(t, "source", docintel.V2024_11_30, false, func(o *docintel.Options) { o.Degrade = true })
			loc, err = degrade.CopyTo(ctx, docintel.KindModel, "src1", auth)
			if err != nil {
				t.Fatal(err)
			}
			if op := wait(t, degrade, loc); !op.Status.Succeeded() {
				t.Errorf("with Degrade: %s %v", op.Status, op.Error)
			}
		}},
		{"model not ready", nil, func(t *testing.T, e *env) {
			auth := mustAuthorize(t, e, docintel.V2024_11_30, "t1")
			_, err := e.client(t, "source", docintel.V2024_11_30, false, nil).CopyTo(ctx, docintel.KindModel, "missing", auth)
			if !docintel.IsModelNotReady(err) {
				t.Errorf("CopyTo of a missing source: %v", err)
			}
		}},
		{"quota", func(o *didev.Options) { o.Resources[1].MaxModels = 1 }, func(t *testing.T, e *env) {
			if err := e.srv.Resource("target").Seed(didev.Seed{Kind: didev.KindModel, ID: "only"}); err != nil {
				t.Fatal(err)
			}
			tgt := e.client(t, "target", docintel.V2024_11_30, false, nil)
			_, err := tgt.AuthorizeCopy(ctx, docintel.KindModel, docintel.AuthorizeRequest{TargetID: "t1"})
			if !docintel.IsQuotaExhausted(err) {
				t.Errorf("AuthorizeCopy past the limit: %v", err)
			}
		}},
		{"reservation freed by DELETE", nil, func(t *testing.T, e *env) {
			mustAuthorize(t, e, docintel.V2024_11_30, "t1")
			tgt := e.client(t, "target", docintel.V2024_11_30, false, nil)
			if _, err := tgt.AuthorizeCopy(ctx, docintel.KindModel, docintel.AuthorizeRequest{TargetID: "t1"}); !docintel.IsModelExists(err) {
				t.Fatalf("second AuthorizeCopy: %v", err)
			}
			if err := tgt.DeleteModel(ctx, docintel.KindModel, "t1"); err != nil {
				t.Fatalf("DeleteModel of a reserved id: %v", err)
			}
			if _, err := tgt.AuthorizeCopy(ctx, docintel.KindModel, docintel.AuthorizeRequest{TargetID: "t1"}); err != nil {
				t.Errorf("AuthorizeCopy after DELETE: %v", err)
			}
		}},
		{"rate limited", func(o *didev.Options) { o.Rate = didev.RateOptions{Management: 1, GetOperation: 50, List: 10} }, func(t *testing.T, e *env) {
			noRetry := e.client(t, "target", docintel.V2024_11_30, false, func(o *docintel.Options) { o.Retry.MaxRetries = -1 })
			if _, err := noRetry.AuthorizeCopy(ctx, docintel.KindModel, docintel.AuthorizeRequest{TargetID: "t1"}); err != nil {
				t.Fatal(err)
			}
			_, err := noRetry.AuthorizeCopy(ctx, docintel.KindModel, docintel.AuthorizeRequest{TargetID: "t2"})
			var de *docintel.Error
			if !docintel.IsThrottled(err) || !errors.As(err, &de) || de.RetryAfter != time.Second {
				t.Fatalf("second call in the same second: %v", err)
			}
			// The default client honours Retry-After and gets through.
			retrying := e.client(t, "target", docintel.V2024_11_30, false, nil)
			if _, err := retrying.AuthorizeCopy(ctx, docintel.KindModel, docintel.AuthorizeRequest{TargetID: "t2"}); err != nil {
				t.Errorf("with retries: %v", err)
			}
			if c := e.srv.Stats().Resources["target"].Categories[didev.CategoryManagement]; c.RateLimited < 1 {
				t.Errorf("counters %+v", c)
			}
		}},
		{"operations listed newest first", func(o *didev.Options) { o.Clock = steppingClock() }, func(t *testing.T, e *env) {
			src := e.client(t, "source", docintel.V2024_11_30, false, nil)
			var locs []string
			for _, id := range []string{"t1", "t2", "t3"} {
				loc, err := src.CopyTo(ctx, docintel.KindModel, "src1", mustAuthorize(t, e, docintel.V2024_11_30, id))
				if err != nil {
					t.Fatal(err)
				}
				locs = append(locs, loc)
			}
			var ids []string
			for op, err := range src.Operations(ctx) {
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, op.ID)
			}
			if len(ids) != 3 {
				t.Fatalf("listed %v", ids)
			}
			for i, id := range ids {
				if src.OperationURL(id) != locs[2-i] {
					t.Errorf("position %d: %s, want the newest first", i, id)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.mutate)
			if err := e.srv.Resource("source").Seed(didev.Seed{Kind: didev.KindModel, ID: "src1"}); err != nil {
				t.Fatal(err)
			}
			if err := e.srv.Resource("source").Seed(didev.Seed{Kind: didev.KindModelV21, ID: v21Src}); err != nil {
				t.Fatal(err)
			}
			tt.run(t, e)
		})
	}
}

const v21Src = "0d9c7b6a-5f4e-4d3c-8b2a-19f8e7d6c5b4"

// steppingClock advances a second at every reading, so operations created one after another
// fall in distinct seconds (operation ids order by their creation second).
func steppingClock() func() time.Time {
	var n atomic.Int64
	start := time.Now()
	return func() time.Time { return start.Add(time.Duration(n.Add(1)) * time.Second) }
}

func mustAuthorize(t *testing.T, e *env, v docintel.APIVersion, id string) *docintel.Authorization {
	t.Helper()
	auth, err := e.client(t, "target", v, false, nil).AuthorizeCopy(t.Context(), docintel.KindModel, docintel.AuthorizeRequest{TargetID: id})
	if err != nil {
		t.Fatalf("AuthorizeCopy %s: %v", id, err)
	}
	return auth
}

// TestErrorCodesAgree checks that didev answers with the codes the client recognises.
func TestErrorCodesAgree(t *testing.T) {
	pairs := [][2]string{
		{didev.CodeModelExists, docintel.CodeModelExists},
		{didev.CodeModelNotReady, docintel.CodeModelNotReady},
		{didev.CodeModelNotFound, docintel.CodeModelNotFound},
		{didev.CodeOperationNotFound, docintel.CodeOperationNotFound},
		{didev.CodeDocumentModelLimit, docintel.CodeDocumentModelLimit},
		{didev.CodeDataProtection, docintel.CodeDataProtectionTransform},
		{didev.CodeAuthorizationExpired, docintel.CodeAuthorizationExpired},
		{didev.CodeAuthorizationFailed, docintel.CodeAuthorizationFailed},
		{didev.CodeAuthMetadataNotFound, docintel.CodeAuthorizationMetadataNotFound},
		{didev.CodeV21Invalid, docintel.CodeV21InvalidRequest},
		{didev.CodeV21AuthMetadata, docintel.CodeV21AuthorizationMetadata},
		{didev.CodeV21AuthError, docintel.CodeV21AuthorizationError},
		{didev.CodeParameterMissing, docintel.CodeParameterMissing},
		{didev.CodeInvalidParameter, docintel.CodeInvalidParameter},
	}
	for _, p := range pairs {
		if p[0] != p[1] {
			t.Errorf("didev %q, client %q", p[0], p[1])
		}
	}
}
