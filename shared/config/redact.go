package config

import (
	"log/slog"
	"strconv"
	"strings"
)

// redacted replaces every secret (keys, the API key, connection strings) in String and
// LogValue output.
const redacted = "[redacted]"

// auth says how a resource is reached without revealing its key.
func auth(key string) string {
	if key != "" {
		return "key " + redacted
	}
	return "entra-id"
}

// LogValue is the start-up log line's view of the configuration; secrets are redacted.
func (c Config) LogValue() slog.Value {
	targets := make([]slog.Attr, len(c.Targets))
	for i, t := range c.Targets {
		targets[i] = slog.Attr{Key: t.Name, Value: t.LogValue()}
	}
	return slog.GroupValue(
		slog.Any("source", c.Source),
		slog.Attr{Key: "targets", Value: slog.GroupValue(targets...)},
		slog.String("api_version", string(c.APIVersion)),
		slog.Any("servicebus", c.ServiceBus),
		slog.String("queue", c.Queue),
		slog.Any("table", c.Table),
		slog.String("listen", c.Listen),
		slog.String("api_key", setOrNot(c.APIKey)),
		slog.Int("handler_port", c.HandlerPort),
		slog.Int("max_attempts", c.MaxAttempts),
		slog.String("retry_base", c.RetryBase.String()),
		slog.String("retry_max", c.RetryMax.String()),
		slog.String("call_timeout", c.CallTimeout.String()),
		slog.String("auth_margin", c.AuthMargin.String()),
		slog.String("claim_lease", c.ClaimLease.String()),
		slog.String("give_up_after", c.GiveUpAfter.String()),
		slog.String("follow_for", c.FollowFor.String()),
		slog.String("log_level", c.LogLevel.String()),
		slog.Bool("replace", c.Replace),
		slog.Bool("prune", c.Prune),
		slog.String("include", strings.Join(c.Include, ",")),
		slog.String("exclude", strings.Join(c.Exclude, ",")),
		slog.String("watch_schedule", c.WatchSchedule),
		slog.String("sweep_schedule", c.SweepSchedule),
		slog.String("poll_schedule", c.PollSchedule),
	)
}

// String renders LogValue on one line, so %v of a Config never shows a secret.
func (c Config) String() string { return format(c.LogValue()) }

// LogValue redacts the key.
func (s Source) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("endpoint", s.Endpoint),
		slog.String("api_version", string(s.APIVersion)),
		slog.String("auth", auth(s.Key)),
	)
}

func (s Source) String() string { return format(s.LogValue()) }

// LogValue redacts the key.
func (t Target) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("endpoint", t.Endpoint),
		slog.String("api_version", string(t.APIVersion)),
		slog.String("auth", auth(t.Key)),
	}
	if t.ResourceID != "" {
		attrs = append(attrs, slog.String("resource_id", t.ResourceID))
	}
	if t.Region != "" {
		attrs = append(attrs, slog.String("region", t.Region))
	}
	if t.Degrade {
		attrs = append(attrs, slog.Bool("degrade", true))
	}
	return slog.GroupValue(attrs...)
}

func (t Target) String() string { return t.Name + "=" + format(t.LogValue()) }

// LogValue redacts the connection string.
func (s ServiceBus) LogValue() slog.Value {
	if s.ConnectionString != "" {
		return slog.GroupValue(slog.String("connection_string", redacted))
	}
	return slog.GroupValue(slog.String("namespace", s.Namespace))
}

func (s ServiceBus) String() string { return format(s.LogValue()) }

// LogValue redacts the connection string.
func (t Table) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("name", t.Name)}
	if t.ConnectionString != "" {
		attrs = append(attrs, slog.String("connection_string", redacted))
	} else {
		attrs = append(attrs, slog.String("service_uri", t.ServiceURI))
	}
	return slog.GroupValue(attrs...)
}

func (t Table) String() string { return format(t.LogValue()) }

func setOrNot(secret string) string {
	if secret == "" {
		return "unset"
	}
	return redacted
}

// format writes a value as {k=v k2={...}}, quoting strings that need it.
func format(v slog.Value) string {
	v = v.Resolve()
	if v.Kind() != slog.KindGroup {
		s := v.String()
		if s == "" || strings.ContainsAny(s, " \t\"{}=") {
			return strconv.Quote(s)
		}
		return s
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, a := range v.Group() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a.Key)
		b.WriteByte('=')
		b.WriteString(format(a.Value))
	}
	b.WriteByte('}')
	return b.String()
}
