package didev

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseFaults(t *testing.T) {
	tests := []struct {
		spec    string
		want    Faults
		wantErr string
	}{
		{"", Faults{}, ""},
		{"off", Faults{}, ""},
		{"copy-fail=0.05,http-500=0.01,http-429=0.01,reset=0.01,latency=200ms@0.1,expire-auth=0.05,seed=42",
			Faults{CopyFail: 0.05, HTTP500: 0.01, HTTP429: 0.01, Reset: 0.01, Latency: 200 * time.Millisecond, LatencyRate: 0.1, ExpireAuth: 0.05, Seed: 42}, ""},
		{"latency=1s", Faults{Latency: time.Second, LatencyRate: 1}, ""},
		{"reset-after=1", Faults{ResetAfter: 1}, ""},
		{"copy-fail=2", Faults{}, "from 0 to 1"},
		{"copy-fail=-0.1", Faults{}, "from 0 to 1"},
		{"copy-fail=NaN", Faults{}, "from 0 to 1"},
		{"explode=0.1", Faults{}, "unknown fault"},
		{"copy-fail", Faults{}, "want NAME=VALUE"},
		{"latency=fast", Faults{}, "invalid duration"},
		{"latency=2m", Faults{}, "between 0 and 1m"},
		{"latency=1s@5", Faults{}, "from 0 to 1"},
		{"seed=-1", Faults{}, "non-negative integer"},
		{"reset=0.1,reset=0.2", Faults{}, "given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := ParseFaults(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			// String round-trips.
			again, err := ParseFaults(got.String())
			if err != nil || again.String() != got.String() {
				t.Errorf("round trip %q -> %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestFaultDiceIsReproducible(t *testing.T) {
	f := Faults{HTTP500: 0.3, Reset: 0.2, Latency: time.Millisecond, LatencyRate: 0.5, Seed: 7}
	a, b := newFaultDice(f), newFaultDice(f)
	hits := 0
	for range 200 {
		ra, rb := a.roll(), b.roll()
		if ra != rb {
			t.Fatal("same seed, different faults")
		}
		if ra.http500 || ra.reset {
			hits++
		}
	}
	if hits < 50 || hits > 150 {
		t.Errorf("%d of 200 requests faulted at rates 0.3+0.2", hits)
	}
	c := newFaultDice(Faults{HTTP500: 0.3, Reset: 0.2, Seed: 8})
	same := true
	for range 50 {
		if a.roll() != c.roll() {
			same = false
		}
	}
	if same {
		t.Error("different seeds gave the same faults")
	}
}

func TestInjectedFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults Faults
		check  func(t *testing.T, srv *Server)
	}{
		{"http-500", Faults{HTTP500: 1}, func(t *testing.T, srv *Server) {
			a := do(t, "GET", vurl(srv.Endpoint("source"), "2024-11-30", "/info"), nil)
			mustStatus(t, a, http.StatusInternalServerError)
			if code, _ := a.errCodes(t); code != CodeInternalServerError {
				t.Errorf("code %s", code)
			}
			if got := srv.Stats().Resources["source"].Categories[CategoryList].Injected5xx; got != 1 {
				t.Errorf("injected5xx %d", got)
			}
		}},
		{"http-429", Faults{HTTP429: 1}, func(t *testing.T, srv *Server) {
			a := do(t, "GET", vurl(srv.Endpoint("source"), "2024-11-30", "/operations/x"), nil)
			mustStatus(t, a, http.StatusTooManyRequests)
			if a.header.Get("Retry-After") != "1" || !strings.Contains(string(a.body), "Get Operation Operation under Form Recognizer API (2024-11-30)") {
				t.Errorf("429 %v %s", a.header, a.body)
			}
			c := srv.Stats().Resources["source"].Categories[CategoryGetOperation]
			if c.Throttled != 1 || c.Injected429 != 1 || c.RateLimited != 0 {
				t.Errorf("counters %+v", c)
			}
		}},
		{"reset", Faults{Reset: 1}, func(t *testing.T, srv *Server) {
			req, _ := http.NewRequest("GET", vurl(srv.Endpoint("source"), "2024-11-30", "/info"), nil)
			req.Header.Set("Ocp-Apim-Subscription-Key", testKey)
			resp, err := httpClient.Do(req)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("got an answer %d, want a reset connection", resp.StatusCode)
			}
			if got := srv.Stats().Resources["source"].Categories[CategoryList].Resets; got != 1 {
				t.Errorf("resets %d", got)
			}
		}},
		{"reset-after handles the request", Faults{ResetAfter: 1}, func(t *testing.T, srv *Server) {
			req, _ := http.NewRequest("POST", vurl(srv.Endpoint("target"), "2024-11-30", "/documentModels:authorizeCopy"), strings.NewReader(`{"modelId":"lost-ack"}`))
			req.Header.Set("Ocp-Apim-Subscription-Key", testKey)
			resp, err := httpClient.Do(req)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("got an answer %d, want a reset connection", resp.StatusCode)
			}
			if r := srv.Resource("target").Reservations(); len(r) != 1 || r[0].ID != "lost-ack" {
				t.Errorf("the request was not handled: %+v", r)
			}
			if c := srv.Stats().Resources["target"].Categories[CategoryManagement]; c.Resets != 1 || c.LostAnswers != 1 {
				t.Errorf("counters %+v, want one reset, a lost answer", c)
			}
		}},
		{"latency", Faults{Latency: 150 * time.Millisecond}, func(t *testing.T, srv *Server) {
			start := time.Now()
			mustStatus(t, do(t, "GET", vurl(srv.Endpoint("source"), "2024-11-30", "/info"), nil), 200)
			if d := time.Since(start); d < 150*time.Millisecond {
				t.Errorf("answered after %s", d)
			}
		}},
		{"expire-auth", Faults{ExpireAuth: 1}, func(t *testing.T, srv *Server) {
			auth := authorizeModel(t, srv.Endpoint("target"), "2024-11-30", "t1", nil)
			a := do(t, "POST", vurl(srv.Endpoint("source"), "2024-11-30", "/documentModels/seeded:copyTo"), auth)
			mustStatus(t, a, http.StatusBadRequest)
			if _, inner := a.errCodes(t); inner != CodeAuthorizationExpired {
				t.Errorf("inner %s", inner)
			}
		}},
		{"copy-fail", Faults{CopyFail: 1}, func(t *testing.T, srv *Server) {
			auth := authorizeModel(t, srv.Endpoint("target"), "2024-11-30", "t1", nil)
			a := do(t, "POST", vurl(srv.Endpoint("source"), "2024-11-30", "/documentModels/seeded:copyTo"), auth)
			mustStatus(t, a, http.StatusAccepted)
			deadline := time.Now().Add(5 * time.Second)
			for {
				op := do(t, "GET", a.header.Get("Operation-Location"), nil).json(t)
				if op["status"] == "failed" {
					if str2(op, "error", "code") != CodeInternalServerError {
						t.Errorf("error %v", op["error"])
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("operation %v", op)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if r := srv.Resource("target").Reservations(); len(r) != 1 {
				t.Errorf("a failed copy consumed the reservation: %+v", r)
			}
		}},
		{"admin endpoints are exempt", Faults{HTTP500: 1, Reset: 1}, func(t *testing.T, srv *Server) {
			resp, err := http.Get(srv.Endpoint("source") + "/_didev/stats")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("stats %d", resp.StatusCode)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOptions(nil)
			o.CopyDuration = 20 * time.Millisecond
			o.Faults = tt.faults
			srv := startServer(t, o)
			if err := srv.Resource("source").Seed(Seed{Kind: KindModel, ID: "seeded"}); err != nil {
				t.Fatal(err)
			}
			tt.check(t, srv)
		})
	}
}

func TestFaultsAdminEndpoint(t *testing.T) {
	srv := startServer(t, testOptions(nil))
	base := srv.Endpoint("target") + "/_didev/faults"
	post := func(body string) (int, string) {
		resp, err := http.Post(base, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("http-500=0.5,seed=3"); code != 200 || !strings.Contains(body, `"spec": "http-500=0.5,seed=3"`) {
		t.Errorf("text spec: %d %s", code, body)
	}
	if got := srv.Faults(); got.HTTP500 != 0.5 || got.Seed != 3 {
		t.Errorf("faults %+v", got)
	}
	if code, _ := post(`{"spec":"copy-fail=1"}`); code != 200 || srv.Faults().CopyFail != 1 || srv.Faults().HTTP500 != 0 {
		t.Errorf("JSON spec: %d %+v", code, srv.Faults())
	}
	if code, _ := post(`{"http429":0.25}`); code != 200 || srv.Faults().HTTP429 != 0.25 {
		t.Errorf("JSON faults: %d %+v", code, srv.Faults())
	}
	if code, body := post("copy-fail=7"); code != 400 || !strings.Contains(body, "from 0 to 1") {
		t.Errorf("bad spec: %d %s", code, body)
	}
	if code, _ := post(`{"bogus":1}`); code != 400 {
		t.Errorf("unknown JSON field accepted: %d", code)
	}
	resp, err := http.Get(base)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var view faultsView
	if err := json.NewDecoder(resp.Body).Decode(&view); err != nil || view.Faults.HTTP429 != 0.25 {
		t.Errorf("GET faults %+v %v", view, err)
	}
	if r, _ := http.Get(srv.Endpoint("target") + "/_didev/nothing"); r.StatusCode != 404 {
		t.Errorf("unknown admin path %d", r.StatusCode)
	}
	if err := srv.SetFaults(Faults{Reset: 3}); err == nil {
		t.Error("SetFaults accepted a rate of 3")
	}
}

func TestRateLimit(t *testing.T) {
	clock := newFakeClock()
	o := testOptions(clock)
	o.Rate = RateOptions{Management: 1, GetOperation: 1000, List: 1000}
	srv := startServer(t, o)
	tgt := srv.Endpoint("target")
	first := do(t, "POST", vurl(tgt, "2024-11-30", "/documentModels:authorizeCopy"), `{"modelId":"r1"}`)
	mustStatus(t, first, http.StatusOK)
	second := do(t, "POST", vurl(tgt, "2024-11-30", "/documentModels:authorizeCopy"), `{"modelId":"r2"}`)
	mustStatus(t, second, http.StatusTooManyRequests)
	if second.header.Get("Retry-After") != "1" || second.header.Get("Content-Type") != "application/json" {
		t.Errorf("429 headers %v", second.header)
	}
	if code, _ := second.errCodes(t); code != "429" {
		t.Errorf("code %s", code)
	}
	if !strings.Contains(string(second.body), "Authorize Copy Document Model Operation") || !strings.Contains(string(second.body), "S0 pricing tier") {
		t.Errorf("APIM body %s", second.body)
	}
	// Other categories and resources have their own budgets.
	mustStatus(t, do(t, "GET", vurl(tgt, "2024-11-30", "/info"), nil), http.StatusOK)
	mustStatus(t, do(t, "POST", vurl(srv.Endpoint("source"), "2024-11-30", "/documentModels:authorizeCopy"), `{"modelId":"r2"}`), http.StatusOK)
	c := srv.Stats().Resources["target"].Categories[CategoryManagement]
	if c.Requests != 2 || c.Throttled != 1 || c.RateLimited != 1 {
		t.Errorf("counters %+v", c)
	}
	clock.Advance(time.Second) // the budget refills with the server's clock
	mustStatus(t, do(t, "POST", vurl(tgt, "2024-11-30", "/documentModels:authorizeCopy"), `{"modelId":"r2"}`), http.StatusOK)
}
