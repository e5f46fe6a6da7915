package handlers

import (
	"crypto/subtle"
	"log/slog"
	"net/http"
	"time"
)

// API is the HTTP surface of `dimirror run`: the same routes the Functions host serves under
// /api, guarded by one API key given as the x-functions-key header or the code query parameter
// (as Functions function keys are).
func (a *App) API(apiKey string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/replications", a.Authorize)
	mux.HandleFunc("GET /api/replications", a.StatusList)
	mux.HandleFunc("GET /api/replications/summary", a.Summary)
	mux.HandleFunc("GET /api/replications/{kind}/{id}", func(w http.ResponseWriter, r *http.Request) {
		a.StatusOne(w, r, r.PathValue("kind"), r.PathValue("id"))
	})
	methodNotAllowed := func(allow string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method+" is not allowed here; use "+allow, "")
		}
	}
	mux.HandleFunc("/api/replications", methodNotAllowed("GET, POST"))
	mux.HandleFunc("/api/replications/{kind}/{id}", methodNotAllowed("GET"))
	mux.HandleFunc("/api/replications/summary", methodNotAllowed("GET"))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NotFound", "no route "+r.Method+" "+r.URL.Path, "")
	})
	return a.logRequests(requireKey(apiKey, mux))
}

func requireKey(key string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		given := r.Header.Get("x-functions-key")
		if given == "" {
			given = r.URL.Query().Get("code")
		}
		if key == "" || subtle.ConstantTimeCompare([]byte(given), []byte(key)) != 1 {
			writeError(w, http.StatusUnauthorized, "Unauthorized", "missing or wrong API key: send it in the x-functions-key header or the code query parameter", "")
			return
		}
		next.ServeHTTP(w, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// logRequests writes one structured line per request, without the query (it may hold the key).
func (a *App) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelError
		} else if r.URL.Path == "/healthz" {
			level = slog.LevelDebug
		}
		a.log().Log(r.Context(), level, "http", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"duration", time.Since(start).String())
	})
}
