package handlers

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/dimirror/dimirror/shared/replication"
)

// StatusOne handles GET /api/replications/{kind}/{sourceId}: the replicas of one source.
func (a *App) StatusOne(w http.ResponseWriter, r *http.Request, kindParam, sourceID string) {
	kind, err := replication.ParseKind(kindParam)
	if err != nil || kindParam == "" {
		writeError(w, http.StatusBadRequest, "InvalidRequest", "unknown kind "+strconv.Quote(kindParam)+": use model or classifier", "kind")
		return
	}
	if !replication.ValidID(sourceID) {
		writeError(w, http.StatusBadRequest, "InvalidRequest", strconv.Quote(sourceID)+" is not a valid id", "sourceId")
		return
	}
	page, err := a.Engine.List(r.Context(), replication.Filter{Kind: kind, SourceID: sourceID}, "", 1000)
	if err != nil {
		a.writeUnavailable(w, r, err)
		return
	}
	if len(page.Replicas) == 0 {
		writeError(w, http.StatusNotFound, "ReplicationNotFound", "no replication of "+string(kind)+" "+strconv.Quote(sourceID)+" is known", "")
		return
	}
	ans := ReplicationAnswer{Kind: string(kind), SourceID: sourceID}
	for _, rep := range page.Replicas {
		ans.Replicas = append(ans.Replicas, View(rep))
	}
	writeJSON(w, http.StatusOK, ans)
}

// ListAnswer is a page of replicas.
type ListAnswer struct {
	Value    []ReplicaView `json:"value"`
	NextLink string        `json:"nextLink,omitempty"`
}

// StatusList handles GET /api/replications?status=&target=&kind=&top=&next=: replicas across
// sources, paged.
func (a *App) StatusList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f replication.Filter
	for _, s := range splitList(q.Get("status")) {
		st, err := replication.ParseStatus(s)
		if err != nil {
			writeError(w, http.StatusBadRequest, "InvalidRequest", err.Error(), "status")
			return
		}
		f.Status = append(f.Status, st)
	}
	if t := q.Get("target"); t != "" {
		if !a.Engine.HasTarget(t) {
			writeError(w, http.StatusBadRequest, "InvalidRequest", "unknown target "+strconv.Quote(t), "target")
			return
		}
		f.Target = t
	}
	if k := q.Get("kind"); k != "" {
		kind, err := replication.ParseKind(k)
		if err != nil {
			writeError(w, http.StatusBadRequest, "InvalidRequest", err.Error(), "kind")
			return
		}
		f.Kind = kind
	}
	top := 100
	if s := q.Get("top"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "InvalidRequest", "top must be a whole number from 1 to 1000", "top")
			return
		}
		top = n
	}
	page, err := a.Engine.List(r.Context(), f, q.Get("next"), top)
	if err != nil {
		if errors.Is(err, replication.ErrInvalidToken) {
			writeError(w, http.StatusBadRequest, "InvalidRequest", "the next token is not valid: use the nextLink of an earlier page", "next")
			return
		}
		a.writeUnavailable(w, r, err)
		return
	}
	ans := ListAnswer{Value: make([]ReplicaView, 0, len(page.Replicas))}
	for _, rep := range page.Replicas {
		ans.Value = append(ans.Value, View(rep))
	}
	if page.Next != "" {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("next", page.Next)
		ans.NextLink = "/api/replications?" + nq.Encode()
	}
	writeJSON(w, http.StatusOK, ans)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
