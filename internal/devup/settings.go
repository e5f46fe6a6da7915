// Package devup runs dimirror's whole local stack for a person at a terminal: Azurite (Table
// Storage, a child process from node_modules), devbus (Service Bus) and didev (a source and two
// target Document Intelligence resources) in this process, and `dimirror run` as a child process
// with the settings of local.settings.sample.json, every piece on loopback with its state under
// one data directory. `make run` and `make demo` drive it through cmd/devup.
package devup

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/shared/config"
)

// Key is the Document Intelligence key every didev resource accepts, and APIKey the key of
// dimirror's HTTP API; both are local.settings.sample.json's, protecting nothing but loopback.
const (
	Key    = "devkey"
	APIKey = "local-dev-api-key-0001"
)

// azuriteAccountKey is Azurite's well-known development account key (public, documented by
// Microsoft); it is needed only when Azurite is moved off its default port.
const azuriteAccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

// Queue is the copy queue's name.
const Queue = "copy-requests"

// Targets are the target resources' names, in the order the settings list them.
var Targets = []string{"westus2", "eastus"}

// Seeds are the ready items the source holds from the first start on; on a restart with
// existing data they are kept as they are.
var Seeds = []didev.Seed{
	{Resource: "source", Kind: didev.KindModel, ID: "invoice-v1", Description: "Invoices"},
	{Resource: "source", Kind: didev.KindModel, ID: "receipt-v2", Description: "Receipts"},
	{Resource: "source", Kind: didev.KindModel, ID: "purchase-order-v1", Description: "Purchase orders"},
	{Resource: "source", Kind: didev.KindClassifier, ID: "router-v1", Description: "Routes documents to the right model"},
}

// Ports are the loopback ports of the stack; 0 picks a free one.
type Ports struct {
	Tables, Bus, Source, Westus2, Eastus, API int
}

// DefaultPorts match local.settings.sample.json (and Azurite's and AMQP's usual ports).
var DefaultPorts = Ports{Tables: 10002, Bus: 5672, Source: 5101, Westus2: 5102, Eastus: 5103, API: 7071}

// PortSpec describes one port: what listens there and how to move it.
type PortSpec struct {
	What string // e.g. "Azurite (Table Storage)"
	Flag string // devup's flag, without dashes
	Env  string // the environment variable (and make variable) that sets it
	Port func(*Ports) *int
}

// PortSpecs lists every port of the stack, in start order.
var PortSpecs = []PortSpec{
	{"Azurite (Table Storage)", "tables-port", "DEV_TABLES_PORT", func(p *Ports) *int { return &p.Tables }},
	{"devbus (Service Bus)", "bus-port", "DEV_BUS_PORT", func(p *Ports) *int { return &p.Bus }},
	{"didev source resource", "source-port", "DEV_SOURCE_PORT", func(p *Ports) *int { return &p.Source }},
	{"didev westus2 resource", "westus2-port", "DEV_WESTUS2_PORT", func(p *Ports) *int { return &p.Westus2 }},
	{"didev eastus resource", "eastus-port", "DEV_EASTUS_PORT", func(p *Ports) *int { return &p.Eastus }},
	{"dimirror's HTTP API", "api-port", "DEV_API_PORT", func(p *Ports) *int { return &p.API }},
}

// PortsFromEnv starts from DefaultPorts and applies every DEV_*_PORT variable lookup finds.
func PortsFromEnv(lookup func(string) (string, bool)) (Ports, error) {
	p := DefaultPorts
	for _, s := range PortSpecs {
		v, ok := lookup(s.Env)
		if !ok || v == "" {
			continue
		}
		n, err := ParsePort(v)
		if err != nil {
			return p, fmt.Errorf("%s=%q: %v", s.Env, v, err)
		}
		*s.Port(&p) = n
	}
	return p, nil
}

// ParsePort accepts 0 (a free port) to 65535.
func ParsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 {
		return 0, fmt.Errorf("not a port number from 0 to 65535")
	}
	return n, nil
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// AzuriteConnectionString is the connection string of Azurite's development account on port.
// ("UseDevelopmentStorage=true" means the same on port 10002 to the Functions host, but the Go
// table client does not understand it, so dimirror gets the explicit form.)
func AzuriteConnectionString(port int) string {
	return "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + azuriteAccountKey +
		";TableEndpoint=http://" + loopback(port) + "/devstoreaccount1;"
}

