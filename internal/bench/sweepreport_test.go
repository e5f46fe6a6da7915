package bench

import (
	"strings"
	"testing"
)

func TestSweepTwoWaySectionFromGoBenchmarks(t *testing.T) {
	tests := []struct {
		name    string
		gobench string
		want    []string
	}{
		{"within", `BenchmarkSweepTwoWay3x1000-2   	       3	1765340975 ns/op	         0 429s/sweep	         1.806 bound-paced-s	         1.300 bound-parallel-s	         3.900 bound-serial-s	        39.00 list-calls/sweep`,
			[]string{"## 7. A sweep of three resources under two-way rules", "| 1.77 s | 39 | 0 | 1.81 s | 1.30 s | yes |"}},
		{"beyond", `BenchmarkSweepTwoWay3x1000-2 3 4000000000 ns/op 2 429s/sweep 1.806 bound-paced-s 1.300 bound-parallel-s 39.00 list-calls/sweep`,
			[]string{"| 4.00 s | 39 | 2 | 1.81 s | 1.30 s | no |"}},
		{"absent", "BenchmarkWebhook-2 10 5 ns/op", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			(&Report{GoBench: tt.gobench}).sweepTwoWaySection(&b)
			if tt.want == nil && b.Len() != 0 {
				t.Errorf("rendered %q", b.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("section lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}
