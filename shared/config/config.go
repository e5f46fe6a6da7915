// Package config reads and validates dimirror's settings.
//
// Settings come from the environment (app settings under the Functions host) or, for the
// CLI, from a local.settings.json file. Validation reports every bad setting in one error,
// each with its fix, and never includes a secret value.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/dimirror/dimirror/shared/docintel"
)

// Config is the validated configuration.
type Config struct {
	// Source and Targets are the legacy form (DIMIRROR_SOURCE_* + DIMIRROR_TARGETS). In the
	// rules form (DIMIRROR_RESOURCES + DIMIRROR_RULES) Source is empty and Targets lists every
	// resource some rule copies into, so code that looks a target up by name keeps working.
	Source  Source
	Targets []Target
	// Resources lists every resource by name and Rules says what is copied where, in both forms:
	// the legacy form is the resource LegacySourceName plus the targets, with one rule from the
	// source to each target.
	Resources []Resource
	Rules     []Rule
	// Legacy is true when the settings use the DIMIRROR_SOURCE_* + DIMIRROR_TARGETS form.
	Legacy bool
	// APIVersion is DIMIRROR_API_VERSION, the default for the source and every target.
	APIVersion docintel.APIVersion

	ServiceBus ServiceBus
	// Queue is the Service Bus queue that carries copy requests.
	Queue string
	Table Table

	// Listen is the standalone server's address.
	Listen string
	// APIKey protects the standalone server; required only there (see ValidateStandalone).
	APIKey string
	// HandlerPort is the port the Functions host told the custom handler to listen on
	// (127.0.0.1 only); 0 outside the host.
	HandlerPort int

	// MaxAttempts bounds the tries of one copy before it is given up.
	MaxAttempts int
	// RetryBase and RetryMax bound the exponential back-off between tries.
	RetryBase, RetryMax time.Duration
	// CallTimeout is the deadline of each call to a Document Intelligence resource.
	CallTimeout time.Duration
	// AuthMargin: a copy authorization closer than this to expiry is renewed before copyTo.
	AuthMargin time.Duration
	// ClaimLease bounds a step that holds a replica (authorizing it, starting its copy): other
	// instances keep off the row that long, and a crash mid-step delays the replica that long.
	ClaimLease time.Duration
	// FollowFor is how long the copy starter follows a copy it started with check messages;
	// 0 turns checks off (only the poll timer sees copies finish).
	FollowFor time.Duration
	// GiveUpAfter bounds a streak of transient failures of one replica (a resource deleted,
	// unreachable or throttled without end) and how long a copy operation may run; past it the
	// replica fails, naming what did not answer.
	GiveUpAfter time.Duration
	LogLevel    slog.Level

	// Replace overwrites target models that already exist; Prune deletes target models
	// that no longer exist on the source.
	Replace, Prune bool
	// Include and Exclude are path.Match globs over model and classifier IDs.
	Include, Exclude []string

	// Schedules are six-field NCRONTAB expressions (seconds first); see ParseSchedule.
	WatchSchedule, SweepSchedule, PollSchedule string

	// ListRate paces the list calls to each Document Intelligence resource (lists, /info and
	// reads of one model; requests per second). ManagementRate paces its management calls
	// (authorizeCopy, copyTo, delete), and the copies reconciliation starts. Both are per
	// instance and just under the S0 limits (10 and 5) by default, so a burst of copies or a
	// large sweep waits client-side instead of drawing 429s; 0 turns pacing off. OperationRate
	// paces the reads of copy operations (polls and checks; S0: 50) the same way.
	ListRate, ManagementRate, OperationRate float64
	// BudgetShare is the part of those rates dimirror may use (0 < share ≤ 1, default 0.8), the
	// rest being the customer's own calls' (training, analysis tooling) on the same resources.
	// The rates adapt below it on 429s; the share is their ceiling.
	BudgetShare float64

	// RPO is the recovery point objective: each replica should be verified in its target
	// within this of its source model being ready (DIMIRROR_RPO, default 15m).
	RPO time.Duration
	// ExpiryWarning: a model (or a target's copy) expiring sooner is reported by the sweep and
	// fails the drill (DIMIRROR_EXPIRY_WARNING, default 30 days).
	ExpiryWarning time.Duration
}

// Source is the resource models are copied from.
type Source struct {
	Endpoint string
	// Key is the resource key; empty means Microsoft Entra ID (DefaultAzureCredential).
	Key        string
	APIVersion docintel.APIVersion
}

