package drill_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dimirror/dimirror/internal/fakeclock"
	"github.com/dimirror/dimirror/shared/drill"
	"github.com/dimirror/dimirror/shared/reconcile"
	"github.com/dimirror/dimirror/shared/replication"
)

// fakeResource is a resource's items and their fingerprints in memory.
type fakeResource struct {
	version     string
	items       map[replication.Kind][]reconcile.Item
	fps         map[string]string // kind/id → fingerprint; absent: not found
	unsupported map[replication.Kind]bool
	listErr     error
	fpErr       error

	mu    sync.Mutex
	reads map[string]int
}

func (f *fakeResource) Items(_ context.Context, kind replication.Kind) iter.Seq2[reconcile.Item, error] {
	return func(yield func(reconcile.Item, error) bool) {
		switch {
		case f.listErr != nil:
			yield(reconcile.Item{}, f.listErr)
			return
		case f.unsupported[kind]:
			yield(reconcile.Item{}, reconcile.ErrUnsupported)
			return
		}
		for _, it := range f.items[kind] {
			if !yield(it, nil) {
				return
			}
		}
	}
}

func (f *fakeResource) Fingerprint(_ context.Context, kind replication.Kind, id string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reads == nil {
		f.reads = map[string]int{}
	}
	f.reads[string(kind)+"/"+id]++
	if f.fpErr != nil {
		return "", f.fpErr
	}
	fp, ok := f.fps[string(kind)+"/"+id]
	if !ok {
		return "", reconcile.ErrNotFound
	}
	return fp, nil
}

func (f *fakeResource) APIVersion() string { return f.version }

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// world is a source with two models (one excluded by the filter) and a classifier, and a target
// holding faithful copies of all three; each case breaks one thing.
func world() (src, tgt *fakeResource) {
	created, expires := t0.Add(-24*time.Hour), t0.Add(2*365*24*time.Hour)
	item := func(kind replication.Kind, id string, tags map[string]string) reconcile.Item {
		return reconcile.Item{Kind: kind, ID: id, Created: created, Expires: expires, Tags: tags}
	}
	copyTags := replication.CopyTags("source.example", replication.KindModel, "invoice", created)
	src = &fakeResource{version: "2024-11-30",
		items: map[replication.Kind][]reconcile.Item{
			replication.KindModel:      {item(replication.KindModel, "invoice", nil), item(replication.KindModel, "scratch-1", nil), item(replication.KindModel, "prebuilt-read", nil)},
			replication.KindClassifier: {item(replication.KindClassifier, "router", nil)},
		},
		fps: map[string]string{"model/invoice": "fp-invoice", "model/scratch-1": "fp-scratch", "classifier/router": "fp-router"}}
	tgt = &fakeResource{version: "2024-11-30",
		items: map[replication.Kind][]reconcile.Item{
			replication.KindModel:      {item(replication.KindModel, "invoice", copyTags), item(replication.KindModel, "someone-elses", nil)},
			replication.KindClassifier: {item(replication.KindClassifier, "router", nil)},
		},
		fps: map[string]string{"model/invoice": "fp-invoice", "classifier/router": "fp-router"}}
	return src, tgt
}

