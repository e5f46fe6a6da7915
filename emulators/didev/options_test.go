package didev

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseResource(t *testing.T) {
	tests := []struct {
		in      string
		want    ResourceOptions
		wantErr string
	}{
		{"source=127.0.0.1:5101", ResourceOptions{Name: "source", Addr: "127.0.0.1:5101"}, ""},
		{"eu=localhost:0,region=westeurope,encrypted,max-models=20", ResourceOptions{Name: "eu", Addr: "localhost:0", Region: "westeurope", Encrypted: true, MaxModels: 20}, ""},
		{"source", ResourceOptions{}, "want NAME=HOST:PORT"},
		{"=127.0.0.1:1", ResourceOptions{}, "want NAME=HOST:PORT"},
		{"a=127.0.0.1", ResourceOptions{}, "not HOST:PORT"},
		{"a=:5101", ResourceOptions{}, "no host"},
		{"a=127.0.0.1:99999", ResourceOptions{}, "no valid port"},
		{"a=127.0.0.1:1,region=West US", ResourceOptions{}, "lowercase ARM location"},
		{"a=127.0.0.1:1,max-models=0", ResourceOptions{}, "positive integer"},
		{"a=127.0.0.1:1,colour=blue", ResourceOptions{}, "unknown attribute"},
		{"bad name=127.0.0.1:1", ResourceOptions{}, "letters, digits and dashes"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseResource(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), "NAME=HOST:PORT") {
					t.Errorf("error %q does not show the expected form", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseSeedAndRate(t *testing.T) {
	seeds := []struct {
		in      string
		wantErr string
	}{
		{"source:model:invoice-v1", ""},
		{"source:classifier:router-v1", ""},
		{"source:model-v2.1:0f6e1c2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b", ""},
		{"source:model-v2.1:not-a-uuid", "UUID"},
		{"source:widget:x1", "kind"},
		{"source:model", "RESOURCE:KIND:ID"},
		{"source:model:bad id", "must match"},
	}
	for _, tt := range seeds {
		_, err := ParseSeed(tt.in)
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("ParseSeed(%q) = %v, want error %q", tt.in, err, tt.wantErr)
		}
	}
	rates := []struct {
		in      string
		want    RateOptions
		wantErr string
	}{
		{"off", RateOptions{Off: true}, ""},
		{"", RateOptions{}, ""},
		{"management=2,list=3.5", RateOptions{Management: 2, List: 3.5}, ""},
		{"get-operation=0", RateOptions{}, "positive"},
		{"writes=3", RateOptions{}, "unknown category"},
		{"management", RateOptions{}, "want off"},
	}
	for _, tt := range rates {
		got, err := ParseRate(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseRate(%q) = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseRate(%q) = %+v, %v", tt.in, got, err)
		}
	}
}

func TestStartValidation(t *testing.T) {
	valid := func() Options { return testOptions(nil) }
	tests := []struct {
		name    string
		mutate  func(*Options)
		wantErr string
	}{
		{"no resources", func(o *Options) { o.Resources = nil }, "at least one resource"},
		{"no credential", func(o *Options) { o.Key = "" }, "Key or AcceptBearer"},
		{"duplicate name", func(o *Options) { o.Resources[1].Name = "SOURCE" }, "used twice"},
		{"bad seed resource", func(o *Options) { o.Seeds = []Seed{{Resource: "nowhere", Kind: KindModel, ID: "m1"}} }, "unknown resource"},
		{"bad seed kind", func(o *Options) { o.Seeds = []Seed{{Resource: "source", Kind: "x", ID: "m1"}} }, "kind"},
		{"negative duration", func(o *Options) { o.CopyDuration = -time.Second }, "out of range"},
		{"bad page size", func(o *Options) { o.PageSize = -1 }, "PageSize"},
		{"bad faults", func(o *Options) { o.Faults.Reset = 2 }, "from 0 to 1"},
		{"bad resource id", func(o *Options) { o.Resources[0].ResourceID = "/nope" }, "not a Microsoft.CognitiveServices account id"},
		{"address in use", func(o *Options) { o.Resources[1].Addr = "256.0.0.1:1" }, "listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid()
			tt.mutate(&o)
			srv, err := Start(context.Background(), o)
			if err == nil {
				srv.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err %q, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestDefaultsAndRegions(t *testing.T) {
	o := Options{
		Resources: []ResourceOptions{{Name: "source", Addr: "127.0.0.1:0"}, {Name: "westus2", Addr: "127.0.0.1:0"}},
		Key:       testKey,
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if r := srv.Resource("source"); r.Region() != "eastus" || r.MaxModels() != DefaultMaxModels ||
		r.ResourceID() != "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/didev/providers/Microsoft.CognitiveServices/accounts/source" {
		t.Errorf("source defaults: %s %d %s", r.Region(), r.MaxModels(), r.ResourceID())
	}
	if r := srv.Resource("WestUS2"); r == nil || r.Region() != "westus2" {
		t.Errorf("a resource named after a region is in that region: %+v", r)
	}
	if srv.Resource("nowhere") != nil || srv.Endpoint("nowhere") != "" {
		t.Error("unknown resource found")
	}
	if srv.opts.CopyDuration != DefaultCopyDuration || srv.opts.PageSize != DefaultPageSize || srv.opts.Rate.Management != 5 ||
		srv.opts.Rate.GetOperation != 50 || srv.opts.Rate.List != 10 || srv.opts.OpTTL != DefaultOpTTL {
		t.Errorf("defaults %+v", srv.opts)
	}
	if srv.opts.authTTL(lookupVersion("2024-11-30")) != time.Hour || srv.opts.authTTL(lookupVersion("v2.1")) != 24*time.Hour {
		t.Error("authorization lifetimes")
	}
	cancel() // the context ends the server
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := httpClient.Get(srv.Endpoint("source") + "/_didev/stats"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server still up after its context ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if RegionDisplayName("westus2") != "West US 2" || RegionDisplayName("mars1") != "mars1" {
		t.Error("region display names")
	}
}

func TestResourceGoAPI(t *testing.T) {
	clock := newFakeClock()
	o := testOptions(clock)
	srv := startServer(t, o)
	r := srv.Resource("source")
	if err := r.Seed(Seed{Kind: KindClassifier, ID: "cls", Description: "d", Tags: map[string]string{"a": "b"}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Seed(Seed{Kind: KindClassifier, ID: "cls"}); !errors.Is(err, ErrExists) {
		t.Errorf("second seed: %v", err)
	}
	if err := r.Seed(Seed{Kind: KindModel, ID: "x"}); err == nil {
		t.Error("seeded an invalid id")
	}
	if err := r.Train(KindModel, "slow"); err != nil {
		t.Fatal(err)
	}
	if m, ok := r.Model(KindModel, "slow"); !ok || m.Status != "creating" {
		t.Errorf("training model %+v", m)
	}
	if n := r.Count(KindModel); n != 0 {
		t.Errorf("count %d while training", n)
	}
	clock.Advance(o.BuildDuration)
	ms := r.Models(KindModel)
	if len(ms) != 1 || ms[0].ID != "slow" || ms[0].Status != "ready" || len(ms[0].DocTypes) != 1 ||
		!ms[0].Expires.Equal(ms[0].Created.Add(730*24*time.Hour)) {
		t.Errorf("models %+v", ms)
	}
	c, _ := r.Model(KindClassifier, "cls")
	if c.Description != "d" || c.Tags["a"] != "b" || len(c.DocTypes) != 5 {
		t.Errorf("classifier %+v", c)
	}
	if err := r.Delete(KindModel, "slow"); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(KindModel, "slow"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	authorizeModel(t, srv.Endpoint("target"), "2024-11-30", "held", nil)
	tgt := srv.Resource("target")
	if rs := tgt.Reservations(); len(rs) != 1 || rs[0].ID != "held" || rs[0].Kind != KindModel {
		t.Errorf("reservations %+v", rs)
	}
	if err := tgt.Delete(KindModel, "held"); err != nil || len(tgt.Reservations()) != 0 {
		t.Errorf("freeing a reservation: %v %+v", err, tgt.Reservations())
	}
	a := do(t, "POST", vurl(srv.Endpoint("source"), "2024-11-30", "/documentModels:build"), `{"modelId":"b1","buildMode":"template","azureBlobSource":`+blob+`}`)
	mustStatus(t, a, 202)
	ops := r.Operations()
	if len(ops) != 1 || ops[0].Kind != opModelBuild || ops[0].Status != "notStarted" {
		t.Errorf("operations %+v", ops)
	}
	if got := len(srv.Resources()); got != 2 {
		t.Errorf("%d resources", got)
	}
	if SupportedAPIVersions()[0] != "2024-11-30" || len(SupportedAPIVersions()) != len(apiVersions) {
		t.Error("SupportedAPIVersions")
	}
}
