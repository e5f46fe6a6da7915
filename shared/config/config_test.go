package config

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dimirror/dimirror/shared/docintel"
)

// unset removes a setting from the base in lookupWith.
const unset = "\x00unset"

// base is the smallest valid set of settings.
var base = map[string]string{
	"DIMIRROR_SOURCE_ENDPOINT":                      "https://src.cognitiveservices.azure.com/",
	"DIMIRROR_TARGETS":                              "west=https://west.cognitiveservices.azure.com/",
	"ServiceBusConnection__fullyQualifiedNamespace": "myns.servicebus.windows.net",
	"TableConnection__tableServiceUri":              "https://acct.table.core.windows.net",
}

func lookupWith(overrides map[string]string) func(string) (string, bool) {
	m := maps.Clone(base)
	for k, v := range overrides {
		if v == unset {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

func load(t *testing.T, overrides map[string]string) *Config {
	t.Helper()
	c, err := LoadFrom(lookupWith(overrides))
	if err != nil {
		t.Fatalf("LoadFrom: %v", err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	// Unset and set-but-empty settings both take the default.
	empty := map[string]string{}
	for _, name := range Names() {
		if _, ok := base[name]; !ok {
			empty[name] = ""
		}
	}
	for variant, overrides := range map[string]map[string]string{"unset": nil, "empty": empty} {
		c := load(t, overrides)
		tests := []struct {
			setting string
			got     any
			want    any
		}{
			{"DIMIRROR_API_VERSION", c.APIVersion, docintel.V2024_11_30},
			{"DIMIRROR_SOURCE_API_VERSION", c.Source.APIVersion, docintel.V2024_11_30},
			{"DIMIRROR_SOURCE_KEY", c.Source.Key, ""},
			{"DIMIRROR_TARGETS api-version", c.Targets[0].APIVersion, docintel.V2024_11_30},
			{"DIMIRROR_TARGET_KEYS", c.Targets[0].Key, ""},
			{"DIMIRROR_QUEUE", c.Queue, "copy-requests"},
			{"DIMIRROR_TABLE", c.Table.Name, "replicas"},
			{"DIMIRROR_LISTEN", c.Listen, "127.0.0.1:7071"},
			{"DIMIRROR_API_KEY", c.APIKey, ""},
			{"FUNCTIONS_CUSTOMHANDLER_PORT", c.HandlerPort, 0},
			{"DIMIRROR_MAX_ATTEMPTS", c.MaxAttempts, 6},
			{"DIMIRROR_RETRY_BASE", c.RetryBase, 30 * time.Second},
			{"DIMIRROR_RETRY_MAX", c.RetryMax, 30 * time.Minute},
			{"DIMIRROR_CALL_TIMEOUT", c.CallTimeout, 30 * time.Second},
			{"DIMIRROR_AUTH_MARGIN", c.AuthMargin, 5 * time.Minute},
			{"DIMIRROR_CLAIM_LEASE", c.ClaimLease, time.Minute},
			{"DIMIRROR_FOLLOW_FOR", c.FollowFor, time.Minute},
			{"DIMIRROR_GIVE_UP_AFTER", c.GiveUpAfter, 4 * time.Hour},
			{"DIMIRROR_LOG_LEVEL", c.LogLevel, slog.LevelInfo},
			{"DIMIRROR_REPLACE", c.Replace, false},
			{"DIMIRROR_PRUNE", c.Prune, false},
			{"DIMIRROR_INCLUDE", len(c.Include), 0},
			{"DIMIRROR_EXCLUDE", len(c.Exclude), 0},
			{"DIMIRROR_WATCH_SCHEDULE", c.WatchSchedule, "*/30 * * * * *"},
			{"DIMIRROR_SWEEP_SCHEDULE", c.SweepSchedule, "0 0 * * * *"},
			{"DIMIRROR_POLL_SCHEDULE", c.PollSchedule, "*/5 * * * * *"},
			{"DIMIRROR_LIST_RATE", c.ListRate, 9.0},
			{"DIMIRROR_MANAGEMENT_RATE", c.ManagementRate, 4.8},
			{"DIMIRROR_OPERATION_RATE", c.OperationRate, 45.0},
			{"DIMIRROR_BUDGET_SHARE", c.BudgetShare, 0.8},
			{"DIMIRROR_RPO", c.RPO, 15 * time.Minute},
			{"DIMIRROR_EXPIRY_WARNING", c.ExpiryWarning, 30 * 24 * time.Hour},
			{"ServiceBusConnection", c.ServiceBus.ConnectionString, ""},
			{"TableConnection", c.Table.ConnectionString, ""},
		}
		for _, tc := range tests {
			if tc.got != tc.want {
				t.Errorf("%s: %s = %v, want %v", variant, tc.setting, tc.got, tc.want)
			}
		}
	}
}

func TestValid(t *testing.T) {
	tests := []struct {
		name      string
		overrides map[string]string
		check     func(t *testing.T, c *Config)
	}{
		{"base values", nil, func(t *testing.T, c *Config) {
			want := Target{Name: "west", Endpoint: "https://west.cognitiveservices.azure.com", APIVersion: docintel.V2024_11_30}
			if len(c.Targets) != 1 || c.Targets[0] != want {
				t.Errorf("Targets = %+v, want [%+v]", c.Targets, want)
			}
			if c.Source.Endpoint != "https://src.cognitiveservices.azure.com" {
				t.Errorf("Source.Endpoint = %q", c.Source.Endpoint)
			}
			if c.ServiceBus.Namespace != "myns.servicebus.windows.net" || c.Table.ServiceURI != "https://acct.table.core.windows.net" {
				t.Errorf("ServiceBus %+v Table %+v", c.ServiceBus, c.Table)
			}
		}},
		{"targets with every option and keys", map[string]string{
			"DIMIRROR_TARGETS": " west=https://west.example.net/;api-version=2023-07-31;degrade=true, " +
				"east=http://127.0.0.1:8080/fake/;API-Version=2024-11-30;resource-id=/subscriptions/s/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/east;region=westus2;,",
			"DIMIRROR_TARGET_KEYS": "west=k1, east=k2==",
		}, func(t *testing.T, c *Config) {
			want := []Target{
				{Name: "west", Endpoint: "https://west.example.net", Key: "k1", APIVersion: docintel.V2023_07_31, Degrade: true},
				{Name: "east", Endpoint: "http://127.0.0.1:8080/fake", Key: "k2==", APIVersion: docintel.V2024_11_30,
					ResourceID: "/subscriptions/s/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/east", Region: "westus2"},
			}
			if !slices.Equal(c.Targets, want) {
				t.Errorf("Targets:\n got %#v\nwant %#v", c.Targets, want)
			}
			if got, ok := c.Target("east"); !ok || got.Region != "westus2" {
				t.Errorf("Target(east) = %v, %v", got, ok)
			}
			if _, ok := c.Target("nope"); ok {
				t.Error("Target(nope) found")
			}
		}},
		{"v2.1 source and targets", map[string]string{
			"DIMIRROR_SOURCE_API_VERSION": "v2.1",
			"DIMIRROR_TARGETS": "west=https://west.example.net/;api-version=2.1;resource-id=/subscriptions/s/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/west;region=westeurope," +
				"north=https://north.example.net;resource-id=/SUBSCRIPTIONS/s/resourcegroups/g/providers/microsoft.cognitiveservices/accounts/north;region=northeurope;api-version=V2.1",
		}, func(t *testing.T, c *Config) {
			if c.Source.APIVersion != docintel.V2_1 || c.APIVersion != docintel.V2024_11_30 {
				t.Errorf("api-versions: source %s, default %s", c.Source.APIVersion, c.APIVersion)
			}
			for _, tg := range c.Targets {
				if tg.APIVersion != docintel.V2_1 || tg.ResourceID == "" || tg.Region == "" {
					t.Errorf("target %s = %#v", tg.Name, tg)
				}
			}
		}},
		{"connection strings", map[string]string{
			"ServiceBusConnection__fullyQualifiedNamespace": unset,
			"ServiceBusConnection":                          "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=abc=",
			"TableConnection__tableServiceUri":              unset,
			"TableConnection":                               "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=xyz==;EndpointSuffix=core.windows.net",
		}, func(t *testing.T, c *Config) {
			if !strings.HasSuffix(c.ServiceBus.ConnectionString, "SharedAccessKey=abc=") || c.ServiceBus.Namespace != "" {
				t.Errorf("ServiceBus = %v", c.ServiceBus)
			}
			if !strings.Contains(c.Table.ConnectionString, "AccountKey=xyz==") || c.Table.ServiceURI != "" {
				t.Errorf("Table = %v", c.Table)
			}
		}},
		{"development storage", map[string]string{
			"TableConnection__tableServiceUri": unset,
			"TableConnection":                  "UseDevelopmentStorage=true",
		}, func(t *testing.T, c *Config) {
			if c.Table.ConnectionString != "UseDevelopmentStorage=true" {
				t.Errorf("Table = %v", c.Table)
			}
		}},
		{"handler port and legacy fallback", map[string]string{"FUNCTIONS_HTTPWORKER_PORT": "4000"}, func(t *testing.T, c *Config) {
			if c.HandlerPort != 4000 {
				t.Errorf("HandlerPort = %d, want 4000 from the legacy setting", c.HandlerPort)
			}
		}},
		{"custom handler port wins", map[string]string{"FUNCTIONS_CUSTOMHANDLER_PORT": "5000", "FUNCTIONS_HTTPWORKER_PORT": "4000"}, func(t *testing.T, c *Config) {
			if c.HandlerPort != 5000 {
				t.Errorf("HandlerPort = %d, want 5000", c.HandlerPort)
			}
		}},
		{"every tunable", map[string]string{
			"DIMIRROR_API_VERSION":    "2022-08-31",
			"DIMIRROR_SOURCE_KEY":     "srckey",
			"DIMIRROR_QUEUE":          "copies/v1_main.q",
			"DIMIRROR_TABLE":          "Mirror2",
			"DIMIRROR_LISTEN":         ":0",
			"DIMIRROR_API_KEY":        "0123456789abcdef",
			"DIMIRROR_MAX_ATTEMPTS":   " 3 ",
			"DIMIRROR_RETRY_BASE":     "1s",
			"DIMIRROR_RETRY_MAX":      "1s",
			"DIMIRROR_CALL_TIMEOUT":   "1m30s",
			"DIMIRROR_AUTH_MARGIN":    "0",
			"DIMIRROR_CLAIM_LEASE":    "3m",
			"DIMIRROR_FOLLOW_FOR":     "0",
			"DIMIRROR_LOG_LEVEL":      "DEBUG",
			"DIMIRROR_REPLACE":        "true",
			"DIMIRROR_PRUNE":          "1",
			"DIMIRROR_INCLUDE":        "invoice-*, receipt-[0-9]*,",
			"DIMIRROR_EXCLUDE":        `*-test,draft\*`,
			"DIMIRROR_WATCH_SCHEDULE": "0 */2 * * * *",
			"DIMIRROR_SWEEP_SCHEDULE": "0 30 3 * * 1-5",
			"DIMIRROR_POLL_SCHEDULE":  "*/10 * * * * *",
		}, func(t *testing.T, c *Config) {
			got := strings.TrimSuffix(fmt.Sprintln(c.APIVersion, c.Source.APIVersion, c.Targets[0].APIVersion, c.Source.Key, c.Queue, c.Table.Name, c.Listen, c.APIKey,
				c.MaxAttempts, c.RetryBase, c.RetryMax, c.CallTimeout, c.AuthMargin, c.ClaimLease, c.FollowFor, c.LogLevel, c.Replace, c.Prune,
				c.Include, c.Exclude, c.WatchSchedule, "|", c.SweepSchedule, "|", c.PollSchedule), "\n")
			want := `2022-08-31 2022-08-31 2022-08-31 srckey copies/v1_main.q Mirror2 :0 0123456789abcdef 3 1s 1s 1m30s 0s 3m0s 0s DEBUG true true [invoice-* receipt-[0-9]*] [*-test draft\*] 0 */2 * * * * | 0 30 3 * * 1-5 | */10 * * * * *`
			if got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		}},
		{"log levels", map[string]string{"DIMIRROR_LOG_LEVEL": "Warn"}, func(t *testing.T, c *Config) {
			if c.LogLevel != slog.LevelWarn {
				t.Errorf("LogLevel = %v", c.LogLevel)
			}
		}},
		{"log level error", map[string]string{"DIMIRROR_LOG_LEVEL": "error"}, func(t *testing.T, c *Config) {
			if c.LogLevel != slog.LevelError {
				t.Errorf("LogLevel = %v", c.LogLevel)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, load(t, tc.overrides))
		})
	}
}

func TestInvalid(t *testing.T) {
	const armID = "/subscriptions/s/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/a"
	tests := []struct {
		name      string
		overrides map[string]string
		setting   string
		want      string
	}{
		{"source endpoint missing", map[string]string{"DIMIRROR_SOURCE_ENDPOINT": unset}, "DIMIRROR_SOURCE_ENDPOINT", "required: set it to the source resource's endpoint"},
		{"source endpoint relative", map[string]string{"DIMIRROR_SOURCE_ENDPOINT": "src.cognitiveservices.azure.com"}, "DIMIRROR_SOURCE_ENDPOINT", "not an absolute http(s) URL; use the resource's endpoint, e.g. https://"},
		{"source endpoint ftp", map[string]string{"DIMIRROR_SOURCE_ENDPOINT": "ftp://x/"}, "DIMIRROR_SOURCE_ENDPOINT", "not an absolute http(s) URL"},
		{"source endpoint no host", map[string]string{"DIMIRROR_SOURCE_ENDPOINT": "https:///path"}, "DIMIRROR_SOURCE_ENDPOINT", "URL has no host"},
		{"source endpoint user info", map[string]string{"DIMIRROR_SOURCE_ENDPOINT": "https://u:p@x/"}, "DIMIRROR_SOURCE_ENDPOINT", "must not contain user info"},
		{"source endpoint query", map[string]string{"DIMIRROR_SOURCE_ENDPOINT": "https://x/?a=b"}, "DIMIRROR_SOURCE_ENDPOINT", "must not have a query or fragment"},
		{"source endpoint unparsable", map[string]string{"DIMIRROR_SOURCE_ENDPOINT": "https://x:y:z/%zz"}, "DIMIRROR_SOURCE_ENDPOINT", "not a valid URL"},
		{"api version", map[string]string{"DIMIRROR_API_VERSION": "2024-02-29-preview"}, "DIMIRROR_API_VERSION", `"2024-02-29-preview" is not supported; use one of 2024-11-30, 2023-07-31, 2022-08-31 or 2.1`},
		{"source api version", map[string]string{"DIMIRROR_SOURCE_API_VERSION": "3.0"}, "DIMIRROR_SOURCE_API_VERSION", `"3.0" is not supported`},
		{"targets missing", map[string]string{"DIMIRROR_TARGETS": unset}, "DIMIRROR_TARGETS", "required: list the targets as name=endpoint"},
		{"targets only commas", map[string]string{"DIMIRROR_TARGETS": " , ,"}, "DIMIRROR_TARGETS", "lists no target"},
		{"target without endpoint", map[string]string{"DIMIRROR_TARGETS": "west"}, "DIMIRROR_TARGETS", "entry 1 does not start with name=endpoint"},
		{"target bad name", map[string]string{"DIMIRROR_TARGETS": "West_1=https://x/"}, "DIMIRROR_TARGETS", `entry 1: name "West_1" is invalid; use 1-32 lowercase`},
		{"target name too long", map[string]string{"DIMIRROR_TARGETS": strings.Repeat("a", 33) + "=https://x/"}, "DIMIRROR_TARGETS", "is invalid"},
		{"target duplicate", map[string]string{"DIMIRROR_TARGETS": "a=https://x/,a=https://y/"}, "DIMIRROR_TARGETS", `target "a": named twice`},
		{"target bad endpoint", map[string]string{"DIMIRROR_TARGETS": "a=x.example.net"}, "DIMIRROR_TARGETS", `target "a": endpoint: not an absolute http(s) URL`},
		{"target unknown option", map[string]string{"DIMIRROR_TARGETS": "a=https://x/;colour=red"}, "DIMIRROR_TARGETS", `target "a": unknown option "colour"; options are api-version, resource-id, region and degrade`},
		{"target option twice", map[string]string{"DIMIRROR_TARGETS": "a=https://x/;degrade=true;degrade=false"}, "DIMIRROR_TARGETS", "option degrade given twice"},
		{"target option without value", map[string]string{"DIMIRROR_TARGETS": "a=https://x/;region"}, "DIMIRROR_TARGETS", "option region has no value"},
		{"target api version", map[string]string{"DIMIRROR_TARGETS": "a=https://x/;api-version=2021-09-30-preview"}, "DIMIRROR_TARGETS", `api-version "2021-09-30-preview" is not supported`},
		{"target bad resource id", map[string]string{"DIMIRROR_TARGETS": "a=https://x/;resource-id=/subscriptions/s/accounts/a"}, "DIMIRROR_TARGETS", "resource-id must be the resource's ARM ID"},
		{"target bad region", map[string]string{"DIMIRROR_TARGETS": "a=https://x/;region=West Europe"}, "DIMIRROR_TARGETS", `region "West Europe" must be the lowercase ARM location`},
		{"target bad degrade", map[string]string{"DIMIRROR_TARGETS": "a=https://x/;degrade=yes"}, "DIMIRROR_TARGETS", `degrade "yes" must be true or false`},
		{"v2.1 target needs resource id and region", map[string]string{"DIMIRROR_TARGETS": "a=https://x/;api-version=2.1", "DIMIRROR_SOURCE_API_VERSION": "2.1"}, "DIMIRROR_TARGETS",
			"api-version 2.1 needs resource-id and region (the v2.1 copy request carries them); add ;resource-id=...;region=..."},
		{"v2.1 target needs region", map[string]string{"DIMIRROR_TARGETS": "a=https://x/;api-version=2.1;resource-id=" + armID, "DIMIRROR_SOURCE_API_VERSION": "2.1"}, "DIMIRROR_TARGETS", "needs region"},
		{"v2.1 target from a v4 source", map[string]string{"DIMIRROR_TARGETS": "a=https://x/;api-version=2.1;resource-id=" + armID + ";region=eastus"}, "DIMIRROR_TARGETS",
			`target "a" uses api-version 2.1 but the source uses 2024-11-30: v2.1 and later versions cannot copy to each other`},
		{"v4 target from a v2.1 source", map[string]string{"DIMIRROR_SOURCE_API_VERSION": "v2.1"}, "DIMIRROR_TARGETS", `target "west" uses api-version 2024-11-30 but the source uses 2.1`},
		{"target keys malformed", map[string]string{"DIMIRROR_TARGET_KEYS": "justakey"}, "DIMIRROR_TARGET_KEYS", "entry 1 is not name=key (value not shown)"},
		{"target keys bad name", map[string]string{"DIMIRROR_TARGET_KEYS": "West Side=k"}, "DIMIRROR_TARGET_KEYS", "entry 1: the name is not a valid target name"},
		{"target keys unknown target", map[string]string{"DIMIRROR_TARGET_KEYS": "east=k"}, "DIMIRROR_TARGET_KEYS", `"east" is not a target in DIMIRROR_TARGETS (targets: west)`},
		{"target keys twice", map[string]string{"DIMIRROR_TARGET_KEYS": "west=k,west=k2"}, "DIMIRROR_TARGET_KEYS", `"west" is given twice`},
		{"target keys empty key", map[string]string{"DIMIRROR_TARGET_KEYS": "west="}, "DIMIRROR_TARGET_KEYS", `the key for "west" is empty`},
		{"service bus missing", map[string]string{"ServiceBusConnection__fullyQualifiedNamespace": unset}, "ServiceBusConnection", "required: set ServiceBusConnection__fullyQualifiedNamespace=<namespace>.servicebus.windows.net"},
		{"service bus both", map[string]string{"ServiceBusConnection": "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=a;SharedAccessKey=b"}, "ServiceBusConnection", "not both"},
		{"service bus bad connection", map[string]string{"ServiceBusConnection__fullyQualifiedNamespace": unset, "ServiceBusConnection": "SharedAccessKey=b"}, "ServiceBusConnection", "has no Endpoint=sb://"},
		{"service bus not key=value", map[string]string{"ServiceBusConnection__fullyQualifiedNamespace": unset, "ServiceBusConnection": "garbage"}, "ServiceBusConnection", "every part must be key=value (value not shown)"},
		{"service bus https endpoint", map[string]string{"ServiceBusConnection__fullyQualifiedNamespace": unset, "ServiceBusConnection": "Endpoint=https://ns/;SharedAccessKey=b"}, "ServiceBusConnection", "Endpoint must look like sb://"},
		{"service bus entity path", map[string]string{"ServiceBusConnection__fullyQualifiedNamespace": unset, "ServiceBusConnection": "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKey=b;EntityPath=q"}, "ServiceBusConnection", "scoped to one entity"},
		{"service bus namespace URL", map[string]string{"ServiceBusConnection__fullyQualifiedNamespace": "sb://myns.servicebus.windows.net/"}, "ServiceBusConnection__fullyQualifiedNamespace", "is not a host name; give the namespace's host only"},
		{"service bus namespace bare", map[string]string{"ServiceBusConnection__fullyQualifiedNamespace": "myns"}, "ServiceBusConnection__fullyQualifiedNamespace", "is not a host name"},
		{"queue name", map[string]string{"DIMIRROR_QUEUE": "copy requests"}, "DIMIRROR_QUEUE", `"copy requests" is not a Service Bus queue name`},
		{"queue name trailing dash", map[string]string{"DIMIRROR_QUEUE": "copy-"}, "DIMIRROR_QUEUE", "starting and ending with a letter or digit"},
		{"table missing", map[string]string{"TableConnection__tableServiceUri": unset}, "TableConnection", "required: set TableConnection__tableServiceUri=https://<account>.table.core.windows.net"},
		{"table both", map[string]string{"TableConnection": "UseDevelopmentStorage=true"}, "TableConnection", "not both"},
		{"table connection no account", map[string]string{"TableConnection__tableServiceUri": unset, "TableConnection": "AccountKey=abc"}, "TableConnection", "names no storage account"},
		{"table connection no credential", map[string]string{"TableConnection__tableServiceUri": unset, "TableConnection": "AccountName=acct"}, "TableConnection", "has no credential"},
		{"table uri", map[string]string{"TableConnection__tableServiceUri": "acct.table.core.windows.net"}, "TableConnection__tableServiceUri", "not an absolute http(s) URL; use https://<account>.table.core.windows.net"},
		{"table name short", map[string]string{"DIMIRROR_TABLE": "ab"}, "DIMIRROR_TABLE", `"ab" is not a valid table name: use 3-63 letters and digits`},
		{"rpo not a duration", map[string]string{"DIMIRROR_RPO": "15"}, "DIMIRROR_RPO", "is not a duration"},
		{"rpo in seconds", map[string]string{"DIMIRROR_RPO": "15s"}, "DIMIRROR_RPO", "use minutes, e.g. 15m"},
		{"rpo zero", map[string]string{"DIMIRROR_RPO": "0s"}, "DIMIRROR_RPO", "must be positive"},
		{"expiry warning in days", map[string]string{"DIMIRROR_EXPIRY_WARNING": "30d"}, "DIMIRROR_EXPIRY_WARNING", "is not a duration"},
		{"expiry warning too short", map[string]string{"DIMIRROR_EXPIRY_WARNING": "10m"}, "DIMIRROR_EXPIRY_WARNING", "e.g. 720h"},
		{"table name digit first", map[string]string{"DIMIRROR_TABLE": "1replicas"}, "DIMIRROR_TABLE", "is not a valid table name"},
		{"table name dash", map[string]string{"DIMIRROR_TABLE": "my-replicas"}, "DIMIRROR_TABLE", "is not a valid table name"},
		{"table name reserved", map[string]string{"DIMIRROR_TABLE": "Tables"}, "DIMIRROR_TABLE", `"tables" is reserved`},
		{"listen no port", map[string]string{"DIMIRROR_LISTEN": "127.0.0.1"}, "DIMIRROR_LISTEN", `"127.0.0.1" is not host:port; use host:port, e.g. 127.0.0.1:7071`},
		{"listen bad port", map[string]string{"DIMIRROR_LISTEN": "127.0.0.1:http"}, "DIMIRROR_LISTEN", `port "http" is not a number`},
		{"listen port range", map[string]string{"DIMIRROR_LISTEN": ":70000"}, "DIMIRROR_LISTEN", "from 0 to 65535"},
		{"listen bad host", map[string]string{"DIMIRROR_LISTEN": "bad_host:80"}, "DIMIRROR_LISTEN", "neither an IP address nor a host name"},
		{"handler port", map[string]string{"FUNCTIONS_CUSTOMHANDLER_PORT": "0"}, "FUNCTIONS_CUSTOMHANDLER_PORT", `"0" is not a TCP port from 1 to 65535`},
		{"legacy port", map[string]string{"FUNCTIONS_HTTPWORKER_PORT": "port"}, "FUNCTIONS_HTTPWORKER_PORT", "is not a TCP port"},
		{"max attempts zero", map[string]string{"DIMIRROR_MAX_ATTEMPTS": "0"}, "DIMIRROR_MAX_ATTEMPTS", `"0" is not a whole number from 1 to 100`},
		{"max attempts text", map[string]string{"DIMIRROR_MAX_ATTEMPTS": "six"}, "DIMIRROR_MAX_ATTEMPTS", "is not a whole number"},
		{"max attempts huge", map[string]string{"DIMIRROR_MAX_ATTEMPTS": "101"}, "DIMIRROR_MAX_ATTEMPTS", "is not a whole number"},
		{"retry base syntax", map[string]string{"DIMIRROR_RETRY_BASE": "30"}, "DIMIRROR_RETRY_BASE", `"30" is not a duration; use Go syntax such as 30s`},
		{"retry base zero", map[string]string{"DIMIRROR_RETRY_BASE": "0s"}, "DIMIRROR_RETRY_BASE", "must be positive"},
		{"retry max negative", map[string]string{"DIMIRROR_RETRY_MAX": "-1m"}, "DIMIRROR_RETRY_MAX", "-1m0s must be positive"},
		{"retry max below base", map[string]string{"DIMIRROR_RETRY_MAX": "10s"}, "DIMIRROR_RETRY_MAX", "10s is shorter than DIMIRROR_RETRY_BASE (30s)"},
		{"call timeout", map[string]string{"DIMIRROR_CALL_TIMEOUT": "soon"}, "DIMIRROR_CALL_TIMEOUT", "is not a duration"},
		{"auth margin negative", map[string]string{"DIMIRROR_AUTH_MARGIN": "-5m"}, "DIMIRROR_AUTH_MARGIN", "must not be negative"},
		{"auth margin too long", map[string]string{"DIMIRROR_AUTH_MARGIN": "1h"}, "DIMIRROR_AUTH_MARGIN", "1h0m0s is not shorter than a copy authorization's 1h lifetime"},
		{"follow for negative", map[string]string{"DIMIRROR_FOLLOW_FOR": "-1m"}, "DIMIRROR_FOLLOW_FOR", "must not be negative"},
		{"give up after too short", map[string]string{"DIMIRROR_GIVE_UP_AFTER": "10s"}, "DIMIRROR_GIVE_UP_AFTER", "too short"},
		{"claim lease zero", map[string]string{"DIMIRROR_CLAIM_LEASE": "0s"}, "DIMIRROR_CLAIM_LEASE", "must be positive"},
		{"claim lease shorter than a call", map[string]string{"DIMIRROR_CLAIM_LEASE": "20s"}, "DIMIRROR_CLAIM_LEASE", "20s is shorter than DIMIRROR_CALL_TIMEOUT (30s)"},
		{"log level", map[string]string{"DIMIRROR_LOG_LEVEL": "verbose"}, "DIMIRROR_LOG_LEVEL", `"verbose" is not a log level; use debug, info, warn or error`},
		{"replace", map[string]string{"DIMIRROR_REPLACE": "yes"}, "DIMIRROR_REPLACE", `"yes" is not a boolean; use true or false`},
		{"prune", map[string]string{"DIMIRROR_PRUNE": "maybe"}, "DIMIRROR_PRUNE", "is not a boolean"},
		{"include glob", map[string]string{"DIMIRROR_INCLUDE": "ok-*,bad[,"}, "DIMIRROR_INCLUDE", `pattern "bad[" is malformed; use path.Match syntax`},
		{"exclude glob", map[string]string{"DIMIRROR_EXCLUDE": `trailing\`}, "DIMIRROR_EXCLUDE", "is malformed"},
		{"watch schedule five fields", map[string]string{"DIMIRROR_WATCH_SCHEDULE": "*/5 * * * *"}, "DIMIRROR_WATCH_SCHEDULE", "has 5 fields, want 6 (second minute hour day month weekday)"},
		{"sweep schedule range", map[string]string{"DIMIRROR_SWEEP_SCHEDULE": "0 61 * * * *"}, "DIMIRROR_SWEEP_SCHEDULE", "is not a valid NCRONTAB expression"},
		{"poll schedule descriptor", map[string]string{"DIMIRROR_POLL_SCHEDULE": "@every 5s"}, "DIMIRROR_POLL_SCHEDULE", "descriptors and time zones are not supported"},
		{"poll schedule time zone", map[string]string{"DIMIRROR_POLL_SCHEDULE": "CRON_TZ=UTC */5 * * * * *"}, "DIMIRROR_POLL_SCHEDULE", "descriptors and time zones"},
		{"list rate syntax", map[string]string{"DIMIRROR_LIST_RATE": "fast"}, "DIMIRROR_LIST_RATE", `"fast" is not a number; use requests per second, e.g. 9`},
		{"list rate negative", map[string]string{"DIMIRROR_LIST_RATE": "-1"}, "DIMIRROR_LIST_RATE", "-1 is out of range"},
		{"list rate not finite", map[string]string{"DIMIRROR_LIST_RATE": "NaN"}, "DIMIRROR_LIST_RATE", "is not a number"},
		{"operation rate syntax", map[string]string{"DIMIRROR_OPERATION_RATE": "lots"}, "DIMIRROR_OPERATION_RATE", `"lots" is not a number; use requests per second, e.g. 45 (just under the S0 limit of 50)`},
		{"management rate huge", map[string]string{"DIMIRROR_MANAGEMENT_RATE": "5000"}, "DIMIRROR_MANAGEMENT_RATE", "5000 is out of range; use 0 (no pacing) to 1000 requests per second (the S0 limit is 5, F0 1)"},
		{"budget share syntax", map[string]string{"DIMIRROR_BUDGET_SHARE": "80%"}, "DIMIRROR_BUDGET_SHARE", `"80%" is not a number; use the share of each resource's rate limits dimirror may use, e.g. 0.8`},
		{"budget share zero", map[string]string{"DIMIRROR_BUDGET_SHARE": "0"}, "DIMIRROR_BUDGET_SHARE", "0 is out of range; use more than 0 and at most 1"},
		{"budget share over one", map[string]string{"DIMIRROR_BUDGET_SHARE": "1.5"}, "DIMIRROR_BUDGET_SHARE", "1.5 is out of range"},
		{"budget share not finite", map[string]string{"DIMIRROR_BUDGET_SHARE": "Inf"}, "DIMIRROR_BUDGET_SHARE", "is not a number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadFrom(lookupWith(tc.overrides))
			if c != nil {
				t.Errorf("config returned with error: %v", c)
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if len(se.Problems) != 1 {
				t.Fatalf("want exactly one problem, got:\n%v", err)
			}
			p := se.Problems[0]
			if p.Setting != tc.setting || !strings.Contains(p.Message, tc.want) {
				t.Errorf("problem = %s: %s\nwant      %s: ...%s...", p.Setting, p.Message, tc.setting, tc.want)
			}
			if want := "invalid settings:\n  " + tc.setting + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Error() = %q, want prefix %q", err.Error(), want)
			}
		})
	}
}

func TestAllProblemsReportedTogether(t *testing.T) {
	_, err := LoadFrom(lookupWith(map[string]string{
		"DIMIRROR_SOURCE_ENDPOINT":         unset,
		"DIMIRROR_TARGETS":                 "Bad Name=https://x/",
		"DIMIRROR_API_VERSION":             "1.0",
		"ServiceBusConnection":             "Endpoint=sb://x.servicebus.windows.net/;SharedAccessKey=k",
		"TableConnection__tableServiceUri": unset,
		"DIMIRROR_TABLE":                   "x",
		"DIMIRROR_MAX_ATTEMPTS":            "-1",
		"DIMIRROR_RETRY_BASE":              "fast",
		"DIMIRROR_LOG_LEVEL":               "loud",
		"DIMIRROR_PRUNE":                   "sure",
		"DIMIRROR_WATCH_SCHEDULE":          "never",
	}))
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want *Error", err)
	}
	var got []string
	for _, p := range se.Problems {
		got = append(got, p.Setting)
	}
	want := []string{
		"DIMIRROR_API_VERSION", "DIMIRROR_SOURCE_ENDPOINT", "DIMIRROR_TARGETS", "ServiceBusConnection", "TableConnection",
		"DIMIRROR_TABLE", "DIMIRROR_MAX_ATTEMPTS", "DIMIRROR_RETRY_BASE", "DIMIRROR_LOG_LEVEL", "DIMIRROR_PRUNE", "DIMIRROR_WATCH_SCHEDULE",
	}
	if !slices.Equal(got, want) {
		t.Errorf("settings reported:\n got %v\nwant %v\n%v", got, want, err)
	}
	lines := strings.Split(err.Error(), "\n")
	if lines[0] != "invalid settings:" || len(lines) != len(want)+1 {
		t.Fatalf("Error() has %d lines:\n%v", len(lines), err)
	}
	for i, l := range lines[1:] {
		if !strings.HasPrefix(l, "  "+want[i]+": ") {
			t.Errorf("line %d = %q, want it to name %s", i+1, l, want[i])
		}
	}
}

// secrets are distinctive values that must never appear in errors or String output.
var secrets = []string{"SRCKEY-0xDEADBEEF", "TGTKEY-0xFEEDFACE", "APIKEY-0xC0FFEE00", "SBKEY-0xBADC0DE0", "STKEY-0xFACADE00"}

func secretSettings() map[string]string {
	return map[string]string{
		"DIMIRROR_SOURCE_KEY":                           secrets[0],
		"DIMIRROR_TARGET_KEYS":                          "west=" + secrets[1],
		"DIMIRROR_API_KEY":                              secrets[2],
		"ServiceBusConnection__fullyQualifiedNamespace": unset,
		"ServiceBusConnection":                          "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=n;SharedAccessKey=" + secrets[3],
		"TableConnection__tableServiceUri":              unset,
		"TableConnection":                               "AccountName=a;AccountKey=" + secrets[4],
	}
}

func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, sec := range secrets {
		if strings.Contains(s, sec) {
			t.Errorf("%s reveals a secret: %s", what, s)
		}
	}
}

func TestSecretsNotInOutput(t *testing.T) {
	c := load(t, secretSettings())
	if c.Source.Key != secrets[0] || c.Targets[0].Key != secrets[1] || c.APIKey != secrets[2] {
		t.Fatal("secrets were not loaded")
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("start", "config", c)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("start", "config", *c, "target", c.Targets[0], "sb", c.ServiceBus, "table", c.Table, "source", c.Source)
	outputs := map[string]string{
		"String":       c.String(),
		"slog":         buf.String(),
		"%v":           fmt.Sprintf("%v", c),
		"%+v":          fmt.Sprintf("%+v", *c),
		"%v target":    fmt.Sprintf("%v", c.Targets),
		"%+v parts":    fmt.Sprintf("%+v %+v %+v %+v", c.Source, c.Targets[0], c.ServiceBus, c.Table),
		"%s ValidateS": fmt.Sprint(c.ValidateStandalone(), c.ValidateServe()),
	}
	for what, out := range outputs {
		assertNoSecret(t, what, out)
	}
	for _, want := range []string{"[redacted]", "west=", "https://src.cognitiveservices.azure.com", "copy-requests", "auth_margin=5m0s"} {
		if !strings.Contains(c.String(), want) {
			t.Errorf("String() = %s\nwant it to contain %q", c.String(), want)
		}
	}
	// Without secrets, String says how each resource is reached.
	plain := load(t, nil).String()
	for _, want := range []string{"auth=entra-id", "namespace=myns.servicebus.windows.net", "api_key=unset"} {
		if !strings.Contains(plain, want) {
			t.Errorf("String() = %s\nwant it to contain %q", plain, want)
		}
	}
}

func TestSecretsNotInErrors(t *testing.T) {
	tests := []map[string]string{
		// Malformed key lists: the entry may be a bare key.
		{"DIMIRROR_TARGET_KEYS": secrets[1]},
		{"DIMIRROR_TARGET_KEYS": "=" + secrets[1]},
		{"DIMIRROR_TARGET_KEYS": "nope=" + secrets[1]},
		{"DIMIRROR_TARGET_KEYS": "west=" + secrets[1] + ",west=" + secrets[0]},
		// A key pasted into the target list.
		{"DIMIRROR_TARGETS": "west=https://x/;key=" + secrets[1]},
		{"DIMIRROR_TARGETS": "west=https://user:" + secrets[1] + "@x/"},
		{"DIMIRROR_TARGETS": "west=https://x/?key=" + secrets[1]},
		{"DIMIRROR_SOURCE_ENDPOINT": "https://x/?subscription-key=" + secrets[0]},
		{"DIMIRROR_SOURCE_ENDPOINT": secrets[0]},
		// Bad connection strings and both connection forms at once.
		{"ServiceBusConnection": secrets[3]},
		{"ServiceBusConnection": "Endpoint=https://" + secrets[3] + "/;SharedAccessKey=" + secrets[3]},
		{"ServiceBusConnection": "SharedAccessKey=" + secrets[3]},
		{"ServiceBusConnection__fullyQualifiedNamespace": unset, "ServiceBusConnection": "Endpoint=sb://x/;SharedAccessKey=" + secrets[3] + ";EntityPath=q"},
		{"TableConnection": "AccountKey=" + secrets[4]},
		{"TableConnection__tableServiceUri": unset, "TableConnection": secrets[4]},
		{"TableConnection__tableServiceUri": unset, "TableConnection": "AccountName=a;AccountKey=" + secrets[4] + ";x"},
		{"TableConnection__tableServiceUri": "https://a.table.core.windows.net/?sig=" + secrets[4]},
	}
	for i, overrides := range tests {
		_, err := LoadFrom(lookupWith(overrides))
		if err == nil {
			t.Errorf("case %d: no error", i)
			continue
		}
		assertNoSecret(t, fmt.Sprintf("case %d error", i), err.Error())
	}
	// ValidateStandalone with a short key reports only its length.
	c := load(t, map[string]string{"DIMIRROR_API_KEY": "APIKEY-0x"})
	if err := c.ValidateStandalone(); err == nil || strings.Contains(err.Error(), "APIKEY-0x") {
		t.Errorf("ValidateStandalone = %v", err)
	}
}

func TestValidateModes(t *testing.T) {
	tests := []struct {
		name      string
		overrides map[string]string
		validate  func(*Config) error
		want      string // "" = valid
	}{
		{"standalone without key", nil, (*Config).ValidateStandalone, "DIMIRROR_API_KEY: required in standalone mode"},
		{"standalone short key", map[string]string{"DIMIRROR_API_KEY": "short"}, (*Config).ValidateStandalone, "DIMIRROR_API_KEY: too short (5 characters)"},
		{"standalone ok", map[string]string{"DIMIRROR_API_KEY": strings.Repeat("k", 16)}, (*Config).ValidateStandalone, ""},
		{"serve without port", nil, (*Config).ValidateServe, "FUNCTIONS_CUSTOMHANDLER_PORT: not set"},
		{"serve ok", map[string]string{"FUNCTIONS_CUSTOMHANDLER_PORT": "33333"}, (*Config).ValidateServe, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.validate(load(t, tc.overrides))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("err = %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("err = %v, want %q", err, tc.want)
			case tc.want != "" && !strings.HasPrefix(err.Error(), "invalid settings:\n  "):
				t.Errorf("err = %q, want the settings error format", err)
			}
		})
	}
}

func TestNames(t *testing.T) {
	want := []string{
		"DIMIRROR_SOURCE_ENDPOINT", "DIMIRROR_SOURCE_KEY", "DIMIRROR_SOURCE_API_VERSION", "DIMIRROR_TARGETS",
		"DIMIRROR_TARGET_KEYS", "DIMIRROR_API_VERSION", "DIMIRROR_RESOURCES", "DIMIRROR_RESOURCE_KEYS", "DIMIRROR_RULES", "ServiceBusConnection", "ServiceBusConnection__fullyQualifiedNamespace",
		"DIMIRROR_QUEUE", "TableConnection", "TableConnection__tableServiceUri", "DIMIRROR_TABLE", "DIMIRROR_LISTEN",
		"DIMIRROR_API_KEY", "FUNCTIONS_CUSTOMHANDLER_PORT", "FUNCTIONS_HTTPWORKER_PORT", "DIMIRROR_MAX_ATTEMPTS",
		"DIMIRROR_RETRY_BASE", "DIMIRROR_RETRY_MAX", "DIMIRROR_CALL_TIMEOUT", "DIMIRROR_AUTH_MARGIN", "DIMIRROR_CLAIM_LEASE", "DIMIRROR_FOLLOW_FOR", "DIMIRROR_GIVE_UP_AFTER", "DIMIRROR_LOG_LEVEL",
		"DIMIRROR_REPLACE", "DIMIRROR_PRUNE", "DIMIRROR_INCLUDE", "DIMIRROR_EXCLUDE", "DIMIRROR_WATCH_SCHEDULE",
		"DIMIRROR_SWEEP_SCHEDULE", "DIMIRROR_POLL_SCHEDULE", "DIMIRROR_LIST_RATE", "DIMIRROR_MANAGEMENT_RATE",
		"DIMIRROR_OPERATION_RATE", "DIMIRROR_BUDGET_SHARE", "DIMIRROR_RPO", "DIMIRROR_EXPIRY_WARNING",
	}
	if got := Names(); !slices.Equal(got, want) {
		t.Errorf("Names() =\n%v\nwant\n%v", got, want)
	}
	// Names must be exactly what LoadFrom asks for.
	var asked []string
	_, _ = LoadFrom(func(name string) (string, bool) {
		asked = append(asked, name)
		return base[name], base[name] != ""
	})
	if !slices.Equal(asked, Names()) {
		t.Errorf("LoadFrom looked up\n%v\nNames() is\n%v", asked, Names())
	}
}

// TestLoad reads the real environment, including the case-sensitive connection names that
// envconfig alone would miss. t.Setenv makes this test non-parallel, as it must be.
func TestLoad(t *testing.T) {
	for _, name := range Names() {
		t.Setenv(name, "") // empty means default, so the machine's environment cannot leak in
	}
	for k, v := range base {
		t.Setenv(k, v)
	}
	t.Setenv("DIMIRROR_MAX_ATTEMPTS", "4")
	t.Setenv("DIMIRROR_TARGET_KEYS", "west=k")
	c, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.MaxAttempts != 4 || c.ServiceBus.Namespace != "myns.servicebus.windows.net" || c.Table.ServiceURI != "https://acct.table.core.windows.net" ||
		c.Targets[0].Key != "k" || c.Queue != "copy-requests" {
		t.Errorf("Load = %v (MaxAttempts %d)", c, c.MaxAttempts)
	}

	// Upper-cased connection names are not the Functions names and must not be read.
	t.Setenv("ServiceBusConnection__fullyQualifiedNamespace", "")
	t.Setenv("SERVICEBUSCONNECTION__FULLYQUALIFIEDNAMESPACE", "myns.servicebus.windows.net")
	_, err = Load()
	if err == nil || !strings.Contains(err.Error(), "ServiceBusConnection: required") {
		t.Errorf("Load with upper-cased name: err = %v, want ServiceBusConnection required", err)
	}
}

func TestLoadFromNil(t *testing.T) {
	if _, err := LoadFrom(nil); err == nil {
		t.Error("LoadFrom(nil) returned no error")
	}
}

func TestParseSchedule(t *testing.T) {
	tests := []struct {
		spec string
		ok   bool
		next string // from 2025-01-15T10:15:31Z
	}{
		{"*/30 * * * * *", true, "2025-01-15T10:16:00Z"},
		{"0 0 * * * *", true, "2025-01-15T11:00:00Z"},
		{"*/5 * * * * *", true, "2025-01-15T10:15:35Z"},
		{"0 30 9 * * Mon-Fri", true, "2025-01-16T09:30:00Z"},
		{" 0 0 0 1 1 * ", true, "2026-01-01T00:00:00Z"},
		{"* * * * *", false, ""},
		{"* * * * * * *", false, ""},
		{"@hourly", false, ""},
		{"TZ=UTC 0 * * * * *", false, ""},
		{"0 0 25 * * *", false, ""},
		{"", false, ""},
	}
	from := time.Date(2025, 1, 15, 10, 15, 31, 0, time.UTC)
	for _, tc := range tests {
		s, err := ParseSchedule(tc.spec)
		if (err == nil) != tc.ok {
			t.Errorf("ParseSchedule(%q) err = %v, want ok=%v", tc.spec, err, tc.ok)
			continue
		}
		if tc.ok {
			if got := s.Next(from).Format(time.RFC3339); got != tc.next {
				t.Errorf("ParseSchedule(%q).Next = %s, want %s", tc.spec, got, tc.next)
			}
		}
	}
}

func TestRates(t *testing.T) {
	for _, tc := range []struct {
		list, management, operation string
		wantList, wantMg, wantOp    float64
	}{
		{"0", "0", "0", 0, 0, 0},             // pacing off
		{"0.9", "0.9", "0.9", 0.9, 0.9, 0.9}, // F0
		{" 20 ", "10", "100", 20, 10, 100},
	} {
		c := load(t, map[string]string{"DIMIRROR_LIST_RATE": tc.list, "DIMIRROR_MANAGEMENT_RATE": tc.management, "DIMIRROR_OPERATION_RATE": tc.operation})
		if c.ListRate != tc.wantList || c.ManagementRate != tc.wantMg || c.OperationRate != tc.wantOp {
			t.Errorf("%q, %q, %q: list %v management %v operation %v", tc.list, tc.management, tc.operation, c.ListRate, c.ManagementRate, c.OperationRate)
		}
	}
}
