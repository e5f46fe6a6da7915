package app

import (
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"golang.org/x/time/rate"

	"github.com/dimirror/dimirror/shared/config"
	"github.com/dimirror/dimirror/shared/reconcile"
	"github.com/dimirror/dimirror/shared/replication"
	"github.com/dimirror/dimirror/shared/resources"
)

// pacers gives each Document Intelligence resource one Pacer, shared by every client of it
// (the source has two when a target needs the copy-degrade header): the service's rate limits
// are per resource.
type pacers struct {
	rates resources.Rates

	mu sync.Mutex
	by map[string]*resources.Pacer
}

func newPacers(cfg *config.Config) *pacers {
	return &pacers{
		rates: resources.Rates{List: cfg.ListRate, Management: cfg.ManagementRate, Operation: cfg.OperationRate, Share: cfg.BudgetShare},
		by:    map[string]*resources.Pacer{},
	}
}

// activeSince lists the resources (hosts) this instance made management calls to since t.
func (p *pacers) activeSince(t time.Time) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for host, pc := range p.by {
		if pc.ManagementActiveSince(t) {
			out = append(out, host)
		}
	}
	sort.Strings(out)
	return out
}

// share gives each resource's pacer its part of the management budget: 1/n, n the instances
// making management calls to it, counting this one (which is about to, if it is not yet).
func (p *pacers) share(activeOn map[string]int, self []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for host, pc := range p.by {
		n := activeOn[host]
		if !slices.Contains(self, host) {
			n++
		}
		pc.SetInstances(max(n, 1))
	}
}

// transport is the paced transport for a client of endpoint; nil (docintel's default) when
// pacing is off.
func (p *pacers) transport(endpoint string) policy.Transporter {
	if p.rates.List <= 0 && p.rates.Management <= 0 && p.rates.Operation <= 0 {
		return nil
	}
	key := endpoint
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		key = strings.ToLower(u.Host)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pc := p.by[key]
	if pc == nil {
		pc = resources.NewPacer(p.rates)
		p.by[key] = pc
	}
	return pc.Transport(nil)
}

// selection is what the watch, the sweep and the onward copies select: DIMIRROR_INCLUDE and
// DIMIRROR_EXCLUDE, and each rule's own filters from DIMIRROR_RULES.
func selection(cfg *config.Config) (reconcile.Filter, map[replication.Rule]reconcile.RuleFilter) {
	ruleFilters := map[replication.Rule]reconcile.RuleFilter{}
	for _, r := range cfg.Rules {
		if len(r.Include)+len(r.Exclude)+len(r.Kinds) == 0 {
			continue
		}
		f := reconcile.RuleFilter{Filter: reconcile.Filter{Include: r.Include, Exclude: r.Exclude}}
		for _, k := range r.Kinds {
			f.Kinds = append(f.Kinds, replication.Kind(k))
		}
		ruleFilters[replication.Rule{From: r.From, To: r.To}] = f
	}
	return reconcile.Filter{Include: cfg.Include, Exclude: cfg.Exclude}, ruleFilters
}

// newReconciler wires the watch and the sweep to the engine, the table and the resources.
func (a *App) newReconciler() (*reconcile.Reconciler, error) {
	listers := make(map[string]reconcile.Lister, len(a.Resources))
	for name, c := range a.Resources {
		listers[name] = resources.NewListing(c)
	}
	global, ruleFilters := selection(a.Config)
	var starts reconcile.Throttle
	if a.Config.ManagementRate > 0 {
		starts = rate.NewLimiter(rate.Limit(a.Config.ManagementRate), max(1, len(a.Targets)))
	}
	return reconcile.New(reconcile.Reconciler{
		Engine:      a.Engine,
		Resources:   listers,
		RuleFilters: ruleFilters,
		Meta:        a.Table,
		Filter:      global,
		Prune:       a.Config.Prune,
		// The sweep's "expiring" and the drill warn alike (DIMIRROR_EXPIRY_WARNING); the
		// summary and the rpo-missed events judge by DIMIRROR_RPO.
		ExpiryWindow: a.Config.ExpiryWarning,
		RPO:          a.Config.RPO,
		// A start is an authorizeCopy in its target and, soon after, a copyTo on the source:
		// pacing the starts keeps both under the management limit.
		Starts: starts,
		Log:    a.Log,
	})
}
