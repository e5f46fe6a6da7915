package handlers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/dimirror/dimirror/shared/funcproto"
	"github.com/dimirror/dimirror/shared/replication"
)

// Binding names, as in functions/<name>/function.json.
const (
	bindingRequest  = "req"
	bindingResponse = "res"
	bindingMessage  = "message"
	bindingTimer    = "timer"
)

// CustomHandler is the HTTP server the Functions host talks to in `dimirror serve`: one POST
// route per function folder (the host POSTs to /{FunctionName}), and GET / for the host's
// readiness probe.
func (a *App) CustomHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.HandleFunc("POST /authorize", a.invokeHTTP(func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		a.Authorize(w, r)
	}))
	mux.HandleFunc("POST /status", a.invokeHTTP(func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		kind, id := params["kind"], params["id"]
		switch {
		case kind == "" && id == "":
			a.StatusList(w, r)
		case kind == "summary" && id == "": // route replications/{kind?}/{id?}
			a.Summary(w, r)
		case id == "":
			writeError(w, http.StatusNotFound, "NotFound", "use /api/replications/{kind}/{sourceId}", "")
		default:
			a.StatusOne(w, r, kind, id)
		}
	}))
	mux.HandleFunc("POST /startcopy", a.invokeStartCopy)
	mux.HandleFunc("POST /poll", a.invokeTimer(func(ctx context.Context) (string, error) {
		rep, err := a.Poll(ctx)
		return fmt.Sprintf("poll: %d active, %d due, %d succeeded, %d retried, %d failed, %d errors",
			rep.Active, rep.Due, rep.Succeeded, rep.Retried, rep.Failed, rep.Errors), err
	}))
	mux.HandleFunc("POST /watch", a.invokeTimer(func(ctx context.Context) (string, error) {
		p, err := a.Watch(ctx)
		if err != nil {
			return "", err
		}
		return planLine(p), nil
	}))
	mux.HandleFunc("POST /sweep", a.invokeTimer(func(ctx context.Context) (string, error) {
		p, err := a.Sweep(ctx)
		if err != nil {
			return "", err
		}
		return planLine(p), nil
	}))
	return mux
}

// invokeFailed answers a failed invocation. The host discards Outputs and Logs of a non-2xx
// reply, so the reason goes to our own log too.
func (a *App) invokeFailed(w http.ResponseWriter, r *http.Request, status int, err error) {
	a.log().ErrorContext(r.Context(), "invocation failed", "function", strings.TrimPrefix(r.URL.Path, "/"),
		"invocationId", r.Header.Get("X-Azure-Functions-InvocationId"), "status", status, "err", err.Error())
	writeJSON(w, status, funcproto.Response{Logs: []string{err.Error()}})
}

// invokeHTTP replays the host's HTTP trigger through an ordinary handler and returns its answer
// as the "res" output binding.
func (a *App) invokeHTTP(h func(http.ResponseWriter, *http.Request, map[string]string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		inv, err := funcproto.DecodeRequest(r.Body, funcproto.DefaultMaxBytes)
		if err != nil {
			a.invokeFailed(w, r, http.StatusBadRequest, err)
			return
		}
		hr, err := inv.HTTP(bindingRequest)
		if err != nil {
			a.invokeFailed(w, r, http.StatusBadRequest, err)
			return
		}
		u := hr.URL
		if u == nil {
			u = &url.URL{Path: "/"}
		}
		req, err := http.NewRequestWithContext(r.Context(), hr.Method, u.String(), bytes.NewReader(hr.Body))
		if err != nil {
			a.invokeFailed(w, r, http.StatusBadRequest, fmt.Errorf("the trigger's request is not usable: %w", err))
			return
		}
		req.Header = hr.Header.Clone()
		if req.Header == nil {
			req.Header = http.Header{}
		}
		rec := newRecorder()
		h(rec, req, hr.Params)
		out := funcproto.HTTPResponse{StatusCode: rec.status, Headers: map[string]string{}, Body: rec.body.String()}
		for k, v := range rec.header {
			out.Headers[k] = strings.Join(v, ", ")
		}
		// The caller's answer is in the output binding: the invocation itself succeeded even
		// when the caller gets a 4xx.
		writeJSON(w, http.StatusOK, funcproto.Response{Outputs: map[string]any{bindingResponse: out}})
	}
}

func (a *App) invokeStartCopy(w http.ResponseWriter, r *http.Request) {
	inv, err := funcproto.DecodeRequest(r.Body, funcproto.DefaultMaxBytes)
	if err != nil {
		a.invokeFailed(w, r, http.StatusBadRequest, err)
		return
	}
	msg, err := inv.ServiceBus(bindingMessage)
	if err != nil {
		a.invokeFailed(w, r, http.StatusBadRequest, err)
		return
	}
	if err := a.StartCopy(r.Context(), msg.Body, msg.DeliveryCount); err != nil {
		var pe *replication.PoisonError
		if errors.As(err, &pe) {
			// A custom handler cannot dead-letter: failing every delivery makes the queue
			// dead-letter it after its max delivery count, and this log line says why.
			a.invokeFailed(w, r, http.StatusUnprocessableEntity,
				fmt.Errorf("message %s is poison and will be dead-lettered: %s", msg.MessageID, pe.Reason))
			return
		}
		a.invokeFailed(w, r, http.StatusServiceUnavailable, fmt.Errorf("message %s: %w (it will be redelivered)", msg.MessageID, err))
		return
	}
	writeJSON(w, http.StatusOK, funcproto.Response{Logs: []string{"copy message " + msg.MessageID + " handled"}})
}

func (a *App) invokeTimer(run func(context.Context) (string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		inv, err := funcproto.DecodeRequest(r.Body, funcproto.DefaultMaxBytes)
		if err != nil {
			a.invokeFailed(w, r, http.StatusBadRequest, err)
			return
		}
		if _, err := inv.Timer(bindingTimer); err != nil {
			a.invokeFailed(w, r, http.StatusBadRequest, err)
			return
		}
		summary, err := run(r.Context())
		if err != nil {
			a.invokeFailed(w, r, http.StatusInternalServerError, err)
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
