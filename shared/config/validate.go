package config

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/dimirror/dimirror/shared/docintel"
)

// Problem is one bad setting and how to fix it. Message never contains a secret.
type Problem struct {
	Setting string
	Message string
}

// Error lists every bad setting found by one validation.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("invalid settings:")
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  %s: %s", p.Setting, p.Message)
	}
	return b.String()
}

type problems []Problem

func (p *problems) add(setting, format string, args ...any) {
	*p = append(*p, Problem{Setting: setting, Message: fmt.Sprintf(format, args...)})
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &Error{Problems: p}
}

var (
	targetNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
	tableNameRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{2,62}$`)
	queueNameRE  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]{0,258}[A-Za-z0-9])?$`)
	// The v2.1 copy request's patterns for targetResourceId and targetResourceRegion.
	resourceIDRE = regexp.MustCompile(`(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.CognitiveServices/accounts/[^/]+$`)
	regionRE     = regexp.MustCompile(`^[a-z0-9]{1,24}$`)
	hostLabelRE  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
)

// authLifetime is the shortest copy-authorization lifetime (v3/v4: 1 h; v2.1: 24 h); a
// renewal margin at least this long would renew every authorization forever.
const authLifetime = time.Hour

const (
	maxAttemptsLimit = 100
	minAPIKeyLen     = 16
	targetsFormat    = "name=endpoint[;api-version=V][;resource-id=ID][;region=R][;degrade=true], comma-separated"
	endpointExample  = "https://<resource>.cognitiveservices.azure.com/"
)

var scheduleParser = cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a six-field NCRONTAB expression (second minute hour day month
// weekday) the way the settings are validated. Descriptors (@every, @hourly) and time-zone
// prefixes are refused: the same settings feed the Functions host's timer triggers, whose
// NCRONTAB has neither.
func ParseSchedule(spec string) (cron.Schedule, error) {
	spec = strings.TrimSpace(spec)
	if strings.HasPrefix(spec, "@") || strings.Contains(spec, "TZ=") {
		return nil, fmt.Errorf("%q is not a six-field NCRONTAB expression: descriptors and time zones are not supported by the Functions host", spec)
	}
	if n := len(strings.Fields(spec)); n != 6 {
		return nil, fmt.Errorf("%q has %d fields, want 6 (second minute hour day month weekday), e.g. */30 * * * * *", spec, n)
	}
	sched, err := scheduleParser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid NCRONTAB expression: %v", spec, err)
	}
	return sched, nil
}

