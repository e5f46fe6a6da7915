// Package app assembles dimirror from its settings: the Document Intelligence clients, the
// replica table, the Service Bus sender, the domain engine and the handlers; and it runs them in
// either hosting (serve: Functions custom handler; run: standalone).
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"

	"github.com/dimirror/dimirror/handlers"
	"github.com/dimirror/dimirror/shared/config"
	"github.com/dimirror/dimirror/shared/docintel"
	"github.com/dimirror/dimirror/shared/queue"
	"github.com/dimirror/dimirror/shared/replication"
	"github.com/dimirror/dimirror/shared/resources"
	"github.com/dimirror/dimirror/shared/store"
)

// App is a configured dimirror.
type App struct {
	Config   *config.Config
	Log      *slog.Logger
	Engine   *replication.Engine
	Handlers *handlers.Functions
	Table    *store.Tables
	// Resources holds one client per configured resource, by name; Source is the legacy
	// source's (nil in the rules form) and Targets the rule destinations'.
	Resources map[string]*docintel.Client
	Source    *docintel.Client
	Targets   map[string]*docintel.Client

	bus      *azservicebus.Client
	sender   *queue.Sender
	onListen func(addr string)
	pacers   *pacers
}

// Credentials creates DefaultAzureCredential once, and only when a connection has no key or
// connection string. The app and the operator commands share it.
type Credentials struct {
	once sync.Once
	cred azcore.TokenCredential
	err  error
}

// NewCredentials returns Credentials; a non-nil fixed credential replaces DefaultAzureCredential
// (tests use a fake).
func NewCredentials(fixed azcore.TokenCredential) *Credentials {
	c := &Credentials{}
	if fixed != nil {
		c.once.Do(func() { c.cred = fixed })
	}
	return c
}

// Get is the Entra ID credential, created on first use.
func (c *Credentials) Get() (azcore.TokenCredential, error) {
	c.once.Do(func() {
		c.cred, c.err = azidentity.NewDefaultAzureCredential(nil)
		if c.err != nil {
			c.err = fmt.Errorf("no key is set and no Microsoft Entra ID credential is available (sign in with az login or use a managed identity, or set the keys): %w", c.err)
		}
	})
	return c.cred, c.err
}

// DocIntel builds a Document Intelligence client with key, or with Entra ID when key is empty.
func (c *Credentials) DocIntel(endpoint, key string, opts docintel.Options) (*docintel.Client, error) {
	if key != "" {
		opts.Key = key
	} else {
		cred, err := c.Get()
		if err != nil {
			return nil, err
		}
		opts.Credential = cred
	}
	return docintel.New(endpoint, opts)
}

// OpenTable opens the replica table cfg names, by connection string or Entra ID; log receives
// the store's warnings (nil: discard).
func (c *Credentials) OpenTable(ctx context.Context, cfg *config.Config, log *slog.Logger) (*store.Tables, error) {
	o := store.Options{ConnectionString: cfg.Table.ConnectionString, ServiceURL: cfg.Table.ServiceURI,
		Table: cfg.Table.Name, CallTimeout: cfg.CallTimeout, Logger: log}
	if o.ConnectionString == "" {
		cred, err := c.Get()
		if err != nil {
			return nil, fmt.Errorf("table: %w", err)
		}
		o.Credential = cred
	}
	return store.Open(ctx, o)
}

// Options tune New for tests and tools.
type Options struct {
	// Credential replaces DefaultAzureCredential (tests use a fake).
	Credential azcore.TokenCredential
	// NoQueue skips the Service Bus client (CLI commands that only read).
	NoQueue bool
	// OnListen, if set, is told the address a hosting listens on once it does.
	OnListen func(addr string)
}

// New connects everything cfg names.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, o Options) (*App, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	creds := NewCredentials(o.Credential)
	a := &App{Config: cfg, Log: log, onListen: o.OnListen}
	// One pacer per resource, shared by its clients; the presence loop tells them how many
	// instances share each budget.
	clients, err := NewClients(cfg, creds, log)
	if err != nil {
		return nil, err
	}
	// One pacer per resource, shared by its clients; the presence loop tells them how many
	// instances share each budget.
	a.Source, a.Targets, a.Resources, a.pacers = clients.Source, clients.Targets, clients.Resources, clients.pacers

	if a.Table, err = creds.OpenTable(ctx, cfg, log); err != nil {
		return nil, err
	}

	var q replication.Queue = noQueue{}
	if !o.NoQueue {
		var cred azcore.TokenCredential
		if cfg.ServiceBus.ConnectionString == "" {
			if cred, err = creds.Get(); err != nil {
				return nil, fmt.Errorf("service bus: %w", err)
			}
		}
		if a.bus, err = queue.NewClient(cfg.ServiceBus.ConnectionString, cfg.ServiceBus.Namespace, cred); err != nil {
			return nil, err
		}
		if a.sender, err = queue.NewSender(a.bus, cfg.Queue, cfg.CallTimeout); err != nil {
			return nil, err
		}
		q = a.sender
	}

	ecfg := clients.Engine
	ecfg.Store, ecfg.Queue, ecfg.Policy, ecfg.Log = a.Table, q, EnginePolicy(cfg), log
	if a.Engine, err = replication.NewEngine(ecfg); err != nil {
		return nil, err
	}
	rec, err := a.newReconciler()
	if err != nil {
		return nil, err
	}
	// The functions see the engine through the small interfaces they declare.
	a.Handlers = &handlers.Functions{Replicas: a.Engine, Requests: a.Engine, Copies: a.Engine, Poller: a.Engine,
		Reconciler: rec, Log: log}
	if a.Source != nil {
		a.Handlers.Driller = NewDrill(cfg, a.Source, a.Targets)
	} else {
		// The rules form: every rule's target judged against that rule's source.
		a.Handlers.Driller = NewMeshDrill(cfg, a.Resources)
	}
	return a, nil
}