// Target is a resource models are copied to.
type Target struct {
	Name     string
	Endpoint string
	// Key is the resource key; empty means Microsoft Entra ID (DefaultAzureCredential).
	Key        string
	APIVersion docintel.APIVersion
	// ResourceID and Region (lowercase ARM location) go into the v2.1 copy request body.
	ResourceID string
	Region     string
	// Degrade sends x-ms-forms-copy-degrade: true on copyTo into this target, needed when
	// copying from a customer-managed-key resource into one without.
	Degrade bool
}

// Resource is one Document Intelligence resource of the rules form; a target of the legacy form
// is the same thing.
type Resource = Target

// LegacySourceName names the DIMIRROR_SOURCE_* resource among Resources and in replica rows.
const LegacySourceName = "source"

// Rule copies what From holds (its own models and the copies it received) into To. Include,
// Exclude and Kinds narrow the rule beyond DIMIRROR_INCLUDE / DIMIRROR_EXCLUDE.
type Rule struct {
	From, To         string
	Include, Exclude []string
	// Kinds lists "model" and/or "classifier"; empty means both.
	Kinds []string
}

func (r Rule) String() string { return r.From + ">" + r.To }

// Matches reports whether the rule's own filters select an item of kind with id (the global
// DIMIRROR_INCLUDE / DIMIRROR_EXCLUDE apply on top).
func (r Rule) Matches(kind, id string) bool {
	if len(r.Kinds) > 0 && !slices.Contains(r.Kinds, kind) {
		return false
	}
	if len(r.Include) > 0 && !globsMatch(r.Include, id) {
		return false
	}
	return !globsMatch(r.Exclude, id)
}

func globsMatch(globs []string, id string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, id); ok {
			return true
		}
	}
	return false
}

// Resource returns the resource called name (rules form or legacy form alike).
func (c *Config) Resource(name string) (Resource, bool) {
	for _, r := range c.Resources {
		if r.Name == name {
			return r, true
		}
	}
	return Resource{}, false
}

// SourceNames lists, in settings order, every resource some rule copies from.
func (c *Config) SourceNames() []string {
	var out []string
	for _, r := range c.Rules {
		if !slices.Contains(out, r.From) {
			out = append(out, r.From)
		}
	}
	return out
}

// ServiceBus holds exactly one of a connection string or a namespace (managed identity).
type ServiceBus struct {
	ConnectionString string
	// Namespace is the fully qualified namespace, e.g. myns.servicebus.windows.net.
	Namespace string
}

// Table holds exactly one of a connection string or a service URI (managed identity), and
// the table name.
type Table struct {
	ConnectionString string
	ServiceURI       string
	Name             string
}

// Target returns the target called name.
func (c *Config) Target(name string) (Target, bool) {
	for _, t := range c.Targets {
		if t.Name == name {
			return t, true
		}
	}
	return Target{}, false
}

