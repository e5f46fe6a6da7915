package didev

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

const maxBodyBytes = 1 << 20

// response is a complete answer, built under the state lock and written after it is released.
type response struct {
	status      int
	header      map[string]string // extra headers, names sent exactly as given
	body        []byte
	contentType string
	lengthed    bool // Content-Length; otherwise the body is flushed as chunked, like the service's JSON
	backend     bool // answered by the backend: x-ms-region and x-envoy-upstream-service-time [rec]
	noSecurity  bool // no Strict-Transport-Security / X-Content-Type-Options (the 401) [rec]
}

func (resp *response) set(name, value string) *response {
	if resp.header == nil {
		resp.header = map[string]string{}
	}
	resp.header[name] = value
	return resp
}

// call is one request being handled.
type call struct {
	s     *Server
	res   *resource
	st    *resState
	v     *apiVersion
	r     *http.Request
	body  []byte
	now   time.Time
	reqID string
	base  string // scheme://host the request was sent to
	p     []string
}

// mustJSON marshals v without HTML escaping (the service sends "&" in nextLink as is).
func mustJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Every value marshalled here is built from plain structs, maps and strings.
		panic("didev: marshal: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func jsonResp(status int, v any) *response {
	return &response{status: status, body: mustJSON(v), contentType: "application/json; charset=utf-8", backend: true}
}

// errResp is a v3/v4 error: application/json without charset [rec].
func errResp(e *httpError) *response {
	return &response{status: e.status, body: mustJSON(map[string]any{"error": e.err}), contentType: "application/json", backend: true}
}

// v2ErrResp is a v2.1 error: {"error":{"code","message"}} as application/json; charset=utf-8 [rec].
func v2ErrResp(status int, code, msg string) *response {
	return &response{status: status, body: mustJSON(map[string]any{"error": v2Error{Code: code, Message: msg}}),
		contentType: "application/json; charset=utf-8", lengthed: true, backend: true}
}

func emptyResp(status int) *response { return &response{status: status, lengthed: true, backend: true} }

func gatewayNotFound() *response {
	return &response{status: http.StatusNotFound, body: []byte(gatewayNotFoundBody), contentType: "application/json", lengthed: true}
}

func (r *resource) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	s := r.s
	started := time.Now()
	reqID := uuid.NewString()
	if isAdminPath(req.URL.Path) {
		s.serveAdmin(w, req, reqID)
		return
	}
	rt := match(req)
	cat := CategoryOther
	if rt != nil {
		cat = rt.category
	}
	ctr := r.stats[cat]
	ctr.requests.Add(1)
	status := 0
	defer func() {
		s.log.Debug("didev: request", "resource", r.opts.Name, "method", req.Method, "path", req.URL.Path,
			"status", status, "apim-request-id", reqID, "elapsed", time.Since(started))
	}()
	if rt == nil {
		status = r.write(w, reqID, gatewayNotFound())
		return
	}
	if resp := r.authenticate(req); resp != nil {
		status = r.write(w, reqID, resp)
		return
	}
	if s.outages.hit(r.opts.Name) {
		ctr.injected5xx.Add(1)
		status = r.write(w, reqID, outageResponse())
		return
	}
	f := s.dice.roll()
	if f.latency > 0 {
		t := time.NewTimer(f.latency)
		select {
		case <-t.C:
		case <-req.Context().Done():
			t.Stop()
			return
		}
	}
	switch {
	case f.reset:
		ctr.resets.Add(1)
		resetConnection(w)
		return
	case f.http429:
		ctr.throttled.Add(1)
		ctr.injected429.Add(1)
		status = r.write(w, reqID, throttled(rt))
		return
	case f.http500:
		ctr.injected5xx.Add(1)
		status = r.write(w, reqID, &response{status: http.StatusInternalServerError, body: []byte(internalErrorBody),
			contentType: "application/json", backend: true})
		return
	}
	if !s.opts.Rate.Off && !r.limiters[cat].AllowN(s.now(), 1) {
		ctr.throttled.Add(1)
		ctr.rateLimited.Add(1)
		status = r.write(w, reqID, throttled(rt))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			status = r.write(w, reqID, errResp(errParamLength("body", maxBodyBytes)))
		}
		return // the client went away
	}
	c := &call{s: s, res: r, v: rt.v, r: req, body: body, reqID: reqID, p: rt.params, base: baseURL(req, r)}
	s.mu.Lock()
	c.now = s.now()
	c.st = s.stateOf(r)
	resp := rt.h(c)
	var perr error
	if s.store != nil {
		perr = s.store.flush()
	}
	s.mu.Unlock()
	if perr != nil {
		// The change is not durable, so it is not acknowledged.
		s.log.Error("didev: persist", "err", perr)
		status = r.write(w, reqID, &response{status: http.StatusInternalServerError, body: []byte(internalErrorBody),
			contentType: "application/json", backend: true})
		return
	}
	if f.resetAfter {
		ctr.resets.Add(1)
		ctr.lostAnswers.Add(1)
		resetConnection(w)
		return
	}
	status = r.write(w, reqID, resp)
}

