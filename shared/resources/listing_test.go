package resources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/internal/fakeclock"
	"github.com/dimirror/dimirror/shared/docintel"
	"github.com/dimirror/dimirror/shared/reconcile"
	"github.com/dimirror/dimirror/shared/replication"
)

const devKey = "devkey"

// startDI starts didev with one resource and two items per page. Unless the test is about rate
// limits, didev runs on a fake clock without them (its budget refills with its clock).
func startDI(t *testing.T, o didev.Options, rateLimited bool) (*didev.Server, *fakeclock.Clock) {
	t.Helper()
	clock := fakeclock.New(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC))
	o.Resources = []didev.ResourceOptions{{Name: "source", Addr: "127.0.0.1:0"}}
	o.Key = devKey
	if !rateLimited {
		o.Clock = clock.Now
		o.Rate = didev.RateOptions{Off: true}
	}
	if o.PageSize == 0 {
		o.PageSize = 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := didev.Start(ctx, o)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(); cancel() })
	return srv, clock
}

func listingFor(t *testing.T, srv *didev.Server, v docintel.APIVersion, o docintel.Options) *Listing {
	t.Helper()
	o.APIVersion, o.Key = v, devKey
	c, err := docintel.New(srv.Endpoint("source"), o)
	if err != nil {
		t.Fatal(err)
	}
	return NewListing(c)
}

// post sends a raw management request (builds and composes are not the client's business).
func post(t *testing.T, srv *didev.Server, path, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.Endpoint("source")+"/documentintelligence"+path+"?api-version=2024-11-30", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Ocp-Apim-Subscription-Key", devKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
	}
}

const blob = `{"containerUrl":"https://acct.blob.core.windows.net/train"}`

func build(t *testing.T, srv *didev.Server, id string) {
	post(t, srv, "/documentModels:build", fmt.Sprintf(`{"modelId":%q,"buildMode":"template","azureBlobSource":%s}`, id, blob))
}

