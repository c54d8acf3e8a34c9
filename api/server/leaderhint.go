package server

import (
	"net/http"

	"github.com/batonhq/baton/api"
)

// hintWriter names the leader (api.HeaderLeader) on every response, as this
// node knows it when the response's header is written rather than when the
// request came: a blocking query or an audit follow may answer long after,
// across a leader change, and a client must not be sent back to a leader
// that has been replaced meanwhile. Clients send writes and leader reads
// straight to the node named, without the forward hop through a follower.
type hintWriter struct {
	http.ResponseWriter
	s     *Server
	wrote bool
}

func (h *hintWriter) hint() {
	if h.wrote {
		return
	}
	h.wrote = true
	hd := h.ResponseWriter.Header()
	// Set, not Add: a forwarded answer carries the leader's own hint, and
	// one value is what clients read.
	if _, _, url := h.s.node.Leader(); url != "" {
		hd.Set(api.HeaderLeader, url)
	} else {
		hd.Del(api.HeaderLeader)
	}
}

func (h *hintWriter) WriteHeader(code int) {
	h.hint()
	h.ResponseWriter.WriteHeader(code)
}

func (h *hintWriter) Write(b []byte) (int, error) {
	h.hint()
	return h.ResponseWriter.Write(b)
}

// Flush lets streaming handlers (audit follows, forwarded streams) flush
// through the wrapper.
func (h *hintWriter) Flush() {
	h.hint()
	if f, ok := h.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer (read
// deadlines for request bodies).
func (h *hintWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }
