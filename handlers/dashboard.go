package handlers

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
	"strings"
)

// The status page: one self-contained HTML document (its style and script inline, nothing
// fetched from anywhere but this app's own JSON APIs), embedded in the binary.
var (
	//go:embed dashboard/page.html
	pageHTML string
	//go:embed dashboard/page.css
	pageCSS string
	//go:embed dashboard/page.js
	pageJS string
)

// dashboardPage is the assembled page and its Content-Security-Policy: only this page's own
// style and script run (pinned by hash), and the script may only call this origin; no frame may
// embed it, no form may post anywhere.
var dashboardPage, dashboardCSP = assemblePage()

func assemblePage() (page []byte, csp string) {
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	html := strings.Replace(pageHTML, "{{CSS}}", pageCSS, 1)
	html = strings.Replace(html, "{{JS}}", pageJS, 1)
	csp = "default-src 'none'; script-src " + hash(pageJS) + "; style-src " + hash(pageCSS) +
		"; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return []byte(html), csp
}

// Dashboard handles GET /api/dashboard: the status page. The page reads the key from its own
// address (?code=, which the function's key check needs for this request too), removes it from
// the address bar and calls the APIs with the x-functions-key header.
func (a *Functions) Dashboard(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", dashboardCSP)
	// The address held the key: never send it on as a referrer, never keep the page in a cache.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(dashboardPage)
}
