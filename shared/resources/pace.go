package resources

import (
	"crypto/tls"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"golang.org/x/time/rate"
)

// Pacer spaces the list calls to one resource (lists, /info and reads of one model or
// classifier; S0: 10 per second) so they stay under its limit: a sweep over a resource with
// thousands of models waits client-side instead of drawing 429s and Retry-After storms.
// Management calls are not paced here (the reconciler paces the copies it starts, before it
// starts them), nor are operation polls (GET .../operations/{id}, v2.1 copy results; S0: 50 per
// second). Share one Pacer between every client of the same resource.
type Pacer struct {
	list *rate.Limiter
}

// NewPacer paces list calls at perSecond; zero or less paces nothing. A burst of one: calls
// leave evenly spaced, never in a clump that a gateway counting per second would refuse.
func NewPacer(perSecond float64) *Pacer {
	p := &Pacer{}
	if perSecond > 0 {
		p.list = rate.NewLimiter(rate.Limit(perSecond), 1)
	}
	return p
}

// Transport wraps next, the transport of a docintel client (docintel.Options.Transport), with the
// pacing; nil next means a client like docintel's default (TLS 1.2 or later, redirects not
// followed, since following one would hand the key to another host).
func (p *Pacer) Transport(next policy.Transporter) policy.Transporter {
	if next == nil {
		next = baseClient()
	}
	return &pacedTransport{p: p, next: next}
}

type pacedTransport struct {
	p    *Pacer
	next policy.Transporter
}

// Do waits for the request's budget (azcore's retries go through here too, so each try
// is paced), then sends it. The wait ends with the request's context.
func (t *pacedTransport) Do(req *http.Request) (*http.Response, error) {
	if l := t.p.limiter(req.Method, req.URL.Path); l != nil {
		if err := l.Wait(req.Context()); err != nil {
			return nil, err
		}
	}
	return t.next.Do(req)
}

// limiter picks the budget a request counts against: nil for what is not paced.
func (p *Pacer) limiter(method, path string) *rate.Limiter {
	if method != http.MethodGet && method != http.MethodHead {
		return nil
	}
	lower := strings.ToLower(path)
	if strings.Contains(lower, "/operations/") || strings.Contains(lower, "/copyresults/") {
		return nil
	}
	return p.list
}

// baseClient is the HTTP client docintel uses when given no transport.
func baseClient() *http.Client {
	var tr *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		tr = dt.Clone()
	} else {
		tr = &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	}
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{}
	}
	tr.TLSClientConfig.MinVersion = tls.VersionTLS12
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
