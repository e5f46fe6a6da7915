package docintel

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
)

// Scope is the Entra ID scope of Document Intelligence tokens.
const Scope = "https://cognitiveservices.azure.com/.default"

const (
	moduleName         = "github.com/dimirror/dimirror/shared/docintel"
	moduleVersion      = "v0.1.0"
	applicationID      = "dimirror"
	defaultCallTimeout = 30 * time.Second
	defaultMaxRetries  = 4
	keyHeader          = "Ocp-Apim-Subscription-Key"
	degradeHeader      = "x-ms-forms-copy-degrade"
)

// Options configures a Client. Key and Credential are mutually exclusive; one is required.
type Options struct {
	APIVersion APIVersion             // "" = V2024_11_30
	Key        string                 // Ocp-Apim-Subscription-Key; or
	Credential azcore.TokenCredential // bearer, scope https://cognitiveservices.azure.com/.default
	// v2.1 only, for a TARGET resource: the values the source needs in the copy body.
	ResourceID  string              // /subscriptions/.../accounts/x
	Region      string              // ARM location, lowercase (westus2)
	Degrade     bool                // send x-ms-forms-copy-degrade: true on copyTo from this (source) resource
	CallTimeout time.Duration       // deadline per call incl. retries (or ctx's, when earlier); default 30s
	Retry       policy.RetryOptions // azcore retry; defaults: 4 retries, honours Retry-After on 429/5xx
	Transport   policy.Transporter  // nil = NewHTTPClient() (per-try timeouts, no redirects); wrappers should wrap that
	Logger      *slog.Logger        // optional, for request-level debug logs (never secrets)
}

// String describes the options without the key.
func (o Options) String() string {
	auth := "none"
	switch {
	case o.Key != "" && o.Credential != nil:
		auth = "key+credential"
	case o.Key != "":
		auth = "key " + redacted
	case o.Credential != nil:
		auth = fmt.Sprintf("credential %T", o.Credential)
	}
	return fmt.Sprintf("docintel.Options{APIVersion:%q Auth:%s ResourceID:%q Region:%q Degrade:%t CallTimeout:%s}",
		string(o.APIVersion), auth, o.ResourceID, o.Region, o.Degrade, o.CallTimeout)
}

// GoString is String: %#v must not print the key either.
func (o Options) GoString() string { return o.String() }

// Format prints String for every verb, so no verb reaches the Key field.
func (o Options) Format(f fmt.State, verb rune) { formatRedacted(f, verb, o.String()) }

// LogValue keeps the key out of slog output.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("apiVersion", string(o.APIVersion)),
		slog.Bool("key", o.Key != ""),
		slog.Bool("credential", o.Credential != nil),
		slog.String("resourceId", o.ResourceID),
		slog.String("region", o.Region),
	)
}

func formatRedacted(f fmt.State, verb rune, s string) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", s)
		return
	}
	_, _ = io.WriteString(f, s)
}

// Client calls the Copy API of one Document Intelligence resource with one api-version. It is safe
// for concurrent use.
type Client struct {
	endpoint    string // as configured, without trailing slash
	origin      *url.URL
	base        string // endpoint + version prefix
	version     APIVersion
	raw         string // api-version string on the wire (differs from version only in tests)
	pl          runtime.Pipeline
	callTimeout time.Duration
	degrade     bool
	spendRetry  policy.RetryOptions // the retry of a call that spends something (copyTo)
	resourceID  string
	region      string
	logger      *slog.Logger
	// expiryWarned is set once an authorization without a usable expiry has been warned about
	// (a pointer: a Client value may be copied, e.g. printed).
	expiryWarned *atomic.Bool
	// known returns the credential secrets to scrub. A closure rather than a field so that no
	// printing of a Client value (fmt reads unexported fields raw) can reach the key.
	known func() []string
}

