// Package handlers holds one file per function: each decodes its trigger, calls the domain
// (shared/replication) and encodes the answer. The HTTP functions are plain http.Handlers, so
// the same code serves both hostings: `dimirror run` mounts them on its own server, and
// `dimirror serve` (the Functions custom handler) replays the host's HTTP trigger payload
// through them.
package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/dimirror/dimirror/shared/reconcile"
	"github.com/dimirror/dimirror/shared/replication"
)

// App is everything the handlers share.
type App struct {
	Engine *replication.Engine
	// PollTimeout bounds one poll pass (it should end before the next tick); default 50s.
	PollTimeout time.Duration
	// Reconciler runs the watch and sweep timers and answers the summary (reconcile.go).
	Reconciler *reconcile.Reconciler
	// WatchTimeout and SweepTimeout bound one pass; defaults in reconcile.go.
	WatchTimeout, SweepTimeout time.Duration
	Log                        *slog.Logger
}

func (a *App) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.New(slog.DiscardHandler)
}

// errorBody is every error answer: {"error":{"code":"...","message":"..."}}, plus the field a
// 400 is about.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Target  string `json:"target,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg, field string) {
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: msg, Target: field}})
}

// writeInternal answers a failure of a dependency (table, service): 503 when trying again may
// help, with the cause logged but not echoed (it may name internal endpoints).
func (a *App) writeUnavailable(w http.ResponseWriter, r *http.Request, err error) {
	a.log().ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err.Error())
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "Timeout", "a dependency did not answer in time; try again", "")
		return
	}
	w.Header().Set("Retry-After", "5")
	writeError(w, http.StatusServiceUnavailable, "Unavailable", "a dependency failed; try again (details are in the app's log)", "")
}

// ReplicaView is a replica as the HTTP API shows it.
type ReplicaView struct {
	Kind          string     `json:"kind"`
	SourceID      string     `json:"sourceId"`
	Target        string     `json:"target"`
	TargetID      string     `json:"targetId"`
	Status        string     `json:"status"`
	Attempt       int        `json:"attempt"`
	Percent       int        `json:"percentCompleted"`
	OperationID   string     `json:"operationId,omitempty"`
	Error         *errDetail `json:"error,omitempty"`
	SourceCreated *time.Time `json:"sourceCreatedDateTime,omitempty"`
	RequestedAt   *time.Time `json:"requestedDateTime,omitempty"`
	AuthorizedAt  *time.Time `json:"authorizedDateTime,omitempty"`
	StartedAt     *time.Time `json:"startedDateTime,omitempty"`
	CompletedAt   *time.Time `json:"completedDateTime,omitempty"`
	NextAttemptAt *time.Time `json:"nextAttemptDateTime,omitempty"`
	LagSeconds    *float64   `json:"lagSeconds,omitempty"`
}

type errDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func tp(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// View renders a replica for the API.
func View(r replication.Replica) ReplicaView {
	v := ReplicaView{
		Kind: string(r.Kind), SourceID: r.SourceID, Target: r.Target, TargetID: r.TargetID,
		Status: string(r.Status), Attempt: r.Attempt, Percent: r.Percent,
		SourceCreated: tp(r.SourceCreated), RequestedAt: tp(r.RequestedAt), AuthorizedAt: tp(r.AuthorizedAt),
		StartedAt: tp(r.StartedAt), CompletedAt: tp(r.CompletedAt),
	}
	if r.Status.InFlight() {
		v.NextAttemptAt = tp(r.NextAttemptAt)
	}
	if r.OperationURL != "" {
		v.OperationID = replication.OperationID(r.OperationURL)
	}
	if r.ErrorCode != "" {
		v.Error = &errDetail{Code: r.ErrorCode, Message: r.ErrorMessage}
	}
	if lag, ok := r.Lag(); ok {
		s := lag.Seconds()
		v.LagSeconds = &s
	}
	return v
}
