package server

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/batonhq/baton/api"
)

// Request bodies are read under a deadline, and a request whose body is not
// read to its end is answered with "Connection: close".
//
// Why a per-request deadline rather than http.Server.ReadTimeout: ReadTimeout
// bounds the whole request including the time the handler takes, and blocking
// queries and audit follows are long GETs that must not be cut. They have no
// body, so only requests with a body get a deadline (Config.BodyTimeout), set
// once the headers are in and lifted as soon as the body has been read to its
// end. A client that announces a Content-Length and sends nothing then gets
// 408 request_timeout instead of holding the connection forever.
//
// Why "Connection: close": before it writes a response, net/http reads
// whatever the handler left of the body (up to 256 KiB) so that the connection
// can carry the next request, unless the response closes the connection. An
// answer given before the body was read (401, 403, 404, 405, 413, or a 400 on
// a malformed body) would otherwise wait for a body that may never come. So
// the header is set for every request with a body and removed once the body has
// been read to its end; and when the handler returns with the body unread, the
// read deadline is moved to now, so that the discard net/http does after the
// handler ends at once too.

// guardedBody is a request body that lifts the body deadline and keeps the
// connection open once it has been read to its end. Read runs on the
// handler's goroutine only (decode and forward read bodies synchronously),
// which is what makes touching the response headers from it safe.
type guardedBody struct {
	io.ReadCloser
	w      http.ResponseWriter
	rc     *http.ResponseController
	sawEOF bool
}

func (b *guardedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.sawEOF {
		b.sawEOF = true
		b.w.Header().Del("Connection")
		_ = b.rc.SetReadDeadline(time.Time{}) // unsupported: no deadline was set either
	}
	return n, err
}

// guardBody sets up the body deadline and the Connection header for r, and
// returns the function to call when the handler has returned. A request
// without a body needs neither.
func (s *Server) guardBody(w http.ResponseWriter, r *http.Request) (done func()) {
	if r.Body == nil || r.Body == http.NoBody {
		return func() {}
	}
	rc := http.NewResponseController(w)
	// A ResponseWriter without deadlines (a test recorder, HTTP/2 through
	// a proxy) leaves the body unbounded in time, as before.
	_ = rc.SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout))
	w.Header().Set("Connection", "close")
	b := &guardedBody{ReadCloser: r.Body, w: w, rc: rc}
	r.Body = b
	return func() {
		if !b.sawEOF {
			_ = rc.SetReadDeadline(time.Now())
		}
	}
}

// readBody reads r's whole body, at most the server's MaxBodyBytes. A body
// announced larger is refused before any of it is read.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, &http.MaxBytesError{Limit: s.cfg.MaxBodyBytes}
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	switch {
	case err == nil:
		return data, nil
	case errors.As(err, new(*http.MaxBytesError)):
		return nil, err
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, api.Errorf(api.CodeRequestTimeout, "the request body did not arrive within %s", s.cfg.BodyTimeout)
	}
	return nil, api.Errorf(api.CodeBadRequest, "read request body: %v", err)
}
