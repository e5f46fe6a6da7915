// Package devstack starts dimirror's local stack in one process: Azurite for Table Storage (a
// child process), devbus for Service Bus and didev for Document Intelligence (a source and two
// targets), and produces the settings that point dimirror at them. Integration tests, the local
// run and the benchmarks stand on it.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dimirror/dimirror/emulators/devbus"
	"github.com/dimirror/dimirror/emulators/didev"
	"github.com/dimirror/dimirror/internal/testenv"
	"github.com/dimirror/dimirror/shared/config"
)

// Never is a timer schedule that does not fire within a test run (midnight, 1 January): the
// stack's default for reconciliation's watch and sweep, so only tests that ask for them see them.
const Never = "0 0 0 1 1 *"

// Key is the Document Intelligence key didev accepts in the stack.
const Key = "devkey"

// APIKey is the standalone API key the stack's settings carry.
const APIKey = "local-dev-api-key-0001"

// Options tune the stack.
type Options struct {
	// Targets are the target resources' names; default westus2 and eastus.
	Targets []string
	// DI is applied to didev's options after the stack's defaults (resources, key, seeds).
	DI func(*didev.Options)
	// Queue options; default: copy-requests, max delivery 10, lock 30s.
	Queue devbus.QueueOptions
	// Azurite to use; nil = the test binary's shared one.
	Azurite *testenv.Azurite
	// Settings override or add settings (e.g. DIMIRROR_POLL_SCHEDULE).
	Settings map[string]string
	// Rules switches the settings to the rules form: DIMIRROR_RESOURCES (every resource of
	// Resources), DIMIRROR_RESOURCE_KEYS and DIMIRROR_RULES = Rules (e.g. "a>b,b>a,a>c"), instead
	// of the source and targets pair. Targets is then unused.
	Rules string
	// Resources are the resources of the rules form (didev serves them all from one process);
	// the first holds the stack's seeds. Default a, b and c.
	Resources []string
}

// Stack is a running local stack.
type Stack struct {
	Azurite  *testenv.Azurite
	Bus      *devbus.Broker
	DI       *didev.Server
	Settings map[string]string
}

var tableSeq atomic.Int64

// Start starts devbus and didev in process (ctx bounds the start-up only) (and Azurite if none is given) and builds settings
// for dimirror with a table of its own.
func Start(ctx context.Context, o Options) (*Stack, error) {
	if len(o.Targets) == 0 {
		o.Targets = []string{"westus2", "eastus"}
	}
	s := &Stack{Azurite: o.Azurite}
	if s.Azurite == nil {
		az, err := testenv.SharedAzurite()
		if err != nil {
			return nil, err
		}
		s.Azurite = az
	}
	q := o.Queue
	if q.Name == "" {
		q.Name = "copy-requests"
	}
	if q.LockDuration == 0 {
		q.LockDuration = 30 * time.Second
	}
	var err error
	if s.Bus, err = devbus.Start(ctx, devbus.Options{Listen: "127.0.0.1:0", Queues: []devbus.QueueOptions{q}}); err != nil {
		return nil, fmt.Errorf("devbus: %w", err)
	}
	first, others := "source", o.Targets
	if o.Rules != "" {
		if len(o.Resources) == 0 {
			o.Resources = []string{"a", "b", "c"}
		}
		first, others = o.Resources[0], o.Resources[1:]
	}
	dio := didev.Options{
		Resources: []didev.ResourceOptions{{Name: first, Addr: "127.0.0.1:0", Region: "centralus"}},
		Key:       Key,
		Seeds: []didev.Seed{
			{Resource: first, Kind: didev.KindModel, ID: "invoice-v1", Description: "Invoices"},
			{Resource: first, Kind: didev.KindModel, ID: "receipt-v2", Description: "Receipts"},
			{Resource: first, Kind: didev.KindClassifier, ID: "router-v1", Description: "Routes documents"},
		},
		CopyDuration:  300 * time.Millisecond,
		BuildDuration: 300 * time.Millisecond,
	}
	for _, t := range others {
		dio.Resources = append(dio.Resources, didev.ResourceOptions{Name: t, Addr: "127.0.0.1:0"})
	}
	if o.DI != nil {
		o.DI(&dio)
	}
	// didev serves until its context ends: give it the stack's lifetime, not the start-up deadline.
	if s.DI, err = didev.Start(context.WithoutCancel(ctx), dio); err != nil {
		s.Bus.Close()
		return nil, fmt.Errorf("didev: %w", err)
	}
	targets, keys := "", ""
	for i, t := range o.Targets {
		if i > 0 {
			targets += ","
			keys += ","
		}
		targets += t + "=" + s.DI.Endpoint(t)
		keys += t + "=" + Key
	}
	s.Settings = map[string]string{
		"DIMIRROR_SOURCE_ENDPOINT": s.DI.Endpoint("source"),
		"DIMIRROR_SOURCE_KEY":      Key,
		"DIMIRROR_TARGETS":         targets,
		"DIMIRROR_TARGET_KEYS":     keys,
		"ServiceBusConnection":     s.Bus.ConnectionString(),
		"DIMIRROR_QUEUE":           q.Name,
		"TableConnection":          s.Azurite.ConnectionString(),
		"DIMIRROR_TABLE":           fmt.Sprintf("replicas%d%d", time.Now().UnixNano()%1e6, tableSeq.Add(1)),
		"DIMIRROR_API_KEY":         APIKey,
		"DIMIRROR_LISTEN":          "127.0.0.1:0",
		"DIMIRROR_POLL_SCHEDULE":   "*/1 * * * * *",
		"DIMIRROR_WATCH_SCHEDULE":  Never,
		"DIMIRROR_SWEEP_SCHEDULE":  Never,
		"DIMIRROR_RETRY_BASE":      "1s",
		"DIMIRROR_RETRY_MAX":       "4s",
		"DIMIRROR_CALL_TIMEOUT":    "10s",
		"DIMIRROR_CLAIM_LEASE":     "20s",
		"DIMIRROR_LOG_LEVEL":       "debug",
	}
	if o.Rules != "" {
		delete(s.Settings, "DIMIRROR_SOURCE_ENDPOINT")
		delete(s.Settings, "DIMIRROR_SOURCE_KEY")
		delete(s.Settings, "DIMIRROR_TARGETS")
		delete(s.Settings, "DIMIRROR_TARGET_KEYS")
		res, keys := make([]string, len(o.Resources)), make([]string, len(o.Resources))
		for i, n := range o.Resources {
			res[i], keys[i] = n+"="+s.DI.Endpoint(n), n+"="+Key
		}
		s.Settings["DIMIRROR_RESOURCES"] = strings.Join(res, ",")
		s.Settings["DIMIRROR_RESOURCE_KEYS"] = strings.Join(keys, ",")
		s.Settings["DIMIRROR_RULES"] = o.Rules
	}
	for k, v := range o.Settings {
		s.Settings[k] = v
	}
	return s, nil
}

// Config validates the stack's settings as dimirror would read them.
func (s *Stack) Config() (*config.Config, error) {
	return config.LoadFrom(func(k string) (string, bool) { v, ok := s.Settings[k]; return v, ok })
}

// Close stops devbus and didev (Azurite belongs to whoever started it).
func (s *Stack) Close() error {
	return errors.Join(s.DI.Close(), s.Bus.Close())
}
