package handlers

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/dimirror/dimirror/shared/funcdef"
	"github.com/dimirror/dimirror/shared/replication"
)

// The names the function.json files and the code share, spelled here only.
const (
	// routePrefix is host.json's extensions.http.routePrefix: HTTP routes are /api/<route>.
	routePrefix = "api"

	bindingRequest  = "req"
	bindingResponse = "res"
	bindingMessage  = "message"
	bindingTimer    = "timer"

	routeReplications = "replications"
	// The status route serves the list (no parameters), the summary (kind "summary") and one
	// source (kind and id).
	routeStatus = routeReplications + "/{kind?}/{id?}"
	kindSummary = "summary"
)

// Default bounds of one invocation of each function. The HTTP functions answer well within the
// Functions front end's 230 s; the copy starter within its claim lease's order of magnitude; a
// poll pass before the next tick; a watch in seconds (the bound keeps a slow one from running
// into many ticks); a sweep before host.json's functionTimeout (10 minutes), with its report
// saved; what it had no time for is found again by the next sweep.
const (
	defaultAuthorizeTimeout = 2 * time.Minute
	defaultStatusTimeout    = 30 * time.Second
	defaultStartCopyTimeout = 2 * time.Minute
	defaultPollTimeout      = 50 * time.Second
	defaultWatchTimeout     = 2 * time.Minute
	defaultSweepTimeout     = 9 * time.Minute
)

// HTTPFunc serves an HTTP function; params are the route's parameters ("" when absent).
type HTTPFunc func(w http.ResponseWriter, r *http.Request, params map[string]string)

// QueueFunc handles one queue message: its body and 1-based delivery count in, how to settle it
// out. Each hosting carries the outcome out its own way.
type QueueFunc func(ctx context.Context, body []byte, deliveryCount int) replication.Outcome

// TimerFunc runs one timer pass and returns its one-line account.
type TimerFunc func(ctx context.Context) (string, error)

// Function is one entry of the function table: what its function.json must say (Spec), how
// long one invocation may take, and its handler (the one its trigger calls for).
type Function struct {
	funcdef.Spec
	Timeout time.Duration
	HTTP    HTTPFunc
	Queue   QueueFunc
	Timer   TimerFunc
}

