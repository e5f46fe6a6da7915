package store

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dimirror/dimirror/shared/replication"
)

func TestMetaRowsRoundTripWithETags(t *testing.T) {
	tb := openTable(t)
	ctx := context.Background()
	if _, _, err := tb.GetMeta(ctx, "watch"); !errors.Is(err, replication.ErrNotFound) {
		t.Fatalf("absent row: %v", err)
	}
	v1 := []byte(`{"watermark":"2026-05-01T12:00:00Z","note":"naïve \u00e9 \\ \" binary-safe"}` + "\x00\xff")
	etag, err := tb.PutMeta(ctx, "watch", v1, "")
	if err != nil || etag == "" {
		t.Fatalf("create: %q %v", etag, err)
	}
	if _, err := tb.PutMeta(ctx, "watch", []byte("{}"), ""); !errors.Is(err, replication.ErrConflict) {
		t.Errorf("a second create: %v, want ErrConflict", err)
	}
	got, getTag, err := tb.GetMeta(ctx, "watch")
	if err != nil || !bytes.Equal(got, v1) || getTag != etag {
		t.Fatalf("read back %q (%q) err %v; want %q (%q)", got, getTag, err, v1, etag)
	}
	etag2, err := tb.PutMeta(ctx, "watch", []byte(`{"v":2}`), etag)
	if err != nil || etag2 == etag {
		t.Fatalf("replace: %q %v", etag2, err)
	}
	if _, err := tb.PutMeta(ctx, "watch", []byte(`{"v":3}`), etag); !errors.Is(err, replication.ErrConflict) {
		t.Errorf("a replace with a stale ETag: %v, want ErrConflict", err)
	}
	if _, err := tb.PutMeta(ctx, "never-created", []byte(`{}`), etag); !errors.Is(err, replication.ErrConflict) {
		t.Errorf("a replace of an absent row: %v, want ErrConflict", err)
	}
	got, _, _ = tb.GetMeta(ctx, "watch")
	if string(got) != `{"v":2}` {
		t.Errorf("value %q after the lost race", got)
	}
}

func TestMetaRowsStayOutOfReplicaListings(t *testing.T) {
	tb := openTable(t)
	ctx := context.Background()
	r := sample("westus2")
	if err := tb.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"watch", "sweep", "waiting"} {
		if _, err := tb.PutMeta(ctx, name, []byte(`{}`), ""); err != nil {
			t.Fatal(err)
		}
	}
	page, err := tb.List(ctx, replication.Filter{}, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Replicas) != 1 || page.Replicas[0].Key != r.Key {
		t.Errorf("listing %+v, want only the replica", page.Replicas)
	}
}

func TestMetaRejectsBadInput(t *testing.T) {
	tb := openTable(t)
	ctx := context.Background()
	if _, err := tb.PutMeta(ctx, "big", bytes.Repeat([]byte("x"), MaxMetaBytes+1), ""); !errors.Is(err, ErrMetaTooLarge) {
		t.Errorf("an oversized value: %v", err)
	}
	for _, name := range []string{"", "a/b", "a#b", "a?b", `a\b`, "tab\there", strings.Repeat("n", 256)} {
		if _, err := tb.PutMeta(ctx, name, []byte(`{}`), ""); err == nil {
			t.Errorf("row name %q was accepted", name)
		}
		if _, _, err := tb.GetMeta(ctx, name); err == nil || errors.Is(err, replication.ErrNotFound) {
			t.Errorf("GetMeta(%q) = %v, want a usage error", name, err)
		}
	}
}
