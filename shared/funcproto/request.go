package funcproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultMaxBytes is a sensible limit for DecodeRequest: Service Bus standard-tier messages
// are at most 256 KiB and dimirror's requests are far smaller, so 4 MiB leaves room for the
// double encoding and the host's metadata while bounding memory per invocation.
const DefaultMaxBytes int64 = 4 << 20

var (
	// ErrTooLarge reports a request body over DecodeRequest's limit.
	ErrTooLarge = errors.New("funcproto: request body too large")
	// ErrNoBinding reports that Data has no entry for the requested binding name.
	ErrNoBinding = errors.New("funcproto: binding not found")
)

// Request is the envelope the host POSTs to /{FunctionName}.
type Request struct {
	// Data holds the trigger and input bindings keyed by binding name.
	Data map[string]json.RawMessage
	// Metadata holds the trigger's binding data; never nil after DecodeRequest.
	Metadata map[string]json.RawMessage
}

// DecodeRequest reads at most limit bytes from r and decodes the host's envelope. Data must
// be a JSON object; Metadata may be absent or null.
func DecodeRequest(r io.Reader, limit int64) (*Request, error) {
	if r == nil {
		return nil, errors.New("funcproto: nil request body")
	}
	if limit <= 0 {
		return nil, fmt.Errorf("funcproto: size limit must be positive, got %d", limit)
	}
	n := limit
	if n < math.MaxInt64 {
		n++ // read one byte more than allowed to detect an oversized body
	}
	body, err := io.ReadAll(io.LimitReader(r, n))
	if err != nil {
		return nil, fmt.Errorf("funcproto: reading request body: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return parseRequest(body)
}

func parseRequest(body []byte) (*Request, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errors.New("funcproto: empty request body, want {\"Data\":{...},\"Metadata\":{...}}")
	}
	if !json.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v) // only for the position in the syntax error
		return nil, fmt.Errorf("funcproto: request body is not valid JSON: %v", err)
	}
	if k := kindOf(body); k != "object" {
		return nil, fmt.Errorf("funcproto: request body must be a JSON object, got %s", k)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, fmt.Errorf("funcproto: decoding request body: %v", err)
	}
	req := &Request{}
	data, ok := top["Data"]
	if !ok {
		return nil, errors.New("funcproto: request has no \"Data\" object")
	}
	var err error
	if req.Data, err = objectField("Data", data, false); err != nil {
		return nil, err
	}
	if req.Metadata, err = objectField("Metadata", top["Metadata"], true); err != nil {
		return nil, err
	}
	return req, nil
}

// objectField decodes raw as a JSON object; absent or null is allowed only when optional.
func objectField(name string, raw json.RawMessage, optional bool) (map[string]json.RawMessage, error) {
	k := kindOf(raw)
	if k == "" || k == "null" {
		if optional {
			return map[string]json.RawMessage{}, nil
		}
		return nil, fmt.Errorf("funcproto: %s is null, want a JSON object", name)
	}
	if k != "object" {
		return nil, fmt.Errorf("funcproto: %s must be a JSON object, got %s", name, k)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("funcproto: decoding %s: %v", name, err)
	}
	return m, nil
}

// binding returns Data[name], which must be present and not null.
func (r *Request) binding(name string) (json.RawMessage, error) {
	if r == nil {
		return nil, errors.New("funcproto: nil request")
	}
	raw, ok := r.Data[name]
	if !ok {
		names := make([]string, 0, len(r.Data))
		for k := range r.Data {
			names = append(names, k)
		}
		slices.Sort(names)
		return nil, fmt.Errorf("%w: Data has no %q (present: %s)", ErrNoBinding, name, listOrNone(names))
	}
	if k := kindOf(raw); k == "null" || k == "" {
		return nil, fmt.Errorf("funcproto: binding %q is null", name)
	}
	return raw, nil
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// UnwrapString undoes one level of the host's encoding. A JSON string whose content is itself
// a JSON string literal (the host's SerializeObject of a .NET string) returns that literal's
// value; any other JSON string returns its content unchanged, so values that were not
// double-encoded decode too. Numbers and booleans give their JSON text ("1", "true").
// Objects, arrays and null are errors.
func UnwrapString(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	switch k := kindOf(raw); k {
	case "string":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("funcproto: invalid JSON string: %v", err)
		}
		if inner, ok := unquote(s); ok {
			return inner, nil
		}
		return s, nil
	case "number", "boolean":
		if !json.Valid(raw) {
			return "", fmt.Errorf("funcproto: invalid JSON %s", k)
		}
		return string(raw), nil
	case "":
		return "", errors.New("funcproto: empty value, want a string")
	default:
		return "", fmt.Errorf("funcproto: want a string, got %s", k)
	}
}

// unquote decodes s when it is exactly one JSON string literal.
func unquote(s string) (string, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", false
	}
	var inner string
	if err := json.Unmarshal([]byte(s), &inner); err != nil {
		return "", false
	}
	return inner, true
}

// kindOf names the JSON type of raw from its first byte; "" for empty input.
func kindOf(raw json.RawMessage) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return "number"
	default:
		return "invalid JSON"
	}
}

// isNull reports whether raw is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	k := kindOf(raw)
	return k == "" || k == "null"
}

// parseTime reads a (possibly double-encoded) .NET DateTime or DateTimeOffset. Zone-less
// values are DateTime in UTC: the host writes *Utc fields and timer DateTimes that way.
func parseTime(raw json.RawMessage) (time.Time, error) {
	s, err := UnwrapString(raw)
	if err != nil {
		return time.Time{}, err
	}
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02T15:04:05.999999999", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("funcproto: %s is not an ISO 8601 date-time", short(s))
}

// parseInt reads a (possibly double-encoded) .NET int or long.
func parseInt(raw json.RawMessage, bits int) (int64, error) {
	s, err := UnwrapString(raw)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, bits)
	if err != nil {
		return 0, fmt.Errorf("funcproto: %s is not a %d-bit integer", short(s), bits)
	}
	return n, nil
}

// short quotes s for an error message, truncated so a hostile value cannot flood logs. Only
// used for values that are never secret (timestamps, counters).
func short(s string) string {
	const max = 40
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}
