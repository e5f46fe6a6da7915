package app

import (
	"fmt"
	"log/slog"

	"github.com/dimirror/dimirror/shared/config"
	"github.com/dimirror/dimirror/shared/docintel"
	"github.com/dimirror/dimirror/shared/replication"
	"github.com/dimirror/dimirror/shared/resources"
)

// Clients are the Document Intelligence clients the settings name, built the way the functions
// build them: one rate pacer per resource shared by all its clients, DIMIRROR_CALL_TIMEOUT on
// every call, a second source client with the copy-degrade header for the targets that need it.
// Building them opens no connection, so an operator command can copy without the table or the
// queue.
type Clients struct {
	// Source is the legacy form's source (nil in the rules form); Targets the resources rules
	// copy into; Resources every resource (both forms).
	Source    *docintel.Client
	Targets   map[string]*docintel.Client
	Resources map[string]*docintel.Client
	// Engine is the part of an engine's configuration the clients fill in: Source,
	// SourceName, Targets and CopySources in the legacy form; Resources, Rules and
	// DefaultSource in the rules form.
	Engine replication.Config

	pacers *pacers // one per resource, shared by its clients
}

// NewClients builds the clients of every resource cfg names; log receives the clients'
// request-level logs (nil: discard).
func NewClients(cfg *config.Config, creds *Credentials, log *slog.Logger) (*Clients, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if creds == nil {
		creds = NewCredentials(nil)
	}
	pace := newPacers(cfg)
	client := func(endpoint, key string, v docintel.APIVersion, extra docintel.Options) (*docintel.Client, error) {
		opts := extra
		opts.APIVersion, opts.CallTimeout, opts.Logger = v, cfg.CallTimeout, log
		opts.Transport = pace.transport(endpoint)
		return creds.DocIntel(endpoint, key, opts)
	}
	if !cfg.Legacy {
		all, rcs, err := resourceClients(cfg, client)
		if err != nil {
			return nil, err
		}
		c := &Clients{Targets: map[string]*docintel.Client{}, Resources: all, pacers: pace,
			Engine: replication.Config{Resources: rcs, DefaultSource: defaultSource(cfg)}}
		for _, r := range cfg.Rules {
			c.Engine.Rules = append(c.Engine.Rules, replication.Rule{From: r.From, To: r.To})
			c.Targets[r.To] = all[r.To]
		}
		return c, nil
	}
	c := &Clients{Targets: map[string]*docintel.Client{}, Resources: map[string]*docintel.Client{}, pacers: pace}
	var err error
	if c.Source, err = client(cfg.Source.Endpoint, cfg.Source.Key, cfg.Source.APIVersion, docintel.Options{}); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	c.Engine = replication.Config{Source: resources.New(c.Source), SourceName: hostOf(cfg.Source.Endpoint),
		Targets: map[string]replication.Resource{}, CopySources: map[string]replication.Resource{}}
	var degrade *docintel.Client
	for _, t := range cfg.Targets {
		tc, err := client(t.Endpoint, t.Key, t.APIVersion, docintel.Options{ResourceID: t.ResourceID, Region: t.Region})
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", t.Name, err)
		}
		c.Targets[t.Name] = tc
		c.Engine.Targets[t.Name] = resources.New(tc)
		if t.Degrade {
			if degrade == nil {
				if degrade, err = client(cfg.Source.Endpoint, cfg.Source.Key, cfg.Source.APIVersion, docintel.Options{Degrade: true}); err != nil {
					return nil, fmt.Errorf("source: %w", err)
				}
			}
			c.Engine.CopySources[t.Name] = resources.New(degrade)
		}
	}
	c.Resources[config.LegacySourceName] = c.Source
	for name, tc := range c.Targets {
		c.Resources[name] = tc
	}
	return c, nil
}
