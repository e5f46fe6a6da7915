package docintel

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// AuthorizeRequest names the model or classifier to create on the target. TargetID, Description and
// Tags are ignored for v2.1, where the service picks a UUID and copies name and tags itself.
type AuthorizeRequest struct {
	TargetID    string
	Description string
	Tags        map[string]string
}

// Authorization is what authorizeCopy returned. Body is the exact JSON to POST to copyTo (for v2.1
// the client wraps the service's copyAuthorization verbatim in
// {targetResourceId,targetResourceRegion,copyAuthorization}). String/GoString/Format/LogValue
// redact; Body is the only field that holds the accessToken. json.Marshal keeps Body: treat a
// marshalled Authorization like the secret it is.
type Authorization struct {
	Kind             Kind
	APIVersion       APIVersion
	TargetID         string
	TargetResourceID string
	TargetRegion     string
	TargetLocation   string // targetModelLocation / targetClassifierLocation / v2.1 Location header
	ExpiresAt        time.Time
	// ExpiryAssumed says the answer carried no usable expiry (missing or unparsable), so ExpiresAt
	// is the documented lifetime (AuthorizationLifetime) counted from before the request was sent.
	ExpiryAssumed bool
	Body          json.RawMessage
}

// String describes the authorization without its Body.
func (a Authorization) String() string {
	exp := "unknown"
	if !a.ExpiresAt.IsZero() {
		exp = a.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("docintel.Authorization{Kind:%s APIVersion:%s TargetID:%s TargetResourceID:%s TargetRegion:%s TargetLocation:%s ExpiresAt:%s Body:%s}",
		a.Kind, a.APIVersion, a.TargetID, a.TargetResourceID, a.TargetRegion, a.TargetLocation, exp, redacted)
}

// GoString is String: %#v must not print Body either.
func (a Authorization) GoString() string { return a.String() }

// Format prints String for every verb (%v, %+v, %#v, %s, %q, %x ...).
func (a Authorization) Format(f fmt.State, verb rune) { formatRedacted(f, verb, a.String()) }

// LogValue is what slog prints: every field but Body.
func (a Authorization) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("kind", string(a.Kind)),
		slog.String("apiVersion", string(a.APIVersion)),
		slog.String("targetId", a.TargetID),
		slog.String("targetResourceId", a.TargetResourceID),
		slog.String("targetRegion", a.TargetRegion),
		slog.String("targetLocation", a.TargetLocation),
		slog.Time("expiresAt", a.ExpiresAt),
		slog.Bool("expiryAssumed", a.ExpiryAssumed),
		slog.String("body", redacted),
	)
}

