package didev

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// counters of one resource and request category.
type counters struct {
	requests    atomic.Int64
	throttled   atomic.Int64 // 429 answered (rate limit and injected)
	rateLimited atomic.Int64 // of which by the rate limit
	injected429 atomic.Int64 // of which injected
	injected5xx atomic.Int64
	resets      atomic.Int64 // connections reset (before or after handling)
	lostAnswers atomic.Int64 // of which after handling: the request took effect, its answer never came
}

// Stats is a point-in-time view of the server, also served at GET /_didev/stats.
type Stats struct {
	Resources      map[string]ResourceStats `json:"resources"`
	Authorizations []AuthorizationStats     `json:"authorizations"`
	Faults         string                   `json:"faults"`
}

// ResourceStats are one resource's counters by category, and its item counts.
type ResourceStats struct {
	Endpoint     string                   `json:"endpoint"`
	Region       string                   `json:"region"`
	Categories   map[string]CategoryStats `json:"categories"`
	Models       int                      `json:"models"` // ready v3/v4 and v2.1 models
	Classifiers  int                      `json:"classifiers"`
	Reservations int                      `json:"reservations"` // ids reserved by unconsumed authorizations
	Operations   int                      `json:"operations"`   // operations not yet expired
}

// CategoryStats counts the requests of one category.
type CategoryStats struct {
	Requests    int64 `json:"requests"`
	Throttled   int64 `json:"throttled"` // 429 answered, rate limit or injected
	RateLimited int64 `json:"rateLimited"`
	Injected429 int64 `json:"injected429"`
	Injected5xx int64 `json:"injected5xx"`
	Resets      int64 `json:"resets"`
	LostAnswers int64 `json:"lostAnswers"` // resets after the request was handled
}

// AuthorizationStats describe one issued authorization (never its token). CopyToAccepted counts
// the copy requests answered 202 with it, whatever their outcome.
type AuthorizationStats struct {
	ID             string    `json:"id"`
	Resource       string    `json:"resource"` // the target that issued it
	Kind           Kind      `json:"kind"`
	TargetID       string    `json:"targetId"`
	APIVersion     string    `json:"apiVersion"`
	Issued         time.Time `json:"issued"`
	Expires        time.Time `json:"expires"`
	State          string    `json:"state"` // pending, consumed, freed
	CopyToAccepted int       `json:"copyToAccepted"`
	// CopyToAfterConsumed counts copyTo requests sent with it after a copy had consumed it:
	// an authorization spent twice. (CopyToAccepted may exceed 1 legitimately: a copyTo sent
	// again after the first copy with it failed.)
	CopyToAfterConsumed int    `json:"copyToAfterConsumed"`
	CopiedBy            string `json:"copiedBy,omitempty"` // the operation that consumed it
}

// Stats returns the counters and authorizations of every resource.
func (s *Server) Stats() Stats {
	out := Stats{Resources: map[string]ResourceStats{}, Authorizations: []AuthorizationStats{}, Faults: s.dice.get().String()}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, r := range s.resources {
		rs := s.stateOf(r)
		st := ResourceStats{Endpoint: r.endpoint, Region: r.opts.Region, Categories: map[string]CategoryStats{}}
		for cat, c := range r.stats {
			st.Categories[cat] = CategoryStats{
				Requests: c.requests.Load(), Throttled: c.throttled.Load(), RateLimited: c.rateLimited.Load(),
				Injected429: c.injected429.Load(), Injected5xx: c.injected5xx.Load(), Resets: c.resets.Load(), LostAnswers: c.lostAnswers.Load(),
			}
		}
		for _, k := range []Kind{KindModel, KindModelV21} {
			for _, m := range rs.Models[k] {
				if m.visible(now) {
					st.Models++
				}
			}
		}
		for _, m := range rs.Models[KindClassifier] {
			if m.visible(now) {
				st.Classifiers++
			}
		}
		for _, k := range []Kind{KindModel, KindClassifier, KindModelV21} {
			st.Reservations += len(rs.reserved[k])
		}
		for _, op := range rs.Ops {
			if now.Before(op.Created.Add(s.opts.OpTTL)) {
				st.Operations++
			}
		}
		for _, a := range rs.Auths {
			out.Authorizations = append(out.Authorizations, AuthorizationStats{
				ID: a.ID, Resource: r.opts.Name, Kind: a.Kind, TargetID: a.TargetID, APIVersion: a.APIVersion,
				Issued: a.Issued, Expires: a.Expires, State: a.State, CopyToAccepted: a.Accepted, CopyToAfterConsumed: a.AfterConsumed, CopiedBy: a.CopiedBy,
			})
		}
		out.Resources[r.opts.Name] = st
	}
	sort.Slice(out.Authorizations, func(i, j int) bool {
		a, b := out.Authorizations[i], out.Authorizations[j]
		if !a.Issued.Equal(b.Issued) {
			return a.Issued.Before(b.Issued)
		}
		return a.ID < b.ID
	})
	return out
}

// The /_didev/ endpoints: outside the service's routes, unauthenticated (didev is a local tool),
// never subject to faults or rate limits.

func isAdminPath(p string) bool { return strings.HasPrefix(strings.ToLower(p), "/_didev/") }

func (s *Server) serveAdmin(w http.ResponseWriter, req *http.Request, reqID string) {
	w.Header()["apim-request-id"] = []string{reqID}
	path := strings.ToLower(strings.TrimSuffix(req.URL.Path, "/"))
	switch {
	case path == "/_didev/stats" && req.Method == http.MethodGet:
		writeAdminJSON(w, http.StatusOK, s.Stats())
	case path == "/_didev/faults" && req.Method == http.MethodGet:
		writeAdminJSON(w, http.StatusOK, faultsOut(s.Faults()))
	case path == "/_didev/faults" && (req.Method == http.MethodPost || req.Method == http.MethodPut):
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 64<<10))
		if err != nil {
			writeAdminJSON(w, http.StatusBadRequest, map[string]string{"error": "reading the body: " + err.Error()})
			return
		}
		f, err := decodeFaults(body)
		if err == nil {
			err = s.SetFaults(f)
		}
		if err != nil {
			writeAdminJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeAdminJSON(w, http.StatusOK, faultsOut(f))
	default:
		writeAdminJSON(w, http.StatusNotFound, map[string]string{"error": "unknown didev endpoint; use GET /_didev/stats, GET or POST /_didev/faults"})
	}
}

type faultsView struct {
	Spec   string `json:"spec"`
	Faults Faults `json:"faults"`
}

func faultsOut(f Faults) faultsView { return faultsView{Spec: f.String(), Faults: f} }

// decodeFaults accepts the -fault syntax as text, or JSON: {"spec":"..."} or a Faults object.
func decodeFaults(body []byte) (Faults, error) {
	text := strings.TrimSpace(string(body))
	if !strings.HasPrefix(text, "{") {
		return ParseFaults(text)
	}
	var probe struct {
		Spec *string `json:"spec"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return Faults{}, err
	}
	if probe.Spec != nil {
		return ParseFaults(*probe.Spec)
	}
	var f Faults
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Faults{}, err
	}
	return f, f.validate()
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func encodeCursor(c string) string { return base64.RawURLEncoding.EncodeToString([]byte(c)) }