func TestDrillReasons(t *testing.T) {
	cases := []struct {
		name   string
		breaks func(src, tgt *fakeResource)
		now    time.Duration // the clock's move from t0
		warn   time.Duration
		want   []string // code kind/id
	}{
		{name: "ready", breaks: func(_, _ *fakeResource) {}},
		{name: "a model deleted from the target", breaks: func(_, tgt *fakeResource) {
			tgt.items[replication.KindModel] = tgt.items[replication.KindModel][1:]
		}, want: []string{"missing model/invoice"}},
		{name: "the target holds an older version", breaks: func(_, tgt *fakeResource) {
			tgt.items[replication.KindModel][0].Tags = replication.CopyTags("source.example", replication.KindModel, "invoice", t0.Add(-72*time.Hour))
		}, want: []string{"other-version model/invoice"}},
		{name: "a classifier of another version (its expiry differs)", breaks: func(_, tgt *fakeResource) {
			tgt.items[replication.KindClassifier][0].Expires = t0.Add(time.Hour * 24 * 400)
		}, want: []string{"other-version classifier/router"}},
		{name: "another field schema", breaks: func(_, tgt *fakeResource) {
			tgt.fps["model/invoice"] = "fp-other"
		}, want: []string{"schema-mismatch model/invoice"}},
		{name: "expiring within the warning", breaks: func(src, tgt *fakeResource) {
			for _, r := range []*fakeResource{src, tgt} {
				r.items[replication.KindClassifier][0].Expires = t0.Add(10 * 24 * time.Hour)
			}
		}, want: []string{"expiring classifier/router"}},
		{name: "the same expiry outside a shorter warning", warn: 5 * 24 * time.Hour, breaks: func(src, tgt *fakeResource) {
			for _, r := range []*fakeResource{src, tgt} {
				r.items[replication.KindClassifier][0].Expires = t0.Add(10 * 24 * time.Hour)
			}
		}},
		{name: "api-version past its retirement", now: 400 * 24 * time.Hour * 3, breaks: func(src, tgt *fakeResource) {
			tgt.version = "2.1"
			tgt.unsupported = map[replication.Kind]bool{replication.KindClassifier: true}
			// Three years on, the copies also expire: push them out of the way.
			for _, r := range []*fakeResource{src, tgt} {
				for k := range r.items {
					for i := range r.items[k] {
						r.items[k][i].Expires = t0.Add(10 * 365 * 24 * time.Hour)
					}
				}
			}
		}, want: []string{"api-version-retired /", "kind-unsupported classifier/router"}},
		{name: "deleted between the listing and the read", breaks: func(_, tgt *fakeResource) {
			delete(tgt.fps, "model/invoice")
		}, want: []string{"missing model/invoice"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src, tgt := world()
			c.breaks(src, tgt)
			_, ok := world()
			clock := fakeclock.New(t0)
			clock.Advance(c.now)
			d := drill.Drill{Source: src, Targets: map[string]drill.Resource{"westus2": tgt, "eastus": ok}, ExpiryWarning: c.warn,
				Filter: reconcile.Filter{Exclude: []string{"scratch-*"}}, Now: clock.Now}
			rep, err := d.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if rep.SourceModels != 1 || rep.SourceClassifiers != 1 || len(rep.Targets) != 2 {
				t.Fatalf("report %+v", rep)
			}
			east, west := rep.Targets[0], rep.Targets[1]
			if east.Target != "eastus" || east.Checked != 2 || rep.Ready != (east.Ready && west.Ready) {
				t.Errorf("eastus %+v", east)
			}
			var got []string
			for _, r := range west.Reasons {
				got = append(got, r.Code+" "+string(r.Kind)+"/"+r.ID)
				if r.Detail == "" {
					t.Errorf("%s: no detail", r.Code)
				}
			}
			if !slices.Equal(got, c.want) || west.Ready != (len(c.want) == 0) || west.Checked != 2 {
				t.Errorf("westus2 reasons %v, want %v (%+v)", got, c.want, west)
			}
		})
	}
}

// A target that cannot be read is an error of that target (the others are judged); a source that
// cannot be read is the drill's error. Each source item's details are read once for all targets.
func TestDrillErrors(t *testing.T) {
	src, tgt := world()
	_, down := world()
	down.listErr = errors.New("dial tcp: connection refused")
	d := drill.Drill{Source: src, Targets: map[string]drill.Resource{"westus2": tgt, "eastus": down}, Now: fakeclock.New(t0).Now,
		Filter: reconcile.Filter{Exclude: []string{"scratch-*"}}}
	rep, err := d.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Ready || !rep.Errors() || !strings.Contains(rep.Targets[0].Error, "connection refused") || !rep.Targets[1].Ready {
		t.Errorf("report %+v", rep)
	}
	for k, n := range src.reads {
		if n != 1 {
			t.Errorf("%s read %d times", k, n)
		}
	}

	_, broken := world()
	broken.fpErr = errors.New("500 internal")
	rep, err = (&drill.Drill{Source: src, Targets: map[string]drill.Resource{"westus2": tgt, "eastus": broken}, Filter: d.Filter}).Run(context.Background())
	if err != nil || !strings.Contains(rep.Targets[0].Error, "500 internal") || rep.Ready {
		t.Errorf("a target's details unreadable: %v %+v", err, rep)
	}

	src.listErr = errors.New("403 forbidden")
	if _, err := d.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "source") {
		t.Errorf("source unreadable: %v", err)
	}
	src2, tgt2 := world()
	src2.fpErr = fmt.Errorf("boom")
	if _, err := (&drill.Drill{Source: src2, Targets: map[string]drill.Resource{"westus2": tgt2}}).Run(context.Background()); err == nil {
		t.Error("source details unreadable: no error")
	}
	if _, err := (&drill.Drill{Source: src2, Filter: reconcile.Filter{Include: []string{"["}}}).Run(context.Background()); err == nil {
		t.Error("a malformed filter: no error")
	}
}