func (s *settings) validate() (*Config, error) {
	s.normalize()
	var p problems
	c := &Config{}

	// api-versions: the global one first, since the others default to it.
	var globalOK bool
	c.APIVersion, globalOK = parseVersion(&p, "DIMIRROR_API_VERSION", s.APIVersion)

	// Resources: the rules form or the legacy source + targets pair, never both.
	legacyGiven := s.SourceEndpoint != "" || s.SourceKey != "" || s.SourceAPIVersion != "" || s.Targets != "" || s.TargetKeys != ""
	rulesGiven := s.Resources != "" || s.ResourceKeys != "" || s.Rules != ""
	switch {
	case rulesGiven && legacyGiven:
		p.add("DIMIRROR_RESOURCES", "set either DIMIRROR_RESOURCES + DIMIRROR_RULES (+ DIMIRROR_RESOURCE_KEYS) or the older DIMIRROR_SOURCE_* + DIMIRROR_TARGETS (+ DIMIRROR_TARGET_KEYS), not both; to move to rules, name the source among DIMIRROR_RESOURCES, write one rule source>target per target and clear the older settings")
	case rulesGiven:
		c.validateRules(&p, s, globalOK)
	default:
		c.validateLegacy(&p, s, globalOK)
	}

	// Service Bus.
	c.ServiceBus = ServiceBus{ConnectionString: s.ServiceBusConnection, Namespace: s.ServiceBusNamespace}
	switch {
	case s.ServiceBusConnection != "" && s.ServiceBusNamespace != "":
		p.add("ServiceBusConnection", "set either ServiceBusConnection (connection string) or ServiceBusConnection__fullyQualifiedNamespace (managed identity), not both")
	case s.ServiceBusConnection != "":
		if err := checkServiceBusConnection(s.ServiceBusConnection); err != nil {
			p.add("ServiceBusConnection", "%v (value not shown)", err)
		}
	case s.ServiceBusNamespace != "":
		if !validHostName(s.ServiceBusNamespace) {
			p.add("ServiceBusConnection__fullyQualifiedNamespace", "%q is not a host name; give the namespace's host only, e.g. <namespace>.servicebus.windows.net (no scheme, port or path)", s.ServiceBusNamespace)
		}
	default:
		p.add("ServiceBusConnection", "required: set ServiceBusConnection__fullyQualifiedNamespace=<namespace>.servicebus.windows.net (managed identity) or ServiceBusConnection to a connection string")
	}
	c.Queue = s.Queue
	if !queueNameRE.MatchString(s.Queue) {
		p.add("DIMIRROR_QUEUE", "%q is not a Service Bus queue name: use 1-260 letters, digits, '.', '-', '_' or '/', starting and ending with a letter or digit", s.Queue)
	}

	// Table storage.
	c.Table = Table{ConnectionString: s.TableConnection, ServiceURI: s.TableServiceURI, Name: s.Table}
	switch {
	case s.TableConnection != "" && s.TableServiceURI != "":
		p.add("TableConnection", "set either TableConnection (connection string) or TableConnection__tableServiceUri (managed identity), not both")
	case s.TableConnection != "":
		if err := checkStorageConnection(s.TableConnection); err != nil {
			p.add("TableConnection", "%v (value not shown)", err)
		}
	case s.TableServiceURI != "":
		if u, err := parseEndpoint(s.TableServiceURI); err != nil {
			p.add("TableConnection__tableServiceUri", "%v; use https://<account>.table.core.windows.net", err)
		} else {
			c.Table.ServiceURI = u
		}
	default:
		p.add("TableConnection", "required: set TableConnection__tableServiceUri=https://<account>.table.core.windows.net (managed identity) or TableConnection to a connection string")
	}
	if !tableNameRE.MatchString(s.Table) || strings.EqualFold(s.Table, "tables") {
		p.add("DIMIRROR_TABLE", "%q is not a valid table name: use 3-63 letters and digits, starting with a letter (\"tables\" is reserved)", s.Table)
	}

	// Servers.
	c.Listen = s.Listen
	if err := checkListen(s.Listen); err != nil {
		p.add("DIMIRROR_LISTEN", "%v; use host:port, e.g. 127.0.0.1:7071 (or :7071 for every interface)", err)
	}
	c.APIKey = s.APIKey
	if s.HandlerPort != "" {
		c.HandlerPort = parsePort(&p, "FUNCTIONS_CUSTOMHANDLER_PORT", s.HandlerPort)
	} else if s.LegacyPort != "" {
		c.HandlerPort = parsePort(&p, "FUNCTIONS_HTTPWORKER_PORT", s.LegacyPort)
	}

	// Retries and timeouts.
	if n, err := strconv.Atoi(s.MaxAttempts); err != nil || n < 1 || n > maxAttemptsLimit {
		p.add("DIMIRROR_MAX_ATTEMPTS", "%q is not a whole number from 1 to %d", s.MaxAttempts, maxAttemptsLimit)
	} else {
		c.MaxAttempts = n
	}
	c.RetryBase = parseDuration(&p, "DIMIRROR_RETRY_BASE", s.RetryBase, false)
	c.RetryMax = parseDuration(&p, "DIMIRROR_RETRY_MAX", s.RetryMax, false)
	if c.RetryBase > 0 && c.RetryMax > 0 && c.RetryMax < c.RetryBase {
		p.add("DIMIRROR_RETRY_MAX", "%s is shorter than DIMIRROR_RETRY_BASE (%s); set it to at least that", c.RetryMax, c.RetryBase)
	}
	c.CallTimeout = parseDuration(&p, "DIMIRROR_CALL_TIMEOUT", s.CallTimeout, false)
	c.AuthMargin = parseDuration(&p, "DIMIRROR_AUTH_MARGIN", s.AuthMargin, true)
	if c.AuthMargin >= authLifetime {
		p.add("DIMIRROR_AUTH_MARGIN", "%s is not shorter than a copy authorization's 1h lifetime, so every authorization would be renewed; use e.g. 5m", c.AuthMargin)
	}
	c.ClaimLease = parseDuration(&p, "DIMIRROR_CLAIM_LEASE", s.ClaimLease, false)
	if c.ClaimLease > 0 && c.CallTimeout > 0 && c.ClaimLease < c.CallTimeout {
		p.add("DIMIRROR_CLAIM_LEASE", "%s is shorter than DIMIRROR_CALL_TIMEOUT (%s), so a step could not wait out one call; use at least twice that", c.ClaimLease, c.CallTimeout)
	}
	c.FollowFor = parseDuration(&p, "DIMIRROR_FOLLOW_FOR", s.FollowFor, true)
	c.GiveUpAfter = parseDuration(&p, "DIMIRROR_GIVE_UP_AFTER", s.GiveUpAfter, false)
	if c.GiveUpAfter > 0 && c.GiveUpAfter < time.Minute {
		p.add("DIMIRROR_GIVE_UP_AFTER", "%s is too short: a brief outage would fail replicas; use at least a few minutes (default 4h)", c.GiveUpAfter)
	}
	switch strings.ToLower(s.LogLevel) {
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "info":
		c.LogLevel = slog.LevelInfo
	case "warn", "warning":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		p.add("DIMIRROR_LOG_LEVEL", "%q is not a log level; use debug, info, warn or error", s.LogLevel)
	}

	// Selection and schedules.
	c.Replace = parseBool(&p, "DIMIRROR_REPLACE", s.Replace)
	c.Prune = parseBool(&p, "DIMIRROR_PRUNE", s.Prune)
	c.Include = parseGlobs(&p, "DIMIRROR_INCLUDE", s.Include)
	c.Exclude = parseGlobs(&p, "DIMIRROR_EXCLUDE", s.Exclude)
	for _, sc := range []struct {
		name string
		spec string
		dst  *string
	}{
		{"DIMIRROR_WATCH_SCHEDULE", s.WatchSchedule, &c.WatchSchedule},
		{"DIMIRROR_SWEEP_SCHEDULE", s.SweepSchedule, &c.SweepSchedule},
		{"DIMIRROR_POLL_SCHEDULE", s.PollSchedule, &c.PollSchedule},
	} {
		if _, err := ParseSchedule(sc.spec); err != nil {
			p.add(sc.name, "%v", err)
		} else {
			*sc.dst = sc.spec
		}
	}

	c.ListRate = parseRate(&p, "DIMIRROR_LIST_RATE", s.ListRate, 10)
	c.ManagementRate = parseRate(&p, "DIMIRROR_MANAGEMENT_RATE", s.ManagementRate, 5)
	c.OperationRate = parseRate(&p, "DIMIRROR_OPERATION_RATE", s.OperationRate, 50)
	c.BudgetShare = parseShare(&p, "DIMIRROR_BUDGET_SHARE", s.BudgetShare)

	// The objective and the expiry warning are judged against minutes-to-days figures; a value
	// under a minute is a unit slip (15s for 15m), not a policy.
	c.RPO = parseDuration(&p, "DIMIRROR_RPO", s.RPO, false)
	if c.RPO > 0 && c.RPO < time.Minute {
		p.add("DIMIRROR_RPO", "%s is shorter than a copy takes; use minutes, e.g. 15m (the default)", c.RPO)
	}
	c.ExpiryWarning = parseDuration(&p, "DIMIRROR_EXPIRY_WARNING", s.ExpiryWarning, false)
	if c.ExpiryWarning > 0 && c.ExpiryWarning < time.Hour {
		p.add("DIMIRROR_EXPIRY_WARNING", "%s leaves no time to act before a model expires; use days in hours, e.g. 720h (30 days, the default)", c.ExpiryWarning)
	}

	if err := p.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// ValidateStandalone adds the checks that only the standalone server needs: its API key.
func (c *Config) ValidateStandalone() error {
	var p problems
	switch {
	case c.APIKey == "":
		p.add("DIMIRROR_API_KEY", "required in standalone mode: set it to a random secret of at least %d characters", minAPIKeyLen)
	case len(c.APIKey) < minAPIKeyLen:
		p.add("DIMIRROR_API_KEY", "too short (%d characters): use a random secret of at least %d", len(c.APIKey), minAPIKeyLen)
	}
	return p.err()
}

// ValidateServe adds the checks that only serving under the Functions host needs: the
// port the host assigns.
func (c *Config) ValidateServe() error {
	var p problems
	if c.HandlerPort == 0 {
		p.add("FUNCTIONS_CUSTOMHANDLER_PORT", "not set: the Functions host sets it when it starts a custom handler; outside the host use standalone mode")
	}
	return p.err()
}

// parseVersion reports ok=false (and a problem) when s is not a supported api-version.
func parseVersion(p *problems, setting, s string) (docintel.APIVersion, bool) {
	v, err := docintel.ParseAPIVersion(s)
	if err != nil {
		p.add(setting, "%q is not supported; use one of 2024-11-30, 2023-07-31, 2022-08-31 or 2.1", s)
		return "", false
	}
	return v, true
}

// parseEndpoint checks an absolute http(s) URL and returns it without a trailing slash.
// Errors never quote the value: a URL may carry credentials.
func parseEndpoint(s string) (string, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", fmt.Errorf("not a valid URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return "", fmt.Errorf("not an absolute http(s) URL")
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("URL has no host")
	case u.User != nil:
		return "", fmt.Errorf("URL must not contain user info; keys go in their own settings")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "", fmt.Errorf("URL must not have a query or fragment")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// validateLegacy reads DIMIRROR_SOURCE_* and DIMIRROR_TARGETS: one source, one rule per target.
func (c *Config) validateLegacy(p *problems, s *settings, globalOK bool) {
	c.Legacy = true
	if s.SourceEndpoint == "" {
		p.add("DIMIRROR_SOURCE_ENDPOINT", "required: set it to the source resource's endpoint, e.g. %s (or describe every resource in DIMIRROR_RESOURCES and DIMIRROR_RULES)", endpointExample)
	} else if ep, err := parseEndpoint(s.SourceEndpoint); err != nil {
		p.add("DIMIRROR_SOURCE_ENDPOINT", "%v; use the resource's endpoint, e.g. %s", err, endpointExample)
	} else {
		c.Source.Endpoint = ep
	}
	c.Source.Key = s.SourceKey
	c.Source.APIVersion = c.APIVersion
	sourceOK := globalOK
	if s.SourceAPIVersion != "" {
		c.Source.APIVersion, sourceOK = parseVersion(p, "DIMIRROR_SOURCE_API_VERSION", s.SourceAPIVersion)
	}

	c.Targets = parseTargets(p, "DIMIRROR_TARGETS", "target", s.Targets, c.APIVersion, globalOK)
	parseTargetKeys(p, "DIMIRROR_TARGET_KEYS", "DIMIRROR_TARGETS", "target", s.TargetKeys, c.Targets)
	if sourceOK {
		for _, t := range c.Targets {
			// v2.1 and v3+ copy bodies differ (copyAuthorization+ticks vs the authorization
			// object), so a copy cannot cross the two families.
			if t.APIVersion != "" && (t.APIVersion == docintel.V2_1) != (c.Source.APIVersion == docintel.V2_1) {
				p.add("DIMIRROR_TARGETS", "target %q uses api-version %s but the source uses %s: v2.1 and later versions cannot copy to each other; give both sides the same family (api-version=2.1 on the target, or DIMIRROR_SOURCE_API_VERSION)",
					t.Name, t.APIVersion, c.Source.APIVersion)
			}
		}
	}
	// The source joins the resources under a fixed name, which rows and the API use for it.
	c.Resources = []Resource{{Name: LegacySourceName, Endpoint: c.Source.Endpoint, Key: c.Source.Key, APIVersion: c.Source.APIVersion}}
	for _, t := range c.Targets {
		if t.Name == LegacySourceName {
			p.add("DIMIRROR_TARGETS", "the target name %q is reserved for the DIMIRROR_SOURCE_ENDPOINT resource; rename the target", LegacySourceName)
			continue
		}
		c.Resources = append(c.Resources, t)
		c.Rules = append(c.Rules, Rule{From: LegacySourceName, To: t.Name})
	}
}

// rulesFormat is how DIMIRROR_RULES is written.
const rulesFormat = "from>to[;include=glob|glob][;exclude=glob|glob][;kinds=model|classifier], comma-separated, e.g. eastus>westus2,westus2>eastus"

// validateRules reads DIMIRROR_RESOURCES, DIMIRROR_RESOURCE_KEYS and DIMIRROR_RULES.
func (c *Config) validateRules(p *problems, s *settings, globalOK bool) {
	c.Resources = parseTargets(p, "DIMIRROR_RESOURCES", "resource", s.Resources, c.APIVersion, globalOK)
	parseTargetKeys(p, "DIMIRROR_RESOURCE_KEYS", "DIMIRROR_RESOURCES", "resource", s.ResourceKeys, c.Resources)
	c.Rules = parseRules(p, s.Rules, c.Resources)
	for _, r := range c.Rules {
		if slices.ContainsFunc(c.Targets, func(t Target) bool { return t.Name == r.To }) {
			continue
		}
		if t, ok := c.Resource(r.To); ok {
			c.Targets = append(c.Targets, t)
		}
	}
}

// parseRules reads DIMIRROR_RULES against the resources. Every message names the rule and the fix.
func parseRules(p *problems, s string, resources []Resource) []Rule {
	const setting = "DIMIRROR_RULES"
	if s == "" {
		p.add(setting, "required with DIMIRROR_RESOURCES: say what is copied where as %s", rulesFormat)
		return nil
	}
	names := make([]string, len(resources))
	byName := map[string]Resource{}
	for i, r := range resources {
		names[i] = r.Name
		byName[r.Name] = r
	}
	var rules []Rule
	seen := map[string]bool{}
	entries := 0
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		entries++
		fields := strings.Split(entry, ";")
		from, to, ok := strings.Cut(fields[0], ">")
		from, to = strings.TrimSpace(from), strings.TrimSpace(to)
		if !ok || from == "" || to == "" {
			p.add(setting, "rule %d %q is not from>to; write %s", i+1, fields[0], rulesFormat)
			continue
		}
		rule := Rule{From: from, To: to}
		bad := func(format string, args ...any) {
			p.add(setting, "rule %q: "+format, append([]any{rule.String()}, args...)...)
		}
		valid := true
		for _, n := range []string{from, to} {
			if _, known := byName[n]; !known && len(resources) > 0 { // none: DIMIRROR_RESOURCES's own problem says it
				bad("no resource %q in DIMIRROR_RESOURCES (resources: %s); add it there or fix the name", n, listOrNone(names))
				valid = false
			}
		}
		if from == to {
			bad("copies a resource into itself; remove the rule (a resource is never copied into itself)")
			valid = false
		}
		if seen[rule.String()] {
			bad("is given twice; keep one entry (put both entries' filters on it)")
			valid = false
		}
		seen[rule.String()] = true
		given := map[string]bool{}
		for _, opt := range fields[1:] {
			key, val, hasEq := strings.Cut(opt, "=")
			key, val = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(val)
			if key == "" && !hasEq {
				continue
			}
			switch {
			case key != "include" && key != "exclude" && key != "kinds":
				bad("unknown option %q; options are include, exclude and kinds", key)
				valid = false
				continue
			case given[key]:
				bad("option %s given twice; separate several values with |", key)
				valid = false
				continue
			case !hasEq || val == "":
				bad("option %s has no value; write %s=<value>", key, key)
				valid = false
				continue
			}
			given[key] = true
			vals := splitValues(val)
			switch key {
			case "include", "exclude":
				for _, g := range vals {
					if _, err := path.Match(g, ""); err != nil {
						bad("%s pattern %q is malformed; use path.Match syntax: * and ? wildcards, [a-z] classes", key, g)
						valid = false
					}
				}
				if key == "include" {
					rule.Include = vals
				} else {
					rule.Exclude = vals
				}
			case "kinds":
				for _, k := range vals {
					if k != "model" && k != "classifier" {
						bad("kind %q is unknown; use model, classifier or model|classifier", k)
						valid = false
					}
				}
				rule.Kinds = vals
			}
		}
		if valid {
			f, t := byName[from], byName[to]
			if f.APIVersion != "" && t.APIVersion != "" && (f.APIVersion == docintel.V2_1) != (t.APIVersion == docintel.V2_1) {
				bad("%s uses api-version %s and %s uses %s: v2.1 and later versions cannot copy to each other; remove the rule or give both resources the same family (api-version=... in DIMIRROR_RESOURCES)",
					from, f.APIVersion, to, t.APIVersion)
				valid = false
			}
		}
		if valid {
			rules = append(rules, rule)
		}
	}
	if entries == 0 {
		p.add(setting, "lists no rule; write %s", rulesFormat)
	}
	return rules
}

// splitValues splits a rule option's |-separated values (commas separate rules).
func splitValues(s string) []string {
	var out []string
	for _, v := range strings.Split(s, "|") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// parseTargets reads name=endpoint[;options] entries: DIMIRROR_TARGETS (noun "target") or
// DIMIRROR_RESOURCES (noun "resource").
func parseTargets(p *problems, setting, noun, s string, def docintel.APIVersion, defOK bool) []Target {
	if s == "" {
		p.add(setting, "required: list the %ss as %s", noun, targetsFormat)
		return nil
	}
	var targets []Target
	seen := map[string]bool{}
	entries := 0
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue // tolerate a trailing comma
		}
		entries++
		fields := strings.Split(entry, ";")
		name, endpoint, ok := strings.Cut(fields[0], "=")
		name, endpoint = strings.TrimSpace(name), strings.TrimSpace(endpoint)
		if !ok || name == "" || endpoint == "" {
			p.add(setting, "entry %d does not start with name=endpoint; write %s", i+1, targetsFormat)
			continue
		}
		if !targetNameRE.MatchString(name) {
			p.add(setting, "entry %d: name %q is invalid; use 1-32 lowercase letters, digits and '-', starting with a letter or digit", i+1, name)
			continue
		}
		bad := func(format string, args ...any) {
			p.add(setting, noun+" %q: "+format, append([]any{name}, args...)...)
		}
		if seen[name] {
			bad("named twice; %s names must be unique", noun)
			continue
		}
		seen[name] = true

		t := Target{Name: name, APIVersion: def}
		ok = true
		if ep, err := parseEndpoint(endpoint); err != nil {
			bad("endpoint: %v; use the resource's endpoint, e.g. %s", err, endpointExample)
			ok = false
		} else {
			t.Endpoint = ep
		}
		versionOK, given := defOK, map[string]bool{}
		for _, opt := range fields[1:] {
			key, val, hasEq := strings.Cut(opt, "=")
			key, val = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(val)
			if key == "" && !hasEq {
				continue // tolerate "a=b;;c=d" and a trailing ';'
			}
			known := slices.Contains([]string{"api-version", "resource-id", "region", "degrade"}, key)
			switch {
			case !known:
				// Never echo the value: a key pasted here must not reach the logs.
				bad("unknown option %q; options are api-version, resource-id, region and degrade (keys go in %s)", key, keysSettingOf(setting))
				ok = false
				continue
			case given[key]:
				bad("option %s given twice", key)
				ok = false
				continue
			case !hasEq || val == "":
				bad("option %s has no value; write %s=<value>", key, key)
				ok = false
				continue
			}
			given[key] = true
			switch key {
			case "api-version":
				v, err := docintel.ParseAPIVersion(val)
				if err != nil {
					bad("api-version %q is not supported; use one of 2024-11-30, 2023-07-31, 2022-08-31 or 2.1", val)
					ok, versionOK = false, false
				} else {
					t.APIVersion, versionOK = v, true
				}
			case "resource-id":
				if len(val) > 1024 || !resourceIDRE.MatchString(val) {
					bad("resource-id must be the resource's ARM ID, /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.CognitiveServices/accounts/<name>")
					ok = false
				} else {
					t.ResourceID = val
				}
			case "region":
				if !regionRE.MatchString(val) {
					bad("region %q must be the lowercase ARM location of the resource, e.g. westeurope", val)
					ok = false
				} else {
					t.Region = val
				}
			case "degrade":
				b, err := strconv.ParseBool(val)
				if err != nil {
					bad("degrade %q must be true or false", val)
					ok = false
				} else {
					t.Degrade = b
				}
			}
		}
		if versionOK && t.APIVersion == docintel.V2_1 {
			var missing []string
			if !given["resource-id"] {
				missing = append(missing, "resource-id")
			}
			if !given["region"] {
				missing = append(missing, "region")
			}
			if len(missing) > 0 {
				bad("api-version 2.1 needs %s (the v2.1 copy request carries them); add ;%s", strings.Join(missing, " and "), strings.Join(missing, "=...;")+"=...")
				ok = false
			}
		}
		if !versionOK {
			t.APIVersion = ""
		}
		if ok {
			targets = append(targets, t)
		} else {
			targets = append(targets, Target{Name: name}) // keeps the name for the keys' checks
		}
	}
	if entries == 0 {
		p.add(setting, "lists no %s; write %s", noun, targetsFormat)
	}
	return targets
}

func keysSettingOf(listSetting string) string {
	if listSetting == "DIMIRROR_RESOURCES" {
		return "DIMIRROR_RESOURCE_KEYS"
	}
	return "DIMIRROR_TARGET_KEYS"
}

// parseTargetKeys fills the targets' keys from name=key,... Entries are never echoed: a
// malformed entry may be a bare key.
func parseTargetKeys(p *problems, setting, listSetting, noun, s string, targets []Target) {
	if s == "" {
		return
	}
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.Name
	}
	seen := map[string]bool{}
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, key, ok := strings.Cut(entry, "=")
		name, key = strings.TrimSpace(name), strings.TrimSpace(key)
		switch {
		case !ok || name == "":
			p.add(setting, "entry %d is not name=key (value not shown); write name=key,name=key with names from %s", i+1, listSetting)
		case !targetNameRE.MatchString(name):
			p.add(setting, "entry %d: the name is not a valid %s name (value not shown); write name=key with names from %s", i+1, noun, listSetting)
		case key == "":
			p.add(setting, "the key for %q is empty; remove the entry to use Microsoft Entra ID, or give the key", name)
		case seen[name]:
			p.add(setting, "%q is given twice; keep one key per %s", name, noun)
		case !slices.Contains(names, name):
			p.add(setting, "%q is not a %s in %s (%ss: %s); fix the name or add the %s", name, noun, listSetting, noun, listOrNone(names), noun)
		default:
			seen[name] = true
			for j := range targets {
				if targets[j].Name == name {
					targets[j].Key = key
				}
			}
		}
	}
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// connectionFields splits a key=value;... connection string; the first '=' separates, as
// base64 keys end in '='. Keys are case-insensitive, as in the Azure SDKs.
func connectionFields(s string) (map[string]string, error) {
	fields := map[string]string{}
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("not a connection string: every part must be key=value")
		}
		fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	return fields, nil
}

func checkServiceBusConnection(s string) error {
	f, err := connectionFields(s)
	if err != nil {
		return err
	}
	ep, ok := f["endpoint"]
	if !ok {
		return fmt.Errorf("the connection string has no Endpoint=sb://<namespace>.servicebus.windows.net/")
	}
	u, err := url.Parse(ep)
	if err != nil || u.Scheme != "sb" || u.Hostname() == "" {
		return fmt.Errorf("the connection string's Endpoint must look like sb://<namespace>.servicebus.windows.net/")
	}
	if _, hasPath := f["entitypath"]; hasPath {
		return fmt.Errorf("the connection string is scoped to one entity (EntityPath); use a namespace-level connection string, the queue is DIMIRROR_QUEUE")
	}
	return nil
}

func checkStorageConnection(s string) error {
	f, err := connectionFields(s)
	if err != nil {
		return err
	}
	if strings.EqualFold(f["usedevelopmentstorage"], "true") {
		return nil
	}
	_, hasAccount := f["accountname"]
	_, hasEndpoint := f["tableendpoint"]
	if !hasAccount && !hasEndpoint {
		return fmt.Errorf("the connection string names no storage account: it needs AccountName=... or TableEndpoint=... (or UseDevelopmentStorage=true)")
	}
	_, hasKey := f["accountkey"]
	_, hasSAS := f["sharedaccesssignature"]
	if !hasKey && !hasSAS {
		return fmt.Errorf("the connection string has no credential: it needs AccountKey=... or SharedAccessSignature=...")
	}
	return nil
}

func validHostName(s string) bool {
	if len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if !hostLabelRE.MatchString(label) {
			return false
		}
	}
	return true
}

func checkListen(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostName(host) && host != "localhost" {
		return fmt.Errorf("host %q is neither an IP address nor a host name", host)
	}
	return nil
}

func parsePort(p *problems, setting, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		p.add(setting, "%q is not a TCP port from 1 to 65535; it is set by the Functions host, remove it when running standalone", s)
		return 0
	}
	return n
}

func parseDuration(p *problems, setting, s string, zeroOK bool) time.Duration {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		p.add(setting, "%q is not a duration; use Go syntax such as 30s, 5m or 1h30m", s)
		return 0
	case d < 0 && zeroOK:
		p.add(setting, "%s must not be negative; use 0 to disable or a duration such as 5m", d)
		return 0
	case d <= 0 && !zeroOK:
		p.add(setting, "%s must be positive; use a duration such as 30s", d)
		return 0
	}
	return d
}

func parseBool(p *problems, setting, s string) bool {
	b, err := strconv.ParseBool(s)
	if err != nil {
		p.add(setting, "%q is not a boolean; use true or false", s)
	}
	return b
}

func parseGlobs(p *problems, setting, s string) []string {
	var globs []string
	for _, g := range strings.Split(s, ",") {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		if _, err := path.Match(g, ""); err != nil {
			p.add(setting, "pattern %q is malformed; use path.Match syntax: * and ? wildcards, [a-z] classes, \\ to escape", g)
			continue
		}
		globs = append(globs, g)
	}
	return globs
}

