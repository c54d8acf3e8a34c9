package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/batonhq/baton/api"
	"github.com/batonhq/baton/fsm"
	"github.com/batonhq/baton/raftnode"
)

// propose runs a command on the leader with the caller's request id, and turns a
// whole-command rejection into an error.
func (s *Server) propose(r *http.Request, actor, cause string, body fsm.Body) (fsm.Result, error) {
	id, err := requestID(r)
	if err != nil {
		return fsm.Result{}, err
	}
	res, err := s.node.Propose(r.Context(), fsm.Command{
		Header: fsm.Header{RequestID: id, Actor: actor, Cause: cause, Digest: requestDigest(r)},
		Body:   body,
	})
	if err != nil {
		return res, err
	}
	if res.Err != nil {
		return res, res.Err
	}
	return res, nil
}

// operate proposes an operator's command and answers with its result, with
// the events it produced when events is set.
func (s *Server) operate(w http.ResponseWriter, r *http.Request, caller principal, cause string, body fsm.Body, events bool) error {
	res, err := s.propose(r, "operator:"+caller.name, cause, body)
	if err != nil {
		return err
	}
	writeResult(w, res, events)
	return nil
}

// writeResult answers a write: the index, per-item errors, and (unless omitted)
// the events.
func writeResult(w http.ResponseWriter, res fsm.Result, events bool) {
	out := api.WriteResponse{Index: res.Index, Duplicate: res.Duplicate}
	if res.Items != nil {
		out.Items = make([]*api.Error, len(res.Items))
		for i, err := range res.Items {
			if err != nil {
				out.Items[i] = toAPIError(err)
			}
		}
	}
	if events {
		out.Events = api.Events(res.Events)
	}
	setIndex(w, res.Index)
	writeJSON(w, http.StatusOK, out)
}

// single answers a one-item write: the item's rejection becomes the response's
// error.
func single(w http.ResponseWriter, res fsm.Result) error {
	if err := res.FirstError(); err != nil {
		return err
	}
	writeResult(w, res, true)
	return nil
}

func (s *Server) register(w http.ResponseWriter, r *http.Request, caller principal) error {
	var req api.RegisterRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if err := caller.actFor(req.Worker); err != nil {
		return err
	}
	if err := checkRegister(req); err != nil {
		return err
	}
	res, err := s.propose(r, "worker:"+string(req.Worker), "register",
		fsm.Join{Worker: req.Worker, Weight: req.Weight, Labels: req.Labels, Replace: true})
	if err != nil {
		return err
	}
	// A join's incarnation is its raft index; a retried registration gets the
	// first one's index back.
	inc := fsm.Incarnation(res.Index)
	if s.cfg.Sessions != nil {
		s.cfg.Sessions.Registered(req.Worker, inc)
	}
	setIndex(w, res.Index)
	writeJSON(w, http.StatusOK, api.Registration{
		Worker: req.Worker, Incarnation: inc, Index: res.Index,
		SessionTTLMS: s.cfg.SessionTTL.Milliseconds(), HeartbeatIntervalMS: s.cfg.HeartbeatInterval.Milliseconds(),
	})
	return nil
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request, caller principal) error {
	wid, err := workerParam(r)
	if err != nil {
		return err
	}
	var req api.HeartbeatRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	ttl := s.cfg.SessionTTL
	if s.cfg.Sessions != nil {
		ttl, err = s.cfg.Sessions.Heartbeat(wid, req.Incarnation)
		if err != nil {
			return err
		}
	} else {
		var known bool
		if err := s.node.Read(r.Context(), raftnode.Default, func(st *fsm.State) {
			wk, ok := st.Worker(wid)
			known = ok && wk.Incarnation == req.Incarnation && wk.State != fsm.WorkerGone
		}); err != nil {
			return err
		}
		if !known {
			return api.Errorf(api.CodeUnknownSession, "no session for worker %s incarnation %d; register again", wid, req.Incarnation)
		}
	}
	writeJSON(w, http.StatusOK, api.HeartbeatResponse{SessionTTLMS: ttl.Milliseconds()})
	return nil
}

