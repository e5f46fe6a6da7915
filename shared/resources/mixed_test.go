package resources

import (
	"context"
	"testing"
	"time"

	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/internal/fakeclock"
	"github.com/dimirror/dimirror/shared/docintel"
	"github.com/dimirror/dimirror/shared/replication"
)

// A source and a target may speak different v3/v4 api-versions (a 2024-11-30 source with a
// 2022-08-31 target, say): the authorization's wire format is the same in every version, and the
// pipeline must find, follow and verify such a copy like any other. The copy operation names the
// target model under the copy's (the source's) api path, /documentintelligence/..., while the
// target's own client addresses it under /formrecognizer/..., so finding a copy again in the
// operation list must not depend on the version's path.
func TestCopyAcrossAPIVersions(t *testing.T) {
	tests := []struct {
		source, target docintel.APIVersion
	}{
		{docintel.V2024_11_30, docintel.V2024_11_30},
		{docintel.V2024_11_30, docintel.V2022_08_31},
		{docintel.V2024_11_30, docintel.V2023_07_31},
		{docintel.V2022_08_31, docintel.V2024_11_30},
		{docintel.V2023_07_31, docintel.V2022_08_31},
	}
	for _, tt := range tests {
		t.Run(string(tt.source)+" to "+string(tt.target), func(t *testing.T) {
			clock := fakeclock.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			srv, err := didev.Start(ctx, didev.Options{
				Resources: []didev.ResourceOptions{{Name: "source", Addr: "127.0.0.1:0"}, {Name: "target", Addr: "127.0.0.1:0"}},
				Key:       devKey,
				Clock:     clock.Now,
				Rate:      didev.RateOptions{Off: true},
				Seeds:     []didev.Seed{{Resource: "source", Kind: didev.KindModel, ID: "m1", APIVersion: string(tt.source)}},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.Close() })
			resource := func(name string, v docintel.APIVersion) *Resource {
				c, err := docintel.New(srv.Endpoint(name), docintel.Options{APIVersion: v, Key: devKey, CallTimeout: 10 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				return New(c)
			}
			source, target := resource("source", tt.source), resource("target", tt.target)

			src, err := source.GetModel(ctx, replication.KindModel, "m1")
			if err != nil {
				t.Fatal(err)
			}
			tags := replication.CopyTags("source", replication.KindModel, "m1", src.Created)
			auth, err := target.AuthorizeCopy(ctx, replication.KindModel, "m1-copy", tags)
			if err != nil {
				t.Fatal(err)
			}
			if auth.ExpiresAt.IsZero() {
				t.Fatal("authorization without expiry")
			}
			opURL, err := source.CopyTo(ctx, replication.KindModel, "m1", auth.Body)
			if err != nil {
				t.Fatalf("copyTo on a %s source with a %s authorization: %v", tt.source, tt.target, err)
			}

			// A copy starter that lost copyTo's answer looks for the copy by the target's location.
			loc := target.Location(replication.KindModel, "m1-copy")
			finds, err := source.FindCopyOperations(ctx, replication.KindModel, time.Time{}, loc)
			found, ok := finds[loc]
			if err != nil || !ok {
				t.Fatalf("the running copy was not found in the source's operations (found %v, %v)", ok, err)
			}
			if found.URL != opURL && found.TargetID != "m1-copy" {
				t.Errorf("found %+v, want the copy started at %s", found, opURL)
			}

			clock.Advance(didev.DefaultCopyDuration + time.Second)
			op, err := source.GetOperation(ctx, opURL)
			if err != nil {
				t.Fatal(err)
			}
			if op.Status != replication.OpSucceeded || op.TargetID != "m1-copy" {
				t.Fatalf("operation %+v, want succeeded into m1-copy", op)
			}
			if finds, err := source.FindCopyOperations(ctx, replication.KindModel, time.Time{}, loc); err != nil || len(finds) != 1 {
				t.Errorf("the finished copy was not found (found %v, %v)", finds, err)
			}

			// The poller verifies the copy in the target, through the target's own api-version.
			m, err := target.GetModel(ctx, replication.KindModel, "m1-copy")
			if err != nil {
				t.Fatalf("the copy is not readable through the %s target: %v", tt.target, err)
			}
			if !replication.HoldsVersion(m, src.Created, src.Expires) {
				t.Errorf("target model %+v is not recognised as this source version (created %s)", m, src.Created)
			}
			if !replication.MadeBy(m, replication.KindModel, replication.SourceTag("source", replication.KindModel, "m1"), time.Time{}) {
				t.Errorf("target model %+v is not recognised as dimirror's copy", m)
			}
		})
	}
}