// parseShare reads a share of a resource's budget: above 0, at most 1.
func parseShare(p *problems, setting, s string) float64 {
	r, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil || math.IsNaN(r) || math.IsInf(r, 0):
		p.add(setting, "%q is not a number; use the share of each resource's rate limits dimirror may use, e.g. 0.8 (the rest is left to your own calls)", s)
		return 0
	case r <= 0 || r > 1:
		p.add(setting, "%g is out of range; use more than 0 and at most 1 (1: all of the rates DIMIRROR_*_RATE name)", r)
		return 0
	}
	return r
}

// maxRate bounds the pacing settings: far above any tier's limit, low enough to catch a typo.
const maxRate = 1000

// parseRate reads requests per second; s0 is the S0 tier's limit, named in the messages.
func parseRate(p *problems, setting, s string, s0 float64) float64 {
	r, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil || math.IsNaN(r) || math.IsInf(r, 0):
		p.add(setting, "%q is not a number; use requests per second, e.g. %g (just under the S0 limit of %g), or 0 to turn pacing off", s, s0*0.9, s0)
		return 0
	case r < 0 || r > maxRate:
		p.add(setting, "%g is out of range; use 0 (no pacing) to %d requests per second (the S0 limit is %g, F0 1)", r, maxRate, s0)
		return 0
	}
	return r
}
