package handlers

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dimirror/dimirror/shared/funcdef"
)

// httpRoute is one method and path of the standalone server, and the function it reaches.
type httpRoute struct {
	method, pattern string
	fn              Function
	params          []string
}

// httpRoutes lists the routes of the table's HTTP functions, as the Functions host serves them
// under the route prefix.
func httpRoutes(table []Function) []httpRoute {
	var out []httpRoute
	for _, fn := range table {
		if fn.Trigger != funcdef.HTTPTrigger {
			continue
		}
		patterns, params := routePatterns(fn.Route)
		for _, p := range patterns {
			for _, m := range fn.Methods {
				out = append(out, httpRoute{method: strings.ToUpper(m), pattern: p, fn: fn, params: params})
			}
		}
	}
	return out
}

// API is the HTTP surface of `dimirror run`: the routes of the function table's HTTP functions,
// as the Functions host serves them under /api, guarded by one API key given as the
// x-functions-key header or the code query parameter (as Functions function keys are).
// Routes that collide (which Check reports at start-up too) are an error.
func (a *Functions) API(apiKey string) (http.Handler, error) {
	mux, err := a.apiMux()
	if err != nil {
		return nil, err
	}
	return a.logRequests(requireKey(a, apiKey, mux)), nil
}

// apiMux builds the standalone server's routes. A table whose routes collide is an error (the
// mux would panic), which Check reports at start-up.
func (a *Functions) apiMux() (mux *http.ServeMux, err error) {
	defer func() {
		if p := recover(); p != nil {
			mux, err = nil, fmt.Errorf("the function table's HTTP routes collide: %v", p)
		}
	}()
	mux = http.NewServeMux()
	allow := map[string][]string{}
	var paths []string
	for _, rt := range httpRoutes(a.Table()) {
		mux.Handle(rt.method+" "+rt.pattern, withTimeout(rt.fn.Timeout, a.recoverPanics(pathParams(rt.params, rt.fn.HTTP))))
		if _, ok := allow[rt.pattern]; !ok {
			paths = append(paths, rt.pattern)
		}
		allow[rt.pattern] = append(allow[rt.pattern], rt.method)
	}
	// A path served for other methods answers 405 naming the ones it takes.
	for _, p := range paths {
		methods := allow[p]
		slices.Sort(methods)
		allowed := strings.Join(slices.Compact(methods), ", ")
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allowed)
			a.writeError(w, r, &apiError{Kind: eMethod, Code: "MethodNotAllowed", Message: r.Method + " is not allowed here; use " + allowed})
		})
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, &apiError{Kind: eNotFound, Code: "NotFound", Message: "no route " + r.Method + " " + r.URL.Path})
	})
	return mux, nil
}

// pathParams hands an HTTP function its route parameters, as the Functions host does ("" for an
// optional parameter left out).
func pathParams(names []string, h HTTPFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		params := make(map[string]string, len(names))
		for _, n := range names {
			params[n] = r.PathValue(n)
		}
		h(w, r, params)
	})
}

// recoverPanics answers a handler's panic as an internal error instead of a dropped connection;
// the panic is logged, never echoed.
func (a *Functions) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				a.writeError(w, r, &apiError{Kind: eInternal, Code: "InternalError", Message: "the request failed inside the app (details are in its log)",
					Cause: fmt.Errorf("panic: %v", p)})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func requireKey(a *Functions, key string, next http.Handler) http.Handler {
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
			a.writeError(w, r, &apiError{Kind: eUnauthorized, Code: "Unauthorized",
				Message: "missing or wrong API key: send it in the x-functions-key header or the code query parameter"})
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
func (a *Functions) logRequests(next http.Handler) http.Handler {
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
