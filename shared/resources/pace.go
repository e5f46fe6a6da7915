package resources

import (
	"crypto/tls"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"golang.org/x/time/rate"
)

// Pacer spaces the calls to one resource so they stay under its rate limits, which the
// service counts per resource and per kind of call (S0: management 5 per second, lists 10,
// operation GETs 50): a sweep over thousands of models, or a queue of copies waiting to start,
// waits client-side instead of drawing 429s and Retry-After storms.
//   - management: authorizeCopy, copyTo, delete, build (every call that is not a GET);
//   - list: lists, /info and reads of one model or classifier;
//   - operation: reads of one operation (GET .../operations/{id}, v2.1 copy results).
//
// Share one Pacer between every client of the same resource: the webhook's authorizations and
// the copy starter's copyTo calls draw on one management budget.
type Pacer struct {
	list, management, operation *rate.Limiter
}

// Rates are requests per second by kind of call; zero or less paces nothing of that kind.
type Rates struct {
	List, Management, Operation float64
}

// NewPacer paces calls at the given rates. A burst of one: calls leave evenly spaced, never in a
// clump that a gateway counting per second would refuse.
func NewPacer(r Rates) *Pacer {
	return &Pacer{list: limiter(r.List), management: limiter(r.Management), operation: limiter(r.Operation)}
}

func limiter(perSecond float64) *rate.Limiter {
	if perSecond <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(perSecond), 1)
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
		return p.management
	}
	lower := strings.ToLower(path)
	if strings.Contains(lower, "/operations/") || strings.Contains(lower, "/copyresults/") {
		return p.operation
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
