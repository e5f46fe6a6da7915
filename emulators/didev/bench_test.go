package didev

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

func benchClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// BenchmarkGetModel measures GETs of one model through real HTTP on loopback (req/s).
func BenchmarkGetModel(b *testing.B) {
	o := testOptions(nil)
	srv := startServer(b, o)
	if err := srv.Resource("source").Seed(Seed{Kind: KindModel, ID: "bench"}); err != nil {
		b.Fatal(err)
	}
	u := vurl(srv.Endpoint("source"), "2024-11-30", "/documentModels/bench")
	client := benchClient()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", u, nil)
			req.Header.Set("Ocp-Apim-Subscription-Key", testKey)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkGetOperation measures polling an operation (the hottest path of a copy).
func BenchmarkGetOperation(b *testing.B) {
	srv := startServer(b, testOptions(nil))
	resp := do(b, "POST", vurl(srv.Endpoint("source"), "2024-11-30", "/documentModels:build"),
		`{"modelId":"bench","buildMode":"template","azureBlobSource":{"containerUrl":"https://x.blob.core.windows.net/c"}}`)
	mustStatus(b, resp, http.StatusAccepted)
	u := resp.header.Get("Operation-Location")
	client := benchClient()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", u, nil)
			req.Header.Set("Ocp-Apim-Subscription-Key", testKey)
			r, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkListTenThousandModels pages through a resource of 10,000 models.
func BenchmarkListTenThousandModels(b *testing.B) {
	srv := startServer(b, testOptions(nil))
	res := srv.Resource("source")
	for i := range 10000 {
		if err := res.Seed(Seed{Kind: KindModel, ID: fmt.Sprintf("m%05d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	client := benchClient()
	b.ResetTimer()
	for range b.N {
		n := 0
		next := vurl(srv.Endpoint("source"), "2024-11-30", "/documentModels")
		for next != "" {
			req, _ := http.NewRequest("GET", next, nil)
			req.Header.Set("Ocp-Apim-Subscription-Key", testKey)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			var page struct {
				Value    []json.RawMessage `json:"value"`
				NextLink string            `json:"nextLink"`
			}
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			if err != nil {
				b.Fatal(err)
			}
			n += len(page.Value)
			next = page.NextLink
		}
		if n != 10000+len(prebuiltDI) {
			b.Fatalf("listed %d", n)
		}
	}
}
