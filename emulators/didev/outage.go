package didev

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
)

// outages makes chosen resources fail most of their requests, as a regional outage or a failing
// gateway does: unlike Faults, which hit every resource alike, an outage is per resource, so a
// test can take one region down while the others serve.
type outages struct {
	mu    sync.Mutex
	share map[string]float64 // resource name → share of its requests that fail
	rng   *rand.Rand
}

func newOutages() *outages {
	return &outages{share: map[string]float64{}, rng: rand.New(rand.NewPCG(7, 11))}
}

// hit decides whether a request to resource fails.
func (o *outages) hit(resource string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	p, ok := o.share[resource]
	return ok && o.rng.Float64() < p
}

// SetOutage makes resource answer share (0 to 1) of its requests with 503 ServiceUnavailable
// before handling them; 0 ends the outage. The failed requests count as injected 5xx answers.
func (s *Server) SetOutage(resource string, share float64) error {
	r, ok := s.byName[strings.ToLower(resource)]
	if !ok {
		return fmt.Errorf("didev: no resource %q", resource)
	}
	if share < 0 || share > 1 {
		return fmt.Errorf("didev: outage share %v: want 0 to 1", share)
	}
	s.outages.mu.Lock()
	if share == 0 {
		delete(s.outages.share, r.opts.Name)
	} else {
		s.outages.share[r.opts.Name] = share
	}
	s.outages.mu.Unlock()
	s.log.Info("didev: outage set", "resource", resource, "share", share)
	return nil
}

const unavailableBody = `{"error":{"code":"ServiceUnavailable","message":"The service is temporarily unavailable. Please try again later."}}`

func outageResponse() *response {
	return &response{status: http.StatusServiceUnavailable, body: []byte(unavailableBody), contentType: "application/json", backend: true}
}
