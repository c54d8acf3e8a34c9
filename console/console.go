// Package console owns Baton's operator console: the web page every `baton
// server` serves at /ui (HTML, CSS and plain JavaScript, embedded in the
// binary with go:embed, no build step) and the http.Handler that serves it.
//
// The handler serves static files only, without a token, like /metrics. The
// page holds no data of its own: every data call it makes goes to the same
// node's /v1 API with the bearer token the user pastes into it (kept in the
// tab's sessionStorage), so the API's roles decide what the user may see and
// do. A Content-Security-Policy limits the page to its own origin: it loads
// nothing from anywhere else and sends requests only to the node that
// served it.
package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

// Prefix is the path under which the console is served. Its index is
// Prefix + "/".
const Prefix = "/ui"

//go:embed assets
var assets embed.FS

// ContentSecurityPolicy is sent with every console response: scripts,
// styles, images and connections come from the serving node only, the page
// cannot be framed (no clickjacking of operator actions) and forms post
// nowhere. Inline styles are allowed because the views size bars and cells
// with style attributes; every text put into the page is escaped first.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// asset is one embedded file, ready to serve.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the console's files under Prefix. It is safe for concurrent
// use and holds no mutable state.
type Handler struct {
	files map[string]asset // by path under Prefix, "/" for the index
}

var _ http.Handler = (*Handler)(nil)

// New reads the embedded assets and returns their handler.
func New() (*Handler, error) {
	h := &Handler{files: map[string]asset{}}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		sum := sha256.Sum256(body)
		name := strings.TrimPrefix(p, "assets")
		h.files[name] = asset{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("console: read embedded assets: %w", err)
	}
	index, ok := h.files["/index.html"]
	if !ok {
		return nil, fmt.Errorf("console: embedded assets lack index.html")
	}
	h.files["/"] = index
	return h, nil
}

// ServeHTTP serves GET and HEAD of Prefix (redirected to Prefix + "/") and
// of the files under it; any other method is 405, an unknown file 404. A
// request whose If-None-Match holds the file's ETag gets 304.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if name == "" {
		http.Redirect(w, r, Prefix+"/", http.StatusMovedPermanently)
		return
	}
	a, ok := h.files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hdr.Set("Content-Type", a.ctype)
	hdr.Set("ETag", a.etag)
	// Revalidate every time: the files change with the binary, and the
	// answer to a revalidation is a bodiless 304.
	hdr.Set("Cache-Control", "no-cache")
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hdr.Set("Content-Length", fmt.Sprint(len(a.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(a.body) // the client went away; nothing to do
	}
}

// etagMatches reports whether an If-None-Match header names etag (or is *).
func etagMatches(header, etag string) bool {
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}
