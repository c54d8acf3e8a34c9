package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/batonhq/baton/api"
)

// errLeaderChanged ends a forward whose leader was replaced before it answered.
var errLeaderChanged = errors.New("server: the leader changed during the forward")

// forwardLeaderCheck is how often a forward still waiting for the leader's
// answer checks that it is still the leader.
const forwardLeaderCheck = 50 * time.Millisecond

// watchForward ends a forward to leader when this node stops knowing it as the
// leader before the answer's headers came (answered closed): a frozen leader
// never answers, and the request would hold its client until the leader thaws
// while the cluster, and soon this node, already follow another. Once the
// answer streams (a blocking query, an audit follow), only the server's Close
// ends it.
func (s *Server) watchForward(ctx context.Context, cancel context.CancelCauseFunc, leader string, answered <-chan struct{}) {
	t := time.NewTicker(forwardLeaderCheck)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			cancel(nil)
			return
		case <-ctx.Done():
			return
		case <-answered:
			select {
			case <-s.ctx.Done():
				cancel(nil)
			case <-ctx.Done():
			}
			return
		case <-t.C:
			if now, _, _ := s.node.Leader(); now != leader {
				cancel(errLeaderChanged)
				return
			}
		}
	}
}

// forward relays a request to the leader's API and streams the answer back
// (blocking queries and audit follows included). A request is forwarded at most
// once: if it arrives forwarded at a node that is not the leader any more, the
// client gets 503 and retries.
func (s *Server) forward(w http.ResponseWriter, r *http.Request) {
	id, _, apiAddr := s.node.Leader()
	switch {
	case id == "":
		s.fail(w, r, api.Errorf(api.CodeNoLeader, "no leader; retry shortly"))
		return
	case apiAddr == "":
		s.fail(w, r, api.Errorf(api.CodeNoLeader, "leader %s has not registered its API address yet", id))
		return
	case r.Header.Get(api.HeaderForwarded) != "":
		s.fail(w, r, api.Errorf(api.CodeNotLeader, "forwarded by %s, but this node is not the leader (%s is)",
			r.Header.Get(api.HeaderForwarded), id))
		return
	}
	// The body is read here, whole and under this node's deadline, before
	// the leader is called: a body that is too large or never comes is
	// refused here as the leader would refuse it, and a slow client holds no
	// connection to the leader.
	data, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var body io.Reader
	if data != nil {
		body = bytes.NewReader(data)
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	answered := make(chan struct{})
	go s.watchForward(ctx, cancel, id, answered)
	target := strings.TrimRight(apiAddr, "/") + r.URL.RequestURI()
	req, err := http.NewRequestWithContext(ctx, r.Method, target, body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, h := range []string{"Authorization", "Content-Type", "Accept", "Last-Event-ID", api.HeaderRequestID} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set(api.HeaderForwarded, s.node.ID())
	resp, err := s.fwd.Do(req)
	if err != nil && errors.Is(context.Cause(ctx), errLeaderChanged) {
		// The leader was replaced while the request waited on it (it froze,
		// or lost its quorum): a write's outcome is unknown until it is
		// retried with its request id, and a read must go to the new one.
		code := api.CodeNotLeader
		if r.Method != http.MethodGet {
			code = api.CodeUnknownOutcome
		}
		s.fail(w, r, api.Errorf(code, "leader %s was replaced while the request waited on it; retry", id))
		return
	}
	close(answered)
	if err != nil {
		s.log.Debug("forward to leader failed", "leader", id, "err", err)
		s.fail(w, r, api.Errorf(api.CodeNoLeader, "leader %s unreachable: %v", id, err))
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		if k == api.HeaderNode || k == "Connection" {
			// Connection is this hop's: guardBody decides it.
			continue
		}
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	flusher, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}
