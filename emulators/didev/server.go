// Package didev is a local emulator of the Azure AI Document Intelligence (Form Recognizer)
// model-management and Copy API: several resources in one process, each on its own endpoint, so
// models and classifiers can be copied between them exactly as between regions. It speaks
// api-versions 2024-11-30, 2023-07-31, 2022-08-31 and v2.1 (plus the previews seen in the SDK
// recordings) with the service's recorded headers, bodies and error codes. docs/didev.md lists
// which behaviours are recorded facts and which are assumptions.
package didev

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ErrNotFound and ErrExists are returned by the Go API of a Resource.
var (
	ErrNotFound = errors.New("didev: not found")
	ErrExists   = errors.New("didev: already exists")
)

// Server runs the emulated resources. Its methods are safe for concurrent use.
type Server struct {
	opts Options
	log  *slog.Logger
	dice *faultDice
	// outages are per-resource failures (SetOutage).
	outages *outages

	mu    sync.Mutex           // guards state and store
	state map[string]*resState // by lowercase resource name
	store *store               // nil in memory

	resources []*resource
	byName    map[string]*resource // lowercase name
	byID      map[string]*resource // lowercase ARM id

	closeOnce sync.Once
	closeErr  error
	done      chan struct{}
	wg        sync.WaitGroup
}

// resource is one served resource: its listener, HTTP server, limiters and counters.
type resource struct {
	s        *Server
	key      string // lowercase name: the key of its state
	opts     ResourceOptions
	endpoint string
	ln       net.Listener
	srv      *http.Server
	limiters map[string]*rate.Limiter
	stats    map[string]*counters
}

// Start validates opts, restores DataDir, listens on every resource's address and serves until
// Close or until ctx is done.
func Start(ctx context.Context, opts Options) (*Server, error) {
	o, err := opts.normalized()
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:    o,
		log:     o.Logger,
		dice:    newFaultDice(o.Faults),
		outages: newOutages(),
		state:   map[string]*resState{},
		byName:  map[string]*resource{},
		byID:    map[string]*resource{},
		done:    make(chan struct{}),
	}
	if o.DataDir != "" {
		st, loaded, err := openStore(o.DataDir)
		if err != nil {
			return nil, err
		}
		s.store = st
		s.state = loaded
	}
	now := o.Clock()
	for _, ro := range o.Resources {
		key := strings.ToLower(ro.Name)
		if s.state[key] == nil {
			s.state[key] = newResState()
		}
		rs := s.state[key]
		for _, sd := range o.Seeds {
			if strings.EqualFold(sd.Resource, ro.Name) && !rs.taken(sd.Kind, sd.ID) {
				s.putModel(key, seedModel(sd, now))
			}
		}
	}
	if s.store != nil {
		if err := s.store.flush(); err != nil {
			s.store.close()
			return nil, err
		}
	}
	if err := s.listen(ctx); err != nil {
		if s.store != nil {
			s.store.close()
		}
		return nil, err
	}
	for _, r := range s.resources {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := r.srv.Serve(r.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("didev: serve", "resource", r.opts.Name, "err", err)
			}
		}()
	}
	go func() {
		select {
		case <-ctx.Done():
			_ = s.Close()
		case <-s.done:
		}
	}()
	return s, nil
}

func (s *Server) listen(ctx context.Context) error {
	var lc net.ListenConfig
	for _, ro := range s.opts.Resources {
		ln, err := lc.Listen(ctx, "tcp", ro.Addr)
		if err != nil {
			for _, r := range s.resources {
				r.ln.Close()
			}
			return fmt.Errorf("didev: resource %s: listen on %s: %w", ro.Name, ro.Addr, err)
		}
		host, _, _ := net.SplitHostPort(ro.Addr)
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		r := &resource{
			s:        s,
			key:      strings.ToLower(ro.Name),
			opts:     ro,
			endpoint: "http://" + net.JoinHostPort(host, port),
			ln:       ln,
			limiters: map[string]*rate.Limiter{},
			stats:    map[string]*counters{},
		}
		for cat, per := range map[string]float64{
			CategoryManagement: s.opts.Rate.Management, CategoryGetOperation: s.opts.Rate.GetOperation,
			CategoryList: s.opts.Rate.List,
		} {
			// A burst of one second's worth (assumption: APIM's window is not recorded).
			r.limiters[cat] = rate.NewLimiter(rate.Limit(per), max(1, int(math.Ceil(per))))
		}
		for _, cat := range categories {
			r.stats[cat] = &counters{}
		}
		r.srv = &http.Server{
			Handler:           r,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      90 * time.Second, // covers injected latency (≤ 1 min)
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		}
		s.resources = append(s.resources, r)
		s.byName[strings.ToLower(ro.Name)] = r
		s.byID[strings.ToLower(ro.ResourceID)] = r
	}
	return nil
}

// Close stops every endpoint (waiting up to 5 s for requests in flight) and, with DataDir, writes
// a final snapshot. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var errs []error
		for _, r := range s.resources {
			if err := r.srv.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("didev: resource %s: shutdown: %w", r.opts.Name, err))
				r.srv.Close()
			}
		}
		s.wg.Wait()
		if s.store != nil {
			s.mu.Lock()
			if err := s.store.compact(s.state); err != nil {
				errs = append(errs, err)
			}
			s.store.close()
			s.mu.Unlock()
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Endpoint is the base URL of the named resource ("" when there is none), for example
// http://127.0.0.1:5101. Clients add /documentintelligence, /formrecognizer, ... themselves.
func (s *Server) Endpoint(name string) string {
	if r := s.byName[strings.ToLower(name)]; r != nil {
		return r.endpoint
	}
	return ""
}

// Resource returns the Go handle of the named resource, or nil.
func (s *Server) Resource(name string) *Resource {
	r := s.byName[strings.ToLower(name)]
	if r == nil {
		return nil
	}
	return &Resource{s: s, r: r}
}

// Resources lists the handles of every resource, in the order of Options.Resources.
func (s *Server) Resources() []*Resource {
	out := make([]*Resource, len(s.resources))
	for i, r := range s.resources {
		out[i] = &Resource{s: s, r: r}
	}
	return out
}

// SetFaults replaces the injected faults (and reseeds their generator).
func (s *Server) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("didev: %w", err)
	}
	s.dice.set(f)
	s.log.Info("didev: faults set", "faults", f.String())
	return nil
}

// Faults returns the faults in effect.
func (s *Server) Faults() Faults { return s.dice.get() }

// stateOf is the stored state of a served resource.
func (s *Server) stateOf(r *resource) *resState { return s.state[r.key] }

// now is the server's clock in UTC (kept at full precision; the wire shows whole seconds).
func (s *Server) now() time.Time { return s.opts.Clock().UTC() }

func (r *resource) regionDisplay() string { return RegionDisplayName(r.opts.Region) }
