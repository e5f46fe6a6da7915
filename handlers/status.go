package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/dimirror/dimirror/shared/replication"
)

// Status is the status function (GET replications/{kind?}/{id?}): without parameters the list,
// with kind "summary" the freshness summary, with both the replicas of one source.
func (a *Functions) Status(w http.ResponseWriter, r *http.Request, params map[string]string) {
	kind, id := params["kind"], params["id"]
	switch {
	case kind == "" && id == "":
		a.StatusList(w, r)
	case kind == kindSummary && id == "":
		a.Summary(w, r)
	case id == "":
		a.writeError(w, r, &apiError{Kind: eNotFound, Code: "NotFound", Message: "use /" + routePrefix + "/" + routeReplications + "/{kind}/{sourceId}"})
	default:
		a.StatusOne(w, r, kind, id)
	}
}

// StatusOne handles GET /api/replications/{kind}/{sourceId}: the replicas of one source.
func (a *Functions) StatusOne(w http.ResponseWriter, r *http.Request, kindParam, sourceID string) {
	kind, err := replication.ParseKind(kindParam)
	if err != nil || kindParam == "" {
		a.writeError(w, r, invalid("kind", "unknown kind %s: use model or classifier", strconv.Quote(kindParam)))
		return
	}
	if !replication.ValidID(sourceID) {
		a.writeError(w, r, invalid("sourceId", "%s is not a valid id", strconv.Quote(sourceID)))
		return
	}
	page, err := a.Replicas.List(r.Context(), replication.Filter{Kind: kind, SourceID: sourceID}, "", 1000)
	if err == nil && len(page.Replicas) == 0 {
		err = fmt.Errorf("no replication of %s %s is known: %w", kind, strconv.Quote(sourceID), replication.ErrNotFound)
	}
	if err != nil {
		a.writeError(w, r, err)
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

// listParams are the query parameters of the list. nextLink carries these and no other: the
// request's query may hold the API key (code) or anything else a caller added, and a link
// must not echo it.
var listParams = []string{"status", "target", "kind", "top"}

// StatusList handles GET /api/replications?status=&target=&kind=&top=&next=: replicas across
// sources, paged.
func (a *Functions) StatusList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f replication.Filter
	for _, s := range splitList(q.Get("status")) {
		st, err := replication.ParseStatus(s)
		if err != nil {
			a.writeError(w, r, invalid("status", "%s", err.Error()))
			return
		}
		f.Status = append(f.Status, st)
	}
	if t := q.Get("target"); t != "" {
		if !slices.Contains(a.Requests.TargetNames(), t) {
			a.writeError(w, r, invalid("target", "unknown target %s", strconv.Quote(t)))
			return
		}
		f.Target = t
	}
	if k := q.Get("kind"); k != "" {
		kind, err := replication.ParseKind(k)
		if err != nil {
			a.writeError(w, r, invalid("kind", "%s", err.Error()))
			return
		}
		f.Kind = kind
	}
	top := 100
	if s := q.Get("top"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			a.writeError(w, r, invalid("top", "top must be a whole number from 1 to 1000"))
			return
		}
		top = n
	}
	page, err := a.Replicas.List(r.Context(), f, q.Get("next"), top)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ans := ListAnswer{Value: make([]ReplicaView, 0, len(page.Replicas))}
	for _, rep := range page.Replicas {
		ans.Value = append(ans.Value, View(rep))
	}
	if page.Next != "" {
		nq := url.Values{}
		for _, k := range listParams {
			if v := q.Get(k); v != "" {
				nq.Set(k, v)
			}
		}
		nq.Set("next", page.Next)
		ans.NextLink = "/" + routePrefix + "/" + routeReplications + "?" + nq.Encode()
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
