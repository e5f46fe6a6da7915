package store

import (
	"context"
	"testing"
	"time"

	"github.com/dimirror/dimirror/shared/replication"
)

func TestPresenceCountsLiveInstances(t *testing.T) {
	tb := openTable(t)
	ctx := context.Background()
	now := time.Now().UTC()
	beats := []struct {
		id     string
		at     time.Time
		active []string
	}{
		{"a", now, []string{"source.example"}},
		{"b", now.Add(-10 * time.Second), []string{"source.example", "westus2.example"}},
		{"c", now.Add(-time.Minute), []string{"source.example"}}, // gone, but recently: not counted, kept
		{"d", now.Add(-time.Hour), nil},                          // long gone: deleted
		{"a", now.Add(time.Second), []string{"westus2.example"}}, // a beats again: still one instance
	}
	for _, b := range beats {
		if err := tb.Heartbeat(ctx, b.id, b.at, b.active); err != nil {
			t.Fatal(err)
		}
	}
	since := now.Add(-30 * time.Second)
	in, err := tb.LiveInstances(ctx, since, now)
	if err != nil {
		t.Fatal(err)
	}
	if in.Live != 2 {
		t.Errorf("%d live instances, want 2 (a and b)", in.Live)
	}
	if in.ActiveOn["source.example"] != 1 || in.ActiveOn["westus2.example"] != 2 {
		t.Errorf("active on %v, want source 1 (b), westus2 2 (a and b)", in.ActiveOn)
	}
	if _, err := tb.client.GetEntity(ctx, MetaPartition, presencePrefix+"d", nil); statusOf(err) != 404 {
		t.Errorf("the long-gone instance's row is still there: %v", err)
	}
	if _, err := tb.client.GetEntity(ctx, MetaPartition, presencePrefix+"c", nil); err != nil {
		t.Errorf("a recently gone instance's row was deleted: %v", err)
	}
	// Presence rows never show as replicas.
	page, err := tb.List(ctx, replication.Filter{}, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Replicas) != 0 {
		t.Errorf("replica listing shows %d rows", len(page.Replicas))
	}
	if err := tb.Leave(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if in, err := tb.LiveInstances(ctx, since, now); err != nil || in.Live != 1 {
		t.Errorf("after b left: %d live (%v), want 1", in.Live, err)
	}
	if err := tb.Leave(ctx, "b"); err != nil {
		t.Errorf("leaving twice: %v", err)
	}
	if err := tb.Heartbeat(ctx, "", now, nil); err == nil {
		t.Error("an empty instance id was accepted")
	}
}