func throttled(rt *route) *response {
	ver := rt.v.name
	if rt.v.family == famV2 {
		ver = strings.TrimPrefix(ver, "v")
	}
	return &response{status: http.StatusTooManyRequests, body: []byte(throttledBody(rt.opName, ver, "S0")),
		contentType: "application/json", lengthed: true, header: map[string]string{"Retry-After": "1"}}
}

// authenticate checks Ocp-Apim-Subscription-Key, or a bearer token when AcceptBearer.
func (r *resource) authenticate(req *http.Request) *response {
	o := r.s.opts
	unauthorized := func(body string) *response {
		return &response{status: http.StatusUnauthorized, body: []byte(body), contentType: "application/json", lengthed: true, noSecurity: true}
	}
	if key, ok := req.Header["Ocp-Apim-Subscription-Key"]; ok {
		if o.Key != "" && len(key) == 1 && constantTimeEqual(key[0], o.Key) {
			return nil
		}
		return unauthorized(badKeyBody)
	}
	if authz := req.Header.Get("Authorization"); authz != "" {
		scheme, token, _ := strings.Cut(authz, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return unauthorized(badKeyBody)
		}
		if o.AcceptBearer {
			return nil
		}
		// A bearer token on a regional endpoint [rec]; didev endpoints are addresses, not subdomains.
		return &response{status: http.StatusBadRequest, body: []byte(bearerRefusedBody), contentType: "application/json", lengthed: true, backend: true}
	}
	return unauthorized(missingKeyBody)
}

// write sends resp with the headers every answer carries [rec] and returns the status.
func (r *resource) write(w http.ResponseWriter, reqID string, resp *response) int {
	h := w.Header()
	h["apim-request-id"] = []string{reqID}
	if !resp.noSecurity {
		h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains; preload")
		h.Set("X-Content-Type-Options", "nosniff")
	}
	if resp.backend {
		h["x-envoy-upstream-service-time"] = []string{"3"}
		h["x-ms-region"] = []string{r.regionDisplay()}
	}
	for k, v := range resp.header {
		h[k] = []string{v}
	}
	if resp.contentType != "" {
		h.Set("Content-Type", resp.contentType)
	}
	if resp.lengthed || len(resp.body) == 0 {
		h.Set("Content-Length", strconv.Itoa(len(resp.body)))
	}
	w.WriteHeader(resp.status)
	if len(resp.body) > 0 {
		_, _ = w.Write(resp.body)
		if !resp.lengthed {
			if fl, ok := w.(http.Flusher); ok {
				fl.Flush()
			}
		}
	}
	return resp.status
}

// resetConnection drops the TCP connection with a reset instead of answering.
func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// baseURL is scheme://host as the client addressed this resource.
func baseURL(req *http.Request, r *resource) string {
	scheme := "http"
	if req.TLS != nil {
		scheme = "https"
	}
	host := req.Host
	if host == "" || strings.ContainsAny(host, "/?#@ ") {
		return r.endpoint
	}
	return scheme + "://" + host
}

// constantTimeEqual compares secrets without leaking their length or prefix through timing.
func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(tokenHash(a)), []byte(tokenHash(b))) == 1
}

// decodeBody decodes a JSON object body into v; an empty body decodes as {}.
func (c *call) decodeBody(v any) *httpError {
	b := c.body
	if len(strings.TrimSpace(string(b))) == 0 {
		b = []byte("{}")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errParamInvalid("body", "the request body must be a JSON object with the documented fields.")
	}
	return nil
}
