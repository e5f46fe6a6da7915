package funcproto

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// HTTPRequest is an HTTP trigger's request as the host forwards it (not forwarded raw).
type HTTPRequest struct {
	Method string
	// URL is the caller's URL as the host saw it, including the query string.
	URL *url.URL
	// Query is parsed from URL, which keeps repeated keys apart; the host's Query object
	// joins them with commas. Keys only in the Query object are kept as single values.
	Query  url.Values
	Header http.Header
	// Params holds the route parameters; optional parameters that were not matched are absent.
	Params map[string]string
	// Body is nil when the request had no body. The host base64-encodes octet-stream and
	// multipart bodies; Body is always the decoded bytes.
	Body []byte
}

// wireHTTP is Data.<name> of an HTTP trigger; every field is decoded by hand for clear errors.
type wireHTTP struct {
	URL     json.RawMessage `json:"Url"`
	Method  json.RawMessage `json:"Method"`
	Query   json.RawMessage `json:"Query"`
	Headers json.RawMessage `json:"Headers"`
	Params  json.RawMessage `json:"Params"`
	Body    json.RawMessage `json:"Body"`
}

// HTTP decodes the HTTP trigger binding called name.
func (r *Request) HTTP(name string) (*HTTPRequest, error) {
	raw, err := r.binding(name)
	if err != nil {
		return nil, err
	}
	if k := kindOf(raw); k != "object" {
		return nil, fmt.Errorf("funcproto: HTTP binding %q must be a JSON object, got %s", name, k)
	}
	var w wireHTTP
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, fmt.Errorf("funcproto: decoding HTTP binding %q: %v", name, err)
	}
	fail := func(field string, err error) error {
		return fmt.Errorf("funcproto: HTTP binding %q: %s: %w", name, field, err)
	}

	out := &HTTPRequest{}
	if out.Method, err = plainString(w.Method); err != nil {
		return nil, fail("Method", err)
	}
	if !validMethod(out.Method) {
		return nil, fail("Method", fmt.Errorf("%s is not an HTTP method", short(out.Method)))
	}
	rawURL, err := plainString(w.URL)
	if err != nil {
		return nil, fail("Url", err)
	}
	if out.URL, err = url.Parse(rawURL); err != nil {
		return nil, fail("Url", errors.New("not a valid URL")) // url.Error would echo the URL
	}
	if !out.URL.IsAbs() || out.URL.Host == "" {
		return nil, fail("Url", errors.New("not an absolute URL"))
	}
	if out.Query, err = decodeQuery(w.Query, out.URL); err != nil {
		return nil, fail("Query", err)
	}
	if out.Header, err = decodeHeaders(w.Headers); err != nil {
		return nil, fail("Headers", err)
	}
	if out.Params, err = decodeParams(w.Params); err != nil {
		return nil, fail("Params", err)
	}
	if out.Body, err = decodeHTTPBody(w.Body, out.Header.Get("Content-Type")); err != nil {
		return nil, fail("Body", err)
	}
	return out, nil
}

// plainString decodes a required JSON string that the host does not double-encode.
func plainString(raw json.RawMessage) (string, error) {
	switch k := kindOf(raw); k {
	case "":
		return "", errors.New("missing")
	case "string":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return s, nil
	default:
		return "", fmt.Errorf("want a string, got %s", k)
	}
}

// validMethod reports whether m is a non-empty RFC 9110 token.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range []byte(m) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// decodeQuery merges the host's Query object (or its older string form "{}") with the query
// string of u, whose values win because they keep repeated keys apart.
func decodeQuery(raw json.RawMessage, u *url.URL) (url.Values, error) {
	q := url.Values{}
	if kindOf(raw) == "string" {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			raw = nil
		} else if k := kindOf(json.RawMessage(s)); k != "object" || !json.Valid([]byte(s)) {
			return nil, errors.New("string form must contain a JSON object")
		} else {
			raw = json.RawMessage(s)
		}
	}
	fields, err := stringLists(raw)
	if err != nil {
		return nil, err
	}
	for k, vs := range fields {
		if len(vs) > 0 {
			q[k] = vs
		}
	}
	fromURL, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, errors.New("Url has an invalid query string")
	}
	for k, vs := range fromURL {
		q[k] = vs
	}
	return q, nil
}

// decodeHeaders reads {name: [values]} (a single string value is accepted too).
func decodeHeaders(raw json.RawMessage) (http.Header, error) {
	fields, err := stringLists(raw)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	for k, vs := range fields {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	return h, nil
}

// stringLists reads an optional object whose values are strings, string arrays or null.
func stringLists(raw json.RawMessage) (map[string][]string, error) {
	if isNull(raw) {
		return nil, nil
	}
	if k := kindOf(raw); k != "object" {
		return nil, fmt.Errorf("want a JSON object, got %s", k)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(m))
	for k, v := range m {
		switch kind := kindOf(v); kind {
		case "null":
		case "string":
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, err
			}
			out[k] = append(out[k], s)
		case "array":
			var ss []string
			if err := json.Unmarshal(v, &ss); err != nil {
				return nil, fmt.Errorf("%q: want an array of strings", k)
			}
			out[k] = append(out[k], ss...)
		default:
			return nil, fmt.Errorf("%q: want a string or an array of strings, got %s", k, kind)
		}
	}
	return out, nil
}

// decodeParams reads the route values; numbers and booleans keep their JSON text.
func decodeParams(raw json.RawMessage) (map[string]string, error) {
	out := map[string]string{}
	if isNull(raw) {
		return out, nil
	}
	if k := kindOf(raw); k != "object" {
		return nil, fmt.Errorf("want a JSON object, got %s", k)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	for k, v := range m {
		switch kind := kindOf(v); kind {
		case "null":
		case "string":
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, err
			}
			out[k] = s
		case "number", "boolean":
			out[k] = string(v)
		default:
			return nil, fmt.Errorf("%q: want a string, got %s", k, kind)
		}
	}
	return out, nil
}

// decodeHTTPBody returns the body bytes. The host sends byte[] (base64 in JSON) when the
// media type is application/octet-stream or contains "multipart/", a string otherwise.
func decodeHTTPBody(raw json.RawMessage, contentType string) ([]byte, error) {
	if isNull(raw) {
		return nil, nil
	}
	s, err := plainString(raw)
	if err != nil {
		return nil, err
	}
	if !binaryMediaType(contentType) {
		return []byte(s), nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("not valid base64, which the host uses for octet-stream and multipart bodies")
	}
	return b, nil
}

func binaryMediaType(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/octet-stream" || strings.Contains(mt, "multipart/")
}