var (
	// modelID is the v3/v4 id rule for models and classifiers.
	modelID = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._~-]{1,63}$`)
	uuidRE  = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	// v2.1 copy body rules (swagger).
	armAccountID = regexp.MustCompile(`^/subscriptions/[^/]*/resourceGroups/[^/]*/providers/Microsoft.CognitiveServices/accounts/[^/]*$`)
	armRegion    = regexp.MustCompile(`^[a-z0-9]{1,24}$`)
)

const maxDescription = 4096

// checkID validates a model or classifier id before it goes into a path.
func (c *Client) checkID(kind Kind, id string) error {
	if id == "" {
		return fmt.Errorf("%w: %s id is empty", ErrInvalidArgument, kind)
	}
	if c.version == V2_1 {
		if !uuidRE.MatchString(id) {
			return fmt.Errorf("%w: v2.1 model id %q is not a UUID", ErrInvalidArgument, truncate(id, 80))
		}
		return nil
	}
	if !modelID.MatchString(id) {
		return fmt.Errorf("%w: %s id %q must match %s", ErrInvalidArgument, kind, truncate(id, 80), modelID)
	}
	return nil
}

func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// wire shapes of authorizeCopy answers.
type wireCopyAuthorization struct {
	TargetResourceID         string `json:"targetResourceId"`
	TargetResourceRegion     string `json:"targetResourceRegion"`
	TargetModelID            string `json:"targetModelId"`
	TargetModelLocation      string `json:"targetModelLocation"`
	TargetClassifierID       string `json:"targetClassifierId"`
	TargetClassifierLocation string `json:"targetClassifierLocation"`
	AccessToken              string `json:"accessToken"`
	// Raw, so that a value of any JSON type reads as "no usable expiry" instead of failing the
	// whole answer, and so that missing and unparsable can be told apart in the warning.
	ExpirationDateTime json.RawMessage `json:"expirationDateTime"`
}

type wireV21CopyAuthorization struct {
	ModelID                 string          `json:"modelId"`
	AccessToken             string          `json:"accessToken"`
	ExpirationDateTimeTicks json.RawMessage `json:"expirationDateTimeTicks"` // raw: see wireCopyAuthorization
}

// Why an authorization's expiry could not be used.
const (
	expiryMissing    = "missing"
	expiryUnparsable = "unparsable"
)

// expiryOf reads a v3/v4 expirationDateTime; the reason is "" when the time is usable.
func expiryOf(raw json.RawMessage) (time.Time, string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, expiryMissing
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return time.Time{}, expiryUnparsable
	}
	if strings.TrimSpace(s) == "" {
		return time.Time{}, expiryMissing
	}
	if t := parseTime(s); !t.IsZero() {
		return t, ""
	}
	return time.Time{}, expiryUnparsable
}

// ticksOf reads v2.1's expirationDateTimeTicks, a number or (leniently) a numeric string; the
// reason is "" when the time is usable.
func ticksOf(raw json.RawMessage) (time.Time, string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, expiryMissing
	}
	n := string(raw)
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return time.Time{}, expiryUnparsable
		}
		if n = strings.TrimSpace(s); n == "" {
			return time.Time{}, expiryMissing
		}
	}
	if t := ticksTime(json.Number(n)); !t.IsZero() {
		return t, ""
	}
	return time.Time{}, expiryUnparsable
}

// settleExpiry gives a an expiry it can be scheduled by. An authorization without a usable one
// would otherwise carry the zero time, which reads as long expired: the copy starter would renew
// it at once (spending a reservation per delivery) and the poller would treat the row as due.
// The service's documented lifetime, counted from sent (before the request left, so never later
// than the service's own clock would put it), is the safe reading. The first such answer per
// client is a warning, later ones debug lines: one is enough to tell an operator, and a service
// that stopped sending the field would otherwise write a warning per copy.
func (c *Client) settleExpiry(ctx context.Context, a *Authorization, t time.Time, reason string, sent time.Time) {
	if reason == "" {
		a.ExpiresAt = t
		return
	}
	lifetime := AuthorizationLifetime(c.version)
	a.ExpiresAt, a.ExpiryAssumed = sent.Add(lifetime).UTC(), true
	level := slog.LevelDebug
	if c.expiryWarned.CompareAndSwap(false, true) {
		level = slog.LevelWarn
	}
	// Names the resource and version, never the answer's body (the access token lives there).
	c.warnLogger().LogAttrs(ctx, level, "docintel: copy authorization has no usable expiry; assuming the documented lifetime",
		slog.String("endpoint", c.endpoint),
		slog.String("apiVersion", c.raw),
		slog.String("kind", string(a.Kind)),
		slog.String("targetId", a.TargetID),
		slog.String("expiry", reason),
		slog.String("assumedLifetime", lifetime.String()),
		slog.Time("assumedExpiresAt", a.ExpiresAt),
	)
}

// AuthorizeCopy asks THIS (target) resource for an authorization to copy a model or classifier
// into it. v3/v4 reserve req.TargetID until a copy consumes it (a second authorize answers 409
// ModelExists: see IsModelExists). For v2.1 the client needs Options.ResourceID and Region, which
// the source must put next to the service's copyAuthorization.
func (c *Client) AuthorizeCopy(ctx context.Context, kind Kind, req AuthorizeRequest) (*Authorization, error) {
	if err := checkKind(c.version, kind, true); err != nil {
		return nil, err
	}
	if c.version == V2_1 {
		return c.authorizeV21(ctx)
	}
	if err := c.checkID(kind, req.TargetID); err != nil {
		return nil, err
	}
	if utf8.RuneCountInString(req.Description) > maxDescription {
		return nil, fmt.Errorf("%w: description is longer than %d characters", ErrInvalidArgument, maxDescription)
	}
	idField := "modelId"
	if kind == KindClassifier {
		idField = "classifierId"
	}
	payload := map[string]any{idField: req.TargetID}
	if req.Description != "" {
		payload["description"] = req.Description
	}
	if len(req.Tags) > 0 {
		payload["tags"] = req.Tags
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("docintel: authorizeCopy: encoding request: %w", err)
	}
	sent := time.Now()
	resp, err := c.do(ctx, call{
		op:     "authorizeCopy",
		method: http.MethodPost,
		url:    c.url("/"+kind.collection()+":authorizeCopy", nil),
		body:   body,
		noEcho: true,
	})
	if err != nil {
		return nil, err
	}
	raw := bytes.TrimSpace(resp.body)
	var w wireCopyAuthorization
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &w) != nil {
		// never echo: the body is an access token's home
		return nil, fmt.Errorf("docintel: authorizeCopy: answer (HTTP %d, %d bytes) is not a copy authorization object", resp.status, len(raw))
	}
	a := &Authorization{
		Kind:             kind,
		APIVersion:       c.version,
		TargetResourceID: w.TargetResourceID,
		TargetRegion:     w.TargetResourceRegion,
		TargetID:         w.TargetModelID,
		TargetLocation:   w.TargetModelLocation,
		Body:             json.RawMessage(bytes.Clone(raw)),
	}
	if kind == KindClassifier {
		a.TargetID, a.TargetLocation = w.TargetClassifierID, w.TargetClassifierLocation
	}
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"targetResourceId", a.TargetResourceID}, {"targetResourceRegion", a.TargetRegion},
		{"target id", a.TargetID}, {"accessToken", w.AccessToken},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("docintel: authorizeCopy: answer lacks %s", strings.Join(missing, ", "))
	}
	exp, reason := expiryOf(w.ExpirationDateTime)
	c.settleExpiry(ctx, a, exp, reason, sent)
	return a, nil
}

func (c *Client) authorizeV21(ctx context.Context) (*Authorization, error) {
	switch {
	case c.resourceID == "" || c.region == "":
		return nil, fmt.Errorf("%w: a v2.1 target needs Options.ResourceID and Options.Region for the copy body", ErrInvalidArgument)
	case len(c.resourceID) > 1024 || !armAccountID.MatchString(c.resourceID):
		return nil, fmt.Errorf("%w: Options.ResourceID %q is not /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{name}",
			ErrInvalidArgument, truncate(c.resourceID, 200))
	case !armRegion.MatchString(c.region):
		return nil, fmt.Errorf("%w: Options.Region %q is not a lowercase ARM location such as westus2", ErrInvalidArgument, truncate(c.region, 40))
	}
	sent := time.Now()
	resp, err := c.do(ctx, call{
		op:     "copyAuthorization",
		method: http.MethodPost,
		url:    c.url("/custom/models/copyAuthorization", nil),
		noEcho: true,
	})
	if err != nil {
		return nil, err
	}
	raw := bytes.TrimSpace(resp.body)
	var w wireV21CopyAuthorization
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &w) != nil {
		return nil, fmt.Errorf("docintel: copyAuthorization: answer (HTTP %d, %d bytes) is not a copy authorization object", resp.status, len(raw))
	}
	if w.ModelID == "" || w.AccessToken == "" {
		return nil, fmt.Errorf("docintel: copyAuthorization: answer lacks modelId or accessToken")
	}
	// Assemble by hand so the service's copyAuthorization goes to copyTo byte for byte.
	rid, _ := json.Marshal(c.resourceID)
	reg, _ := json.Marshal(c.region)
	var b bytes.Buffer
	b.WriteString(`{"targetResourceId":`)
	b.Write(rid)
	b.WriteString(`,"targetResourceRegion":`)
	b.Write(reg)
	b.WriteString(`,"copyAuthorization":`)
	b.Write(raw)
	b.WriteString(`}`)

	location := c.base + "/custom/models/" + url.PathEscape(w.ModelID)
	if l, err := url.Parse(strings.TrimSpace(resp.header.Get("Location"))); err == nil && l.String() != "" {
		location = c.origin.ResolveReference(l).String()
	}
	a := &Authorization{
		Kind:             KindModel,
		APIVersion:       c.version,
		TargetID:         w.ModelID,
		TargetResourceID: c.resourceID,
		TargetRegion:     c.region,
		TargetLocation:   location,
		Body:             json.RawMessage(b.Bytes()),
	}
	exp, reason := ticksOf(w.ExpirationDateTimeTicks)
	c.settleExpiry(ctx, a, exp, reason, sent)
	return a, nil
}

// AuthorizationLifetime is how long the service says a copy authorization of api-version v stays
// usable: 24 hours for v2.1 (documented), an hour for 2022-08-31 and later (every recording).
func AuthorizationLifetime(v APIVersion) time.Duration {
	if v == V2_1 {
		return 24 * time.Hour
	}
	return time.Hour
}

// ticksTime reads v2.1's expirationDateTimeTicks: Unix seconds, or .NET ticks (100 ns since
// 0001-01-01) as v2.0-preview sent them. Zero when absent or nonsensical.
func ticksTime(n json.Number) time.Time {
	v, err := n.Int64()
	if err != nil || v <= 0 {
		return time.Time{}
	}
	const unixEpochTicks = 621355968000000000
	if v > 1e15 {
		if v < unixEpochTicks {
			return time.Time{}
		}
		t := v - unixEpochTicks
		return time.Unix(t/1e7, (t%1e7)*100).UTC()
	}
	return time.Unix(v, 0).UTC()
}

// copyBodyFields is what CopyTo checks of an authorization body, and the token it scrubs.
type copyBodyFields struct {
	TargetModelID      *string `json:"targetModelId"`
	TargetClassifierID *string `json:"targetClassifierId"`
	AccessToken        string  `json:"accessToken"`
	CopyAuthorization  *struct {
		AccessToken string `json:"accessToken"`
	} `json:"copyAuthorization"`
}

// CopyTo starts the copy on THIS (source) client; returns the Operation-Location URL. auth comes
// from the target's AuthorizeCopy (any v3/v4 version on either side; v2.1 only with v2.1).
// Errors are synchronous: IsModelNotReady for a missing or unfinished source, IsAuthorizationInvalid
// for an expired authorization; an altered or reused one fails the operation later.
func (c *Client) CopyTo(ctx context.Context, kind Kind, sourceID string, auth *Authorization) (string, error) {
	if err := checkKind(c.version, kind, true); err != nil {
		return "", err
	}
	if err := c.checkID(kind, sourceID); err != nil {
		return "", err
	}
	if auth == nil || len(bytes.TrimSpace(auth.Body)) == 0 {
		return "", fmt.Errorf("%w: copyTo needs an authorization with a body", ErrInvalidArgument)
	}
	if auth.Kind != "" && auth.Kind != kind {
		return "", fmt.Errorf("%w: authorization is for a %s, not a %s", ErrInvalidArgument, auth.Kind, kind)
	}
	if auth.APIVersion != "" && (auth.APIVersion == V2_1) != (c.version == V2_1) {
		return "", fmt.Errorf("%w: an authorization from api-version %s cannot be used with a %s source", ErrInvalidArgument, auth.APIVersion, c.version)
	}
	body := bytes.TrimSpace(auth.Body)
	var f copyBodyFields
	if body[0] != '{' || json.Unmarshal(body, &f) != nil {
		return "", fmt.Errorf("%w: authorization body is not a JSON object", ErrInvalidArgument)
	}
	token := f.AccessToken
	var path string
	switch {
	case c.version == V2_1:
		if f.CopyAuthorization == nil {
			return "", fmt.Errorf("%w: v2.1 authorization body lacks copyAuthorization", ErrInvalidArgument)
		}
		token = f.CopyAuthorization.AccessToken
		path = "/custom/models/" + url.PathEscape(sourceID) + "/copy"
	case kind == KindClassifier:
		if f.TargetClassifierID == nil {
			return "", fmt.Errorf("%w: authorization body lacks targetClassifierId (is it a model authorization?)", ErrInvalidArgument)
		}
		path = "/documentClassifiers/" + url.PathEscape(sourceID) + ":copyTo"
	default:
		if f.TargetModelID == nil {
			return "", fmt.Errorf("%w: authorization body lacks targetModelId (is it a classifier or v2.1 authorization?)", ErrInvalidArgument)
		}
		path = "/documentModels/" + url.PathEscape(sourceID) + ":copyTo"
	}
	cl := call{
		op:      "copyTo",
		method:  http.MethodPost,
		url:     c.url(path, nil),
		body:    bytes.Clone(body),
		secrets: []string{token},
		spends:  true,
	}
	if c.degrade {
		cl.header = map[string]string{degradeHeader: "true"}
	}
	resp, err := c.do(ctx, cl)
	if err != nil {
		return "", err
	}
	loc := strings.TrimSpace(resp.header.Get("Operation-Location"))
	if loc == "" {
		return "", fmt.Errorf("docintel: copyTo: HTTP %d without Operation-Location [apim-request-id %s]", resp.status, resp.header.Get("apim-request-id"))
	}
	ref, err := url.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("%w: copyTo was accepted but its Operation-Location is not a URL [apim-request-id %s]",
			ErrInvalidArgument, resp.header.Get("apim-request-id"))
	}
	// A relative Operation-Location (only emulators send one) is taken relative to the endpoint.
	// Checked now, not only when polled: the caller stores the URL and polls it with the source's
	// credential, so one that leaves the endpoint is refused before it is kept anywhere. The copy
	// may run all the same; the caller finds it in the operation list or in the target.
	u := c.resolve(ref)
	if err := c.checkOrigin(u, "Operation-Location"); err != nil {
		return "", fmt.Errorf("docintel: copyTo was accepted but %w [apim-request-id %s]", err, resp.header.Get("apim-request-id"))
	}
	return u.String(), nil
}