func collect[T any](t *testing.T, seq func(func(T, error) bool)) ([]T, error) {
	t.Helper()
	var out []T
	for v, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

func TestListingItemsPageThroughCustomOnes(t *testing.T) {
	srv, _ := startDI(t, didev.Options{Seeds: []didev.Seed{
		{Resource: "source", Kind: didev.KindModel, ID: "m3", Tags: map[string]string{replication.TagSource: "src/model/m3"}},
		{Resource: "source", Kind: didev.KindModel, ID: "m1"},
		{Resource: "source", Kind: didev.KindModel, ID: "m2"},
		{Resource: "source", Kind: didev.KindClassifier, ID: "c1"},
		{Resource: "source", Kind: didev.KindClassifier, ID: "c2"},
		{Resource: "source", Kind: didev.KindClassifier, ID: "c3"},
	}}, false)
	l := listingFor(t, srv, docintel.V2024_11_30, docintel.Options{})
	ctx := context.Background()
	models, err := collect(t, l.Items(ctx, replication.KindModel))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range models {
		ids = append(ids, m.ID)
		if m.Kind != replication.KindModel || m.Created.IsZero() || !m.Expires.Equal(m.Created.Add(730*24*time.Hour)) {
			t.Errorf("item %+v", m)
		}
	}
	if !slices.Equal(ids, []string{"m1", "m2", "m3"}) {
		t.Errorf("models %v, want the custom ones only (prebuilt models come first and are skipped)", ids)
	}
	if models[2].Tags[replication.TagSource] != "src/model/m3" {
		t.Errorf("tags %v", models[2].Tags)
	}
	classifiers, err := collect(t, l.Items(ctx, replication.KindClassifier))
	if err != nil || len(classifiers) != 3 || classifiers[0].Kind != replication.KindClassifier {
		t.Fatalf("classifiers %+v %v", classifiers, err)
	}
	if n := srv.Stats().Resources["source"].Categories["list"].Requests; n < 3 {
		t.Errorf("%d list requests: the classifiers alone take two pages", n)
	}
	// Stopping early stops paging.
	for range l.Items(ctx, replication.KindModel) {
		break
	}
}

func TestListingOperationsAndOneOperation(t *testing.T) {
	srv, clock := startDI(t, didev.Options{BuildDuration: 4 * time.Second}, false)
	l := listingFor(t, srv, docintel.V2024_11_30, docintel.Options{})
	ctx := context.Background()
	build(t, srv, "first")
	clock.Advance(5 * time.Second)
	build(t, srv, "second")
	clock.Advance(time.Second)
	ops, err := collect(t, l.Operations(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 2 {
		t.Fatalf("operations %+v", ops)
	}
	// Newest first.
	if ops[0].ItemID != "second" || ops[0].Status != replication.OpNotStarted && ops[0].Status != replication.OpRunning || ops[0].Kind != reconcile.OpModelBuild {
		t.Errorf("newest %+v", ops[0])
	}
	if ops[1].ItemID != "first" || ops[1].Status != replication.OpSucceeded || !ops[1].Created.Before(ops[0].Created) {
		t.Errorf("older %+v", ops[1])
	}
	clock.Advance(5 * time.Second)
	op, err := l.Operation(ctx, ops[0].ID)
	if err != nil || op.Status != replication.OpSucceeded || op.ItemID != "second" {
		t.Errorf("by id: %+v %v", op, err)
	}
	if _, err := l.Operation(ctx, "31442705503_c0ccf482-6413-42df-8ccc-21b02491b69d"); !errors.Is(err, reconcile.ErrNotFound) {
		t.Errorf("unknown operation: %v", err)
	}
}

func TestListingDependenciesOfAComposedModel(t *testing.T) {
	srv, clock := startDI(t, didev.Options{BuildDuration: time.Second, Seeds: []didev.Seed{
		{Resource: "source", Kind: didev.KindModel, ID: "part-a"},
		{Resource: "source", Kind: didev.KindModel, ID: "part-b"},
		{Resource: "source", Kind: didev.KindClassifier, ID: "splitter"},
	}}, false)
	post(t, srv, "/documentModels:compose", `{"modelId":"bundle","classifierId":"splitter","docTypes":{"a":{"modelId":"part-a"},"b":{"modelId":"part-b"}}}`)
	clock.Advance(2 * time.Second)
	l := listingFor(t, srv, docintel.V2024_11_30, docintel.Options{})
	ctx := context.Background()
	deps, err := l.Dependencies(ctx, "bundle")
	want := []reconcile.Dependency{{Kind: replication.KindModel, ID: "part-a"}, {Kind: replication.KindModel, ID: "part-b"}, {Kind: replication.KindClassifier, ID: "splitter"}}
	if err != nil || !slices.Equal(deps, want) {
		t.Errorf("dependencies %v %v, want %v", deps, err, want)
	}
	if deps, err := l.Dependencies(ctx, "part-a"); err != nil || len(deps) != 0 {
		t.Errorf("a built model's dependencies: %v %v", deps, err)
	}
	if _, err := l.Dependencies(ctx, "nope-model"); !errors.Is(err, reconcile.ErrNotFound) {
		t.Errorf("unknown model: %v", err)
	}
}

func TestListingInfoAndUnsupportedVersions(t *testing.T) {
	srv, _ := startDI(t, didev.Options{Seeds: []didev.Seed{{Resource: "source", Kind: didev.KindModel, ID: "m1"}}}, false)
	ctx := context.Background()
	info, err := listingFor(t, srv, docintel.V2024_11_30, docintel.Options{}).Info(ctx)
	if err != nil || info.Count != 1 || info.Limit != 5000 {
		t.Errorf("info %+v %v", info, err)
	}
	old := listingFor(t, srv, docintel.V2022_08_31, docintel.Options{})
	if _, err := collect(t, old.Items(ctx, replication.KindClassifier)); !errors.Is(err, reconcile.ErrUnsupported) {
		t.Errorf("2022-08-31 classifiers: %v", err)
	}
	v21 := listingFor(t, srv, docintel.V2_1, docintel.Options{ResourceID: "/subscriptions/0/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/a", Region: "eastus"})
	if _, err := collect(t, v21.Operations(ctx)); !errors.Is(err, reconcile.ErrUnsupported) {
		t.Errorf("v2.1 operations: %v", err)
	}
	if _, err := v21.Operation(ctx, "x1"); !errors.Is(err, reconcile.ErrUnsupported) {
		t.Errorf("v2.1 operation: %v", err)
	}
}
