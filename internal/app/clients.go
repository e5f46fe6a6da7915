package app

import (
	"log/slog"

	"github.com/dimirror/dimirror/shared/config"
	"github.com/dimirror/dimirror/shared/docintel"
	"github.com/dimirror/dimirror/shared/reconcile"
	"github.com/dimirror/dimirror/shared/replication"
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
	// Engine is the part of an engine's configuration the clients fill in: Resources, Rules,
	// DefaultSource and Selects (the legacy form reads as one rule per target).
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
	all, rcs, err := resourceClients(cfg, client)
	if err != nil {
		return nil, err
	}
	c := &Clients{Targets: map[string]*docintel.Client{}, Resources: all, pacers: pace,
		Engine: replication.Config{Resources: rcs, DefaultSource: defaultSource(cfg), Selects: reconcile.Selects(selection(cfg))}}
	for _, r := range cfg.Rules {
		c.Engine.Rules = append(c.Engine.Rules, replication.Rule{From: r.From, To: r.To})
		c.Targets[r.To] = all[r.To]
	}
	if cfg.Legacy {
		c.Source = all[config.LegacySourceName]
	}
	return c, nil
}