// SampleFile is the project's sample settings, relative to the project directory.
const SampleFile = "local.settings.sample.json"

// LoadSample reads the project's local.settings.sample.json: the stack runs dimirror with
// exactly these settings, but for the addresses of the pieces it starts.
func LoadSample(root string) (map[string]string, error) {
	values, err := config.ReadSettingsFile(filepath.Join(root, SampleFile))
	if err != nil {
		return nil, fmt.Errorf("reading the sample settings: %w", err)
	}
	return values, nil
}

// Settings are dimirror's settings for a stack on these ports: the sample's values, with the
// addresses of the stack's pieces. On DefaultPorts the addresses are the sample's own (a test
// holds them together); TableConnection is always the explicit form of the sample's
// UseDevelopmentStorage=true, which the Go table client does not understand.
func Settings(sample map[string]string, p Ports) map[string]string {
	s := make(map[string]string, len(sample)+8)
	for k, v := range sample {
		s[k] = v
	}
	for k, v := range Addresses(p) {
		s[k] = v
	}
	return s
}

// Addresses are the settings that name the stack's pieces, for these ports.
func Addresses(p Ports) map[string]string {
	webJobs := "UseDevelopmentStorage=true" // read by the Functions host only, which knows the shorthand
	if p.Tables != DefaultPorts.Tables {
		webJobs = AzuriteConnectionString(p.Tables)
	}
	return map[string]string{
		"AzureWebJobsStorage":      webJobs,
		"TableConnection":          AzuriteConnectionString(p.Tables),
		"DIMIRROR_SOURCE_ENDPOINT": "http://" + loopback(p.Source),
		"DIMIRROR_SOURCE_KEY":      Key,
		"DIMIRROR_TARGETS":         "westus2=http://" + loopback(p.Westus2) + ",eastus=http://" + loopback(p.Eastus),
		"DIMIRROR_TARGET_KEYS":     "westus2=" + Key + ",eastus=" + Key,
		"ServiceBusConnection":     "Endpoint=sb://" + loopback(p.Bus) + ";SharedAccessKeyName=dev;SharedAccessKey=dev;UseDevelopmentEmulator=true",
		"DIMIRROR_QUEUE":           Queue,
		"DIMIRROR_LISTEN":          loopback(p.API),
		"DIMIRROR_API_KEY":         APIKey,
	}
}

// TwoWayRules are the stack's rules in the two-way form: the source feeds both targets, and
// westus2 (the region a failover moves training to) feeds the source back; its models reach
// eastus through the source.
const TwoWayRules = "source>westus2,source>eastus,westus2>source"

// TwoWayAddresses are the settings of the rules form for these ports: the same three resources
// by name, TwoWayRules, and the source and targets pair emptied (the forms are exclusive).
func TwoWayAddresses(p Ports) map[string]string {
	return map[string]string{
		"DIMIRROR_SOURCE_ENDPOINT":    "",
		"DIMIRROR_SOURCE_KEY":         "",
		"DIMIRROR_SOURCE_API_VERSION": "",
		"DIMIRROR_TARGETS":            "",
		"DIMIRROR_TARGET_KEYS":        "",
		"DIMIRROR_RESOURCES": "source=http://" + loopback(p.Source) + ",westus2=http://" + loopback(p.Westus2) +
			",eastus=http://" + loopback(p.Eastus),
		"DIMIRROR_RESOURCE_KEYS": "source=" + Key + ",westus2=" + Key + ",eastus=" + Key,
		"DIMIRROR_RULES":         TwoWayRules,
	}
}

// writeSettingsFile writes settings as a Functions local.settings.json, so that the operator
// commands can reuse them: dimirror status --settings <file>. It holds only local development
// keys; 0600 all the same.
func writeSettingsFile(path string, settings map[string]string) error {
	b, err := json.MarshalIndent(struct {
		IsEncrypted bool              `json:"IsEncrypted"`
		Values      map[string]string `json:"Values"`
	}{false, settings}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
