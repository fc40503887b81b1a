// Package webui is the RAG server's chat page: static HTML, JavaScript and
// CSS embedded in the binary (no CDN, no build step). The page talks to the
// server's own API with relative URLs, so it works behind
// `kubectl port-forward` and under a path prefix: it streams answers from
// POST v1/chat/completions, shows the cited passages, lists documents
// (GET documents) and uploads files (POST documents). The bearer token is
// typed into the page and kept in sessionStorage; the page itself needs none.
package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// ContentSecurityPolicy lets the page load and call only its own origin.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

var types = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// Handler serves the page at "/" and its assets under "/ui/".
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := "index.html"
		if r.URL.Path != "/" {
			name = strings.TrimPrefix(r.URL.Path, "/ui/")
		}
		ct, known := types[path.Ext(name)]
		b, err := static.ReadFile("static/" + name)
		if !known || strings.ContainsAny(name, "/\\") || err != nil {
			w.Header().Set("X-Content-Type-Options", "nosniff")
			http.Error(w, "404 page not found", http.StatusNotFound)
			return
		}
		sum := sha256.Sum256(b)
		h := w.Header()
		h.Set("Content-Type", ct)
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
	})
}
