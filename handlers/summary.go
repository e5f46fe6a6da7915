package handlers

import (
	"net/http"
)

// Summary handles GET /api/replications/summary: the freshness figures of every target
// (replicas by status, oldest in-flight age, replication lag p50/p95/max and failures over the
// last 24 h) and the last watch's and sweep's reports (reconcile.Summary).
func (a *Functions) Summary(w http.ResponseWriter, r *http.Request) {
	rec, err := a.reconciler()
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	s, err := rec.Summary(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}