// settings is the raw, string-typed view of every setting; strings so that validation can
// report every bad value at once instead of envconfig stopping at the first. The envconfig
// tag is each setting's exact name. envconfig upper-cases names, which would miss the
// case-sensitive Functions connection settings on Linux, so those are ignored by envconfig
// and read with their exact name (readExact).
type settings struct {
	SourceEndpoint   string `envconfig:"DIMIRROR_SOURCE_ENDPOINT"`
	SourceKey        string `envconfig:"DIMIRROR_SOURCE_KEY"`
	SourceAPIVersion string `envconfig:"DIMIRROR_SOURCE_API_VERSION"`
	Targets          string `envconfig:"DIMIRROR_TARGETS"`
	TargetKeys       string `envconfig:"DIMIRROR_TARGET_KEYS"`
	APIVersion       string `envconfig:"DIMIRROR_API_VERSION" default:"2024-11-30"`
	Resources        string `envconfig:"DIMIRROR_RESOURCES"`
	ResourceKeys     string `envconfig:"DIMIRROR_RESOURCE_KEYS"`
	Rules            string `envconfig:"DIMIRROR_RULES"`

	ServiceBusConnection string `envconfig:"ServiceBusConnection" ignored:"true"`
	ServiceBusNamespace  string `envconfig:"ServiceBusConnection__fullyQualifiedNamespace" ignored:"true"`
	Queue                string `envconfig:"DIMIRROR_QUEUE" default:"copy-requests"`
	TableConnection      string `envconfig:"TableConnection" ignored:"true"`
	TableServiceURI      string `envconfig:"TableConnection__tableServiceUri" ignored:"true"`
	Table                string `envconfig:"DIMIRROR_TABLE" default:"replicas"`

	Listen      string `envconfig:"DIMIRROR_LISTEN" default:"127.0.0.1:7071"`
	APIKey      string `envconfig:"DIMIRROR_API_KEY"`
	HandlerPort string `envconfig:"FUNCTIONS_CUSTOMHANDLER_PORT"`
	LegacyPort  string `envconfig:"FUNCTIONS_HTTPWORKER_PORT"`

	MaxAttempts string `envconfig:"DIMIRROR_MAX_ATTEMPTS" default:"6"`
	RetryBase   string `envconfig:"DIMIRROR_RETRY_BASE" default:"30s"`
	RetryMax    string `envconfig:"DIMIRROR_RETRY_MAX" default:"30m"`
	CallTimeout string `envconfig:"DIMIRROR_CALL_TIMEOUT" default:"30s"`
	AuthMargin  string `envconfig:"DIMIRROR_AUTH_MARGIN" default:"5m"`
	ClaimLease  string `envconfig:"DIMIRROR_CLAIM_LEASE" default:"1m"`
	FollowFor   string `envconfig:"DIMIRROR_FOLLOW_FOR" default:"1m"`
	GiveUpAfter string `envconfig:"DIMIRROR_GIVE_UP_AFTER" default:"4h"`
	LogLevel    string `envconfig:"DIMIRROR_LOG_LEVEL" default:"info"`

	Replace       string `envconfig:"DIMIRROR_REPLACE" default:"false"`
	Prune         string `envconfig:"DIMIRROR_PRUNE" default:"false"`
	Include       string `envconfig:"DIMIRROR_INCLUDE"`
	Exclude       string `envconfig:"DIMIRROR_EXCLUDE"`
	WatchSchedule string `envconfig:"DIMIRROR_WATCH_SCHEDULE" default:"*/30 * * * * *"`
	SweepSchedule string `envconfig:"DIMIRROR_SWEEP_SCHEDULE" default:"0 0 * * * *"`
	PollSchedule  string `envconfig:"DIMIRROR_POLL_SCHEDULE" default:"*/5 * * * * *"`

	ListRate       string `envconfig:"DIMIRROR_LIST_RATE" default:"9"`
	ManagementRate string `envconfig:"DIMIRROR_MANAGEMENT_RATE" default:"4.8"`
	OperationRate  string `envconfig:"DIMIRROR_OPERATION_RATE" default:"45"`
	BudgetShare    string `envconfig:"DIMIRROR_BUDGET_SHARE" default:"0.8"`

	RPO           string `envconfig:"DIMIRROR_RPO" default:"15m"`
	ExpiryWarning string `envconfig:"DIMIRROR_EXPIRY_WARNING" default:"720h"`
}

// Names returns the name of every setting the package reads, in a stable order.
func Names() []string {
	t := reflect.TypeFor[settings]()
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		names = append(names, t.Field(i).Tag.Get("envconfig"))
	}
	return names
}

// Load reads the settings from the process environment and validates them.
func Load() (*Config, error) {
	var s settings
	if err := envconfig.Process("", &s); err != nil {
		return nil, fmt.Errorf("config: reading the environment: %w", err)
	}
	readExact(&s, os.LookupEnv, true)
	return s.validate()
}

// LoadFrom reads the settings through lookup (for example a settings file's values) and
// validates them. It never touches the process environment.
func LoadFrom(lookup func(name string) (string, bool)) (*Config, error) {
	if lookup == nil {
		return nil, errors.New("config: nil lookup function")
	}
	var s settings
	readExact(&s, lookup, false)
	return s.validate()
}

// readExact sets the fields of s from lookup by their exact names: only the fields envconfig
// ignores when onlyIgnored, else all of them.
func readExact(s *settings, lookup func(string) (string, bool), onlyIgnored bool) {
	v := reflect.ValueOf(s).Elem()
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if onlyIgnored && f.Tag.Get("ignored") != "true" {
			continue
		}
		if val, ok := lookup(f.Tag.Get("envconfig")); ok {
			v.Field(i).SetString(val)
		}
	}
}

// normalize trims every value and applies defaults to unset and empty settings alike, so
// an app setting left blank by a template means "default" in both Load and LoadFrom.
func (s *settings) normalize() {
	v := reflect.ValueOf(s).Elem()
	t := v.Type()
	for i := range t.NumField() {
		f := v.Field(i)
		val := strings.TrimSpace(f.String())
		if val == "" {
			val = t.Field(i).Tag.Get("default")
		}
		f.SetString(val)
	}
}
