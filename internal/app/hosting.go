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
	"github.com/dimirror/dimirror/shared/funcdef"
	"github.com/dimirror/dimirror/shared/queue"
	"github.com/dimirror/dimirror/shared/replication"
)

// Serve runs the Functions custom handler on 127.0.0.1:port until ctx ends.
func (a *App) Serve(ctx context.Context, port int) error {
	ln, err := listen(fmt.Sprintf("127.0.0.1:%d", port), "FUNCTIONS_CUSTOMHANDLER_PORT")
	if err != nil {
		return err
	}
	a.Log.Info("custom handler listening", "addr", ln.Addr().String())
	a.listening(ln)
	return serveHTTP(ctx, ln, a.Handlers.CustomHandler(), 0)
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

func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, writeTimeout time.Duration) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: writeTimeout}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// Timers maps timer function names to what they run.
func (a *App) timers() map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"poll":  func(ctx context.Context) error { _, err := a.Handlers.Poll(ctx); return err },
		"watch": func(ctx context.Context) error { _, err := a.Handlers.Watch(ctx); return err },
		"sweep": func(ctx context.Context) error { _, err := a.Handlers.Sweep(ctx); return err },
	}
}

// Run is the standalone hosting: the HTTP API on cfg.Listen, the copy queue's receive loop, and
// the timers on their function.json schedules, until ctx ends.
func (a *App) Run(ctx context.Context) error {
	if a.bus == nil {
		return errors.New("run needs the Service Bus connection")
	}
	ln, err := listen(a.Config.Listen, "DIMIRROR_LISTEN")
	if err != nil {
		return err
	}
	rcv, err := a.bus.NewReceiverForQueue(a.Config.Queue, &azservicebus.ReceiverOptions{ReceiveMode: azservicebus.ReceiveModePeekLock})
	if err != nil {
		ln.Close()
		return fmt.Errorf("receiver for %s: %w", a.Config.Queue, err)
	}
	sched, err := a.schedule()
	if err != nil {
		ln.Close()
		return err
	}
	a.Log.Info("dimirror running", "listen", ln.Addr().String(), "queue", a.Config.Queue, "targets", a.TargetNames())
	a.listening(ln)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveHTTP(gctx, ln, a.Handlers.API(a.Config.APIKey), 5*time.Minute) })
	g.Go(func() error {
		loop := &queue.Loop{Receiver: rcv, Log: a.Log, Handle: func(ctx context.Context, body []byte, dc int) replication.Outcome {
			return replication.OutcomeOf(a.Handlers.StartCopy(ctx, body, dc))
		}}
		err := loop.Run(gctx)
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rcv.Close(cctx)
		return err
	})
	g.Go(func() error {
		sched.Start()
		<-gctx.Done()
		<-sched.Stop().Done()
		return nil
	})
	return g.Wait()
}

// schedule builds the cron of every timer function from its function.json schedule
// (NCRONTAB, seconds first, %SETTING% expanded).
func (a *App) schedule() (*cron.Cron, error) {
	fns, err := funcdef.Load(dimirror.Functions, "functions")
	if err != nil {
		return nil, err
	}
	logger := cronLogger{a.Log}
	c := cron.New(cron.WithSeconds(), cron.WithChain(cron.Recover(logger), cron.SkipIfStillRunning(logger)))
	timers := a.timers()
	for _, f := range fns {
		tr, _ := f.Trigger()
		if tr.Type != "timerTrigger" {
			continue
		}
		run, ok := timers[f.Name]
		if !ok {
			return nil, fmt.Errorf("function %s has a timer trigger but no handler", f.Name)
		}
		spec, err := funcdef.Expand(tr.Schedule, a.Config.Lookup)
		if err != nil {
			return nil, fmt.Errorf("function %s: %w", f.Name, err)
		}
		name := f.Name
		if _, err := c.AddFunc(spec, func() {
			if err := run(context.Background()); err != nil {
				a.Log.Error("timer function failed", "function", name, "err", err.Error())
			}
		}); err != nil {
			return nil, fmt.Errorf("function %s: schedule %q: %w", f.Name, spec, err)
		}
		a.Log.Info("timer scheduled", "function", name, "schedule", spec)
	}
	return c, nil
}

// cronLogger sends robfig/cron's messages to slog.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, kv ...any) { l.log.Debug("cron: "+msg, kv...) }

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron: "+msg, append(kv, "err", err.Error())...)
}
