package bench

import (
	"strings"
	"testing"
)

func TestPollPassSectionFromGoBenchmarks(t *testing.T) {
	gobench := `goos: linux
BenchmarkPollListing/rows=100/inflight=100-2      	     200	  49600000 ns/op	       101.0 requests/op	         1.000 scan-requests/op	         8.300 scan-ms/op
BenchmarkPollListing/rows=100000/inflight=100-2   	     200	  76400000 ns/op	       101.0 requests/op	         1.000 scan-requests/op	        23.80 scan-ms/op
PASS`
	ls := parsePollListing(gobench)
	if len(ls) != 2 || ls[1].rows != 100000 || ls[1].requests != 101 || ls[1].scanMillis != 23.8 || ls[0].nsPerOp != 49.6e6 {
		t.Fatalf("parsed %+v", ls)
	}
	var b strings.Builder
	(&Report{GoBench: gobench}).pollPass(&b)
	for _, want := range []string{"## 6. Poll pass at 100,000 replicas", "| 100000 rows, 100 in flight | 101 | 76.4 ms | 1 | 23.8 ms |", "| ratio 100000 / 100 | 1.00 | 1.54 | 1.00 | 2.87 |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("section lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	(&Report{GoBench: "BenchmarkWebhook-2 10 5 ns/op"}).pollPass(&b)
	if b.Len() != 0 {
		t.Errorf("a run without BenchmarkPollListing rendered %q", b.String())
	}
}
