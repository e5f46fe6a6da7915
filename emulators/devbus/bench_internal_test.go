package devbus

import (
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/Azure/go-amqp"
)

// BenchmarkQueuedMessageMemory reports the heap a waiting message costs: a copy-request
// sized message (a 100-byte JSON body, an id, three application properties) with its
// duplicate-detection entry and index entries.
func BenchmarkQueuedMessageMemory(b *testing.B) {
	opts, err := QueueOptions{Name: "mem"}.withDefaults()
	if err != nil {
		b.Fatal(err)
	}
	q := newQueue(opts, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for i := range b.N {
		// What a client sends is garbage once parsed; only the queue's copy stays.
		raw, err := (&amqp.Message{
			Properties: &amqp.MessageProperties{MessageID: fmt.Sprintf("copy-%08d", i), ContentType: ptr("application/json")},
			ApplicationProperties: map[string]any{
				"operation": "copy", "attempt": int64(1), "requestedBy": "authorizer",
			},
			Data: [][]byte{[]byte(`{"sourceRegion":"westeurope","targetRegion":"northeurope","modelId":"invoice-model-0001"}`)},
		}).MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		m, err := parseMessage(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := q.enqueue([]*message{m}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if st := q.stats(); st.Active != b.N {
		b.Fatalf("%d active messages, want %d", st.Active, b.N)
	}
	b.ReportMetric((float64(after.HeapAlloc)-float64(before.HeapAlloc))/float64(b.N), "heap-B/queued-msg")
	runtime.KeepAlive(q)
}