// New validates endpoint (an absolute http or https URL; plain http only for loopback hosts, since
// credentials would travel in clear text), the api-version and the credential (Key XOR
// Credential), and builds the azcore pipeline: retry, auth, telemetry ("dimirror" in User-Agent).
func New(endpoint string, opts Options) (*Client, error) {
	return newClient(endpoint, opts, "")
}

// newClient lets tests put a preview api-version string on the wire while routing like the GA
// version opts.APIVersion names.
func newClient(endpoint string, opts Options, rawVersion string) (*Client, error) {
	u, err := parseEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	v := opts.APIVersion
	if v == "" {
		v = V2024_11_30
	}
	if !v.valid() {
		return nil, fmt.Errorf("%w: api-version %q is not supported (use one of %s)", ErrInvalidArgument, string(v), versionList())
	}
	if rawVersion == "" {
		rawVersion = string(v)
	}
	switch {
	case opts.Key != "" && opts.Credential != nil:
		return nil, fmt.Errorf("%w: set either Key or Credential, not both", ErrInvalidArgument)
	case opts.Key == "" && opts.Credential == nil:
		return nil, fmt.Errorf("%w: Key or Credential is required", ErrInvalidArgument)
	case opts.Key != "" && !validKey(opts.Key):
		return nil, fmt.Errorf("%w: Key holds whitespace or control characters", ErrInvalidArgument)
	}
	if opts.CallTimeout < 0 {
		return nil, fmt.Errorf("%w: CallTimeout must not be negative", ErrInvalidArgument)
	}
	if opts.CallTimeout == 0 {
		opts.CallTimeout = defaultCallTimeout
	}
	endpoint = strings.TrimRight(u.String(), "/")
	c := &Client{
		endpoint:    endpoint,
		origin:      u,
		base:        endpoint + v.pathPrefix(rawVersion),
		version:     v,
		raw:         rawVersion,
		callTimeout: opts.CallTimeout,
		degrade:     opts.Degrade,
		resourceID:  strings.TrimSpace(opts.ResourceID),
		region:      strings.TrimSpace(opts.Region),
		logger:      opts.Logger,

		expiryWarned: new(atomic.Bool),
	}
	allowHTTP := u.Scheme == "http" // parseEndpoint only lets loopback hosts through on http

	var authPolicy policy.Policy
	if opts.Credential != nil {
		tokens := &tokenRecorder{cred: opts.Credential}
		c.known = tokens.tokens
		authPolicy = runtime.NewBearerTokenPolicy(tokens, []string{Scope}, &policy.BearerTokenOptions{
			InsecureAllowCredentialWithHTTP: allowHTTP,
		})
	} else {
		key := opts.Key
		c.known = func() []string { return []string{key} }
		authPolicy = runtime.NewKeyCredentialPolicy(azcore.NewKeyCredential(key), keyHeader, &runtime.KeyCredentialPolicyOptions{
			InsecureAllowCredentialWithHTTP: allowHTTP,
		})
	}
	retry := opts.Retry
	if retry.MaxRetries == 0 {
		retry.MaxRetries = defaultMaxRetries
	}
	c.spendRetry = retry
	c.spendRetry.ShouldRetry = func(resp *http.Response, _ error) bool {
		return resp != nil && resp.StatusCode == http.StatusTooManyRequests
	}
	transport := opts.Transport
	if transport == nil {
		transport = defaultHTTPClient()
	}
	perRetry := []policy.Policy{authPolicy}
	if c.logger != nil {
		perRetry = append(perRetry, logPolicy{c})
	}
	c.pl = runtime.NewPipeline(moduleName, moduleVersion, runtime.PipelineOptions{
		AllowedHeaders:         []string{"apim-request-id", "Operation-Location", "Location", "ms-azure-ai-errorcode", "x-ms-cs-error-code", "x-ms-region", "Retry-After"},
		AllowedQueryParameters: []string{"api-version", "op"},
		PerRetry:               perRetry,
	}, &policy.ClientOptions{
		Retry:     retry,
		Telemetry: policy.TelemetryOptions{ApplicationID: applicationID},
		Transport: transport,
	})
	return c, nil
}

