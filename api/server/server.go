package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/console"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/raftnode"
)

// Server is the HTTP handler of one node's API.
type Server struct {
	node Node
	cfg  Config
	log  *slog.Logger
	auth *authenticator
	mux  *http.ServeMux
	fwd  *http.Client
	// console serves the operator console's files (console.Prefix).
	console *console.Handler

	// ctx ends when Close is called: blocking queries and audit follows
	// return then.
	ctx    context.Context
	cancel context.CancelFunc
	// checkDone is closed when the corruption check has stopped (nil: it
	// does not run).
	checkDone chan struct{}
}

var _ http.Handler = (*Server)(nil)

// New returns the API server for node. It validates cfg and never changes it.
func New(node Node, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	fwd := cfg.Forward
	if fwd == nil {
		fwd = &http.Client{Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 32,
			IdleConnTimeout:     90 * time.Second,
		}}
	}
	ui, err := console.New()
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{node: node, cfg: cfg, log: log, auth: newAuthenticator(cfg.Tokens, cfg.WorkerTokenKey), mux: http.NewServeMux(), fwd: fwd, console: ui}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.routes()
	s.startDigestCheck()
	return s, nil
}

// Close ends every blocking query and audit follow in progress, and the
// corruption check (it waits for that). The caller then shuts its http.Server
// down, which waits for the handlers to return.
func (s *Server) Close() {
	s.cancel()
	if s.checkDone != nil {
		<-s.checkDone
	}
	if t, ok := s.fwd.Transport.(*http.Transport); ok && s.cfg.Forward == nil {
		t.CloseIdleConnections()
	}
}

// ServeHTTP implements http.Handler. Every response names the node that
// answered and the leader it knows (hintWriter).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w = &hintWriter{ResponseWriter: w, s: s}
	w.Header().Set(api.HeaderNode, s.node.ID())
	done := s.guardBody(w, r)
	s.mux.ServeHTTP(w, r)
	done()
}

// handler is an endpoint: it returns an error to be written as JSON. caller
// is who the request's token says it comes from.
type handler func(w http.ResponseWriter, r *http.Request, caller principal) error

// method is one method of a path: the role it needs, whether followers forward
// it to the leader, and its handler.
type method struct {
	role    Role
	leader  bool // writes and session calls: must run on the leader
	handler handler
}

// route registers a path with one handler per method. Everything that can be
// refused without the body (the method, the token, a worker token used for
// another worker named in the path, an id in the path no worker or partition
// can have) is refused before the body is read, and before a follower
// forwards.
func (s *Server) route(pattern string, methods map[string]method) {
	allow := slices.Sorted(maps.Keys(methods))
	checkID := func(string) error { return nil }
	switch {
	case strings.HasPrefix(pattern, api.PathWorker):
		checkID = func(id string) error { return fsm.CheckWorkerID(fsm.WorkerID(id)) }
	case strings.HasPrefix(pattern, api.PathPartition):
		checkID = func(id string) error { return fsm.CheckPartitionID(fsm.PartitionID(id)) }
	}
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		m, ok := methods[r.Method]
		if !ok {
			methodNotAllowed(w, r, allow)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), bodyKey{}, new(decodedBody)))
		caller, aerr := s.auth.check(r, m.role)
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		if m.role == RoleWorker {
			// A worker's own call names the worker in the path; register
			// names it in the body and checks it there.
			if id := r.PathValue("id"); id != "" {
				if err := caller.actFor(fsm.WorkerID(id)); err != nil {
					writeError(w, err)
					return
				}
			}
		}
		if err := checkID(r.PathValue("id")); err != nil {
			s.fail(w, r, err)
			return
		}
		if m.leader && !s.node.IsLeader() {
			s.forward(w, r)
			return
		}
		if err := m.handler(w, r, caller); err != nil && !errors.Is(err, errForwarded) {
			s.fail(w, r, err)
		}
	})
}