// resourceClients builds one client per resource (and one pacer per endpoint host, through
// client); a source of a rule into a degrade=true resource also gets a client that sends the
// copy-degrade header. The functions and the operator commands that copy build them alike.
func resourceClients(cfg *config.Config, client func(endpoint, key string, v docintel.APIVersion, extra docintel.Options) (*docintel.Client, error)) (map[string]*docintel.Client, map[string]replication.ResourceConfig, error) {
	clients := map[string]*docintel.Client{}
	rcs := map[string]replication.ResourceConfig{}
	needsDegraded := map[string]bool{}
	for _, r := range cfg.Rules {
		if res, ok := cfg.Resource(r.To); ok && res.Degrade {
			needsDegraded[r.From] = true
		}
	}
	for _, res := range cfg.Resources {
		c, err := client(res.Endpoint, res.Key, res.APIVersion, docintel.Options{ResourceID: res.ResourceID, Region: res.Region})
		if err != nil {
			return nil, nil, fmt.Errorf("resource %s: %w", res.Name, err)
		}
		clients[res.Name] = c
		rc := replication.ResourceConfig{Resource: resources.New(c), Host: hostOf(res.Endpoint), Degrade: res.Degrade}
		if needsDegraded[res.Name] {
			d, err := client(res.Endpoint, res.Key, res.APIVersion, docintel.Options{ResourceID: res.ResourceID, Region: res.Region, Degrade: true})
			if err != nil {
				return nil, nil, fmt.Errorf("resource %s: %w", res.Name, err)
			}
			rc.Degraded = resources.New(d)
		}
		rcs[res.Name] = rc
	}
	return clients, rcs, nil
}

// defaultSource is the resource rows without a Source column were copied from: the legacy
// source, or in the rules form the resource named like it, else the first rule's source.
func defaultSource(cfg *config.Config) string {
	if _, ok := cfg.Resource(config.LegacySourceName); ok {
		return config.LegacySourceName
	}
	if len(cfg.Rules) > 0 {
		return cfg.Rules[0].From
	}
	return ""
}

// EnginePolicy is the replication policy the settings ask for.
func EnginePolicy(cfg *config.Config) replication.Policy {
	return replication.Policy{
		MaxAttempts: cfg.MaxAttempts,
		RetryBase:   cfg.RetryBase,
		RetryMax:    cfg.RetryMax,
		AuthMargin:  cfg.AuthMargin,
		Lease:       cfg.ClaimLease,
		Follow:      followPolicy(cfg.FollowFor),
		Replace:     cfg.Replace,
		GiveUpAfter: cfg.GiveUpAfter,
	}
}

// TargetNames lists the configured targets, sorted.
func (a *App) TargetNames() []string {
	names := make([]string, 0, len(a.Targets))
	for n := range a.Targets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Close releases the Service Bus connection.
func (a *App) Close(ctx context.Context) error {
	var errs []error
	if a.sender != nil {
		errs = append(errs, a.sender.Close(ctx))
	}
	if a.bus != nil {
		errs = append(errs, a.bus.Close(ctx))
	}
	return errors.Join(errs...)
}

func hostOf(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return endpoint
	}
	return u.Host
}

// noQueue is the queue of a read-only App: sending is a bug.
type noQueue struct{}

func (noQueue) SendCopy(context.Context, *replication.CopyMessage) error {
	return errors.New("this command was started without a Service Bus connection")
}

func (q noQueue) Schedule(ctx context.Context, m *replication.CopyMessage, _ time.Duration) error {
	return q.SendCopy(ctx, m)
}

// followPolicy maps DIMIRROR_FOLLOW_FOR, where 0 means no checks, to Policy.Follow, where 0
// means the default and a negative value no checks.
func followPolicy(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