func parseEndpoint(endpoint string) (*url.URL, error) {
	endpoint = strings.TrimSpace(endpoint)
	if endpoint == "" {
		return nil, fmt.Errorf("%w: endpoint is empty", ErrInvalidArgument)
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("%w: endpoint is not a URL", ErrInvalidArgument)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("%w: endpoint %q must be an absolute http(s) URL", ErrInvalidArgument, u.Redacted())
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("%w: endpoint %q has no host", ErrInvalidArgument, u.Redacted())
	case u.User != nil:
		return nil, fmt.Errorf("%w: endpoint must not carry user info", ErrInvalidArgument)
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, fmt.Errorf("%w: endpoint %q must not have a query or fragment", ErrInvalidArgument, u.Redacted())
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return nil, fmt.Errorf("%w: endpoint %q uses plain http on a non-loopback host; credentials would travel in clear text", ErrInvalidArgument, u.Redacted())
	}
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validKey(k string) bool {
	for _, r := range k {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// Timeouts of the transport NewHTTPClient builds. They bound one connection and one try, below
// the call's deadline (Options.CallTimeout, which covers the retries): a try that hangs ends and
// azcore can retry it within the call's time, and a transport used without a deadline on the
// request still cannot wait forever.
const (
	DialTimeout           = 10 * time.Second // TCP connect
	TLSHandshakeTimeout   = 10 * time.Second
	ResponseHeaderTimeout = 30 * time.Second // request written → status line and headers read
)

type transportTimeouts struct {
	dial, tlsHandshake, responseHeader time.Duration
}

// NewHTTPClient is the HTTP client a Client uses when Options.Transport is nil: TLS 1.2 or later,
// redirects not followed, and the dial, TLS-handshake and response-header timeouts above. A
// transport that wraps another one (pacing, say) should wrap this.
func NewHTTPClient() *http.Client { return defaultHTTPClient() }

func defaultHTTPClient() *http.Client {
	return newHTTPClient(transportTimeouts{dial: DialTimeout, tlsHandshake: TLSHandshakeTimeout, responseHeader: ResponseHeaderTimeout})
}

// newHTTPClient does not follow redirects: net/http would forward the subscription-key header to
// whatever host a redirect names. The service never redirects, so a 3xx becomes an *Error.
func newHTTPClient(to transportTimeouts) *http.Client {
	var tr *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		tr = dt.Clone()
	} else { // a program replaced the default transport: build one with the same defaults
		tr = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
	}
	tr.DialContext = (&net.Dialer{Timeout: to.dial, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = to.tlsHandshake
	tr.ResponseHeaderTimeout = to.responseHeader
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{}
	}
	tr.TLSClientConfig.MinVersion = tls.VersionTLS12
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// warnLogger is where the client reports what an operator should know (it never writes secrets):
// Options.Logger, or slog's default when none was given, so a warning is not lost.
func (c *Client) warnLogger() *slog.Logger {
	if c.logger != nil {
		return c.logger
	}
	return slog.Default()
}

// Endpoint is the resource endpoint the client was built with, without a trailing slash.
func (c *Client) Endpoint() string { return c.endpoint }

// APIVersion is the api-version the client speaks.
func (c *Client) APIVersion() APIVersion { return c.version }

// String names the endpoint and version; the client's credential never shows.
func (c *Client) String() string {
	return fmt.Sprintf("docintel.Client{Endpoint:%s APIVersion:%s}", c.endpoint, c.raw)
}

// GoString is String.
func (c *Client) GoString() string { return c.String() }

// Format prints String for every verb.
func (c *Client) Format(f fmt.State, verb rune) { formatRedacted(f, verb, c.String()) }

// LogValue keeps the credential out of slog output.
func (c *Client) LogValue() slog.Value {
	return slog.GroupValue(slog.String("endpoint", c.endpoint), slog.String("apiVersion", c.raw))
}

// tokenRecorder remembers the bearer tokens it hands out so the client can scrub them from
// anything the service echoes back.
type tokenRecorder struct {
	cred azcore.TokenCredential
	mu   sync.Mutex
	seen []string // newest last, bounded
}

func (r *tokenRecorder) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tk, err := r.cred.GetToken(ctx, o)
	if err == nil && tk.Token != "" {
		r.mu.Lock()
		if n := len(r.seen); n == 0 || r.seen[n-1] != tk.Token {
			r.seen = append(r.seen, tk.Token)
			if len(r.seen) > 4 {
				r.seen = r.seen[len(r.seen)-4:]
			}
		}
		r.mu.Unlock()
	}
	return tk, err
}

func (r *tokenRecorder) tokens() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// secrets is everything the client knows must never be printed, plus extra (a copy access token).
func (c *Client) secrets(extra ...string) []string {
	out := c.known()
	for _, s := range extra {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// call is one request. url is absolute and already checked to be below the endpoint (host and path).
type call struct {
	op      string // for messages: "authorizeCopy", "getModel", ...
	method  string
	url     string
	body    []byte // nil: no body
	header  map[string]string
	noEcho  bool     // never copy the answer's raw text into an error
	secrets []string // extra secrets to scrub (the copy access token)
	// spends marks a call the service acts on once and must not see twice (copyTo spends its
	// authorization): it is retried only after a 429, which the service refused unread. Any
	// other failure may hide an accepted request, so the caller must find out before sending
	// it again.
	spends bool
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// withDeadline bounds a call by the client's CallTimeout, also when the caller's context has a
// deadline of its own: the call ends at the earlier of the two. A caller hands down its whole
// remaining time (a claim lease, a sweep); one hung call must not use it all up.
func (c *Client) withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithTimeout(ctx, c.callTimeout)
}

// do sends cl through the pipeline and returns the 2xx answer, or an *Error for any other status,
// or a transport error.
func (c *Client) do(ctx context.Context, cl call) (*response, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	callCtx, cancel := c.withDeadline(ctx)
	defer cancel()
	if cl.spends {
		callCtx = policy.WithRetryOptions(callCtx, c.spendRetry)
	}
	req, err := runtime.NewRequest(callCtx, cl.method, cl.url)
	if err != nil {
		return nil, fmt.Errorf("docintel: %s: building request: %w", cl.op, err)
	}
	req.Raw().Header.Set("Accept", "application/json")
	for k, v := range cl.header {
		req.Raw().Header.Set(k, v)
	}
	if cl.body != nil {
		if err := req.SetBody(streaming.NopCloser(bytes.NewReader(cl.body)), "application/json"); err != nil {
			return nil, fmt.Errorf("docintel: %s: %w", cl.op, err)
		}
	}
	resp, err := c.pl.Do(req)
	if err != nil {
		return nil, c.transportFailure(ctx, cl, err)
	}
	body, err := runtime.Payload(resp)
	if err != nil {
		return nil, c.transportFailure(ctx, cl, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := parseError(resp.StatusCode, resp.Header, body, !cl.noEcho, c.secrets(cl.secrets...))
		return nil, e
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// transportFailure wraps a call that got no HTTP answer. It is transient unless the caller's own
// context ended it (our CallTimeout, a per-try timeout, or the network are worth another try).
func (c *Client) transportFailure(callerCtx context.Context, cl call, err error) error {
	transient := callerCtx.Err() == nil
	var nre interface{ NonRetriable() }
	if errors.As(err, &nre) && !errors.Is(err, context.DeadlineExceeded) {
		// azcore marks credential and https-check failures non-retriable
		transient = false
	}
	msg := fmt.Sprintf("docintel: %s %s: %s", cl.op, safeURL(cl.url), redact(err.Error(), c.secrets(cl.secrets...)))
	return &transportError{msg: msg, err: err, transient: transient}
}

// safeURL is a URL for messages and logs: scheme, host, path and only the api-version / op query.
func safeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	q := url.Values{}
	for _, k := range []string{"api-version", "op"} {
		if v := u.Query().Get(k); v != "" {
			q.Set(k, v)
		}
	}
	out := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawQuery: q.Encode()}
	return out.String()
}

// logPolicy writes one debug line per try: never headers or bodies.
type logPolicy struct{ c *Client }

func (p logPolicy) Do(req *policy.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := req.Next()
	ctx := req.Raw().Context()
	attrs := []slog.Attr{
		slog.String("method", req.Raw().Method),
		slog.String("url", safeURL(req.Raw().URL.String())),
		slog.Duration("elapsed", time.Since(start)),
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", redact(err.Error(), p.c.secrets())))
		p.c.logger.LogAttrs(ctx, slog.LevelDebug, "docintel request failed", attrs...)
		return resp, err
	}
	attrs = append(attrs, slog.Int("status", resp.StatusCode), slog.String("apimRequestId", resp.Header.Get("apim-request-id")))
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		attrs = append(attrs, slog.String("retryAfter", ra))
	}
	p.c.logger.LogAttrs(ctx, slog.LevelDebug, "docintel request", attrs...)
	return resp, err
}

// url builds an absolute URL under the version's prefix; v3/v4 get the api-version query.
func (c *Client) url(path string, query url.Values) string {
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	if c.version != V2_1 {
		q.Set("api-version", c.raw)
	}
	s := c.base + path
	if enc := q.Encode(); enc != "" {
		s += "?" + enc
	}
	return s
}

// checkOrigin refuses URLs the service handed us (Operation-Location, nextLink) that point away from
// the endpoint: another scheme, host or port, or a path outside the endpoint's own path (an
// endpoint https://host/prefix must not accept https://host/other/...: behind a shared gateway
// that is another backend). Following them would send the credential there.
func (c *Client) checkOrigin(u *url.URL, what string) error {
	if !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("%w: %s %q is not an absolute URL", ErrInvalidArgument, what, safeURL(u.String()))
	}
	if !strings.EqualFold(u.Scheme, c.origin.Scheme) || !sameHost(u, c.origin) {
		return fmt.Errorf("%w: %s %q is not on the endpoint's host %s; refusing to send credentials there",
			ErrInvalidArgument, what, safeURL(u.String()), c.origin.Host)
	}
	if u.User != nil {
		return fmt.Errorf("%w: %s carries user info", ErrInvalidArgument, what)
	}
	if !c.underEndpointPath(u) {
		return fmt.Errorf("%w: %s %q is outside the endpoint's path %s; refusing to send credentials there",
			ErrInvalidArgument, what, safeURL(u.String()), c.origin.Path)
	}
	return nil
}

// underEndpointPath reports whether u's path lies below the endpoint's path. It reads the
// decoded path, so an encoded slash or dot counts as the separator or dot it may become behind a
// proxy, and it refuses dot segments and backslashes outright (the service sends neither, and a
// server may resolve them to somewhere outside the prefix). The comparison is case-sensitive:
// /DI is not /di on a gateway that routes by path.
func (c *Client) underEndpointPath(u *url.URL) bool {
	p := u.Path
	if strings.Contains(p, `\`) {
		return false
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	prefix := c.origin.Path // parseEndpoint trimmed its trailing slashes
	return prefix == "" || p == prefix || strings.HasPrefix(p, prefix+"/")
}

// resolve reads a URL reference the service sent relative to the endpoint taken as a directory,
// so a path-relative reference stays below the endpoint's path.
func (c *Client) resolve(ref *url.URL) *url.URL {
	base := *c.origin
	base.Path += "/"
	return base.ResolveReference(ref)
}

func sameHost(a, b *url.URL) bool {
	return strings.EqualFold(a.Hostname(), b.Hostname()) && effectivePort(a) == effectivePort(b)
}

func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "http") {
		return "80"
	}
	return "443"
}