// Table is the app's function table: every function, in both hostings.
func (a *Functions) Table() []Function {
	return []Function{
		{
			Spec: funcdef.Spec{Name: "authorize", Trigger: funcdef.HTTPTrigger, Binding: bindingRequest, Output: bindingResponse,
				Methods: []string{"post"}, Route: routeReplications},
			Timeout: defaultAuthorizeTimeout,
			HTTP:    func(w http.ResponseWriter, r *http.Request, _ map[string]string) { a.Authorize(w, r) },
		},
		{
			Spec: funcdef.Spec{Name: "status", Trigger: funcdef.HTTPTrigger, Binding: bindingRequest, Output: bindingResponse,
				Methods: []string{"get"}, Route: routeStatus},
			Timeout: defaultStatusTimeout,
			HTTP:    a.Status,
		},
		{
			Spec: funcdef.Spec{Name: "dashboard", Trigger: funcdef.HTTPTrigger, Binding: bindingRequest, Output: bindingResponse,
				Methods: []string{"get"}, Route: "dashboard"},
			Timeout: defaultStatusTimeout,
			HTTP:    func(w http.ResponseWriter, r *http.Request, _ map[string]string) { a.Dashboard(w, r) },
		},
		{
			Spec: funcdef.Spec{Name: "drill", Trigger: funcdef.HTTPTrigger, Binding: bindingRequest, Output: bindingResponse,
				Methods: []string{"get"}, Route: "drill"},
			Timeout: defaultDrillTimeout,
			HTTP:    func(w http.ResponseWriter, r *http.Request, _ map[string]string) { a.Drill(w, r) },
		},
		{
			Spec:    funcdef.Spec{Name: "startcopy", Trigger: funcdef.ServiceBusTrigger, Binding: bindingMessage},
			Timeout: defaultStartCopyTimeout,
			Queue:   a.StartCopy,
		},
		{
			Spec:    funcdef.Spec{Name: "poll", Trigger: funcdef.TimerTrigger, Binding: bindingTimer},
			Timeout: orDefault(a.PollTimeout, defaultPollTimeout),
			Timer: func(ctx context.Context) (string, error) {
				rep, err := a.Poll(ctx)
				return fmt.Sprintf("poll: %d active, %d due, %d succeeded, %d retried, %d failed, %d errors",
					rep.Active, rep.Due, rep.Succeeded, rep.Retried, rep.Failed, rep.Errors), err
			},
		},
		{
			Spec:    funcdef.Spec{Name: "watch", Trigger: funcdef.TimerTrigger, Binding: bindingTimer},
			Timeout: orDefault(a.WatchTimeout, defaultWatchTimeout),
			Timer: func(ctx context.Context) (string, error) {
				p, err := a.Watch(ctx)
				missed := a.reportRPO(ctx) // the objective is judged every watch pass, whatever the watch found
				if err != nil {
					return "", err
				}
				return planLine(p) + missed, nil
			},
		},
		{
			Spec:    funcdef.Spec{Name: "sweep", Trigger: funcdef.TimerTrigger, Binding: bindingTimer},
			Timeout: orDefault(a.SweepTimeout, defaultSweepTimeout),
			Timer: func(ctx context.Context) (string, error) {
				p, err := a.Sweep(ctx)
				if err != nil {
					return "", err
				}
				return planLine(p), nil
			},
		},
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Check is the start-up check of the function table against the function folders and host.json
// of fsys (the embedded copies the Functions host reads too). It returns the folders' definitions
// (the timers' schedules, the queue's name), or every disagreement, each naming the function
// and the fix.
func (a *Functions) Check(fsys fs.FS) ([]funcdef.Function, error) {
	defs, err := funcdef.Load(fsys, "functions")
	if err != nil {
		return nil, fmt.Errorf("function definitions: %w", err)
	}
	table := a.Table()
	specs := make([]funcdef.Spec, 0, len(table))
	for _, f := range table {
		specs = append(specs, f.Spec)
	}
	if err := funcdef.Verify(specs, defs); err != nil {
		return nil, fmt.Errorf("the function table and functions/*/function.json disagree:\n%w", err)
	}
	if _, err := a.apiMux(); err != nil {
		return nil, err
	}
	prefix, err := funcdef.RoutePrefix(fsys, "host.json")
	if err != nil {
		return nil, fmt.Errorf("host.json: %w", err)
	}
	if prefix != routePrefix {
		return nil, fmt.Errorf("host.json: extensions.http.routePrefix is %q, the function table serves under %q: make them agree", prefix, routePrefix)
	}
	return defs, nil
}

// MaxTimeout is the longest invocation any function of the table may take: a server that waits
// for invocations must not cut one off sooner.
func MaxTimeout(table []Function) time.Duration {
	var m time.Duration
	for _, f := range table {
		m = max(m, f.Timeout)
	}
	return m
}

// MaxHTTPTimeout is the longest invocation of the table's HTTP functions.
func MaxHTTPTimeout(table []Function) time.Duration {
	var m time.Duration
	for _, f := range table {
		if f.Trigger == funcdef.HTTPTrigger {
			m = max(m, f.Timeout)
		}
	}
	return m
}

// routePatterns turns a function.json route template into the paths it matches on a
// net/http.ServeMux, under the route prefix: each optional parameter ({name?}, which must
// trail) adds the path without it; constraints ({id:int}) are dropped. It returns the patterns
// and the parameter names.
func routePatterns(route string) (patterns []string, params []string) {
	segs := strings.Split(route, "/")
	var fixed []string
	emit := func() { patterns = append(patterns, "/"+routePrefix+"/"+strings.Join(fixed, "/")) }
	optionalSeen := false
	for _, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			name := strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
			optional := strings.HasSuffix(name, "?")
			name = strings.TrimSuffix(name, "?")
			name, _, _ = strings.Cut(name, ":")
			name = strings.TrimPrefix(name, "*")
			params = append(params, name)
			if optional {
				if !optionalSeen {
					emit()
				}
				optionalSeen = true
			}
			fixed = append(fixed, "{"+name+"}")
			if optional {
				emit()
			}
			continue
		}
		fixed = append(fixed, s)
	}
	if !optionalSeen {
		emit()
	}
	return patterns, params
}

// withTimeout runs h within the function's timeout.
func withTimeout(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}
