// Package handlers holds one file per function: each decodes its trigger, calls the domain
// (shared/replication) and encodes the answer. One function table (table.go) lists them with
// their triggers, bindings, routes and timeouts; it is checked against functions/*/function.json
// at start-up, and both hostings route through it: `dimirror run` mounts the HTTP functions on
// its own server, hands queue messages to the queue function and runs the timers, and `dimirror
// serve` (the Functions custom handler) replays the host's invocations through the same entries.
package handlers

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/dimirror/dimirror/shared/reconcile"
	"github.com/dimirror/dimirror/shared/replication"
)

// The functions declare only what they call of the domain (consumer-side interfaces), so the
// domain can change behind them and tests can hand in what they like.
type (
	// replicas is the read side the status function uses.
	replicas interface {
		Get(ctx context.Context, k replication.Key) (*replication.Replica, error)
		List(ctx context.Context, f replication.Filter, next string, limit int) (replication.Page, error)
	}
	// requester is what the webhook (authorize) calls.
	requester interface {
		Request(ctx context.Context, req replication.Request) ([]replication.Replica, error)
		Validate(req *replication.Request) error
		TargetNames() []string
	}
	// copier is what the copy starter (the queue function) calls.
	copier interface {
		Handle(ctx context.Context, m *replication.CopyMessage, deliveryCount int) error
	}
	// poller is what the poll timer calls.
	poller interface {
		Poll(ctx context.Context) (replication.PollReport, error)
	}
	// reconciler runs the watch and sweep timers and answers the summary.
	reconciler interface {
		Watch(ctx context.Context) (*reconcile.Plan, error)
		Sweep(ctx context.Context, o reconcile.SweepOptions) (*reconcile.Plan, error)
		Summary(ctx context.Context) (*reconcile.Summary, error)
	}
)

// The real types satisfy them (checked here, so a change on either side fails the build).
var (
	_ replicas   = (*replication.Engine)(nil)
	_ replicas   = replication.Store(nil)
	_ requester  = (*replication.Engine)(nil)
	_ copier     = (*replication.Engine)(nil)
	_ poller     = (*replication.Engine)(nil)
	_ reconciler = (*reconcile.Reconciler)(nil)
)

// Functions is the app's functions and what they share. Both hostings run them through one
// table (Table): `dimirror serve` as the Functions host's custom handler, `dimirror run` on its
// own server, queue receiver and timers.
type Functions struct {
	Replicas replicas
	Requests requester
	Copies   copier
	Poller   poller
	// Reconciler runs the watch and sweep timers and answers the summary; nil leaves them
	// unconfigured (501 / a failed pass).
	Reconciler reconciler
	// Driller runs the drill (GET /api/drill); nil answers 501.
	Driller driller
	// PollTimeout bounds one poll pass (it should end before the next tick); default 50s.
	PollTimeout time.Duration
	// WatchTimeout and SweepTimeout bound one pass; defaults in reconcile.go.
	WatchTimeout, SweepTimeout time.Duration
	Log                        *slog.Logger
}

func (a *Functions) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.New(slog.DiscardHandler)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// ReplicaView is a replica as the HTTP API shows it.
type ReplicaView struct {
	// Source is the resource the copy is made from and Origin the item it is a copy of
	// ("<host>/<kind>/<id>"); both empty in rows written before replication rules.
	Source        string     `json:"source,omitempty"`
	Origin        string     `json:"origin,omitempty"`
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
		Source: r.Source, Origin: r.Origin,
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
