package console_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/batonhq/baton/console"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func serve(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestHandler: the index and its assets are served with their types, the
// policy that keeps the page on its own origin, and an ETag that
// revalidates; the bare prefix redirects; anything else is 404 or 405.
func TestHandler(t *testing.T) {
	h, err := console.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, ctype, contains string
	}{
		{"/ui/", "text/html", `<script src="console.js"`},
		{"/ui/index.html", "text/html", "<canvas id=\"grid\""},
		{"/ui/console.js", "javascript", "/v1/audit/follow"},
		{"/ui/console.css", "text/css", "canvas#grid"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			w := serve(t, h, http.MethodGet, tc.path, nil)
			if w.Code != http.StatusOK {
				t.Fatalf("GET %s: %d", tc.path, w.Code)
			}
			if ct := w.Header().Get("Content-Type"); !strings.Contains(ct, tc.ctype) {
				t.Errorf("GET %s: Content-Type %q, want %s", tc.path, ct, tc.ctype)
			}
			if csp := w.Header().Get("Content-Security-Policy"); csp != console.ContentSecurityPolicy {
				t.Errorf("GET %s: CSP %q", tc.path, csp)
			}
			if w.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("GET %s: no nosniff", tc.path)
			}
			if !strings.Contains(w.Body.String(), tc.contains) {
				t.Errorf("GET %s: body lacks %q", tc.path, tc.contains)
			}
			etag := w.Header().Get("ETag")
			if etag == "" {
				t.Fatalf("GET %s: no ETag", tc.path)
			}
			if w := serve(t, h, http.MethodGet, tc.path, map[string]string{"If-None-Match": `"x", ` + etag}); w.Code != http.StatusNotModified || w.Body.Len() != 0 {
				t.Errorf("GET %s with its ETag: %d, %d bytes; want 304 without a body", tc.path, w.Code, w.Body.Len())
			}
			if w := serve(t, h, http.MethodHead, tc.path, nil); w.Code != http.StatusOK || w.Body.Len() != 0 {
				t.Errorf("HEAD %s: %d, %d bytes", tc.path, w.Code, w.Body.Len())
			}
		})
	}
	if w := serve(t, h, http.MethodGet, "/ui", nil); w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %d to %q, want a redirect to /ui/", w.Code, w.Header().Get("Location"))
	}
	for _, p := range []string{"/ui/nope.js", "/ui/assets/console.js", "/ui/../go.mod", "/other"} {
		if w := serve(t, h, http.MethodGet, p, nil); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, w.Code)
		}
	}
	if w := serve(t, h, http.MethodPost, "/ui/", nil); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /ui/: %d (Allow %q), want 405", w.Code, w.Header().Get("Allow"))
	}
}

// TestAssetsStayOnTheirOrigin: the page loads nothing from elsewhere: every
// src and href in the index is relative, and the script calls only
// root-relative paths (the policy would block the rest; this catches it
// before a browser does).
func TestAssetsStayOnTheirOrigin(t *testing.T) {
	h, err := console.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/ui/", "/ui/console.js", "/ui/console.css"} {
		body := serve(t, h, http.MethodGet, p, nil).Body.String()
		for _, bad := range []string{"http://", "https://", "//cdn", "@import"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q", p, bad)
			}
		}
	}
}
