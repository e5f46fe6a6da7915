package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/robfig/cron/v3"
	"golang.org/x/sync/errgroup"

	"github.com/dimirror/dimirror"
	"github.com/dimirror/dimirror/handlers"
	"github.com/dimirror/dimirror/shared/funcdef"
	"github.com/dimirror/dimirror/shared/queue"
)

// StopGrace is how long work in progress (HTTP requests, invocations, queue messages, timer
// passes) may run on after a stop; then its context is cancelled. A step cut short this way
// leaves its row claimed until the claim's lease ends, as designed for a crash.
const StopGrace = 10 * time.Second

// serverLimits bound one HTTP server.
type serverLimits struct {
	ReadHeader, Read, Write, Idle time.Duration
	MaxHeaderBytes                int
}

// writeMargin lets a function that hits its own timeout still answer (a 503 naming the
// timeout) before the server's write deadline cuts the connection.
const writeMargin = 15 * time.Second

// maxHeaderBytes is the Functions front end's limit on a request's headers (32 KiB); the
// standalone server refuses more with 431, as callers would see in Azure.
const maxHeaderBytes = 32 << 10

// apiLimits are the standalone server's: a request (at most a 64 KiB body) is read in 30 s, an
// answer written within the longest HTTP function's timeout, and an idle keep-alive connection
// closed after 2 minutes.
func apiLimits(table []handlers.Function) serverLimits {
	return serverLimits{ReadHeader: 10 * time.Second, Read: 30 * time.Second,
		Write: handlers.MaxHTTPTimeout(table) + writeMargin, Idle: 2 * time.Minute, MaxHeaderBytes: maxHeaderBytes}
}

// customHandlerLimits are the custom handler's: the host's payload (up to funcproto's limit) is
// read in a minute; a timer invocation answers only when its pass ends, so the write deadline
// is the longest function timeout of the table; idle connections stay open longer than the
// host's own connection pool keeps them (about a minute), so the host closes them first and never
// sends an invocation on a connection this side is closing.
func customHandlerLimits(table []handlers.Function) serverLimits {
	return serverLimits{ReadHeader: 10 * time.Second, Read: time.Minute,
		Write: handlers.MaxTimeout(table) + writeMargin, Idle: 5 * time.Minute, MaxHeaderBytes: maxHeaderBytes}
}

// functions checks the function table against the embedded function definitions: a drift is a
// start-up error, in both hostings.
func (a *App) functions() ([]handlers.Function, []funcdef.Function, error) {
	defs, err := a.Handlers.Check(dimirror.Functions)
	if err != nil {
		return nil, nil, err
	}
	return a.Handlers.Table(), defs, nil
}

// Serve runs the Functions custom handler on 127.0.0.1:port until ctx ends.
func (a *App) Serve(ctx context.Context, port int) error {
	table, _, err := a.functions()
	if err != nil {
		return err
	}
	ln, err := listen(fmt.Sprintf("127.0.0.1:%d", port), "FUNCTIONS_CUSTOMHANDLER_PORT")
	if err != nil {
		return err
	}
	a.Log.Info("custom handler listening", "addr", ln.Addr().String())
	a.listening(ln)
	pctx, stopPresence := context.WithCancel(ctx)
	defer stopPresence()
	go a.presence(pctx, a.Table, presenceEvery)
	return serveHTTP(ctx, ln, a.Handlers.CustomHandler(), customHandlerLimits(table), StopGrace, a.Log)
}

func (a *App) listening(ln net.Listener) {
	if a.onListen != nil {
		a.onListen(ln.Addr().String())
	}
}

// listen names the setting that moves the address when it is taken.
func listen(addr, setting string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%s is already in use: stop what listens there, or set %s to another address", addr, setting)
		}
		return nil, fmt.Errorf("listen on %s (%s): %w", addr, setting, err)
	}
	return ln, nil
}

// serveHTTP serves h on ln until ctx ends, then stops taking requests and gives those in
// progress the grace; past it, their contexts are cancelled and the connections closed.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, lim serverLimits, grace time.Duration, log *slog.Logger) error {
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: lim.ReadHeader,
		ReadTimeout:       lim.Read,
		WriteTimeout:      lim.Write,
		IdleTimeout:       lim.Idle,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		// Requests run under work, not under the server's lifetime, so a stop can cancel them.
		BaseContext: func(net.Listener) context.Context { return work },
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("stopping: cancelling the requests still in progress", "grace", grace.String())
		cancelWork()
		_ = srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Run is the standalone hosting: the HTTP API on cfg.Listen, the copy queue's receive loop, and