// public registers an unauthenticated GET endpoint (metrics, health): other
// methods get the API's 405, as on every other path.
func (s *Server) public(pattern string, h http.Handler) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			methodNotAllowed(w, r, []string{http.MethodGet})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// methodNotAllowed answers 405 with the accepted methods, sorted so that the
// header is the same on every call.
func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow []string) {
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeError(w, api.Errorf(api.CodeMethodNotAllowed, "%s does not accept %s", r.URL.Path, r.Method))
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := toAPIError(err)
	if e.Status >= 500 && e.Code != api.CodeNoLeader && e.Code != api.CodeUnknownOutcome {
		s.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if e.Code == api.CodeNoLeader || e.Code == api.CodeNotLeader || e.Code == api.CodeUnknownOutcome || e.Code == api.CodeNotReady {
		w.Header().Set("Retry-After", "1")
	}
	writeError(w, e)
}

// toAPIError maps package errors to API errors, by errors.Is/As only.
func toAPIError(err error) *api.Error {
	var ae *api.Error
	var re *fsm.RejectError
	var mbe *http.MaxBytesError
	var nl *raftnode.NotLeaderError
	switch {
	case errors.As(err, &ae):
		// A copy: ae may be a shared sentinel (api.ErrUnknownSession), whose
		// bare code the wrapping error's text explains.
		out := *ae
		if out.Status == 0 {
			out.Status = api.StatusOf(out.Code)
		}
		if out.Message == "" {
			out.Message = err.Error()
		}
		return &out
	case errors.As(err, &re):
		e := api.FromReject(re)
		if e.Message == "" {
			// A bare sentinel (fsm.ErrUnknownWorker) carries no message;
			// the wrapping names the ids.
			e.Message = err.Error()
		}
		return e
	case errors.As(err, &mbe):
		return api.Errorf(api.CodeBodyTooLarge, "request body exceeds %d bytes", mbe.Limit)
	case errors.Is(err, raftnode.ErrShutdown):
		return api.Errorf(api.CodeUnavailable, "node is shutting down")
	case errors.Is(err, raftnode.ErrUnknownOutcome):
		return api.Errorf(api.CodeUnknownOutcome, "%v; retry with the same request id", err)
	case errors.As(err, &nl) && nl.LeaderID == "":
		return api.Errorf(api.CodeNoLeader, "no leader; retry shortly")
	case errors.Is(err, raftnode.ErrNotLeader):
		return api.Errorf(api.CodeNotLeader, "%v", err)
	case errors.Is(err, raftnode.ErrNoLeader):
		return api.Errorf(api.CodeNoLeader, "no leader; retry shortly")
	case errors.Is(err, raftnode.ErrNotReady):
		return api.Errorf(api.CodeNotReady, "%v", err)
	case errors.Is(err, context.DeadlineExceeded):
		return api.Errorf(api.CodeTimeout, "%v", err)
	case errors.Is(err, context.Canceled):
		return api.Errorf(api.CodeUnavailable, "request cancelled")
	}
	return api.Errorf(api.CodeInternal, "%v", err)
}

func writeError(w http.ResponseWriter, e *api.Error) {
	if e.Status == 0 {
		e.Status = api.StatusOf(e.Code)
	}
	writeJSON(w, e.Status, api.ErrorBody{Error: e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v) // the client went away; nothing to do
}

func setIndex(w http.ResponseWriter, idx fsm.RaftIndex) {
	w.Header().Set(api.HeaderIndex, strconv.FormatUint(uint64(idx), 10))
}

// decode reads r's body and decodes it into v, a pointer to a request struct,
// under the API's strict JSON rules (strict.go): a body that breaks them is a
// 400 bad_request naming the JSON path of the problem.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	data, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	if err := decodeStrict(data, v); err != nil {
		return api.Errorf(api.CodeBadRequest, "%v", err)
	}
	if b, ok := r.Context().Value(bodyKey{}).(*decodedBody); ok {
		// The decoded value, encoded again, is the request's canonical
		// form: the same request sent again, however its JSON is spelled,
		// gives the same bytes (see requestDigest).
		b.canonical, err = json.Marshal(v)
		if err != nil {
			return fmt.Errorf("server: encode decoded body: %w", err)
		}
	}
	return nil
}

// bodyKey is the context key of a request's decodedBody.
type bodyKey struct{}

// decodedBody holds what decode read, for propose.
type decodedBody struct{ canonical []byte }

// requestDigest identifies the request behind a write for the state
// machine's request-id table (fsm.Header.Digest): its method, path (with the
// ids in it) and canonical body. A command built from the state as well (a
// move reads the partition's epoch) differs between a request and its retry;
// the digest does not, so the retry gets the first outcome, and another
// request reusing the id gets request_id_reused.
func requestDigest(r *http.Request) uint64 {
	h := fnv.New64a()
	h.Write([]byte(r.Method))
	h.Write([]byte{0})
	h.Write([]byte(r.URL.Path))
	h.Write([]byte{0})
	if b, ok := r.Context().Value(bodyKey{}).(*decodedBody); ok {
		h.Write(b.canonical)
	}
	if d := h.Sum64(); d != 0 {
		return d
	}
	return 1 // 0 means "no digest"
}
