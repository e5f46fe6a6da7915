package handlers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/dimirror/dimirror/shared/funcdef"
	"github.com/dimirror/dimirror/shared/funcproto"
	"github.com/dimirror/dimirror/shared/replication"
)

// CustomHandler is the HTTP server the Functions host talks to in `dimirror serve`: one POST
// route per entry of the function table (the host POSTs to /{FunctionName}), and GET / for the
// host's readiness probe.
func (a *Functions) CustomHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	for _, fn := range a.Table() {
		var h http.HandlerFunc
		switch fn.Trigger {
		case funcdef.HTTPTrigger:
			h = a.invokeHTTP(fn)
		case funcdef.ServiceBusTrigger:
			h = a.invokeQueue(fn)
		case funcdef.TimerTrigger:
			h = a.invokeTimer(fn)
		default:
			continue // Check refuses such a table at start-up
		}
		mux.Handle("POST /"+fn.Name, withTimeout(fn.Timeout, h))
	}
	return mux
}

// invokeFailed answers a failed invocation with the status of its error kind. The host discards
// Outputs and Logs of a non-2xx reply, so the reason goes to our own log too.
func (a *Functions) invokeFailed(w http.ResponseWriter, r *http.Request, kind string, err error) {
	e := &apiError{Kind: kind}
	status := e.status()
	a.log().ErrorContext(r.Context(), "invocation failed", "function", strings.TrimPrefix(r.URL.Path, "/"),
		"invocationId", r.Header.Get("X-Azure-Functions-InvocationId"), "status", status, "err", err.Error())
	writeJSON(w, status, funcproto.Response{Logs: []string{err.Error()}})
}

// decode reads the host's payload; a broken one fails the invocation with 400.
func (a *Functions) decode(w http.ResponseWriter, r *http.Request) (*funcproto.Request, bool) {
	inv, err := funcproto.DecodeRequest(r.Body, funcproto.DefaultMaxBytes)
	if err != nil {
		a.invokeFailed(w, r, eInvalid, err)
		return nil, false
	}
	return inv, true
}

// invokeHTTP replays the host's HTTP trigger through the function's handler and returns its
// answer as the function's http output binding.
func (a *Functions) invokeHTTP(fn Function) http.HandlerFunc {
	h := a.recoverPanics(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fn.HTTP(w, r, paramsOf(r.Context()))
	}))
	return func(w http.ResponseWriter, r *http.Request) {
		inv, ok := a.decode(w, r)
		if !ok {
			return
		}
		hr, err := inv.HTTP(fn.Binding)
		if err != nil {
			a.invokeFailed(w, r, eInvalid, err)
			return
		}
		u := hr.URL
		if u == nil {
			u = &url.URL{Path: "/"}
		}
		req, err := http.NewRequestWithContext(withParams(r.Context(), hr.Params), hr.Method, u.String(), bytes.NewReader(hr.Body))
		if err != nil {
			a.invokeFailed(w, r, eInvalid, fmt.Errorf("the trigger's request is not usable: %w", err))
			return
		}
		req.Header = hr.Header.Clone()
		if req.Header == nil {
			req.Header = http.Header{}
		}
		rec := newRecorder()
		h.ServeHTTP(rec, req)
		out := funcproto.HTTPResponse{StatusCode: rec.status, Headers: map[string]string{}, Body: rec.body.String()}
		for k, v := range rec.header {
			out.Headers[k] = strings.Join(v, ", ")
		}
		// The caller's answer is in the output binding: the invocation itself succeeded even
		// when the caller gets a 4xx.
		writeJSON(w, http.StatusOK, funcproto.Response{Outputs: map[string]any{fn.Output: out}})
	}
}

type paramsKey struct{}

// withParams carries the host's route parameters to the replayed request's handler.
func withParams(ctx context.Context, p map[string]string) context.Context {
	return context.WithValue(ctx, paramsKey{}, p)
}

func paramsOf(ctx context.Context) map[string]string {
	p, _ := ctx.Value(paramsKey{}).(map[string]string)
	if p == nil {
		p = map[string]string{}
	}
	return p
}

// invokeQueue hands the trigger's message to the queue function and answers its outcome. A
// custom handler cannot settle a message itself: the host completes it on a 2xx and abandons it
// otherwise, so a message to dead-letter fails every delivery until the queue's max delivery
// count dead-letters it, and the log line says why.
func (a *Functions) invokeQueue(fn Function) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		inv, ok := a.decode(w, r)
		if !ok {
			return
		}
		msg, err := inv.ServiceBus(fn.Binding)
		if err != nil {
			a.invokeFailed(w, r, eInvalid, err)
			return
		}
		out := fn.Queue(r.Context(), msg.Body, msg.DeliveryCount)
		switch out.Settle {
		case replication.SettleComplete:
			writeJSON(w, http.StatusOK, funcproto.Response{Logs: []string{"copy message " + msg.MessageID + " handled"}})
		case replication.SettleDeadLetter:
			a.invokeFailed(w, r, eUnprocessable,
				fmt.Errorf("message %s is poison and will be dead-lettered: %s", msg.MessageID, out.Description()))
		default:
			a.invokeFailed(w, r, eUnavailable, fmt.Errorf("message %s: %s (it will be redelivered)", msg.MessageID, out.Description()))
		}
	}
}

// invokeTimer runs one pass of a timer function; a failed pass fails the invocation.
func (a *Functions) invokeTimer(fn Function) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		inv, ok := a.decode(w, r)
		if !ok {
			return
		}
		if _, err := inv.Timer(fn.Binding); err != nil {
			a.invokeFailed(w, r, eInvalid, err)
			return
		}
		summary, err := fn.Timer(r.Context())
		if err != nil {
			kind := eInternal
			if errors.Is(err, errNoReconciler) {
				kind = eNotImplemented
			}
			a.invokeFailed(w, r, kind, err)
			return
		}
		writeJSON(w, http.StatusOK, funcproto.Response{Logs: []string{summary}})
	}
}

// recorder captures a handler's answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func newRecorder() *recorder { return &recorder{header: http.Header{}, status: http.StatusOK} }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	return r.body.Write(p)
}