// the timers on their function.json schedules, all from the function table, until ctx ends.
func (a *App) Run(ctx context.Context) error {
	if a.bus == nil {
		return errors.New("run needs the Service Bus connection")
	}
	table, defs, err := a.functions()
	if err != nil {
		return err
	}
	api, err := a.Handlers.API(a.Config.APIKey)
	if err != nil {
		return err
	}
	copier, queueName, err := queueFunction(table, defs, a.Config.Lookup)
	if err != nil {
		return err
	}
	timers, err := timerJobs(table, defs, a.Config.Lookup)
	if err != nil {
		return err
	}
	ln, err := listen(a.Config.Listen, "DIMIRROR_LISTEN")
	if err != nil {
		return err
	}
	rcv, err := a.bus.NewReceiverForQueue(queueName, &azservicebus.ReceiverOptions{ReceiveMode: azservicebus.ReceiveModePeekLock})
	if err != nil {
		ln.Close()
		return fmt.Errorf("receiver for %s: %w", queueName, err)
	}
	a.Log.Info("dimirror running", "listen", ln.Addr().String(), "queue", queueName, "targets", a.TargetNames())
	a.listening(ln)
	grace := StopGrace
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveHTTP(gctx, ln, api, apiLimits(table), grace, a.Log) })
	g.Go(func() error { a.presence(gctx, a.Table, presenceEvery); return nil })
	g.Go(func() error {
		// The same queue function the Functions host invokes in serve; the loop carries its
		// outcome out with azservicebus.
		loop := &queue.Loop{Receiver: rcv, Handle: queue.Handler(copier.Queue), HandleTimeout: copier.Timeout, Grace: grace, Log: a.Log}
		err := loop.Run(gctx)
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rcv.Close(cctx)
		return err
	})
	g.Go(func() error { return runTimers(gctx, timers, grace, a.Log) })
	return g.Wait()
}

// queueFunction is the table's queue function and the queue its function.json names
// (%SETTING% expanded).
func queueFunction(table []handlers.Function, defs []funcdef.Function, lookup func(string) (string, bool)) (handlers.Function, string, error) {
	for _, fn := range table {
		if fn.Trigger != funcdef.ServiceBusTrigger {
			continue
		}
		for _, d := range defs {
			if d.Name != fn.Name {
				continue
			}
			tr, _ := d.Trigger()
			name, err := funcdef.Expand(tr.QueueName, lookup)
			if err != nil {
				return fn, "", fmt.Errorf("function %s: queueName: %w", fn.Name, err)
			}
			return fn, name, nil
		}
	}
	return handlers.Function{}, "", errors.New("the function table has no queue function")
}

// timerJob is one timer function as `dimirror run` schedules it.
type timerJob struct {
	name     string
	schedule cron.Schedule
	spec     string
	timeout  time.Duration
	run      handlers.TimerFunc
}

// timerJobs reads every timer function's schedule from its function.json (NCRONTAB, seconds
// first, %SETTING% expanded).
func timerJobs(table []handlers.Function, defs []funcdef.Function, lookup func(string) (string, bool)) ([]timerJob, error) {
	byName := map[string]funcdef.Function{}
	for _, d := range defs {
		byName[d.Name] = d
	}
	parser := cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	var jobs []timerJob
	for _, fn := range table {
		if fn.Trigger != funcdef.TimerTrigger {
			continue
		}
		tr, _ := byName[fn.Name].Trigger()
		spec, err := funcdef.Expand(tr.Schedule, lookup)
		if err != nil {
			return nil, fmt.Errorf("function %s: %w", fn.Name, err)
		}
		sched, err := parser.Parse(spec)
		if err != nil {
			return nil, fmt.Errorf("function %s: schedule %q: %w", fn.Name, spec, err)
		}
		jobs = append(jobs, timerJob{name: fn.Name, schedule: sched, spec: spec, timeout: fn.Timeout, run: fn.Timer})
	}
	return jobs, nil
}

// runTimers runs the jobs on their schedules until ctx ends. A pass never overlaps the previous
// one of its function (as the host's singleton timers). At the stop, no new pass starts; passes
// still running get the grace, then their context is cancelled and runTimers waits for them to
// give up.
func runTimers(ctx context.Context, jobs []timerJob, grace time.Duration, log *slog.Logger) error {
	logger := cronLogger{log}
	c := cron.New(cron.WithChain(cron.Recover(logger), cron.SkipIfStillRunning(logger)))
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	for _, j := range jobs {
		c.Schedule(j.schedule, cron.FuncJob(func() {
			pctx, cancel := context.WithTimeout(work, j.timeout)
			defer cancel()
			summary, err := j.run(pctx)
			if err != nil {
				log.Error("timer function failed", "function", j.name, "err", err.Error())
				return
			}
			log.Debug("timer function ran", "function", j.name, "summary", summary)
		}))
		log.Info("timer scheduled", "function", j.name, "schedule", j.spec)
	}
	c.Start()
	<-ctx.Done()
	stopped := c.Stop().Done()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-stopped:
		return nil
	case <-t.C:
	}
	log.Warn("stopping: cancelling the timer passes still running", "grace", grace.String())
	cancelWork()
	<-stopped
	return nil
}

// cronLogger sends robfig/cron's messages to slog.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, kv ...any) { l.log.Debug("cron: "+msg, kv...) }

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron: "+msg, append(kv, "err", err.Error())...)
}