// report serves a worker's own report (leave, drained, activated,
// checkpoints, released): decode the body, check it, build the command,
// propose it, and answer with the per-item outcomes (and the events, unless
// events is false: checkpoint batches would repeat every item back). route has
// checked that a worker's token is this worker's.
func report[Req any](s *Server, verb string, events bool, check func(Req) error, body func(fsm.WorkerID, Req) fsm.Body) handler {
	return func(w http.ResponseWriter, r *http.Request, caller principal) error {
		wid, err := workerParam(r)
		if err != nil {
			return err
		}
		var req Req
		if err := s.decode(w, r, &req); err != nil {
			return err
		}
		if check != nil {
			if err := check(req); err != nil {
				return err
			}
		}
		res, err := s.propose(r, "worker:"+string(wid), verb, body(wid, req))
		if err != nil {
			return err
		}
		writeResult(w, res, events)
		return nil
	}
}

func (s *Server) removeWorker(w http.ResponseWriter, r *http.Request, caller principal) error {
	wid, err := workerParam(r)
	if err != nil {
		return err
	}
	return s.operate(w, r, caller, "remove worker", fsm.RemoveWorker{Worker: wid}, true)
}

func (s *Server) cordon(w http.ResponseWriter, r *http.Request, caller principal) error {
	wid, err := workerParam(r)
	if err != nil {
		return err
	}
	var req api.CordonRequest
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	cause := "uncordon"
	if req.On {
		cause = "drain worker for maintenance"
	}
	return s.operate(w, r, caller, cause, fsm.Cordon{Worker: wid, On: req.On}, true)
}

func (s *Server) listWorkers(w http.ResponseWriter, r *http.Request, caller principal) error {
	c, err := consistency(r)
	if err != nil {
		return err
	}
	var out api.WorkerList
	if err := s.read(w, r, c, func(st *fsm.State) { out = api.WorkerList{Index: st.AppliedIndex(), Workers: st.Workers()} }); err != nil {
		return err
	}
	setIndex(w, out.Index)
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getWorker(w http.ResponseWriter, r *http.Request, caller principal) error {
	wid, err := workerParam(r)
	if err != nil {
		return err
	}
	c, err := consistency(r)
	if err != nil {
		return err
	}
	var wk fsm.Worker
	var ok bool
	var idx fsm.RaftIndex
	if err := s.read(w, r, c, func(st *fsm.State) { wk, ok = st.Worker(wid); idx = st.AppliedIndex() }); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("worker %s: %w", wid, fsm.ErrUnknownWorker)
	}
	setIndex(w, idx)
	writeJSON(w, http.StatusOK, wk)
	return nil
}

// assignment serves a worker's assignment, as a blocking query when ?index=N is
// given: it waits until a command after N changes this worker's assignment (or
// the wait ends) and returns X-Baton-Index for the next call.
func (s *Server) assignment(w http.ResponseWriter, r *http.Request, caller principal) error {
	wid, err := workerParam(r)
	if err != nil {
		return err
	}
	c, err := consistency(r)
	if err != nil {
		return err
	}
	after, wait, blocks, err := blocking(r, s.cfg.MaxWait)
	if err != nil {
		return err
	}
	if c != raftnode.Stale && !s.node.IsLeader() {
		s.forward(w, r)
		return nil
	}
	if blocks {
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		stop := context.AfterFunc(s.ctx, cancel)
		_, err := s.node.WaitWorker(ctx, wid, after)
		stop()
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	idx := s.node.WorkerIndex(wid)
	var a fsm.Assignment
	var ok bool
	if err := s.node.Read(r.Context(), c, func(st *fsm.State) { a, ok = st.Assignment(wid) }); err != nil {
		return err
	}
	setIndex(w, idx)
	if !ok {
		return fmt.Errorf("worker %s: %w", wid, fsm.ErrUnknownWorker)
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}

// read runs fn at consistency c, forwarding to the leader when this node cannot
// serve c. It reports (via forwarded) whether the response was already written.
func (s *Server) read(w http.ResponseWriter, r *http.Request, c raftnode.Consistency, fn func(*fsm.State)) error {
	if c != raftnode.Stale && !s.node.IsLeader() {
		s.forward(w, r)
		return errForwarded
	}
	return s.node.Read(r.Context(), c, fn)
}

// errForwarded tells a handler that forward already wrote the response.
var errForwarded = errors.New("server: forwarded")
