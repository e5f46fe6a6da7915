package bench

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dimirror/dimirror/internal/testenv"
)

// pollTables keeps the seeded tables across the runs of one benchmark binary: seeding 100,000
// rows takes far longer than the passes measured.
var pollTables struct {
	sync.Mutex
	m map[string]*PollTable
}

func pollTable(b *testing.B, rows, inFlight int) *PollTable {
	b.Helper()
	pollTables.Lock()
	defer pollTables.Unlock()
	name := fmt.Sprintf("pollpass%dx%d", rows, inFlight)
	if p, ok := pollTables.m[name]; ok {
		return p
	}
	az, err := testenv.SharedAzurite()
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	p, err := NewPollTable(ctx, az.ConnectionString(), fmt.Sprintf("%s%d", name, time.Now().UnixNano()%1e6), rows, inFlight)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d rows seeded in %s; the first in-flight listing (building the index) took %s",
		rows, p.Seed.Round(time.Millisecond), p.Build.Round(time.Millisecond))
	if pollTables.m == nil {
		pollTables.m = map[string]*PollTable{}
	}
	pollTables.m[name] = p
	return p
}

// BenchmarkPollListing is one poll pass's listing of the replicas in flight — 100 of them —
// in a table of 100 rows and in one of 100,000: the table requests and the time per pass
// (through the in-flight index), and, as scan-requests and scan-ms, the same listing as the
// query of the code before the index (a filter on Status: a scan of the whole table in Azure
// Tables), measured three times.
func BenchmarkPollListing(b *testing.B) {
	for _, size := range []int{100, 100_000} {
		b.Run(fmt.Sprintf("rows=%d/inflight=100", size), func(b *testing.B) {
			p := pollTable(b, size, 100)
			ctx := context.Background()
			var scan PollPass
			for range 3 {
				s, err := p.ScanPass(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if s.Listed != p.InFlight {
					b.Fatalf("the scan listed %d, want %d", s.Listed, p.InFlight)
				}
				scan.Requests += s.Requests
				scan.Time += s.Time
			}
			var requests int64
			for b.Loop() {
				pass, err := p.Pass(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if pass.Listed != p.InFlight {
					b.Fatalf("listed %d, want %d", pass.Listed, p.InFlight)
				}
				requests += pass.Requests
			}
			b.ReportMetric(float64(requests)/float64(b.N), "requests/op")
			b.ReportMetric(float64(scan.Requests)/3, "scan-requests/op")
			b.ReportMetric(float64(scan.Time.Microseconds())/3/1000, "scan-ms/op")
		})
	}
}
