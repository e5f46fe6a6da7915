package statustable

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/handlers"
)

func TestDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0.0s"},
		{420 * time.Millisecond, "0.4s"},
		{59*time.Second + 940*time.Millisecond, "59.9s"},
		{4*time.Minute + 5*time.Second, "4m05s"},
		{3*time.Hour + 10*time.Minute + 29*time.Second, "3h10m"},
		{52 * time.Hour, "2d4h"},
	}
	for _, tt := range tests {
		if got := Duration(tt.d); got != tt.want {
			t.Errorf("Duration(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestSummary(t *testing.T) {
	rows := func(statuses ...string) []handlers.ReplicaView {
		var out []handlers.ReplicaView
		for _, s := range statuses {
			out = append(out, handlers.ReplicaView{Status: s})
		}
		return out
	}
	tests := []struct {
		rows []handlers.ReplicaView
		want string
	}{
		{nil, "no replicas"},
		{rows("succeeded"), "1 replica: 1 succeeded"},
		{rows("failed", "succeeded", "pending", "succeeded"), "4 replicas: 1 pending, 2 succeeded, 1 failed"},
		{rows("copying", "archived"), "2 replicas: 1 copying, 1 archived"},
	}
	for _, tt := range tests {
		if got := Summary(tt.rows); got != tt.want {
			t.Errorf("Summary = %q, want %q", got, tt.want)
		}
	}
}

func TestWrite(t *testing.T) {
	now := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	var rows []handlers.ReplicaView
	// The API's JSON, as the demo reads it (the error detail type is the handlers' own).
	err := json.Unmarshal([]byte(`[
	  {"kind":"model","sourceId":"b","target":"westus2","targetId":"b","status":"succeeded","attempt":1,
	   "requestedDateTime":"2025-03-14T08:58:30Z","lagSeconds":3.25},
	  {"kind":"classifier","sourceId":"a","target":"eastus","targetId":"a-dr","status":"failed","attempt":6,
	   "error":{"code":"DocumentModelLimit","message":"The maximum number of models has been reached for this resource; delete some."}},
	  {"kind":"model","sourceId":"b","target":"eastus","targetId":"b","status":"pending","attempt":2,
	   "error":{"code":"Throttled","message":"Too many requests"},"nextAttemptDateTime":"2025-03-14T09:00:20Z"}
	]`), &rows)
	if err != nil {
		t.Fatal(err)
	}
	Sort(rows)
	var b strings.Builder
	if err := Write(&b, rows, now); err != nil {
		t.Fatal(err)
	}
	want := `KIND        SOURCE  TARGET          STATUS     PROGRESS  ATTEMPT  REQUESTED  LAG   NOTE
classifier  a       eastus as a-dr  failed     -         6        -          -     DocumentModelLimit: The maximum number of models has been reached for t…
model       b       eastus          pending    -         2        -          -     next attempt in 20.0s (Throttled)
model       b       westus2         succeeded  100%      1        1m30s ago  3.2s
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// TestWriteFrom: rows that name the resource they are copied from get a FROM column; a row
// written before replication rules shows "-" there.
func TestWriteFrom(t *testing.T) {
	now := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	rows := []handlers.ReplicaView{
		{Source: "a", Kind: "model", SourceID: "invoice", Target: "b", TargetID: "invoice", Status: "succeeded", Attempt: 1},
		{Source: "b", Kind: "model", SourceID: "receipt", Target: "a", TargetID: "receipt", Status: "pending", Attempt: 1},
		{Kind: "model", SourceID: "router", Target: "c", TargetID: "router", Status: "succeeded", Attempt: 1},
	}
	var b strings.Builder
	if err := Write(&b, rows, now); err != nil {
		t.Fatal(err)
	}
	want := `KIND   FROM  SOURCE   TARGET  STATUS     PROGRESS  ATTEMPT  REQUESTED  LAG  NOTE
model  a     invoice  b       succeeded  100%      1        -          -
model  b     receipt  a       pending    -         1        -          -
model  -     router   c       succeeded  100%      1        -          -
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
